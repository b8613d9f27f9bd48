//! The SQL kit (`sql/supasync.sql`) on the dev server: versions, the safe watermark,
//! tombstones readable by their owner only, idempotence, and clear refusals.

mod common;

use std::path::PathBuf;

use serde_json::{json, Value};
use supasync_devserver::DevServer;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kit")
}

async fn server() -> DevServer {
    DevServer::builder().migrations(fixtures()).shared_test_cluster().start().await.expect("dev server")
}

async fn sql(server: &DevServer) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

struct User {
    id: String,
    token: String,
}

async fn signup(server: &DevServer, name: &str) -> User {
    let v = common::auth_post(server, "signup", &json!({"email": format!("{name}@example.com"), "password": "password-123"})).await;
    User {
        id: v["user"]["id"].as_str().unwrap().to_string(),
        token: v["access_token"].as_str().unwrap().to_string(),
    }
}

async fn rest(server: &DevServer, u: &User, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}/rest/v1/{path}", server.url()))
        .header("apikey", server.anon_key())
        .bearer_auth(&u.token)
        .header("prefer", "return=representation");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Where a pull resumes: rows from `next_txid` on, plus rows of the transactions that
/// were still running at the last pull.
#[derive(Debug, Default)]
struct Cursor {
    next_txid: i64,
    pending: Vec<i64>,
}

