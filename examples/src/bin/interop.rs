//! The interop server: the contract the official SignalR clients' functional tests expect
//! (see `shared/reference/interop-contract.md`). Interop tests, fuzzers and benchmarks drive it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hub_examples::interop_contract::{self as contract, ComplexObject, CustomObject, RecoveryItem};
use hub_examples::reply;
use hub_runtime::auth::claim_types;
use hub_runtime::history::{HistoryError, HistoryEvent, HistoryRule};
use hub_runtime::prelude::*;
use hub_runtime::types::{Binary, DateTime};
use hub_runtime::{
    AuthError, Connection, Cors, EndpointOptions, Hub, Identity, JwtAuthenticator, RequestContext, SendError,
    TransportKind,
};

use warp::Filter;

#[path = "interop/axum_host.rs"]
mod axum_host;

const PROGRAM: &str = "interop";

#[hub_client(contract = contract::TestHubClient)]
trait TestHubClient {
    fn message(&self, message: String);
    fn custom_object(&self, value: CustomObject);
    fn stream_canceled(&self);
    /// A client result: the client answers with an integer.
    fn result(&self) -> i64;
}

/// The reference server's TestHub.
struct TestHub;

fn invalid_operation(message: String) -> HubError {
    HubError::new(message).with_kind("InvalidOperationException")
}

#[hub(client = TestHubClient, contract = contract::TestHub)]
impl TestHub {
    fn echo(&self, message: String) -> String {
        message
    }

    fn get_caller_connection_id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }

    fn get_num_redirects(&self, cx: &HubContext<Self>) -> i32 {
        cx.request()
            .query("numRedirects")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Plain integer division with no guard: `Divide(1, 0)` panics inside the hub method, so
    /// tests can check that a panic reaches the caller as an error and leaks nothing.
    fn divide(&self, a: i32, b: i32) -> i32 {
        a / b
    }

    fn throw_exception(&self, message: String) -> Result<(), HubError> {
        Err(invalid_operation(message))
    }

    async fn invoke_with_string(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        cx.clients.caller().message(message).await?;
        Ok(())
    }

    async fn send_custom_object(&self, cx: &HubContext<Self>, value: CustomObject) -> Result<(), HubError> {
        cx.clients.caller().custom_object(value).await?;
        Ok(())
    }

    fn get_active_transport_name(&self, cx: &HubContext<Self>) -> &'static str {
        cx.request().transport().map(TransportKind::name).unwrap_or("")
    }

    fn echo_complex_object(&self, value: ComplexObject) -> ComplexObject {
        value
    }

    fn send_complex_object(&self) -> ComplexObject {
        ComplexObject {
            string: "hello world".into(),
            int_array: vec![1, 2, 3],
            byte_array: Binary(vec![1, 2, 3]),
            guid: "00010203-0405-0607-0706-050403020100".into(),
            date_time: DateTime::from_unix(946_684_800, 0).expect("a valid date"),
        }
    }

    fn stream(&self) -> impl Stream<Item = &'static str> {
        futures_util::stream::iter(["a", "b", "c"])
    }

    fn infinite_stream(&self, cx: &HubContext<Self>, token: CancellationToken) -> impl Stream<Item = String> {
        let caller = cx.clients.caller();
        tokio::spawn(async move {
            token.cancelled().await;
            let _ = caller.stream_canceled().await;
        });
        futures_util::stream::pending()
    }

    fn empty_stream(&self) -> impl Stream<Item = i32> {
        futures_util::stream::empty()
    }

    fn stream_throw_exception(&self, message: String) -> Result<impl Stream<Item = i32>, HubError> {
        Err::<futures_util::stream::Empty<i32>, _>(invalid_operation(message))
    }

    async fn streaming_concat(&self, items: ClientStream<String>) -> Result<String, HubError> {
        Ok(items.collect_all().await?.concat())
    }

    fn get_content_type_header(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.request().header("content-type").map(str::to_owned)
    }

    fn get_header(&self, cx: &HubContext<Self>, name: String) -> Option<String> {
        cx.request().header(&name).map(str::to_owned)
    }

    fn get_cookie(&self, cx: &HubContext<Self>, name: String) -> Option<String> {
        cx.request().cookie(&name)
    }
}

#[hub_client(contract = contract::BroadcastHubClient)]
trait BroadcastHubClient {
    fn receive(&self, message: String);
    /// A client result: the client answers the question.
    fn answer(&self, question: String) -> String;
    /// A user's first connection joined the group.
    fn joined(&self, group: String, user: String);
    /// A user's last connection left the group.
    fn left(&self, group: String, user: String);
}

/// Fan-out for tests and benchmarks.
struct BroadcastHub;

