//! Phoenix frames in both of Realtime's serializers (reference §1.3-§1.4).
//!
//! v1 (`vsn=1.0.0`): one JSON object per text frame; the server never sends `join_ref`.
//! v2 (`vsn=2.0.0`): text frames are `[join_ref, ref, topic, event, payload]`; broadcasts
//! from realtime-js arrive as binary kind-3 frames and go out to v2 subscribers as kind 4,
//! the only binary kind supabase-js decodes.

use serde_json::{json, Value};

/// The serializer a socket negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    pub fn parse(s: Option<&str>) -> Option<Vsn> {
        match s {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            _ => None,
        }
    }
}

/// A JSON message in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub join_ref: Option<String>,
    pub r#ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// A broadcast whose user payload travels as bytes (kind 3 in, kind 4 out).
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryBroadcast {
    pub join_ref: Option<String>,
    pub r#ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub meta: Option<Value>,
    /// `true` when `payload` is JSON text (encoding 1), `false` for raw bytes.
    pub json: bool,
    pub payload: Vec<u8>,
}

/// What a socket receives from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Msg(Msg),
    Binary(BinaryBroadcast),
}

/// What a socket sends to its client.
#[derive(Debug, Clone)]
pub enum Outbound {
    Msg(Msg),
    Binary(BinaryBroadcast),
    /// Close the socket (after what is queued), with a close code and reason.
    Close(Option<(u16, &'static str)>),
}

fn ref_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Decode a text frame.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Msg, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON frame: {e}"))?;
    let (join_ref, r, topic, event, payload) = match (vsn, &v) {
        (Vsn::V2, Value::Array(a)) if a.len() == 5 => (ref_of(a.first()), ref_of(a.get(1)), a.get(2), a.get(3), a[4].clone()),
        (Vsn::V1, Value::Object(o)) => (
            ref_of(o.get("join_ref")),
            ref_of(o.get("ref")),
            o.get("topic"),
            o.get("event"),
            o.get("payload").cloned().unwrap_or(Value::Null),
        ),
        (Vsn::V2, _) => return Err("expected a JSON array [join_ref, ref, topic, event, payload]".into()),
        (Vsn::V1, _) => return Err("expected a JSON object with topic, event, payload and ref".into()),
    };
    let topic = topic.and_then(Value::as_str).ok_or("missing topic")?.to_string();
    let event = event.and_then(Value::as_str).ok_or("missing event")?.to_string();
    Ok(Msg {
        join_ref,
        r#ref: r,
        topic,
        event,
        payload,
    })
}

/// Decode a binary frame (only kind 3, the client's broadcast push, is valid inbound).
pub fn decode_binary(b: &[u8]) -> Result<BinaryBroadcast, String> {
    let kind = *b.first().ok_or("empty binary frame")?;
    if kind != 3 {
        return Err(format!("unexpected binary frame kind {kind}"));
    }
    if b.len() < 7 {
        return Err("truncated binary frame header".into());
    }
    let lens: Vec<usize> = b[1..6].iter().map(|x| *x as usize).collect();
    let encoding = b[6];
    let mut pos = 7;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = b.get(pos..pos + n).ok_or("truncated binary frame")?;
        pos += n;
        Ok(s)
    };
    let utf8 = |s: &[u8]| String::from_utf8(s.to_vec()).map_err(|_| "binary frame field is not UTF-8".to_string());
    let join_ref = utf8(take(lens[0])?)?;
    let r = utf8(take(lens[1])?)?;
    let topic = utf8(take(lens[2])?)?;
    let event = utf8(take(lens[3])?)?;
    let meta_raw = take(lens[4])?.to_vec();
    let payload = b[pos..].to_vec();
    let meta = if meta_raw.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(&meta_raw).map_err(|_| "binary frame metadata is not JSON".to_string())?)
    };
    if encoding == 1 && serde_json::from_slice::<Value>(&payload).is_err() {
        return Err("binary frame says JSON but its payload is not JSON".into());
    }
    Ok(BinaryBroadcast {
        join_ref: (!join_ref.is_empty()).then_some(join_ref),
        r#ref: (!r.is_empty()).then_some(r),
        topic,
        event,
        meta,
        json: encoding == 1,
        payload,
    })
}

