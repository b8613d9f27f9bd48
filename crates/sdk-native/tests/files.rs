//! Files in the outbox, natively (SQLite store) against supasync-dev's Storage: an
//! upload made offline goes with the rows that name it and before them; a cut between
//! the two, a lost answer and a kill mid-upload neither lose nor double anything; a
//! refused file refuses its rows, with Storage's reason, until retried or discarded; a
//! chunk cut off resumes the same upload on the next push; an upload finished whose
//! answer was lost is confirmed, not sent again;
//! row-level security keeps users' files apart; the cache keeps what was read last.

mod common;

use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::{server, server_rows};
use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::events::EngineEvent;
use supasync_core::{Engine, EngineConfig, EngineError, Schema, Store};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

type Device = Engine<SqliteStore, ReqwestHttp>;

fn schema() -> Schema {
    Schema::from_json(
        r#"{"tables":[
          {"name":"conversations"},
          {"name":"messages","references":{"conversation_id":"conversations"},"files":{"attachment":"attachments"}}
        ]}"#,
    )
    .unwrap()
}

async fn device_on(url: &str, key: &str, store: SqliteStore, cfg: EngineConfig) -> Device {
    Engine::open(schema(), store, ReqwestHttp::with_timeout(Duration::from_secs(10)).unwrap(), Project { url: url.into(), anon_key: key.into() }, cfg)
        .await
        .unwrap()
}

async fn device(s: &DevServer) -> Device {
    device_on(s.url(), s.anon_key(), SqliteStore::in_memory().unwrap(), EngineConfig::with_clock(system_now_ms)).await
}

/// An object's bytes as Storage holds them (read with the service key), or its status.
async fn stored(s: &DevServer, bucket: &str, path: &str) -> Result<Vec<u8>, u16> {
    let r = reqwest::Client::new()
        .get(format!("{}/storage/v1/object/{bucket}/{path}", s.url()))
        .bearer_auth(s.service_role_key())
        .send()
        .await
        .unwrap();
    if r.status().is_success() {
        Ok(r.bytes().await.unwrap().to_vec())
    } else {
        Err(r.status().as_u16())
    }
}

/// The bytes sent in the first upload progress event already in `events`.
async fn first_progress(events: &mut (impl futures_util::Stream<Item = EngineEvent> + Unpin)) -> u64 {
    let mut first = None;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(1), futures_util::StreamExt::next(events)).await {
        if let EngineEvent::FileProgress(p) = ev {
            first.get_or_insert(p.sent);
        }
    }
    first.expect("progress events")
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn an_offline_upload_goes_before_the_row_that_names_it_and_reaches_the_other_device() {
    let s = server().await;
    let a = device(&s).await;
    let session = a.sign_up("files1@example.com", "password-123").await.unwrap();
    let path = format!("{}/photo.jpg", session.user_id);
    let photo = bytes(40_000, 7);
    // Written offline (nothing pushed yet): seen at once, readable from the device.
    let f = a.upload_file("attachments", &path, photo.clone(), "image/jpeg").await.unwrap();
    assert_eq!((f.status.as_str(), f.size, f.cached), ("pending", 40_000, true));
    assert_eq!(a.read_file("attachments", &path).await.unwrap(), photo);
    let conv = a.insert("conversations", &json!({"title": "Trip"})).await.unwrap();
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "look", "attachment": path})).await.unwrap();
    assert_eq!(a.status().await.unwrap().pending, 3, "the file waits in the same outbox as the rows");

    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected, report.stopped), (3, 0, None));
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), photo);
    let msgs = server_rows(&s, "messages", "select=attachment,content").await;
    assert_eq!(msgs, vec![json!({"attachment": path, "content": "look"})]);
    assert_eq!(a.file("attachments", &path).await.unwrap().unwrap().status, "synced");

    // The user's other device: the message arrives, its file is read from Storage once
    // and then from the device.
    let b = device(&s).await;
    b.sign_in("files1@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    let got = b.query("messages", &Default::default()).await.unwrap();
    let named = got[0].row["attachment"].as_str().unwrap().to_string();
    assert_eq!(b.file("attachments", &named).await.unwrap(), None, "not fetched before it is read");
    assert_eq!(b.read_file("attachments", &named).await.unwrap(), photo);
    let kept = b.file("attachments", &named).await.unwrap().unwrap();
    assert_eq!((kept.status.as_str(), kept.cached, kept.content_type.as_str()), ("synced", true, "image/jpeg"));
    s.database_url(); // the server outlives the reads above
}

