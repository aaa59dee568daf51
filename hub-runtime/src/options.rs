//! Options of a hub server: the lowest layer above the protocol, so every layer that reads
//! them (the lifetime manager, the dispatcher, the transports, the server) imports them
//! downward. `server` re-exports [`HubOptions`], its public path.

use std::time::Duration;

/// Options of a hub server, with the reference server's defaults.
///
/// ```
/// use hub_runtime::HubOptions;
/// use std::time::Duration;
/// let options = HubOptions { detailed_errors: true, keep_alive_interval: Duration::from_secs(5), ..Default::default() };
/// assert_eq!(options.max_message_size, 32 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Append an error's kind and message to the text clients see (off by default: internal
    /// messages never leak).
    pub detailed_errors: bool,
    /// Send a Ping after this long without sending anything (15 s).
    pub keep_alive_interval: Duration,
    /// Close a connection after this long without hearing from the client (30 s), on
    /// transports that do not keep themselves alive.
    pub client_timeout: Duration,
    /// Close a connection whose handshake has not completed after this long (15 s).
    pub handshake_timeout: Duration,
    /// Largest size of one hub message, in bytes (32 KiB).
    pub max_message_size: usize,
    /// Largest size of one WebSocket frame or request body, which may carry many messages
    /// (1 MiB).
    pub max_frame_size: usize,
    /// How many of one client's invocations run at once (1); more wait in order.
    pub max_parallel_invocations: usize,
    /// How many invocations may wait behind the running ones before the server stops reading
    /// from that client (64); the limit holds within a frame too (messages are parsed lazily).
    pub max_pending_invocations: usize,
    /// How many bytes of frames a connection's outbox holds (1 MiB), each frame counted as its
    /// length plus 64 bytes. A client that lets it fill up is closed, so no sender ever waits
    /// on it. A frame larger than this still goes out: next in line, it does not count, so
    /// the messages after it are not refused for its sake. A budget in bytes (not frames)
    /// bounds memory whatever the message sizes, and lets a client that reads absorb a burst
    /// of small messages: 20,000 messages of 60 bytes from a NATS backplane overflowed the
    /// former 1,024 frames while the Node client was reading (`examples/js/scaleout/burst`).
    pub outbox_max_bytes: usize,
    /// Forget a long polling connection whose client stopped polling this long ago (15 s).
    pub disconnect_timeout: Duration,
    /// Drop a negotiated connection whose transport has not started after this long (10 s).
    /// Clients start their transport right after negotiate; a shorter life than
    /// `disconnect_timeout` keeps negotiate floods cheap.
    pub unstarted_timeout: Duration,
    /// Most negotiated connections whose transport has not started yet, per server (10,000);
    /// negotiate answers 503 beyond. They do not count toward `max_connections`.
    pub max_unstarted_connections: Option<usize>,
    /// On shutdown, how long connections get to close before the server stops (5 s).
    pub shutdown_drain: Duration,
    /// How long a long poll waits for data before answering empty (90 s).
    pub long_poll_timeout: Duration,
    /// How many items of one client-to-server stream wait for the hub method (10).
    pub stream_buffer_capacity: usize,
    /// How long a client result may take before the call fails (30 s).
    pub client_result_timeout: Duration,
    /// Offer stateful reconnect (WebSockets) to clients that ask for it (off).
    pub stateful_reconnect: bool,
    /// Stateful reconnect: most bytes of unacknowledged messages kept per connection
    /// (100,000); a client that lets more pile up is a slow consumer.
    pub stateful_reconnect_buffer: usize,
    /// Stateful reconnect: how long a connection waits for its client to re-attach after the
    /// socket dropped (30 s).
    pub reconnect_grace: Duration,
    /// How long the built-in server waits for a request's head (30 s); a client that sends it
    /// slower is disconnected (slowloris). It also bounds the time from accepting a socket
    /// (after TLS) to its first request head or HTTP/2 preface, and is the interval (and
    /// timeout) of the pings that drop an HTTP/2 connection whose client stopped answering.
    pub http_header_read_timeout: Duration,
    /// How long the built-in server waits for a client to take written bytes (30 s); a client
    /// that stops reading (an event stream or a poll nobody reads) is disconnected.
    pub http_write_timeout: Duration,
    /// Server-Sent Events and Long Polling: one POST per connection is taken at a time; how
    /// long a POST may wait for the one before it, then for its own body, then for room in
    /// the connection's input (30 s). Beyond: 409, 408 and 503; the POST's data is lost,
    /// so the connection's input ends too (as for a 413): the client sees it close.
    pub http_post_timeout: Duration,
    /// Most started connections the server holds at once (unlimited); beyond, negotiate and
    /// starting a transport answer 503 (a connection refused at its start is forgotten).
    /// Connections negotiated but not started yet are not counted (see
    /// `max_unstarted_connections`).
    pub max_connections: Option<usize>,
    /// Most connections of one user at once (unlimited); more are closed with an error.
    pub max_connections_per_user: Option<usize>,
    /// Most streams (both directions) open at once on one connection (64).
    pub max_streams_per_connection: usize,
    /// Most groups one connection may belong to (1,000).
    pub max_groups_per_connection: usize,
    /// Longest group name, in bytes (1,024): adding to, removing from or sending to a group
    /// with a longer name fails.
    pub max_group_name_length: usize,
    /// Most invocations one connection may make per second, on average (unlimited); beyond,
    /// invocations fail with an error.
    pub max_invocations_per_second: Option<u32>,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            detailed_errors: false,
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            max_message_size: 32 * 1024,
            max_frame_size: 1024 * 1024,
            max_parallel_invocations: 1,
            max_pending_invocations: 64,
            outbox_max_bytes: 1024 * 1024,
            disconnect_timeout: Duration::from_secs(15),
            unstarted_timeout: Duration::from_secs(10),
            max_unstarted_connections: Some(10_000),
            shutdown_drain: Duration::from_secs(5),
            long_poll_timeout: Duration::from_secs(90),
            stream_buffer_capacity: 10,
            client_result_timeout: Duration::from_secs(30),
            stateful_reconnect: false,
            stateful_reconnect_buffer: 100_000,
            reconnect_grace: Duration::from_secs(30),
            http_header_read_timeout: Duration::from_secs(30),
            http_write_timeout: Duration::from_secs(30),
            http_post_timeout: Duration::from_secs(30),
            max_connections: None,
            max_connections_per_user: None,
            max_streams_per_connection: 64,
            max_groups_per_connection: 1000,
            max_group_name_length: 1024,
            max_invocations_per_second: None,
        }
    }
}
