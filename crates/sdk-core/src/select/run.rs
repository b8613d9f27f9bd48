//! Answering a planned query from the replica, in two steps.
//!
//! First the rows are read (async, from the store): the top table's candidates
//! ([`read`]: the local id, an index read in order up to the page, an index's rows
//! for an equality, else a scan),
//! then, level by level, the rows each embed joins, read once for all the rows above
//! them, not once per row. Then the answer is built from them without further reads
//! (plain code): filters, `!inner`, grouping and aggregates, order, page, and the
//! output objects. Reading first keeps the store's async calls out of a recursive
//! walk, and lets each embed read in one batch.
//!
//! Rows are what the app sees (overlay over mirror): an optimistic insert is counted
//! and embedded at once, and leaves the answer when it is rolled back. References
//! hold local ids, so joins work for rows the server has not confirmed yet.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use supasync_query_syntax::{Aggregate, Nulls, OrderTerm};

use crate::local::index::KeyRange;
use crate::local::local_row::{LocalRow, Row, RowStatus};
use crate::local::schema::Schema;
use crate::local::store::Store;
use crate::select::error::SelectError;
use crate::select::filter;
use crate::select::plan::{Embed, Item, Join, Level};
use crate::select::read;
use crate::select::value;
use crate::select::{Cardinality, QueryError, SelectOptions, SelectResult, SelectedRow};

/// A row as queries see it.
#[derive(Debug, Clone)]
struct Rec {
    key: String,
    row: Row,
    status: RowStatus,
}

fn rec(schema: &Schema, r: LocalRow) -> Option<Rec> {
    let decl = schema.table(&r.table).ok()?;
    Some(Rec { row: r.visible(&decl.local_id)?, key: r.local_id, status: r.status })
}

/// An embed's rows, by the value they join on (the embedded row's key for a to-one
/// embed, its reference column for a to-many one).
type Related = HashMap<String, Vec<Rec>>;

/// Rows read for each embed of the plan (keyed by the embed's address in the plan).
#[derive(Default)]
struct Fetched {
    by_embed: HashMap<usize, Related>,
    /// Embeds answered by counting index entries ([`counted_only`]): parent key → count.
    counts: HashMap<usize, HashMap<String, u64>>,
}

/// `rel(count)` and nothing else (no filter, page, `!inner` or spread): its answer is
/// a number per parent, which an index on the join column gives without reading a
/// row. The key it is shown under, if so.
fn counted_only<'e>(e: &'e Embed<'_>) -> Option<&'e str> {
    if e.inner || e.spread || e.hidden || !e.level.conds.is_empty() || e.level.limit.is_some() || e.level.offset > 0 {
        return None;
    }
    match e.level.items.as_slice() {
        [Item::Aggregate { key, func: Aggregate::Count, column: None }] => Some(key),
        _ => None,
    }
}

fn embed_id(e: &Embed<'_>) -> usize {
    e as *const Embed<'_> as usize
}

/// Up to this many parents, a to-many embed through an indexed column is read per
/// parent (a page of 50 conversations reads their messages, not every message);
/// above it, the embedded table is read once.
const PER_PARENT_READS: usize = 64;

/// The rows on the page of a simple answer, as the app sees them: what a live select
/// updates from the rows a change wrote ([`patch`]).
#[derive(Debug, Clone)]
pub struct PageRows(Vec<Rec>);

/// Whether an answer can be updated from changed rows alone: one table (no embed, no
/// aggregate), no count, no offset, an array.
fn patchable(level: &Level<'_>, opts: &SelectOptions) -> bool {
    level.offset == 0 && !opts.count && opts.cardinality == Cardinality::Many && level.items.iter().all(|i| matches!(i, Item::Star | Item::Column { .. }))
}

/// Answer `level` (the top of a plan) from `store`.
pub async fn run<S: Store + ?Sized>(schema: &Schema, store: &S, level: &Level<'_>, opts: &SelectOptions) -> Result<SelectResult, QueryError> {
    Ok(run_keeping(schema, store, level, opts).await?.0)
}

