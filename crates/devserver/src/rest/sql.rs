//! Building SQL for a REST request from the parsed query and the schema cache.
//!
//! The rule that keeps this safe: every identifier is looked up in the schema cache first
//! and only then quoted into the statement; every value is a bound parameter (always sent
//! as `text` and cast in SQL to the column's catalog type, so PostgreSQL's own input
//! functions validate it). Type names and default expressions spliced in come from the
//! catalog, never from the request.

use std::sync::Arc;

use axum::http::StatusCode;

pub use super::bind::{column_expr, ColumnExpr, ColumnKind, Params};
use super::bind::shown_name;
use super::error::RestError;
pub use super::filter_sql::Target;
use supasync_query_syntax::{Aggregate, EmbedParams, EmbeddedParams, SelectItem};
use crate::schema::{quote_ident, SchemaCache, Table};

impl Target<'_> {
    /// The select list over alias `_t` (`*` when `select` is absent).
    /// `embedded`: the filters, order and page the query string gives embedded resources.
    pub fn select_sql(&self, select: Option<&[SelectItem]>, embedded: &EmbeddedParams, p: &mut Params) -> Result<SelectSql, RestError> {
        let items = select.unwrap_or(&[SelectItem::Star]);
        let at = Level { table: &self.table, alias: "_t", depth: 0, path: vec![] };
        let sql = select_list(self.cache, &at, items, embedded, p)?;
        // Parameters for an embed nobody selected are a mistake, said as PostgREST does.
        for path in embedded.keys() {
            if !sql.embed_paths.contains(path) {
                return Err(RestError::new(
                    StatusCode::BAD_REQUEST,
                    "PGRST108",
                    format!("'{}' is not an embedded resource in this request", path.join(".")),
                )
                .hint(format!("Verify that '{}' is included in the 'select' query parameter.", path.join("."))));
            }
        }
        Ok(sql)
    }
}

/// Where a select list is being built: the table, its alias, how deep, and the path of
/// embed names from the top (what `rel.col=…` parameters name).
struct Level<'a> {
    table: &'a Table,
    alias: &'a str,
    depth: usize,
    path: Vec<String>,
}

/// A select list and the extra conditions that `!inner` embeddings add.
pub struct SelectSql {
    pub list: String,
    pub inner_conds: Vec<String>,
    /// ` GROUP BY …` when aggregates sit beside plain columns, else empty.
    pub group_by: String,
    /// The output names, in order (what a spread lifts into its parent row).
    pub names: Vec<String>,
    /// Every embed path met (to refuse parameters for embeds not selected).
    embed_paths: Vec<Vec<String>>,
}

