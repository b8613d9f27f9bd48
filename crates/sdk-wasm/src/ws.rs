//! The core's WebSocket traits on the browser's `WebSocket` (web-sys). Events land in
//! a channel that the reading half drains, so `next()` is cancel-safe; the callbacks
//! live as long as the socket's halves and are detached when both are gone.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use supasync_core::transport::{TransportError, WsConnector, WsMessage, WsSink, WsStream};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// Opens browser WebSockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserWs;

/// The socket and its callbacks; dropping the last half closes the socket.
struct Socket {
    ws: WebSocket,
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

struct Sink(Rc<Socket>);
struct Stream {
    _socket: Rc<Socket>,
    rx: mpsc::UnboundedReceiver<Result<WsMessage, TransportError>>,
}

supasync_core::maybe_async_trait! {
    impl WsConnector for BrowserWs {
        async fn connect(&self, url: &str) -> Result<(Box<dyn WsSink>, Box<dyn WsStream>), TransportError> {
            let ws = WebSocket::new(url).map_err(|e| TransportError(format!("websocket: {e:?}")))?;
            ws.set_binary_type(BinaryType::Arraybuffer);
            let (tx, rx) = mpsc::unbounded::<Result<WsMessage, TransportError>>();
            let (open_tx, open_rx) = oneshot::channel::<Result<(), TransportError>>();
            let open_tx = Rc::new(RefCell::new(Some(open_tx)));

            let o = open_tx.clone();
            let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(t) = o.borrow_mut().take() {
                    let _ = t.send(Ok(()));
                }
            });
            let t1 = tx.clone();
            let on_message = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let ev: MessageEvent = ev.unchecked_into();
                let data = ev.data();
                let msg = if let Some(s) = data.as_string() {
                    WsMessage::Text(s)
                } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                    WsMessage::Binary(js_sys::Uint8Array::new(buf).to_vec())
                } else {
                    return;
                };
                let _ = t1.unbounded_send(Ok(msg));
            });
            let o = open_tx.clone();
            let on_error = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(t) = o.borrow_mut().take() {
                    let _ = t.send(Err(TransportError("websocket: the connection failed".into())));
                }
            });
            let o = open_tx;
            let t2 = tx;
            let on_close = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let ev: CloseEvent = ev.unchecked_into();
                let why = format!("websocket closed ({} {})", ev.code(), ev.reason());
                if let Some(t) = o.borrow_mut().take() {
                    let _ = t.send(Err(TransportError(why)));
                }
                t2.close_channel();
            });
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            let socket = Rc::new(Socket { ws, _callbacks: vec![on_open, on_message, on_error, on_close] });
            match open_rx.await {
                Ok(Ok(())) => Ok((Box::new(Sink(socket.clone())), Box::new(Stream { _socket: socket, rx }))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(TransportError("websocket: closed before it opened".into())),
            }
        }
    }
}

supasync_core::maybe_async_trait! {
    impl WsSink for Sink {
        async fn send(&mut self, text: String) -> Result<(), TransportError> {
            self.0.ws.send_with_str(&text).map_err(|e| TransportError(format!("websocket send: {e:?}")))
        }

        async fn close(&mut self) {
            let _ = self.0.ws.close();
        }
    }
}

supasync_core::maybe_async_trait! {
    impl WsStream for Stream {
        async fn next(&mut self) -> Option<Result<WsMessage, TransportError>> {
            self.rx.next().await
        }
    }
}