/// The pull the SDK does: a snapshot first, then the pending transactions' rows, then
/// keyset pages up to the snapshot's xmax.
async fn pull(server: &DevServer, u: &User, cursor: &mut Cursor) -> Vec<Value> {
    let (_, snap) = rest(server, u, reqwest::Method::POST, "rpc/supasync_snapshot", Some(json!({}))).await;
    let xmax = snap["xmax"].as_i64().expect("xmax");
    let xip: Vec<i64> = snap["xip"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let mut out = vec![];
    if !cursor.pending.is_empty() {
        let ids: Vec<String> = cursor.pending.iter().map(|x| x.to_string()).collect();
        let (_, rows) = rest(server, u, reqwest::Method::GET, &format!("items?select=*&sync_txid=in.({})", ids.join(",")), None).await;
        out.extend(rows.as_array().unwrap().clone());
    }
    let (mut txid, mut pk) = (cursor.next_txid, "00000000-0000-0000-0000-000000000000".to_string());
    loop {
        let path = format!(
            "items?select=*&sync_txid=lt.{xmax}&or=(sync_txid.gt.{txid},and(sync_txid.eq.{txid},id.gt.{pk}))&order=sync_txid.asc,id.asc&limit=2"
        );
        let (status, page) = rest(server, u, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        let Some(last) = page.last() else { break };
        txid = last["sync_txid"].as_i64().unwrap();
        pk = last["id"].as_str().unwrap().to_string();
        out.extend(page);
    }
    cursor.next_txid = xmax;
    cursor.pending = xip;
    out
}

#[tokio::test]
async fn writes_are_versioned_and_deletes_leave_tombstones_for_their_owner_only() {
    let s = server().await;
    let (a, b) = (signup(&s, "kit-a").await, signup(&s, "kit-b").await);
    let (st, rows) = rest(&s, &a, reqwest::Method::POST, "items", Some(json!({"local_id":"L1","body":"one"}))).await;
    assert_eq!(st, 201);
    let row = &rows[0];
    let (tx1, ts1) = (row["sync_txid"].as_i64().unwrap(), row["updated_at"].as_str().unwrap().to_string());
    let id = row["id"].as_str().unwrap().to_string();
    let (_, rows) = rest(&s, &a, reqwest::Method::PATCH, &format!("items?id=eq.{id}"), Some(json!({"body":"two"}))).await;
    assert!(rows[0]["sync_txid"].as_i64().unwrap() > tx1, "a later write has a later txid");
    assert!(rows[0]["updated_at"].as_str().unwrap() > ts1.as_str(), "updated_at moves on update");
    let (st, _) = rest(&s, &a, reqwest::Method::DELETE, &format!("items?id=eq.{id}"), None).await;
    assert_eq!(st, 200);
    let (_, tomb) = rest(&s, &a, reqwest::Method::GET, "supasync_tombstones?select=table_name,row_id,local_id,owner_id", None).await;
    assert_eq!(tomb, json!([{"table_name":"items","row_id":id,"local_id":"L1","owner_id":a.id}]));
    let (_, none) = rest(&s, &b, reqwest::Method::GET, "supasync_tombstones?select=id", None).await;
    assert_eq!(none, json!([]), "B never sees A's tombstones");
    // Clients cannot forge or erase tombstones.
    let (st, _) = rest(&s, &a, reqwest::Method::POST, "supasync_tombstones", Some(json!({"table_name":"items","row_id":"x","owner_id":a.id}))).await;
    assert_eq!(st, 403);
    let (st, _) = rest(&s, &a, reqwest::Method::DELETE, "supasync_tombstones?id=gt.0", None).await;
    assert_eq!(st, 403);
    let (_, still) = rest(&s, &a, reqwest::Method::GET, "supasync_tombstones?select=id", None).await;
    assert_eq!(still.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_transaction_that_commits_after_a_pull_is_not_lost() {
    let s = server().await;
    let a = signup(&s, "kit-late").await;
    let mut cursor = Cursor::default();
    assert!(pull(&s, &a, &mut cursor).await.is_empty());

    // A long transaction writes first (earlier updated_at) and stays open...
    let mut long = sql(&s).await;
    let tx = long.transaction().await.unwrap();
    tx.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
        &[&json!({"sub": a.id, "role": "authenticated"}).to_string()],
    )
    .await
    .unwrap();
    tx.execute("insert into public.items (local_id, body) values ('late', 'committed last')", &[]).await.unwrap();
    // ...while a short one commits.
    let (st, _) = rest(&s, &a, reqwest::Method::POST, "items", Some(json!({"local_id":"quick","body":"committed first"}))).await;
    assert_eq!(st, 201);
    // The open transaction does not stall the pull: the committed row comes now, and the
    // open transaction's id is remembered as pending.
    let first = pull(&s, &a, &mut cursor).await;
    let bodies: Vec<&str> = first.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["committed first"]);
    tx.commit().await.unwrap();
    let second = pull(&s, &a, &mut cursor).await;
    let bodies: Vec<&str> = second.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["committed last"], "the late commit is not lost");
    // The hazard is real: the late row's updated_at is older than the quick row's, so a
    // timestamp cursor taken after the quick row would have skipped it.
    assert!(second[0]["updated_at"].as_str().unwrap() < first[0]["updated_at"].as_str().unwrap());
    assert!(pull(&s, &a, &mut cursor).await.is_empty(), "nothing is pulled twice");
}

#[tokio::test]
async fn the_kit_is_idempotent_and_refuses_unsuitable_tables() {
    let s = server().await;
    let db = sql(&s).await;
    let kit = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql/supasync.sql")).unwrap();
    db.batch_execute(&kit).await.expect("applying the kit twice");
    db.batch_execute("select supasync.enable_sync('public.items'); select supasync.enable_sync('public.items');")
        .await
        .expect("enable_sync twice");
    let n: i64 = db
        .query_one("select count(*) from pg_trigger where tgrelid = 'public.items'::regclass and not tgisinternal", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "the version, tombstone and keep-deleted triggers, once each");
    let in_pub: i64 = db
        .query_one("select count(*) from pg_publication_tables where pubname = 'supabase_realtime' and tablename in ('items', 'supasync_tombstones')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_pub, 2);
    // A table enabled by a kit older than the restore index gets it when the kit is
    // applied again, and the snapshot then names it as walkable by local id.
    let u = signup(&s, "kit-again").await;
    let by_local_id = |snap: &Value| snap["by_local_id"].as_array().is_some_and(|a| a.contains(&json!("items")));
    let (_, snap) = rest(&s, &u, reqwest::Method::POST, "rpc/supasync_snapshot", Some(json!({}))).await;
    assert!(by_local_id(&snap), "{snap}");
    db.batch_execute("drop index public.items_supasync_restore").await.unwrap();
    let (_, snap) = rest(&s, &u, reqwest::Method::POST, "rpc/supasync_snapshot", Some(json!({}))).await;
    assert!(!by_local_id(&snap), "no index, no walk by local id: {snap}");
    db.batch_execute(&kit).await.expect("applying the kit over an older install");
    let (_, snap) = rest(&s, &u, reqwest::Method::POST, "rpc/supasync_snapshot", Some(json!({}))).await;
    assert!(by_local_id(&snap), "{snap}");
    let e = db.batch_execute("select supasync.enable_sync('public.no_pk')").await.unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("single-column primary key"), "{e}");
    let e = db.batch_execute("select supasync.enable_sync('public.no_owner')").await.unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("owner column \"user_id\" does not exist"), "{e}");
}

