//! A TCP proxy that lies between a device and the dev server and misbehaves on demand
//! (tests and the demo use it to take a device offline):
//! it can pass traffic, delay the server's answers, or let a request through and cut
//! the connection before the answer reaches the device (the "lost acknowledgement"),
//! refuse new connections, or cut every open one (a dropped WebSocket); and it can play
//! a failing gateway: answer new connections 503 without forwarding them, or forward a
//! request and answer 500 in place of the server's answer (the write may have landed).
//! Apart from the mode, it can hold the answer to one chosen request until the test
//! lets it go ([`FaultProxy::hold_answer`]): a device then waits at a known point of a
//! sync, which makes a race with that wait deterministic. It also keeps the request
//! line of every request it saw ([`FaultProxy::requests`]), so a test can count how
//! often a device asked for something (a token refresh, say).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to each connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Pass,
    /// Hold every chunk of the answer this long.
    DelayAnswers(Duration),
    /// Hold the start of each answer this long, the rest streaming on: a network's
    /// round trip (one per request, however long the answer).
    Latency(Duration),
    /// Forward the request; drop the answer and close the connection.
    DropAnswers,
    /// Close new connections at once (the server is unreachable).
    Refuse,
    /// Answer new connections `503 Service Unavailable` without forwarding them.
    Unavailable,
    /// Forward the request; answer `500 Internal Server Error` instead of the server's
    /// answer, and close.
    FailAnswers,
}

/// An HTTP error answer as a failing gateway gives it.
fn error_answer(status: &str) -> Vec<u8> {
    let body = format!("{{\"message\":\"{status} (injected by the fault proxy)\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A request whose answer is to be held, until it arrives.
struct HoldSpec {
    needles: Vec<String>,
    arrived: tokio::sync::watch::Sender<bool>,
    released: tokio::sync::watch::Receiver<bool>,
}

type PendingHold = Arc<Mutex<Option<HoldSpec>>>;

/// The request lines seen so far (`POST /auth/v1/token?grant_type=… HTTP/1.1`).
type SeenLines = Arc<Mutex<Vec<String>>>;

/// The answer to one request, held by the proxy (see [`FaultProxy::hold_answer`]).
/// Dropping it lets the answer go, so a failed test never leaves a device waiting.
pub struct AnswerHold {
    arrived: tokio::sync::watch::Receiver<bool>,
    release: tokio::sync::watch::Sender<bool>,
}

impl AnswerHold {
    /// Wait until the request has been sent on to the server (its answer is held).
    pub async fn arrived(&mut self) {
        let _ = self.arrived.wait_for(|a| *a).await;
    }

    /// Let the answer go to the device.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl Drop for AnswerHold {
    fn drop(&mut self) {
        self.release();
    }
}

pub struct FaultProxy {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    hold: PendingHold,
    seen: SeenLines,
    cut: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxy 127.0.0.1:<free port> to `upstream` (host:port).
    pub async fn start(upstream: String) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let m = mode.clone();
        let hold: PendingHold = Arc::new(Mutex::new(None));
        let h = hold.clone();
        let seen: SeenLines = Arc::default();
        let sn = seen.clone();
        let cut = Arc::new(tokio::sync::Notify::new());
        let cut_all = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.lock().unwrap_or_else(|e| e.into_inner()) == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let (up, m, cut, h, sn) = (upstream.clone(), m.clone(), cut_all.clone(), h.clone(), sn.clone());
                tokio::spawn(async move {
                    let cut = cut.notified();
                    tokio::pin!(cut);
                    cut.as_mut().enable();
                    // The cut first: a held answer released right after a cut (its
                    // hold dropped) must not slip through before the cut is seen.
                    tokio::select! {
                        biased;
                        _ = cut => {}
                        _ = relay(client, up, m, h, sn) => {}
                    }
                });
            }
        });
        Ok(FaultProxy { port, mode, hold, seen, cut, task })
    }

    /// Close every open connection now (both directions).
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// Hold the answer to the next request whose head contains every one of
    /// `needles` (say `["GET /rest/v1/messages?", "&or="]`): the request goes on to the
    /// server, its answer waits until [`AnswerHold::release`]. Only that one request.
    pub fn hold_answer(&self, needles: &[&str]) -> AnswerHold {
        let (arrived_tx, arrived) = tokio::sync::watch::channel(false);
        let (release, released) = tokio::sync::watch::channel(false);
        *self.hold.lock().unwrap_or_else(|e| e.into_inner()) = Some(HoldSpec {
            needles: needles.iter().map(|n| n.to_string()).collect(),
            arrived: arrived_tx,
            released,
        });
        AnswerHold { arrived, release }
    }

    /// How many requests whose request line contains `needle` went through so far.
    pub fn requests(&self, needle: &str) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|l| l.contains(needle)).count()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hold `chunk` (a request's bytes from the device) triggers, taken off the proxy.
fn matching_hold(hold: &PendingHold, chunk: &[u8]) -> Option<HoldSpec> {
    let mut pending = hold.lock().unwrap_or_else(|e| e.into_inner());
    let text = String::from_utf8_lossy(chunk);
    if pending.as_ref()?.needles.iter().all(|n| text.contains(n.as_str())) {
        pending.take()
    } else {
        None
    }
}

/// The request line `chunk` starts with, if it starts a request (a client writes a
/// request's head at once; a body or a WebSocket frame does not look like one).
fn request_line(chunk: &[u8]) -> Option<String> {
    let end = chunk.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&chunk[..end]).ok()?;
    let method = line.split(' ').next()?;
    let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    (is_method && line.ends_with(" HTTP/1.1")).then(|| line.to_string())
}

async fn relay(mut client: TcpStream, up: String, m: Arc<Mutex<Mode>>, hold: PendingHold, seen: SeenLines) {
    if *m.lock().unwrap_or_else(|e| e.into_inner()) == Mode::Unavailable {
        // Take the request (so the client is not reset mid-write), answer, close.
        let mut buf = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf)).await;
        let _ = client.write_all(&error_answer("503 Service Unavailable")).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(server) = TcpStream::connect(&up).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // The release this connection's next answer waits for. HTTP/1.1 answers one request
    // at a time on a connection, so bytes from the server after a held request are its
    // answer.
    let held: Arc<Mutex<Option<tokio::sync::watch::Receiver<bool>>>> = Arc::new(Mutex::new(None));
    let held_in = held.clone();
    // A request went on whose answer has not started yet (for `Mode::Latency`).
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked_in = asked.clone();
    let to_server = AbortOnDrop(tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(line) = request_line(&buf[..n]) {
                        asked_in.store(true, std::sync::atomic::Ordering::SeqCst);
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    }
                    let spec = matching_hold(&hold, &buf[..n]);
                    if let Some(spec) = &spec {
                        // Set before the request goes on: its answer cannot slip past.
                        *held_in.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec.released.clone());
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if let Some(spec) = spec {
                        spec.arrived.send_replace(true);
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    }));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let release = held.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut release) = release {
            let _ = release.wait_for(|r| *r).await;
        }
        let mode = *m.lock().unwrap_or_else(|e| e.into_inner());
        match mode {
            Mode::Pass => {}
            Mode::DelayAnswers(d) => tokio::time::sleep(d).await,
            Mode::Latency(d) => {
                if asked.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(d).await;
                }
            }
            Mode::DropAnswers | Mode::Refuse => break,
            Mode::FailAnswers | Mode::Unavailable => {
                let _ = cw.write_all(&error_answer("500 Internal Server Error")).await;
                break;
            }
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = cw.shutdown().await;
    drop(to_server);
}

/// A relay task that ends with the connection that spawned it, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
