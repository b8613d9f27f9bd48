//! Shared rows (issue 22), with seed 000's organisation library
//! (`examples/library`): agents that every member of an organisation reads, edits and
//! deletes. Three users in two organisations, each on their own device:
//! A (Acme and Beta), B (Acme), C (Beta). Memberships change through the example's own
//! functions (`add_member`, `remove_member`), as an admin's app would call them.

mod common;

use std::time::Duration;

use common::{library_replica, library_server, server_rows, Replica};
use serde_json::{json, Value};
use supasync_core::engine::Query;
use supasync_devserver::DevServer;

struct Member {
    dev: Replica,
    id: String,
    email: String,
}

async fn member(s: &DevServer, name: &str) -> Member {
    let dev = library_replica(s.url(), s.anon_key()).await;
    let email = format!("{name}@example.com");
    let session = dev.sign_up(&email, "password-123").await.expect("sign up");
    Member { dev, id: session.user_id, email }
}

/// Call one of the example's functions as `m`.
async fn rpc(s: &DevServer, m: &Member, name: &str, args: Value) -> Value {
    let token = m.dev.session().await.expect("session").access_token;
    let res = reqwest::Client::new()
        .post(format!("{}/rest/v1/rpc/{name}", s.url()))
        .header("apikey", s.anon_key())
        .bearer_auth(token)
        .json(&args)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{name}: {status} {v}");
    v
}

async fn new_org(s: &DevServer, owner: &Member, name: &str) -> String {
    rpc(s, owner, "create_organization", json!({"name": name})).await.as_str().expect("org id").to_string()
}

async fn add(s: &DevServer, admin: &Member, org: &str, who: &Member) {
    rpc(s, admin, "add_member", json!({"org": org, "email": who.email})).await;
}

async fn remove(s: &DevServer, admin: &Member, org: &str, who: &Member) {
    rpc(s, admin, "remove_member", json!({"org": org, "member": who.id})).await;
}

