//! # Calling clients
//!
//! The server calls methods on clients, too. You declare which ones with
//! [`#[hub_client]`](macro@crate::hub_client) on a trait, and name the trait in `#[hub(client = ...)]`.
//! Inside a hub method, `cx.clients` then gives typed proxies: a wrong method name or argument
//! type does not compile.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait ChatClient {
//!     // The client handles it as "ReceiveMessage".
//!     fn receive_message(&self, user: String, text: String);
//! }
//!
//! struct Chat;
//!
//! #[hub(client = ChatClient)]
//! impl Chat {
//!     async fn send(&self, cx: &HubContext<Self>, user: String, text: String) -> Result<(), HubError> {
//!         cx.clients.all().receive_message(user, text).await?;
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! In JavaScript: `connection.on("ReceiveMessage", (user, text) => ...)`. Trait methods
//! follow the same naming rules as hub methods, `#[hub(name = "...")]` included.
//!
//! A send returns once the message is in every target's outbox; it never waits for a slow
//! client. It fails with a [`SendError`](crate::SendError), which `?` turns into a
//! [`HubError`](crate::HubError).
//!
//! ## Choosing who receives
//!
//! | call | who |
//! |---|---|
//! | `cx.clients.all()` | every connection of this hub |
//! | `cx.clients.caller()` | the connection that made this call |
//! | `cx.clients.others()` | everyone but the caller |
//! | `cx.clients.client(id)` / `clients(ids)` | connections by id |
//! | `cx.clients.all_except(ids)` | everyone but these connections |
//! | `cx.clients.group(g)` / `groups(gs)` | members of groups |
//! | `cx.clients.group_except(g, ids)` | a group but these connections |
//! | `cx.clients.others_in_group(g)` | a group but the caller |
//! | `cx.clients.user(u)` / `users(us)` | every connection of a user |
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait Notify {
//!     fn notice(&self, text: String);
//! }
//!
//! struct Alerts;
//!
//! #[hub(client = Notify)]
//! impl Alerts {
//!     async fn ping_others(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
//!         cx.clients.caller().notice("sent".into()).await?;
//!         cx.clients.others().notice("ping".into()).await?;
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Groups
//!
//! A group is a name that connections join and leave; sending to it reaches its members.
//! There is nothing to create first: adding a connection to a name is enough. A connection
//! leaves its groups when it disconnects. `cx.groups` is the hub's [`Groups`](crate::Groups).
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait RoomClient {
//!     fn said(&self, room: String, text: String);
//! }
//!
//! struct Rooms;
//!
//! #[hub(client = RoomClient)]
//! impl Rooms {
//!     async fn join(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
//!         cx.groups.add(cx.connection_id(), &room).await?;
//!         Ok(())
//!     }
//!
//!     async fn leave(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
//!         cx.groups.remove(cx.connection_id(), &room).await?;
//!         Ok(())
//!     }
//!
//!     async fn say(&self, cx: &HubContext<Self>, room: String, text: String) -> Result<(), HubError> {
//!         cx.clients.group(room.clone()).said(room, text).await?;
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Users
//!
//! A user is whoever the endpoint's authenticator says the connection belongs to (its
//! `cx.user_id()`). One user may have several connections, a phone and a laptop; `user(u)`
//! reaches them all.
//!
//! ## Presence: who is here
//!
//! A hub marked `#[hub(presence)]` knows who is in each group (`cx.groups.members(room)`: each
//! user with how many connections it has there) and who is online (`cx.users.online(user)`),
//! on every server that shares the presence store. A connection's user is its user id, or its
//! connection id when it has none. With `presence(joined = "...", left = "...")` the hub also
//! calls two of its client methods, each with the group and the user: `joined` once when a
//! user's first connection joins a group (the newcomer gets it too, before its join returns),
//! `left` once when the user's last connection leaves it, ends, or its server dies (then
//! within the store's TTL). A socket that stateful reconnect or long polling survives is no
//! leave. Several servers share presence through a store such as
//! [`RedisPresence`](crate::presence::RedisPresence),
//! [`PostgresPresence`](crate::presence::PostgresPresence) or
//! [`NatsPresence`](crate::presence::NatsPresence) given to
//! [`HubServerBuilder::presence`](crate::HubServerBuilder::presence); the default keeps it in
//! the process.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait RoomClient {
//!     fn user_joined(&self, room: String, user: String);
//!     fn user_left(&self, room: String, user: String);
//! }
//!
//! struct Rooms;
//!
//! #[hub(client = RoomClient, presence(joined = "UserJoined", left = "UserLeft"))]
//! impl Rooms {
//!     async fn enter(&self, cx: &HubContext<Self>, room: String) -> Result<Vec<String>, HubError> {
//!         cx.groups.add(cx.connection_id(), &room).await?;
//!         let members = cx.groups.members(&room).await?;
//!         Ok(members.into_iter().map(|m| m.user).collect())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## From outside a hub method
//!
//! A background task has no `cx`. Ask the server for a [`HubHandle`](crate::HubHandle) with
//! [`HubServer::handle`](crate::HubServer::handle): it has the same `clients` (without
//! `caller()` and `others()`, as there is no caller), `groups` and `users`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait ClockClient {
//!     fn tick(&self, n: u64);
//! }
//!
//! struct Clock;
//!
//! #[hub(client = ClockClient)]
//! impl Clock {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = HubServer::builder().hub("/clock", Clock).build();
//!     let handle = server.handle::<Clock>().expect("Clock is served");
//!     tokio::spawn(async move {
//!         for n in 0.. {
//!             let _ = handle.clients.all().tick(n).await;
//!             tokio::time::sleep(Duration::from_secs(1)).await;
//!         }
//!     });
//!     server.serve("127.0.0.1:5000").await
//! }
//! ```
