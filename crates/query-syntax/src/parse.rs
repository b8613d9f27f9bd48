//! Parsing PostgREST's query language: `select`, filters, logic trees, `order`, `limit`,
//! `offset`, `on_conflict`, `columns`, into the AST of [`crate::ast`].

use crate::error::SyntaxError;
use crate::ast::{Aggregate, Cond, Leaf, Nulls, Op, OrderTerm, Quantifier, QueryParams, SelectItem};

/// `[alias:][col.]func()[::cast]` as an aggregate, if it is one.
fn parse_aggregate(item: &str) -> Option<SelectItem> {
    let (alias, rest) = match item.split_once(':') {
        Some((a, r)) if !r.starts_with(':') && !a.contains('(') => (Some(a.trim().to_string()), r.trim()),
        _ => (None, item),
    };
    let (call, cast) = match rest.rsplit_once("::") {
        Some((c, t)) if c.ends_with("()") => (c, Some(t.trim().to_string())),
        _ => (rest, None),
    };
    let head = call.strip_suffix("()")?;
    let (column, func) = match head.rsplit_once('.') {
        Some((c, f)) => (Some(unquote(c.trim())), f),
        None => (None, head),
    };
    let func = Aggregate::parse(func.trim())?;
    if column.is_none() && func != Aggregate::Count {
        return None;
    }
    Some(SelectItem::Aggregate { func, column, alias, cast })
}

/// `rel.sub.col` → (`[rel, sub]`, `col`); `rel.not.or` keeps `not.or` whole.
fn embedded_key(k: &str) -> Option<(Vec<String>, String)> {
    let (path, last) = match k.strip_suffix(".not.or").or_else(|| k.strip_suffix(".not.and")) {
        Some(p) => (p, if k.ends_with(".not.or") { "not.or" } else { "not.and" }),
        None => k.rsplit_once('.')?,
    };
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    path.iter().all(|s| is_ident(s)).then(|| (path, last.to_string()))
}

/// Parse a raw query string. `rpc_get` makes plain `name=value` pairs arguments instead of
/// filters.
pub fn parse_query(raw: &str, rpc_get: bool) -> Result<QueryParams, SyntaxError> {
    let mut q = QueryParams::default();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "select" => q.select = Some(parse_select(&v)?),
            "order" => q.order = parse_order(&v)?,
            "limit" => q.limit = Some(parse_count("limit", &v)?),
            "offset" => q.offset = Some(parse_count("offset", &v)?),
            "on_conflict" => q.on_conflict = Some(split_names(&v)),
            "columns" => q.columns = Some(split_names(&v)),
            "and" | "or" | "not.and" | "not.or" => {
                let negate = k.starts_with("not.");
                let items = parse_logic_items(&v)?;
                q.conds.push(if k.ends_with("and") {
                    Cond::And { negate, items }
                } else {
                    Cond::Or { negate, items }
                });
            }
            _ if rpc_get && !looks_like_filter(&v) => q.other.push((k, v)),
            _ => {
                if k.contains('.') {
                    let (path, last) = embedded_key(&k)
                        .ok_or_else(|| SyntaxError::new(format!("\"failed to parse parameter ({k})\""), format!("unexpected embedded resource path '{k}'")))?;
                    let e = q.embedded.entry(path).or_default();
                    match last.as_str() {
                        "order" => e.order = parse_order(&v)?,
                        "limit" => e.limit = Some(parse_count("limit", &v)?),
                        "offset" => e.offset = Some(parse_count("offset", &v)?),
                        "and" | "or" | "not.and" | "not.or" => {
                            let negate = last.starts_with("not.");
                            let items = parse_logic_items(&v)?;
                            e.conds.push(if last.ends_with("and") { Cond::And { negate, items } } else { Cond::Or { negate, items } });
                        }
                        column => e.conds.push(Cond::Leaf(parse_leaf(column, &v)?)),
                    }
                    continue;
                }
                q.conds.push(Cond::Leaf(parse_leaf(&k, &v)?));
            }
        }
    }
    Ok(q)
}

