//! Shared rows: the scope ids this user belongs to, and what follows when they change.
//!
//! A table shared by a scope (`shared_by` in the schema, `supasync.share_by` in the SQL
//! kit) holds rows that every member of the row's scope id may read, as the app's RLS
//! decides. The server's answers already carry only what RLS lets through; what RLS
//! cannot do on its own is tell a device that its reach changed:
//! - **Access granted.** A user added to an organisation may now read rows written long
//!   before: older than the table's cursor, so no pull would ever bring them. The pull
//!   fetches them for the new scope ids (rows of that scope id below the cursor; the
//!   walk from the cursor on brings the rest), without a restore.
//! - **Access lost.** Rows the user may no longer read stay on the device until told.
//!   When a scope id leaves the user's memberships, the rows of it this device holds
//!   are checked with the server (an owner may still read some) and the others go.
//!   Writes of them still waiting become refusals ("no longer a member"), kept with
//!   their reason for the app, never dropped in silence.
//! - **A row moved** to another scope id leaves a `moved` tombstone for the old one:
//!   members who cannot read it where it went drop it (a device that pulled its new
//!   version, as old as the tombstone, keeps it).
//!
//! The kit answers `supasync_memberships()` with the shared tables and this user's
//! scope ids; the scope ids whose rows a replica holds are kept per table (meta
//! `scopes:<table>`), which is also what live sync listens with.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};

use super::context::SyncContext;
use super::error::SyncError;
use super::reject::reject_unsent_children;
use super::server_delete::server_deleted;
use super::tombstones::{tombstones_of, TombstoneKey};
use crate::local::local_row::{id_text, sync_txid, LocalRow, Overlay, Row, RowStatus};
use crate::local::outbox::OutboxEntry;
use crate::local::schema::{SchemaError, TableDecl};
use crate::local::store::{Store, StoreError, WriteBatch};
use crate::net::client::{enc, quoted_list, RequestError};
use crate::net::transport::Http;

/// The kit's table of membership changes (one line per user and scope id granted or
/// revoked), which live sync listens to.
pub const ACCESS: &str = "supasync_access";

/// Meta key: the server snapshot at the start of the oldest pull that has not yet
/// asked which memberships changed since (see `Pull`).
pub const ACCESS_FROM: &str = "scopes:access_from";

/// Server ids per `in.(…)` list: URLs stay well under proxies' limits.
const IDS_PER_REQUEST: usize = 100;

/// How the kit shares a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SharedTable {
    pub scope: String,
    pub column: String,
    #[serde(default = "yes")]
    pub owner_reads: bool,
}

fn yes() -> bool {
    true
}

/// `supasync_memberships()`: the shared tables, and this user's scope ids per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Memberships {
    pub tables: BTreeMap<String, SharedTable>,
    pub scopes: BTreeMap<String, BTreeSet<String>>,
    /// The server's snapshot when this was read (`xmin:xmax:xip,…`).
    #[serde(default)]
    pub access_from: Option<String>,
    /// Asked with `changed_since`: the scope ids (`scope:id`) whose membership changed
    /// since then.
    #[serde(default)]
    pub changed: BTreeSet<String>,
}

impl Memberships {
    /// The scope ids whose rows of `table` this user reads as a member.
    pub fn ids_for(&self, table: &str) -> BTreeSet<String> {
        self.tables
            .get(table)
            .and_then(|t| self.scopes.get(&t.scope))
            .cloned()
            .unwrap_or_default()
    }

    fn scope_of(&self, table: &str) -> &str {
        self.tables.get(table).map(|t| t.scope.as_str()).unwrap_or("scope")
    }
}