#[tokio::test]
async fn a_deleted_row_is_not_inserted_again_under_its_local_id() {
    // A device that retries an insert whose answer it lost, after another device
    // deleted the row, must not bring the row back.
    let s = server().await;
    let (a, b) = (signup(&s, "keep-a").await, signup(&s, "keep-b").await);
    let row = json!({"local_id": "L1", "body": "first"});
    let (st, v) = rest(&s, &a, reqwest::Method::POST, "items", Some(row.clone())).await;
    assert_eq!((st, v.as_array().map(Vec::len)), (201, Some(1)));
    let (st, _) = rest(&s, &a, reqwest::Method::DELETE, "items?local_id=eq.L1", None).await;
    assert_eq!(st, 200);
    // The retried insert (as the SDK sends it: an upsert that ignores duplicates) is
    // skipped: no error, no row.
    let (st, v) = rest(&s, &a, reqwest::Method::POST, "items?on_conflict=user_id,local_id", Some(row.clone())).await;
    assert_eq!((st, v), (201, json!([])));
    let (_, v) = rest(&s, &a, reqwest::Method::GET, "items?select=local_id", None).await;
    assert_eq!(v, json!([]), "still deleted");
    // Other local ids, and the same local id for another owner, insert as usual.
    let (_, v) = rest(&s, &a, reqwest::Method::POST, "items", Some(json!({"local_id": "L2", "body": "second"}))).await;
    assert_eq!(v[0]["local_id"], json!("L2"));
    let (_, v) = rest(&s, &b, reqwest::Method::POST, "items", Some(row)).await;
    assert_eq!(v[0]["local_id"], json!("L1"), "tombstones are per owner");
}

#[tokio::test]
async fn an_insert_retried_while_its_row_is_being_deleted_does_not_bring_it_back() {
    // The race behind a chaos run that ended with a deleted row on the server: one device
    // retries an insert whose answer it lost while another device's delete of that row
    // is still running. The insert must wait for the delete, then be skipped.
    let s = server().await;
    let a = signup(&s, "keep-race").await;
    let row = json!({"local_id": "R1", "body": "first"});
    let (st, _) = rest(&s, &a, reqwest::Method::POST, "items", Some(row.clone())).await;
    assert_eq!(st, 201);
    // The delete runs in a transaction held open here…
    let mut db = sql(&s).await;
    let tx = db.transaction().await.unwrap();
    let n = tx.execute("delete from public.items where user_id::text = $1 and local_id = 'R1'", &[&a.id]).await.unwrap();
    assert_eq!(n, 1);
    // …while the retried insert goes out, as the SDK sends it.
    let (url, key, token) = (s.url().to_string(), s.anon_key().to_string(), a.token.clone());
    let retry = tokio::spawn(async move {
        let res = reqwest::Client::new()
            .post(format!("{url}/rest/v1/items?on_conflict=user_id,local_id&columns=%22local_id%22,%22body%22&select=*"))
            .header("apikey", key)
            .bearer_auth(token)
            .header("prefer", "return=representation,resolution=ignore-duplicates,missing=default")
            .json(&json!([row]))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
    });
    // The insert is let go only once PostgreSQL shows it waiting for the delete's lock.
    let watch = sql(&s).await;
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let waiting: i64 = watch
                .query_one(
                    "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%insert%items%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the retried insert waits for the running delete");
    tx.commit().await.unwrap();
    let (status, body) = retry.await.unwrap();
    assert_eq!((status, body), (201, json!([])), "the retried insert is skipped");
    let (_, v) = rest(&s, &a, reqwest::Method::GET, "items?select=local_id,id&local_id=eq.R1", None).await;
    assert_eq!(v, json!([]), "the row stays deleted");
}