#[tokio::test]
async fn a_cut_between_file_and_row_keeps_the_order_and_a_lost_answer_uploads_once() {
    let s = server().await;
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = device_on(&proxy.url(), s.anon_key(), SqliteStore::in_memory().unwrap(), EngineConfig::with_clock(system_now_ms)).await;
    let session = a.sign_up("files2@example.com", "password-123").await.unwrap();
    let path = format!("{}/doc.pdf", session.user_id);
    let doc = bytes(5_000, 3);
    a.upload_file("attachments", &path, doc.clone(), "application/pdf").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Docs"})).await.unwrap();
    a.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "see", "attachment": path})).await.unwrap();

    // The upload reaches Storage, its answer is lost: the push stops there, before any
    // row that names the file.
    proxy.set(Mode::DropAnswers);
    let cut = a.push().await.unwrap();
    assert_eq!(cut.pushed, 0);
    assert!(cut.unreachable, "{cut:?}");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), doc, "the bytes did land");
    assert_eq!(server_rows(&s, "messages", "select=id").await, Vec::<Value>::new(), "no row before its file is confirmed");

    // Back online, Storage answers `KeyAlreadyExists`; the question whose bytes those
    // are is cut off: unknown, so the file waits (a refusal would roll back its rows).
    proxy.set(Mode::Pass);
    let mut info = proxy.hold_answer(&["GET /storage/v1/object/info/"]);
    let cut_info = async {
        info.arrived().await;
        proxy.cut();
    };
    let (unsure, ()) = tokio::join!(a.push(), cut_info);
    let unsure = unsure.unwrap();
    assert_eq!((unsure.pushed, unsure.rejected), (0, 0), "{unsure:?}");
    assert!(a.rejected().await.unwrap().is_empty(), "nothing refused for a question that got no answer");

    // Then the ETag is the file's MD5, so it is the same upload: confirmed, not
    // refused, not sent twice; then the rows go.
    let back = a.push().await.unwrap();
    assert_eq!((back.pushed, back.rejected), (3, 0), "{back:?}");
    assert_eq!(server_rows(&s, "messages", "select=attachment").await, vec![json!({"attachment": path})]);
    assert_eq!(a.status().await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_refused_file_refuses_the_rows_that_name_it_until_retried_or_discarded() {
    let s = server().await;
    let a = device(&s).await;
    let session = a.sign_up("files3@example.com", "password-123").await.unwrap();
    let uid = session.user_id.clone();
    // Too big for the `tiny` bucket (1,000 bytes).
    let big = format!("{uid}/big.bin");
    a.upload_file("tiny", &big, bytes(2_000, 1), "application/octet-stream").await.unwrap();
    // In another user's folder: row-level security refuses it.
    let foreign = "00000000-0000-0000-0000-000000000000/x.txt".to_string();
    a.upload_file("attachments", &foreign, b"hi".to_vec(), "text/plain").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "Refusals"})).await.unwrap();
    let m = a
        .insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "x", "attachment": foreign}))
        .await
        .unwrap();

    let report = a.push().await.unwrap();
    assert_eq!(report.pushed, 1, "only the conversation: {report:?}");
    let tiny = a.file("tiny", &big).await.unwrap().unwrap();
    assert_eq!(tiny.status, "rejected");
    assert!(tiny.reason.as_deref().unwrap().contains("maximum allowed size"), "{tiny:?}");
    let refused = a.file("attachments", &foreign).await.unwrap().unwrap();
    assert!(refused.reason.as_deref().unwrap().contains("row-level security"), "{refused:?}");
    let rejected = a.rejected().await.unwrap();
    let msg = rejected.iter().find(|e| e.local_id == m.local_id).expect("the message is refused with its file");
    let why = msg.rejected.as_deref().unwrap();
    assert!(why.contains(&foreign) && why.contains("row-level security"), "{why}");
    assert_eq!(server_rows(&s, "messages", "select=id").await, Vec::<Value>::new());
    assert_eq!(stored(&s, "tiny", &big).await, Err(404));

    // The bucket's limit is raised: a retry stores the file.
    let db = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(db.1);
    db.0.execute("update storage.buckets set file_size_limit = 10000 where id = 'tiny'", &[]).await.unwrap();
    a.retry(&big).await.unwrap();
    assert_eq!(a.push().await.unwrap().pushed, 1);
    assert_eq!(stored(&s, "tiny", &big).await.unwrap().len(), 2_000);
    // The foreign file is discarded: its bytes leave the device; the message stays
    // refused until the app discards or retries it too.
    a.discard(&foreign).await.unwrap();
    assert_eq!(a.file("attachments", &foreign).await.unwrap(), None);
    assert_eq!(a.store.blob_len(&format!("attachments/{foreign}")).await.unwrap(), None);
    a.discard(&m.local_id).await.unwrap();
    assert_eq!(a.status().await.unwrap().rejected, 0);
}

