//! A channel's `postgres_changes` bindings at join, checked as Realtime checks them: the
//! table must be in the `supabase_realtime` publication and readable by the caller's
//! role, and each filter must name a column and an operator Realtime knows (it is
//! canonicalized, so equal filters are one subscription). Each binding gets the id the
//! join reply echoes.

use serde_json::{json, Value};

use super::filter;
use super::hub::{EventFilter, PgBinding};
use crate::schema::quote_ident;
use crate::state::AppState;

/// Check each postgres_changes entry: table in the publication, filter column
/// readable by the role, filter values castable to its type.
pub(super) async fn validate_bindings(
    st: &AppState,
    role: &str,
    entries: &[Value],
) -> (Vec<PgBinding>, Vec<Value>, Option<String>) {
    let mut bindings = vec![];
    let mut echo = vec![];
    let mut error: Option<String> = None;
    if entries.is_empty() {
        return (bindings, echo, None);
    }
    let published: Vec<(String, String)> = match st.client().await {
        Ok(c) => match c
            .query(
                "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = 'supabase_realtime'",
                &[],
            )
            .await
        {
            Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            Err(e) => {
                error = Some(format!("Realtime could not read the publication: {}", crate::pgerr::describe(&e)));
                vec![]
            }
        },
        Err(e) => {
            error = Some(e);
            vec![]
        }
    };
    for entry in entries {
        let Value::Object(o) = entry else {
            error.get_or_insert_with(|| "Error parsing `postgres_changes` params: each entry must be an object".into());
            echo.push(entry.clone());
            continue;
        };
        let event_s = o.get("event").and_then(Value::as_str).unwrap_or("*").to_string();
        let schema = o.get("schema").and_then(Value::as_str).unwrap_or("public").to_string();
        let table = o.get("table").and_then(Value::as_str).map(str::to_string);
        let filter_s = o.get("filter").and_then(Value::as_str).map(str::to_string);
        let id = binding_id(&event_s, &schema, table.as_deref().unwrap_or(""), filter_s.as_deref().unwrap_or(""));
        let mut e = o.clone();
        e.insert("id".into(), json!(id));
        echo.push(Value::Object(e));
        let table = table.filter(|t| t != "*");
        let params_text = format!(
            "[event: {event_s}, schema: {schema}, table: {}, filters: [{}]]",
            table.as_deref().unwrap_or("*"),
            filter_s.as_deref().unwrap_or("")
        );
        let in_pub = published
            .iter()
            .any(|(s, t)| (schema == "*" || *s == schema) && table.as_ref().is_none_or(|x| x == t));
        if !in_pub {
            error.get_or_insert_with(|| format!(
                "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: {params_text}"
            ));
            continue;
        }
        let filter = match &filter_s {
            None => None,
            Some(fs) => match canonical_filter(st, role, &schema, table.as_deref(), fs).await {
                Ok(f) => Some(f),
                Err(msg) => {
                    error.get_or_insert(msg);
                    continue;
                }
            },
        };
        bindings.push(PgBinding {
            id,
            event: EventFilter::parse(Some(&event_s)),
            schema,
            table,
            filter,
        });
    }
    (bindings, echo, error)
}

async fn canonical_filter(st: &AppState, role: &str, schema: &str, table: Option<&str>, fs: &str) -> Result<filter::Filter, String> {
    let mut f = filter::parse(fs)?;
    let table = table.ok_or("Error parsing `filter` params: a filter needs a table")?;
    let (_, t) = st
        .table(schema, table)
        .await
        .ok_or_else(|| format!("invalid table for filter: {schema}.{table}"))?;
    let col = t
        .column(&f.column)
        .ok_or_else(|| format!("invalid column for filter {}", f.column))?;
    let c = st.client().await?;
    let sql = format!(
        "SELECT has_column_privilege($1::text, $2::oid, $3::text, 'SELECT'),
                (SELECT jsonb_agg(to_jsonb(CAST(x AS {ty})) ORDER BY o) FROM unnest($4::text[]) WITH ORDINALITY u(x, o))",
        ty = col.sql_type
    );
    let row = c
        .query_one(&sql, &[&role, &t.oid, &col.name, &f.values])
        .await
        .map_err(|e| format!("invalid filter value for {}: {}", quote_ident(&col.name), crate::pgerr::parts(&e).message))?;
    let allowed: bool = row.get(0);
    if !allowed {
        return Err(format!("invalid column for filter {}: permission denied", f.column));
    }
    let vals: Option<Value> = row.get(1);
    f.canonical = match vals {
        Some(Value::Array(a)) => a,
        _ => vec![],
    };
    Ok(f)
}

fn binding_id(event: &str, schema: &str, table: &str, filter: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in [event, "|", schema, "|", table, "|", filter].concat().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h & 0x7fff_ffff
}
