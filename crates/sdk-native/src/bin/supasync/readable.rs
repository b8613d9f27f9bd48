//! JSON answers as text for a person at a terminal: the operator commands (`attach`,
//! `deployments`, `daemon`) print JSON for scripts, and this, indented `key: value`
//! lines, when their output is a terminal.

use serde_json::Value;

/// `v` as indented lines.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, 0);
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("-".into()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.is_empty() => Some("none".into()),
        Value::Object(o) if o.is_empty() => Some("none".into()),
        Value::Array(a) if a.iter().all(|x| matches!(x, Value::String(_) | Value::Number(_))) => Some(a.iter().filter_map(scalar).collect::<Vec<_>>().join(", ")),
        _ => None,
    }
}

fn write(out: &mut String, v: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let label = k.replace('_', " ");
                match scalar(x) {
                    Some(s) => out.push_str(&format!("{pad}{label}: {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}{label}:\n"));
                        write(out, x, depth + 1);
                    }
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                match scalar(x) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}-\n"));
                        write(out, x, depth + 1);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_answers_read_as_indented_lines() {
        let text = render(&json!({"deployments": [{"name": "acme", "enabled": true, "pending": {"chat": 2}, "last_sync": null}], "daemon": false}));
        assert_eq!(text, "deployments:\n  -\n    name: acme\n    enabled: yes\n    pending:\n      chat: 2\n    last sync: -\ndaemon: no\n", "in the answer's own order");
    }
}