#[tokio::test]
async fn a_large_file_goes_over_tus_and_resumes_after_a_kill() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replica.db");
    let cfg = || EngineConfig::with_clock(system_now_ms);
    let a = device_on(s.url(), s.anon_key(), SqliteStore::open(&db).unwrap(), cfg()).await;
    let session = a.sign_up("files4@example.com", "password-123").await.unwrap();
    let path = format!("{}/video.bin", session.user_id);
    let size = 13 * 1024 * 1024 + 123;
    let video = bytes(size, 9);
    a.upload_file("attachments", &path, video.clone(), "application/octet-stream").await.unwrap();

    // Push until Storage holds the first chunk, then kill the process's push (the task
    // is dropped at its next await) and the replica with it.
    let mut events = a.subscribe();
    let a = std::sync::Arc::new(a);
    let pushing = tokio::spawn({
        let a = a.clone();
        async move { a.push().await }
    });
    loop {
        use futures_util::StreamExt;
        match events.next().await {
            Some(EngineEvent::FileProgress(p)) if !p.done => break,
            Some(_) => continue,
            None => panic!("no progress"),
        }
    }
    pushing.abort();
    let _ = pushing.await;
    drop(a);

    // A new process opens the same file: the upload resumes where Storage has it.
    let a = device_on(s.url(), s.anon_key(), SqliteStore::open(&db).unwrap(), cfg()).await;
    let mut events = a.subscribe();
    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0), "{report:?}");
    let first = first_progress(&mut events).await;
    assert!(first > 6 * 1024 * 1024, "the resumed upload did not start over: first report at {first} bytes");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), video);
}

#[tokio::test]
async fn a_chunk_whose_answer_is_cut_off_resumes_the_same_upload_on_the_next_push() {
    let s = server().await;
    let TusCase { proxy, a, path, video, sql, .. } = tus_case(&s, "files-cut@example.com", "cut.bin", 13 * 1024 * 1024 + 7, 3).await;

    // The first chunk reaches Storage; its answer is held, then the connection is cut.
    first_chunk_then_cut(&proxy, &a, &sql).await;

    let mut events = a.subscribe();
    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0), "{report:?}");
    let first = first_progress(&mut events).await;
    assert!(first > 6 * 1024 * 1024, "the upload started over: first report at {first} bytes");
    assert_eq!(proxy.requests("POST /storage/v1/upload/resumable"), 1, "one upload created, not two");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), video);
}

/// A device behind a fault proxy, signed up as `email`, with a large file of `size`
/// bytes written at `<user>/<name>` (so it goes over TUS), and a connection to the
/// server's database to watch the upload from.
struct TusCase {
    proxy: FaultProxy,
    a: Device,
    session: supasync_core::auth::Session,
    path: String,
    video: Vec<u8>,
    sql: tokio_postgres::Client,
}

