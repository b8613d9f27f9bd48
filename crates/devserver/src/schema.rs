//! The schema cache: what tables, columns, keys and functions exist.
//!
//! Like PostgREST, the server checks every identifier a request names (table, column,
//! function, conflict target) against this cache before it writes any SQL, and only then
//! quotes it into the statement; values are always bound parameters. The cache is loaded
//! from the catalog at start, reloaded when DDL runs (an event trigger sends `NOTIFY
//! pgrst`), and reloaded once more when a request names something it does not know, so a
//! table created a moment ago is found.

use std::collections::HashMap;
use std::sync::Arc;

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type()`: a type name that is valid SQL as written (from the catalog).
    pub sql_type: String,
    /// `pg_type.typname` (`int4`, `text`, `_text`…), as Realtime reports it.
    pub type_name: String,
    /// The default expression (from the catalog), if any.
    pub default: Option<String>,
    /// A generated column, which cannot be written.
    pub generated: bool,
}

/// A foreign key from one table to another.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

/// A computed field: a function of one argument, this table's row type, returning a
/// scalar. It reads like a column (`select=name`, filters, order) but is not in `*` and
/// cannot be written.
#[derive(Debug, Clone)]
pub struct ComputedField {
    /// The function, quoted and schema-qualified (from the catalog).
    pub function: String,
    /// Its result, described as a column called by the function's name.
    pub column: Column,
}

/// A computed relationship: a function of one argument, this table's row type, returning
/// rows of an exposed table or view; embedded by the function's name.
#[derive(Debug, Clone)]
pub struct ComputedRel {
    pub name: String,
    /// The function, quoted and schema-qualified (from the catalog).
    pub function: String,
    pub target: Arc<Table>,
    /// At most one row (a single row type, or `SETOF … ROWS 1`): an object.
    pub one: bool,
}

/// A table, view or materialised view in an exposed schema.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    pub rls: bool,
    pub computed: Vec<ComputedField>,
    pub computed_rels: Vec<ComputedRel>,
}

impl Table {
    /// The column called `name`, if it exists.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The computed field called `name`, if there is one.
    pub fn computed_field(&self, name: &str) -> Option<&ComputedField> {
        self.computed.iter().find(|c| c.column.name == name)
    }

    /// `"schema"."table"`, quoted.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// A function callable through `/rest/v1/rpc`.
#[derive(Debug, Clone)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// Input arguments, in order: (name, `format_type`).
    pub args: Vec<(String, String)>,
    /// How many trailing arguments have defaults.
    pub defaults: usize,
    pub returns_set: bool,
    /// Returns a row type (composite or `record`), so the result is an object per row.
    pub returns_row: bool,
    pub returns_void: bool,
    /// `v`olatile, `s`table or `i`mmutable: read-only transactions for the latter two.
    pub volatility: char,
    /// The columns of the rows it returns, when they are known: a table or view of an
    /// exposed schema (with its keys, so results embed like the table), a composite
    /// type, or `RETURNS TABLE`/`OUT` columns. Such results take `select`, filters,
    /// `order`, `limit`/`offset` and counts like a table.
    pub result: Option<Arc<Table>>,
}

/// Everything the REST and Realtime layers look identifiers up in.
#[derive(Debug, Default)]
pub struct SchemaCache {
    pub tables: HashMap<(String, String), Arc<Table>>,
    pub functions: HashMap<(String, String), Vec<Arc<Function>>>,
    pub config: InDatabaseConfig,
    /// The schema PostGIS is installed in, if it is (GeoJSON answers need it).
    pub postgis: Option<String>,
}

/// PostgREST's in-database configuration: `pgrst.*` settings of the `authenticator`
/// role (`ALTER ROLE authenticator SET pgrst.db_aggregates_enabled = 'true'`), read
/// with the schema. Both default to off, as in PostgREST and on Supabase.
#[derive(Debug, Default, Clone, Copy)]
pub struct InDatabaseConfig {
    /// `pgrst.db_aggregates_enabled`: `count()`, `col.sum()` and the rest in `select`.
    pub aggregates: bool,
    /// `pgrst.db_plan_enabled`: `Accept: application/vnd.pgrst.plan` answers.
    pub plans: bool,
}

impl SchemaCache {
    /// The table `schema.name`.
    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.tables.get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// Load the cache for `schemas` from the catalog.
    pub async fn load(client: &tokio_postgres::Client, schemas: &[String]) -> Result<SchemaCache, tokio_postgres::Error> {
        let mut tables: HashMap<u32, Table> = HashMap::new();
        // Composite types: only ever the shape of a function's result.
        let mut composite: std::collections::HashSet<u32> = Default::default();
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, c.oid::oid, c.relrowsecurity, c.relkind = 'c'
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r','v','m','p','f','c') AND n.nspname = ANY($1)",
                &[&schemas],
            )
            .await?;
        for r in rows {
            let oid: u32 = r.get(2);
            if r.get::<_, bool>(4) {
                composite.insert(oid);
            }
            tables.insert(
                oid,
                Table {
                    schema: r.get(0),
                    name: r.get(1),
                    oid,
                    columns: vec![],
                    primary_key: vec![],
                    unique_keys: vec![],
                    foreign_keys: vec![],
                    rls: r.get(3),
                    ..Default::default()
                },
            );
        }
        let rows = client
            .query(
                "SELECT a.attrelid::oid, a.attname::text, format_type(a.atttypid, a.atttypmod),
                        t.typname::text,
                        -- An identity column has no pg_attrdef entry: its default is its sequence.
                        CASE WHEN a.attidentity <> '' THEN
                               format('nextval(%L::regclass)', pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname))
                             ELSE pg_get_expr(d.adbin, d.adrelid) END,
                        a.attgenerated <> ''
                 FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_type t ON t.oid = a.atttypid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname = ANY($1)
                   AND c.relkind IN ('r','v','m','p','f','c')
                 ORDER BY a.attrelid, a.attnum",
                &[&schemas],
            )
            .await?;
        for r in rows {
            let oid: u32 = r.get(0);
            if let Some(t) = tables.get_mut(&oid) {
                let identity_or_default: Option<String> = r.get(4);
                t.columns.push(Column {
                    name: r.get(1),
                    sql_type: r.get(2),
                    type_name: r.get(3),
                    default: identity_or_default,
                    generated: r.get(5),
                });
            }
        }
        let rows = client
            .query(
                "SELECT con.conrelid::oid, con.contype::text, con.conname::text,
                        array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                        rn.nspname::text, rc.relname::text,
                        array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
                 FROM pg_constraint con
                 JOIN pg_class c ON c.oid = con.conrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_class rc ON rc.oid = con.confrelid
                 LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                 WHERE con.contype IN ('p','u','f') AND n.nspname = ANY($1)",
                &[&schemas],
            )
            .await?;
        for r in rows {
            let oid: u32 = r.get(0);
            let Some(t) = tables.get_mut(&oid) else { continue };
            let kind: String = r.get(1);
            let cols: Vec<String> = r.get(3);
            match kind.as_str() {
                "p" => t.primary_key = cols,
                "u" => t.unique_keys.push(cols),
                _ => {
                    let ref_schema: Option<String> = r.get(4);
                    let ref_table: Option<String> = r.get(5);
                    if let (Some(ref_schema), Some(ref_table)) = (ref_schema, ref_table) {
                        t.foreign_keys.push(ForeignKey {
                            name: r.get(2),
                            columns: cols,
                            ref_schema,
                            ref_table,
                            ref_columns: r.get(6),
                        });
                    }
                }
            }
        }
        // Views take part in relationships through the table columns they show, as in
        // PostgREST: a view showing a table's foreign-key columns has that key, and a
        // view showing the columns a key points at can be embedded in its place. A view
        // column counts as the table's when it depends on it and has its name.
        let rows = client
            .query(
                "SELECT DISTINCT v.oid::oid, d.refobjid::oid, a.attname::text
                 FROM pg_class v
                 JOIN pg_namespace n ON n.oid = v.relnamespace
                 JOIN pg_rewrite r ON r.ev_class = v.oid
                 JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE v.relkind IN ('v', 'm') AND n.nspname = ANY($1) AND d.refobjid <> v.oid",
                &[&schemas],
            )
            .await?;
        let mut shown: HashMap<(u32, u32), Vec<String>> = HashMap::new();
        for r in rows {
            shown.entry((r.get(0), r.get(1))).or_default().push(r.get(2));
        }
        let mut view_keys: Vec<(u32, ForeignKey)> = vec![];
        for ((view, source), cols) in &shown {
            let (Some(v), Some(src)) = (tables.get(view), tables.get(source)) else { continue };
            let shows = |needed: &[String]| needed.iter().all(|c| cols.contains(c) && v.column(c).is_some());
            // The source's own keys, seen from the view.
            for fk in &src.foreign_keys {
                if shows(&fk.columns) {
                    view_keys.push((*view, fk.clone()));
                }
            }
            // Keys pointing at the source, pointing at the view instead.
            for (oid, t) in &tables {
                for fk in &t.foreign_keys {
                    if fk.ref_schema == src.schema && fk.ref_table == src.name && shows(&fk.ref_columns) {
                        view_keys.push((
                            *oid,
                            ForeignKey { ref_schema: v.schema.clone(), ref_table: v.name.clone(), ..fk.clone() },
                        ));
                    }
                }
            }
        }
        for (oid, fk) in view_keys {
            if let Some(t) = tables.get_mut(&oid) {
                t.foreign_keys.push(fk);
            }
        }
        // Unique indexes (not only constraints) can be upsert targets too.
        let rows = client
            .query(
                "SELECT i.indrelid::oid,
                        array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND n.nspname = ANY($1)",
                &[&schemas],
            )
            .await?;
        for r in rows {
            let oid: u32 = r.get(0);
            if let Some(t) = tables.get_mut(&oid) {
                let cols: Vec<String> = r.get(1);
                if !t.unique_keys.contains(&cols) {
                    t.unique_keys.push(cols);
                }
            }
        }

        let by_oid: HashMap<u32, Arc<Table>> = tables.into_iter().map(|(oid, t)| (oid, Arc::new(t))).collect();
        let mut functions: HashMap<(String, String), Vec<Arc<Function>>> = HashMap::new();
        let mut computed: HashMap<u32, Vec<ComputedField>> = HashMap::new();
        let mut computed_rels: HashMap<u32, Vec<ComputedRel>> = HashMap::new();
        let rows = client
            .query(
                "SELECT n.nspname::text, p.proname::text, p.proargnames::text[], p.proargmodes::text[],
                        array(SELECT format_type(x, NULL) FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                              WITH ORDINALITY u(x, o) ORDER BY o),
                        p.proretset, t.typtype::text, t.typname::text, p.provolatile::text, p.pronargdefaults::int4,
                        t.typrelid::oid,
                        array(SELECT t2.typname::text FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                              WITH ORDINALITY u(x, o) JOIN pg_type t2 ON t2.oid = u.x ORDER BY o),
                        -- For computed fields and relationships: the relation whose row type
                        -- a one-argument function takes, its result type, its row estimate.
                        CASE WHEN p.pronargs = 1 THEN (SELECT t3.typrelid FROM pg_type t3 WHERE t3.oid = p.proargtypes[0]) END,
                        format_type(p.prorettype, NULL), p.prorows::float8,
                        format('%I.%I', n.nspname, p.proname)
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 JOIN pg_type t ON t.oid = p.prorettype
                 WHERE n.nspname = ANY($1) AND p.prokind = 'f'",
                &[&schemas],
            )
            .await?;
        for r in rows {
            let names: Option<Vec<String>> = r.get(2);
            let modes: Option<Vec<String>> = r.get(3);
            let types: Vec<String> = r.get(4);
            let typnames: Vec<String> = r.get(11);
            let mut args = vec![];
            let mut out_columns = vec![];
            for (i, ty) in types.iter().enumerate() {
                let mode = modes.as_ref().and_then(|m| m.get(i)).map(String::as_str).unwrap_or("i");
                let name = names.as_ref().and_then(|n| n.get(i)).cloned().unwrap_or_default();
                if matches!(mode, "i" | "b" | "v") {
                    args.push((name.clone(), ty.clone()));
                }
                if matches!(mode, "o" | "b" | "t") {
                    out_columns.push(Column {
                        name,
                        sql_type: ty.clone(),
                        type_name: typnames.get(i).cloned().unwrap_or_default(),
                        default: None,
                        generated: false,
                    });
                }
            }
            let typtype: String = r.get(6);
            let typname: String = r.get(7);
            let vol: String = r.get(8);
            let ndefaults: i32 = r.get(9);
            let relid: u32 = r.get(10);
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            let result = match by_oid.get(&relid) {
                Some(t) => Some(Arc::clone(t)),
                None if typname == "record" && !out_columns.is_empty() => Some(Arc::new(Table {
                    schema: schema.clone(),
                    name: name.clone(),
                    oid: 0,
                    columns: out_columns,
                    primary_key: vec![],
                    unique_keys: vec![],
                    foreign_keys: vec![],
                    rls: false,
                    ..Default::default()
                })),
                None => None,
            };
            let arg_relid: Option<u32> = r.get(12);
            let returns_set: bool = r.get(5);
            let (ret_type, rows, qualified): (String, f64, String) = (r.get(13), r.get(14), r.get(15));
            if let (Some(relid), 1) = (arg_relid, args.len()) {
                if by_oid.contains_key(&relid) {
                    if returns_set || typtype == "c" {
                        if let Some(target) = result.as_ref().filter(|t| t.oid != 0) {
                            computed_rels.entry(relid).or_default().push(ComputedRel {
                                name: name.clone(),
                                function: qualified.clone(),
                                target: Arc::clone(target),
                                one: !returns_set || rows == 1.0,
                            });
                        }
                    } else if typname != "void" && typname != "record" {
                        computed.entry(relid).or_default().push(ComputedField {
                            function: qualified.clone(),
                            column: Column {
                                name: name.clone(),
                                sql_type: ret_type,
                                type_name: typname.clone(),
                                default: None,
                                generated: true,
                            },
                        });
                    }
                }
            }
            let f = Function {
                schema,
                name,
                args,
                defaults: ndefaults.max(0) as usize,
                returns_set,
                returns_row: typtype == "c" || typname == "record",
                returns_void: typname == "void",
                volatility: vol.chars().next().unwrap_or('v'),
                result,
            };
            functions
                .entry((f.schema.clone(), f.name.clone()))
                .or_default()
                .push(Arc::new(f));
        }

        // Tables with computed fields or relationships get them (function results keep
        // the plain copies: what a function returns is shaped by its own columns).
        let by_oid: HashMap<u32, Arc<Table>> = by_oid
            .into_iter()
            .map(|(oid, t)| {
                let (fields, rels) = (computed.remove(&oid), computed_rels.remove(&oid));
                if fields.is_none() && rels.is_none() {
                    return (oid, t);
                }
                let mut t = (*t).clone();
                t.computed = fields.unwrap_or_default();
                t.computed_rels = rels.unwrap_or_default();
                (oid, Arc::new(t))
            })
            .collect();
        let mut config = InDatabaseConfig::default();
        let settings = client
            .query(
                "SELECT split_part(c, '=', 1), lower(substr(c, strpos(c, '=') + 1))
                 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
                 WHERE r.rolname = 'authenticator'
                   AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
                 ORDER BY s.setdatabase",
                &[],
            )
            .await?;
        for r in settings {
            let (key, value): (String, String) = (r.get(0), r.get(1));
            let on = matches!(value.as_str(), "true" | "on" | "1" | "yes");
            match key.as_str() {
                "pgrst.db_aggregates_enabled" => config.aggregates = on,
                "pgrst.db_plan_enabled" => config.plans = on,
                _ => {}
            }
        }
        let postgis: Option<String> = client
            .query_opt(
                "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        Ok(SchemaCache {
            config,
            postgis,
            tables: by_oid
                .into_iter()
                .filter(|(oid, _)| !composite.contains(oid))
                .map(|(_, t)| ((t.schema.clone(), t.name.clone()), t))
                .collect(),
            functions,
        })
    }
}

/// Quote an identifier for SQL. Only ever applied to names already checked against the
/// catalog (or generated by the server), never to free text from a request.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
