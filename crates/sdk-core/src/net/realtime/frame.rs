//! One Phoenix message on the wire. We speak serializer 1.0.0 (a JSON object per text
//! frame), the one every Realtime server accepts; decoding also takes 2.0.0's JSON-array
//! text form, so a server that answers in either shape is understood. Anything that is
//! neither is an error for the caller to log and skip, never a reason to drop the socket.

use serde_json::{json, Value};

/// A Phoenix message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub r#ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable Realtime frame: {0}")]
pub struct FrameError(pub String);

fn opt_ref(v: Option<&Value>) -> Result<Option<String>, FrameError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(FrameError(format!("a ref must be a string, not {other}"))),
    }
}

fn text(v: Option<&Value>, what: &str) -> Result<String, FrameError> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(FrameError(format!("`{what}` is missing or not a string"))),
    }
}

impl Frame {
    /// A message from this client.
    pub fn new(join_ref: Option<&str>, r#ref: &str, topic: &str, event: &str, payload: Value) -> Frame {
        Frame {
            join_ref: join_ref.map(str::to_string),
            r#ref: Some(r#ref.to_string()),
            topic: topic.to_string(),
            event: event.to_string(),
            payload,
        }
    }

    /// Serializer 1.0.0: `{"topic","event","payload","ref","join_ref"}`.
    pub fn encode(&self) -> String {
        json!({
            "topic": self.topic,
            "event": self.event,
            "payload": self.payload,
            "ref": self.r#ref,
            "join_ref": self.join_ref,
        })
        .to_string()
    }

    /// A text frame in either serializer's JSON form.
    pub fn decode(raw: &str) -> Result<Frame, FrameError> {
        let v: Value = serde_json::from_str(raw).map_err(|e| FrameError(format!("not JSON ({e})")))?;
        match v {
            Value::Object(m) => Ok(Frame {
                join_ref: opt_ref(m.get("join_ref"))?,
                r#ref: opt_ref(m.get("ref"))?,
                topic: text(m.get("topic"), "topic")?,
                event: text(m.get("event"), "event")?,
                payload: m.get("payload").cloned().unwrap_or(Value::Null),
            }),
            Value::Array(a) if a.len() == 5 => Ok(Frame {
                join_ref: opt_ref(a.first())?,
                r#ref: opt_ref(a.get(1))?,
                topic: text(a.get(2), "topic")?,
                event: text(a.get(3), "event")?,
                payload: a.get(4).cloned().unwrap_or(Value::Null),
            }),
            _ => Err(FrameError("neither a message object nor a 5-element array".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v1_and_reads_v2_arrays() {
        let f = Frame::new(Some("1"), "2", "realtime:room", "phx_join", json!({"config": {}}));
        assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        let v2 = Frame::decode(r#"[null,"4","phoenix","phx_reply",{"status":"ok","response":{}}]"#).unwrap();
        assert_eq!((v2.join_ref, v2.r#ref.as_deref(), v2.topic.as_str()), (None, Some("4"), "phoenix"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in ["", "nope", "[]", "[1,2,3]", "{}", r#"{"topic":1,"event":"x"}"#, r#"{"topic":"t","event":"e","ref":{}}"#, "\u{0}"] {
            assert!(Frame::decode(raw).is_err(), "{raw:?}");
        }
    }
}