async fn tus_case(s: &DevServer, email: &str, name: &str, size: usize, seed: u8) -> TusCase {
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = device_on(&proxy.url(), s.anon_key(), SqliteStore::in_memory().unwrap(), EngineConfig::with_clock(system_now_ms)).await;
    let session = a.sign_up(email, "password-123").await.unwrap();
    let path = format!("{}/{name}", session.user_id);
    let video = bytes(size, seed);
    a.upload_file("attachments", &path, video.clone(), "application/octet-stream").await.unwrap();
    let (sql, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    TusCase { proxy, a, session, path, video, sql }
}

/// The first chunk reaches Storage and the push is cut (its answer never comes); the
/// upload's offset and address stay on the device.
async fn first_chunk_then_cut(proxy: &FaultProxy, a: &Device, sql: &tokio_postgres::Client) {
    let mut hold = proxy.hold_answer(&["PATCH /storage/v1/upload/resumable/"]);
    let cut = async {
        hold.arrived().await;
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let r = sql.query_opt("SELECT upload_offset FROM storage.resumable_uploads", &[]).await.unwrap();
                if r.is_some_and(|r| r.get::<_, i64>(0) > 0) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("Storage took the first chunk");
        proxy.cut();
    };
    let (report, ()) = tokio::join!(a.push(), cut);
    drop(hold);
    assert_eq!(report.unwrap().pushed, 0, "the cut chunk is retried later");
}

#[tokio::test]
async fn a_chunk_that_lands_after_this_push_asked_where_the_upload_is_moves_it_on_not_refuses_it() {
    // As when a page reloads mid-upload: the old page's chunk still reaches Storage after
    // the new page asked where the upload is, so the new page's chunk finds it moved
    // (409). The push asks again and goes on; the file is neither refused nor sent twice.
    let s = server().await;
    let TusCase { proxy, a, session, path, video, sql } = tus_case(&s, "files-moved@example.com", "moved.bin", 13 * 1024 * 1024 + 11, 5).await;
    first_chunk_then_cut(&proxy, &a, &sql).await;

    // The next push asks where the upload is; while that answer is held, the second
    // chunk arrives from elsewhere (the earlier attempt), straight to the server.
    let row = sql.query_one("SELECT id, upload_offset FROM storage.resumable_uploads", &[]).await.unwrap();
    let (id, at): (String, i64) = (row.get(0), row.get(1));
    let mut head = proxy.hold_answer(&["HEAD /storage/v1/upload/resumable/"]);
    let late_chunk = async {
        head.arrived().await;
        let end = (at as usize + 6 * 1024 * 1024).min(video.len());
        let res = reqwest::Client::new()
            .patch(format!("{}/storage/v1/upload/resumable/{id}", s.url()))
            .header("apikey", s.anon_key())
            .header("authorization", format!("Bearer {}", session.access_token))
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", at.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(video[at as usize..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "the late chunk is stored");
        head.release();
    };
    let (report, ()) = tokio::join!(a.push(), late_chunk);
    let report = report.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0), "{report:?}");
    assert!(a.rejected().await.unwrap().is_empty(), "nothing refused");
    assert_eq!(proxy.requests("POST /storage/v1/upload/resumable"), 1, "one upload created, not two");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), video);
}

#[tokio::test]
async fn a_finished_upload_whose_answer_was_lost_is_confirmed_not_sent_again_even_when_storage_cannot_be_asked_at_once() {
    // As when a page reloads while its last chunk is on the way: Storage finishes the
    // upload, the answer never comes. The next push finds the upload gone and asks
    // Storage whether it holds the file; that question is cut off too. The push after
    // it must still ask (the upload's address kept), not upload the file again.
    let s = server().await;
    let TusCase { proxy, a, path, video, sql, .. } = tus_case(&s, "files-lost-end@example.com", "lost-end.bin", 13 * 1024 * 1024 + 13, 7).await;

    // The last chunk (at 12 MiB) reaches Storage, which stores the file; its answer is cut.
    let last = proxy.hold_answer(&["PATCH /storage/v1/upload/resumable/", "upload-offset: 12582912"]);
    let cut_when_stored = async {
        let mut last = last;
        last.arrived().await;
        tokio::time::timeout(Duration::from_secs(20), async {
            while sql.query_opt("SELECT 1 FROM storage.resumable_uploads", &[]).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("Storage finished the upload");
        proxy.cut();
    };
    let (report, ()) = tokio::join!(a.push(), cut_when_stored);
    let report = report.unwrap();
    assert_eq!(report.pushed, 0, "the answer was lost: the file waits: {report:?} {} {} {}", proxy.requests("PATCH"), proxy.requests("HEAD"), proxy.requests("POST /storage"));
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), video, "Storage holds it");

    // The next push finds the upload gone; the question whether Storage holds the file is cut off.
    let mut info = proxy.hold_answer(&["GET /storage/v1/object/info/"]);
    let cut_info = async {
        info.arrived().await;
        proxy.cut();
    };
    let (report, ()) = tokio::join!(a.push(), cut_info);
    let report = report.unwrap();
    assert_eq!((report.pushed, report.rejected), (0, 0), "not known yet, so neither stored nor refused: {report:?}");

    // Then Storage answers: the file is confirmed, and it was never uploaded again.
    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0), "{report:?}");
    assert!(a.rejected().await.unwrap().is_empty(), "nothing refused");
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert_eq!(proxy.requests("POST /storage/v1/upload/resumable"), 1, "one upload created, not two");
    assert_eq!(proxy.requests("PATCH /storage/v1/upload/resumable/"), 3, "each chunk sent once");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), video);
}

