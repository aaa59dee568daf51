//! The NATS backplane: servers publish messages for each other on NATS subjects, and send
//! group commands and client results as NATS requests.
//!
//! Subject layout (`{prefix}` is [`NatsOptions::prefix`], `hub` by default; every other part is
//! an encoded name, see below):
//!
//! | subject | carries |
//! |---|---|
//! | `{prefix}.{hub}.all` | messages for every connection (`AllExcept` carries the excluded ids; a send to several groups travels here with its group list, so each connection gets it once) |
//! | `{prefix}.{hub}.group.{group}` | messages for a group (servers listen while they have a local member) |
//! | `{prefix}.{hub}.user.{user}` | messages for a user (servers listen while the user has a local connection) |
//! | `{prefix}.{hub}.conn.{id}` | messages for one connection, and the requests for it: group commands and client-result invocations (its server listens and replies) |
//! | `{prefix}._confirm` | nobody listens: a request here, answered "no responders" by the server, confirms the subscriptions sent before it |
//!
//! Hub, group, user and connection names are encoded so that `.`, `*`, `>`, spaces, empty
//! names and non-ASCII cannot break a subject: `n` + base64url (no padding) of the name's
//! UTF-8 bytes, or for a name over 48 bytes `h` + base64url of its SHA-256. Every payload also
//! carries the real name, which the receiver checks, so a hash collision cannot mis-deliver.
//!
//! Payloads are the MessagePack envelopes of `backplane::wire` (shared with the other
//! brokers), each in a small frame that names its target and, for a payload larger than the
//! server's `max_payload` (1 MB by default), splits it in chunks put together by the
//! receiver: large messages work against a NATS server with default settings.
//!
//! A group command or client result for a connection that is not here is a NATS request to
//! the connection's subject: its server applies it and replies (the ack, a refusal such as the
//! group limit, or the client's Completion); with no server listening there, NATS answers at
//! once with "no responders", which is `BackplaneError::UnknownConnection`.
//!
//! Broker outages: the client reconnects by itself and subscribes again; each disconnect is
//! counted as a gap ([`Backplane::stats`](super::Backplane::stats)). A publish while
//! disconnected fails at once and is counted (async-nats would otherwise queue it, deliver it
//! late after the reconnect, and block once its queue of 2,048 commands is full); every wait
//! on the client is bounded by [`NatsOptions::response_timeout`], so a hub method never hangs
//! on the broker, and local delivery never depends on it. A message the client dropped
//! because a subscription's queue was full (a slow consumer) is counted as lost.
//!
//! Order: NATS keeps one connection's messages on one subject in order, and each subscription
//! is read by one task, so what a server sends to one target (a connection, a group, a user,
//! everyone) arrives in the order it was sent. Messages to different targets travel on
//! different subjects, read by different tasks: their relative order is not guaranteed.
//!
//! Server versions: nothing here needs more than nats-server 2.2 (headers, for the "no
//! responders" status that requests rely on). async-nats' own options that need newer servers
//! stay off: `tls_first` (2.10.3+) is not used, and the `server_2_10`+ cargo features (which
//! only add JetStream fields) stay off; the `jetstream` feature is on for the history store
//! (`history::NatsHistory`, 2.9+). Tested against 2.9.10.
//!
//! Here: the options, the connection and the delivery of what arrives; `subjects` the names,
//! `frames` the frames and chunks, `subscriptions` what this server listens on, `requests`
//! group commands and client results, `events` the client's events, `backplane` the
//! [`Backplane`](super::Backplane) implementation.

mod backplane;
mod events;
mod frames;
mod requests;
pub(crate) mod subjects;
mod subscriptions;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::connection::State;
use bytes::Bytes;

use self::events::Events;
use self::frames::{Frame, Kind};
use self::subscriptions::Subscriptions;
use super::wire::decode_message;
use super::{BackplaneError, LocalHub, SendTarget};