fn looks_like_filter(v: &str) -> bool {
    let head = v.strip_prefix("not.").unwrap_or(v);
    head.split_once('.').is_some_and(|(op, _)| {
        // `like(any)`, `fts(english)`: the operator is the part before the parenthesis.
        Op::parse(op.split('(').next().unwrap_or(op)).is_some()
    })
}

fn parse_count(name: &str, v: &str) -> Result<i64, SyntaxError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| SyntaxError::new(format!("\"failed to parse {name} parameter ({v})\""), format!("unexpected \"{v}\" expecting a non-negative integer")))
}

/// `a,b,"c d"` → names (postgrest-js quotes `columns` entries).
fn split_names(v: &str) -> Vec<String> {
    split_top(v, ',')
        .into_iter()
        .map(|s| unquote(s.trim()))
        .filter(|s| !s.is_empty())
        .collect()
}

fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        s.to_string()
    }
}

/// Split at `sep` outside parentheses and double quotes.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0usize);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn filter_error(k: &str, v: &str) -> SyntaxError {
    SyntaxError::new(
        format!("\"failed to parse filter ({v})\" (line 1, column 1)"),
        format!("unexpected \"{v}\" expecting an operator (eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, is, in, isdistinct, cs, cd, ov) for '{k}'"),
    )
}

/// `column=[not.]op.value`.
pub fn parse_leaf(column: &str, v: &str) -> Result<Leaf, SyntaxError> {
    let column = column.trim();
    if column.is_empty() {
        return Err(filter_error(column, v));
    }
    let (negate, rest) = match v.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (op_s, value) = rest.split_once('.').ok_or_else(|| filter_error(column, v))?;
    let (op_s, quantifier) = match (op_s.strip_suffix("(any)"), op_s.strip_suffix("(all)")) {
        (Some(o), _) => (o, Some(Quantifier::Any)),
        (_, Some(o)) => (o, Some(Quantifier::All)),
        _ => (op_s, None),
    };
    let (op_s, config) = match op_s.split_once('(') {
        Some((o, rest)) if quantifier.is_none() && matches!(o, "fts" | "plfts" | "phfts" | "wfts") => {
            let c = rest.strip_suffix(')').filter(|c| !c.is_empty()).ok_or_else(|| filter_error(column, v))?;
            (o, Some(c.to_string()))
        }
        _ => (op_s, None),
    };
    let op = Op::parse(op_s).ok_or_else(|| filter_error(column, v))?;
    let mut leaf = Leaf {
        column: unquote(column),
        negate,
        op,
        value: value.to_string(),
        list: vec![],
        quantifier,
        config,
    };
    if quantifier.is_some() {
        // Only comparisons and patterns take a quantifier, over `{a,b}`.
        if !matches!(leaf.op, Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte | Op::Like | Op::Ilike | Op::Match | Op::Imatch) {
            return Err(filter_error(column, v));
        }
        let inner = value
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .ok_or_else(|| filter_error(column, v))?;
        leaf.list = split_top(inner, ',').into_iter().map(|s| unquote(s.trim())).collect();
        if matches!(leaf.op, Op::Like | Op::Ilike) {
            leaf.list = leaf.list.iter().map(|s| s.replace('*', "%")).collect();
        }
        return Ok(leaf);
    }
    match leaf.op {
        Op::In => {
            let inner = value
                .strip_prefix('(')
                .and_then(|x| x.strip_suffix(')'))
                .ok_or_else(|| filter_error(column, v))?;
            leaf.list = if inner.trim().is_empty() {
                vec![]
            } else {
                split_top(inner, ',').into_iter().map(|s| unquote(s.trim())).collect()
            };
        }
        Op::Is if !matches!(value.to_ascii_lowercase().as_str(), "null" | "not_null" | "true" | "false" | "unknown") => {
            return Err(filter_error(column, v));
        }
        Op::Like | Op::Ilike => leaf.value = value.replace('*', "%"),
        _ => {}
    }
    Ok(leaf)
}

