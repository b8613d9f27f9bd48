//! A parsed query checked against the schema: which table each level reads, how each
//! embed joins (the schema's references, in either direction), which columns exist,
//! and which filters, order and page each level takes. Everything a query can be
//! refused for is found here, before a row is read, as PostgREST finds it before
//! running SQL.

use std::collections::BTreeSet;

use supasync_query_syntax::{Aggregate, Cond, EmbedParams, Leaf, Op, OrderTerm, QueryParams, SelectItem};

use crate::local::schema::{Schema, TableDecl};
use crate::select::error::SelectError;
use crate::select::value::{self, Kind};

/// How an embedded table joins the row that embeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// This row's `column` holds the embedded row's local id (many-to-one): an object.
    ToOne { column: String },
    /// The embedded rows' `column` holds this row's local id (one-to-many): an array.
    ToMany { column: String },
}

/// One item of a level's output.
#[derive(Debug)]
pub enum Item<'s> {
    Star,
    Column { key: String, column: String },
    Aggregate { key: String, func: Aggregate, column: Option<String> },
    Embed(Box<Embed<'s>>),
}

/// An embedded table.
#[derive(Debug)]
pub struct Embed<'s> {
    /// The key it appears under (its alias, or the relation's name).
    pub key: String,
    pub join: Join,
    pub level: Level<'s>,
    /// `!inner`: rows without a match are left out.
    pub inner: bool,
    /// `...rel(cols)`: its columns lifted into the embedding row.
    pub spread: bool,
    /// `rel()`: selects nothing (it only filters, with `!inner`).
    pub hidden: bool,
}

/// One table of the query (the top, or an embed) with what the query asks of it.
#[derive(Debug)]
pub struct Level<'s> {
    pub decl: &'s TableDecl,
    /// The name PostgreSQL shows for it in errors (`messages`, or `messages_1` embedded).
    pub shown: String,
    pub items: Vec<Item<'s>>,
    pub conds: Vec<Cond>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<usize>,
    pub offset: usize,
}

impl Level<'_> {
    /// Whether the level aggregates (its rows become groups).
    pub fn grouped(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Aggregate { .. }))
    }

    /// How `column` compares: its declared type, else what a value says.
    pub fn kind(&self, column: &str, sample: &serde_json::Value) -> Kind {
        match self.decl.columns.get(column) {
            Some(t) => Kind::of_type(t),
            None => Kind::of_value(sample),
        }
    }
}

/// Check a parsed query against the schema.
pub fn plan<'s>(schema: &'s Schema, table: &str, q: &QueryParams) -> Result<Level<'s>, SelectError> {
    let decl = schema.table(table).map_err(|_| SelectError::no_table(table))?;
    let star = [SelectItem::Star];
    let items = q.select.as_deref().unwrap_or(&star);
    let top = EmbedParams { conds: q.conds.clone(), order: q.order.clone(), limit: q.limit, offset: q.offset };
    let mut used = BTreeSet::new();
    let level = level(schema, decl, table.to_string(), items, &top, &[], q, &mut used)?;
    if let Some(path) = q.embedded.keys().find(|p| !used.contains(*p)) {
        return Err(SelectError::not_embedded(&path.join(".")));
    }
    Ok(level)
}

#[allow(clippy::too_many_arguments)]
fn level<'s>(
    schema: &'s Schema,
    decl: &'s TableDecl,
    shown: String,
    items: &[SelectItem],
    params: &EmbedParams,
    path: &[String],
    q: &QueryParams,
    used: &mut BTreeSet<Vec<String>>,
) -> Result<Level<'s>, SelectError> {
    let depth = path.len();
    let mut out = vec![];
    let mut embed_keys: Vec<String> = vec![];
    for item in items {
        match item {
            SelectItem::Star => out.push(Item::Star),
            SelectItem::Column { name, alias, cast } => {
                if cast.is_some() {
                    return Err(SelectError::unsupported("a cast (`::type`)"));
                }
                if name.contains("->") {
                    return Err(SelectError::unsupported("a JSON path (`col->key`)"));
                }
                // Inside an embed, a bare `count` that is no column counts the rows.
                if depth > 0 && name == "count" && (decl.columns.is_empty() || !decl.has_column(name)) {
                    out.push(Item::Aggregate { key: alias.clone().unwrap_or_else(|| "count".into()), func: Aggregate::Count, column: None });
                    continue;
                }
                check_column(decl, &shown, name)?;
                out.push(Item::Column { key: alias.clone().unwrap_or_else(|| name.clone()), column: name.clone() });
            }
            SelectItem::Aggregate { func, column, alias, cast } => {
                if cast.is_some() {
                    return Err(SelectError::unsupported("a cast (`::type`)"));
                }
                if let Some(c) = column {
                    check_column(decl, &shown, c)?;
                }
                out.push(Item::Aggregate { key: alias.clone().unwrap_or_else(|| func.name().to_string()), func: *func, column: column.clone() });
            }
            SelectItem::Embed { relation, alias, hint, inner, spread, items } => {
                let key = alias.clone().unwrap_or_else(|| relation.clone());
                if !spread && !items.is_empty() && embed_keys.contains(&key) {
                    return Err(SelectError::duplicate_embed(&decl.name, relation, depth + 1));
                }
                embed_keys.push(key.clone());
                let (join, target) = relation_of(schema, decl, relation, hint.as_deref())?;
                let mut sub = path.to_vec();
                sub.push(key.clone());
                let mut by_relation = path.to_vec();
                by_relation.push(relation.clone());
                let params = match q.embedded.get(&sub) {
                    Some(p) => {
                        used.insert(sub.clone());
                        p.clone()
                    }
                    None => match q.embedded.get(&by_relation) {
                        Some(p) => {
                            used.insert(by_relation);
                            p.clone()
                        }
                        None => EmbedParams::default(),
                    },
                };
                let inner_level = level(schema, target, format!("{}_{}", target.name, depth + 1), items, &params, &sub, q, used)?;
                out.push(Item::Embed(Box::new(Embed {
                    key,
                    join,
                    level: inner_level,
                    inner: *inner,
                    spread: *spread,
                    hidden: items.is_empty(),
                })));
            }
        }
    }
    if out.is_empty() && depth == 0 {
        return Err(SelectError::from(supasync_query_syntax::SyntaxError {
            message: "empty select".into(),
            details: "select at least one column".into(),
        }));
    }
    for c in &params.conds {
        check_cond(decl, &shown, c)?;
    }
    for t in &params.order {
        if t.column.contains("->") {
            return Err(SelectError::unsupported("ordering by a JSON path"));
        }
        check_column(decl, &shown, &t.column)?;
    }
    Ok(Level {
        decl,
        shown,
        items: out,
        conds: params.conds.clone(),
        order: params.order.clone(),
        limit: params.limit.map(|l| l.max(0) as usize),
        offset: params.offset.unwrap_or(0).max(0) as usize,
    })
}