#[tokio::test]
async fn users_read_only_their_own_files_and_the_cache_keeps_the_last_read() {
    let s = server().await;
    let a = device(&s).await;
    let sa = a.sign_up("files5a@example.com", "password-123").await.unwrap();
    for i in 0..3 {
        a.upload_file("attachments", &format!("{}/{i}.bin", sa.user_id), bytes(100_000, i), "application/octet-stream").await.unwrap();
    }
    a.push().await.unwrap();
    // Another user cannot read them.
    let other = device(&s).await;
    other.sign_up("files5b@example.com", "password-123").await.unwrap();
    let denied = other.read_file("attachments", &format!("{}/0.bin", sa.user_id)).await.unwrap_err();
    assert!(matches!(denied, EngineError::Request(_)) && denied.to_string().contains("not found"), "{denied}");

    // A's second device, with a cache of 250 KB: the least recently read file goes.
    let b = device_on(s.url(), s.anon_key(), SqliteStore::in_memory().unwrap(), EngineConfig { file_cache_bytes: 250_000, ..EngineConfig::with_clock(system_now_ms) }).await;
    b.sign_in("files5a@example.com", "password-123").await.unwrap();
    let p = |i: u8| format!("{}/{i}.bin", sa.user_id);
    b.read_file("attachments", &p(0)).await.unwrap();
    b.read_file("attachments", &p(1)).await.unwrap();
    b.read_file("attachments", &p(0)).await.unwrap(); // 0 is now the most recent
    b.read_file("attachments", &p(2)).await.unwrap();
    let mut cached = vec![];
    for i in 0..3 {
        cached.push(b.file("attachments", &p(i)).await.unwrap().unwrap().cached);
    }
    assert_eq!(cached, vec![true, false, true], "1 was read least recently");
    assert_eq!(b.store.blob_len(&format!("attachments/{}", p(1))).await.unwrap(), None);
    assert_eq!(b.read_file("attachments", &p(1)).await.unwrap(), bytes(100_000, 1), "read again from Storage");

    // Removing a file removes it from Storage and from the device.
    a.remove_file("attachments", &p(2)).await.unwrap();
    assert_eq!(a.file("attachments", &p(2)).await.unwrap(), None);
    a.push().await.unwrap();
    assert_eq!(stored(&s, "attachments", &p(2)).await, Err(404));
}

#[tokio::test]
async fn bad_names_and_missing_buckets_are_clear_and_change_nothing() {
    let s = server().await;
    let a = device(&s).await;
    let session = a.sign_up("files6@example.com", "password-123").await.unwrap();
    for (bucket, path) in [("attachments", "../escape"), ("attachments", "a//b"), ("attachments", ""), ("a/b", "x"), ("", "x")] {
        let e = a.upload_file(bucket, path, b"x".to_vec(), "text/plain").await.unwrap_err();
        assert_eq!(e.kind(), "invalid", "{bucket}/{path}: {e}");
    }
    assert_eq!(a.status().await.unwrap().pending, 0, "nothing was queued");
    let path = format!("{}/a.txt", session.user_id);
    a.upload_file("no-such-bucket", &path, b"x".to_vec(), "text/plain").await.unwrap();
    a.push().await.unwrap();
    let f = a.file("no-such-bucket", &path).await.unwrap().unwrap();
    assert_eq!(f.status, "rejected");
    assert!(f.reason.unwrap().contains("Bucket not found"));
    // A path already stored is not silently replaced.
    a.upload_file("attachments", &path, b"one".to_vec(), "text/plain").await.unwrap();
    a.push().await.unwrap();
    let again = a.upload_file("attachments", &path, b"two".to_vec(), "text/plain").await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    assert_eq!(stored(&s, "attachments", &path).await.unwrap(), b"one");
}