/// Options of the NATS backplane.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// The first subject token(s) of every subject (`hub`), so several applications can share
    /// one NATS: dot-separated tokens without wildcards or whitespace.
    pub prefix: String,
    /// How long a group change for a connection on another server may take (5 s). A change
    /// for a connection no server has fails at once.
    pub group_ack_timeout: Duration,
    /// The longest a client result from a connection on another server is awaited (10 min):
    /// the hub's own `HubOptions::client_result_timeout` normally ends the wait sooner.
    pub client_result_timeout: Duration,
    /// How long connecting to NATS (TCP, TLS, handshake) may take (5 s).
    pub connect_timeout: Duration,
    /// How long the client may take to accept a publish or subscription, or the server to
    /// confirm a subscription (5 s).
    pub response_timeout: Duration,
    /// How often the client PINGs the server; two unanswered PINGs drop the connection (15 s).
    pub ping_interval: Duration,
    /// How many received messages each subscription may queue before the client drops more
    /// (a "slow consumer", counted as lost messages): 65,536.
    pub subscription_capacity: usize,
    /// How this server proves who it is.
    pub auth: NatsAuth,
    /// TLS to the NATS server.
    pub tls: NatsTls,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            prefix: "hub".into(),
            group_ack_timeout: Duration::from_secs(5),
            client_result_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            subscription_capacity: 65_536,
            auth: NatsAuth::None,
            tls: NatsTls::default(),
        }
    }
}

/// Credentials for the NATS server (handed to async-nats as they are).
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// None (or in the URL: `nats://user:password@host:port`).
    #[default]
    None,
    /// A user name and password (`nats-server --user --pass`, or `authorization` users).
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A token (`nats-server --auth`).
    Token(String),
    /// An NKey seed (`SU…`), for servers that know the user by its public NKey.
    NKey(String),
    /// A `.creds` file (user JWT and NKey seed), for decentralized (operator) setups.
    CredentialsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword {{ user: {user:?}, .. }}"),
            NatsAuth::Token(_) => f.write_str("Token(..)"),
            NatsAuth::NKey(_) => f.write_str("NKey(..)"),
            NatsAuth::CredentialsFile(path) => write!(f, "CredentialsFile({path:?})"),
        }
    }
}

/// TLS to the NATS server. TLS is used whenever the server asks for it (its INFO says
/// `tls_required`) or the URL is `tls://…`; the system's roots are not loaded, so a server
/// certificate must chain to one of [`root_certificates`](Self::root_certificates).
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    /// Refuse a server that does not speak TLS.
    pub required: bool,
    /// PEM files of the certificate authorities the server's certificate must chain to.
    pub root_certificates: Vec<PathBuf>,
    /// A client certificate, for servers that verify clients (`verify: true`).
    pub client_certificate: Option<ClientCertificate>,
}

/// A client certificate and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The certificate (chain).
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// What a subscribed subject stands for.
#[derive(Debug, Clone)]
pub(super) enum Route {
    All(String),
    Group(String, String),
    User(String, String),
    Connection(String, String),
}

impl Route {
    fn hub(&self) -> &str {
        match self {
            Route::All(hub) | Route::Group(hub, _) | Route::User(hub, _) | Route::Connection(hub, _) => hub,
        }
    }

    /// The name every payload on the subject must carry.
    fn name(&self) -> Option<&str> {
        match self {
            Route::All(_) => None,
            Route::Group(_, name) | Route::User(_, name) | Route::Connection(_, name) => Some(name),
        }
    }
}

struct Inner {
    client: async_nats::Client,
    options: NatsOptions,
    server: String,
    hubs: RwLock<HashMap<String, Arc<dyn LocalHub>>>,
    subscriptions: Arc<Subscriptions>,
    /// Numbers this server's chunked messages.
    next_id: AtomicU64,
    /// Client results this server awaits from connections on other servers.
    awaited: AtomicUsize,
    /// Client results other servers await from connections here.
    forwarded: AtomicUsize,
    metrics: Arc<crate::observability::BackplaneMetrics>,
}

/// Joins servers through NATS (core NATS: no JetStream).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::backplane::NatsBackplane;
/// use hub_runtime::HubServer;
/// let nats = NatsBackplane::connect("nats://127.0.0.1:4222").await?;
/// let server = HubServer::builder().backplane(nats) /* .hub(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsBackplane {
    inner: Arc<Inner>,
}

fn unavailable(e: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Unavailable(e.to_string())
}