fn select_list(cache: &SchemaCache, at: &Level<'_>, items: &[SelectItem], embedded: &EmbeddedParams, p: &mut Params) -> Result<SelectSql, RestError> {
    let (table, alias, depth) = (at.table, at.alias, at.depth);
    if depth > 3 {
        return Err(RestError::parse("embedding is nested too deeply", "at most 3 levels"));
    }
    let mut cols = vec![];
    let mut names: Vec<String> = vec![];
    let mut embed_paths: Vec<Vec<String>> = vec![];
    let mut embed_names: Vec<String> = vec![];
    let mut inner_conds = vec![];
    // Plain column expressions and embeds: what aggregates beside them group by.
    let mut plain = vec![];
    let mut aggregates = false;
    for item in items {
        // Inside an embed, a bare `count` (no such column) counts the related rows.
        let counted;
        let item = match item {
            SelectItem::Column { name, alias: a, cast } if depth > 0 && name == "count" && table.column(name).is_none() => {
                counted = SelectItem::Aggregate { func: Aggregate::Count, column: None, alias: a.clone(), cast: cast.clone() };
                &counted
            }
            other => other,
        };
        match item {
            SelectItem::Star => {
                for c in &table.columns {
                    let e = format!("{alias}.{}", quote_ident(&c.name));
                    cols.push(format!("{e} AS {}", quote_ident(&c.name)));
                    names.push(c.name.clone());
                    plain.push(e);
                }
            }
            SelectItem::Column { name, alias: a, cast } => {
                let ce = column_expr(table, alias, name, p)?;
                let mut e = ce.sql;
                if let Some(cast) = cast {
                    e = format!("CAST({e} AS {})", quote_ident(cast));
                }
                let name = a.clone().unwrap_or(ce.name);
                cols.push(format!("{e} AS {}", quote_ident(&name)));
                names.push(name);
                plain.push(e);
            }
            SelectItem::Aggregate { func, column, alias: a, cast } => {
                if !cache.config.aggregates {
                    return Err(RestError::new(StatusCode::BAD_REQUEST, "PGRST123", "Use of aggregate functions is not allowed"));
                }
                aggregates = true;
                let arg = match column {
                    Some(name) => {
                        let col = table.column(name).ok_or_else(|| RestError::no_column(&shown_name(table, alias), name))?;
                        format!("{alias}.{}", quote_ident(&col.name))
                    }
                    None => "*".into(),
                };
                let mut e = format!("{}({arg})", func.name());
                if let Some(cast) = cast {
                    e = format!("CAST({e} AS {})", quote_ident(cast));
                }
                let name = a.as_deref().unwrap_or(func.name()).to_string();
                cols.push(format!("{e} AS {}", quote_ident(&name)));
                names.push(name);
            }
            SelectItem::Embed {
                relation,
                alias: a,
                hint,
                inner,
                spread,
                items,
            } => {
                let name = a.as_deref().unwrap_or(relation);
                // Two embeds under one name would collapse into one key; PostgREST refuses
                // them (its aliases collide in SQL), and so does this server, in its words.
                if !spread && !items.is_empty() && embed_names.iter().any(|n| n == name) {
                    return Err(RestError::new(
                        StatusCode::BAD_REQUEST,
                        "42712",
                        format!("table name \"{}_{}_{}\" specified more than once", table.name, relation, depth + 1),
                    ));
                }
                embed_names.push(name.to_string());
                let mut path = at.path.clone();
                path.push(name.to_string());
                // Parameters may name the embed by its alias or by its relation.
                let params = embedded.get(&path).or_else(|| {
                    let mut by_relation = at.path.clone();
                    by_relation.push(relation.clone());
                    embedded.get(&by_relation).inspect(|_| embed_paths.push(by_relation))
                });
                let e = embed_sql(cache, at, relation, hint.as_deref(), items, &path, params, embedded, p)?;
                embed_paths.push(path);
                embed_paths.extend(e.inner.embed_paths.iter().cloned());
                if *inner {
                    inner_conds.push(e.exists.clone());
                }
                if items.is_empty() {
                    // `rel()`: nothing to show; it only filters (with `!inner`).
                    continue;
                }
                // Beside aggregates, an embed's value is one more thing to group by.
                if *spread {
                    for n in &e.inner.names {
                        let q = quote_ident(n);
                        let expr = if e.one {
                            format!("(SELECT _x.{q} FROM ({}) _x)", e.body)
                        } else {
                            format!("(SELECT coalesce(json_agg(_x.{q}), '[]') FROM ({}) _x)", e.body)
                        };
                        cols.push(format!("{expr} AS {q}"));
                        plain.push(expr);
                        names.push(n.clone());
                    }
                } else {
                    let expr = if e.one {
                        format!("(SELECT row_to_json(_x) FROM ({}) _x)", e.body)
                    } else {
                        format!("(SELECT coalesce(json_agg(_x), '[]') FROM ({}) _x)", e.body)
                    };
                    cols.push(format!("{expr} AS {}", quote_ident(name)));
                    plain.push(expr);
                    names.push(name.to_string());
                }
            }
        }
    }
    if cols.is_empty() && depth > 0 {
        // An embed whose items are all empty embeds (`rel(sub())`).
        cols.push("1 AS \"?\"".into());
    }
    if cols.is_empty() {
        return Err(RestError::parse("empty select", "select at least one column"));
    }
    Ok(SelectSql {
        list: cols.join(", "),
        inner_conds,
        group_by: if aggregates && !plain.is_empty() { format!(" GROUP BY {}", plain.join(", ")) } else { String::new() },
        names,
        embed_paths,
    })
}

/// One embedded resource, as a query over its rows.
struct Embedded {
    /// At most one row (many-to-one, one-to-one): an object, not an array.
    one: bool,
    /// `SELECT … FROM child … WHERE … [GROUP BY] [ORDER BY] [LIMIT/OFFSET]`.
    body: String,
    /// The condition `!inner` adds to the parent's `WHERE`.
    exists: String,
    inner: SelectSql,
}

