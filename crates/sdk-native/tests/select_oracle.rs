//! The server is the oracle for local queries.
//!
//! One user's chat data (conversations and messages, memories, chat sessions and their
//! messages, documents, usage logs: with nulls, ties, unicode, JSON) is written through
//! a replica and settled. Then generated queries in PostgREST's language run twice:
//! on the replica (`Engine::select`) and through PostgREST on supasync-dev, over the
//! same rows. Answers must be identical (rows, embeds, aggregates, counts, and the order
//! of every object's keys: the select list's, the table's columns for `*`), and so must
//! the errors of invalid queries (code and message).
//!
//! Fixed seed, 1,000 queries by default; `SELECT_ORACLE_QUERIES=100000` and
//! `SELECT_ORACLE_SEED=7` run more or others.
//!
//! Two things are normalised, both by design: a reference column holds the parent's
//! local id on the device and its server id on the server (the test maps server ids to
//! local ids), and numbers compare to 12 significant digits (a float sum may differ in
//! its last bit from PostgreSQL's exact numeric sum). Arrays whose order the query does
//! not fix (no `order`) compare as multisets.

mod common;

use std::collections::HashMap;

use serde_json::{json, Value};
use supasync_core::{EngineError, SelectOptions, SelectRequest};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ty {
    Id,
    Ref,
    Uuid,
    Text,
    Int,
    Float,
    Time,
    Json,
}

fn columns(table: &str) -> Vec<(&'static str, Ty)> {
    use Ty::*;
    match table {
        "conversations" => vec![("id", Id), ("user_id", Uuid), ("title", Text), ("message_count", Int), ("created_at", Time), ("local_id", Text)],
        "messages" => vec![
            ("id", Id),
            ("conversation_id", Ref),
            ("role", Text),
            ("content", Text),
            ("timestamp", Time),
            ("metadata", Json),
            ("local_id", Text),
        ],
        "memories" => vec![
            ("id", Id),
            ("content", Text),
            ("context", Text),
            ("importance_score", Float),
            ("tag", Text),
            ("created_at", Time),
            ("local_id", Text),
        ],
        "chat_sessions" => vec![("id", Id), ("title", Text), ("message_count", Int), ("created_at", Time), ("local_id", Text)],
        "chat_messages" => vec![("id", Id), ("session_id", Ref), ("role", Text), ("content", Text), ("tokens", Int), ("created_at", Time), ("local_id", Text)],
        "documents" => vec![("id", Id), ("filename", Text), ("status", Text), ("size_bytes", Int), ("created_at", Time), ("local_id", Text)],
        _ => vec![("id", Int), ("service", Text), ("tokens", Int), ("cost", Float), ("created_at", Time), ("local_id", Text)],
    }
}

/// (relation, target table, to many)
fn embeds(table: &str) -> Vec<(&'static str, bool)> {
    match table {
        "conversations" => vec![("messages", true)],
        "messages" => vec![("conversations", false)],
        "chat_sessions" => vec![("chat_messages", true)],
        "chat_messages" => vec![("chat_sessions", false)],
        _ => vec![],
    }
}

const TABLES: [&str; 7] = ["conversations", "messages", "memories", "chat_sessions", "chat_messages", "documents", "usage_logs"];
const TEXTS: [&str; 14] = [
    "Lisbon trip", "lisbon TRIP", "Pastéis de nata", "ÁGUA fresca", "água", "naïve café", "Zebra", "apple", "Apple", "日本の旅", "party 🎉", "50% off",
    "under_score", "",
];
const TIMES: [&str; 5] = ["2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00.5+00:00", "2024-05-02T08:30:00+00:00", "2023-12-31T23:59:59+00:00", "2024-05-01T12:00:00+02:00"];

/// Everything the server holds, per table (to pick filter values from), and the
/// server id → local id map of rows that others reference.
struct Data {
    rows: HashMap<String, Vec<Value>>,
    local_of: HashMap<String, String>,
}

