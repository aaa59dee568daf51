//! The PostgreSQL backplane: servers notify each other through LISTEN/NOTIFY.
//!
//! PostgreSQL looks through each listening session's channel list for every notification, so
//! this backplane keeps a handful of channels per server (one per hub and one of its own)
//! rather than one per connection, user or group, and each server filters what it receives:
//!
//! | channel | carries | who listens |
//! |---|---|---|
//! | `{prefix}hub_{hash of the hub name}` | every message of the hub (all, groups, users, connections, with their exclusions), group commands, client-result invocations | every server of the hub |
//! | `{prefix}hub_srv_{hash of the server name}` | answers for one server: group command acks (or refusals), "invocation accepted", client results | that server |
//!
//! The names are 64-bit FNV-1a hashes in hex, so they stay within PostgreSQL's 63-byte names
//! whatever the hub is called (the prefix may be at most 39 bytes); they are quoted in LISTEN,
//! so the prefix keeps its case. Each frame also names its hub, so a hash collision costs
//! nothing but decoding.
//!
//! Each server receives every message of its hubs and delivers it to its own members of the
//! target: a server with no member of a group (or no connection of a user, or not the owner of
//! a connection) decodes the message and drops it. That costs each server a decode per
//! message, in exchange for a channel list PostgreSQL can scan cheaply, and no LISTEN or
//! UNLISTEN as connections come and go.
//!
//! Group commands and client results go to every server of the hub; only the connection's
//! owner answers. A group command fails with "no server owns it" after
//! [`PostgresOptions::group_ack_timeout`] without an answer; a client-result invocation is
//! acknowledged by its owner at once, so one for a connection nobody owns fails after
//! [`PostgresOptions::owner_timeout`], while the client's answer may take the hub's whole
//! client-result timeout.
//!
//! Payloads are the MessagePack envelopes of `backplane::wire` in a small frame naming the hub,
//! the origin server and a sequence number (so no two are equal: PostgreSQL folds identical
//! notifications of one transaction, and each NOTIFY here is a statement of its own outside any
//! explicit transaction anyway), sent as base64 text. A frame whose text would exceed the
//! 7,999 bytes a notification may carry is stored in the table `{prefix}hub_backplane_payloads`
//! (created at connect, `UNLOGGED`) by the same statement that notifies its reference; rows are
//! deleted once older than [`PostgresOptions::payload_retention`].
//!
//! The listening connection is a session of its own — never put a pooler in transaction mode
//! between: it loses LISTENs — kept up with backoff (100 ms doubling to 5 s); after a reconnect
//! it LISTENs again on every channel and counts a gap ([`BackplaneStats::gaps`](super::BackplaneStats)). Publishes share
//! another session, opened again after it was lost; a publish that fails is counted and logged
//! (the 1st, 2nd, 4th… failure) and fails at once. Every connection attempt and statement is
//! bounded by a timeout, connections use TCP keepalive, and the listening one is checked every
//! keepalive period. Local delivery never depends on PostgreSQL.
//!
//! Here: the options, the shared state and publishing frames; `backplane` is the
//! [`Backplane`](super::Backplane) implementation, `listener` the listening connection,
//! `dispatch` what arrives on it, `publisher` the publishing connection, `frame` the payload
//! format, `channels` the names, `large` the payload table, `connect` and `tls` connecting.

mod backplane;
pub(crate) mod channels;
pub(crate) mod connect;
mod dispatch;
mod frame;
mod large;
mod listener;
mod publisher;
pub(crate) mod store;
mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

use self::connect::Connector;
use self::frame::{Kind, Target};
use self::large::PayloadSql;
use self::listener::Listening;
use self::publisher::Publisher;
use super::{BackplaneError, LocalHub};
use crate::protocol::CompletionResult;

