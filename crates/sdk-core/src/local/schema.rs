//! Declaring what syncs (DESIGN §2.1).
//!
//! Each synced table names its server primary key, the local-id column every device
//! shares, the owner column RLS compares with `auth.uid()`, the version column, the
//! columns that reference other synced tables, and the columns local queries index.
//! The same declaration is read from a JSON schema file (the CLI and the examples):
//!
//! ```json
//! {"tables":[{"name":"messages","key":"id","local_id":"local_id","owner":"user_id",
//!   "version":"updated_at","references":{"conversation_id":"conversations"},
//!   "indexes":["conversation_id", "conversation_id, created_at"]}]}
//! ```
//!
//! An index is one column or several, comma-separated, kept in order
//! ([`crate::local::index`]): local queries filter by equality on its first columns
//! and read the next one in order, so `"conversation_id, created_at"` answers "the
//! newest 50 messages of a conversation" by reading 50 rows. A column declared with a
//! timestamp type is ordered as instants.
//!
//! Omitted fields take those defaults. A table whose rows several users read (an
//! organisation's library, a shared conversation) also names the column that holds
//! its scope id, `"shared_by": "org_id"`, as the SQL kit's `supasync.share_by` does on
//! the server (the kit says which scope that is; see [`crate::sync::scopes`]).
//!
//! A schema is checked once, when it is built:
//! references must name declared tables and must not form a cycle, because pushes and
//! pulls go parents first ([`Schema::parent_order`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::local::index::{IndexColumn, IndexDef};
use crate::local::local_row::{id_text, server_key, Row};
use crate::local::time::is_time_type;

fn default_key() -> String {
    "id".into()
}
fn default_local_id() -> String {
    "local_id".into()
}
fn default_owner() -> String {
    "user_id".into()
}
fn default_version() -> String {
    "updated_at".into()
}

/// One synced table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    pub name: String,
    #[serde(default = "default_key")]
    pub key: String,
    #[serde(default = "default_local_id")]
    pub local_id: String,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default = "default_version")]
    pub version: String,
    /// column → referenced synced table (the reference is to that table's `key`).
    #[serde(default)]
    pub references: BTreeMap<String, String>,
    /// Indexes for local queries: each a column, or columns separated by commas
    /// (`"conversation_id, created_at"`), see [`TableDecl::index_defs`].
    #[serde(default)]
    pub indexes: Vec<String>,
    /// The column holding a shared row's scope id (`supasync.share_by` on the server);
    /// `None` for a table only its owner reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_by: Option<String>,
    /// The table's columns and their PostgreSQL types (`{"title": "text",
    /// "created_at": "timestamptz"}`), for local queries: with them an unknown column
    /// is refused as PostgREST refuses it, and filters compare as the type does
    /// (timestamps as instants). Optional: without them, any column may be named (an
    /// absent one reads as null) and values compare as their JSON says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// column → Storage bucket: the column holds the path of a file in that bucket
    /// (`"files": {"attachment": "attachments"}`). A row naming a file uploaded on
    /// this device is pushed only once the file is stored, and a refused upload
    /// refuses it too ([`crate::local::files`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

impl TableDecl {
    /// The local key of a row as the server sends it: its local id, or, for a row
    /// created on the server without one, a key derived from its server id
    /// ([`server_key`]).
    pub fn row_key(&self, server_row: &Row) -> Option<String> {
        match server_row.get(&self.local_id) {
            Some(Value::String(l)) if !l.is_empty() => Some(l.clone()),
            _ => server_row.get(&self.key).map(|id| server_key(&id_text(id))),
        }
    }

    /// A declaration with every default, for `name`.
    pub fn new(name: &str) -> TableDecl {
        TableDecl {
            name: name.into(),
            key: default_key(),
            local_id: default_local_id(),
            owner: default_owner(),
            version: default_version(),
            references: BTreeMap::new(),
            indexes: vec![],
            shared_by: None,
            columns: BTreeMap::new(),
            files: BTreeMap::new(),
        }
    }

    /// Builder: `column` holds the path of a file in `bucket`.
    pub fn file(mut self, column: &str, bucket: &str) -> TableDecl {
        self.files.insert(column.into(), bucket.into());
        self
    }