/// The agents a device shows, by name.
async fn agents(d: &Replica) -> Vec<String> {
    let mut names: Vec<String> = d
        .query("agent_library", &Query::default())
        .await
        .expect("query")
        .iter()
        .map(|r| r.row["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

async fn agent(d: &Replica, local_id: &str) -> Value {
    Value::Object(d.get("agent_library", local_id).await.expect("get").expect("held").row)
}

async fn sync(d: &Replica) -> supasync_core::pull::PullReport {
    d.sync().await.expect("sync").1
}

#[tokio::test]
async fn members_see_each_others_writes_field_by_field_and_a_non_member_sees_nothing() {
    let s = library_server().await;
    let (a, b, c) = (member(&s, "lib-a").await, member(&s, "lib-b").await, member(&s, "lib-c").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    new_org(&s, &c, "Beta").await;

    // A writes offline, then syncs; B gets it, C (not a member) nothing.
    let helper = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "Helper", "description": "first"})).await.unwrap();
    sync(&a.dev).await;
    sync(&b.dev).await;
    sync(&c.dev).await;
    assert_eq!(agents(&b.dev).await, ["Helper"]);
    assert_eq!(agents(&c.dev).await, Vec::<String>::new());

    // Both edit offline, different fields: both edits hold, on both devices.
    b.dev.update("agent_library", &helper.local_id, &json!({"description": "by B"})).await.unwrap();
    a.dev.update("agent_library", &helper.local_id, &json!({"name": "Helper 2"})).await.unwrap();
    sync(&b.dev).await;
    sync(&a.dev).await;
    sync(&b.dev).await;
    for d in [&a.dev, &b.dev] {
        let row = agent(d, &helper.local_id).await;
        assert_eq!((row["name"].clone(), row["description"].clone()), (json!("Helper 2"), json!("by B")));
    }
    let on_server = server_rows(&s, "agent_library", "select=created_by").await;
    assert_eq!(on_server, json!([{"created_by": a.id}]).as_array().unwrap().clone(), "an edit keeps the author");

    // The same field: the last write wins, and the loser's history says what it lost.
    a.dev.update("agent_library", &helper.local_id, &json!({"instructions": "A's"})).await.unwrap();
    b.dev.update("agent_library", &helper.local_id, &json!({"instructions": "B's"})).await.unwrap();
    sync(&a.dev).await;
    sync(&b.dev).await;
    sync(&a.dev).await;
    assert_eq!(agent(&a.dev, &helper.local_id).await["instructions"], json!("B's"));
    let history = a.dev.history(20).await.unwrap();
    assert!(
        history.iter().any(|h| h.kind == "conflict" && h.detail["field"] == json!("instructions") && h.detail["overwritten"] == json!("A's")),
        "{history:?}"
    );
}

#[tokio::test]
async fn local_ids_of_different_users_never_collide() {
    let s = library_server().await;
    let (a, b) = (member(&s, "ids-a").await, member(&s, "ids-b").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    let mine = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "A's"})).await.unwrap();
    sync(&a.dev).await;
    // B's app (a bug, or on purpose) writes a row under A's local id: the server takes
    // it (local ids are unique per author), and no device may mix the two rows up.
    let token = b.dev.session().await.unwrap().access_token;
    let res = reqwest::Client::new()
        .post(format!("{}/rest/v1/agent_library", s.url()))
        .header("apikey", s.anon_key())
        .bearer_auth(token)
        .json(&json!({"org_id": acme, "name": "B's", "local_id": mine.local_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let fresh = library_replica(s.url(), s.anon_key()).await;
    fresh.sign_in(&a.email, "password-123").await.unwrap();
    for d in [&a.dev, &b.dev, &fresh] {
        sync(d).await;
        assert_eq!(agents(d).await, ["A's", "B's"], "both rows, each once");
    }
    assert_eq!(agent(&a.dev, &mine.local_id).await["name"], json!("A's"), "A's row keeps its local id");
    // Deleting B's row deletes B's row only, everywhere.
    let b_row = server_rows(&s, "agent_library", "select=id&name=eq.B's").await;
    let b_id = b_row[0]["id"].as_str().unwrap().to_string();
    let b_local = b.dev.query("agent_library", &Query::default()).await.unwrap().into_iter().find(|r| r.row["name"] == json!("B's")).unwrap().local_id;
    assert_eq!(b_local, format!("srv:{b_id}"), "the second row is keyed by its server id");
    b.dev.delete("agent_library", &b_local).await.unwrap();
    sync(&b.dev).await;
    for d in [&a.dev, &b.dev, &fresh] {
        sync(d).await;
        assert_eq!(agents(d).await, ["A's"]);
    }
}

#[tokio::test]
async fn a_delete_reaches_every_member_online_or_offline_and_no_one_else() {
    let s = library_server().await;
    let (a, b, c) = (member(&s, "del-a").await, member(&s, "del-b").await, member(&s, "del-c").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    new_org(&s, &c, "Beta").await;
    let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "X"})).await.unwrap();
    a.dev.insert("agent_library", &json!({"org_id": acme, "name": "Y"})).await.unwrap();
    sync(&a.dev).await;
    sync(&b.dev).await;
    // A edits X offline while B deletes it: the delete wins on A, with A's edit shown lost.
    a.dev.update("agent_library", &x.local_id, &json!({"description": "lost"})).await.unwrap();
    b.dev.delete("agent_library", &x.local_id).await.unwrap();
    sync(&b.dev).await;
    sync(&a.dev).await;
    assert_eq!(agents(&a.dev).await, ["Y"]);
    assert_eq!(agents(&b.dev).await, ["Y"]);
    assert_eq!(a.dev.status().await.unwrap().pending, 0);
    let history = a.dev.history(20).await.unwrap();
    let lost = history.iter().find(|h| h.kind == "conflict" && h.detail["rule"] == json!("delete wins")).expect("a conflict line");
    assert_eq!(lost.detail["lost"]["description"], json!("lost"));
    // C never sees the tombstone, through the SDK or by asking the server directly.
    sync(&c.dev).await;
    let token = c.dev.session().await.unwrap().access_token;
    let tombstones: Value = reqwest::Client::new()
        .get(format!("{}/rest/v1/supasync_tombstones?select=row_id", s.url()))
        .header("apikey", s.anon_key())
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tombstones, json!([]), "a non-member reads no tombstone of the organisation");
}

#[tokio::test]
async fn a_member_added_gets_every_older_row_without_a_restore() {
    let s = library_server().await;
    let (a, c) = (member(&s, "add-a").await, member(&s, "add-c").await);
    let acme = new_org(&s, &a, "Acme").await;
    let beta = new_org(&s, &c, "Beta").await;
    // Acme's rows are written over several transactions, long before C joins.
    for round in 0..3 {
        for i in 0..10 {
            a.dev.insert("agent_library", &json!({"org_id": acme, "name": format!("acme {round}-{i}")})).await.unwrap();
        }
        sync(&a.dev).await;
    }
    c.dev.insert("agent_library", &json!({"org_id": beta, "name": "beta own"})).await.unwrap();
    sync(&c.dev).await;
    sync(&c.dev).await;
    assert_eq!(agents(&c.dev).await, ["beta own"]);

    add(&s, &a, &acme, &c).await;
    let report = sync(&c.dev).await;
    let names = agents(&c.dev).await;
    assert_eq!(names.len(), 31, "{names:?}");
    assert_eq!(report.rows, 30, "only Acme's rows were fetched: no restore of what C held");
    // And what A writes from now on comes the usual way.
    a.dev.insert("agent_library", &json!({"org_id": acme, "name": "acme later"})).await.unwrap();
    sync(&a.dev).await;
    assert_eq!(sync(&c.dev).await.rows, 1);
    assert_eq!(agents(&c.dev).await.len(), 32);
}

