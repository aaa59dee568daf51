//! # Testing a hub
//!
//! A hub method is an ordinary method, so its logic can be tested by calling helpers directly.
//! To test what a client sees, serve the hub on a free loopback port and talk to it the way a
//! client does. hub's own integration tests (`hub-runtime/tests/`) work this way.
//!
//! ## Serving on a free port
//!
//! [`server::bind`](crate::server::bind) binds a listener and returns the address it got, so
//! `127.0.0.1:0` picks a free port. [`HubServer::serve_with`](crate::HubServer::serve_with)
//! serves on it until a future you choose resolves: a `oneshot` channel stops the server at
//! the end of the test.
//!
//! ## Talking like a client
//!
//! Over WebSockets, a client may skip negotiate and connect straight to the hub's path. It
//! sends the handshake, `{"protocol":"json","version":1}` followed by the record separator
//! `\u{1e}`; the server answers `{}\u{1e}`. Then each message is one JSON object with the
//! separator after it. An invocation is type `1`, and the answer to one with an
//! `invocationId` is a completion, type `3`, with its `result`.
//!
//! The example uses the `tokio-tungstenite` crate as the client; add it (and `serde_json`) to
//! your `[dev-dependencies]`. Real tests should also bound every wait with
//! `tokio::time::timeout`, so a broken server fails the test instead of hanging it.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use hub_runtime::prelude::*;
//! use tokio_tungstenite::tungstenite::Message;
//!
//! struct Echo;
//!
//! #[hub]
//! impl Echo {
//!     fn echo(&self, message: String) -> String {
//!         message
//!     }
//! }
//!
//! /// Reads the next text frame.
//! async fn next_text<S>(ws: &mut S) -> String
//! where
//!     S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
//! {
//!     loop {
//!         match ws.next().await.expect("the server closed").expect("a frame") {
//!             Message::Text(text) => return text.as_str().to_string(),
//!             _ => continue,
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     // Serve on a free port until `stop` is sent (or dropped).
//!     let server = HubServer::builder().hub("/echo", Echo).build();
//!     let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0").await.unwrap();
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let routes = server.filter();
//!     let serving = tokio::spawn(server.serve_with(listener, routes, async move {
//!         let _ = stopped.await;
//!     }));
//!
//!     // Connect, skipping negotiate, and do the handshake.
//!     let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo")).await.unwrap();
//!     ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}")).await.unwrap();
//!     assert_eq!(next_text(&mut ws).await, "{}\u{1e}");
//!
//!     // Invoke "Echo" and read its completion (skipping any Ping, type 6).
//!     let invocation = r#"{"type":1,"invocationId":"1","target":"Echo","arguments":["hi"]}"#;
//!     ws.send(Message::text(format!("{invocation}\u{1e}"))).await.unwrap();
//!     let completion = loop {
//!         let text = next_text(&mut ws).await;
//!         let message: serde_json::Value = serde_json::from_str(text.trim_end_matches('\u{1e}')).unwrap();
//!         if message["type"] == 3 {
//!             break message;
//!         }
//!     };
//!     assert_eq!(completion["result"], "hi");
//!
//!     let _ = stop.send(());
//!     serving.await.unwrap();
//! }
//! ```
//!
//! A frame may carry several messages, each ending with `\u{1e}`; this example sends one at a
//! time, so each answer comes alone. The project's test client (`hub-runtime/tests/common`)
//! splits frames, negotiates first, and records every message it receives; it is a good
//! starting point for your own.
