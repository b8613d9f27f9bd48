//! Which Realtime listeners a replica's channel joins with.
//!
//! Every synced table: its rows whose owner is this user. The kit's tombstones: those
//! of this user's rows (Realtime's own DELETE events carry only the key, so owner
//! filters drop them; the tombstone is how a delete arrives).
//!
//! Shared tables add, for the scope ids whose rows the replica holds: the table's
//! INSERT and UPDATE events filtered by `column=in.(ids)`, the tombstones of those
//! scope ids, and the kit's access lines for this user (a membership granted or
//! revoked, which makes live sync pull and listen again with the new ids). Realtime
//! checks each INSERT and UPDATE against RLS, so only rows the user may read arrive.
//! It sends DELETE events without RLS, so shared tables never listen for them: a
//! listener for DELETE on a shared table would hear the keys of rows the user may not
//! read. The `in` filter fails for a DELETE anyway (its old record holds only the key),
//! and the `moved` and deleted tombstones, RLS-checked, carry what a member must know.

use std::collections::{BTreeMap, BTreeSet};

use crate::local::schema::Schema;
use crate::net::realtime::{ChannelConfig, PgChangesSpec};
use crate::sync::scopes::ACCESS;
use crate::sync::tombstones::TOMBSTONES;

/// Values per `in` filter: the compatibility floor Realtime documents.
const IDS_PER_FILTER: usize = 100;

/// The scope ids held per shared table (what [`crate::sync::scopes::held`] records).
pub type HeldScopes = BTreeMap<String, BTreeSet<String>>;

fn spec(event: &str, table: &str, filter: String) -> PgChangesSpec {
    PgChangesSpec { event: event.into(), schema: "public".into(), table: table.into(), filter: Some(filter) }
}

fn in_filters<'a>(column: &str, ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let ids: Vec<&str> = ids.into_iter().map(String::as_str).collect();
    ids.chunks(IDS_PER_FILTER).map(|c| format!("{column}=in.({})", c.join(","))).collect()
}

/// The channel configuration for `user_id`'s replica.
pub fn channel_config(schema: &Schema, user_id: &str, held: &HeldScopes) -> ChannelConfig {
    let mut specs = vec![];
    for t in schema.tables() {
        specs.push(spec("*", &t.name, format!("{}=eq.{user_id}", t.owner)));
        let (Some(col), Some(ids)) = (&t.shared_by, held.get(&t.name)) else { continue };
        for f in in_filters(col, ids) {
            specs.push(spec("INSERT", &t.name, f.clone()));
            specs.push(spec("UPDATE", &t.name, f));
        }
    }
    specs.push(spec("INSERT", TOMBSTONES, format!("owner_id=eq.{user_id}")));
    if schema.has_shared() {
        let all: BTreeSet<&String> = held.values().flatten().collect();
        for f in in_filters("scope_id", all) {
            specs.push(spec("INSERT", TOMBSTONES, f));
        }
        specs.push(spec("INSERT", ACCESS, format!("user_id=eq.{user_id}")));
    }
    ChannelConfig { postgres_changes: specs, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::schema::TableDecl;

    fn filters(c: &ChannelConfig) -> Vec<String> {
        c.postgres_changes.iter().map(|s| format!("{} {} {}", s.event, s.table, s.filter.clone().unwrap_or_default())).collect()
    }

    #[test]
    fn owner_only_tables_listen_by_owner_as_before() {
        let s = Schema::new(vec![TableDecl::new("messages")]).unwrap();
        assert_eq!(filters(&channel_config(&s, "u1", &HeldScopes::new())), ["* messages user_id=eq.u1", "INSERT supasync_tombstones owner_id=eq.u1"]);
    }

    #[test]
    fn shared_tables_listen_by_the_scope_ids_held_and_never_for_deletes() {
        let s = Schema::new(vec![TableDecl::new("agents").shared_by("org_id")]).unwrap();
        let held = HeldScopes::from([("agents".to_string(), BTreeSet::from(["o1".to_string(), "o2".to_string()]))]);
        assert_eq!(
            filters(&channel_config(&s, "u1", &held)),
            [
                "* agents user_id=eq.u1",
                "INSERT agents org_id=in.(o1,o2)",
                "UPDATE agents org_id=in.(o1,o2)",
                "INSERT supasync_tombstones owner_id=eq.u1",
                "INSERT supasync_tombstones scope_id=in.(o1,o2)",
                "INSERT supasync_access user_id=eq.u1",
            ]
        );
        // No scope ids yet: still told when one is granted.
        assert_eq!(filters(&channel_config(&s, "u1", &HeldScopes::new())).last().map(String::as_str), Some("INSERT supasync_access user_id=eq.u1"));
        let many = HeldScopes::from([("agents".to_string(), (0..150).map(|i| format!("o{i}")).collect())]);
        assert_eq!(channel_config(&s, "u1", &many).postgres_changes.iter().filter(|p| p.table == "agents" && p.event == "INSERT").count(), 2);
    }
}