// Shared rows (fixtures/kit/20240102000000_shared.sql): agents that an organisation's
// members read, notes that only members read.

async fn admin(server: &DevServer, statement: &str) {
    sql(server).await.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn org(server: &DevServer, name: &str, members: &[&User]) -> String {
    let db = sql(server).await;
    let id: String = db.query_one("insert into public.orgs (name) values ($1) returning id::text", &[&name]).await.unwrap().get(0);
    for m in members {
        admin(server, &format!("insert into public.org_members values ('{id}', '{}')", m.id)).await;
    }
    id
}

async fn tombstone_ids(server: &DevServer, u: &User, table: &str) -> Vec<(String, String)> {
    let (st, v) = rest(server, u, reqwest::Method::GET, &format!("supasync_tombstones?select=row_id,kind&table_name=eq.{table}&order=id"), None).await;
    assert_eq!(st, 200, "{v}");
    v.as_array().unwrap().iter().map(|t| (t["row_id"].as_str().unwrap().to_string(), t["kind"].as_str().unwrap().to_string())).collect()
}

#[tokio::test]
async fn a_shared_rows_tombstone_reaches_its_scopes_members_and_no_one_else() {
    let s = server().await;
    let (a, b, c) = (signup(&s, "share-a").await, signup(&s, "share-b").await, signup(&s, "share-c").await);
    let o1 = org(&s, "one", &[&a, &b]).await;
    let (st, v) = rest(&s, &a, reqwest::Method::POST, "agents", Some(json!({"local_id": "A1", "name": "helper", "org_id": o1}))).await;
    assert_eq!(st, 201, "{v}");
    let id = v[0]["id"].as_str().unwrap().to_string();
    // B (a member) deletes it; A (its author) and B see the tombstone, C never does.
    let (st, _) = rest(&s, &b, reqwest::Method::DELETE, &format!("agents?id=eq.{id}"), None).await;
    assert_eq!(st, 200);
    let deleted = vec![(id.clone(), "deleted".to_string())];
    assert_eq!(tombstone_ids(&s, &a, "agents").await, deleted);
    assert_eq!(tombstone_ids(&s, &b, "agents").await, deleted);
    assert_eq!(tombstone_ids(&s, &c, "agents").await, vec![], "a non-member never sees it");
    // Notes are read by members only: an author who left no longer reads its tombstone.
    let (st, v) = rest(&s, &a, reqwest::Method::POST, "notes", Some(json!({"local_id": "N1", "body": "x", "org_id": o1}))).await;
    assert_eq!(st, 201, "{v}");
    admin(&s, &format!("delete from public.org_members where user_id = '{}'", a.id)).await;
    admin(&s, "delete from public.notes").await;
    assert_eq!(tombstone_ids(&s, &b, "notes").await.len(), 1);
    assert_eq!(tombstone_ids(&s, &a, "notes").await, vec![], "owners do not read a members-only table's tombstones");
    // The keep-deleted guard still works per author for shared rows.
    let (st, v) = rest(&s, &a, reqwest::Method::POST, "agents?on_conflict=created_by,local_id", Some(json!({"local_id": "A1", "name": "again"}))).await;
    assert_eq!((st, v), (201, json!([])), "a deleted shared row is not inserted again");
}

#[tokio::test]
async fn a_row_moved_to_another_scope_leaves_a_moved_tombstone_for_the_old_one() {
    let s = server().await;
    let (a, b) = (signup(&s, "move-a").await, signup(&s, "move-b").await);
    let o1 = org(&s, "one", &[&a, &b]).await;
    let o2 = org(&s, "two", &[&a]).await;
    let (_, v) = rest(&s, &a, reqwest::Method::POST, "agents", Some(json!({"local_id": "M1", "name": "mover", "org_id": o1}))).await;
    let (id, before) = (v[0]["id"].as_str().unwrap().to_string(), v[0]["sync_txid"].as_i64().unwrap());
    // A rename leaves nothing; a move out of org one leaves a 'moved' tombstone there.
    rest(&s, &a, reqwest::Method::PATCH, &format!("agents?id=eq.{id}"), Some(json!({"name": "renamed"}))).await;
    assert_eq!(tombstone_ids(&s, &b, "agents").await, vec![]);
    let (_, v) = rest(&s, &a, reqwest::Method::PATCH, &format!("agents?id=eq.{id}"), Some(json!({"org_id": o2}))).await;
    let moved_at = v[0]["sync_txid"].as_i64().unwrap();
    assert!(moved_at > before);
    let (_, t) = rest(&s, &b, reqwest::Method::GET, "supasync_tombstones?select=row_id,local_id,kind,scope_id,sync_txid", None).await;
    assert_eq!(t, json!([{"row_id": id, "local_id": null, "kind": "moved", "scope_id": o1, "sync_txid": moved_at}]));
    let (_, rows) = rest(&s, &b, reqwest::Method::GET, "agents?select=id", None).await;
    assert_eq!(rows, json!([]), "B cannot read it where it went");
    // A, who reads it where it went, sees the same tombstone as a member of org one; its
    // version equals the row's, so a device holding that version keeps the row.
    let (_, t) = rest(&s, &a, reqwest::Method::GET, "supasync_tombstones?select=sync_txid&kind=eq.moved", None).await;
    assert_eq!(t, json!([{"sync_txid": moved_at}]));
}

#[tokio::test]
async fn membership_changes_are_told_to_the_user_they_concern() {
    let s = server().await;
    let (a, b) = (signup(&s, "access-a").await, signup(&s, "access-b").await);
    let o1 = org(&s, "one", &[&a]).await;
    let (st, m) = rest(&s, &a, reqwest::Method::POST, "rpc/supasync_memberships", Some(json!({}))).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["scopes"], json!({"org": [o1]}));
    assert_eq!(m["tables"]["agents"], json!({"scope": "org", "column": "org_id", "owner_reads": true}));
    assert_eq!(m["tables"]["notes"], json!({"scope": "org", "column": "org_id", "owner_reads": false}));
    let (_, m) = rest(&s, &b, reqwest::Method::POST, "rpc/supasync_memberships", Some(json!({}))).await;
    assert_eq!(m["scopes"], json!({"org": []}));
    let since = m["access_from"].clone();
    admin(&s, &format!("insert into public.org_members values ('{o1}', '{}')", b.id)).await;
    admin(&s, &format!("delete from public.org_members where user_id = '{}'", b.id)).await;
    // Asked with the snapshot of an earlier answer: what changed since, even when it
    // came and went (the scope ids are the same as before).
    let (_, m) = rest(&s, &b, reqwest::Method::POST, "rpc/supasync_memberships", Some(json!({"changed_since": since}))).await;
    assert_eq!((m["scopes"].clone(), m["changed"].clone()), (json!({"org": []}), json!([format!("org:{o1}")])));
    let (_, m) = rest(&s, &b, reqwest::Method::POST, "rpc/supasync_memberships", Some(json!({"changed_since": m["access_from"]}))).await;
    assert_eq!(m["changed"], json!([]), "nothing since the last answer");
    let (_, lines) = rest(&s, &b, reqwest::Method::GET, "supasync_access?select=scope,scope_id,granted&order=id", None).await;
    assert_eq!(lines, json!([{"scope": "org", "scope_id": o1, "granted": true}, {"scope": "org", "scope_id": o1, "granted": false}]));
    let (_, lines) = rest(&s, &a, reqwest::Method::GET, "supasync_access?select=user_id", None).await;
    assert_eq!(lines, json!([{"user_id": a.id}]), "A reads only its own line (its own join)");
    let (st, _) = rest(&s, &b, reqwest::Method::POST, "supasync_access", Some(json!({"user_id": b.id, "scope": "org", "scope_id": o1, "granted": true}))).await;
    assert_eq!(st, 403, "clients cannot forge access lines");
}