/// Seed 003's media library: a batch of assets, each a file with its metadata row and
/// an audit-log line, uploaded from one outbox; a sync status per asset; one asset of a
/// type the bucket refuses, refused with its row and its log line; a retry once the
/// bucket takes the type.
#[tokio::test]
async fn a_media_library_batch_with_a_refused_asset_and_a_retry() {
    let s = server().await;
    let schema = Schema::from_json(
        r#"{"tables":[
          {"name":"media_assets","files":{"file_path":"media"},"indexes":["folder"]},
          {"name":"media_sync_log","references":{"asset_id":"media_assets"}}
        ]}"#,
    )
    .unwrap();
    let a = Engine::open(schema, SqliteStore::in_memory().unwrap(), ReqwestHttp::with_timeout(Duration::from_secs(10)).unwrap(), Project { url: s.url().into(), anon_key: s.anon_key().into() }, EngineConfig::with_clock(system_now_ms))
        .await
        .unwrap();
    let uid = a.sign_up("media@example.com", "password-123").await.unwrap().user_id;
    let mut assets = vec![];
    for (i, (name, mime)) in [("beach.jpg", "image/jpeg"), ("dunes.png", "image/png"), ("clip.mp4", "video/mp4"), ("setup.exe", "application/x-msdownload"), ("sky.jpg", "image/jpeg")]
        .into_iter()
        .enumerate()
    {
        let path = format!("{uid}/trip/{name}");
        let data = bytes(2_000 + i * 100, i as u8);
        a.upload_file("media", &path, data.clone(), mime).await.unwrap();
        let asset = a
            .insert(
                "media_assets",
                &json!({"file_path": path, "file_size": data.len(), "mime_type": mime, "width": 640, "height": 480, "folder": "trip", "tags": ["summer", "2026"]}),
            )
            .await
            .unwrap();
        a.insert("media_sync_log", &json!({"asset_id": asset.local_id, "operation": "upload", "source": "device"})).await.unwrap();
        assets.push((path, asset.local_id));
    }
    assert_eq!(a.status().await.unwrap().pending, 15, "five files, five rows, five log lines, one outbox");
    let statuses: Vec<String> = a.files("media").await.unwrap().into_iter().map(|f| f.status).collect();
    assert_eq!(statuses, vec!["pending"; 5]);

    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (12, 3), "{report:?}");
    let mut per_asset = vec![];
    for (path, _) in &assets {
        per_asset.push(a.file("media", path).await.unwrap().unwrap().status);
    }
    assert_eq!(per_asset, vec!["synced", "synced", "synced", "rejected", "synced"], "a sync status per asset");
    let refused = a.file("media", &assets[3].0).await.unwrap().unwrap();
    assert!(refused.reason.as_deref().unwrap().contains("mime type application/x-msdownload is not supported"), "{refused:?}");
    let rejected = a.rejected().await.unwrap();
    let refused_row = rejected.iter().find(|e| e.local_id == assets[3].1).expect("its metadata row is refused too");
    assert!(refused_row.rejected.as_deref().unwrap().contains("is not supported"));
    assert_eq!(rejected.iter().filter(|e| e.table == "media_sync_log").count(), 1, "and its audit line");
    assert_eq!(server_rows(&s, "media_assets", "select=id").await.len(), 4);
    assert_eq!(server_rows(&s, "media_sync_log", "select=id").await.len(), 4);

    // The operator lets the bucket take it; the user retries the asset: file, row and
    // log line go, in that order.
    let db = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(db.1);
    db.0.execute("update storage.buckets set allowed_mime_types = null where id = 'media'", &[]).await.unwrap();
    for local_id in rejected.iter().map(|e| e.local_id.clone()).collect::<Vec<_>>() {
        a.retry(&local_id).await.unwrap();
    }
    let again = a.push().await.unwrap();
    assert_eq!((again.pushed, again.rejected), (3, 0), "{again:?}");
    assert_eq!(a.file("media", &assets[3].0).await.unwrap().unwrap().status, "synced");
    assert_eq!(server_rows(&s, "media_assets", "select=id").await.len(), 5);
    assert_eq!(server_rows(&s, "media_sync_log", "select=operation").await.len(), 5);
    assert_eq!(stored(&s, "media", &assets[3].0).await.unwrap().len(), 2_300);
}
