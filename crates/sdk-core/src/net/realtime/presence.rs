//! Presence state as Phoenix keeps it on the client: `presence_state` replaces the
//! picture, `presence_diff` adds joins then removes leaves, metas identified by their
//! `phx_ref`. Diffs that arrive before the first state of a join are held back and
//! applied after it (phoenix `presence.js`), so a fast join never loses a device.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Who is present: key → metas (each a JSON object with its `phx_ref`).
pub type PresenceMap = BTreeMap<String, Vec<Value>>;

/// One change to the picture.
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceChange {
    Join { key: String, metas: Vec<Value> },
    Leave { key: String, metas: Vec<Value> },
}

/// The client side of one channel's presence.
#[derive(Debug, Default, Clone)]
pub struct PresenceSync {
    state: PresenceMap,
    have_state: bool,
    pending: Vec<Value>,
}

fn metas_of(v: &Value) -> Vec<Value> {
    v.get("metas").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn phx_ref(meta: &Value) -> Option<&str> {
    meta.get("phx_ref").and_then(Value::as_str)
}

fn entries(v: &Value) -> Vec<(String, Vec<Value>)> {
    v.as_object()
        .map(|m: &Map<String, Value>| m.iter().map(|(k, v)| (k.clone(), metas_of(v))).collect())
        .unwrap_or_default()
}

impl PresenceSync {
    /// The current picture.
    pub fn state(&self) -> &PresenceMap {
        &self.state
    }

    /// A new join of the channel: wait for its `presence_state` again.
    pub fn reset(&mut self) {
        self.have_state = false;
        self.pending.clear();
    }

    /// A `presence_state` payload; returns the joins and leaves it implies, then those
    /// of the diffs that were waiting for it.
    pub fn apply_state(&mut self, payload: &Value) -> Vec<PresenceChange> {
        let new: PresenceMap = entries(payload).into_iter().filter(|(_, m)| !m.is_empty()).collect();
        let mut changes = vec![];
        for (key, metas) in &self.state {
            let gone: Vec<Value> = match new.get(key) {
                None => metas.clone(),
                Some(now) => metas.iter().filter(|m| !now.iter().any(|n| phx_ref(n) == phx_ref(m))).cloned().collect(),
            };
            if !gone.is_empty() {
                changes.push(PresenceChange::Leave { key: key.clone(), metas: gone });
            }
        }
        for (key, metas) in &new {
            let old = self.state.get(key);
            let came: Vec<Value> = metas
                .iter()
                .filter(|m| !old.is_some_and(|o| o.iter().any(|x| phx_ref(x) == phx_ref(m))))
                .cloned()
                .collect();
            if !came.is_empty() {
                changes.push(PresenceChange::Join { key: key.clone(), metas: came });
            }
        }
        self.state = new;
        self.have_state = true;
        for diff in std::mem::take(&mut self.pending) {
            changes.extend(self.apply_diff(&diff));
        }
        changes
    }

    /// A `presence_diff` payload (held back until the first state).
    pub fn apply_diff(&mut self, payload: &Value) -> Vec<PresenceChange> {
        if !self.have_state {
            self.pending.push(payload.clone());
            return vec![];
        }
        let mut changes = vec![];
        for (key, joins) in entries(payload.get("joins").unwrap_or(&Value::Null)) {
            let metas = self.state.entry(key.clone()).or_default();
            metas.retain(|m| !joins.iter().any(|j| phx_ref(j) == phx_ref(m)));
            metas.extend(joins.iter().cloned());
            changes.push(PresenceChange::Join { key, metas: joins });
        }
        for (key, leaves) in entries(payload.get("leaves").unwrap_or(&Value::Null)) {
            if let Some(metas) = self.state.get_mut(&key) {
                metas.retain(|m| !leaves.iter().any(|l| phx_ref(l) == phx_ref(m)));
                if metas.is_empty() {
                    self.state.remove(&key);
                }
            }
            changes.push(PresenceChange::Leave { key, metas: leaves });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_wait_for_the_state_then_apply_in_order() {
        let mut p = PresenceSync::default();
        let early = json!({"joins": {"phone": {"metas": [{"phx_ref": "b", "device": "phone"}]}}, "leaves": {}});
        assert!(p.apply_diff(&early).is_empty(), "held back");
        let changes = p.apply_state(&json!({"laptop": {"metas": [{"phx_ref": "a"}]}}));
        assert_eq!(changes.len(), 2);
        assert_eq!(p.state().keys().collect::<Vec<_>>(), ["laptop", "phone"]);
        let left = p.apply_diff(&json!({"joins": {}, "leaves": {"laptop": {"metas": [{"phx_ref": "a"}]}}}));
        assert_eq!(left, vec![PresenceChange::Leave { key: "laptop".into(), metas: vec![json!({"phx_ref": "a"})] }]);
        assert_eq!(p.state().keys().collect::<Vec<_>>(), ["phone"]);
    }

    #[test]
    fn a_new_state_reports_who_left_and_who_came() {
        let mut p = PresenceSync::default();
        p.apply_state(&json!({"a": {"metas": [{"phx_ref": "1"}]}, "b": {"metas": [{"phx_ref": "2"}]}}));
        p.reset();
        let c = p.apply_state(&json!({"b": {"metas": [{"phx_ref": "2"}]}, "c": {"metas": [{"phx_ref": "3"}]}}));
        assert!(c.contains(&PresenceChange::Leave { key: "a".into(), metas: vec![json!({"phx_ref": "1"})] }));
        assert!(c.contains(&PresenceChange::Join { key: "c".into(), metas: vec![json!({"phx_ref": "3"})] }));
        assert_eq!(c.len(), 2, "b stayed: no event");
        // Garbage payloads change nothing.
        assert!(p.apply_diff(&json!("junk")).is_empty());
        assert_eq!(p.state().len(), 2);
    }
}