/// Ask the kit, and check that it shares each table the schema declares shared the
/// same way (a mismatch would fetch and drop the wrong rows). With `changed_since` (an
/// earlier answer's `access_from`), also which memberships changed since.
pub async fn memberships<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, changed_since: Option<&str>) -> Result<Memberships, SyncError> {
    let args = match changed_since {
        Some(t) => json!({"changed_since": t}),
        None => json!({}),
    };
    let v = cx
        .authed(|t| {
            let a = args.clone();
            async move { cx.client.rpc("supasync_memberships", &a, &t).await }
        })
        .await?;
    let m: Memberships = serde_json::from_value(v.clone())
        .map_err(|e| RequestError::BadAnswer(format!("supasync_memberships() returned {v}: {e}; is the SQL kit applied?")))?;
    for t in cx.schema.tables() {
        let Some(col) = &t.shared_by else { continue };
        match m.tables.get(&t.name) {
            Some(k) if &k.column == col => {}
            kit => {
                return Err(SchemaError::SharedMismatch {
                    table: t.name.clone(),
                    column: col.clone(),
                    kit: kit.map(|k| format!("shares it by `{}` (scope `{}`)", k.column, k.scope)).unwrap_or_else(|| {
                        format!("does not share it: run select supasync.share_by('public.{}', '<scope>', '{col}')", t.name)
                    }),
                }
                .into())
            }
        }
    }
    Ok(m)
}

/// The scope ids whose rows of `table` this replica holds.
pub async fn held<S: Store>(store: &S, table: &str) -> Result<BTreeSet<String>, StoreError> {
    match store.meta(&held_key(table)).await? {
        Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("scopes of {table}: {e}"))),
        None => Ok(BTreeSet::new()),
    }
}

/// The meta entry that records `ids` as the scope ids held for `table`.
pub fn held_entry(table: &str, ids: &BTreeSet<String>) -> (String, Option<Value>) {
    (held_key(table), Some(json!(ids)))
}

fn held_key(table: &str) -> String {
    format!("scopes:{table}")
}

/// Scope ids of rows a pull brought though the user was not a member of them when it
/// began (a share that came and went while the pull ran: RLS let the rows through at
/// query time). They are not backfilled, so not held, but the device may hold rows of
/// them: the next pull evicts those rows unless the user is a member by then (then
/// the id is granted and backfilled as any other).
pub async fn strays<S: Store>(store: &S, table: &str) -> Result<BTreeSet<String>, StoreError> {
    match store.meta(&strays_key(table)).await? {
        Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("stray scopes of {table}: {e}"))),
        None => Ok(BTreeSet::new()),
    }
}

/// The meta entry recording the stray scope ids of `table`: those `found` in rows the
/// pull brought that are not among `members`.
pub fn strays_entry(table: &str, found: &BTreeSet<String>, members: &BTreeSet<String>) -> (String, Option<Value>) {
    let strays: BTreeSet<&String> = found.difference(members).collect();
    (strays_key(table), if strays.is_empty() { None } else { Some(json!(strays)) })
}

fn strays_key(table: &str) -> String {
    format!("scopes:stray:{table}")
}

/// The scope id a row holds, as the server knows it: its server id when the scope
/// column is the key, the parent's server id when it is a reference (the replica
/// keeps references as local ids), else the column's value.
async fn scope_id_of<S: Store>(store: &S, decl: &TableDecl, col: &str, row: &LocalRow, parents: &mut HashMap<String, Option<String>>) -> Result<Option<String>, StoreError> {
    if col == decl.key {
        return Ok(row.server_id.as_ref().map(id_text));
    }
    // The server's version; for a row not on the server yet, what this device wrote.
    let written = match &row.overlay {
        Some(Overlay::Fields { fields }) if row.mirror.is_none() => Some(fields),
        _ => None,
    };
    let Some(v) = row.mirror.as_ref().or(written).and_then(|m| m.get(col)).filter(|v| !v.is_null()) else { return Ok(None) };
    let Some(parent) = decl.references.get(col) else { return Ok(Some(id_text(v))) };
    let local = id_text(v);
    if let Some(known) = parents.get(&local) {
        return Ok(known.clone());
    }
    let id = store.get_row(parent, &local).await?.and_then(|p| p.server_id.as_ref().map(id_text));
    parents.insert(local, id.clone());
    Ok(id)
}