#[hub(
    client = BroadcastHubClient,
    contract = contract::BroadcastHub,
    presence(joined = "Joined", left = "Left")
)]
impl BroadcastHub {
    fn echo(&self, message: String) -> String {
        message
    }

    fn get_connection_id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }

    async fn join_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }

    async fn send_to_all(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.all().receive(message).await?)
    }

    async fn send_to_others(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.others().receive(message).await?)
    }

    async fn send_to_all_except(
        &self,
        cx: &HubContext<Self>,
        excluded: Vec<String>,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.all_except(excluded).receive(message).await?)
    }

    async fn send_to_connection(
        &self,
        cx: &HubContext<Self>,
        connection_id: String,
        message: String,
    ) -> Result<(), HubError> {
        match cx.clients.client(connection_id).receive(message).await {
            // The reference server sends to an unknown connection id without an error.
            Ok(()) | Err(SendError::UnknownConnection(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn send_to_connections(
        &self,
        cx: &HubContext<Self>,
        connection_ids: Vec<String>,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.clients(connection_ids).receive(message).await?)
    }

    async fn send_to_group(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.group(group).receive(message).await?)
    }

    async fn send_to_groups(
        &self,
        cx: &HubContext<Self>,
        groups: Vec<String>,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.groups(groups).receive(message).await?)
    }

    async fn send_to_group_except(
        &self,
        cx: &HubContext<Self>,
        group: String,
        excluded: Vec<String>,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.group_except(group, excluded).receive(message).await?)
    }

    async fn send_to_others_in_group(
        &self,
        cx: &HubContext<Self>,
        group: String,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.others_in_group(group).receive(message).await?)
    }

    async fn send_to_user(&self, cx: &HubContext<Self>, user: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.user(user).receive(message).await?)
    }

    async fn ask_caller(&self, cx: &HubContext<Self>, question: String) -> Result<String, HubError> {
        Ok(cx.clients.caller().answer(question).await?)
    }

    async fn send_to_users(&self, cx: &HubContext<Self>, users: Vec<String>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.users(users).receive(message).await?)
    }

    async fn members(&self, cx: &HubContext<Self>, group: String) -> Result<Vec<String>, HubError> {
        let members = cx.groups.members(&group).await?;
        Ok(members.into_iter().map(|m| m.user).collect())
    }

    async fn publish(
        &self,
        cx: &HubContext<Self>,
        group: String,
        message: String,
    ) -> Result<contract::Position, HubError> {
        let position = cx.history.publish(&group, &message).await?;
        Ok(contract::Position {
            epoch: position.epoch,
            offset: position.offset,
        })
    }

    async fn subscribe(
        &self,
        cx: &HubContext<Self>,
        group: String,
        position: Option<contract::Position>,
    ) -> Result<impl Stream<Item = Result<RecoveryItem, HistoryError>>, HubError> {
        let from = position.map(|p| hub_runtime::history::Position::new(p.epoch, p.offset));
        let events = cx.history.subscribe::<String>(&group, from).await?;
        Ok(events.map(|event| {
            event.map(|event| match event {
                HistoryEvent::Header(h) => RecoveryItem::Header(contract::RecoveryHeader {
                    recovered: h.recovered,
                    epoch: h.epoch,
                    offset: h.offset,
                }),
                HistoryEvent::Item(item) => RecoveryItem::Message(contract::RecoveryMessage {
                    offset: item.offset,
                    message: item.message,
                }),
            })
        }))
    }
}

/// A hub whose every connection fails to start.
struct Uncreatable;