impl Data {
    fn value(&self, rng: &mut Rng, table: &str, col: &str) -> Option<Value> {
        let rows = self.rows.get(table)?;
        let vals: Vec<&Value> = rows.iter().filter_map(|r| r.get(col)).filter(|v| !v.is_null()).collect();
        (!vals.is_empty()).then(|| rng.pick(&vals).to_owned().clone())
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A query twice: as the device is asked (references as local ids) and as the server is.
#[derive(Default, Clone)]
struct Case {
    table: String,
    select: String,
    local: Vec<(String, String)>,
    server: Vec<(String, String)>,
    ordered: bool,
    count: bool,
}

impl Case {
    fn both(&mut self, k: &str, v: &str) {
        self.local.push((k.into(), v.into()));
        self.server.push((k.into(), v.into()));
    }
    fn url(&self, side: &[(String, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("select", &self.select);
        for (k, v) in side {
            s.append_pair(k, v);
        }
        format!("{}?{}", self.table, s.finish())
    }
}

/// Quote a value for a list or a logic tree when it holds what they split on.
fn quoted(v: &str) -> String {
    if v.contains([',', '(', ')', '"', ':']) || v.trim() != v || v.is_empty() {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

/// A filter on `table`: (column, value for the device, value for the server), values
/// as `[not.]op.literal`. `in_tree`: the literal is quoted as logic trees need.
fn leaf(rng: &mut Rng, data: &Data, table: &str, in_tree: bool) -> (String, String, String) {
    let cols = columns(table);
    let (col, ty) = *rng.pick(&cols);
    let v = data.value(rng, table, col).unwrap_or(Value::Null);
    let lit = |v: &Value| if in_tree { quoted(&text_of(v)) } else { text_of(v) };
    let not = if rng.chance(0.15) { "not." } else { "" };
    let (l, s) = match ty {
        Ty::Ref => {
            let server = text_of(&v);
            let local = data.local_of.get(&server).cloned().unwrap_or_else(|| server.clone());
            match rng.below(3) {
                0 => (format!("eq.{local}"), format!("eq.{server}")),
                1 => {
                    let other = data.value(rng, table, col).map(|x| text_of(&x)).unwrap_or_default();
                    let other_l = data.local_of.get(&other).cloned().unwrap_or_else(|| other.clone());
                    (format!("in.({local},{other_l})"), format!("in.({server},{other})"))
                }
                _ => {
                    let w = *rng.pick(&["null", "not_null"]);
                    (format!("is.{w}"), format!("is.{w}"))
                }
            }
        }
        Ty::Json => {
            let w = match rng.below(3) {
                0 => "cs.{\"topic\":\"travel\"}".to_string(),
                1 => "cd.{\"topic\":\"food\",\"n\":1}".to_string(),
                _ => "is.null".to_string(),
            };
            (w.clone(), w)
        }
        _ => {
            let v = if rng.chance(0.8) || ty == Ty::Id || ty == Ty::Uuid {
                v
            } else {
                match ty {
                    Ty::Text => json!(rng.pick(&TEXTS)),
                    Ty::Int => json!(rng.below(40) as i64 - 5),
                    Ty::Float => json!(rng.below(30) as f64 / 4.0),
                    Ty::Time => json!(rng.pick(&TIMES)),
                    _ => v,
                }
            };
            let ops: &[&str] = match ty {
                Ty::Id | Ty::Uuid => &["eq", "neq", "in"],
                Ty::Text => &["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"],
                _ => &["eq", "neq", "gt", "gte", "lt", "lte", "in", "is"],
            };
            let w = match *rng.pick(ops) {
                "in" => {
                    let other = data.value(rng, table, col).unwrap_or(json!(""));
                    format!("in.({},{})", quoted(&text_of(&v)), quoted(&text_of(&other)))
                }
                "is" => format!("is.{}", rng.pick(&["null", "not_null"])),
                op @ ("like" | "ilike") => {
                    let t = text_of(&v);
                    let chars: Vec<char> = t.chars().collect();
                    let part: String = if chars.len() > 2 { chars[1..chars.len().min(4)].iter().collect() } else { t.clone() };
                    let part = if op == "ilike" && rng.chance(0.5) { part.to_uppercase() } else { part };
                    let p = match rng.below(3) {
                        0 => format!("*{part}*"),
                        1 => format!("{part}*"),
                        _ => format!("*{part}"),
                    };
                    format!("{op}.{}", if in_tree { quoted(&p) } else { p })
                }
                op => format!("{op}.{}", lit(&v)),
            };
            (w.clone(), w)
        }
    };
    (col.to_string(), format!("{not}{l}"), format!("{not}{s}"))
}

fn filters(rng: &mut Rng, data: &Data, table: &str, prefix: &str, c: &mut Case) {
    for _ in 0..rng.below(3) {
        let (col, l, s) = leaf(rng, data, table, false);
        c.local.push((format!("{prefix}{col}"), l));
        c.server.push((format!("{prefix}{col}"), s));
    }
    if rng.chance(0.25) {
        let mut ls = vec![];
        let mut ss = vec![];
        for _ in 0..2 + rng.below(2) {
            let (col, l, s) = leaf(rng, data, table, true);
            ls.push(format!("{col}.{l}"));
            ss.push(format!("{col}.{s}"));
        }
        if rng.chance(0.3) {
            let (a, al, as_) = leaf(rng, data, table, true);
            let (b, bl, bs) = leaf(rng, data, table, true);
            ls.push(format!("and({a}.{al},{b}.{bl})"));
            ss.push(format!("and({a}.{as_},{b}.{bs})"));
        }
        let key = if rng.chance(0.2) { format!("{prefix}not.or") } else { format!("{prefix}or") };
        c.local.push((key.clone(), format!("({})", ls.join(","))));
        c.server.push((key, format!("({})", ss.join(","))));
    }
}

/// `order=a.desc.nullslast,id` (always ending on the key, so the order is total).
fn order(rng: &mut Rng, table: &str) -> String {
    let cols: Vec<&str> = columns(table).into_iter().filter(|(_, t)| !matches!(t, Ty::Ref | Ty::Json)).map(|(c, _)| c).collect();
    let mut terms = vec![];
    for _ in 0..1 + rng.below(2) {
        let mut t = rng.pick(&cols).to_string();
        if rng.chance(0.5) {
            t.push_str(".desc");
        }
        if rng.chance(0.3) {
            t.push_str(rng.pick::<&str>(&[".nullsfirst", ".nullslast"]));
        }
        terms.push(t);
    }
    terms.push("id".into());
    terms.join(",")
}

fn select_list(rng: &mut Rng, data: &Data, table: &str, path: &str, depth: usize, c: &mut Case) -> String {
    let cols = columns(table);
    let mut items = vec![];
    if rng.chance(0.35) {
        items.push("*".to_string());
    } else {
        for _ in 0..1 + rng.below(3) {
            let (col, ty) = *rng.pick(&cols);
            let item = if ty != Ty::Ref && rng.chance(0.2) { format!("{col}_as:{col}") } else { col.to_string() };
            if !items.contains(&item) {
                items.push(item);
            }
        }
    }
    if depth < 2 {
        for (rel, many) in embeds(table) {
            if !rng.chance(0.5) {
                continue;
            }
            let name = if rng.chance(0.15) { format!("{rel}_x") } else { rel.to_string() };
            let head = if name == rel { rel.to_string() } else { format!("{name}:{rel}") };
            // A hint naming the reference column, sometimes.
            let hint = match (rng.chance(0.1), rel) {
                (true, "messages" | "conversations") => "!conversation_id",
                (true, _) => "!session_id",
                _ => "",
            };
            // A to-one embed spread into the row (`...conversations(title)`), sometimes.
            if !many && rng.chance(0.15) {
                let cols: Vec<&str> = columns(rel).into_iter().filter(|(_, t)| *t != Ty::Ref).map(|(c, _)| c).collect();
                let col = *rng.pick(&cols);
                items.push(format!("...{rel}{hint}({col}_spread:{col})"));
                continue;
            }
            let inner = if rng.chance(0.2) { "!inner" } else { "" };
            let inner = format!("{hint}{inner}");
            let sub = format!("{path}{name}.");
            let body = if many && rng.chance(0.3) { "count".to_string() } else { select_list(rng, data, rel, &sub, depth + 1, c) };
            if rng.chance(0.35) {
                filters(rng, data, rel, &sub, c);
            }
            if many && body != "count" && rng.chance(0.3) {
                c.both(&format!("{sub}order"), &order(rng, rel));
                if rng.chance(0.6) {
                    c.both(&format!("{sub}limit"), &(rng.below(3)).to_string());
                }
            }
            items.push(format!("{head}{inner}({body})"));
        }
    }
    items.join(",")
}

fn aggregate_select(rng: &mut Rng, table: &str) -> String {
    let cols = columns(table);
    let mut items = vec![];
    let group: Vec<&str> = cols.iter().filter(|(c, t)| *t == Ty::Text && !matches!(*c, "local_id" | "content")).map(|(c, _)| *c).collect();
    if !group.is_empty() && rng.chance(0.5) {
        items.push(rng.pick(&group).to_string());
    }
    let numeric: Vec<&str> = cols.iter().filter(|(_, t)| matches!(t, Ty::Int | Ty::Float)).map(|(c, _)| *c).collect();
    let comparable: Vec<&str> = cols.iter().filter(|(_, t)| matches!(t, Ty::Int | Ty::Float | Ty::Text | Ty::Time)).map(|(c, _)| *c).collect();
    for _ in 0..1 + rng.below(2) {
        let item = match rng.below(4) {
            0 => "count()".to_string(),
            1 if !numeric.is_empty() => format!("{}.{}()", rng.pick(&numeric), rng.pick(&["sum", "avg"])),
            2 => format!("{}.{}()", rng.pick(&comparable), rng.pick(&["min", "max", "count"])),
            _ => "total:count()".to_string(),
        };
        if !items.contains(&item) {
            items.push(item);
        }
    }
    items.join(",")
}

fn invalid(rng: &mut Rng, c: &mut Case) {
    let t = c.table.clone();
    match rng.below(8) {
        0 => c.select = "id,nope".into(),
        1 => c.both("nope", "eq.1"),
        2 => c.both("order", "nope.desc"),
        3 => c.select = "*,memories(*)".into(),
        4 => c.both("id", "foo.bar"),
        5 => {
            let (col, _) = *rng.pick(columns(&t).into_iter().filter(|(_, ty)| *ty == Ty::Int).collect::<Vec<_>>().first().map(std::slice::from_ref).unwrap_or(&[("id", Ty::Int)]));
            c.both(col, "eq.abc")
        }
        6 => c.both("messages.role", "eq.user"),
        _ => c.both("limit", "-1"),
    }
}

fn case(rng: &mut Rng, data: &Data) -> Case {
    let table = rng.pick(&TABLES).to_string();
    let mut c = Case { table: table.clone(), ..Default::default() };
    if rng.chance(0.12) {
        c.select = "*".into();
        invalid(rng, &mut c);
        return c;
    }
    if rng.chance(0.15) {
        c.select = aggregate_select(rng, &table);
        filters(rng, data, &table, "", &mut c);
        return c;
    }
    c.select = select_list(rng, data, &table, "", 0, &mut c);
    filters(rng, data, &table, "", &mut c);
    if rng.chance(0.6) {
        c.both("order", &order(rng, &table));
        c.ordered = true;
        if rng.chance(0.5) {
            c.both("limit", &rng.below(8).to_string());
        }
        if rng.chance(0.3) {
            c.both("offset", &rng.below(5).to_string());
        }
    }
    c.count = rng.chance(0.3);
    c
}

/// Numbers to 12 significant digits; arrays sorted unless `ordered` (the top level of
/// an ordered query). Embedded arrays are sorted too: their order is checked through
/// `limit`, which picks rows by it.
fn canon(v: &Value, ordered: bool) -> Value {
    match v {
        Value::Number(n) => Value::String(format!("#{:.11e}", n.as_f64().unwrap_or(0.0))),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(|x| canon(x, false)).collect();
            if !ordered {
                items.sort_by_key(|x| x.to_string());
            }
            Value::Array(items)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), canon(x, false))).collect()),
        other => other.clone(),
    }
}

/// Server ids in reference columns, as the device holds them (local ids).
fn localise(v: &mut Value, local_of: &HashMap<String, String>) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| localise(x, local_of)),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(k.as_str(), "conversation_id" | "session_id") {
                    if let Some(l) = x.as_str().and_then(|s| local_of.get(s)) {
                        *x = Value::String(l.clone());
                    }
                } else {
                    localise(x, local_of);
                }
            }
        }
        _ => {}
    }
}