/// [`run`], and the rows on the page when the answer is simple enough to be updated
/// from changed rows later ([`patch`]).
pub async fn run_keeping<S: Store + ?Sized>(schema: &Schema, store: &S, level: &Level<'_>, opts: &SelectOptions) -> Result<(SelectResult, Option<PageRows>), QueryError> {
    let mut kept_page = None;
    let inner = level.items.iter().any(|i| matches!(i, Item::Embed(e) if e.inner));
    let page_only = !opts.count && !inner && !level.grouped();
    let top = read::candidates(store, level, page_only).await?;
    let mut kept = Vec::with_capacity(top.len());
    for r in top.into_iter().filter_map(|r| rec(schema, r)) {
        if filter::passes(level, &r.row)? {
            kept.push(r);
        }
    }
    let mut fetched = Fetched::default();
    let (data, meta, count) = if level.grouped() || inner {
        // Which rows stay depends on their embeds: read those for every row first.
        fetch(schema, store, level, &kept, &mut fetched).await?;
        let rows = with_inner(level, kept.iter().collect(), &fetched)?;
        let count = opts.count.then_some(rows.len() as u64);
        if level.grouped() {
            (groups(level, &rows, &fetched)?, vec![], count)
        } else {
            let rows = page(level, sorted(level, rows));
            let (data, meta) = projected(level, &rows, &fetched)?;
            (data, meta, count)
        }
    } else {
        // The page first, then the embeds of the rows on it only.
        let count = opts.count.then_some(kept.len() as u64);
        let on_page: Vec<Rec> = page(level, sorted(level, kept.iter().collect())).into_iter().cloned().collect();
        if patchable(level, opts) {
            kept_page = Some(PageRows(on_page.clone()));
        }
        fetch(schema, store, level, &on_page, &mut fetched).await?;
        let (data, meta) = projected(level, &on_page.iter().collect::<Vec<_>>(), &fetched)?;
        (data, meta, count)
    };
    if let Some(total) = count {
        // As PostgREST: a counted answer refuses a page that starts past its end.
        if level.offset > 0 && data.is_empty() && level.offset as u64 >= total {
            return Err(SelectError::past_the_end(level.offset, total).into());
        }
    }
    match opts.cardinality {
        Cardinality::One if data.len() != 1 => return Err(SelectError::not_one(data.len()).into()),
        Cardinality::MaybeOne if data.len() > 1 => return Err(SelectError::not_one(data.len()).into()),
        _ => {}
    }
    Ok((answer(data, meta, count), kept_page))
}

/// The answer after some rows of the level's table changed (`changed`, as the store
/// now holds them), from the last page alone: no store read. `None` when that cannot
/// be known so (a row left a full page, and which comes next only the store knows; a
/// value a filter refuses).
pub fn patch(schema: &Schema, level: &Level<'_>, opts: &SelectOptions, last: &PageRows, changed: &[LocalRow]) -> Option<(SelectResult, PageRows)> {
    if !patchable(level, opts) {
        return None;
    }
    // A row changed twice: its last state.
    let latest: HashMap<&str, &LocalRow> = changed.iter().filter(|r| r.table == level.decl.name).map(|r| (r.local_id.as_str(), r)).collect();
    if latest.is_empty() {
        return None;
    }
    let left = last.0.iter().any(|r| latest.contains_key(r.key.as_str()));
    if left && level.limit.is_some_and(|l| last.0.len() >= l) {
        return None;
    }
    let mut rows: Vec<Rec> = last.0.iter().filter(|r| !latest.contains_key(r.key.as_str())).cloned().collect();
    for r in latest.values() {
        if let Some(r) = rec(schema, (*r).clone()) {
            if filter::passes(level, &r.row).ok()? {
                rows.push(r);
            }
        }
    }
    // As the store gives candidates: in local-id order, which ties keep.
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let on_page: Vec<&Rec> = page(level, sorted(level, rows.iter().collect()));
    let (data, meta) = projected(level, &on_page, &Fetched::default()).ok()?;
    let kept = PageRows(on_page.into_iter().cloned().collect());
    Some((answer(data, meta, None), kept))
}

/// The answer's rows with their local ids and sync status, and the count.
fn answer(data: Vec<Value>, meta: RowKeys, count: Option<u64>) -> SelectResult {
    let mut out = SelectResult { rows: vec![], count };
    let mut meta = meta.into_iter();
    for d in data {
        let (local_id, status) = match meta.next() {
            Some((k, s)) => (Some(k), Some(s)),
            None => (None, None),
        };
        out.rows.push(SelectedRow { data: d, local_id, status });
    }
    out
}

/// Each output row's local id and sync status.
type RowKeys = Vec<(String, RowStatus)>;

