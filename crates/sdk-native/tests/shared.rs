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
use supasync_core::Store;
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

/// Bump an agent's usage counter as an app does: a queued call, shown at once as the
/// count this device knows plus one.
async fn use_agent(d: &Replica, local_id: &str) {
    let now = agent(d, local_id).await["usage_count"].as_i64().unwrap_or(0);
    d.call("agent_library", local_id, "use_agent", &json!({}), &json!({"usage_count": now + 1})).await.expect("call");
}

#[tokio::test]
async fn offline_increments_from_several_devices_add_up_exactly() {
    let s = library_server().await;
    let (a, b) = (member(&s, "count-a").await, member(&s, "count-b").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    // A's second device goes through a proxy that can lose answers.
    let proxy = common::fault_proxy::FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a2 = library_replica(&proxy.url(), s.anon_key()).await;
    a2.sign_in(&a.email, "password-123").await.unwrap();
    let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "counted"})).await.unwrap();
    sync(&a.dev).await;
    for d in [&b.dev, &a2] {
        sync(d).await;
    }
    // Offline, five uses on each device: each shows its own count at once.
    for d in [&a.dev, &b.dev, &a2] {
        for _ in 0..5 {
            use_agent(d, &x.local_id).await;
        }
        assert_eq!(agent(d, &x.local_id).await["usage_count"], json!(5));
    }
    // A rename on B between its uses goes with them, in order, and merges with nothing.
    b.dev.update("agent_library", &x.local_id, &json!({"name": "counted!"})).await.unwrap();
    use_agent(&b.dev, &x.local_id).await;
    // A2's first push reaches the server, but its answers are lost; the retry replays.
    proxy.set(common::fault_proxy::Mode::DropAnswers);
    let lost = a2.push().await.unwrap();
    assert!(lost.stopped.is_some() && lost.pushed == 0, "{lost:?}");
    proxy.set(common::fault_proxy::Mode::Pass);
    for d in [&a.dev, &b.dev, &a2] {
        sync(d).await;
    }
    let on_server = server_rows(&s, "agent_library", "select=usage_count,name").await;
    assert_eq!(on_server, vec![json!({"usage_count": 16, "name": "counted!"})], "5 + 6 + 5 uses, each counted once");
    for d in [&a.dev, &b.dev, &a2] {
        sync(d).await;
        let row = agent(d, &x.local_id).await;
        assert_eq!((row["usage_count"].clone(), row["name"].clone()), (json!(16), json!("counted!")));
        assert_eq!(d.status().await.unwrap().pending, 0);
    }
}

#[tokio::test]
async fn a_call_the_server_refuses_rolls_back_its_effect_with_the_reason() {
    let s = library_server().await;
    let (a, b) = (member(&s, "refuse-a").await, member(&s, "refuse-b").await);
    let acme = new_org(&s, &a, "Acme").await;
    add(&s, &a, &acme, &b).await;
    let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "X"})).await.unwrap();
    sync(&a.dev).await;
    sync(&b.dev).await;
    // A function the kit does not allow, and a use after B left the organisation.
    b.dev.call("agent_library", &x.local_id, "drop_everything", &json!({}), &json!({"usage_count": 99})).await.unwrap();
    sync(&b.dev).await;
    let rejected = b.dev.rejected().await.unwrap();
    assert_eq!(rejected.len(), 1);
    let why = rejected[0].rejected.clone().unwrap_or_default();
    assert!(why.contains("\"drop_everything\" is not a function apps may call"), "{why}");
    b.dev.discard(&x.local_id).await.unwrap();
    assert_eq!(agent(&b.dev, &x.local_id).await["usage_count"], json!(0), "the effect is rolled back");
    // Bad calls are refused before anything is queued.
    let err = b.dev.call("agent_library", &x.local_id, "use_agent", &json!([1]), &json!({})).await.unwrap_err();
    assert_eq!(err.kind(), "invalid");
    let err = b.dev.call("agent_library", &x.local_id, "use_agent", &json!({}), &json!({"id": "x"})).await.unwrap_err();
    assert_eq!(err.kind(), "invalid");
    assert_eq!(b.dev.status().await.unwrap().pending, 0);
}