/// One level of resource embedding through a foreign key, either direction, or through
/// a junction table; with the filters, order and page the query gives it.
#[allow(clippy::too_many_arguments)]
fn embed_sql(
    cache: &SchemaCache,
    at: &Level<'_>,
    relation: &str,
    hint: Option<&str>,
    items: &[SelectItem],
    path: &[String],
    params: Option<&EmbedParams>,
    embedded: &EmbeddedParams,
    p: &mut Params,
) -> Result<Embedded, RestError> {
    let (parent, parent_alias, depth) = (at.table, at.alias, at.depth);
    // A computed relationship: a function of the parent's row, embedded by its name.
    if cache.table(&parent.schema, relation).is_none() && hint.is_none() {
        if let Some(rel) = parent.computed_rels.iter().find(|r| r.name == relation) {
            return computed_embed(cache, at, rel, items, path, params, embedded, p);
        }
    }
    let no_rel = || {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST200",
            format!(
                "Could not find a relationship between '{}' and '{}' in the schema cache",
                parent.name, relation
            ),
        )
        .details(match hint {
            Some(h) => format!(
                "Searched for a foreign key relationship between '{}' and '{relation}' using the hint '{h}' in the schema '{}', but no matches were found.",
                parent.name, parent.schema
            ),
            None => format!(
                "Searched for a foreign key relationship between '{}' and '{relation}' in the schema '{}', but no matches were found.",
                parent.name, parent.schema
            ),
        })
    };
    // A relation is a table, or a foreign key named by its column (`author_id(*)`) or its
    // constraint (`posts_author_id_fkey(*)`), from the parent or to it.
    let by_table = cache.table(&parent.schema, relation);
    // Named by a foreign key, the direction is the key's: from the parent (to one) or to
    // it (to many); a self-referencing key would otherwise match both ways.
    let mut only: Option<bool> = None; // Some(true): to one only; Some(false): to many only
    let (child, hint) = match by_table.clone() {
        Some(t) => (t, hint),
        None => {
            let from_parent = parent
                .foreign_keys
                .iter()
                .find(|fk| fk.name == relation || fk.columns.len() == 1 && fk.columns[0] == relation)
                .and_then(|fk| Some((cache.table(&fk.ref_schema, &fk.ref_table)?, fk.name.as_str())));
            let to_parent = || {
                cache.tables.values().find_map(|t| {
                    let fk = t.foreign_keys.iter().find(|fk| {
                        fk.name == relation && fk.ref_schema == parent.schema && fk.ref_table == parent.name
                    })?;
                    Some((Arc::clone(t), fk.name.as_str()))
                })
            };
            let (t, name) = match from_parent {
                Some(found) => {
                    only = Some(true);
                    found
                }
                None => {
                    only = Some(false);
                    to_parent().ok_or_else(no_rel)?
                }
            };
            (t, Some(name))
        }
    };
    // A table embedding itself by its own name means its children (one-to-many), and a
    // hint can only name the foreign key's column (PostgREST cannot match a constraint
    // name there); `parent_id(*)` is how to get the parent.
    let self_by_name = by_table.is_some() && child.schema == parent.schema && child.name == parent.name;
    let matches_hint = |fk: &crate::schema::ForeignKey| hint.is_none_or(|h| fk.name == h || fk.columns.len() == 1 && fk.columns[0] == h);
    // many-to-one: parent.fk -> child
    let to_one: Vec<_> = if self_by_name || only == Some(false) {
        vec![]
    } else {
        parent
            .foreign_keys
            .iter()
            .filter(|fk| fk.ref_schema == child.schema && fk.ref_table == child.name && matches_hint(fk))
            .collect()
    };
    // one-to-many: child.fk -> parent
    let to_many: Vec<_> = child
        .foreign_keys
        .iter()
        .filter(|fk| fk.ref_schema == parent.schema && fk.ref_table == parent.name)
        .filter(|fk| if self_by_name { hint.is_none_or(|h| fk.columns.len() == 1 && fk.columns[0] == h) } else { matches_hint(fk) })
        .filter(|_| only != Some(true))
        .collect();
    if self_by_name && to_many.is_empty() {
        if let Some(h) = hint {
            return Err(no_rel().details(format!(
                "Searched for a foreign key relationship between '{0}' and '{0}' using the hint '{h}' in the schema '{1}', but no matches were found.",
                parent.name, parent.schema
            )));
        }
    }
    let ambiguous = |hint: String| {
        RestError::new(
            StatusCode::MULTIPLE_CHOICES,
            "PGRST201",
            format!(
                "Could not embed because more than one relationship was found for '{}' and '{}'",
                parent.name, relation
            ),
        )
        .hint(hint)
    };
    if to_one.len() + to_many.len() > 1 {
        // As PostgREST says it: each candidate, and the hinted names to choose from.
        let cols = |t: &str, c: &[String]| format!("{t}({})", c.join(", "));
        let mut candidates: Vec<(String, serde_json::Value)> = to_one
            .iter()
            .map(|fk| (fk, "many-to-one", cols(&parent.name, &fk.columns), cols(&child.name, &fk.ref_columns)))
            .chain(to_many.iter().map(|fk| {
                let card = if child_key_is_unique(&child, &fk.columns) { "one-to-one" } else { "one-to-many" };
                (fk, card, cols(&parent.name, &fk.ref_columns), cols(&child.name, &fk.columns))
            }))
            .map(|(fk, card, from, to)| {
                (
                    format!("'{relation}!{}'", fk.name),
                    serde_json::json!({
                        "cardinality": card,
                        "embedding": format!("{} with {}", parent.name, child.name),
                        "relationship": format!("{} using {from} and {to}", fk.name),
                    }),
                )
            })
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = candidates.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ambiguous(format!(
            "Try changing '{relation}' to one of the following: {}. Find the desired relationship in the 'details' key.",
            names.join(", ")
        ))
        .details_json(serde_json::Value::Array(candidates.into_iter().map(|(_, d)| d).collect())));
    }
    let a = format!("_e{}", depth + 1);
    let EmbedBody { inner, conds: mut inner_where, order, page } = embed_body(cache, at, &child, &a, items, path, params, embedded, p)?;
    let (one, on): (bool, Vec<String>) = if let Some(fk) = to_one.first() {
        let on = fk
            .columns
            .iter()
            .zip(&fk.ref_columns)
            .map(|(c, r)| format!("{a}.{} = {parent_alias}.{}", quote_ident(r), quote_ident(c)))
            .collect();
        (true, on)
    } else if let Some(fk) = to_many.first() {
        // One-to-one: the child's foreign key is also its primary key or a unique key,
        // so there is at most one row, embedded as an object.
        let on = fk
            .columns
            .iter()
            .zip(&fk.ref_columns)
            .map(|(c, r)| format!("{a}.{} = {parent_alias}.{}", quote_ident(c), quote_ident(r)))
            .collect();
        (child_key_is_unique(&child, &fk.columns), on)
    } else {
        // Many-to-many: a junction table with a foreign key to each side (`!junction`
        // picks one when several qualify).
        let junctions: Vec<(&Arc<Table>, &crate::schema::ForeignKey, &crate::schema::ForeignKey)> = cache
            .tables
            .values()
            .filter(|j| j.schema == parent.schema && hint.is_none_or(|h| j.name == h))
            .filter(|j| j.name != parent.name && j.name != child.name)
            .filter_map(|j| {
                let to_parent = j.foreign_keys.iter().find(|fk| fk.ref_schema == parent.schema && fk.ref_table == parent.name)?;
                let to_child = j.foreign_keys.iter().find(|fk| fk.ref_schema == child.schema && fk.ref_table == child.name)?;
                Some((j, to_parent, to_child))
            })
            .collect();
        if junctions.len() > 1 {
            let mut names: Vec<&str> = junctions.iter().map(|(j, _, _)| j.name.as_str()).collect();
            names.sort();
            return Err(ambiguous(format!(
                "Try changing '{relation}' to '{relation}!<junction>', one of: {}",
                names.join(", ")
            )));
        }
        let Some((j, to_parent, to_child)) = junctions.first() else {
            return Err(no_rel());
        };
        let on: Vec<String> = to_child
            .columns
            .iter()
            .zip(&to_child.ref_columns)
            .map(|(c, r)| format!("_j.{} = {a}.{}", quote_ident(c), quote_ident(r)))
            .chain(
                to_parent
                    .columns
                    .iter()
                    .zip(&to_parent.ref_columns)
                    .map(|(c, r)| format!("_j.{} = {parent_alias}.{}", quote_ident(c), quote_ident(r))),
            )
            .collect();
        (false, vec![format!("EXISTS (SELECT 1 FROM {} AS _j WHERE {})", j.qualified(), on.join(" AND "))])
    };
    inner_where.extend(on);
    let from = format!("FROM {} AS {a} WHERE {}", child.qualified(), inner_where.join(" AND "));
    let tail = if one { " LIMIT 1".to_string() } else { format!("{order}{page}") };
    Ok(Embedded {
        one,
        body: format!("SELECT {} {from}{}{tail}", inner.list, inner.group_by),
        exists: format!("EXISTS (SELECT 1 {from})"),
        inner,
    })
}

