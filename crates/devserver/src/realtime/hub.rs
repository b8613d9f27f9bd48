//! The Realtime hub: who is joined to which topic, presence per topic, and the
//! postgres_changes subscriptions the CDC poller delivers to.
//!
//! Sockets never talk to each other directly: they register their channels here with a
//! sender, and fan-out (broadcast, presence diffs, database changes) goes through the
//! hub. One mutex guards it; nothing awaits while holding it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::filter::Filter;
use super::protocol::{BinaryBroadcast, Msg, Outbound, Vsn};

/// Where a channel's messages go.
pub type SocketTx = UnboundedSender<Outbound>;

/// One joined channel.
#[derive(Clone)]
struct Member {
    channel_id: u64,
    tx: SocketTx,
    vsn: Vsn,
    receive_own: bool,
}

#[derive(Clone, Debug)]
struct PresenceMeta {
    channel_id: u64,
    phx_ref: String,
    fields: Map<String, Value>,
}

/// Which events a binding wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Insert,
    Update,
    Delete,
}

impl EventFilter {
    pub fn parse(s: Option<&str>) -> EventFilter {
        match s.map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("INSERT") => EventFilter::Insert,
            Some("UPDATE") => EventFilter::Update,
            Some("DELETE") => EventFilter::Delete,
            _ => EventFilter::All,
        }
    }

    pub fn matches(&self, change_type: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Insert => change_type == "INSERT",
            EventFilter::Update => change_type == "UPDATE",
            EventFilter::Delete => change_type == "DELETE",
        }
    }
}

/// One postgres_changes listener of a channel, validated.
#[derive(Clone, Debug)]
pub struct PgBinding {
    pub id: u32,
    pub event: EventFilter,
    pub schema: String,
    /// `None` for every table of the schema that is in the publication.
    pub table: Option<String>,
    pub filter: Option<Filter>,
}

/// A channel's postgres_changes subscription.
#[derive(Clone)]
pub struct PgSub {
    pub tx: SocketTx,
    pub topic: String,
    pub role: String,
    pub claims: Map<String, Value>,
    pub bindings: Vec<PgBinding>,
    /// The WAL's end when the channel subscribed: changes committed before it are not
    /// this channel's, even when the poll reads them later.
    pub since_lsn: u64,
}

#[derive(Default)]
struct Inner {
    next_channel: u64,
    topics: HashMap<String, Vec<Member>>,
    presence: HashMap<String, BTreeMap<String, Vec<PresenceMeta>>>,
    pg: HashMap<u64, PgSub>,
}

/// The shared registry.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    cdc_ready: tokio::sync::watch::Sender<bool>,
}

fn phx_ref() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 16)
}

/// The hub's key for a channel: private and public channels of one name are different
/// channels (Realtime keeps them apart), so a private one is keyed apart. The key's
/// first part is always the topic as the client names it.
pub fn hub_key(topic: &str, private: bool) -> String {
    if private {
        format!("{topic}\u{0}private")
    } else {
        topic.to_string()
    }
}

/// The topic as the client names it, from a hub key.
pub fn wire_topic(key: &str) -> &str {
    key.split('\u{0}').next().unwrap_or(key)
}

/// A message to a topic's channels; `topic` is the hub's key (see [`hub_key`]).
fn fanout(topic: &str, event: &str, payload: Value) -> Outbound {
    Outbound::Msg(Msg {
        join_ref: None,
        r#ref: None,
        topic: wire_topic(topic).to_string(),
        event: event.to_string(),
        payload,
    })
}