impl NatsBackplane {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, BackplaneError> {
        NatsBackplane::connect_with(url, NatsOptions::default()).await
    }

    /// Connects to NATS at `url` (`nats://host:port`, `tls://host:port`; several servers
    /// separated by commas).
    pub async fn connect_with(url: &str, options: NatsOptions) -> Result<Self, BackplaneError> {
        if !subjects::valid_prefix(&options.prefix) {
            return Err(BackplaneError::Unavailable(format!(
                "invalid NATS subject prefix {:?}",
                options.prefix
            )));
        }
        let server = format!("{}_{}", hostname(), crate::connection::random_id());
        let metrics = Arc::new(crate::observability::BackplaneMetrics::new("nats"));
        let events = Arc::new(Events::new(metrics.clone()));
        let connect = client_options(&options, &server, events).await?;
        let client = connect_client(url, connect, options.connect_timeout)
            .await
            .map_err(unavailable)?;
        let inner = Arc::new_cyclic(|weak| Inner {
            subscriptions: Arc::new(Subscriptions::new(
                client.clone(),
                weak.clone(),
                format!("{}._confirm", options.prefix),
                options.response_timeout,
                metrics.clone(),
            )),
            client,
            options,
            server,
            hubs: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            awaited: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            metrics,
        });
        Ok(NatsBackplane { inner })
    }

    /// Client results in flight through this server: those it awaits from connections on
    /// other servers, and those other servers await from its connections.
    pub fn pending_client_results(&self) -> usize {
        self.inner.awaited.load(Ordering::Relaxed) + self.inner.forwarded.load(Ordering::Relaxed)
    }

    /// This server's name on the backplane.
    pub fn server_name(&self) -> &str {
        &self.inner.server
    }

    /// The largest payload the NATS server takes in one message (larger ones are chunked).
    pub fn max_payload(&self) -> usize {
        self.inner.client.max_payload()
    }
}

/// async-nats' options from ours for the backplane: the shared part, plus no echo, the group
/// acknowledgement timeout and the event log.
async fn client_options(
    options: &NatsOptions,
    server: &str,
    events: Arc<Events>,
) -> Result<async_nats::ConnectOptions, BackplaneError> {
    let client = connect_options(options, format!("hub backplane {server}"))
        .await
        .map_err(unavailable)?;
    Ok(client
        // What this server publishes is delivered here already (the origin is checked too).
        .no_echo()
        .request_timeout(Some(options.group_ack_timeout))
        .event_callback(move |event| {
            events.handle(event);
            std::future::ready(())
        }))
}

/// async-nats' options from ours, shared by every NATS client of hub (the backplane, the
/// history store): the client's name, timeouts, endless reconnects, credentials and TLS.
pub(crate) async fn connect_options(options: &NatsOptions, name: String) -> Result<async_nats::ConnectOptions, String> {
    let mut client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(options.connect_timeout)
        // tokio intervals take neither zero nor periods that overflow an Instant.
        .ping_interval(
            options
                .ping_interval
                .clamp(Duration::from_millis(10), Duration::from_secs(86_400)),
        )
        .subscription_capacity(options.subscription_capacity.max(1))
        .max_reconnects(None)
        .require_tls(options.tls.required);
    client = match &options.auth {
        NatsAuth::None => client,
        NatsAuth::UserPassword { user, password } => client.user_and_password(user.clone(), password.clone()),
        NatsAuth::Token(token) => client.token(token.clone()),
        NatsAuth::NKey(seed) => client.nkey(seed.clone()),
        NatsAuth::CredentialsFile(path) => client.credentials_file(path).await.map_err(|e| e.to_string())?,
    };
    for root in &options.tls.root_certificates {
        client = client.add_root_certificates(root.clone());
    }
    if let Some(cert) = &options.tls.client_certificate {
        client = client.add_client_certificate(cert.certificate.clone(), cert.key.clone());
    }
    Ok(client)
}

/// Connects to `url` (servers separated by commas); the client bounds each attempt by the
/// connect timeout, this bounds them all (twice that).
pub(crate) async fn connect_client(
    url: &str,
    client: async_nats::ConnectOptions,
    connect_timeout: Duration,
) -> Result<async_nats::Client, String> {
    let connect = client.connect(url.split(',').map(str::trim).collect::<Vec<_>>());
    match tokio::time::timeout(connect_timeout.saturating_mul(2), connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connecting to NATS timed out".into()),
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "hub".into())
}

