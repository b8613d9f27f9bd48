//! Why a local query is refused, in PostgREST's words: the same `code`, `message`,
//! `details` and `hint` PostgREST (or PostgreSQL behind it) gives for the same query,
//! so code written against supabase-js's errors reads ours unchanged.

use serde::{Deserialize, Serialize};
use supasync_query_syntax::SyntaxError;

use crate::select::value::BadLiteral;

/// A refused local query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct SelectError {
    /// PostgREST's (`PGRST…`) or PostgreSQL's (SQLSTATE) code.
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

impl SelectError {
    fn new(code: &str, message: impl Into<String>) -> SelectError {
        SelectError { code: code.into(), message: message.into(), details: None, hint: None }
    }

    fn details(mut self, d: impl Into<String>) -> SelectError {
        self.details = Some(d.into());
        self
    }

    fn hint(mut self, h: impl Into<String>) -> SelectError {
        self.hint = Some(h.into());
        self
    }

    /// PGRST205: the table is not one the replica syncs.
    pub fn no_table(table: &str) -> SelectError {
        SelectError::new("PGRST205", format!("Could not find the table 'public.{table}' in the schema cache"))
    }

    /// 42703: a column the table does not have.
    pub fn no_column(table: &str, column: &str) -> SelectError {
        SelectError::new("42703", format!("column {table}.{column} does not exist"))
    }

    /// PGRST200: no reference joins the two tables.
    pub fn no_relation(parent: &str, relation: &str, hint: Option<&str>) -> SelectError {
        let details = match hint {
            Some(h) => format!(
                "Searched for a foreign key relationship between '{parent}' and '{relation}' using the hint '{h}' in the schema 'public', but no matches were found."
            ),
            None => format!("Searched for a foreign key relationship between '{parent}' and '{relation}' in the schema 'public', but no matches were found."),
        };
        SelectError::new("PGRST200", format!("Could not find a relationship between '{parent}' and '{relation}' in the schema cache")).details(details)
    }

    /// PGRST201: several references join the two tables and no hint picks one.
    pub fn ambiguous(parent: &str, relation: &str) -> SelectError {
        SelectError::new("PGRST201", format!("Could not embed because more than one relationship was found for '{parent}' and '{relation}'"))
            .hint(format!("Try changing '{relation}' to one of the following: '{relation}!<column>'. Find the desired relationship in the 'details' key."))
    }

    /// PGRST108: filters or an order for an embed the select does not have.
    pub fn not_embedded(path: &str) -> SelectError {
        SelectError::new("PGRST108", format!("'{path}' is not an embedded resource in this request"))
            .hint(format!("Verify that '{path}' is included in the 'select' query parameter."))
    }

    /// PGRST116: `single()` found no row or several.
    pub fn not_one(n: usize) -> SelectError {
        SelectError::new("PGRST116", "Cannot coerce the result to a single JSON object")
            .details(format!("The result contains {n} rows"))
    }

    /// PGRST103: an offset past the end of a counted answer.
    pub fn past_the_end(offset: usize, total: u64) -> SelectError {
        SelectError::new("PGRST103", "Requested range not satisfiable")
            .details(format!("An offset of {offset} was requested, but there are only {total} rows."))
    }

    /// 0A000: part of PostgREST's language this replica does not answer (casts, JSON
    /// paths, full-text search, range operators): said, never silently ignored.
    pub fn unsupported(what: &str) -> SelectError {
        SelectError::new("0A000", format!("{what} is not supported by local queries"))
            .hint("Ask the server for it with supabase-js, or select the column and compute it in the app.")
    }

    /// 42712: two embeds under one name.
    pub fn duplicate_embed(table: &str, relation: &str, depth: usize) -> SelectError {
        SelectError::new("42712", format!("table name \"{table}_{relation}_{depth}\" specified more than once"))
    }
}

impl From<SyntaxError> for SelectError {
    fn from(e: SyntaxError) -> SelectError {
        SelectError::new(SyntaxError::CODE, e.message).details(e.details)
    }
}

impl From<BadLiteral> for SelectError {
    fn from(e: BadLiteral) -> SelectError {
        SelectError::new(e.code, e.message)
    }
}