fn metas_json(metas: &[&PresenceMeta], prev: Option<&str>) -> Value {
    let list: Vec<Value> = metas
        .iter()
        .map(|m| {
            let mut o = m.fields.clone();
            o.insert("phx_ref".into(), Value::String(m.phx_ref.clone()));
            if let Some(p) = prev {
                o.insert("phx_ref_prev".into(), Value::String(p.to_string()));
            }
            Value::Object(o)
        })
        .collect();
    json!({ "metas": list })
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than stopping all of Realtime would; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the replication slot exists, so that changes committed now will be seen.
    pub fn set_cdc_ready(&self, ready: bool) {
        self.cdc_ready.send_replace(ready);
    }

    /// Wait (up to `limit`) until changes can be captured; false if they cannot.
    pub async fn wait_cdc_ready(&self, limit: std::time::Duration) -> bool {
        let mut rx = self.cdc_ready.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|r| *r)).await.is_ok_and(|r| r.is_ok())
    }

    /// A fresh channel id.
    pub fn next_channel_id(&self) -> u64 {
        let mut g = self.lock();
        g.next_channel += 1;
        g.next_channel
    }

    /// Register a joined channel on `topic`.
    pub fn join(&self, topic: &str, channel_id: u64, tx: SocketTx, vsn: Vsn, receive_own: bool) {
        self.lock().topics.entry(topic.to_string()).or_default().push(Member {
            channel_id,
            tx,
            vsn,
            receive_own,
        });
    }

    /// Remove a channel everywhere; its presence metas leave (with a diff to the topic).
    pub fn leave(&self, topic: &str, channel_id: u64) {
        let mut g = self.lock();
        if let Some(members) = g.topics.get_mut(topic) {
            members.retain(|m| m.channel_id != channel_id);
            if members.is_empty() {
                g.topics.remove(topic);
            }
        }
        g.pg.remove(&channel_id);
        let mut leaves = Map::new();
        if let Some(state) = g.presence.get_mut(topic) {
            for (key, metas) in state.iter_mut() {
                let gone: Vec<PresenceMeta> = metas.iter().filter(|m| m.channel_id == channel_id).cloned().collect();
                if !gone.is_empty() {
                    metas.retain(|m| m.channel_id != channel_id);
                    leaves.insert(key.clone(), metas_json(&gone.iter().collect::<Vec<_>>(), None));
                }
            }
            state.retain(|_, m| !m.is_empty());
            if state.is_empty() {
                g.presence.remove(topic);
            }
        }
        if !leaves.is_empty() {
            let diff = fanout(topic, "presence_diff", json!({"joins": {}, "leaves": leaves}));
            for m in g.topics.get(topic).into_iter().flatten() {
                let _ = m.tx.send(diff.clone());
            }
        }
    }

    /// Send a JSON broadcast to the topic's channels (not back to `from` unless it asked).
    pub fn broadcast_json(&self, topic: &str, from: Option<u64>, payload: Value) {
        let msg = fanout(topic, "broadcast", payload);
        let g = self.lock();
        for m in g.topics.get(topic).into_iter().flatten() {
            if Some(m.channel_id) == from && !m.receive_own {
                continue;
            }
            let _ = m.tx.send(msg.clone());
        }
    }

    /// Relay a binary broadcast: kind 4 to v2 sockets, JSON to v1 sockets (if it is JSON).
    pub fn broadcast_binary(&self, topic: &str, from: Option<u64>, b: BinaryBroadcast) {
        let out = Outbound::Binary(BinaryBroadcast {
            join_ref: None,
            r#ref: None,
            ..b
        });
        let g = self.lock();
        for m in g.topics.get(topic).into_iter().flatten() {
            if Some(m.channel_id) == from && !m.receive_own {
                continue;
            }
            if m.vsn == Vsn::V1 && matches!(&out, Outbound::Binary(b) if !b.json) {
                continue;
            }
            let _ = m.tx.send(out.clone());
        }
    }

    /// The topic's presence state, as `presence_state` carries it.
    pub fn presence_state(&self, topic: &str) -> Value {
        let g = self.lock();
        let mut out = Map::new();
        for (key, metas) in g.presence.get(topic).into_iter().flatten() {
            out.insert(key.clone(), metas_json(&metas.iter().collect::<Vec<_>>(), None));
        }
        Value::Object(out)
    }

    /// Track (or update) a channel's presence under `key`, and tell the topic.
    pub fn track(&self, topic: &str, channel_id: u64, key: &str, fields: Map<String, Value>) {
        let mut g = self.lock();
        let state = g.presence.entry(topic.to_string()).or_default();
        let metas = state.entry(key.to_string()).or_default();
        let old = metas.iter().position(|m| m.channel_id == channel_id);
        if let Some(i) = old {
            if metas[i].fields == fields {
                return; // re-tracking the same payload is a no-op
            }
        }
        let new = PresenceMeta {
            channel_id,
            phx_ref: phx_ref(),
            fields,
        };
        let mut leaves = Map::new();
        let prev = old.map(|i| metas.remove(i));
        if let Some(p) = &prev {
            leaves.insert(key.to_string(), metas_json(&[p], None));
        }
        let joins = json!({ key: metas_json(&[&new], prev.as_ref().map(|p| p.phx_ref.as_str())) });
        metas.push(new);
        let diff = fanout(topic, "presence_diff", json!({"joins": joins, "leaves": leaves}));
        for m in g.topics.get(topic).into_iter().flatten() {
            let _ = m.tx.send(diff.clone());
        }
    }

    /// Stop tracking a channel's presence, and tell the topic.
    pub fn untrack(&self, topic: &str, channel_id: u64) {
        let mut g = self.lock();
        let mut leaves = Map::new();
        if let Some(state) = g.presence.get_mut(topic) {
            for (key, metas) in state.iter_mut() {
                if let Some(i) = metas.iter().position(|m| m.channel_id == channel_id) {
                    let m = metas.remove(i);
                    leaves.insert(key.clone(), metas_json(&[&m], None));
                }
            }
            state.retain(|_, m| !m.is_empty());
        }
        if leaves.is_empty() {
            return;
        }
        let diff = fanout(topic, "presence_diff", json!({"joins": {}, "leaves": leaves}));
        for m in g.topics.get(topic).into_iter().flatten() {
            let _ = m.tx.send(diff.clone());
        }
    }

    /// Register (or replace) a channel's postgres_changes subscription.
    pub fn set_pg(&self, channel_id: u64, sub: PgSub) {
        self.lock().pg.insert(channel_id, sub);
    }

    /// New claims for a channel's subscription (after an `access_token` push).
    pub fn update_claims(&self, channel_id: u64, role: &str, claims: Map<String, Value>) {
        if let Some(s) = self.lock().pg.get_mut(&channel_id) {
            s.role = role.to_string();
            s.claims = claims;
        }
    }

    /// A copy of every postgres_changes subscription, for one poll.
    pub fn pg_snapshot(&self) -> Vec<(u64, PgSub)> {
        self.lock().pg.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// How many channels are joined (for tests and the status line).
    pub fn channel_count(&self) -> usize {
        self.lock().topics.values().map(Vec::len).sum()
    }
}
