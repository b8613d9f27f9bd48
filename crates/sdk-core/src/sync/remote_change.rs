//! One change pushed by Realtime, applied to the replica (DESIGN §2.6).
//!
//! It goes through the same path as a pulled row (mirror under any pending overlay,
//! references mapped to local ids, conflicts recorded), with one more rule: a change
//! older than what the device already holds is skipped. Versions are the kit's
//! `sync_txid` (the writing transaction); a change from the *same* transaction is
//! applied, because Realtime delivers a transaction's statements in order and the last
//! one is the row's final state. So the changes buffered during a catch-up can be
//! applied after the pull without ever regressing a row, and an echo of this device's
//! own write rewrites the mirror with identical values: nothing the app sees moves.
//!
//! Deletes arrive as inserts into `supasync_tombstones` (an owner-filtered DELETE event
//! carries only the key, so the server drops it before the filter; the tombstone is
//! how the delete reaches us), and as DELETE events where the server sends them. A
//! shared row that moved to a scope id this user is not in arrives as a `moved`
//! tombstone ([`super::scopes::moved_away`]).

use std::collections::BTreeSet;

use futures_util::FutureExt;

use serde_json::Value;

use super::context::SyncContext;
use super::cursor;
use super::error::SyncError;
use super::server_delete::server_deleted;
use super::scopes;
use super::references::{parents_of, ParentLocalIds};
use super::reject::may_have_children;
use super::server_rows::apply_server_row_read;
use super::tombstones::tombstone_target;
/// Where it always was for apps; the tombstones module owns it.
pub use super::tombstones::TOMBSTONES;
use crate::local::local_row::{id_text, sync_txid, Row};
use crate::local::schema::TableDecl;
use crate::local::local_row::LocalRow;
use crate::local::store::{Store, StoreError, WriteBatch};
use crate::net::realtime::PgChange;
use crate::net::transport::Http;

/// What became of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The replica changed.
    Row,
    /// A row was deleted.
    Deleted,
    /// Already known, older than the replica, or about nothing this device holds.
    Skipped,
}

/// Apply one Realtime change; returns what it did. A new row the [`Forecast`](super::forecast::Forecast) is sure
/// of is shown to live queries first, while the store is read and written.
pub async fn apply_change<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, c: &PgChange) -> Result<Applied, SyncError> {
    if c.errors.as_ref().is_some_and(|e| !e.is_null()) {
        tracing::warn!(target: "supasync::live", "skipped a {} change on {} that carries errors", c.kind, c.table);
        return Ok(Applied::Skipped);
    }
    let shown = show_early(cx, c);
    let mut written = None;
    let applied = apply(cx, c, &mut written).await;
    if let Some(local_id) = shown {
        settle(cx, &c.table, &local_id, written.as_deref());
    }
    applied
}

/// Announce the row a change inserts, if the [`Forecast`](super::forecast::Forecast) is sure of it; returns the
/// local id shown.
fn show_early<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, c: &PgChange) -> Option<String> {
    if c.kind != "INSERT" || c.table == TOMBSTONES || c.record.is_empty() {
        return None;
    }
    let decl = cx.schema.table(&c.table).ok()?;
    if cx.schema.is_referenced(&decl.name) {
        return None;
    }
    let local_id = decl.row_key(&c.record)?;
    let server_id = c.record.get(&decl.key).filter(|v| !v.is_null())?;
    if cx.graveyard.holds_change(&decl.name, Some(&local_id), Some(server_id)) {
        return None;
    }
    // Who is signed in, as held in memory (no network, no store read, no wait: the
    // forecast is given up if the session is being changed).
    let mine = match &decl.shared_by {
        Some(_) => c.record.get(&decl.owner).map(id_text).is_some_and(|o| cx.sessions.user_id().now_or_never().flatten().as_deref() == Some(o.as_str())),
        None => false,
    };
    let row = cx.forecast.new_row(decl, &c.record, &local_id, server_id, mine)?;
    cx.events.arriving(&decl.name, vec![row]);
    Some(local_id)
}

/// After a change whose row was shown early is applied: unless the write announced
/// that very row (`written`: the local ids it stored), live queries read again, so a
/// forecast that was wrong (or a change skipped or failed) is corrected at once.
fn settle<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, table: &str, shown: &str, written: Option<&[String]>) {
    if !written.is_some_and(|ids| ids.iter().any(|l| l == shown)) {
        cx.events.changed(vec![table.to_string()], false);
    }
}