/// The messages a device shows, by content, sorted.
async fn message_contents(d: &Replica) -> Vec<String> {
    let mut c: Vec<String> = d.query("messages", &Query::default()).await.unwrap().iter().map(|m| m.row["content"].as_str().unwrap().to_string()).collect();
    c.sort();
    c
}

/// The owner shares a conversation with `email`, or stops sharing it (`function`), and pushes.
async fn set_share(owner: &Replica, conversation: &str, email: &str, function: &str) {
    owner.call("conversations", conversation, function, &json!({"email": email}), &json!({})).await.unwrap();
    owner.push().await.unwrap();
}

#[tokio::test]
async fn a_conversation_shared_by_email_offline_brings_both_users_each_others_messages() {
    // The chat example (seed 004): A makes a conversation offline and shares it with B
    // by email, a queued call that goes after the conversation's insert.
    let s = common::chat_example_server().await;
    let (a, b) = (common::chat_example_replica(s.url(), s.anon_key()).await, common::chat_example_replica(s.url(), s.anon_key()).await);
    a.sign_up("share-a@example.com", "password-123").await.unwrap();
    b.sign_up("share-b@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Trip"})).await.unwrap();
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "from A"})).await.unwrap();
    a.call("conversations", &conv.local_id, "share_conversation", &json!({"email": "share-b@example.com"}), &json!({})).await.unwrap();
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    let on_b = b.query("conversations", &Query::default()).await.unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!((on_b[0].local_id.as_str(), on_b[0].row["title"].clone()), (conv.local_id.as_str(), json!("Trip")));
    assert_eq!(message_contents(&b).await, ["from A"]);
    // B answers in it; A gets B's message (and the server's count of both).
    b.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "from B"})).await.unwrap();
    b.sync().await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(message_contents(&a).await, ["from A", "from B"]);
    assert_eq!(a.get("conversations", &conv.local_id).await.unwrap().unwrap().row["message_count"], json!(2));
    // Sharing with an unknown email is refused with the server's reason.
    a.call("conversations", &conv.local_id, "share_conversation", &json!({"email": "nobody@example.com"}), &json!({})).await.unwrap();
    a.sync().await.unwrap();
    let rejected = a.rejected().await.unwrap();
    assert!(rejected.len() == 1 && rejected[0].rejected.as_deref().unwrap_or_default().contains("no user with the email nobody@example.com"), "{rejected:?}");
    a.discard(&conv.local_id).await.unwrap();
    // A stops sharing: B loses the conversation and A's messages. B's own message stays:
    // the example's policies still let B read what B wrote.
    a.call("conversations", &conv.local_id, "unshare_conversation", &json!({"email": "share-b@example.com"}), &json!({})).await.unwrap();
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    assert!(b.query("conversations", &Query::default()).await.unwrap().is_empty());
    assert_eq!(message_contents(&b).await, ["from B"]);
    assert_eq!(message_contents(&a).await, ["from A", "from B"], "A keeps both");
}

