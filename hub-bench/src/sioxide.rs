//! The Socket.IO peer: socketioxide on axum (as its documentation recommends), with its
//! defaults (Engine.IO v4 + Socket.IO v5, the common JSON parser, ping every 25 s), run by the
//! harness as a separate process (`hub-bench sioxide --addr HOST:PORT`) like the floor.
//!
//! The scenarios in Socket.IO terms:
//! - echo: the event `echo` is acknowledged with its payload;
//! - broadcast: the event `sendtoall` is emitted as `receive` to every socket (the sender
//!   included, as hub's and the floor's `SendToAll`), then acknowledged (empty ack);
//! - idle connections: sockets connected to the main namespace, answering the server's pings.

use std::net::SocketAddr;

use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;

/// `hub-bench sioxide --addr HOST:PORT`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            other => return Err(format!("sioxide: unknown argument '{other}'")),
        }
    }
    // Same runtime shape as hub's `#[tokio::main]` and the floor: one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{local}");
        serve(listener).await
    })
}

/// Serves the Socket.IO endpoint (`/socket.io/`) on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), String> {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", on_connect);
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "socketioxide peer" }))
        .layer(layer);
    axum::serve(listener, app).await.map_err(|e| format!("serve: {e}"))
}

/// Handlers are async in socketioxide 0.18 (the only kind it takes).
async fn on_connect(socket: SocketRef) {
    socket.on("echo", |ack: AckSender, Data::<String>(payload)| async move {
        let _ = ack.send(&payload);
    });
    socket.on(
        "sendtoall",
        |io: SocketIo, ack: AckSender, Data::<String>(message)| async move {
            let _ = io.emit("receive", &message).await;
            let _ = ack.send(&());
        },
    );
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use futures_util::{SinkExt, StreamExt};

    use crate::client::{self, ConnectSpec};
    use crate::socketio::Dialect;
    use crate::wire::{Incoming, Proto};

    async fn next_incoming(ws: &mut client::Ws) -> String {
        loop {
            let message = ws.next().await.expect("open").expect("read");
            if let Some(data) = client::payload(&message) {
                let mut seen = Vec::new();
                Dialect::SocketIo
                    .parse(data, |m| {
                        if !matches!(m, Incoming::Other | Incoming::Ping) {
                            seen.push(format!("{m:?}"));
                        }
                    })
                    .expect("parsed");
                // engineioxide pings at once on a WebSocket opened directly: answer, go on.
                if data == b"2" {
                    ws.send(Dialect::SocketIo.pong().expect("a pong")).await.expect("pong");
                }
                if let Some(first) = seen.pop() {
                    return first;
                }
            }
        }
    }

    /// A real socketioxide server on loopback, the generator's Socket.IO client against it:
    /// an echo call comes back as its ack, a broadcast reaches another socket and is acked.
    #[tokio::test]
    async fn echo_and_broadcast_over_socketio() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = listener.local_addr().expect("addr");
        let task = tokio::spawn(super::serve(listener));
        let spec = ConnectSpec {
            server,
            sources: vec![Ipv4Addr::LOCALHOST],
            negotiate: false,
            proto: Proto::Json,
            path: String::new(),
            query: String::new(),
            version: 1,
        };
        let mut caller = Dialect::SocketIo.open(&spec, 0).await.expect("open caller");
        let mut listener = Dialect::SocketIo.open(&spec, 1).await.expect("open listener");
        let mut buf = Vec::new();
        Dialect::SocketIo.write_call(&mut buf, Some("5"), "Echo", "hello");
        caller.send(Dialect::SocketIo.frame(buf.clone())).await.expect("send");
        let ack = tokio::time::timeout(std::time::Duration::from_secs(5), next_incoming(&mut caller))
            .await
            .expect("ack in time");
        assert!(
            ack.contains("Completion") && ack.contains("\"5\"") && ack.contains("\"hello\""),
            "{ack}"
        );
        buf.clear();
        Dialect::SocketIo.write_call(&mut buf, Some("6"), "SendToAll", "7;all");
        caller.send(Dialect::SocketIo.frame(buf)).await.expect("send");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), next_incoming(&mut listener))
            .await
            .expect("broadcast in time");
        assert!(got.contains("\"receive\"") && got.contains("\"7;all\""), "{got}");
        // The sender gets its own copy and the ack, whose size the wire note quotes.
        let ack = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let message = caller.next().await.expect("open").expect("read");
                let text = message.into_text().expect("text").to_string();
                if text.starts_with("436") {
                    return text;
                }
            }
        })
        .await
        .expect("ack in time");
        assert_eq!(ack.len(), crate::socketio::VOID_ACK_BYTES, "{ack}");
        task.abort();
    }
}