/// [`apply_change`] itself; `written`: the local ids of the rows it stored and
/// announced with their contents.
async fn apply<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, c: &PgChange, written: &mut Option<Vec<String>>) -> Result<Applied, SyncError> {
    if let Some(applied) = apply_new_row(cx, c, written).await? {
        return Ok(applied);
    }
    let _w = cx.writer.lock().await;
    let applied = if c.table == TOMBSTONES {
        match (c.kind.as_str(), c.record.get("table_name").and_then(Value::as_str)) {
            ("INSERT", Some(table)) => match cx.schema.table(table) {
                Ok(decl) => {
                    let decl = decl.clone();
                    delete_locally(cx, &decl, &c.record).await?
                }
                Err(_) => Applied::Skipped,
            },
            _ => Applied::Skipped,
        }
    } else {
        let Ok(decl) = cx.schema.table(&c.table) else { return Ok(Applied::Skipped) };
        let decl = decl.clone();
        match c.kind.as_str() {
            "DELETE" => {
                let mut t = serde_json::Map::new();
                if let Some(id) = c.old_record.get(&decl.key) {
                    t.insert("row_id".into(), Value::String(id_text(id)));
                }
                if let Some(l) = c.old_record.get(&decl.local_id) {
                    t.insert("local_id".into(), l.clone());
                }
                delete_locally(cx, &decl, &t).await?
            }
            "INSERT" | "UPDATE" if !c.record.is_empty() => {
                let read = read_for(cx, &decl, c).await?;
                let held = read.by_local.as_ref().or(read.by_server.as_ref());
                let mine = held.and_then(|r| sync_txid(r.mirror.as_ref()?));
                match (mine, sync_txid(&c.record)) {
                    // A change from before the row's delete (queued during a
                    // catch-up, or in flight): deleted rows never come back.
                    _ if stale(cx, &decl, c, &read).await? => Applied::Skipped,
                    (Some(have), Some(got)) if got < have => Applied::Skipped,
                    _ => {
                        let rows = apply_server_row_read(cx, &decl, c.record.clone(), read.by_local, read.parents, false).await?;
                        // Live queries of this table update from the row itself.
                        *written = Some(rows.iter().map(|r| r.local_id.clone()).collect());
                        cx.events.changed_rows(&decl.name, false, rows);
                        return Ok(Applied::Row);
                    }
                }
            }
            _ => Applied::Skipped,
        }
    };
    if applied != Applied::Skipped {
        let table = c.record.get("table_name").and_then(Value::as_str).filter(|_| c.table == TOMBSTONES).unwrap_or(&c.table);
        cx.events.changed(vec![table.to_string()], false);
    }
    Ok(applied)
}

/// What applying a change to a row may need, read at once (on IndexedDB each read is a
/// round trip, and a change's latency is theirs added up): the row by its local id and
/// by its server id, whether the table's last pull is past it, the local ids of the
/// rows it references, and the table's held scope ids if it is shared.
struct ReadFor {
    by_local: Option<LocalRow>,
    by_server: Option<LocalRow>,
    pulled: bool,
    parents: ParentLocalIds,
    scopes: Option<BTreeSet<String>>,
}