/// Drop the rows of scope ids this user lost (checked with the server first: an owner
/// may still read some), for every shared table, and record what each table holds now.
/// Returns how many rows went.
pub async fn evict_lost<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, m: &Memberships) -> Result<usize, SyncError> {
    let mut evicted = 0;
    // Children first: a child's scope id may be its parent's server id (a message
    // shared by its conversation), read from the parent while it is still here.
    let tables: Vec<&TableDecl> = cx.schema.parent_order().collect();
    for decl in tables.into_iter().rev() {
        let Some(col) = &decl.shared_by else { continue };
        let had = held(cx.store, &decl.name).await?;
        let stray = strays(cx.store, &decl.name).await?;
        let now = m.ids_for(&decl.name);
        let lost: BTreeSet<&String> = had.union(&stray).filter(|id| !now.contains(*id)).collect();
        if lost.is_empty() {
            continue;
        }
        let started = cx.now_ms();
        let mut parents = HashMap::new();
        let mut candidates: Vec<(LocalRow, Option<String>)> = vec![];
        // Rows on the server only: an insert not sent yet is the server's to refuse.
        for r in cx.store.scan(&decl.name).await?.into_iter().filter(|r| r.server_id.is_some()) {
            match scope_id_of(cx.store, decl, col, &r, &mut parents).await? {
                Some(id) if lost.contains(&id) => candidates.push((r, Some(id))),
                Some(_) => {}
                // Shared by a parent no longer here (its delete arrived first, say, a
                // delete whose cascade also ended the membership that let this user read
                // the child's tombstone): the server says whether it is still readable.
                None if decl.references.contains_key(col) && r.mirror.as_ref().and_then(|m| m.get(col)).is_some_and(|v| !v.is_null()) => {
                    candidates.push((r, None))
                }
                None => {}
            }
        }
        let ids: Vec<String> = candidates.iter().filter_map(|(r, _)| r.server_id.as_ref().map(id_text)).collect();
        let readable = still_readable(cx, decl, &ids).await?;
        // Unreadable because deleted (a conversation deleted with its memberships): the
        // delete wins, as a tombstone would have said.
        let unreadable: Vec<String> = ids.into_iter().filter(|id| !readable.contains(id)).collect();
        let mut deleted = HashSet::new();
        for chunk in unreadable.chunks(IDS_PER_REQUEST) {
            deleted.extend(tombstones_of(cx, &decl.name, TombstoneKey::RowIds(chunk)).await?);
        }
        let _w = cx.writer.lock().await;
        let outbox = cx.store.outbox().await?;
        let mut wb = WriteBatch::default();
        let mut settled = HashSet::new();
        let me = cx.session().await?.user_id;
        // Lost scope ids whose rows the server still let this user read, not as their
        // owner (shared again since the memberships were read): still unsure.
        let mut unsure = BTreeSet::new();
        for (r, id) in candidates {
            if r.server_id.as_ref().is_some_and(|s| readable.contains(&id_text(s))) {
                let owned = r.mirror.as_ref().and_then(|m| m.get(&decl.owner)).map(id_text).as_deref() == Some(me.as_str());
                if let (Some(id), false) = (&id, owned) {
                    unsure.insert(id.clone());
                }
                continue;
            }
            // Read again under the lock: a Realtime change may have moved it meanwhile.
            let Some(now_row) = cx.store.get_row(&decl.name, &r.local_id).await? else { continue };
            if scope_id_of(cx.store, decl, col, &now_row, &mut parents).await? != id {
                continue;
            }
            if now_row.server_id.as_ref().is_some_and(|s| deleted.contains(&id_text(s))) {
                server_deleted(cx, &now_row, "deleted on the server", &outbox, &mut settled, &mut wb).await?;
                evicted += 1;
                continue;
            }
            let scope = m.scope_of(&decl.name);
            let reason = match &id {
                Some(id) => format!("this user is no longer a member of {scope} {id}"),
                None => format!("this user can no longer read it (its {scope} left this device)"),
            };
            evict(cx, &now_row, &reason, &outbox, &mut settled, &mut wb).await?;
            evicted += 1;
        }
        let kept: BTreeSet<String> = had.intersection(&now).cloned().collect();
        wb.meta.push(held_entry(&decl.name, &kept));
        // Strays are settled (evicted here, or members now: backfilled by this pull),
        // but for scope ids whose rows were still readable.
        wb.meta.push(strays_entry(&decl.name, &unsure, &BTreeSet::new()));
        wb.history.push(cx.history_line(
            "access",
            Some(&decl.name),
            settled.len() as u64,
            started,
            None,
            json!({"scope": m.scope_of(&decl.name), "lost": lost, "rows": settled.len()}),
        ));
        cx.store.apply(wb).await?;
        cx.events.changed(vec![decl.name.clone()], false);
    }
    Ok(evicted)
}

