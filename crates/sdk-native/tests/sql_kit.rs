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
