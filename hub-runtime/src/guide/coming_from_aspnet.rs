//! # Coming from ASP.NET Core SignalR
//!
//! hub speaks the same protocol as ASP.NET Core SignalR, so the official clients connect
//! unchanged, and most server concepts have a direct counterpart. This chapter lists them name
//! for name.
//!
//! ## Hubs and contexts
//!
//! | ASP.NET Core | hub |
//! |---|---|
//! | `class Chat : Hub` | `#[hub] impl Chat { ... }` |
//! | `class Chat : Hub<IChatClient>` | `#[hub(client = ChatClient)]`, with `#[hub_client] trait ChatClient` |
//! | `app.MapHub<Chat>("/chat")` | `HubServer::builder().hub("/chat", Chat)` |
//! | `app.MapHub<Chat>("/chat", options => ..)` | `hub_with("/chat", Chat, EndpointOptions::new()...)` |
//! | `MapHub` inside an app's middleware pipeline (`app.UseAuthentication()`, CORS, …) | the hubs as a tower service in axum or hyper: `server.into_service()` (`nest_service`) or `server.layer()` (see the `hosting` chapter) |
//! | `HttpContext.User` / `Features` set by middleware before the hub | `RequestContext::extensions()` in the endpoint's authenticator, which makes the connection's `Identity` |
//! | `HttpContext.Connection.RemoteIpAddress` | `cx.request().remote_addr()` (under axum or hyper, insert a `server::PeerAddr`) |
//! | `options.Transports = HttpTransportType.WebSockets` | `EndpointOptions::new().disable(TransportKind::LongPolling)` (and `ServerSentEvents`) |
//! | services from dependency injection (constructor, `[FromServices]`) | fields of the hub value: one value serves every call, so share state with `Arc` |
//! | `[HubMethodName("Name")]` | `#[hub(name = "Name")]` |
//! | a public helper that is not a hub method | `#[hub(skip)]` |
//! | `OnConnectedAsync` / `OnDisconnectedAsync(Exception?)` | `#[hub(on_connected)]` / `#[hub(on_disconnected)]`, taking `Option<ConnectionError>` |
//! | `Context.ConnectionId` | `cx.connection_id()` |
//! | `Context.UserIdentifier` | `cx.user_id()` |
//! | `Context.User` | `cx.identity()` |
//! | `Context.Items` | `cx.items()` (typed: `insert`, `get`, `remove`) |
//! | `Context.GetHttpContext()` | `cx.request()` |
//! | `Context.Abort()` | `cx.abort()` |
//! | `HubException` | `HubError::for_client(..)` |
//! | `IHubContext<Chat>` | `HubHandle<Chat>`, from `server.handle::<Chat>()` |
//! | `IHubContext<Chat, IChatClient>` | the same `HubHandle<Chat>`: its proxies are typed by the hub's client trait |
//! | `IUserIdProvider` | the authenticator decides: `Identity::user(id)`, or `JwtAuthenticator::user_id_claim` |
//! | `app.Lifetime.StopApplication()` | `server.shutdown()` (every client gets a Close message that allows reconnecting) |
//! | graceful shutdown of a host that serves the hubs | `server.graceful_shutdown().await` (Close messages, then the drain time), before the host's own |
//! | aborting a connection from outside a hub | `handle.abort(connection_id)`; `handle.local_user_connections(user)`, `handle.is_local(id)` |
//!
//! Hub methods are `&self` methods on one shared value, not a new object per call: state that
//! outlives a call lives in the hub value (behind a `Mutex`) or in `cx.items()`.
//!
//! ## Sending to clients
//!
//! | ASP.NET Core | hub |
//! |---|---|
//! | `Clients.All` | `cx.clients.all()` |
//! | `Clients.All.SendAsync("Name", a, b)` (untyped) | `cx.clients.all().send("Name", &(a, b))` |
//! | `Clients.Caller` | `cx.clients.caller()` |
//! | `Clients.Others` | `cx.clients.others()` |
//! | `Clients.Client(id)` / `Clients.Clients(ids)` | `cx.clients.client(id)` / `clients(ids)` |
//! | `Clients.AllExcept(ids)` | `cx.clients.all_except(ids)` |
//! | `Clients.Group(g)` / `Clients.Groups(gs)` | `cx.clients.group(g)` / `groups(gs)` |
//! | `Clients.GroupExcept(g, ids)` | `cx.clients.group_except(g, ids)` |
//! | `Clients.OthersInGroup(g)` | `cx.clients.others_in_group(g)` |
//! | `Clients.User(u)` / `Clients.Users(us)` | `cx.clients.user(u)` / `users(us)` |
//! | `Groups.AddToGroupAsync(id, g)` | `cx.groups.add(id, g)` |
//! | `Groups.RemoveFromGroupAsync(id, g)` | `cx.groups.remove(id, g)` |
//! | `hubContext.Clients.All`, `hubContext.Groups` (outside a hub) | `handle.clients.all()`, `handle.groups` |
//! | `Clients.Caller.InvokeAsync<T>(..)` (client results) | a `#[hub_client]` method with a return type |
//!
//! A hub without `client = ...` is like `class Chat : Hub`: its sends name the client method
//! in a string. A [`HubHandle`](crate::HubHandle) does from outside hub methods what
//! `IHubContext` does:
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {
//!     async fn send_message(&self, cx: &HubContext<Self>, user: String, text: String) -> Result<(), HubError> {
//!         // Clients.All.SendAsync("ReceiveMessage", user, text)
//!         cx.clients.all().send("ReceiveMessage", &(user, text)).await?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = HubServer::builder().hub("/chat", Chat).build();
//!     // IHubContext<Chat>, for a background task.
//!     let chat = server.handle::<Chat>().expect("Chat is mapped");
//!     tokio::spawn(async move {
//!         loop {
//!             tokio::time::sleep(std::time::Duration::from_secs(60)).await;
//!             let _ = chat.clients.all().send("ReceiveMessage", &("server", "still here")).await;
//!         }
//!     });
//!     server.serve("127.0.0.1:5000").await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Streams
//!
//! | ASP.NET Core | hub |
//! |---|---|
//! | returning `IAsyncEnumerable<T>` or `ChannelReader<T>` | returning `impl Stream<Item = T>` |
//! | a `ChannelReader<T>` or `IAsyncEnumerable<T>` parameter | a [`ClientStream<T>`](crate::ClientStream) parameter |
//! | a `CancellationToken` parameter | a [`CancellationToken`](crate::CancellationToken) parameter |
//!
//! ## Security and middleware
//!
//! | ASP.NET Core | hub |
//! |---|---|
//! | `[Authorize]` | `#[hub(authorize)]` on the hub or a method |
//! | `[Authorize(Roles = "a,b")]` | `#[hub(authorize(role = "a, b"))]` |
//! | `[Authorize(Policy = ..)]` | `#[hub(authorize(policy = a_fn))]`, or `authorize(claim = "..", value = "..")` |
//! | `AddAuthentication().AddJwtBearer(..)` | `EndpointOptions::new().authenticator(..)`, `JwtAuthenticator` (feature `jwt`) |
//! | `IHubFilter` (`AddFilter`, global then per hub) | [`HubFilter`](crate::HubFilter), added with `HubServerBuilder::filter`, then `EndpointOptions::filter` (see [`filters`](super::filters)) |
//! | `InvokeMethodAsync(HubInvocationContext, next)` | `HubFilter::invoke(&InvocationContext, Next)`: `next.run().await`, returning an `InvocationResult` |
//! | CORS policy | [`Cors`](crate::Cors), added with `HubServerBuilder::cors` |
//! | `AddStackExchangeRedis(..)` | `HubServerBuilder::backplane(RedisBackplane::connect(url).await?)` (feature `redis`; see [`scale_out`](super::scale_out)) |
//! | `options.Configuration.ChannelPrefix` | `RedisOptions { prefix, .. }` with `RedisBackplane::connect_with` |
//! | `AddJsonProtocol()` / `AddMessagePackProtocol()` | the `json` and `msgpack` features (both on by default) |
//! | `ILogger` output | `tracing` events (install a subscriber, such as `tracing-subscriber`) |
//! | the `Microsoft.AspNetCore.Http.Connections` event counters | `hub_connections` and the other metrics of [`observability`](crate::observability) (feature `metrics`) |
//!
//! ## Options
//!
//! Server-wide options are the fields of [`HubOptions`](crate::HubOptions), set with
//! `HubServerBuilder::options`. The defaults are the reference server's.
//!
//! | ASP.NET Core | `HubOptions` field |
//! |---|---|
//! | `EnableDetailedErrors` | `detailed_errors` |
//! | `MaximumReceiveMessageSize` | `max_message_size` |
//! | `ClientTimeoutInterval` | `client_timeout` |
//! | `KeepAliveInterval` | `keep_alive_interval` |
//! | `HandshakeTimeout` | `handshake_timeout` |
//! | `MaximumParallelInvocationsPerClient` | `max_parallel_invocations` |
//! | `StreamBufferCapacity` | `stream_buffer_capacity` |
//! | `AllowStatefulReconnects` | `stateful_reconnect` |
//! | `StatefulReconnectBufferSize` | `stateful_reconnect_buffer` |
//! | `LongPolling.PollTimeout` | `long_poll_timeout` |
//!
//! hub has more limits than these (connections, groups, invocation rates, HTTP timeouts); the
//! field docs of `HubOptions` list them all.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use hub_runtime::prelude::*;
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let options = HubOptions {
//!         detailed_errors: true,
//!         max_message_size: 64 * 1024,
//!         keep_alive_interval: Duration::from_secs(10),
//!         client_timeout: Duration::from_secs(20),
//!         ..HubOptions::default()
//!     };
//!     let builder = HubServer::builder().options(options).hub("/chat", Chat);
//!     // With the `redis` feature, servers sharing a Redis act as one.
//!     #[cfg(feature = "redis")]
//!     let builder = builder.backplane(RedisBackplane::connect("redis://127.0.0.1:6379").await?);
//!     builder.build().serve("127.0.0.1:5000").await?;
//!     Ok(())
//! }
//! ```
