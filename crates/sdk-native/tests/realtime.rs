//! The Realtime client (core driver on tokio-tungstenite) against the dev server and
//! against a fake server that misbehaves: broadcast with ack, presence, owner-filtered
//! `postgres_changes`, reconnect and rejoin after a cut, pushes buffered while away,
//! garbage frames skipped, a silent server detected by the heartbeat.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::realtime::{
    AccessTokenSource, Channel, ChannelConfig, ChannelEvent, ChannelState, ConnectionState, PgChangesSpec, PresenceChange, RealtimeConfig,
};
use supasync_core::{Backoff, Engine, EngineConfig, Schema};
use supasync_native::{start_realtime, system_now_ms, ReqwestHttp, SqliteStore};
use tokio::time::timeout;

fn fast() -> RealtimeConfig {
    RealtimeConfig {
        reconnect: Backoff { initial_ms: 100, max_ms: 400 },
        rejoin: Backoff { initial_ms: 100, max_ms: 400 },
        ..RealtimeConfig::with_clock(system_now_ms)
    }
}

/// A user's access token, through the built-in auth client.
async fn token(url: &str, key: &str, email: &str) -> (String, String) {
    let e = Engine::open(
        Schema::from_json(r#"{"tables":[]}"#).unwrap(),
        SqliteStore::in_memory().unwrap(),
        ReqwestHttp::new().unwrap(),
        Project { url: url.into(), anon_key: key.into() },
        EngineConfig::with_clock(system_now_ms),
    )
    .await
    .unwrap();
    let s = e.sign_up(email, "password-123").await.unwrap();
    (s.access_token.clone(), s.user_id.clone())
}

struct Fixed(String);

supasync_core::maybe_async_trait! {
    impl AccessTokenSource for Fixed {
        async fn access_token(&self) -> Option<String> {
            Some(self.0.clone())
        }
    }
}

/// The first event `pick` accepts, within `secs`.
async fn until<T>(ch: &mut Channel, secs: u64, mut pick: impl FnMut(&ChannelEvent) -> Option<T>) -> T {
    timeout(Duration::from_secs(secs), async {
        loop {
            let e = ch.next().await.expect("channel ended");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("event in time")
}

fn joined(e: &ChannelEvent) -> Option<()> {
    matches!(e, ChannelEvent::State(ChannelState::Joined)).then_some(())
}

fn ready(e: &ChannelEvent) -> Option<()> {
    matches!(e, ChannelEvent::PostgresReady).then_some(())
}

#[tokio::test]
async fn broadcast_with_ack_and_presence_between_two_devices() {
    let s = server().await;
    let (tok, _) = token(s.url(), s.anon_key(), "rt1@example.com").await;
    let src: Arc<dyn AccessTokenSource> = Arc::new(Fixed(tok));
    let a = start_realtime(s.url(), s.anon_key(), fast(), Some(src.clone()));
    let b = start_realtime(s.url(), s.anon_key(), fast(), Some(src));
    let cfg = |key: &str| ChannelConfig {
        broadcast_ack: true,
        presence_key: Some(key.into()),
        ..Default::default()
    };
    let mut ca = a.channel("devices:rt1", &cfg("laptop"));
    let mut cb = b.channel("devices:rt1", &cfg("phone"));
    until(&mut ca, 10, joined).await;
    until(&mut cb, 10, joined).await;

    ca.track(json!({"device": "laptop"})).await.unwrap();
    cb.track(json!({"device": "phone"})).await.unwrap();
    let both = |e: &ChannelEvent| match e {
        ChannelEvent::PresenceSync(m) if m.len() == 2 => Some(m.clone()),
        _ => None,
    };
    let seen_by_a = until(&mut ca, 10, both).await;
    assert_eq!(seen_by_a["phone"][0]["device"], json!("phone"));
    until(&mut cb, 10, both).await;

    // A typing indicator: acknowledged by the server, received by B, not echoed to A.
    ca.broadcast("typing", json!({"conversation": "c1"})).await.unwrap();
    let got = until(&mut cb, 10, |e| match e {
        ChannelEvent::Broadcast { event, payload } => Some((event.clone(), payload.clone())),
        _ => None,
    })
    .await;
    assert_eq!(got, ("typing".to_string(), json!({"conversation": "c1"})));

    // B goes away: A sees the phone leave.
    b.disconnect();
    let left = until(&mut ca, 10, |e| match e {
        ChannelEvent::Presence(PresenceChange::Leave { key, .. }) => Some(key.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "phone");
    assert!(
        timeout(Duration::from_millis(300), async {
            loop {
                if let Some(ChannelEvent::Broadcast { .. }) = ca.next().await {
                    return;
                }
            }
        })
        .await
        .is_err(),
        "no echo of A's own broadcast"
    );
}

fn memories_of(user_id: &str) -> ChannelConfig {
    ChannelConfig {
        postgres_changes: vec![PgChangesSpec {
            event: "*".into(),
            schema: "public".into(),
            table: "memories".into(),
            filter: Some(format!("user_id=eq.{user_id}")),
        }],
        ..Default::default()
    }
}

async fn insert_memory(url: &str, key: &str, token: &str, content: &str) {
    let r = reqwest::Client::new()
        .post(format!("{url}/rest/v1/memories"))
        .header("apikey", key)
        .bearer_auth(token)
        .json(&json!({"content": content, "local_id": content}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
}

fn change_content(e: &ChannelEvent) -> Option<String> {
    match e {
        ChannelEvent::Change(c) => c.record.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

#[tokio::test]
async fn owner_filtered_changes_flow_after_ready_and_never_cross_users() {
    let s = server().await;
    let (ta, ua) = token(s.url(), s.anon_key(), "rt2a@example.com").await;
    let (tb, ub) = token(s.url(), s.anon_key(), "rt2b@example.com").await;
    let a = start_realtime(s.url(), s.anon_key(), fast(), Some(Arc::new(Fixed(ta.clone()))));
    let b = start_realtime(s.url(), s.anon_key(), fast(), Some(Arc::new(Fixed(tb.clone()))));
    let mut ca = a.channel("sync:a", &memories_of(&ua));
    let mut cb = b.channel("sync:b", &memories_of(&ub));
    // Even a subscription that asks for A's rows gets nothing: RLS decides.
    let mut spy = b.channel("sync:spy", &memories_of(&ua));
    until(&mut ca, 10, ready).await;
    until(&mut cb, 10, ready).await;
    until(&mut spy, 10, ready).await;

    insert_memory(s.url(), s.anon_key(), &ta, "from A").await;
    insert_memory(s.url(), s.anon_key(), &tb, "from B").await;
    assert_eq!(until(&mut ca, 10, change_content).await, "from A");
    assert_eq!(until(&mut cb, 10, change_content).await, "from B");
    let leak = timeout(Duration::from_millis(800), async {
        loop {
            if let Some(c) = change_content(&spy.next().await.expect("open")) {
                return c;
            }
        }
    })
    .await;
    assert!(leak.is_err(), "B received A's change: {leak:?}");
}

#[tokio::test]
async fn a_cut_socket_reconnects_rejoins_and_delivers_buffered_pushes() {
    let s = server().await;
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let (tok, uid) = token(s.url(), s.anon_key(), "rt3@example.com").await;
    let src: Arc<dyn AccessTokenSource> = Arc::new(Fixed(tok.clone()));
    let a = start_realtime(&proxy.url(), s.anon_key(), fast(), Some(src.clone()));
    let b = start_realtime(s.url(), s.anon_key(), fast(), Some(src));
    let mut states = a.connection_states();
    let cfg = ChannelConfig {
        broadcast_ack: true,
        ..memories_of(&uid)
    };
    let mut ca = a.channel("sync:rt3", &cfg);
    let mut cb = b.channel("sync:rt3", &cfg);
    until(&mut ca, 10, ready).await;
    until(&mut cb, 10, joined).await;

    // The network drops and stays down for a while.
    proxy.set(Mode::Refuse);
    proxy.cut();
    until(&mut ca, 10, |e| matches!(e, ChannelEvent::State(ChannelState::Errored { .. })).then_some(())).await;
    // A broadcast sent while away waits, then goes out after the rejoin.
    let pending = tokio::spawn({
        let ca_topic_sender = ca;
        async move {
            let r = ca_topic_sender.broadcast("note", json!({"sent": "while offline"})).await;
            (ca_topic_sender, r)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set(Mode::Pass);
    let (mut ca, sent) = pending.await.unwrap();
    sent.expect("the buffered broadcast was acknowledged after the rejoin");
    let got = until(&mut cb, 10, |e| match e {
        ChannelEvent::Broadcast { payload, .. } => Some(payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, json!({"sent": "while offline"}));
    // Changes flow again once the server says so.
    until(&mut ca, 10, ready).await;
    insert_memory(s.url(), s.anon_key(), &tok, "after the cut").await;
    assert_eq!(until(&mut ca, 10, change_content).await, "after the cut");
    // The app saw the connection go and come back.
    let mut seen = vec![];
    while let Ok(Some(st)) = timeout(Duration::from_millis(50), states.next()).await {
        seen.push(st);
    }
    assert!(seen.iter().any(|s| matches!(s, ConnectionState::Disconnected { .. })), "{seen:?}");
    assert_eq!(seen.last(), Some(&ConnectionState::Open), "{seen:?}");
}

/// A fake Realtime server: answers joins, then sends garbage before a real broadcast;
/// with `answer_heartbeats: false` it never answers a heartbeat.
async fn fake_server(answer_heartbeats: bool) -> (String, tokio::sync::mpsc::UnboundedReceiver<u32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (conns_tx, conns_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            let _ = conns_tx.send(n);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                use tokio_tungstenite::tungstenite::Message;
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let f: Value = serde_json::from_str(&t).unwrap();
                    match f["event"].as_str() {
                        Some("phx_join") => {
                            let reply = json!({"topic": f["topic"], "event": "phx_reply", "ref": f["ref"], "join_ref": f["ref"],
                                "payload": {"status": "ok", "response": {"postgres_changes": []}}});
                            ws.send(Message::text(reply.to_string())).await.unwrap();
                            for junk in ["not json", "[1,2]", "{\"topic\":5}", "{}", "\u{0}\u{1}", "[null,null,\"realtime:x\",\"broadcast\"]"] {
                                ws.send(Message::text(junk)).await.unwrap();
                            }
                            ws.send(Message::binary(vec![9u8, 9, 9])).await.unwrap();
                            let unknown = json!({"topic": "realtime:nobody", "event": "broadcast", "ref": null, "payload": {}});
                            ws.send(Message::text(unknown.to_string())).await.unwrap();
                            let odd = json!({"topic": f["topic"], "event": "postgres_changes", "ref": null, "payload": {"data": "junk"}});
                            ws.send(Message::text(odd.to_string())).await.unwrap();
                            let b = json!({"topic": f["topic"], "event": "broadcast", "ref": null,
                                "payload": {"type": "broadcast", "event": "hello", "payload": {"ok": true}}});
                            ws.send(Message::text(b.to_string())).await.unwrap();
                        }
                        Some("heartbeat") if answer_heartbeats => {
                            let reply = json!({"topic": "phoenix", "event": "phx_reply", "ref": f["ref"], "payload": {"status": "ok", "response": {}}});
                            ws.send(Message::text(reply.to_string())).await.unwrap();
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), conns_rx)
}

#[tokio::test]
async fn garbage_frames_are_skipped_and_end_nothing() {
    let (url, _) = fake_server(true).await;
    let rt = start_realtime(&url, "anon", fast(), None);
    let mut ch = rt.channel("room", &ChannelConfig::default());
    let got = until(&mut ch, 10, |e| match e {
        ChannelEvent::Broadcast { event, payload } => Some((event.clone(), payload.clone())),
        ChannelEvent::State(ChannelState::Errored { reason }) => panic!("the channel failed: {reason}"),
        _ => None,
    })
    .await;
    assert_eq!(got, ("hello".to_string(), json!({"ok": true})));
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_heartbeat_and_left() {
    let (url, mut conns) = fake_server(false).await;
    let cfg = RealtimeConfig {
        heartbeat_ms: 300,
        ..fast()
    };
    let rt = start_realtime(&url, "anon", cfg, None);
    let mut states = rt.connection_states();
    let _ch = rt.channel("room", &ChannelConfig::default());
    let reason = timeout(Duration::from_secs(10), async {
        loop {
            if let Some(ConnectionState::Disconnected { reason, .. }) = states.next().await {
                return reason;
            }
        }
    })
    .await
    .expect("the silent server is noticed");
    assert!(reason.contains("heartbeat timeout"), "{reason}");
    // And the client tries again.
    timeout(Duration::from_secs(10), async {
        while conns.recv().await.unwrap() < 2 {}
    })
    .await
    .expect("a reconnect");
}