#[tokio::test]
async fn scope_declarations_that_do_not_fit_are_refused_clearly() {
    let s = server().await;
    let db = sql(&s).await;
    let refused = |stmt: &'static str, want: &'static str| {
        let db = &db;
        async move {
            let e = db.batch_execute(stmt).await.expect_err(stmt);
            let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            assert!(msg.contains(want), "{stmt}: {msg}");
        }
    };
    refused("select supasync.define_scope('team', 'public.nope', 'id')", "relation \"public.nope\" does not exist").await;
    refused("select supasync.define_scope('team', 'public.teams', 'team_id')", "scope column \"team_id\" does not exist in teams").await;
    refused("select supasync.define_scope('team', 'public.teams', 'id')", "user column \"user_id\" does not exist in teams").await;
    refused("select supasync.define_scope('team', 'public.teams', 'id', 'member')", "user column \"member\" of teams is text, not uuid").await;
    refused("select supasync.define_scope('a:b', 'public.teams', 'id')", "a scope name is").await;
    refused("select supasync.share_by('public.agents', 'team')", "no scope named \"team\"").await;
    refused("select supasync.share_by('public.agents', 'org', 'team_id')", "scope column \"team_id\" does not exist").await;
    refused("select supasync.share_by('public.orgs', 'org')", "run supasync.enable_sync('orgs') first").await;
    // Declaring again changes nothing, in either order with enable_sync.
    db.batch_execute(
        "select supasync.define_scope('org', 'public.org_members', 'org_id');
         select supasync.share_by('public.agents', 'org');
         select supasync.enable_sync('public.agents', 'created_by');",
    )
    .await
    .unwrap();
    let triggers: Vec<String> = db
        .query("select tgname::text from pg_trigger where tgrelid = 'public.agents'::regclass and not tgisinternal order by 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(triggers, ["supasync_keep_deleted", "supasync_moved", "supasync_tombstone", "supasync_version"]);
    let args: Vec<u8> = db
        .query_one("select tgargs from pg_trigger where tgrelid = 'public.agents'::regclass and tgname = 'supasync_tombstone'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(String::from_utf8_lossy(&args).contains("org_id"), "enable_sync keeps the table's scope");
}

#[tokio::test]
async fn a_queued_call_runs_once_per_call_id_as_the_calling_user() {
    let s = server().await;
    let (a, c) = (signup(&s, "call-a").await, signup(&s, "call-c").await);
    let o1 = org(&s, "one", &[&a]).await;
    let (_, v) = rest(&s, &a, reqwest::Method::POST, "agents", Some(json!({"local_id": "C1", "name": "counted", "org_id": o1}))).await;
    let id = v[0]["id"].as_str().unwrap().to_string();
    let call = |call_id: &str, fn_name: &str| json!({"call_id": call_id, "fn": fn_name, "row_id": id, "args": {"by": 2}});
    let (st, first) = rest(&s, &a, reqwest::Method::POST, "rpc/supasync_call", Some(call("k1", "bump"))).await;
    assert_eq!((st, first["uses"].clone()), (200, json!(2)), "{first}");
    // The same call again (its answer lost): the same answer, nothing run again.
    let (st, again) = rest(&s, &a, reqwest::Method::POST, "rpc/supasync_call", Some(call("k1", "bump"))).await;
    assert_eq!((st, again), (200, first.clone()));
    let (_, next) = rest(&s, &a, reqwest::Method::POST, "rpc/supasync_call", Some(call("k2", "bump"))).await;
    assert_eq!(next["uses"], json!(4));
    // A function not allowed is refused by name, clearly.
    let (st, e) = rest(&s, &a, reqwest::Method::POST, "rpc/supasync_call", Some(call("k3", "supasync_snapshot"))).await;
    assert_eq!(st, 404, "{e}");
    assert!(e["message"].as_str().unwrap().contains("\"supasync_snapshot\" is not a function apps may call"), "{e}");
    // Another user's call runs as that user: RLS hides the row, the function refuses,
    // and nothing is recorded (a retry once they may is not taken for a replay).
    let (st, e) = rest(&s, &c, reqwest::Method::POST, "rpc/supasync_call", Some(call("c1", "bump"))).await;
    assert_eq!(st, 403, "{e}");
    admin(&s, &format!("insert into public.org_members values ('{o1}', '{}')", c.id)).await;
    let (st, v) = rest(&s, &c, reqwest::Method::POST, "rpc/supasync_call", Some(call("c1", "bump"))).await;
    assert_eq!((st, v["uses"].clone()), (200, json!(6)));
    let db = sql(&s).await;
    let e = db.batch_execute("select supasync.allow_call('public.orgs')").await.unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("no function public.orgs(row_id text, args jsonb)"), "{e}");
}
