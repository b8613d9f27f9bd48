//! The core's WebSocket traits on tokio-tungstenite (TLS through rustls with the
//! webpki roots, like the HTTP client), and a helper that starts a Realtime client
//! on the current tokio runtime.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use supasync_core::realtime::{AccessTokenSource, RealtimeClient, RealtimeConfig};
use supasync_core::transport::{TransportError, WsConnector, WsMessage, WsSink, WsStream};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TokioTimer;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens WebSockets with tokio-tungstenite.
#[derive(Debug, Clone, Copy, Default)]
pub struct TungsteniteConnector;

struct Sink(futures_util::stream::SplitSink<Ws, Message>);
struct Stream(futures_util::stream::SplitStream<Ws>);

fn net(e: impl std::fmt::Display) -> TransportError {
    TransportError(e.to_string())
}

supasync_core::maybe_async_trait! {
    impl WsConnector for TungsteniteConnector {
        async fn connect(&self, url: &str) -> Result<(Box<dyn WsSink>, Box<dyn WsStream>), TransportError> {
            let (ws, _) = tokio_tungstenite::connect_async(url).await.map_err(net)?;
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                // Frames are small and latency matters more than packet count.
                let _ = s.set_nodelay(true);
            }
            let (sink, stream) = ws.split();
            Ok((Box::new(Sink(sink)), Box::new(Stream(stream))))
        }
    }
}

supasync_core::maybe_async_trait! {
    impl WsSink for Sink {
        async fn send(&mut self, text: String) -> Result<(), TransportError> {
            self.0.send(Message::text(text)).await.map_err(net)
        }

        async fn close(&mut self) {
            let _ = self.0.close().await;
        }
    }
}

supasync_core::maybe_async_trait! {
    impl WsStream for Stream {
        async fn next(&mut self) -> Option<Result<WsMessage, TransportError>> {
            loop {
                return match self.0.next().await? {
                    Ok(Message::Text(t)) => Some(Ok(WsMessage::Text(t.to_string()))),
                    Ok(Message::Binary(b)) => Some(Ok(WsMessage::Binary(b.to_vec()))),
                    Ok(Message::Close(_)) => None,
                    Ok(_) => continue,
                    Err(e) => Some(Err(net(e))),
                };
            }
        }
    }
}

/// Start a Realtime client whose driver runs on the current tokio runtime.
pub fn start_realtime(project_url: &str, anon_key: &str, cfg: RealtimeConfig, tokens: Option<Arc<dyn AccessTokenSource>>) -> RealtimeClient {
    let (client, driver) = RealtimeClient::new(project_url, anon_key, cfg);
    tokio::spawn(driver.run(TungsteniteConnector, TokioTimer, tokens));
    client
}

/// Start live sync for `engine`: a Realtime client whose tokens come from the engine's
/// session, and the live-sync task, both on the current tokio runtime.
pub fn start_live<S, H>(
    engine: Arc<supasync_core::Engine<S, H>>,
    project_url: &str,
    anon_key: &str,
    realtime: RealtimeConfig,
    cfg: supasync_core::live::LiveConfig,
) -> (supasync_core::live::LiveSync, RealtimeClient)
where
    S: supasync_core::Store + 'static,
    H: supasync_core::transport::Http + 'static,
{
    let (client, driver) = RealtimeClient::new(project_url, anon_key, realtime);
    let (live, live_driver) = supasync_core::live::LiveSync::new(engine.clone(), client.clone(), cfg);
    let tokens = live.token_source(engine);
    tokio::spawn(driver.run(TungsteniteConnector, TokioTimer, Some(tokens)));
    tokio::spawn(async move {
        if let Err(e) = live_driver.run(TokioTimer).await {
            tracing::warn!(target: "supasync::live", "live sync ended: {e}");
        }
    });
    (live, client)
}
