//! Server rows into the replica, the one path for rows a pull or a Realtime change
//! brings: each becomes the mirror under any pending local change (references mapped
//! back to local ids), values this device pushed that another write overwrote go to
//! the history as conflicts (last write wins), a row older (`sync_txid`) than the one
//! held is skipped, and children waiting for a parent's server id learn it. A page of
//! a table that held nothing (a restore) is written as new rows without lookups.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::context::SyncContext;
use super::error::SyncError;
use super::references::{adopt_children, to_local, ParentLocalIds};
use crate::local::local_row::{id_text, server_key, sync_txid, LocalRow, Overlay, Row, RowStatus};
use crate::local::index::IndexDef;
use crate::local::schema::TableDecl;
use crate::local::new_row::{NewRow, RowText};
use crate::local::store::{Applying, Store, WriteBatch};
use crate::net::client::RequestError;
use crate::net::transport::Http;

/// Whether a page's rows may already be on this device.
#[derive(Clone, Copy)]
pub enum Held {
    /// Look them up (one read for the page).
    LookUp,
    /// The table held nothing when the walk began, and a walk meets each row once.
    NoneYet,
}

/// Apply server rows in one batch; returns how many.
pub async fn apply_server_rows<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, rows: Vec<Row>, wb: WriteBatch) -> Result<usize, SyncError> {
    apply_pulled(cx, decl, rows, wb, Held::LookUp).await
}

pub async fn apply_pulled<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, rows: Vec<Row>, wb: WriteBatch, held: Held) -> Result<usize, SyncError> {
    if let Held::NoneYet = held {
        let (n, stored, _) = queue_restored(cx, decl, rows, None, wb, &mut ParentLocalIds::new()).await?;
        stored.await?;
        return Ok(n);
    }
    // Every row of the page this device already holds, in one read.
    let keys: Vec<String> = rows.iter().filter_map(|r| decl.row_key(r)).collect();
    let held = cx.store.get_rows(&decl.name, &keys).await?.into_iter().flatten().map(|r| (r.local_id.clone(), r)).collect();
    Ok(apply_looked_up(cx, decl, rows, wb, held, ParentLocalIds::new(), None).await?.0)
}

/// Whether a held row's local change is on the server although nothing waits in the
/// outbox for it, so the change was confirmed without the row hearing of it: the server
/// row holds every value the change set, and no entry of the row is left. That is a
/// store that kept only part of a confirmation's batch (WebKitGTK did, for a tab closed
/// mid-commit) or a confirmation another process wrote over (tabs working alone,
/// without Web Locks, both writing one row). Left as it was, the row would say
/// "pending" for good with nothing to push it. Checked only for rows with a change
/// (the outbox is read for those alone), and never for a refused one, which keeps its
/// entry.
async fn settled_unheard<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, r: &LocalRow, server: &Row) -> Result<bool, SyncError> {
    let Some(Overlay::Fields { fields }) = &r.overlay else { return Ok(false) };
    if matches!(r.status, RowStatus::Rejected { .. }) || !fields.iter().all(|(k, v)| server.get(k) == Some(v)) {
        return Ok(false);
    }
    Ok(cx.store.last_outbox_entry(&decl.name, &r.local_id).await?.is_none())
}

/// One server row whose local copy (under its local id: `held`, `None` if there is
/// none) and parents' local ids were read already (a Realtime change reads them all
/// at once, with what it checks first). Returns the rows of `decl` written, as the
/// store now holds them.
/// With `only_new`, the row is written as a new one: the store refuses the batch
/// (`StoreError::Exists`) if it holds the row after all.
/// Live queries see the row as soon as the batch is built, while the store writes it
/// ([`crate::local::events::EngineEvent::Arriving`]); the caller announces it stored.
pub async fn apply_server_row_read<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, row: Row, held: Option<LocalRow>, parents: ParentLocalIds, only_new: bool) -> Result<Vec<LocalRow>, SyncError> {
    let held = held.map(|r| (r.local_id.clone(), r)).into_iter().collect();
    Ok(apply_looked_up(cx, decl, vec![row], WriteBatch::default(), held, parents, Some(only_new)).await?.1)
}

