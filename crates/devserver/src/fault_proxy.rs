//! A TCP proxy that lies between a device and the dev server and misbehaves on demand
//! (tests and the demo use it to take a device offline):
//! it can pass traffic, delay the server's answers, or let a request through and cut
//! the connection before the answer reaches the device (the "lost acknowledgement"),
//! refuse new connections, or cut every open one (a dropped WebSocket); and it can play
//! a failing gateway: answer new connections 503 without forwarding them, or forward a
//! request and answer 500 in place of the server's answer (the write may have landed).

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

pub struct FaultProxy {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
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
        let cut = Arc::new(tokio::sync::Notify::new());
        let cut_all = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.lock().unwrap_or_else(|e| e.into_inner()) == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let (up, m, cut) = (upstream.clone(), m.clone(), cut_all.clone());
                tokio::spawn(async move {
                    let cut = cut.notified();
                    tokio::pin!(cut);
                    cut.as_mut().enable();
                    tokio::select! {
                        _ = relay(client, up, m) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Ok(FaultProxy { port, mode, cut, task })
    }

    /// Close every open connection now (both directions).
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
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

async fn relay(mut client: TcpStream, up: String, m: Arc<Mutex<Mode>>) {
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
    let to_server = AbortOnDrop(tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
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
        let mode = *m.lock().unwrap_or_else(|e| e.into_inner());
        match mode {
            Mode::Pass => {}
            Mode::DelayAnswers(d) => tokio::time::sleep(d).await,
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