async fn write_rows(db: &common::Replica, rng: &mut Rng) {
    let maybe = |rng: &mut Rng, v: Value| if rng.chance(0.25) { Value::Null } else { v };
    let mut convs = vec![];
    for i in 0..10 {
        let t = if i == 0 { "Lisbon trip" } else { rng.pick(&TEXTS) };
        let title = maybe(rng, json!(if t.is_empty() { "untitled" } else { t }));
        let r = db.insert("conversations", &json!({"title": title, "created_at": rng.pick(&TIMES)})).await.expect("conversation");
        convs.push(r.local_id);
    }
    for _ in 0..60 {
        let conv = rng.pick(&convs[..8]).clone();
        let meta = match rng.below(4) {
            0 => Value::Null,
            1 => json!({"topic": "travel"}),
            2 => json!({"topic": "food", "n": 1}),
            _ => json!({"topic": "travel", "n": rng.below(3)}),
        };
        db.insert(
            "messages",
            &json!({"conversation_id": conv, "role": rng.pick(&["user", "assistant", "system"]), "content": rng.pick(&TEXTS),
                    "timestamp": rng.pick(&TIMES), "metadata": meta}),
        )
        .await
        .expect("message");
    }
    for _ in 0..25 {
        let (context, tag) = (json!(rng.pick(&TEXTS)), json!(rng.pick(&["work", "home", "Work"])));
        let (context, tag) = (maybe(rng, context), maybe(rng, tag));
        let row = json!({"content": rng.pick(&TEXTS), "context": context,
                         "importance_score": rng.pick(&[0.1, 0.5, 0.5, 1.0, 2.25, 3.0]), "tag": tag, "created_at": rng.pick(&TIMES)});
        db.insert("memories", &row).await.expect("memory");
    }
    let mut sessions = vec![];
    for _ in 0..5 {
        let title = json!(rng.pick(&TEXTS));
        let title = maybe(rng, title);
        let r = db.insert("chat_sessions", &json!({"title": title, "created_at": rng.pick(&TIMES)})).await.expect("session");
        sessions.push(r.local_id);
    }
    for _ in 0..30 {
        let tokens = json!(rng.below(500));
        let tokens = maybe(rng, tokens);
        let row = json!({"session_id": rng.pick(&sessions[..4]), "role": rng.pick(&["user", "assistant"]), "content": rng.pick(&TEXTS),
                         "tokens": tokens, "created_at": rng.pick(&TIMES)});
        db.insert("chat_messages", &row).await.expect("chat message");
    }
    for _ in 0..8 {
        let size = json!(rng.below(100_000));
        let size = maybe(rng, size);
        let row = json!({"filename": format!("{}.pdf", rng.pick(&TEXTS)), "status": rng.pick(&["uploaded", "processing", "ready", "failed"]),
                         "size_bytes": size, "created_at": rng.pick(&TIMES)});
        db.insert("documents", &row).await.expect("document");
    }
    for _ in 0..15 {
        let row = json!({"service": rng.pick(&["openai", "anthropic", "local"]), "tokens": rng.below(2000),
                         "cost": rng.pick(&[0.5, 1.25, 0.001234, 2.0]), "created_at": rng.pick(&TIMES)});
        db.insert("usage_logs", &row).await.expect("usage log");
    }
}