/// Server rows onto what the device holds of them (`held`, by local id), with the
/// parents' local ids known so far (`parents`, filled as they are looked up). Returns
/// how many, and (with `keep`) a copy of the rows of `decl` written; `keep` says too
/// whether they go to the store as new rows only (see [`apply_server_row_read`]).
async fn apply_looked_up<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    decl: &TableDecl,
    rows: Vec<Row>,
    mut wb: WriteBatch,
    mut held: std::collections::HashMap<String, LocalRow>,
    mut parents: ParentLocalIds,
    keep: Option<bool>,
) -> Result<(usize, Vec<LocalRow>), SyncError> {
    let n = rows.len();
    let mut seen: std::collections::HashMap<String, LocalRow> = std::collections::HashMap::new();
    // Rows whose server id this device learns now (children may wait for it).
    let mut learned: Vec<(Value, String)> = vec![];
    // Who is signed in, asked only if a row's local id meets a row of this device's
    // that never reached the server.
    let mut me: Option<String> = None;
    for server in rows {
        let server_id = server.get(&decl.key).cloned();
        let Some(mut local_id) = decl.row_key(&server) else { continue };
        let holder = seen.get(&local_id).or_else(|| held.get(&local_id));
        if let (Some(h), Some(sid)) = (holder, &server_id) {
            let foreign = match &h.server_id {
                Some(known) => known != sid,
                // Not pushed yet: the server row is that insert's only if this user owns it.
                None => {
                    if me.is_none() {
                        me = Some(cx.session().await?.user_id);
                    }
                    server.get(&decl.owner).map(id_text).is_some_and(|o| Some(o) != me)
                }
            };
            if foreign {
                // Another user's row under a local id this device holds for a different
                // row (local ids are unique per owner only): keyed by its server id.
                local_id = server_key(&id_text(sid));
                if !seen.contains_key(&local_id) && !held.contains_key(&local_id) {
                    if let Some(r) = cx.store.get_row(&decl.name, &local_id).await? {
                        held.insert(local_id.clone(), r);
                    }
                }
            }
        }
        // Older than the version this device holds (a push's answer applied while
        // this page was on its way): the newer one stays.
        let holds = seen.get(&local_id).or_else(|| held.get(&local_id));
        if let (Some(have), Some(got)) = (holds.and_then(|r| sync_txid(r.mirror.as_ref()?)), sync_txid(&server)) {
            if got < have {
                continue;
            }
        }
        let mirror = to_local(cx.schema, cx.store, &decl.name, server, &Row::new(), &mut parents).await?;
        let existing = match seen.remove(&local_id) {
            Some(r) => Some(r),
            None => held.remove(&local_id),
        };
        if let (None | Some(LocalRow { server_id: None, .. }), Some(sid)) = (&existing, &server_id) {
            learned.push((sid.clone(), local_id.clone()));
        }
        let row = match existing {
            Some(mut r) => {
                if let Some(mine) = r.last_pushed.as_mut() {
                    let overwritten: Vec<(String, Value, Value)> = mine
                        .iter()
                        .filter_map(|(k, v)| {
                            let now = mirror.get(k)?;
                            (now != v).then(|| (k.clone(), v.clone(), now.clone()))
                        })
                        .collect();
                    for (field, was, by) in overwritten {
                        mine.remove(&field);
                        wb.history.push(cx.history_line(
                            "conflict",
                            Some(&decl.name),
                            1,
                            cx.now_ms(),
                            None,
                            json!({"local_id": local_id, "field": field, "overwritten": was, "by": by,
                                   "rule": "last write wins"}),
                        ));
                    }
                }
                if matches!(r.status, RowStatus::Rejected { .. }) && r.overlay.is_none() {
                    r.status = RowStatus::Synced;
                }
                if settled_unheard(cx, decl, &r, &mirror).await? {
                    r.overlay = None;
                }
                r.server_id = server_id;
                r.mirror = Some(mirror);
                if r.overlay.is_none() {
                    r.status = RowStatus::Synced;
                }
                r
            }
            None => LocalRow {
                table: decl.name.clone(),
                local_id: local_id.clone(),
                server_id,
                mirror: Some(mirror),
                overlay: None::<Overlay>,
                status: RowStatus::Synced,
                last_pushed: None,
            },
        };
        seen.insert(local_id, row);
    }
    // In key order: neighbours in the store's B-trees are written together.
    let mut rows: Vec<LocalRow> = seen.into_values().collect();
    rows.sort_by(|a, b| a.local_id.cmp(&b.local_id));
    let kept = if keep.is_some() { rows.clone() } else { vec![] };
    if keep == Some(true) {
        wb.new_rows.extend(rows.into_iter().map(NewRow::from));
    } else {
        wb.put_rows.extend(rows);
    }
    adopt_children(cx.schema, cx.store, &decl.name, &learned, &mut wb).await?;
    if cx.schema.is_referenced(&decl.name) {
        cx.forecast.learn_ids(&decl.name, &learned);
    }
    if keep.is_some() {
        // One row from Realtime: live queries show it while the store writes it
        // (and answer before the write is even begun).
        cx.events.arriving(&decl.name, kept.clone());
        crate::platform::yield_now::let_woken_tasks_run().await;
    }
    if let Err(e) = cx.store.apply(wb).await {
        if keep.is_some() {
            // Not stored after all: what was shown goes back to what the store holds.
            cx.events.changed(vec![decl.name.clone()], false);
        }
        return Err(e.into());
    }
    Ok((n, kept))
}