/// Options of the PostgreSQL backplane.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Prepended to every channel name and to the payload table's name, so several
    /// applications can share one database (at most 39 bytes; case is kept).
    pub prefix: String,
    /// How long a group change for a connection on another server may take before it fails
    /// with "no server owns it" (5 s).
    pub group_ack_timeout: Duration,
    /// How long the owner of a connection may take to acknowledge a client-result invocation
    /// before it fails with "no server owns it" (2 s). The client's answer itself may take the
    /// hub's `client_result_timeout`.
    pub owner_timeout: Duration,
    /// How long connecting to PostgreSQL (TCP, TLS, authentication) may take before the
    /// attempt fails (5 s).
    pub connect_timeout: Duration,
    /// How long PostgreSQL may take to answer a statement (NOTIFY, LISTEN, reading a stored
    /// payload, the listening connection's check) before it fails (5 s); the connection it
    /// timed out on is replaced.
    pub response_timeout: Duration,
    /// TCP keepalive probes start after a connection was idle this long, and the listening
    /// connection is checked this often (15 s).
    pub keepalive: Duration,
    /// How long a payload too large for a notification stays in the payload table (60 s):
    /// every server deletes older rows about every half of this. A server whose listening
    /// connection lags behind by more loses those messages (counted as lost).
    pub payload_retention: Duration,
    /// The certificates `sslmode=verify-ca` and `sslmode=verify-full` trust (required for
    /// them; `require` encrypts without checking the server's certificate, as libpq does).
    /// See [`PostgresOptions::with_tls_roots_pem`].
    pub tls_roots: Vec<CertificateDer<'static>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            prefix: String::new(),
            group_ack_timeout: Duration::from_secs(5),
            owner_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
            payload_retention: Duration::from_secs(60),
            tls_roots: Vec::new(),
        }
    }
}

impl PostgresOptions {
    /// Adds the certificates of a PEM file's contents to [`PostgresOptions::tls_roots`].
    ///
    /// ```
    /// use hub_runtime::backplane::PostgresOptions;
    /// assert!(PostgresOptions::default().with_tls_roots_pem(b"not a certificate").is_err());
    /// ```
    pub fn with_tls_roots_pem(mut self, pem: &[u8]) -> Result<Self, BackplaneError> {
        use rustls_pki_types::pem::PemObject;
        let before = self.tls_roots.len();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            self.tls_roots
                .push(certificate.map_err(|e| BackplaneError::Unavailable(format!("unreadable PEM: {e}")))?);
        }
        if self.tls_roots.len() == before {
            return Err(BackplaneError::Unavailable("no certificate in the PEM".into()));
        }
        Ok(self)
    }
}

/// A client result this server awaits from another server.
struct Awaiting {
    /// Fired when the connection's owner took the invocation.
    accepted: Option<oneshot::Sender<()>>,
    result: oneshot::Sender<CompletionResult>,
}

struct Inner {
    options: PostgresOptions,
    server: String,
    /// This server's own channel.
    server_channel: String,
    connector: Arc<Connector>,
    sql: Arc<PayloadSql>,
    publisher: Publisher,
    listening: Listening,
    hubs: RwLock<HashMap<String, Arc<dyn LocalHub>>>,
    /// Group commands sent to other servers, awaiting their acknowledgement.
    acks: Mutex<HashMap<u64, oneshot::Sender<Result<(), BackplaneError>>>>,
    /// Client results this server awaits from connections on other servers.
    returns: Mutex<HashMap<String, Awaiting>>,
    next_id: AtomicU64,
    /// Numbers this server's frames (unique payloads).
    sequence: AtomicU64,
    /// Client results other servers await from connections here.
    forwarded: AtomicU64,
    metrics: Arc<crate::observability::BackplaneMetrics>,
}

/// Joins servers through PostgreSQL LISTEN/NOTIFY.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::backplane::PostgresBackplane;
/// use hub_runtime::HubServer;
/// let postgres = PostgresBackplane::connect("postgres://hub@127.0.0.1/hub?sslmode=require").await?;
/// let server = HubServer::builder().backplane(postgres) /* .hub(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresBackplane {
    inner: Arc<Inner>,
    /// Stops the listening and cleaning tasks when the last clone is dropped.
    _running: Arc<DropGuard>,
}

fn unavailable(e: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Unavailable(e.to_string())
}