async fn server_get(server: &supasync_devserver::DevServer, token: &str, url: &str, count: bool) -> Result<(Value, Option<u64>), (String, String)> {
    let mut req = reqwest::Client::new().get(format!("{}/rest/v1/{url}", server.url())).header("apikey", server.anon_key()).bearer_auth(token);
    if count {
        req = req.header("prefer", "count=exact");
    }
    let resp = req.send().await.expect("request");
    let ok = resp.status().is_success();
    let total = resp
        .headers()
        .get("content-range")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit('/').next())
        .and_then(|n| n.parse().ok());
    let body: Value = resp.json().await.expect("JSON answer");
    if ok {
        Ok((body, total))
    } else {
        Err((body["code"].as_str().unwrap_or_default().into(), body["message"].as_str().unwrap_or_default().into()))
    }
}

#[tokio::test]
async fn local_queries_answer_as_postgrest_does() {
    let n: usize = std::env::var("SELECT_ORACLE_QUERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let seed: u64 = std::env::var("SELECT_ORACLE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261203);
    let server = common::server().await;
    // Aggregates are off in PostgREST unless the database turns them on; the device
    // answers them either way, so the oracle needs them on.
    let (pg, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await.expect("database");
    tokio::spawn(conn);
    pg.batch_execute(
        "do $$ begin execute format('alter role authenticator in database %I set pgrst.db_aggregates_enabled = true', current_database()); end $$;
         notify pgrst, 'reload config';",
    )
    .await
    .expect("aggregates on");
    let db = common::replica_with_schema(server.url(), server.anon_key(), "tests/select_schema.json").await;
    let session = db.sign_up("oracle@example.com", "password-123").await.expect("sign up");
    let mut rng = Rng(seed | 1);
    write_rows(&db, &mut rng).await;
    db.push().await.expect("push");
    db.pull().await.expect("pull");
    assert_eq!(db.status().await.expect("status").pending, 0, "everything settled");

    // The server reloads its configuration on the notification: wait until it has.
    let mut on = false;
    for _ in 0..200 {
        if server_get(&server, &session.access_token, "memories?select=count()", false).await.is_ok() {
            on = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(on, "the server answers aggregates once its configuration is reloaded");

    // What the server holds (to pick filter values), and server id → local id.
    let mut data = Data { rows: HashMap::new(), local_of: HashMap::new() };
    for t in TABLES {
        let (rows, _) = server_get(&server, &session.access_token, &format!("{t}?select=*"), false).await.expect("rows");
        let declared: std::collections::BTreeSet<String> =
            db.schema.table(t).expect("declared").columns.keys().cloned().collect();
        let got: std::collections::BTreeSet<String> = rows[0].as_object().expect("row").keys().cloned().collect();
        assert_eq!(declared, got, "the test schema declares exactly {t}'s columns");
        for r in rows.as_array().expect("rows").iter().filter(|_| matches!(t, "conversations" | "chat_sessions")) {
            if let (Some(id), Some(l)) = (r["id"].as_str(), r["local_id"].as_str()) {
                data.local_of.insert(id.to_string(), l.to_string());
            }
        }
        data.rows.insert(t.to_string(), rows.as_array().cloned().unwrap_or_default());
    }

    let mut failures = vec![];
    let (mut answered, mut refused, mut spread) = (0, 0, 0);
    for i in 0..n {
        let c = case(&mut rng, &data);
        let (local_url, server_url) = (c.url(&c.local), c.url(&c.server));
        let want = server_get(&server, &session.access_token, &server_url, c.count).await;
        let got = match SelectRequest::parse(&local_url) {
            Ok(r) => db.select(&r.with_options(SelectOptions { count: c.count, ..Default::default() })).await.map_err(|e| match e {
                EngineError::Select(e) => (e.code, e.message),
                other => ("other".into(), other.to_string()),
            }),
            Err(e) => Err((e.code, e.message)),
        };
        let verdict = match (&want, &got) {
            (Ok((w, total)), Ok(g)) => {
                answered += 1;
                spread += usize::from(c.select.contains("..."));
                let mut w = w.clone();
                localise(&mut w, &data.local_of);
                let gd = Value::Array(g.rows.iter().map(|r| r.data.clone()).collect());
                // Equal as JSON text: the same values, and every object's keys in the same order.
                let same = canon(&w, c.ordered).to_string() == canon(&gd, c.ordered).to_string();
                let counted = !c.count || *total == g.count;
                (same && counted).then_some(()).ok_or_else(|| format!("server {w}\n  count {total:?}\n  local  {gd}\n  count {:?}", g.count))
            }
            (Err(w), Err(g)) => {
                refused += 1;
                // A refused query's message quotes it: with server ids where the device has local ids.
                let mut w = w.clone();
                for (server_id, local_id) in &data.local_of {
                    w.1 = w.1.replace(server_id.as_str(), local_id);
                }
                (&w == g).then_some(()).ok_or_else(|| format!("server refused {w:?}\n  local refused {g:?}"))
            }
            (w, g) => Err(format!("server {w:?}\n  local {:?}", g.as_ref().map(|r| Value::Array(r.rows.iter().map(|x| x.data.clone()).collect())))),
        };
        if let Err(why) = verdict {
            failures.push(format!("#{i} {server_url}\n  device: {local_url}\n  {why}"));
        }
    }
    println!("{n} queries (seed {seed}): {answered} answered ({spread} with a spread embed), {refused} refused by both, {} differ", failures.len());
    assert!(failures.is_empty(), "{} of {n} queries differ:\n{}", failures.len(), failures.iter().take(15).cloned().collect::<Vec<_>>().join("\n\n"));
    assert!(answered > n / 2 && refused > n / 20, "the generator covers both answers and refusals");
}