/// Which of these server ids of `decl` the user may still read.
async fn still_readable<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, ids: &[String]) -> Result<HashSet<String>, SyncError> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(IDS_PER_REQUEST) {
        let q = format!("select={k}&{k}=in.({})", enc(&quoted_list(chunk.iter().map(String::as_str))), k = enc(&decl.key));
        let rows = cx
            .authed(|t| {
                let q = q.clone();
                async move { cx.client.select(&decl.name, &q, &t).await }
            })
            .await?;
        out.extend(rows.iter().filter_map(|r| r.get(&decl.key)).map(id_text));
    }
    Ok(out)
}

/// A row this user may no longer read leaves the replica. Writes of it still waiting
/// are refused with `reason` (kept, with the row as a marker queries hide, for the app
/// to show, retry or discard), and so are unsent inserts of rows that reference it.
pub async fn evict<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    row: &LocalRow,
    reason: &str,
    outbox: &[OutboxEntry],
    settled: &mut HashSet<(String, String)>,
    wb: &mut WriteBatch,
) -> Result<(), SyncError> {
    let (table, local_id) = (row.table.as_str(), row.local_id.as_str());
    settled.insert((table.to_string(), local_id.to_string()));
    let entries: Vec<&OutboxEntry> = outbox.iter().filter(|e| e.table == table && e.local_id == local_id).collect();
    if entries.is_empty() {
        wb.delete_rows.push((table.to_string(), local_id.to_string()));
    } else {
        for e in entries.iter().filter(|e| e.rejected.is_none()) {
            let mut x = (*e).clone();
            x.rejected = Some(reason.to_string());
            x.in_flight = false;
            wb.put_outbox.push(x);
        }
        let mut marker = row.clone();
        marker.mirror = None;
        marker.overlay = None;
        marker.status = RowStatus::Rejected { reason: reason.to_string() };
        wb.put_rows.push(marker);
        wb.history.push(cx.history_line("reject", Some(table), 1, cx.now_ms(), Some(reason.to_string()), json!({"local_id": local_id})));
    }
    let why = format!("its parent {table}/{local_id} left this device: {reason}");
    reject_unsent_children(cx, table, local_id, &why, outbox, settled, wb).await
}

/// A `moved` tombstone: the row left the scope id named. A device that holds the row's
/// version from that move or later reads it where it went and keeps it; otherwise it
/// goes. Returns whether it went.
pub async fn moved_away<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    row: &LocalRow,
    tombstone: &Row,
    outbox: &[OutboxEntry],
    settled: &mut HashSet<(String, String)>,
    wb: &mut WriteBatch,
) -> Result<bool, SyncError> {
    let have = row.mirror.as_ref().and_then(sync_txid);
    if let (Some(have), Some(moved)) = (have, sync_txid(tombstone)) {
        if have >= moved {
            return Ok(false);
        }
    }
    let from = tombstone.get("scope_id").map(id_text).unwrap_or_default();
    let scope = tombstone.get("scope").and_then(Value::as_str).unwrap_or("scope");
    let reason = format!("it moved out of {scope} {from}, to where this user cannot read it");
    evict(cx, row, &reason, outbox, settled, wb).await?;
    Ok(true)
}

