//! Which rows of the top table a query reads, before anything else is done with them.
//!
//! In the order it is tried:
//! - an equality on the local id reads that one row;
//! - a declared index whose first columns the query fixes by equality, and whose next
//!   column is the query's first order (its direction's default null placement), with
//!   a limit: the index is read in order, a batch at a time, until the page is
//!   certain. "The newest 50 messages of a conversation" reads about 51 rows;
//! - an index whose first columns are fixed by equality reads those rows;
//! - otherwise the whole table.
//!
//! Whatever is read is filtered, sorted and paged by [`crate::select::run`] exactly as
//! if the table had been scanned: the read only has to include every row that can be
//! on the page. Index keys order as the values do, but two different values may share
//! a key (see [`crate::local::index`]), and rows that tie on the order column are
//! ordered by the query's next terms, not by the index: so an ordered read that stops
//! inside a tie first reads the whole tie. Except the tie of nulls when the query has
//! no other order term: those rows are ordered by local id, the order a store gives
//! one key's rows in, so only as many of them as the page still needs are read (a
//! chat's messages written offline have no server timestamp yet, and a first page
//! newest first starts with all of them).

use std::collections::HashSet;

use serde_json::Value;
use supasync_query_syntax::{Cond, Nulls, Op};

use crate::local::index::{IndexDef, KeyRange};
use crate::local::local_row::LocalRow;
use crate::local::store::Store;
use crate::select::filter;
use crate::select::plan::Level;
use crate::select::value::{self, Kind};
use crate::select::QueryError;

/// How the top table's rows are read.
enum Plan {
    OneRow(String),
    /// An index read: the index, the values fixing its first columns, and whether it
    /// is read in the query's order (then, which way).
    Index { index: IndexDef, fixed: Vec<Value>, ordered: Option<bool> },
    Scan,
}

/// The rows a query may return, as stored (not yet filtered). `page_only`: the caller
/// needs only the first `offset + limit` rows in the query's order (no count, no
/// grouping, no `!inner`), so an ordered index may stop early.
pub async fn candidates<S: Store + ?Sized>(store: &S, level: &Level<'_>, page_only: bool) -> Result<Vec<LocalRow>, QueryError> {
    let table = &level.decl.name;
    match choose(level, page_only) {
        Plan::OneRow(id) => Ok(store.get_row(table, &id).await?.into_iter().collect()),
        Plan::Scan => Ok(store.scan(table).await?),
        Plan::Index { index, fixed, ordered: None } => {
            let refs: Vec<&Value> = fixed.iter().collect();
            let mut rows = store.rows_in_index(table, &index, &KeyRange::prefix(&index.prefix(&refs)), false, None).await?;
            // As a scan gives them: a query without an order sees local-id order.
            rows.sort_by(|a, b| a.local_id.cmp(&b.local_id));
            Ok(rows)
        }
        Plan::Index { index, fixed, ordered: Some(desc) } => {
            let want = level.offset + level.limit.unwrap_or(0);
            ordered_read(store, level, &index, &fixed, desc, want).await
        }
    }
}

/// The value an equality filter on `column` fixes, typed as the column is stored:
/// `None` when the query has none, or when how the column is stored is unknown
/// (an undeclared column that is not a reference).
fn fixed_value(level: &Level<'_>, column: &str) -> Option<Value> {
    let text = level.conds.iter().find_map(|c| match c {
        Cond::Leaf(l) if l.column == column && l.op == Op::Eq && !l.negate && l.quantifier.is_none() => Some(&l.value),
        _ => None,
    })?;
    let decl = level.decl;
    match decl.columns.get(column) {
        Some(ty) => match Kind::of_type(ty) {
            Kind::Json => None,
            kind => value::typed_literal(ty, kind, text).ok(),
        },
        None if decl.references.contains_key(column) => Some(Value::String(text.clone())),
        None => None,
    }
}