#[hub(contract = contract::Uncreatable)]
impl Uncreatable {
    #[hub(on_connected)]
    fn refuse(&self) -> Result<(), HubError> {
        Err(invalid_operation("This hub cannot be created.".into()))
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

/// The reference server's HubWithAuthorization (`/authorizedhub`): every connection needs a
/// bearer token from `/generateJwtToken`.
struct HubWithAuthorization;

/// Short JWT claim names and the long names ASP.NET Core gives them.
const CLAIM_ALIASES: [(&str, &str); 3] = [
    ("nameid", claim_types::NAME_IDENTIFIER),
    ("role", claim_types::ROLE),
    ("unique_name", claim_types::NAME),
];

#[hub(authorize, contract = contract::HubWithAuthorization)]
impl HubWithAuthorization {
    fn echo(&self, message: String) -> String {
        message
    }

    fn get_user_name_identifier(&self, cx: &HubContext<Self>) -> String {
        claim_of(cx, "nameid")
    }

    fn get_user_claim(&self, cx: &HubContext<Self>, kind: String) -> String {
        claim_of(cx, &kind)
    }
}

/// A claim's value by its short or long name, or "".
fn claim_of<H: Hub>(cx: &HubContext<H>, kind: &str) -> String {
    let Some(identity) = cx.identity() else {
        return String::new();
    };
    let alias = CLAIM_ALIASES.iter().find_map(|&(short, long)| {
        if kind == short {
            Some(long)
        } else if kind.eq_ignore_ascii_case(long) {
            Some(short)
        } else {
            None
        }
    });
    identity
        .claim(kind)
        .or_else(|| alias.and_then(|a| identity.claim(a)))
        .unwrap_or_default()
        .to_string()
}

/// The key `/generateJwtToken` signs with and `/authorizedhub` checks: random per process.
struct JwtKey([u8; 32]);

impl JwtKey {
    /// How long a token from `/generateJwtToken` is valid.
    const LIFETIME_SECS: u64 = 5;

    /// A token for `testuser` (HS256), as the reference server issues.
    fn token(&self) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "nameid": "testuser",
            "iss": "SignalRTestServer",
            "aud": "SignalRTests",
            "iat": now,
            "exp": now + Self::LIFETIME_SECS,
        });
        let key = jsonwebtoken::EncodingKey::from_secret(&self.0);
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .expect("an HS256 token always encodes")
    }

    /// Checks the tokens: signature and expiry, with no leeway (a token lives exactly its 5 s,
    /// as on the reference server); issuer and audience are not checked there either.
    fn authenticator(&self) -> JwtAuthenticator {
        JwtAuthenticator::hs256(self.0).leeway(std::time::Duration::ZERO)
    }
}

/// `/echo`: a raw connection writing back every frame, only for requests carrying `testCookie`.
async fn echo(mut connection: Connection) {
    if connection.request().cookie("testCookie").is_none() {
        return;
    }
    let sender = connection.sender();
    while let Some(frame) = connection.recv().await {
        if sender.send(frame).await.is_err() {
            break;
        }
    }
}

/// The test-only identity of BroadcastHub: the `user` query parameter.
fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The interop server: the contract the official SignalR clients' functional tests expect.
#[derive(clap::Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: hub_examples::Args,
    /// Which server hosts the hubs: hub's built-in warp server, or axum with hub's tower
    /// service (no TLS under axum).
    #[arg(long, value_enum, default_value_t = Host::Warp)]
    host: Host,
    /// How long the presence entries of a server that died stay (with --redis, --postgres or --nats): its users
    /// leave their groups within this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = hub_examples::parse_seconds, default_value = "30")]
    presence_ttl: std::time::Duration,
    /// Writes the TypeScript typings of the hubs (`DIR/<HubType>.ts`, for `@microsoft/signalr`)
    /// and exits.
    #[arg(long, value_name = "DIR")]
    emit_typescript: Option<std::path::PathBuf>,
    /// How many messages each `durable-*` group of BroadcastHub keeps.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    history_size: u64,
    /// How long (seconds) a message of a `durable-*` group is kept.
    #[arg(long, value_name = "S", default_value = "300", value_parser = hub_examples::parse_seconds)]
    history_ttl: std::time::Duration,
}

/// `--emit-typescript DIR`: one module per hub type.
fn emit_typescript(dir: &std::path::Path) -> std::io::Result<()> {
    use hub_runtime::typescript::{file_name, module, TypeScript};

    fn write<H: TypeScript>(dir: &std::path::Path) -> std::io::Result<()> {
        let text = module::<H>().map_err(std::io::Error::other)?;
        std::fs::write(dir.join(file_name::<H>()), text)
    }
    std::fs::create_dir_all(dir)?;
    write::<TestHub>(dir)?;
    write::<BroadcastHub>(dir)?;
    write::<HubWithAuthorization>(dir)?;
    write::<Uncreatable>(dir)
}