async fn read_for<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, c: &PgChange) -> Result<ReadFor, SyncError> {
    let local = decl.row_key(&c.record);
    let generation = cx.forecast.scopes_generation();
    let (by_local, by_server, pulled, parents, scopes) = futures_util::join!(
        async {
            match &local {
                Some(l) => cx.store.get_row(&decl.name, l).await,
                None => Ok(None),
            }
        },
        async {
            match c.record.get(&decl.key) {
                Some(id) => cx.store.find_by_server_id(&decl.name, id).await,
                None => Ok(None),
            }
        },
        pulled_past(cx, &decl.name, sync_txid(&c.record)),
        parents_of(cx.schema, cx.store, &decl.name, &c.record),
        async {
            match &decl.shared_by {
                Some(_) => scopes::held(cx.store, &decl.name).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let (parents, scopes) = (parents?, scopes?);
    cx.forecast.learn_parents(&parents);
    if let Some(held) = &scopes {
        cx.forecast.learn_scopes(&decl.name, held, generation);
    }
    Ok(ReadFor { by_local: by_local?, by_server: by_server?, pulled: pulled?, parents, scopes })
}

/// Whether the change must not be applied: about a row this device does not hold that
/// was deleted since (a tombstone met, or the last pull is past it), or outside the
/// scope ids this replica holds.
async fn stale<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, c: &PgChange, read: &ReadFor) -> Result<bool, SyncError> {
    let held = read.by_local.is_some() || read.by_server.is_some();
    let gone = !held && (cx.graveyard.holds_change(&decl.name, decl.row_key(&c.record).as_deref(), c.record.get(&decl.key)) || read.pulled);
    Ok(gone || outside_held_scopes(cx, decl, &c.record, read.scopes.as_ref()).await?)
}

/// A server row no one on this device holds yet, of a table no other table references
/// (no child waits for its server id): written as a new row under this process's
/// writer lock only, without the lock other processes (tabs) share, whose round trip
/// would be most of a change's latency in a browser. That is safe for the reason a
/// fresh local insert is (see [`crate::local::write_lock`]): no other process knows
/// the row, so none can read it and write it back; and the batch only adds it, failing
/// if it exists after all. `None`: not such a change, or the row turned up: the caller
/// applies it under the whole lock.
async fn apply_new_row<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, c: &PgChange, written: &mut Option<Vec<String>>) -> Result<Option<Applied>, SyncError> {
    if c.table == TOMBSTONES || c.kind != "INSERT" || c.record.is_empty() {
        return Ok(None);
    }
    let Ok(decl) = cx.schema.table(&c.table) else { return Ok(None) };
    if cx.schema.is_referenced(&decl.name) {
        return Ok(None);
    }
    let _w = cx.writer.lock_new_server_row().await;
    let read = read_for(cx, decl, c).await?;
    if read.by_local.is_some() || read.by_server.is_some() {
        return Ok(None);
    }
    if stale(cx, decl, c, &read).await? {
        return Ok(Some(Applied::Skipped));
    }
    match apply_server_row_read(cx, decl, c.record.clone(), None, read.parents, true).await {
        Ok(rows) => {
            *written = Some(rows.iter().map(|r| r.local_id.clone()).collect());
            cx.events.changed_rows(&decl.name, false, rows);
            Ok(Some(Applied::Row))
        }
        Err(SyncError::Store(StoreError::Exists(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a change of transaction `txid` to a row this device does not hold is older
/// than the last pull of `table`, which would have brought the row had it still
/// existed then (transactions still running at that pull excepted): so the row was
/// deleted since, or written again later (and that later change comes on its own).
async fn pulled_past<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, table: &str, txid: Option<i64>) -> Result<bool, SyncError> {
    let Some(t) = txid else { return Ok(false) };
    let cur = cursor::read(cx.store, &format!("cursor:{table}")).await?;
    cx.forecast.cursor(table, &cur);
    Ok(t < cur.next_txid && !cur.pending.contains(&t))
}

/// Whether a change to a shared row belongs to a scope id this replica does not hold
/// (and to a row this user does not own): it came through a listener from before the
/// scope id left the replica (queued, or heard before the channel joined again with
/// the new ids). Applying it would bring back a row the user may no longer read; if the
/// user is a member again, the pull that the membership line starts brings the row.
/// `held`: the table's held scope ids, read already (`None` for a table not shared).
async fn outside_held_scopes<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, record: &Row, held: Option<&BTreeSet<String>>) -> Result<bool, SyncError> {
    let (Some(col), Some(held)) = (&decl.shared_by, held) else { return Ok(false) };
    let Some(id) = record.get(col).filter(|v| !v.is_null()).map(id_text) else { return Ok(false) };
    if held.contains(&id) {
        return Ok(false);
    }
    let me = cx.session().await?.user_id;
    Ok(record.get(&decl.owner).map(id_text).as_deref() != Some(me.as_str()))
}

/// Remove the row a tombstone names, with any writes of it still waiting (the
/// server's delete wins, as in a pull; see [`crate::sync::server_delete`]).
async fn delete_locally<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, tombstone: &Row) -> Result<Applied, SyncError> {
    // A shared row moved to another scope id: not a delete (it may come back).
    let moved = tombstone.get("kind").and_then(Value::as_str) == Some("moved");
    if !moved {
        cx.graveyard.bury_tombstone(&decl.name, tombstone);
    }
    let Some(r) = tombstone_target(cx.store, decl, tombstone).await? else { return Ok(Applied::Skipped) };
    let mut wb = WriteBatch::default();
    // A row no other table references has no children to settle: its own waiting
    // writes are all a server delete needs (not every waiting write, read and decoded).
    let outbox = if moved || may_have_children(cx.schema, &decl.name) { cx.store.outbox().await? } else { cx.store.row_outbox(&decl.name, &r.local_id).await? };
    if moved {
        if !scopes::moved_away(cx, &r, tombstone, &outbox, &mut Default::default(), &mut wb).await? {
            return Ok(Applied::Skipped);
        }
    } else {
        server_deleted(cx, &r, "deleted on the server", &outbox, &mut Default::default(), &mut wb).await?;
    }
    cx.store.apply(wb).await?;
    Ok(Applied::Deleted)
}
