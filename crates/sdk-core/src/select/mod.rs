//! Local queries in PostgREST's own words: `messages?select=*,conversations(title)&
//! role=eq.user&order=timestamp.desc&limit=20`, answered from the replica.
//!
//! Apps already know this language through supabase-js; porting a screen should mean
//! changing `supabase.from(…)` to `db.from(…)` and getting the answer from the device,
//! offline, at once. The query string is parsed by the same parser the dev server
//! uses (`supasync-query-syntax`), checked against the schema ([`plan`]: tables,
//! columns, the references embeds join along), then answered from the store ([`run`])
//! with PostgreSQL's semantics ([`filter`], [`value`]): three-valued filters, `NULL`s
//! last ascending, byte-order text, integer sums. Results have PostgREST's shape
//! (objects for to-one embeds, arrays for to-many) and refusals its codes
//! ([`SelectError`]). The differential test (`crates/sdk-native/tests/select_oracle.rs`)
//! runs generated queries both here and through PostgREST over the same data.
//!
//! What differs, by design: references hold local ids (the row's key on every
//! device), not server ids, so a filter on a reference column takes a local id.

mod builder;
pub mod error;
mod filter;
pub mod plan;
mod read;
mod run;
pub mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod patch_tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use supasync_query_syntax::{parse_query, QueryParams};

pub use builder::{Order, SelectBuilder};
pub use error::SelectError;
pub use run::PageRows;

use crate::local::local_row::{LocalRow, RowStatus};
use crate::local::schema::Schema;
use crate::local::store::{Store, StoreError};

/// What a local query can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query is not one the replica answers (PostgREST's error shape).
    #[error(transparent)]
    Invalid(#[from] SelectError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many rows the caller wants: PostgREST's array, `single()` or `maybeSingle()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cardinality {
    #[default]
    Many,
    /// Exactly one row, else `PGRST116`.
    One,
    /// At most one row, else `PGRST116`.
    MaybeOne,
}

/// What PostgREST takes in headers rather than the URL: `Prefer: count=exact` and the
/// single-object `Accept`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectOptions {
    /// Also count every row the filters keep, before `limit` and `offset`.
    pub count: bool,
    pub cardinality: Cardinality,
}

/// A local query: a table and PostgREST's query parameters.
#[derive(Debug, Clone)]
pub struct SelectRequest {
    pub table: String,
    pub params: QueryParams,
    pub options: SelectOptions,
}

impl SelectRequest {
    /// `table?select=…&col=op.value&order=…&limit=…`, as in a PostgREST URL (the part
    /// after `/rest/v1/`).
    pub fn parse(url: &str) -> Result<SelectRequest, SelectError> {
        let (table, query) = url.split_once('?').unwrap_or((url, ""));
        let table = percent_encoding::percent_decode_str(table.trim().trim_matches('/')).decode_utf8_lossy().into_owned();
        Ok(SelectRequest { table, params: parse_query(query, false)?, options: SelectOptions::default() })
    }

    /// Builder: the header-borne options.
    pub fn with_options(mut self, options: SelectOptions) -> SelectRequest {
        self.options = options;
        self
    }
}

/// One row of an answer: PostgREST's object, and for a row of the table itself (not
/// an aggregate) its local id and sync status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectedRow {
    pub data: Value,
    pub local_id: Option<String>,
    pub status: Option<RowStatus>,
}

/// An answer: the rows, and the count when asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectResult {
    pub rows: Vec<SelectedRow>,
    pub count: Option<u64>,
}

impl SelectResult {
    /// The data as PostgREST returns it: an array, or for `single()`/`maybeSingle()`
    /// the one object (or null).
    pub fn data(&self, cardinality: Cardinality) -> Value {
        match cardinality {
            Cardinality::Many => Value::Array(self.rows.iter().map(|r| r.data.clone()).collect()),
            _ => self.rows.first().map(|r| r.data.clone()).unwrap_or(Value::Null),
        }
    }
}

impl SelectResult {
    /// The answer as every binding hands it over: `{"data": …, "count": n|null,
    /// "sync": [{"local_id", "status"}, …]}`, `data` in PostgREST's shape and `sync`
    /// the sync state of each row of `data` (empty for aggregates).
    pub fn to_json(&self, cardinality: Cardinality) -> Value {
        let sync: Vec<Value> = self
            .rows
            .iter()
            .filter_map(|r| Some(serde_json::json!({"local_id": r.local_id.as_ref()?, "status": r.status})))
            .collect();
        serde_json::json!({"data": self.data(cardinality), "count": self.count, "sync": sync})
    }
}

/// The tables a query reads (its own and every embed's): a change to any other
/// cannot change its answer.
pub fn tables_read(schema: &Schema, req: &SelectRequest) -> Result<std::collections::BTreeSet<String>, SelectError> {
    fn walk(level: &plan::Level<'_>, out: &mut std::collections::BTreeSet<String>) {
        out.insert(level.decl.name.clone());
        for item in &level.items {
            if let plan::Item::Embed(e) = item {
                walk(&e.level, out);
            }
        }
    }
    let level = plan::plan(schema, &req.table, &req.params)?;
    let mut out = std::collections::BTreeSet::new();
    walk(&level, &mut out);
    Ok(out)
}

/// Answer a query from `store`.
pub async fn select<S: Store + ?Sized>(schema: &Schema, store: &S, req: &SelectRequest) -> Result<SelectResult, QueryError> {
    let level = plan::plan(schema, &req.table, &req.params)?;
    run::run(schema, store, &level, &req.options).await
}

/// [`select`], and the rows on the page when the answer can later be updated from
/// changed rows alone ([`select_patched`]): one table, no embed or aggregate, no count
/// or offset.
pub async fn select_keeping<S: Store + ?Sized>(schema: &Schema, store: &S, req: &SelectRequest) -> Result<(SelectResult, Option<PageRows>), QueryError> {
    let level = plan::plan(schema, &req.table, &req.params)?;
    run::run_keeping(schema, store, &level, &req.options).await
}

/// The answer after `changed` rows were written, from the last page alone (no store
/// read); `None` when only the store can tell (see [`run::patch`]).
pub fn select_patched(schema: &Schema, req: &SelectRequest, last: &PageRows, changed: &[LocalRow]) -> Option<(SelectResult, PageRows)> {
    let level = plan::plan(schema, &req.table, &req.params).ok()?;
    run::patch(schema, &level, &req.options, last, changed)
}