#[tokio::test]
async fn a_member_removed_loses_the_rows_and_their_waiting_writes_become_refusals() {
    let s = library_server().await;
    let (a, b) = (member(&s, "rm-a").await, member(&s, "rm-b").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "X"})).await.unwrap();
    a.dev.insert("agent_library", &json!({"org_id": acme, "name": "Y"})).await.unwrap();
    sync(&a.dev).await;
    sync(&b.dev).await;
    assert_eq!(agents(&b.dev).await, ["X", "Y"]);

    // B edits X offline; meanwhile A removes B from Acme.
    b.dev.update("agent_library", &x.local_id, &json!({"description": "B's edit"})).await.unwrap();
    remove(&s, &a, &acme, &b).await;
    sync(&b.dev).await;
    assert_eq!(agents(&b.dev).await, Vec::<String>::new(), "Acme's rows left B's device");
    let rejected = b.dev.rejected().await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let why = rejected[0].rejected.clone().unwrap_or_default();
    assert!(why.contains("no longer a member of org"), "{why}");
    assert_eq!(rejected[0].local_id, x.local_id);
    // Discarding it clears it; nothing reached the server.
    b.dev.discard(&x.local_id).await.unwrap();
    assert!(b.dev.rejected().await.unwrap().is_empty());
    let on_server = server_rows(&s, "agent_library", "select=description&name=eq.X").await;
    assert_eq!(on_server, vec![json!({"description": null})]);

    // A write B makes into Acme afterwards is refused by the server, with its reason.
    b.dev.insert("agent_library", &json!({"org_id": acme, "name": "late"})).await.unwrap();
    sync(&b.dev).await;
    let rejected = b.dev.rejected().await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].rejected.as_deref().unwrap_or_default().contains("row-level security"), "{rejected:?}");

    // Added again: the rows come back.
    add(&s, &a, &acme, &b).await;
    sync(&b.dev).await;
    assert_eq!(agents(&b.dev).await, ["X", "Y"]);
}

#[tokio::test]
async fn a_row_moved_to_another_organisation_leaves_those_who_cannot_read_it_there() {
    let s = library_server().await;
    let (a, b, c) = (member(&s, "mv-a").await, member(&s, "mv-b").await, member(&s, "mv-c").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    let beta = new_org(&s, &c, "Beta").await;
    add(&s, &c, &beta, &a).await;
    let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "X"})).await.unwrap();
    sync(&a.dev).await;
    for d in [&b.dev, &c.dev] {
        sync(d).await;
    }
    assert_eq!((agents(&b.dev).await, agents(&c.dev).await), (vec!["X".to_string()], vec![]));
    a.dev.update("agent_library", &x.local_id, &json!({"org_id": beta})).await.unwrap();
    sync(&a.dev).await;
    for d in [&a.dev, &b.dev, &c.dev] {
        sync(d).await;
    }
    assert_eq!(agents(&a.dev).await, ["X"], "A reads it in Beta too");
    assert_eq!(agents(&b.dev).await, Vec::<String>::new(), "B cannot read it in Beta");
    assert_eq!(agents(&c.dev).await, ["X"], "C now can");
    assert!(b.dev.rejected().await.unwrap().is_empty(), "B had no write of it: nothing to refuse");
}

#[tokio::test]
async fn scope_declarations_that_disagree_with_the_kit_are_a_clear_error() {
    let s = library_server().await;
    let schema = supasync_core::Schema::new(vec![supasync_core::TableDecl::new("agent_library").shared_by("team_id")]).unwrap();
    let d = supasync_core::Engine::open(
        schema,
        supasync_native::SqliteStore::in_memory().unwrap(),
        supasync_native::ReqwestHttp::with_timeout(Duration::from_secs(5)).unwrap(),
        supasync_core::client::Project { url: s.url().into(), anon_key: s.anon_key().into() },
        supasync_core::EngineConfig::with_clock(supasync_native::system_now_ms),
    )
    .await
    .unwrap();
    d.sign_up("decl@example.com", "password-123").await.unwrap();
    let err = d.pull().await.unwrap_err();
    assert_eq!(err.kind(), "invalid");
    assert!(err.to_string().contains("`agent_library` is declared shared by `team_id`, but the SQL kit shares it by `org_id`"), "{err}");
}