/// The inside of `or=(…)`: `a.eq.1,b.gt.2,and(c.eq.3,d.eq.4)`.
fn parse_logic_items(v: &str) -> Result<Vec<Cond>, SyntaxError> {
    let inner = v
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| SyntaxError::new(format!("\"failed to parse logic tree ({v})\""), "expecting \"(\""))?;
    let mut items = vec![];
    for part in split_top(inner, ',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(SyntaxError::new(format!("\"failed to parse logic tree ({v})\""), "empty condition"));
        }
        let (negate, p) = match part.strip_prefix("not.") {
            Some(r) if r.starts_with("and(") || r.starts_with("or(") => (true, r),
            _ => (false, part),
        };
        if let Some(rest) = p.strip_prefix("and") {
            if rest.starts_with('(') {
                items.push(Cond::And { negate, items: parse_logic_items(rest)? });
                continue;
            }
        }
        if let Some(rest) = p.strip_prefix("or") {
            if rest.starts_with('(') {
                items.push(Cond::Or { negate, items: parse_logic_items(rest)? });
                continue;
            }
        }
        // column.op.value or column.not.op.value
        let (col, opv) = p
            .split_once('.')
            .ok_or_else(|| SyntaxError::new(format!("\"failed to parse logic tree ({v})\""), format!("unexpected \"{p}\"")))?;
        let mut leaf = parse_leaf(col, opv)?;
        if leaf.op != Op::In {
            leaf.value = unquote(&leaf.value);
        }
        items.push(Cond::Leaf(leaf));
    }
    Ok(items)
}

/// `order=a.desc.nullslast,b`.
pub fn parse_order(v: &str) -> Result<Vec<OrderTerm>, SyntaxError> {
    let mut out = vec![];
    for term in split_top(v, ',') {
        let term = term.trim();
        let mut parts = term.split('.');
        let column = parts.next().unwrap_or_default().trim();
        if column.is_empty() || column.contains('(') || !path_ok(column) {
            return Err(order_error(v));
        }
        let mut t = OrderTerm {
            column: unquote(column),
            desc: false,
            nulls: None,
        };
        for m in parts {
            match m {
                "asc" => t.desc = false,
                "desc" => t.desc = true,
                "nullsfirst" => t.nulls = Some(Nulls::First),
                "nullslast" => t.nulls = Some(Nulls::Last),
                _ => return Err(order_error(v)),
            }
        }
        out.push(t);
    }
    Ok(out)
}

fn order_error(v: &str) -> SyntaxError {
    SyntaxError::new(
        format!("\"failed to parse order ({v})\" (line 1, column 1)"),
        "expecting a column name followed by .asc, .desc, .nullsfirst or .nullslast",
    )
}

/// A column, or a JSON path into one (`col->a->>b`): the column an identifier, each key
/// non-empty (keys are bound as values, never spliced).
fn path_ok(s: &str) -> bool {
    let mut parts = s.split("->");
    let col = parts.next().unwrap_or("");
    is_ident(col.trim()) && parts.all(|k| !k.trim_start_matches('>').trim().is_empty())
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ' ' || c == '-')
}