/// The `--host` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Host {
    /// The built-in server, the hubs as a warp filter beside warp routes.
    Warp,
    /// axum: the hubs as a tower service beside axum handlers.
    Axum,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    hub_examples::init_logging();
    let cli = <Cli as clap::Parser>::parse();
    if let Some(dir) = &cli.emit_typescript {
        return emit_typescript(dir);
    }
    let args = cli.common;
    if cli.host == Host::Axum && args.tls().is_some() {
        eprintln!("{PROGRAM}: --host axum serves plain HTTP only; drop --tls-cert/--tls-key");
        std::process::exit(2);
    }

    let jwt_key: &'static JwtKey = Box::leak(Box::new(JwtKey(rand::random())));
    let options = args.hub_options(HubOptions {
        detailed_errors: true,
        stateful_reconnect: true,
        ..Default::default()
    });
    let builder = hub_examples::builder(&args, PROGRAM).await;
    let builder = hub_examples::with_presence(builder, &args, cli.presence_ttl, PROGRAM).await;
    let durable = HistoryRule::prefix("durable-")
        .max_len(usize::try_from(cli.history_size).unwrap_or(usize::MAX))
        .ttl(cli.history_ttl);
    let server = hub_examples::with_history(builder, &args, PROGRAM)
        .await
        .options(options)
        .cors(Cors::localhost())
        .hub("/testhub", TestHub)
        .hub_with(
            "/testhub-nowebsockets",
            TestHub,
            EndpointOptions::new().disable(TransportKind::WebSockets),
        )
        .hub_with(
            "/broadcast",
            BroadcastHub,
            EndpointOptions::new().authenticator(user_from_query).history(durable),
        )
        .hub_with(
            "/authorizedhub",
            HubWithAuthorization,
            EndpointOptions::new().authenticator(jwt_key.authenticator()),
        )
        .hub("/uncreatable", Uncreatable)
        .connection("/echo", echo)
        .build();

    let (listener, addr) = hub_runtime::server::bind(args.addr).await?;
    println!("listening on {}://{addr}", args.scheme());
    match cli.host {
        Host::Warp => {
            let routes = routes(&server, jwt_key);
            hub_examples::serve(&args, server, listener, routes).await
        }
        Host::Axum => axum_host::serve(server, listener, jwt_key).await,
    }
}

/// The test endpoints beside the hubs (the contract's `/generateJwtToken`, `/redirect`,
/// `/echoredirect`, `/bad-negotiate`, `/clientresult/{id}`), and the test cookies on every
/// negotiate.
fn routes(server: &HubServer, jwt_key: &'static JwtKey) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let lower_path = || warp::path::full().map(|p: warp::path::FullPath| p.as_str().to_lowercase());
    let query = || warp::query::raw().or(warp::any().map(String::new)).unify();
    let generate_jwt_token = warp::get()
        .and(lower_path())
        .and_then(|path: String| async move {
            if path.trim_end_matches('/') == "/generatejwttoken" {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .map(move |()| reply(200, "text/plain", jwt_key.token()));
    let redirects = Arc::new(AtomicUsize::new(0));
    let redirect = lower_path()
        .and(query())
        .and_then(|path: String, query: String| async move {
            if path == "/redirect" || path.starts_with("/redirect/") {
                Ok(query)
            } else {
                Err(warp::reject::not_found())
            }
        })
        .map(move |query: String| {
            let n = redirects.fetch_add(1, Ordering::SeqCst) + 1;
            let base = form_urlencoded_value(&query, "baseUrl").unwrap_or_default();
            let body = serde_json::json!({ "url": format!("{base}/testHub?numRedirects={n}") }).to_string();
            reply(200, "application/json", body)
        });
    let echo_redirect = warp::path::full()
        .and(query())
        .and_then(|path: warp::path::FullPath, query: String| async move {
            let lower = path.as_str().to_lowercase();
            if lower.starts_with("/echoredirect") {
                let rest = &path.as_str()["/echoredirect".len()..];
                Ok(with_query(&format!("/echo{rest}"), &query))
            } else {
                Err(warp::reject::not_found())
            }
        })
        .map(|location: String| {
            let mut response = reply(307, "text/plain", String::new());
            if let Ok(value) = location.parse() {
                response.headers_mut().insert(warp::http::header::LOCATION, value);
            }
            response
        });
    let bad_negotiate = lower_path()
        .and_then(|path: String| async move {
            if path.starts_with("/bad-negotiate") {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .map(|()| reply(400, "text/plain", "Some response from server".into()));

    // Every negotiate also sets the test cookies.
    let hubs = lower_path()
        .and(server.filter())
        .map(|path: String, mut response: warp::reply::Response| {
            if path.trim_end_matches('/').ends_with("/negotiate") && response.status().is_success() {
                let headers = response.headers_mut();
                for cookie in [
                    "testCookie=testValue; Path=/",
                    "testCookie2=testValue2; Path=/",
                    "expiredCookie=doesntmatter; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                ] {
                    if let Ok(value) = cookie.parse() {
                        headers.append(warp::http::header::SET_COOKIE, value);
                    }
                }
            }
            response
        });
    let test_hub = server.handle::<TestHub>().expect("TestHub is mapped");
    let client_result = warp::get()
        .and(warp::path!("clientresult" / String))
        .then(move |id: String| {
            let test_hub = test_hub.clone();
            async move {
                let body = match test_hub.clients.client(id).result().await {
                    Ok(value) => value.to_string(),
                    Err(error) => error.to_string(),
                };
                reply(200, "text/plain", body)
            }
        });
    hubs.or(redirect)
        .unify()
        .or(echo_redirect)
        .unify()
        .or(bad_negotiate)
        .unify()
        .or(client_result)
        .unify()
        .or(generate_jwt_token)
        .unify()
        .boxed()
}

fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