/// A frame to send, text or binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Encode for a socket of serializer `vsn`; `None` when the message cannot be expressed
/// (a raw-bytes broadcast to a v1 socket is dropped, as Realtime does).
pub fn encode(vsn: Vsn, o: &Outbound) -> Option<Frame> {
    match (o, vsn) {
        (Outbound::Msg(m), Vsn::V1) => Some(Frame::Text(
            json!({"topic": m.topic, "event": m.event, "payload": m.payload, "ref": m.r#ref}).to_string(),
        )),
        (Outbound::Msg(m), Vsn::V2) => Some(Frame::Text(
            json!([m.join_ref, m.r#ref, m.topic, m.event, m.payload]).to_string(),
        )),
        (Outbound::Binary(b), Vsn::V2) => {
            let meta = b.meta.as_ref().map(|m| m.to_string()).unwrap_or_default();
            if b.topic.len() > 255 || b.event.len() > 255 || meta.len() > 255 {
                return None;
            }
            let mut out = Vec::with_capacity(5 + b.topic.len() + b.event.len() + meta.len() + b.payload.len());
            out.push(4u8);
            out.push(b.topic.len() as u8);
            out.push(b.event.len() as u8);
            out.push(meta.len() as u8);
            out.push(u8::from(b.json));
            out.extend_from_slice(b.topic.as_bytes());
            out.extend_from_slice(b.event.as_bytes());
            out.extend_from_slice(meta.as_bytes());
            out.extend_from_slice(&b.payload);
            Some(Frame::Binary(out))
        }
        (Outbound::Binary(b), Vsn::V1) => {
            if !b.json {
                return None;
            }
            let payload: Value = serde_json::from_slice(&b.payload).ok()?;
            let mut p = json!({"type": "broadcast", "event": b.event, "payload": payload});
            if let Some(m) = &b.meta {
                p["meta"] = m.clone();
            }
            Some(Frame::Text(
                json!({"topic": b.topic, "event": "broadcast", "payload": p, "ref": null}).to_string(),
            ))
        }
        (Outbound::Close(_), _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_text_round_trip_and_v1_has_no_join_ref() {
        let m = decode_text(Vsn::V2, r#"["1","2","realtime:a","phx_join",{"x":1}]"#).unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("1"));
        let v1 = encode(Vsn::V1, &Outbound::Msg(m.clone())).unwrap();
        let Frame::Text(t) = v1 else { panic!() };
        assert!(!t.contains("join_ref"));
        assert_eq!(encode(Vsn::V2, &Outbound::Msg(m)).unwrap(), Frame::Text(r#"["1","2","realtime:a","phx_join",{"x":1}]"#.into()));
    }

    #[test]
    fn kind3_in_kind4_out() {
        let mut f = vec![3u8, 1, 1, 10, 4, 0, 1];
        f.extend_from_slice(b"12realtime:aping{\"a\":1}");
        let b = decode_binary(&f).unwrap();
        assert_eq!((b.topic.as_str(), b.event.as_str(), b.json), ("realtime:a", "ping", true));
        let Some(Frame::Binary(out)) = encode(Vsn::V2, &Outbound::Binary(b.clone())) else { panic!() };
        assert_eq!(out[0], 4);
        assert_eq!(&out[5..15], b"realtime:a");
        let Some(Frame::Text(t)) = encode(Vsn::V1, &Outbound::Binary(b)) else { panic!() };
        assert!(t.contains(r#""event":"ping""#));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for g in [&b""[..], &[3u8][..], &[3u8, 200, 0, 0, 0, 0, 1, b'x'][..], &[9u8, 0, 0][..]] {
            assert!(decode_binary(g).is_err());
        }
        for t in ["", "nope", "[1,2]", "{\"topic\":1}", "[null,null,\"t\",5,{}]"] {
            assert!(decode_text(Vsn::V2, t).is_err() || decode_text(Vsn::V1, t).is_err());
        }
    }
}