/// Why the server hid a shared row from a write (a PATCH or DELETE that matched
/// nothing, with no tombstone), or refused its insert: this user left its scope id (or
/// was never in it), if so.
pub async fn why_hidden<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, row: &LocalRow) -> Result<Option<String>, SyncError> {
    let Some(col) = &decl.shared_by else { return Ok(None) };
    let Some(id) = scope_id_of(cx.store, decl, col, row, &mut HashMap::new()).await? else { return Ok(None) };
    // Only a scope id the user was in: a row of the owner's own, never shared, is
    // refused for some other reason.
    if !held(cx.store, &decl.name).await?.contains(&id) {
        return Ok(None);
    }
    let m = memberships(cx, None).await?;
    Ok((!m.ids_for(&decl.name).contains(&id)).then(|| format!("this user is no longer a member of {} {id}", m.scope_of(&decl.name))))
}

/// Memberships that changed while a pull ran (`end`, asked with the `access_from` of
/// the answer the pull began with): the pull's pages went through RLS as it was at
/// each request, so for those scope ids the replica may lack rows (revoked, then
/// granted again: rows written meanwhile were hidden from the walk that passed them)
/// or hold rows the user cannot read (granted, then revoked). Neither held nor sure:
/// the next pull backfills them if the user is a member, else checks their rows.
pub fn changed_during(cx_schema: &crate::local::schema::Schema, end: &Memberships, held_now: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>) -> Vec<(String, Option<Value>)> {
    let mut out = vec![];
    for (table, (held_ids, stray_ids)) in held_now {
        let Ok(decl) = cx_schema.table(table) else { continue };
        let Some(scope) = end.tables.get(&decl.name).map(|t| t.scope.as_str()) else { continue };
        let ids: BTreeSet<String> = end.changed.iter().filter_map(|k| k.strip_prefix(scope)?.strip_prefix(':')).map(str::to_string).collect();
        if ids.is_empty() {
            continue;
        }
        let held: BTreeSet<String> = held_ids.difference(&ids).cloned().collect();
        let strays: BTreeSet<String> = stray_ids.union(&ids).cloned().collect();
        out.push(held_entry(table, &held));
        out.push((strays_key(table), Some(json!(strays))));
    }
    out
}

/// The filter on a shared table's new scope ids for a backfill: `col=in.(…)`, in
/// lists the server takes.
pub fn in_lists(col: &str, ids: &BTreeSet<String>) -> Vec<String> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.chunks(IDS_PER_REQUEST)
        .map(|c| format!("{}=in.({})", enc(col), enc(&quoted_list(c.iter().copied()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kits_answer_gives_each_tables_scope_ids() {
        let m: Memberships = serde_json::from_value(json!({
            "tables": {"agents": {"scope": "org", "column": "org_id", "owner_reads": true},
                       "notes": {"scope": "org", "column": "org_id", "owner_reads": false}},
            "scopes": {"org": ["o1", "o2"], "team": []}
        }))
        .unwrap();
        assert_eq!(m.ids_for("agents"), BTreeSet::from(["o1".to_string(), "o2".to_string()]));
        assert_eq!(m.ids_for("messages"), BTreeSet::new(), "an owner-only table has none");
        assert!(!m.tables["notes"].owner_reads);
    }

    #[test]
    fn backfill_filters_stay_within_the_servers_list_size() {
        let ids: BTreeSet<String> = (0..250).map(|i| format!("id{i:03}")).collect();
        let lists = in_lists("org_id", &ids);
        assert_eq!(lists.len(), 3);
        assert!(lists[0].starts_with("org_id=in.(") && lists[0].contains("id000") && !lists[0].contains("id100"));
    }
}
