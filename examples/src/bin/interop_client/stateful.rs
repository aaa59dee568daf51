//! (WebSockets) stateful reconnect after a dropped socket, with nothing lost: a connection to
//! BroadcastHub through a TCP relay that this check can cut, as a network failure would; while
//! the socket is down (the relay holds new connections back), another connection sends to it
//! and it invokes the hub itself. When the relay lets the socket back, the connection must have
//! the same id, its call must complete, and every message must arrive once, in order.

use std::net::SocketAddr;
use std::time::Duration;

use hub_client::{HubConnection, HubConnectionBuilder, TransportKind};
use hub_examples::interop_contract::{BroadcastHubClientHandler, BroadcastHubProxy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::report::{expect_eq, within, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

/// How long the relay keeps the socket from coming back.
pub const GAP: Duration = Duration::from_millis(400);

/// A TCP relay in front of the server: `cut` closes every connection through it (both
/// sockets), `hold` keeps new connections waiting until `release`.
pub struct Relay {
    pub address: SocketAddr,
    cuts: watch::Sender<u64>,
    held: watch::Sender<bool>,
}

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Result<Relay, Failure> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the relay")?;
        let address = listener.local_addr().context("the relay's address")?;
        let (cuts, _) = watch::channel(0_u64);
        let (held, _) = watch::channel(false);
        let (all_cuts, holds) = (cuts.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = all_cuts.subscribe();
                let mut hold = holds.subscribe();
                tokio::spawn(async move {
                    while *hold.borrow_and_update() {
                        if hold.changed().await.is_err() {
                            return;
                        }
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Relay { address, cuts, held })
    }

    pub fn cut_and_hold(&self) {
        self.held.send_replace(true);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

struct Recorder(mpsc::UnboundedSender<String>);

impl BroadcastHubClientHandler for Recorder {
    async fn receive(&self, message: String) {
        let _ = self.0.send(message);
    }

    async fn answer(&self, question: String) -> String {
        question
    }
    // Presence events: these scenarios do not check them (the Node presence tests do).
    async fn joined(&self, _group: String, _user: String) {}

    async fn left(&self, _group: String, _user: String) {}
}

async fn connect(
    url: String,
    pair: Pair,
    stateful: bool,
) -> Result<(HubConnection, mpsc::UnboundedReceiver<String>), Failure> {
    let connection = HubConnectionBuilder::new(url)
        .transports([pair.transport])
        .protocol(pair.protocol)
        .stateful_reconnect(stateful)
        .build()
        .context("building the connection")?;
    let (sender, received) = mpsc::unbounded_channel();
    Recorder(sender).register(&connection);
    connection.start().await.context("start")?;
    Ok((connection, received))
}

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    if pair.transport != TransportKind::WebSockets {
        return;
    }
    report
        .check(pair, "stateful reconnect after a dropped socket, nothing lost", async {
            let upstream = upstream_address(&target.base_url)?;
            let relay = Relay::start(upstream).await?;
            let base = format!("http://{}", relay.address);
            let (dropped, mut received) = connect(format!("{base}/broadcast"), pair, true).await?;
            let (sender, _) = connect(target.url("/broadcast"), pair, false).await?;
            let outcome = gap(&relay, &dropped, &sender, &mut received, &target.run_id).await;
            dropped.stop().await;
            sender.stop().await;
            outcome
        })
        .await;
}

/// Cuts the socket, sends both ways while it is down, lets it back and checks what arrived.
async fn gap(
    relay: &Relay,
    dropped: &HubConnection,
    sender: &HubConnection,
    received: &mut mpsc::UnboundedReceiver<String>,
    run_id: &str,
) -> Result<(), Failure> {
    let id = dropped.connection_id().ok_or("no connection id")?;
    let token = format!("{run_id}/stateful");
    relay.cut_and_hold();
    let expected: Vec<String> = (1..=3).map(|n| format!("{token} {n}")).collect();
    let to = BroadcastHubProxy::new(sender);
    for message in &expected {
        to.send_to_connection(id.clone(), message.clone())
            .await
            .context("SendToConnection")?;
    }
    let echo = tokio::spawn({
        let hub = BroadcastHubProxy::new(dropped.clone());
        let text = format!("{token} echo");
        async move { hub.echo(text).await }
    });
    tokio::time::sleep(GAP).await;
    relay.release();
    let echoed = within(CALLBACK_TIMEOUT, "the Echo sent during the gap", echo)
        .await?
        .context("the Echo task")?
        .context("Echo")?;
    expect_eq("Echo sent during the gap", echoed, format!("{token} echo"))?;
    expect_eq(
        "the connection id after the gap",
        dropped.connection_id(),
        Some(id.clone()),
    )?;
    // A sentinel after the three: everything before it must be the three, once, in order.
    let sentinel = format!("{token} sentinel");
    to.send_to_connection(id, sentinel.clone())
        .await
        .context("SendToConnection")?;
    let mut got = Vec::new();
    loop {
        let message = within(CALLBACK_TIMEOUT, "the messages sent during the gap", received.recv())
            .await?
            .ok_or("the handler is gone")?;
        if message == sentinel {
            break;
        }
        if message.contains(&token) {
            got.push(message);
        }
    }
    expect_eq("messages sent during the gap, as received", got, expected)
}

/// `HOST:PORT` of `http://HOST:PORT`.
pub fn upstream_address(base_url: &str) -> Result<SocketAddr, Failure> {
    let authority = base_url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base_url}: only http:// URLs can be relayed"))?
        .trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .context("resolving the server's address")?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))
}