    /// What the push must wait for and a refusal must follow: the references to other
    /// tables, and each file column as a reference to its bucket's pseudo-table.
    pub fn dependencies(&self) -> impl Iterator<Item = (&String, String)> {
        self.references
            .iter()
            .map(|(c, t)| (c, t.clone()))
            .chain(self.files.iter().map(|(c, b)| (c, crate::local::files::files_table(b))))
    }

    /// Builder: rows are shared by the scope id in `column` (see [`crate::sync::scopes`]).
    pub fn shared_by(mut self, column: &str) -> TableDecl {
        self.shared_by = Some(column.into());
        self
    }

    /// Builder: `column` references `table`.
    pub fn references(mut self, column: &str, table: &str) -> TableDecl {
        self.references.insert(column.into(), table.into());
        self
    }

    /// Builder: index `columns` for local queries: one column, or several separated
    /// by commas (`"conversation_id, created_at"`).
    pub fn index(mut self, columns: &str) -> TableDecl {
        self.indexes.push(columns.into());
        self
    }

    /// One `indexes` entry as the index a store keeps (timestamps declared in
    /// `columns` ordered as instants); `None` for an entry that names no column.
    fn index_def(&self, entry: &str) -> Option<IndexDef> {
        let columns = entry
            .split(',')
            .map(|c| {
                let name = c.trim().to_string();
                let instant = self.columns.get(&name).is_some_and(|t| is_time_type(t));
                IndexColumn { name, instant }
            })
            .collect();
        IndexDef::new(columns)
    }

    /// The declared indexes, as stores keep them.
    pub fn index_defs(&self) -> Vec<IndexDef> {
        self.indexes.iter().filter_map(|e| self.index_def(e)).collect()
    }

    /// The narrowest declared index whose first column is `column`.
    pub fn index_on(&self, column: &str) -> Option<IndexDef> {
        self.index_defs().into_iter().filter(|i| i.parts()[0].name == column).min_by_key(|i| i.parts().len())
    }

    /// Builder: the table has `column` of PostgreSQL type `ty` (see [`TableDecl::columns`]).
    pub fn column(mut self, column: &str, ty: &str) -> TableDecl {
        self.columns.insert(column.into(), ty.into());
        self
    }

    /// Whether local queries may name `column`: any column when none are declared,
    /// else a declared one or one the sync itself keeps.
    pub fn has_column(&self, column: &str) -> bool {
        self.columns.is_empty()
            || self.columns.contains_key(column)
            || [&self.key, &self.local_id, &self.owner, &self.version].iter().any(|c| *c == column)
            || column == "sync_txid"
    }

    /// Columns the server owns: a row written locally may not set them.
    pub fn server_columns(&self) -> [&str; 3] {
        [self.key.as_str(), self.version.as_str(), "sync_txid"]
    }
}

/// Why a schema or a row does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema JSON is invalid: {0}")]
    Json(String),
    #[error("table `{0}` is declared twice")]
    Duplicate(String),
    #[error("table `{0}` has an empty name or column name")]
    EmptyName(String),
    #[error("`{table}.{column}` references `{target}`, which is not a declared table")]
    UnknownReference { table: String, column: String, target: String },
    #[error("references form a cycle through `{0}`; pushes need parents before children")]
    Cycle(String),
    #[error("unknown table `{0}`")]
    UnknownTable(String),
    #[error("a row of `{table}` must be a JSON object, got {got}")]
    NotAnObject { table: String, got: String },
    #[error("`{table}.{column}` is set by the server and cannot be written locally")]
    ServerColumn { table: String, column: String },
    #[error("`{table}` is declared shared by `{column}`, but the SQL kit {kit}")]
    SharedMismatch { table: String, column: String, kit: String },
    #[error("index `{index}` of `{table}`: {why}")]
    BadIndex { table: String, index: String, why: String },
    #[error("`{table}.{column}` references `{target}` and must be a local id (string) or null, got {got}")]
    BadReference { table: String, column: String, target: String, got: String },
    #[error("`{table}.{column}` holds files of bucket {bucket:?}, which is not a bucket name")]
    BadBucket { table: String, column: String, bucket: String },
}

/// The synced tables of an app, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    tables: Vec<TableDecl>,
    by_name: HashMap<String, usize>,
    order: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    tables: Vec<TableDecl>,
}