/// `select=id,alias:col::text,rel(a,b),other:rel!fk(*)`.
pub fn parse_select(v: &str) -> Result<Vec<SelectItem>, SyntaxError> {
    let err = |what: &str| {
        SyntaxError::new(format!("\"failed to parse select parameter ({v})\" (line 1, column 1)"), what.to_string())
    };
    let mut out = vec![];
    for raw in split_top(v, ',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(err("empty select item"));
        }
        if item == "*" {
            out.push(SelectItem::Star);
            continue;
        }
        let (item, spread) = match item.strip_prefix("...") {
            Some(rest) => (rest.trim(), true),
            None => (item, false),
        };
        if spread && !item.contains('(') {
            return Err(err("only an embedded resource can be spread: ...rel(cols)"));
        }
        if let Some(agg) = parse_aggregate(item) {
            if let SelectItem::Aggregate { column, alias, cast, .. } = &agg {
                if column.as_deref().is_some_and(|c| !is_ident(c))
                    || alias.as_deref().is_some_and(|a| !is_ident(a))
                    || cast.as_deref().is_some_and(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
                {
                    return Err(err("invalid aggregate column, alias or cast"));
                }
            }
            out.push(agg);
            continue;
        }
        if let Some(open) = item.find('(') {
            if !item.ends_with(')') {
                return Err(err("unbalanced parentheses"));
            }
            let head = &item[..open];
            let inner = &item[open + 1..item.len() - 1];
            let (alias, rel) = match head.split_once(':') {
                Some((a, r)) => (Some(a.trim().to_string()), r.trim()),
                None => (None, head.trim()),
            };
            let mut parts = rel.split('!');
            let relation = parts.next().unwrap_or_default().to_string();
            let mut hint = None;
            let mut inner_join = false;
            for p in parts {
                match p {
                    "inner" => inner_join = true,
                    "left" => {}
                    other => hint = Some(other.to_string()),
                }
            }
            if !is_ident(&relation) || alias.as_deref().is_some_and(|a| !is_ident(a)) {
                return Err(err("invalid embedded resource name"));
            }
            out.push(SelectItem::Embed {
                relation,
                alias,
                hint,
                inner: inner_join,
                spread,
                items: if inner.trim().is_empty() { vec![] } else { parse_select(inner)? },
            });
            continue;
        }
        let (alias, rest) = match item.split_once(':') {
            Some((a, r)) if !a.is_empty() && !r.starts_with(':') => (Some(a.trim().to_string()), r),
            _ => (None, item),
        };
        let (name, cast) = match rest.split_once("::") {
            Some((n, c)) => (n.trim(), Some(c.trim().to_string())),
            None => (rest.trim(), None),
        };
        let name = unquote(name);
        if !path_ok(&name)
            || alias.as_deref().is_some_and(|a| !is_ident(a))
            || cast.as_deref().is_some_and(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        {
            return Err(err("invalid column, alias or cast"));
        }
        out.push(SelectItem::Column { name, alias, cast });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_logic_trees() {
        let q = parse_query("id=eq.5&name=not.like.a*&or=(a.eq.1,and(b.gt.2,c.in.(x,\"y,z\")))", false).unwrap();
        assert_eq!(q.conds.len(), 3);
        match &q.conds[1] {
            Cond::Leaf(l) => {
                assert!(l.negate);
                assert_eq!(l.value, "a%");
            }
            _ => panic!(),
        }
        match &q.conds[2] {
            Cond::Or { items, .. } => match &items[1] {
                Cond::And { items, .. } => match &items[1] {
                    Cond::Leaf(l) => assert_eq!(l.list, vec!["x", "y,z"]),
                    _ => panic!(),
                },
                _ => panic!(),
            },
            _ => panic!(),
        }
    }

    #[test]
    fn bad_filters_are_parse_errors() {
        for bad in ["id=eq", "id=foo.1", "id=in.1,2", "id=is.maybe", "or=a.eq.1", "order=id.sideways", "limit=-1", "limit=x"] {
            let e = parse_query(bad, false).unwrap_err();
            assert!(e.message.starts_with("\"failed to parse"), "{bad}: {e}");
        }
    }

    #[test]
    fn select_items() {
        let s = parse_select("id,title:name::text,author:users!fk_a(id,name),*").unwrap();
        assert_eq!(s.len(), 4);
        assert!(matches!(&s[1], SelectItem::Column { alias: Some(a), cast: Some(c), .. } if a == "title" && c == "text"));
        assert!(matches!(&s[2], SelectItem::Embed { hint: Some(h), .. } if h == "fk_a"));
        assert!(parse_select("id;drop table x").is_err());
        assert!(parse_select("id::text;drop").is_err());
    }
}