#[tokio::test]
async fn a_shared_conversation_deleted_with_its_memberships_is_a_delete_not_a_lost_membership() {
    // Deleting a shared conversation also deletes its memberships (on delete cascade):
    // the owner's other device learns that it left the scope, and must still say that
    // the conversation was deleted, for it and for a message it wrote there meanwhile.
    let s = common::chat_example_server().await;
    let (a1, a2, b) = (
        common::chat_example_replica(s.url(), s.anon_key()).await,
        common::chat_example_replica(s.url(), s.anon_key()).await,
        common::chat_example_replica(s.url(), s.anon_key()).await,
    );
    a1.sign_up("del-shared-a@example.com", "password-123").await.unwrap();
    a2.sign_in("del-shared-a@example.com", "password-123").await.unwrap();
    b.sign_up("del-shared-b@example.com", "password-123").await.unwrap();
    let conv = a1.insert("conversations", &json!({"title": "Soon gone"})).await.unwrap();
    a1.call("conversations", &conv.local_id, "share_conversation", &json!({"email": "del-shared-b@example.com"}), &json!({})).await.unwrap();
    a1.sync().await.unwrap();
    a2.sync().await.unwrap();
    b.sync().await.unwrap();
    // A2 writes into it while A1 deletes it; A2's next pull comes before its push.
    let late = a2.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "too late"})).await.unwrap();
    a1.delete("conversations", &conv.local_id).await.unwrap();
    a1.sync().await.unwrap();
    a2.pull().await.unwrap();
    assert!(a2.query("conversations", &Query::default()).await.unwrap().is_empty());
    let rejected = a2.rejected().await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].local_id, late.local_id);
    let why = rejected[0].rejected.clone().unwrap_or_default();
    assert!(why.contains("was deleted"), "{why}");
    let history = a2.history(20).await.unwrap();
    assert!(!history.iter().any(|h| h.error.as_deref().is_some_and(|e| e.contains("no longer a member"))), "{history:?}");
    b.sync().await.unwrap();
    assert!(b.query("conversations", &Query::default()).await.unwrap().is_empty(), "gone for the guest too");
}

#[tokio::test]
async fn a_membership_revoked_and_granted_again_while_a_pull_runs_loses_no_row() {
    // A pull's pages go through RLS as it is at each request. Here the guest's pull
    // begins as a member, its walk of messages runs while the share is withdrawn (so a
    // message written then is not in it, though below the new cursor), and the share
    // is back before the pull ends. The pull must not take the scope for held.
    let s = common::chat_example_server().await;
    let a = common::chat_example_replica(s.url(), s.anon_key()).await;
    a.sign_up("race-a@example.com", "password-123").await.unwrap();
    let proxy = common::fault_proxy::FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let b = common::chat_example_replica(&proxy.url(), s.anon_key()).await;
    b.sign_up("race-b@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Flaky share"})).await.unwrap();
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "first"})).await.unwrap();
    a.push().await.unwrap();
    set_share(&a, &conv.local_id, "race-b@example.com", "share_conversation").await;
    b.pull().await.unwrap();
    assert_eq!(message_contents(&b).await, ["first"]);

    let mut start = proxy.hold_answer(&["POST /rest/v1/rpc/supasync_memberships"]);
    let pull = tokio::spawn({
        let b = b.clone();
        async move { b.pull().await }
    });
    start.arrived().await; // the pull began while B is a member
    set_share(&a, &conv.local_id, "race-b@example.com", "unshare_conversation").await;
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "while unshared"})).await.unwrap();
    a.push().await.unwrap();
    let mut walk = proxy.hold_answer(&["GET /rest/v1/messages?", "sync_txid=gte."]);
    start.release();
    walk.arrived().await; // the walk ran without B's membership
    set_share(&a, &conv.local_id, "race-b@example.com", "share_conversation").await;
    walk.release();
    pull.await.unwrap().unwrap();
    b.pull().await.unwrap();
    assert_eq!(message_contents(&b).await, ["first", "while unshared"], "the message written while unshared arrives");
}