impl Inner {
    fn subjects<'a>(&'a self, hub: &'a str) -> subjects::Subjects<'a> {
        subjects::Subjects {
            prefix: &self.options.prefix,
            hub,
        }
    }

    fn local(&self, hub: &str) -> Option<Arc<dyn LocalHub>> {
        self.hubs.read().unwrap_or_else(|p| p.into_inner()).get(hub).cloned()
    }

    /// A payload in frames that fit the server's `max_payload`.
    fn frames(&self, kind: Kind, name: Option<&str>, body: &[u8]) -> Result<Vec<Bytes>, BackplaneError> {
        let max = self.client.max_payload();
        frames::encode(kind, name, body, &self.server, max, || {
            self.next_id.fetch_add(1, Ordering::Relaxed)
        })
        .map_err(|_| self.failed(name.unwrap_or("all"), "the message is too large"))
    }

    /// Counts and logs a message for other servers that could not be published.
    fn failed(&self, subject: &str, error: impl std::fmt::Display) -> BackplaneError {
        let failed = self.metrics.failed_publish();
        // 1st, 2nd, 4th, 8th… failure: an outage does not flood the log.
        if failed.is_power_of_two() {
            tracing::warn!(%subject, %error, failed, "could not publish to NATS: messages for other servers are lost");
        }
        unavailable(error)
    }

    /// Whether the client is connected; counts a failed publish if not.
    fn check_connected(&self, subject: &str) -> Result<(), BackplaneError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            _ => Err(self.failed(subject, "not connected to NATS")),
        }
    }

    /// Publishes frames on one subject, in order; fails at once while disconnected.
    async fn publish(&self, subject: String, frames: Vec<Bytes>) -> Result<(), BackplaneError> {
        self.check_connected(&subject)?;
        for frame in frames {
            let sent = self.client.publish(subject.clone(), frame);
            match tokio::time::timeout(self.options.response_timeout, sent).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.failed(&subject, e)),
                Err(_) => return Err(self.failed(&subject, "the NATS client took no message in time")),
            }
        }
        Ok(())
    }

    /// Handles what arrived on a subscribed subject.
    fn receive(self: &Arc<Self>, route: &Route, frame: Frame, reply: Option<async_nats::Subject>) {
        if frame.name.as_deref() != route.name() {
            // Another name hashed to this subject (or a confused sender): not ours.
            tracing::debug!(?route, "ignoring a NATS backplane payload for another name");
            return;
        }
        let local = self.local(route.hub());
        match (frame.kind, route, reply) {
            (Kind::Message, _, _) => {
                let Some(local) = local else { return };
                self.deliver(route, &frame.body, local.as_ref());
            }
            (Kind::GroupCommand, Route::Connection(_, id), Some(reply)) => {
                requests::apply_group(self.clone(), local, id.clone(), frame.body, reply);
            }
            (Kind::Invocation, Route::Connection(_, id), Some(reply)) => {
                requests::invoke(self.clone(), local, id, &frame.body, reply);
            }
            _ => tracing::debug!(?route, "ignoring a NATS backplane request without a reply subject"),
        }
    }

    fn deliver(&self, route: &Route, payload: &[u8], local: &dyn LocalHub) {
        let Some(message) = decode_message(payload) else {
            tracing::warn!(?route, "ignoring an unreadable backplane message");
            return;
        };
        if message.origin == self.server {
            return;
        }
        let target = match (route, message.groups) {
            (Route::All(_), Some(groups)) => SendTarget::Groups(groups),
            (Route::All(_), None) => SendTarget::AllExcept(message.excluded),
            (Route::Group(_, group), _) => SendTarget::GroupExcept(group.clone(), message.excluded),
            (Route::Connection(_, id), _) => SendTarget::Connection(id.clone()),
            (Route::User(_, user), _) => SendTarget::User(user.clone()),
        };
        local.deliver(&target, &message.encoded);
    }
}

/// Counts a client result while it is in flight (awaited here or forwarded from here).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn start(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