/// What an embed selects and how its rows are narrowed: its select list (`1` when it
/// selects nothing), its conditions (its `!inner` embeds' and its own filters), its
/// order and its page, over alias `a` of `child`, from the query's `rel.…` parameters.
struct EmbedBody {
    inner: SelectSql,
    conds: Vec<String>,
    order: String,
    page: String,
}

#[allow(clippy::too_many_arguments)]
fn embed_body(
    cache: &SchemaCache,
    at: &Level<'_>,
    child: &Arc<Table>,
    a: &str,
    items: &[SelectItem],
    path: &[String],
    params: Option<&EmbedParams>,
    embedded: &EmbeddedParams,
    p: &mut Params,
) -> Result<EmbedBody, RestError> {
    let inner = if items.is_empty() {
        SelectSql { list: "1".into(), inner_conds: vec![], group_by: String::new(), names: vec![], embed_paths: vec![] }
    } else {
        let below = Level { table: child, alias: a, depth: at.depth + 1, path: path.to_vec() };
        select_list(cache, &below, items, embedded, p)?
    };
    let target = Target { cache, table: Arc::clone(child) };
    let none = EmbedParams::default();
    let params = params.unwrap_or(&none);
    let mut conds: Vec<String> = inner.inner_conds.clone();
    if !params.conds.is_empty() {
        conds.push(target.where_as(a, &params.conds, p)?);
    }
    let order = target.order_as(a, &params.order, p)?;
    let mut page = String::new();
    if let Some(n) = params.limit {
        page.push_str(&format!(" LIMIT {}", p.int(n)));
    }
    if let Some(n) = params.offset {
        page.push_str(&format!(" OFFSET {}", p.int(n)));
    }
    Ok(EmbedBody { inner, conds, order, page })
}