/// The output objects of a level's rows, with each row's key and status.
fn projected(level: &Level<'_>, rows: &[&Rec], f: &Fetched) -> Result<(Vec<Value>, RowKeys), SelectError> {
    let mut data = Vec::with_capacity(rows.len());
    for r in rows {
        data.push(Value::Object(project(level, r, f)?));
    }
    Ok((data, rows.iter().map(|r| (r.key.clone(), r.status.clone())).collect()))
}

/// Read the rows of every embed under `level`, for `parents`, level by level.
async fn fetch<S: Store + ?Sized>(schema: &Schema, store: &S, level: &Level<'_>, parents: &[Rec], out: &mut Fetched) -> Result<(), QueryError> {
    let mut work: Vec<(&Level<'_>, Vec<Rec>)> = vec![(level, parents.to_vec())];
    while let Some((lvl, rows)) = work.pop() {
        for item in &lvl.items {
            let Item::Embed(e) = item else { continue };
            let target = &e.level.decl.name;
            let mut related = Related::new();
            match &e.join {
                Join::ToOne { column } => {
                    let ids: Vec<String> = rows
                        .iter()
                        .filter_map(|r| r.row.get(column).and_then(Value::as_str).map(str::to_string))
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    for r in store.get_rows(target, &ids).await?.into_iter().flatten().filter_map(|r| rec(schema, r)) {
                        related.entry(r.key.clone()).or_default().push(r);
                    }
                }
                Join::ToMany { column } if counted_only(e).is_some() && e.level.decl.index_on(column).is_some() => {
                    let Some(index) = e.level.decl.index_on(column) else { continue };
                    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect::<HashSet<_>>().into_iter().collect();
                    let ranges: Vec<KeyRange> = keys.iter().map(|k| KeyRange::prefix(&index.prefix(&[&Value::String(k.clone())]))).collect();
                    let counts = store.count_in_index(target, &index, &ranges).await?;
                    out.counts.insert(embed_id(e), keys.into_iter().zip(counts.into_iter().map(|n| n as u64)).collect());
                    continue;
                }
                Join::ToMany { column } => {
                    let keys: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
                    let found: Vec<LocalRow> = if e.level.decl.index_on(column).is_some() && keys.len() <= PER_PARENT_READS {
                        let mut v = vec![];
                        for k in &keys {
                            v.extend(store.rows_by(target, column, &Value::String((*k).to_string())).await?);
                        }
                        v
                    } else {
                        store.scan(target).await?
                    };
                    for r in found.into_iter().filter_map(|r| rec(schema, r)) {
                        if let Some(k) = r.row.get(column).and_then(Value::as_str) {
                            if keys.contains(k) {
                                related.entry(k.to_string()).or_default().push(r);
                            }
                        }
                    }
                }
            }
            let mut below = vec![];
            for rs in related.values() {
                for r in rs {
                    if filter::passes(&e.level, &r.row)? {
                        below.push(r.clone());
                    }
                }
            }
            out.by_embed.insert(embed_id(e), related);
            if e.level.items.iter().any(|i| matches!(i, Item::Embed(_))) {
                work.push((&e.level, below));
            }
        }
    }
    Ok(())
}

/// The rows an embed gives one row of the level above: filtered, with its own
/// `!inner` embeds applied (not yet ordered or paged).
fn related<'f>(e: &Embed<'_>, parent: &Rec, f: &'f Fetched) -> Result<Vec<&'f Rec>, SelectError> {
    let Some(by) = f.by_embed.get(&embed_id(e)) else { return Ok(vec![]) };
    let key = match &e.join {
        Join::ToOne { column } => match parent.row.get(column).and_then(Value::as_str) {
            Some(k) => k.to_string(),
            None => return Ok(vec![]),
        },
        Join::ToMany { .. } => parent.key.clone(),
    };
    let mut out = vec![];
    for r in by.get(&key).into_iter().flatten() {
        if filter::passes(&e.level, &r.row)? {
            out.push(r);
        }
    }
    with_inner(&e.level, out, f)
}

/// Leave out rows whose `!inner` embeds found nothing.
fn with_inner<'f>(level: &Level<'_>, rows: Vec<&'f Rec>, f: &Fetched) -> Result<Vec<&'f Rec>, SelectError> {
    let inner: Vec<&Embed<'_>> = level
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Embed(e) if e.inner => Some(&**e),
            _ => None,
        })
        .collect();
    if inner.is_empty() {
        return Ok(rows);
    }
    let mut out = vec![];
    'rows: for r in rows {
        for e in &inner {
            if related(e, r, f)?.is_empty() {
                continue 'rows;
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// PostgreSQL's order: each term in turn, `NULL` last ascending and first descending
/// unless the term says otherwise; ties keep the order they came in.
fn order_cmp(level: &Level<'_>, terms: &[OrderTerm], a: &Row, b: &Row) -> Ordering {
    for t in terms {
        let (x, y) = (a.get(&t.column).unwrap_or(&Value::Null), b.get(&t.column).unwrap_or(&Value::Null));
        let nulls_first = match t.nulls {
            Some(Nulls::First) => true,
            Some(Nulls::Last) => false,
            None => t.desc,
        };
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => if nulls_first { Ordering::Less } else { Ordering::Greater },
            (false, true) => if nulls_first { Ordering::Greater } else { Ordering::Less },
            (false, false) => {
                let kind = level.kind(&t.column, x);
                let o = value::compare(kind, x, y).unwrap_or(Ordering::Equal);
                if t.desc { o.reverse() } else { o }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn sorted<'f>(level: &Level<'_>, mut rows: Vec<&'f Rec>) -> Vec<&'f Rec> {
    if !level.order.is_empty() {
        rows.sort_by(|a, b| order_cmp(level, &level.order, &a.row, &b.row));
    }
    rows
}

fn page<T>(level: &Level<'_>, rows: Vec<T>) -> Vec<T> {
    let it = rows.into_iter().skip(level.offset);
    match level.limit {
        Some(l) => it.take(l).collect(),
        None => it.collect(),
    }
}

/// One row's output object.
fn project(level: &Level<'_>, r: &Rec, f: &Fetched) -> Result<Map<String, Value>, SelectError> {
    let mut out = Map::new();
    for item in &level.items {
        match item {
            Item::Star => {
                for (k, v) in &r.row {
                    out.insert(k.clone(), v.clone());
                }
                for c in level.decl.columns.keys() {
                    out.entry(c.clone()).or_insert(Value::Null);
                }
            }
            Item::Column { key, column } => {
                out.insert(key.clone(), r.row.get(column).cloned().unwrap_or(Value::Null));
            }
            Item::Aggregate { .. } => {}
            Item::Embed(e) if e.hidden => {}
            Item::Embed(e) => {
                let v = embed_value(e, r, f)?;
                if e.spread {
                    spread_into(&mut out, e, v);
                } else {
                    out.insert(e.key.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// An embed's value for one row: an object (or null) to one, an array to many.
fn embed_value(e: &Embed<'_>, parent: &Rec, f: &Fetched) -> Result<Value, SelectError> {
    if let (Some(counts), Some(key)) = (f.counts.get(&embed_id(e)), counted_only(e)) {
        let mut one = Map::new();
        one.insert(key.to_string(), Value::from(counts.get(&parent.key).copied().unwrap_or(0)));
        return Ok(Value::Array(vec![Value::Object(one)]));
    }
    let rows = related(e, parent, f)?;
    if e.level.grouped() {
        let g = groups(&e.level, &rows, f)?;
        return Ok(match e.join {
            Join::ToOne { .. } => g.into_iter().next().unwrap_or(Value::Null),
            Join::ToMany { .. } => Value::Array(g),
        });
    }
    let rows = page(&e.level, sorted(&e.level, rows));
    let mut objs = Vec::with_capacity(rows.len());
    for r in rows {
        objs.push(Value::Object(project(&e.level, r, f)?));
    }
    Ok(match e.join {
        Join::ToOne { .. } => objs.into_iter().next().unwrap_or(Value::Null),
        Join::ToMany { .. } => Value::Array(objs),
    })
}

/// `...rel(a,b)`: the embed's columns lifted into the row (to one: its values, or
/// nulls; to many: an array of each column's values).
fn spread_into(out: &mut Map<String, Value>, e: &Embed<'_>, v: Value) {
    let names = output_names(&e.level);
    match (v, &e.join) {
        (Value::Object(m), _) => out.extend(m),
        (Value::Array(items), Join::ToMany { .. }) => {
            for n in names {
                let col: Vec<Value> = items.iter().map(|i| i.get(&n).cloned().unwrap_or(Value::Null)).collect();
                out.insert(n, Value::Array(col));
            }
        }
        _ => {
            for n in names {
                out.insert(n, Value::Null);
            }
        }
    }
}

fn output_names(level: &Level<'_>) -> Vec<String> {
    let mut names = vec![];
    for item in &level.items {
        match item {
            Item::Star => names.extend(level.decl.columns.keys().cloned()),
            Item::Column { key, .. } | Item::Aggregate { key, .. } => names.push(key.clone()),
            Item::Embed(e) if e.hidden => {}
            Item::Embed(e) if e.spread => names.extend(output_names(&e.level)),
            Item::Embed(e) => names.push(e.key.clone()),
        }
    }
    names
}

/// A grouped level: one object per distinct value of its plain items (all rows in one
/// group when there are none, even no rows: `count()` of nothing is 0), with its
/// aggregates; ordered and paged as groups.
fn groups(level: &Level<'_>, rows: &[&Rec], f: &Fetched) -> Result<Vec<Value>, SelectError> {
    let plain = level.items.iter().any(|i| !matches!(i, Item::Aggregate { .. }) && !matches!(i, Item::Embed(e) if e.hidden));
    let mut order: Vec<String> = vec![];
    let mut by: HashMap<String, (Map<String, Value>, Vec<&Rec>)> = HashMap::new();
    for r in rows {
        let p = project(level, r, f)?;
        let k = Value::Object(p.clone()).to_string();
        let entry = by.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            (p, vec![])
        });
        entry.1.push(r);
    }
    if !plain && by.is_empty() {
        order.push(String::new());
        by.insert(String::new(), (Map::new(), vec![]));
    }
    let mut out: Vec<(Map<String, Value>, Option<&Rec>)> = vec![];
    for k in order {
        let Some((p, members)) = by.remove(&k) else { continue };
        let mut obj = Map::new();
        for item in &level.items {
            match item {
                Item::Aggregate { key, func, column } => {
                    obj.insert(key.clone(), aggregate(level, *func, column.as_deref(), &members));
                }
                Item::Star => {
                    for (k, v) in &p {
                        if !obj.contains_key(k) && !is_aggregate_key(level, k) {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                }
                Item::Column { key, .. } => {
                    obj.insert(key.clone(), p.get(key).cloned().unwrap_or(Value::Null));
                }
                Item::Embed(e) if e.hidden => {}
                Item::Embed(e) => {
                    for n in if e.spread { output_names(&e.level) } else { vec![e.key.clone()] } {
                        obj.insert(n.clone(), p.get(&n).cloned().unwrap_or(Value::Null));
                    }
                }
            }
        }
        out.push((obj, members.first().copied()));
    }
    if !level.order.is_empty() {
        out.sort_by(|(_, a), (_, b)| match (a, b) {
            (Some(a), Some(b)) => order_cmp(level, &level.order, &a.row, &b.row),
            _ => Ordering::Equal,
        });
    }
    Ok(page(level, out).into_iter().map(|(o, _)| Value::Object(o)).collect())
}

fn is_aggregate_key(level: &Level<'_>, k: &str) -> bool {
    level.items.iter().any(|i| matches!(i, Item::Aggregate { key, .. } if key == k))
}

/// One aggregate over a group's rows, as PostgreSQL computes it (`NULL`s skipped; the
/// sum of integers an integer; `NULL` over no values, except for counts).
fn aggregate(level: &Level<'_>, func: Aggregate, column: Option<&str>, rows: &[&Rec]) -> Value {
    let values: Vec<&Value> = match column {
        Some(c) => rows.iter().filter_map(|r| r.row.get(c)).filter(|v| !v.is_null()).collect(),
        None => return Value::from(rows.len() as u64),
    };
    match func {
        Aggregate::Count => Value::from(values.len() as u64),
        _ if values.is_empty() => Value::Null,
        Aggregate::Sum => {
            if values.iter().all(|v| v.as_i64().is_some()) {
                Value::from(values.iter().filter_map(|v| v.as_i64()).sum::<i64>())
            } else {
                number(values.iter().filter_map(|v| v.as_f64()).sum::<f64>())
            }
        }
        Aggregate::Avg => {
            let n = values.len() as f64;
            number(values.iter().filter_map(|v| v.as_f64()).sum::<f64>() / n)
        }
        Aggregate::Min | Aggregate::Max => {
            let col = column.unwrap_or_default();
            let mut best = values[0];
            for v in &values[1..] {
                let o = value::compare(level.kind(col, v), v, best).unwrap_or(Ordering::Equal);
                if (func == Aggregate::Min && o == Ordering::Less) || (func == Aggregate::Max && o == Ordering::Greater) {
                    best = v;
                }
            }
            best.clone()
        }
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}