impl Schema {
    /// Build and check a schema.
    pub fn new(tables: Vec<TableDecl>) -> Result<Schema, SchemaError> {
        let mut by_name = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            let names = [&t.name, &t.key, &t.local_id, &t.owner, &t.version];
            if names.iter().chain(t.shared_by.as_ref().as_slice()).any(|n| n.trim().is_empty()) {
                return Err(SchemaError::EmptyName(t.name.clone()));
            }
            if by_name.insert(t.name.clone(), i).is_some() {
                return Err(SchemaError::Duplicate(t.name.clone()));
            }
        }
        for t in &tables {
            for entry in &t.indexes {
                let why = match t.index_def(entry) {
                    None => Some("an index names one column or several, separated by commas".to_string()),
                    Some(def) => def.parts().iter().find(|c| !t.has_column(&c.name)).map(|c| format!("`{}` is not among the declared columns", c.name)),
                };
                if let Some(why) = why {
                    return Err(SchemaError::BadIndex { table: t.name.clone(), index: entry.clone(), why });
                }
            }
            for (col, bucket) in &t.files {
                if crate::local::files::check_name(bucket, "x").is_err() || t.references.contains_key(col) {
                    return Err(SchemaError::BadBucket { table: t.name.clone(), column: col.clone(), bucket: bucket.clone() });
                }
            }
            for (col, target) in &t.references {
                if !by_name.contains_key(target) {
                    return Err(SchemaError::UnknownReference {
                        table: t.name.clone(),
                        column: col.clone(),
                        target: target.clone(),
                    });
                }
            }
        }
        let order = topo_order(&tables, &by_name)?;
        Ok(Schema { tables, by_name, order })
    }

    /// Read the JSON schema file format.
    pub fn from_json(json: &str) -> Result<Schema, SchemaError> {
        let f: SchemaFile = serde_json::from_str(json).map_err(|e| SchemaError::Json(e.to_string()))?;
        Schema::new(f.tables)
    }

    /// The declaration of `name`.
    pub fn table(&self, name: &str) -> Result<&TableDecl, SchemaError> {
        self.by_name
            .get(name)
            .map(|i| &self.tables[*i])
            .ok_or_else(|| SchemaError::UnknownTable(name.into()))
    }

    /// Tables with every parent before its children (self-references allowed).
    pub fn parent_order(&self) -> impl Iterator<Item = &TableDecl> {
        self.order.iter().map(|i| &self.tables[*i])
    }

    /// Whether any table is shared by a scope.
    pub fn has_shared(&self) -> bool {
        self.tables.iter().any(|t| t.shared_by.is_some())
    }

    /// All declared tables, in declaration order.
    pub fn tables(&self) -> &[TableDecl] {
        &self.tables
    }

    /// Whether some table's column references `table` (its rows have children).
    pub fn is_referenced(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t.references.iter().any(|(_, parent)| parent == table))
    }

    /// Check a row the app wants to write: an object, no server-owned columns, and
    /// references that are local ids (strings) or null.
    pub fn check_write(&self, table: &str, row: &Value) -> Result<Row, SchemaError> {
        let t = self.table(table)?;
        let Value::Object(m) = row else {
            return Err(SchemaError::NotAnObject {
                table: table.into(),
                got: kind(row).into(),
            });
        };
        for c in t.server_columns() {
            if m.contains_key(c) {
                return Err(SchemaError::ServerColumn {
                    table: table.into(),
                    column: c.into(),
                });
            }
        }
        for (col, target) in t.dependencies() {
            match m.get(col) {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(SchemaError::BadReference {
                        table: table.into(),
                        column: col.clone(),
                        target,
                        got: kind(other).into(),
                    })
                }
            }
        }
        Ok(m.clone())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Depth-first topological order over references; a cycle (other than a table
/// referencing itself) is an error.
fn topo_order(tables: &[TableDecl], by_name: &HashMap<String, usize>) -> Result<Vec<usize>, SchemaError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        None,
        Visiting,
        Done,
    }
    fn visit(i: usize, tables: &[TableDecl], by_name: &HashMap<String, usize>, marks: &mut [Mark], out: &mut Vec<usize>) -> Result<(), SchemaError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Visiting => return Err(SchemaError::Cycle(tables[i].name.clone())),
            Mark::None => {}
        }
        marks[i] = Mark::Visiting;
        for target in tables[i].references.values() {
            let j = by_name[target];
            if j != i {
                visit(j, tables, by_name, marks, out)?;
            }
        }
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::None; tables.len()];
    let mut out = vec![];
    for i in 0..tables.len() {
        visit(i, tables, by_name, &mut marks, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_json_format_with_defaults() {
        let s = Schema::from_json(
            r#"{"tables":[{"name":"messages","references":{"conversation_id":"conversations"},"indexes":["conversation_id"]},
                           {"name":"conversations","owner":"owner_id"}]}"#,
        )
        .unwrap();
        let m = s.table("messages").unwrap();
        assert_eq!((m.key.as_str(), m.local_id.as_str(), m.owner.as_str(), m.version.as_str()), ("id", "local_id", "user_id", "updated_at"));
        assert_eq!(s.table("conversations").unwrap().owner, "owner_id");
        assert_eq!(m.shared_by, None);
        let shared = Schema::from_json(r#"{"tables":[{"name":"agents","owner":"created_by","shared_by":"org_id"}]}"#).unwrap();
        assert_eq!(shared.table("agents").unwrap().shared_by.as_deref(), Some("org_id"));
        assert!(shared.has_shared() && !s.has_shared());
        let order: Vec<&str> = s.parent_order().map(|t| t.name.as_str()).collect();
        assert_eq!(order, vec!["conversations", "messages"], "parents first");
    }

    #[test]
    fn indexes_are_columns_in_order_with_timestamps_as_instants() {
        let t = TableDecl::new("messages").column("conversation_id", "uuid").column("at", "timestamptz").index("conversation_id").index(" conversation_id , at ");
        let names: Vec<String> = t.index_defs().iter().map(|i| i.name()).collect();
        assert_eq!(names, ["(conversation_id)", "(conversation_id,at@time)"]);
        assert_eq!(t.index_on("conversation_id").map(|i| i.name()).as_deref(), Some("(conversation_id)"), "the narrowest");
        assert_eq!(t.index_on("at"), None);
        Schema::new(vec![t]).unwrap();
    }

    #[test]
    fn refuses_bad_schemas() {
        assert!(matches!(Schema::from_json("{"), Err(SchemaError::Json(_))));
        assert!(matches!(Schema::from_json(r#"{"tables":[{"name":"a","colour":"red"}]}"#), Err(SchemaError::Json(_))));
        assert!(matches!(Schema::new(vec![TableDecl::new("a"), TableDecl::new("a")]), Err(SchemaError::Duplicate(_))));
        assert!(matches!(Schema::new(vec![TableDecl::new("a").index("x,,y")]), Err(SchemaError::BadIndex { .. })));
        let e = Schema::new(vec![TableDecl::new("a").column("x", "text").index("x, at")]).unwrap_err();
        assert_eq!(e.to_string(), "index `x, at` of `a`: `at` is not among the declared columns");
        assert!(matches!(
            Schema::new(vec![TableDecl::new("a").references("b_id", "b")]),
            Err(SchemaError::UnknownReference { .. })
        ));
        assert!(matches!(
            Schema::new(vec![TableDecl::new("a").references("b_id", "b"), TableDecl::new("b").references("a_id", "a")]),
            Err(SchemaError::Cycle(_))
        ));
        assert!(Schema::new(vec![TableDecl::new("tree").references("parent_id", "tree")]).is_ok(), "self-references are fine");
        assert!(matches!(Schema::new(vec![TableDecl::new(" ")]), Err(SchemaError::EmptyName(_))));
        assert!(matches!(Schema::new(vec![TableDecl::new("a").shared_by("")]), Err(SchemaError::EmptyName(_))));
    }

    #[test]
    fn checks_rows_written_locally() {
        let s = Schema::new(vec![TableDecl::new("c"), TableDecl::new("m").references("c_id", "c")]).unwrap();
        assert!(s.check_write("m", &json!({"body":"hi","c_id":"L1"})).is_ok());
        assert!(matches!(s.check_write("x", &json!({})), Err(SchemaError::UnknownTable(_))));
        assert!(matches!(s.check_write("m", &json!([1])), Err(SchemaError::NotAnObject { .. })));
        assert!(matches!(s.check_write("m", &json!({"id": 5})), Err(SchemaError::ServerColumn { .. })));
        assert!(matches!(s.check_write("m", &json!({"updated_at": "x"})), Err(SchemaError::ServerColumn { .. })));
        assert!(matches!(s.check_write("m", &json!({"c_id": 7})), Err(SchemaError::BadReference { .. })));
    }
}