/// An embed through a computed relationship: the function's rows for the parent row,
/// with the embed's own filters, order and page.
#[allow(clippy::too_many_arguments)]
fn computed_embed(
    cache: &SchemaCache,
    at: &Level<'_>,
    rel: &crate::schema::ComputedRel,
    items: &[SelectItem],
    path: &[String],
    params: Option<&EmbedParams>,
    embedded: &EmbeddedParams,
    p: &mut Params,
) -> Result<Embedded, RestError> {
    let a = format!("_e{}", at.depth + 1);
    // The cache's copy of the target: the one with its own computed fields.
    let child = &cache.table(&rel.target.schema, &rel.target.name).unwrap_or_else(|| Arc::clone(&rel.target));
    let EmbedBody { inner, conds: wh, order, page } = embed_body(cache, at, child, &a, items, path, params, embedded, p)?;
    let wh = if wh.is_empty() { "TRUE".to_string() } else { wh.join(" AND ") };
    // A single-row function returns one all-null row when it finds nothing: no row then.
    let found = if rel.one { format!(" AND {a} IS DISTINCT FROM NULL") } else { String::new() };
    let from = format!("FROM {}({}) AS {a} WHERE {wh}{found}", rel.function, at.alias);
    let tail = if rel.one { " LIMIT 1".to_string() } else { format!("{order}{page}") };
    Ok(Embedded {
        one: rel.one,
        body: format!("SELECT {} {from}{}{tail}", inner.list, inner.group_by),
        exists: format!("EXISTS (SELECT 1 {from})"),
        inner,
    })
}

/// Whether `cols` of `t` are its primary key or one of its unique keys (in any order).
fn child_key_is_unique(t: &Table, cols: &[String]) -> bool {
    let sorted = |k: &[String]| {
        let mut k = k.to_vec();
        k.sort();
        k
    };
    let want = sorted(cols);
    std::iter::once(&t.primary_key)
        .chain(&t.unique_keys)
        .any(|k| !k.is_empty() && sorted(k) == want)
}