/// The columns of a restored row that are built (the rest stays text): what the pull
/// reads (key, local id, owner, sharing column, references) and what the store files
/// the row by (the columns of the table's indexes, `indexes`).
pub fn restored_columns(decl: &TableDecl, indexes: &[IndexDef]) -> BTreeSet<String> {
    let mut cols: BTreeSet<String> = [&decl.key, &decl.local_id, &decl.owner].into_iter().cloned().collect();
    cols.extend(decl.shared_by.iter().cloned());
    cols.extend(decl.references.keys().cloned());
    cols.extend(indexes.iter().flat_map(|i| i.parts().iter().map(|c| c.name.clone())));
    cols
}

/// A page of a table that held nothing when the walk began (a restore): every row
/// is new, so none is looked up or merged, and the page goes to the store as new
/// rows ([`WriteBatch::new_rows`]), which it writes without looking for old ones.
/// Returns once the store has the page ([`Store::apply_queued`]), with how many rows
/// and the future of the page stored (`StoreError::Exists` if a key was taken after
/// all: then nothing of it is). `parents`: the parents' local ids found so far, which a
/// walk keeps from page to page (a row's local id never changes; one not found is
/// looked up again, it may have arrived since). A read here would wait for the pages
/// still committing; with them known, a page of messages reads nothing. Also returns,
/// for a table others reference, the page's (server id, local id) pairs as stored.
///
/// `texts`: the rows as the server wrote them, when `rows` holds only the columns
/// [`restored_columns`] names of each (see [`NewRow::mirror_json`]): each row is then
/// stored as its text, its references rewritten.
pub async fn queue_restored<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, decl: &TableDecl, rows: Vec<Row>, texts: Option<&[RowText<'_>]>, mut wb: WriteBatch, parents: &mut ParentLocalIds) -> Result<(usize, Applying, Vec<(Value, String)>), SyncError> {
    let n = rows.len();
    parents.retain(|_, local| local.is_some());
    let mut out: Vec<NewRow> = Vec::with_capacity(n);
    for (i, server) in rows.into_iter().enumerate() {
        let server_id = server.get(&decl.key).cloned();
        let Some(local_id) = decl.row_key(&server) else { continue };
        let mirror = to_local(cx.schema, cx.store, &decl.name, server, &Row::new(), parents).await?;
        let mirror_json = match texts.and_then(|t| t.get(i)) {
            Some(text) => Some(text.write(&mirror, |c| decl.references.contains_key(c)).map_err(|e| RequestError::BadAnswer(format!("a row of `{}`: {e}", decl.name)))?),
            None => None,
        };
        let row = LocalRow {
            table: decl.name.clone(),
            local_id,
            server_id,
            mirror: Some(mirror),
            overlay: None,
            status: RowStatus::Synced,
            last_pushed: None,
        };
        out.push(NewRow { row, mirror_json });
    }
    // In key order: neighbours in the store's B-trees are written together. (A walk
    // by local id brings them in that order already; the sort is stable.)
    out.sort_by(|a, b| a.row.local_id.cmp(&b.row.local_id));
    // A local id met twice in one page (two users' rows: local ids are unique per
    // owner only): the second is keyed by its server id. (Across pages, the store
    // refuses the page and the pull merges it through the look-up path instead.)
    // Sorted, rows of one local id are neighbours, in the page's order.
    let mut rekeyed = false;
    let mut first = 0;
    for i in 1..out.len() {
        if out[i].row.local_id != out[first].row.local_id {
            first = i;
        } else if out[i].row.server_id != out[first].row.server_id {
            if let Some(sid) = &out[i].row.server_id {
                out[i].row.local_id = server_key(&id_text(sid));
                rekeyed = true;
            }
        }
    }
    if rekeyed {
        out.sort_by(|a, b| a.row.local_id.cmp(&b.row.local_id));
    }
    out.dedup_by(|later, earlier| earlier.row.local_id == later.row.local_id);
    // The pairs as stored (a row keyed by its server id above is learned so).
    let learned: Vec<(Value, String)> = out.iter().filter_map(|r| Some((r.row.server_id.clone()?, r.row.local_id.clone()))).collect();
    wb.new_rows.extend(out);
    adopt_children(cx.schema, cx.store, &decl.name, &learned, &mut wb).await?;
    let referenced = cx.schema.is_referenced(&decl.name);
    if referenced {
        cx.forecast.learn_ids(&decl.name, &learned);
    }
    let stored = cx.store.apply_queued(wb).await?;
    Ok((n, stored, if referenced { learned } else { vec![] }))
}