fn choose(level: &Level<'_>, page_only: bool) -> Plan {
    let decl = level.decl;
    if let Some(id) = fixed_id(level) {
        return Plan::OneRow(id);
    }
    let first_order = level.order.first();
    let mut best: Option<((bool, usize), Plan)> = None;
    for index in decl.index_defs() {
        let mut fixed = vec![];
        for part in index.parts() {
            match fixed_value(level, &part.name) {
                Some(v) => fixed.push(v),
                None => break,
            }
        }
        let next = index.parts().get(fixed.len());
        let ordered = match (next, first_order) {
            (Some(part), Some(o)) if page_only && level.limit.is_some() && part.name == o.column => {
                // The index keeps nulls last: read forwards for ascending order with
                // nulls last, backwards for descending with nulls first.
                let nulls_fit = match o.nulls {
                    None => true,
                    Some(Nulls::Last) => !o.desc,
                    Some(Nulls::First) => o.desc,
                };
                let comparable = decl.columns.get(&part.name).is_none_or(|t| Kind::of_type(t) != Kind::Json);
                (nulls_fit && comparable).then_some(o.desc)
            }
            _ => None,
        };
        if fixed.is_empty() && ordered.is_none() {
            continue;
        }
        let score = (ordered.is_some(), fixed.len());
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, Plan::Index { index, fixed, ordered }));
        }
    }
    best.map_or(Plan::Scan, |(_, p)| p)
}

fn fixed_id(level: &Level<'_>) -> Option<String> {
    level.conds.iter().find_map(|c| match c {
        Cond::Leaf(l) if l.column == level.decl.local_id && l.op == Op::Eq && !l.negate && l.quantifier.is_none() => Some(l.value.clone()),
        _ => None,
    })
}

/// Read `index` in order from the rows `fixed` selects until the first `want` rows
/// that pass the filters are certain.
async fn ordered_read<S: Store + ?Sized>(store: &S, level: &Level<'_>, index: &IndexDef, fixed: &[Value], desc: bool, want: usize) -> Result<Vec<LocalRow>, QueryError> {
    let table = &level.decl.name;
    let refs: Vec<&Value> = fixed.iter().collect();
    let mut range = KeyRange::prefix(&index.prefix(&refs));
    let mut out: Vec<LocalRow> = vec![];
    let mut seen: HashSet<String> = HashSet::new();
    // Rows that pass, with a key before the last key read: their order is certain.
    let mut certain = 0usize;
    // One more than the page: when the extra row's key differs, no tie was cut.
    let mut batch = want + 1;
    let passes = |r: &LocalRow| -> Result<bool, QueryError> {
        Ok(match r.visible(&level.decl.local_id) {
            Some(row) => filter::passes(level, &row)?,
            None => false,
        })
    };
    // Rows tie when they share the key through the order column (a composite
    // index's later columns do not order the query).
    let through = fixed.len() + 1;
    // The key of the rows whose order column is null: a tie the query orders by local
    // id alone when it has no other order term (see the loop).
    let nulls = (level.order.len() == 1).then(|| index.prefix(&refs.iter().copied().chain([&Value::Null]).collect::<Vec<_>>()));
    loop {
        let rows = store.rows_in_index(table, index, &range, desc, Some(batch)).await?;
        let full = rows.len() == batch;
        let last = rows.last().and_then(|r| index.key_through(r, through));
        for r in rows {
            if !seen.insert(r.local_id.clone()) || !passes(&r)? {
                continue;
            }
            if index.key_through(&r, through) != last {
                certain += 1;
            }
            out.push(r);
        }
        let Some(last) = last.filter(|_| full) else { break };
        if certain >= want {
            break;
        }
        // A tie of nulls in a query ordered by that column alone is ordered by local id
        // (a store gives one key's rows in local-id order): only its first rows that
        // fill the page can be on it. Rows written offline before the server gave them
        // a timestamp are such a tie, and there may be thousands of them.
        let need = want - certain;
        let mut tie_read = false;
        if nulls.as_ref() == Some(&last) {
            let first = store.rows_in_index(table, index, &KeyRange::prefix(&last), false, Some(need)).await?;
            // Fewer than asked: that is the whole tie.
            tie_read = first.len() < need;
            let mut passing = 0;
            for r in first {
                if passes(&r)? {
                    passing += 1;
                    if seen.insert(r.local_id.clone()) {
                        out.push(r);
                    }
                }
            }
            if passing == need {
                // The page's rows of the tie are these: the page is certain.
                break;
            }
        }
        // Every row of the last tie, then on past it.
        if !tie_read {
            for r in store.rows_in_index(table, index, &KeyRange::prefix(&last), desc, None).await? {
                if seen.insert(r.local_id.clone()) && passes(&r)? {
                    out.push(r);
                }
            }
        }
        certain = out.len();
        if certain >= want {
            break;
        }
        range = range.past_prefix(&last, desc);
        batch = (batch * 2).min(4096);
    }
    // Every tie group that reaches the page was read whole; in local-id order, the
    // stable sort that follows breaks ties as it does for a scan.
    out.sort_by(|a, b| a.local_id.cmp(&b.local_id));
    Ok(out)
}