fn check_column(decl: &TableDecl, shown: &str, column: &str) -> Result<(), SelectError> {
    if decl.has_column(column) {
        Ok(())
    } else {
        Err(SelectError::no_column(shown, column))
    }
}

fn check_cond(decl: &TableDecl, shown: &str, c: &Cond) -> Result<(), SelectError> {
    match c {
        Cond::Leaf(l) => check_leaf(decl, shown, l),
        Cond::And { items, .. } | Cond::Or { items, .. } => items.iter().try_for_each(|i| check_cond(decl, shown, i)),
    }
}

fn check_leaf(decl: &TableDecl, shown: &str, l: &Leaf) -> Result<(), SelectError> {
    if l.column.contains("->") {
        return Err(SelectError::unsupported("a filter on a JSON path (`col->key`)"));
    }
    check_column(decl, shown, &l.column)?;
    let what = match l.op {
        Op::Match | Op::Imatch => Some("a regular-expression filter (`match`, `imatch`)"),
        Op::Fts | Op::Plfts | Op::Phfts | Op::Wfts => Some("full-text search (`fts`)"),
        Op::Overlaps | Op::StrictlyLeft | Op::StrictlyRight | Op::NotExtendLeft | Op::NotExtendRight | Op::Adjacent => {
            Some("a range or overlap operator")
        }
        _ => None,
    };
    if let Some(w) = what {
        return Err(SelectError::unsupported(w));
    }
    // With a declared type, a value that is not of it is refused before any row is
    // read, as PostgreSQL refuses it.
    if let Some(ty) = decl.columns.get(&l.column) {
        let kind = Kind::of_type(ty);
        let texts: Vec<&str> = match (&l.op, l.quantifier) {
            (_, Some(_)) | (Op::In, _) => l.list.iter().map(String::as_str).collect(),
            (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte | Op::IsDistinct, _) => vec![l.value.as_str()],
            _ => vec![],
        };
        for t in texts {
            value::typed_literal(ty, kind, t)?;
        }
    }
    Ok(())
}

/// The join from `parent` to `relation` (a table, or one of `parent`'s reference
/// columns), as PostgREST picks it: the one reference between the two tables, or the
/// one the hint (a column, or the constraint `<table>_<column>_fkey`) names.
fn relation_of<'s>(schema: &'s Schema, parent: &TableDecl, relation: &str, hint: Option<&str>) -> Result<(Join, &'s TableDecl), SelectError> {
    let Ok(target) = schema.table(relation) else {
        // `conversation_id(*)`: embedded through the reference column itself.
        if let Some(t) = parent.references.get(relation) {
            if let Ok(target) = schema.table(t) {
                return Ok((Join::ToOne { column: relation.to_string() }, target));
            }
        }
        return Err(SelectError::no_relation(&parent.name, relation, hint));
    };
    let named = |table: &str, column: &str| hint.is_none_or(|h| h == column || h == format!("{table}_{column}_fkey"));
    let mut found: Vec<Join> = vec![];
    // A table embedding itself by name means its children, as in PostgREST.
    if target.name != parent.name {
        for (col, t) in &parent.references {
            if *t == target.name && named(&parent.name, col) {
                found.push(Join::ToOne { column: col.clone() });
            }
        }
    }
    for (col, t) in &target.references {
        if *t == parent.name && named(&target.name, col) {
            found.push(Join::ToMany { column: col.clone() });
        }
    }
    match found.len() {
        0 => Err(SelectError::no_relation(&parent.name, relation, hint)),
        1 => Ok((found.remove(0), target)),
        _ => Err(SelectError::ambiguous(&parent.name, relation)),
    }
}
