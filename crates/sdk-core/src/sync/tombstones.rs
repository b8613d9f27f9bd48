//! The server's record of deletes. The SQL kit writes a tombstone for every deleted
//! row (`supasync_tombstones`: table, row id as text, local id, the deleting
//! transaction), and, for a shared row that moved to another scope id, one of kind
//! `moved` (see [`super::scopes`]). Pulls walk them, Realtime delivers them, and a push
//! asks for them when a write matched nothing: this module asks, and finds the local
//! row one names.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::context::SyncContext;
use super::error::SyncError;
use crate::local::local_row::{id_text, LocalRow, Row};
use crate::local::schema::TableDecl;
use crate::local::store::Store;
use crate::net::client::{enc, quoted_list, RequestError};
use crate::net::transport::Http;

/// The table the SQL kit writes tombstones to.
pub const TOMBSTONES: &str = "supasync_tombstones";

/// What a tombstone lookup is keyed by.
pub enum TombstoneKey<'a> {
    /// Server ids (as text), for a PATCH or DELETE that matched nothing.
    RowIds(&'a [String]),
    /// Local ids, for inserts the kit skipped.
    LocalIds(&'a [String]),
}

/// Which of these rows of `table` have a tombstone on the server (the ids asked for,
/// row ids or local ids).
pub async fn tombstones_of<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, table: &str, key: TombstoneKey<'_>) -> Result<HashSet<String>, RequestError> {
    let (col, ids) = match key {
        TombstoneKey::RowIds(ids) => ("row_id", ids),
        TombstoneKey::LocalIds(ids) => ("local_id", ids),
    };
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let list = quoted_list(ids.iter().map(String::as_str));
    // A shared row that moved to another scope id leaves a tombstone too; it is not a delete.
    let deleted = match cx.schema.table(table) {
        Ok(d) if d.shared_by.is_some() => "&kind=eq.deleted",
        _ => "",
    };
    let q = format!("select={col}&table_name=eq.{}&{col}=in.({}){deleted}", enc(table), enc(&list));
    let rows = cx
        .authed(|t| {
            let q = q.clone();
            async move { cx.client.select(TOMBSTONES, &q, &t).await }
        })
        .await?;
    rows.iter()
        .map(|r| match r.get(col).and_then(Value::as_str) {
            Some(id) => Ok(id.to_string()),
            None => Err(RequestError::BadAnswer(format!("a tombstone without `{col}`: {r}"))),
        })
        .collect()
}

/// The local row a tombstone (`local_id`, `row_id`) names, if this device has it.
pub async fn tombstone_target<S: Store>(store: &S, decl: &TableDecl, t: &Row) -> Result<Option<LocalRow>, SyncError> {
    let row_id = t.get("row_id").and_then(Value::as_str);
    if let Some(l) = t.get("local_id").and_then(Value::as_str) {
        if let Some(r) = store.get_row(&decl.name, l).await? {
            // The same local id may name another user's row here (local ids are unique
            // per owner only): then the server id decides.
            let other = matches!((&r.server_id, row_id), (Some(held), Some(id)) if id_text(held) != id);
            if !other {
                return Ok(Some(r));
            }
        }
    }
    match row_id {
        Some(id) => find_by_server_text(store, decl, id).await,
        None => Ok(None),
    }
}

/// A row by its server id given as text (tombstones store ids as text).
async fn find_by_server_text<S: Store>(store: &S, decl: &TableDecl, id: &str) -> Result<Option<LocalRow>, SyncError> {
    if let Some(r) = store.find_by_server_id(&decl.name, &Value::String(id.into())).await? {
        return Ok(Some(r));
    }
    if let Ok(n) = id.parse::<i64>() {
        return Ok(store.find_by_server_id(&decl.name, &json!(n)).await?);
    }
    Ok(None)
}