#[tokio::test]
async fn a_delete_made_while_a_share_was_withdrawn_reaches_the_member_when_shared_again() {
    // The guest's pull begins as a member; the share is withdrawn and a message deleted
    // before its walk of tombstones, which therefore cannot see the tombstone; shared
    // again, the next pull must still delete the message.
    let s = common::chat_example_server().await;
    let a = common::chat_example_replica(s.url(), s.anon_key()).await;
    a.sign_up("gone-a@example.com", "password-123").await.unwrap();
    let proxy = common::fault_proxy::FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let b = common::chat_example_replica(&proxy.url(), s.anon_key()).await;
    b.sign_up("gone-b@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Shared, then not"})).await.unwrap();
    let doomed = a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "doomed"})).await.unwrap();
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "kept"})).await.unwrap();
    a.push().await.unwrap();
    set_share(&a, &conv.local_id, "gone-b@example.com", "share_conversation").await;
    b.pull().await.unwrap();
    assert_eq!(message_contents(&b).await, ["doomed", "kept"]);
    let mut start = proxy.hold_answer(&["POST /rest/v1/rpc/supasync_memberships"]);
    let pull = tokio::spawn({
        let b = b.clone();
        async move { b.pull().await }
    });
    start.arrived().await;
    set_share(&a, &conv.local_id, "gone-b@example.com", "unshare_conversation").await;
    a.delete("messages", &doomed.local_id).await.unwrap();
    a.push().await.unwrap();
    start.release();
    pull.await.unwrap().unwrap();
    set_share(&a, &conv.local_id, "gone-b@example.com", "share_conversation").await;
    b.pull().await.unwrap();
    assert_eq!(message_contents(&b).await, ["kept"], "the delete arrives once shared again");
}