impl PostgresBackplane {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, BackplaneError> {
        PostgresBackplane::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to PostgreSQL at `url` (`postgres://user:password@host:port/database?…` or
    /// `host=… user=…`; `sslmode` may be `disable`, `prefer`, `require`, `verify-ca` or
    /// `verify-full`), creates the payload table unless it exists, and starts listening.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, BackplaneError> {
        channels::check_prefix(&options.prefix).map_err(unavailable)?;
        let connector = Arc::new(Connector::new(url, &options).map_err(unavailable)?);
        let sql = Arc::new(PayloadSql::new(&options.prefix));
        let publisher = Publisher::new(
            connector.clone(),
            sql.clone(),
            "hub backplane publisher".into(),
            options.connect_timeout,
            options.response_timeout,
        );
        // The publishing session first: it creates the payload table.
        publisher.session().await.map_err(unavailable)?;
        let server = format!("{}_{}", hostname(), crate::connection::random_id());
        let inner = Arc::new(Inner {
            server_channel: channels::server_channel(&options.prefix, &server),
            server,
            options,
            connector,
            sql,
            publisher,
            listening: Listening::default(),
            hubs: RwLock::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
            returns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            sequence: AtomicU64::new(1),
            forwarded: AtomicU64::new(0),
            metrics: Arc::new(crate::observability::BackplaneMetrics::new("postgres")),
        });
        // Known before the first session, which LISTENs to it.
        let _ = inner
            .listening
            .add(inner.server_channel.clone(), inner.options.response_timeout)
            .await;
        let shutdown = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(listener::listener(inner.clone(), ready_tx, shutdown.clone()));
        let wait = inner
            .options
            .connect_timeout
            .saturating_add(inner.options.response_timeout.saturating_mul(2));
        if !matches!(tokio::time::timeout(wait, ready_rx).await, Ok(Ok(()))) {
            shutdown.cancel();
            return Err(unavailable("could not listen on PostgreSQL"));
        }
        tokio::spawn(clean(inner.clone(), shutdown.clone()));
        Ok(PostgresBackplane {
            inner,
            _running: Arc::new(shutdown.drop_guard()),
        })
    }

    /// How many messages for other servers could not be published (PostgreSQL unreachable).
    pub fn failed_publishes(&self) -> u64 {
        self.inner.metrics.stats().failed_publishes
    }

    /// Client results in flight through this server: those it awaits from connections on
    /// other servers, and those other servers await from its connections.
    pub fn pending_client_results(&self) -> usize {
        self.inner.returns.lock().unwrap_or_else(|p| p.into_inner()).len()
            + self.inner.forwarded.load(Ordering::Relaxed) as usize
    }

    /// This server's name on the backplane.
    pub fn server_name(&self) -> &str {
        &self.inner.server
    }

    /// The channels the listening connection LISTENs on now (none while it reconnects): this
    /// server's own, and one per hub.
    pub fn listening_channels(&self) -> Vec<String> {
        self.inner.listening.listened()
    }

    /// The process id of the listening connection's backend (`pg_stat_activity.pid`), while
    /// it is connected.
    pub fn listener_pid(&self) -> Option<i32> {
        self.inner.listening.pid()
    }
}

/// Deletes stored payloads older than the retention, about every half of it.
async fn clean(inner: Arc<Inner>, shutdown: CancellationToken) {
    let retention = inner.options.payload_retention;
    let every = (retention / 2).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = inner.publisher.clean(retention).await {
            tracing::debug!(error = %e, "postgres backplane could not delete old payloads; trying later");
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "hub".into())
}

impl Inner {
    fn local(&self, hub: &str) -> Option<Arc<dyn LocalHub>> {
        self.hubs.read().unwrap_or_else(|p| p.into_inner()).get(hub).cloned()
    }

    /// Publishes a frame on `channel`: inline, or through the payload table when too large.
    async fn publish_frame(
        &self,
        channel: &str,
        kind: Kind,
        hub: &str,
        target: Option<&Target>,
        body: &[u8],
    ) -> Result<(), BackplaneError> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let frame = frame::encode(kind, hub, &self.server, sequence, target, body);
        let published = match frame::inline_text(&frame) {
            Some(text) => self.publisher.notify(channel, &text).await,
            None => self.publisher.store_and_notify(channel, &frame, &self.server).await,
        };
        published.map_err(|e| {
            let failed = self.metrics.failed_publish();
            // 1st, 2nd, 4th, 8th… failure: an outage does not flood the log.
            if failed.is_power_of_two() {
                tracing::warn!(%channel, error = %e, failed, "could not publish to PostgreSQL: messages for other servers are lost");
            }
            unavailable(e)
        })
    }
}

/// A client result this server awaits from another server; dropping it (answered, timed out
/// or cancelled) forgets the waiting entry.
struct AwaitedReturn {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for AwaitedReturn {
    fn drop(&mut self) {
        self.inner
            .returns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}
