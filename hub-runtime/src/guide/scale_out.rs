//! # Scale-out: several servers as one
//!
//! One hub server holds many connections, but sooner or later you run more than one: for more
//! connections than one machine holds, to survive a machine going away, or to deploy without a
//! gap. The servers then sit behind a load balancer, and each client connects to one of them.
//!
//! On its own, a server knows only its own connections. A client on server A calls
//! `SendMessage`, the hub method sends with `cx.clients.all()`, and only A's clients get the
//! message. A **backplane** fixes that: every server hands what it sends to the backplane, which
//! carries it to the other servers, and each of them delivers it to its own connections. With a
//! backplane, `cx.clients.all()` means every connection of the hub on every server.
//!
//! ## The backplane
//!
//! A backplane implements the [`Backplane`](crate::backplane::Backplane) trait and is given to
//! the server with `HubServerBuilder::backplane`. Without one, a server uses
//! [`InMemoryBackplane`](crate::backplane::InMemoryBackplane): a fleet of one, where every
//! connection is local and nothing is encoded for anyone else.
//!
//! A send works the same with any backplane: the server encodes the message once per protocol
//! in use, delivers it to its own targets, and publishes the encoded bytes, which the other
//! servers forward to their connections without decoding them again. The backplane also learns
//! which connections, users and groups have members on each server, so a server listens only for
//! what concerns its own connections.
//!
//! ## Redis
//!
//! With the `redis` feature, `RedisBackplane` (in [`backplane`](crate::backplane)) joins the
//! servers through Redis pub/sub. Every server of the fleet connects to the same Redis:
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait ChatClient {
//!     fn receive_message(&self, user: String, text: String);
//! }
//!
//! struct Chat;
//!
//! #[hub(client = ChatClient)]
//! impl Chat {
//!     async fn send_message(&self, cx: &HubContext<Self>, user: String, text: String) -> Result<(), HubError> {
//!         // Every connection of the hub, on every server of the fleet.
//!         cx.clients.all().receive_message(user, text).await?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let builder = HubServer::builder().hub("/chat", Chat);
//!     #[cfg(feature = "redis")]
//!     let builder = builder.backplane(RedisBackplane::connect("redis://127.0.0.1:6379").await?);
//!     builder.build().serve("0.0.0.0:5000").await?;
//!     Ok(())
//! }
//! ```
//!
//! `RedisBackplane::connect` fails if Redis cannot be reached at start; later outages are
//! survived (below). `RedisBackplane::connect_with` takes `RedisOptions`: a `prefix` for every
//! channel name (so several applications, or a staging and a production fleet, can share one
//! Redis), how long a group change for a connection on another server may take
//! (`group_ack_timeout`, 5 s), and the timeouts of connecting to Redis and of each command, and
//! the keep-alive of its connections.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn connect() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use hub_runtime::backplane::{RedisBackplane, RedisOptions};
//!
//! let options = RedisOptions {
//!     prefix: "chat-production:".into(),
//!     connect_timeout: Duration::from_secs(2),
//!     ..RedisOptions::default()
//! };
//! let redis = RedisBackplane::connect_with("redis://redis.internal:6379", options).await?;
//! println!("joined the fleet as {}", redis.server_name());
//! # Ok(())
//! # }
//! # fn main() {}
//! ```
//!
//! The channels follow the layout of the ASP.NET Core Redis backplane (one channel for all
//! connections, one per group, connection and user, and internal ones for group commands); the
//! `backplane::redis` source lists them.
//!
//! **When Redis goes away**, each server keeps delivering to its own connections. Messages for
//! other servers are not queued: they are lost, logged and counted
//! (`RedisBackplane::failed_publishes`, and `hub_backplane_failed_publishes_total` with the
//! `metrics` feature). The backplane reconnects with backoff and subscribes again to everything
//! it needs; what was published while a server was not subscribed does not reach it
//! (`hub_backplane_gaps_total` counts those gaps). Every Redis command and connection attempt
//! has a timeout and the subscription connection is pinged, so a Redis that stops answering is
//! replaced rather than waited for. If your clients must not miss a message, keep the messages
//! in your own store and let a reconnecting client ask for what it missed.
//!
//! ## What crosses servers
//!
//! Everything you can address through `cx.clients`, `cx.groups` or a
//! [`HubHandle`](crate::HubHandle):
//!
//! | operation | across servers |
//! |---|---|
//! | `all()`, `all_except(ids)`, `others()` | every matching connection of every server |
//! | `client(id)`, `clients(ids)` | the connections, wherever they live |
//! | `group(g)`, `groups(gs)`, `group_except(g, ids)`, `others_in_group(g)` | members on every server; a connection in several of the groups gets the message once |
//! | `user(u)`, `users(us)` | every connection of the users, on every server |
//! | `cx.groups.add(id, g)` / `remove(id, g)` for a connection on another server | applied by the server that holds it; the call returns once it did, or fails with `GroupError::UnknownConnection` after `group_ack_timeout` if no server owns the connection |
//! | client results (`cx.clients.client(id).confirm(..)` on a connection of another server) | the invocation goes to the owning server and the answer comes back |
//! | sends from a [`HubHandle`](crate::HubHandle) (background tasks, other processes) | the same as from a hub method |
//!
//! A connection gets each message once, and the messages of one sender in the order they
//! were sent. A group join returns once every server would deliver the group's messages to the
//! new member.
//!
//! ## What stays on one server
//!
//! A connection lives on the server that accepted it, and so does everything attached to it:
//!
//! - **The connection's requests.** After negotiate, a client sends several HTTP requests for
//!   one connection (the transport, and with Server-Sent Events and Long Polling a POST per
//!   message batch); any other server answers them with 404 "No Connection with that ID". So
//!   is a stateful reconnect's new WebSocket. The load balancer must send them to the same
//!   server: [sticky sessions](#sticky-sessions).
//! - **Per-connection state**: `cx.items()`, streams in both directions, invocations in flight,
//!   the stateful-reconnect buffer. They end with the connection; nothing is moved to another
//!   server.
//! - **Counts and limits.** `HubServer::connection_count`, `group_count` and `user_count` count
//!   this server's connections. `max_connections`, `max_unstarted_connections` and
//!   `max_connections_per_user` in [`HubOptions`](crate::HubOptions) are per server: a user may
//!   hold that many connections on each one.
//! - **Raw connection endpoints** (`HubServerBuilder::connection`) are not hubs: nothing of
//!   theirs goes through the backplane.
//!
//! A hub's name on the backplane is its Rust type name (with its module path), and its
//! messages reach only servers that have the same hub type. Deploy the same hub types on every
//! server; renaming or moving a hub type during a rolling deploy splits the fleet in two until
//! every server runs the new version.
//!
//! ## Sticky sessions
//!
//! Most load balancers can pin a client to a server, by a cookie they set or by a hash of the
//! client's address: that is all the backplane needs. Clients that use only WebSockets and
//! skip negotiate (`skipNegotiation: true` in the JavaScript client) make a single HTTP request
//! per connection, the WebSocket upgrade, so they need no stickiness. The
//! [`deploying`](super::deploying) chapter shows both.
//!
//! ## Sending from a worker
//!
//! A process that serves no client (a job runner, a queue consumer, a cron job) can still send
//! to every client of the fleet. It builds a server with the same backplane and registers the
//! hub type with `publish_to` instead of mapping it; `handle` then gives the same typed
//! proxies a hub method has. Define the hub type and its client trait in a crate that the
//! servers and the worker share, so both have the same type name.
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait PriceClient {
//!     fn price_changed(&self, symbol: String, price: f64);
//! }
//!
//! struct Prices;
//!
//! #[hub(client = PriceClient)]
//! impl Prices {
//!     async fn watch(&self, cx: &HubContext<Self>, symbol: String) -> Result<(), HubError> {
//!         cx.groups.add(cx.connection_id(), &symbol).await?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     #[cfg(feature = "redis")]
//!     {
//!         let redis = RedisBackplane::connect("redis://127.0.0.1:6379").await?;
//!         let worker = HubServer::builder().backplane(redis).publish_to::<Prices>().build();
//!         let prices = worker.handle::<Prices>().expect("registered with publish_to");
//!         // Every watcher of "ACME", on whichever server it is connected to.
//!         prices.clients.group("ACME").price_changed("ACME".into(), 12.5).await?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! ## PostgreSQL and NATS
//!
//! With the `postgres` feature, `PostgresBackplane` joins the servers through PostgreSQL's
//! `LISTEN`/`NOTIFY` (a dedicated listening session, never a pooled one: poolers in
//! transaction mode break `LISTEN`); with the `nats` feature, `NatsBackplane` joins them through
//! core NATS. Both are used as Redis is (`connect(url)`, `connect_with(url, options)`,
//! `builder.backplane(..)`), and both keep delivering locally when the broker goes away,
//! reconnect by themselves and count what was lost ([`Backplane::stats`](crate::backplane::Backplane::stats)).
//!
//! - **PostgreSQL** uses a channel per hub and one per server, and every server of a hub
//!   filters what it receives: PostgreSQL compares every notification with each listener's
//!   channels, so few channels scale better. A notification carries at most 7,999 bytes of
//!   text; larger messages go through a table (`{prefix}hub_backplane_payloads`, rows deleted
//!   after `payload_retention`). A client result for a connection no server owns fails after
//!   `owner_timeout`.
//! - **NATS** uses a subject per connection, group and user (names encoded, so `.`, `*`, `>`
//!   and spaces are safe). Group commands and client results are NATS requests, so a
//!   connection nobody owns is known at once. What one sender sends to one target arrives in
//!   order; messages to different targets may overtake each other, as with ASP.NET Core's
//!   Redis backplane.
//!
//! ## Other backplanes
//!
//! Another engine plugs in by implementing [`Backplane`](crate::backplane::Backplane):
//! `is_distributed`, `publish` and `change_remote_group` are required, the rest (client
//! results, user and group subscriptions, `stats`) have defaults for a fleet of one.
//! `ARCHITECTURE.md` in the repository shows where a backplane plugs in, and
//! `hub-runtime/tests/backplane_suite.rs` is the suite a new backplane should pass.