#[tokio::test]
async fn an_insert_that_landed_before_its_share_was_withdrawn_is_confirmed_not_refused_and_its_delete_goes_through() {
    // The guest's message reaches the server but the answer is lost; the owner stops
    // sharing; the guest deletes the message. Sent again, the insert is refused (the
    // policy no longer lets the guest write into that conversation) though the server
    // holds the row: the push finds it by its local id and confirms it, and the delete
    // goes. A refusal there would roll back a write that landed, and the delete with it.
    let s = common::chat_example_server().await;
    let a = common::chat_example_replica(s.url(), s.anon_key()).await;
    a.sign_up("landed-a@example.com", "password-123").await.unwrap();
    let proxy = common::fault_proxy::FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let b = common::chat_example_replica(&proxy.url(), s.anon_key()).await;
    b.sign_up("landed-b@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Shared for a moment"})).await.unwrap();
    set_share(&a, &conv.local_id, "landed-b@example.com", "share_conversation").await;
    b.pull().await.unwrap();
    let m = b.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "landed"})).await.unwrap();
    proxy.set(common::fault_proxy::Mode::FailAnswers);
    let lost = b.push().await.unwrap();
    assert_eq!(lost.pushed, 0, "{lost:?}");
    let q = format!("select=content&local_id=eq.{}", m.local_id);
    assert_eq!(server_rows(&s, "messages", &q).await.len(), 1, "the insert landed");
    set_share(&a, &conv.local_id, "landed-b@example.com", "unshare_conversation").await;
    b.delete("messages", &m.local_id).await.unwrap();
    proxy.set(common::fault_proxy::Mode::Pass);
    let back = b.push().await.unwrap();
    assert_eq!(back.rejected, 0, "{back:?}; rejected {:?}", b.rejected().await.unwrap());
    assert!(server_rows(&s, "messages", &q).await.is_empty(), "the delete reached the server");
    assert_eq!(b.status().await.unwrap().pending, 0);
    assert!(b.get("messages", &m.local_id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_update_that_landed_before_the_policy_closed_is_confirmed_not_refused_and_its_delete_goes_through() {
    // An app that lets a message be edited only for a while (an edit window) and deleted
    // at any time. The edit reaches the server but its answer is lost; the window
    // closes; the user deletes the message. Sent again, the edit matches nothing (the
    // policy no longer lets the user change the row) though the server holds it: the
    // push reads the row, finds the edit there and confirms it, and the delete goes. A
    // refusal would roll back an edit that landed, and the delete with it.
    let s = common::chat_example_server().await;
    let proxy = common::fault_proxy::FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = common::chat_example_replica(&proxy.url(), s.anon_key()).await;
    a.sign_up("edit-window@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Edits"})).await.unwrap();
    let m = a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "first"})).await.unwrap();
    a.push().await.unwrap();
    a.update("messages", &m.local_id, &json!({"content": "edited"})).await.unwrap();
    proxy.set(common::fault_proxy::Mode::FailAnswers);
    let lost = a.push().await.unwrap();
    assert_eq!(lost.pushed, 0, "{lost:?}");
    let q = format!("select=content&local_id=eq.{}", m.local_id);
    assert_eq!(server_rows(&s, "messages", &q).await, vec![json!({"content": "edited"})], "the edit landed");
    let (sql, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    sql.batch_execute(
        r#"drop policy "change own messages" on public.messages;
           create policy "change messages while the edit window is open" on public.messages for update using (false);"#,
    )
    .await
    .unwrap();
    a.delete("messages", &m.local_id).await.unwrap();
    proxy.set(common::fault_proxy::Mode::Pass);
    let back = a.push().await.unwrap();
    assert_eq!(back.rejected, 0, "{back:?}; rejected {:?}", a.rejected().await.unwrap());
    assert!(server_rows(&s, "messages", &q).await.is_empty(), "the delete reached the server");
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert!(a.get("messages", &m.local_id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_users_own_rows_of_a_shared_table_are_never_in_doubt() {
    // A user's own conversations and messages (never shared) are read as theirs: a pull
    // that brings them does not take them for rows of a scope id the user is not in,
    // which the next pull would have to check with the server, row by row.
    let s = common::chat_example_server().await;
    let a = common::chat_example_replica(s.url(), s.anon_key()).await;
    a.sign_up("own-rows@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Mine"})).await.unwrap();
    for i in 0..3 {
        a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": format!("m{i}")})).await.unwrap();
    }
    a.push().await.unwrap();
    let fresh = common::chat_example_replica(s.url(), s.anon_key()).await;
    fresh.sign_in("own-rows@example.com", "password-123").await.unwrap();
    let first = fresh.pull().await.unwrap();
    assert_eq!(first.rows, 4);
    for t in ["conversations", "messages"] {
        assert_eq!(fresh.store.meta(&format!("scopes:stray:{t}")).await.unwrap(), None, "{t}: no stray scope ids");
    }
    let again = fresh.pull().await.unwrap();
    assert_eq!((again.rows, again.deleted), (0, 0));
    assert!(fresh.history(20).await.unwrap().iter().all(|h| h.kind != "access"), "no eviction pass");
}

mod live {
    use super::*;
    use supasync_core::live::Phase;
    use supasync_core::live_query::{live_query, LiveQuery};
    use supasync_core::realtime::{AccessTokenSource, ChannelEvent, RealtimeConfig};
    use supasync_native::{ReqwestHttp, SqliteStore};
    use tokio::time::timeout;

    struct Fixed(String);

    supasync_core::maybe_async_trait! {
        impl AccessTokenSource for Fixed {
            async fn access_token(&self) -> Option<String> {
                Some(self.0.clone())
            }
        }
    }

    fn names(rows: &[supasync_core::RowView]) -> Vec<String> {
        let mut n: Vec<String> = rows.iter().map(|r| r.row["name"].as_str().unwrap_or_default().to_string()).collect();
        n.sort();
        n
    }

    /// The live query's results up to the first that `ok` accepts (all of them, in order).
    async fn until_names(q: &mut LiveQuery<SqliteStore, ReqwestHttp>, what: &str, ok: impl Fn(&[String]) -> bool) -> Vec<Vec<String>> {
        let mut seen = vec![];
        timeout(Duration::from_secs(15), async {
            loop {
                let n = names(&q.next().await.expect("engine alive").expect("query"));
                let done = ok(&n);
                seen.push(n);
                if done {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: not seen in time; saw {seen:?}"));
        seen
    }

    #[tokio::test]
    async fn shared_rows_and_memberships_change_live_and_a_non_member_hears_nothing() {
        let s = library_server().await;
        let (url, key) = (s.url(), s.anon_key());
        let (a, b, c) = (member(&s, "live-a").await, member(&s, "live-b").await, member(&s, "live-c").await);
        let acme = new_org(&s, &a, "Acme").await;
        add(&s, &a, &acme, &b).await;
        let beta = new_org(&s, &c, "Beta").await;
        a.dev.insert("agent_library", &json!({"org_id": acme, "name": "Z (before C)"})).await.unwrap();
        sync(&a.dev).await;
        let lives: Vec<_> = [&a, &b, &c].iter().map(|m| common::go_live(&m.dev, url, key, 25_000)).collect();
        for l in &lives {
            common::until_phase(l, Phase::Live, 15).await;
        }
        // A witness on the wire: C's token, with exactly the listeners C's replica joined with.
        let c_token = c.dev.session().await.unwrap().access_token;
        let rt = supasync_native::start_realtime(url, key, RealtimeConfig::with_clock(supasync_native::system_now_ms), Some(std::sync::Arc::new(Fixed(c_token))));
        let listeners = supasync_core::listeners::channel_config(&c.dev.schema, &c.id, &c.dev.held_scopes().await.unwrap());
        let mut witness = rt.channel("witness", &listeners);
        timeout(Duration::from_secs(15), async {
            while let Some(e) = witness.next().await {
                if matches!(e, ChannelEvent::PostgresReady) {
                    return;
                }
            }
        })
        .await
        .expect("the witness joins");

        let mut on_b = live_query(&b.dev, "agent_library", Query::default());
        let mut on_c = live_query(&c.dev, "agent_library", Query::default());
        until_names(&mut on_b, "B's first list", |n| n == ["Z (before C)"]).await;
        until_names(&mut on_c, "C's first list", |n| n.is_empty()).await;

        // Insert, update and delete reach B live.
        let x = a.dev.insert("agent_library", &json!({"org_id": acme, "name": "X"})).await.unwrap();
        until_names(&mut on_b, "X on B", |n| n.contains(&"X".to_string())).await;
        a.dev.update("agent_library", &x.local_id, &json!({"name": "X2"})).await.unwrap();
        until_names(&mut on_b, "X2 on B", |n| n.contains(&"X2".to_string())).await;
        a.dev.delete("agent_library", &x.local_id).await.unwrap();
        until_names(&mut on_b, "X gone on B", |n| n == ["Z (before C)"]).await;

        // Then a Beta row: Realtime delivers in commit order, so once C hears of it, it
        // would have heard of Acme's changes before. It heard nothing of them.
        let c2 = library_replica(url, key).await;
        c2.sign_in(&c.email, "password-123").await.unwrap();
        c2.insert("agent_library", &json!({"org_id": beta, "name": "marker"})).await.unwrap();
        c2.push().await.unwrap();
        let heard = timeout(Duration::from_secs(15), async {
            let mut heard = vec![];
            while let Some(e) = witness.next().await {
                if let ChannelEvent::Change(ch) = e {
                    let marker = ch.record.get("name") == Some(&json!("marker"));
                    heard.push(format!("{} {} {}", ch.kind, ch.table, Value::Object(ch.record.clone())));
                    if marker {
                        return heard;
                    }
                }
            }
            heard
        })
        .await
        .expect("the witness hears the marker");
        // (C's own access line, from making Beta, may come too: it is C's.)
        assert!(heard.iter().all(|h| !h.contains(&acme) && !h.contains(&x.local_id)), "C heard of Acme's rows: {heard:?}");
        assert!(heard.iter().all(|h| h.contains(&beta)), "{heard:?}");
        let seen = until_names(&mut on_c, "the marker on C", |n| n == ["marker"]).await;
        assert!(seen.iter().all(|n| n.is_empty() || n == &["marker".to_string()]), "{seen:?}");

        // C joins Acme: Acme's older rows arrive live, and so do new ones.
        add(&s, &a, &acme, &c).await;
        until_names(&mut on_c, "Acme's rows on C", |n| n == ["Z (before C)", "marker"]).await;
        a.dev.insert("agent_library", &json!({"org_id": acme, "name": "W"})).await.unwrap();
        until_names(&mut on_c, "W on C", |n| n.contains(&"W".to_string())).await;
        // C leaves: Acme's rows leave C's device live.
        remove(&s, &a, &acme, &c).await;
        until_names(&mut on_c, "Acme's rows gone from C", |n| n == ["marker"]).await;
        for l in lives {
            l.stop();
        }
    }
}
