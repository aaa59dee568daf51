//! Shared bits of the example binaries.

pub mod interop_contract;

use std::net::SocketAddr;

/// Command-line options every example takes. Each binary flattens this into its own
/// [`clap::Parser`] and adds its own flags:
///
/// ```
/// use clap::Parser;
///
/// /// A demo server.
/// #[derive(Parser)]
/// #[command(version)]
/// struct Cli {
///     #[command(flatten)]
///     common: hub_examples::Args,
///     /// Something only this binary takes.
///     #[arg(long, default_value_t = 3)]
///     rounds: u32,
/// }
///
/// let cli = Cli::parse_from(["demo", "--addr", "127.0.0.1:0", "--short-timeouts"]);
/// assert_eq!(cli.common.addr.port(), 0);
/// assert!(cli.common.short_timeouts);
/// assert_eq!(cli.rounds, 3);
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Join a Redis backplane, so several servers act as one.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url, group = "backplane")]
    pub redis: Option<String>,
    /// Join a PostgreSQL backplane (LISTEN/NOTIFY), e.g. postgres://user@host:5432/db.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url, group = "backplane")]
    pub postgres: Option<String>,
    /// Join a NATS backplane, e.g. nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url, group = "backplane")]
    pub nats: Option<String>,
    /// Serve HTTPS/WSS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<String>,
    /// The PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<String>,
    /// Test timing: disconnect timeout 2 s, reconnect grace 2 s, client-result timeout 2 s,
    /// keep-alive 1 s, client timeout 4 s.
    #[arg(long)]
    pub short_timeouts: bool,
    /// How long a long poll waits for data before it answers empty [default: 90].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub long_poll_timeout: Option<std::time::Duration>,
}

/// `--redis`, `--postgres`, `--nats`: a non-empty URL.
fn parse_redis_url(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("needs a URL such as redis://127.0.0.1:6379, postgres://postgres@127.0.0.1:5432/postgres or nats://127.0.0.1:4222".into());
    }
    Ok(value.to_string())
}

/// A positive, finite number of seconds (fractions allowed).
pub fn parse_seconds(value: &str) -> Result<std::time::Duration, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(std::time::Duration::from_secs_f64(seconds)),
        _ => Err(format!("needs a positive number of seconds, got '{value}'")),
    }
}

impl Args {
    /// The certificate chain and key files when `--tls-cert`/`--tls-key` were given (clap
    /// makes sure they come together).
    pub fn tls(&self) -> Option<(&str, &str)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    /// The server's URL scheme: `https` with `--tls-cert`/`--tls-key`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls().is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `base` with the timing flags applied. `--short-timeouts` makes lifetimes short enough
    /// for leak tests: disconnect timeout 2 s, reconnect grace 2 s, client-result timeout 2 s,
    /// keep-alive 1 s and client timeout 4 s. `--long-poll-timeout` sets the long-poll timeout.
    /// Without flags, `base` is returned unchanged.
    pub fn hub_options(&self, base: hub_runtime::HubOptions) -> hub_runtime::HubOptions {
        use std::time::Duration;
        let base = hub_runtime::HubOptions {
            long_poll_timeout: self.long_poll_timeout.unwrap_or(base.long_poll_timeout),
            ..base
        };
        if !self.short_timeouts {
            return base;
        }
        hub_runtime::HubOptions {
            disconnect_timeout: Duration::from_secs(2),
            reconnect_grace: Duration::from_secs(2),
            client_result_timeout: Duration::from_secs(2),
            keep_alive_interval: Duration::from_secs(1),
            client_timeout: Duration::from_secs(4),
            ..base
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, over TLS when `--tls-cert`/`--tls-key` were given.
pub async fn serve<F, R>(
    args: &Args,
    server: hub_runtime::HubServer,
    listener: tokio::net::TcpListener,
    routes: F,
) -> std::io::Result<()>
where
    F: warp::Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    R: warp::Reply,
{
    use warp::Filter;
    let signal = hub_runtime::server::shutdown_signal();
    let routes = operations(server.clone()).or(routes);
    match args.tls() {
        Some((cert, key)) => {
            let tls = hub_runtime::server::TlsConfig::from_pem_files(cert, key)?;
            server.serve_tls_with(listener, tls, routes, signal).await;
        }
        None => server.serve_with(listener, routes, signal).await,
    }
    Ok(())
}

/// Logs to stderr; quiet (warnings) unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

static PROMETHEUS: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::OnceLock::new();

/// Installs the Prometheus recorder (once), before anything registers a counter.
fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    PROMETHEUS
        .get_or_init(
            || match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    eprintln!("metrics are off: {e}");
                    None
                }
            },
        )
        .as_ref()
}

/// The metrics in the Prometheus text format (empty when the recorder could not be installed).
pub fn render_metrics() -> String {
    prometheus().map(|p| p.render()).unwrap_or_default()
}

/// Operations endpoints: `GET /metrics` (Prometheus text format: the counters listed in
/// `hub_runtime::observability`) and `GET /health` (200 `{"status":"ok",...}` while serving,
/// 503 while shutting down; `connections`, `groups` and `users` count the open connections,
/// the groups with members and the users with connections on this server, summed over hubs).
pub fn operations(server: hub_runtime::HubServer) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::Filter;
    let metrics = warp::get()
        .and(warp::path!("metrics"))
        .map(|| reply(200, "text/plain; version=0.0.4", render_metrics()));
    let health = warp::get().and(warp::path!("health")).map(move || {
        let stopping = server.is_stopping();
        let body = serde_json::json!({
            "status": if stopping { "stopping" } else { "ok" },
            "connections": server.connection_count(),
            "groups": server.group_count(),
            "users": server.user_count(),
        });
        reply(if stopping { 503 } else { 200 }, "application/json", body.to_string())
    });
    metrics.or(health).unify().boxed()
}

/// A response with a status, a content type and a body.
pub fn reply(status: u16, content_type: &str, body: String) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.into());
    *response.status_mut() = warp::http::StatusCode::from_u16(status).unwrap_or(warp::http::StatusCode::OK);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(warp::http::header::CONTENT_TYPE, value);
    }
    response
}

/// Starts a server builder, joined to the backplane `--redis`, `--postgres` or `--nats` names
/// (at most one: clap refuses two). Installs the metrics recorder first.
pub async fn builder(args: &Args, program: &str) -> hub_runtime::HubServerBuilder {
    use hub_runtime::backplane::{NatsBackplane, PostgresBackplane, RedisBackplane};
    let _ = prometheus();
    let builder = hub_runtime::HubServer::builder();
    let joined = if let Some(url) = &args.redis {
        RedisBackplane::connect(url)
            .await
            .map(|b| ("Redis", url, b.server_name().to_string(), builder_with(b)))
    } else if let Some(url) = &args.postgres {
        PostgresBackplane::connect(url)
            .await
            .map(|b| ("PostgreSQL", url, b.server_name().to_string(), builder_with(b)))
    } else if let Some(url) = &args.nats {
        NatsBackplane::connect(url)
            .await
            .map(|b| ("NATS", url, b.server_name().to_string(), builder_with(b)))
    } else {
        return builder;
    };
    match joined {
        Ok((name, url, server, with)) => {
            eprintln!("{program}: joined the {name} backplane at {url} as {server}");
            with(builder)
        }
        Err(e) => {
            eprintln!("{program}: cannot use the backplane: {e}");
            std::process::exit(1);
        }
    }
}

/// Keeps durable groups' histories on the `--redis` backplane's Redis, the `--postgres`
/// backplane's PostgreSQL, or the `--nats` backplane's NATS (JetStream: nats-server runs with
/// `-js`), when one is given; in memory otherwise.
pub async fn with_history(
    builder: hub_runtime::HubServerBuilder,
    args: &Args,
    program: &str,
) -> hub_runtime::HubServerBuilder {
    if let Some(url) = &args.redis {
        return match hub_runtime::history::RedisHistory::connect(url).await {
            Ok(history) => builder.history(history),
            Err(e) => {
                eprintln!("{program}: cannot keep history in Redis: {e}");
                std::process::exit(1);
            }
        };
    }
    if let Some(url) = &args.postgres {
        return match hub_runtime::history::PostgresHistory::connect(url).await {
            Ok(history) => builder.history(history),
            Err(e) => {
                eprintln!("{program}: cannot keep history in PostgreSQL: {e}");
                std::process::exit(1);
            }
        };
    }
    if let Some(url) = &args.nats {
        return match hub_runtime::history::NatsHistory::connect(url).await {
            Ok(history) => builder.history(history),
            Err(e) => {
                eprintln!("{program}: cannot keep history in NATS JetStream: {e}");
                std::process::exit(1);
            }
        };
    }
    builder
}

/// Keeps presence (who is in which group, who is online) in the `--redis` backplane's Redis,
/// the `--postgres` backplane's PostgreSQL or the `--nats` backplane's NATS (JetStream) when one
/// is given, each server's entries outliving it at most `ttl`; in memory otherwise.
pub async fn with_presence(
    builder: hub_runtime::HubServerBuilder,
    args: &Args,
    ttl: std::time::Duration,
    program: &str,
) -> hub_runtime::HubServerBuilder {
    use hub_runtime::presence::{
        NatsPresence, NatsPresenceOptions, PostgresPresence, PostgresPresenceOptions, RedisPresence,
        RedisPresenceOptions,
    };
    if let Some(url) = &args.redis {
        let options = RedisPresenceOptions {
            ttl,
            ..Default::default()
        };
        return match RedisPresence::connect_with(url, options).await {
            Ok(presence) => builder.presence(presence),
            Err(e) => {
                eprintln!("{program}: cannot keep presence in Redis: {e}");
                std::process::exit(1);
            }
        };
    }
    if let Some(url) = &args.postgres {
        let options = PostgresPresenceOptions {
            ttl,
            ..Default::default()
        };
        return match PostgresPresence::connect_with(url, options).await {
            Ok(presence) => builder.presence(presence),
            Err(e) => {
                eprintln!("{program}: cannot keep presence in PostgreSQL: {e}");
                std::process::exit(1);
            }
        };
    }
    if let Some(url) = &args.nats {
        let options = NatsPresenceOptions {
            ttl,
            ..Default::default()
        };
        return match NatsPresence::connect_with(url, options).await {
            Ok(presence) => builder.presence(presence),
            Err(e) => {
                eprintln!("{program}: cannot keep presence in NATS (JetStream on?): {e}");
                std::process::exit(1);
            }
        };
    }
    builder
}

/// Adds `backplane` to a builder later (the three backplane types are different types).
type WithBackplane = Box<dyn FnOnce(hub_runtime::HubServerBuilder) -> hub_runtime::HubServerBuilder>;

fn builder_with(backplane: impl hub_runtime::backplane::Backplane) -> WithBackplane {
    Box::new(move |builder| builder.backplane(backplane))
}

/// The official SignalR browser client (`@microsoft/signalr`'s `dist/browser/signalr.min.js`,
/// from the pinned npm package), embedded so the example pages load nothing from elsewhere.
pub const SIGNALR_BROWSER_JS: &str = include_str!(env!("SIGNALR_BROWSER_JS"));

/// `GET /{name}` (`""` for `GET /`) answering `body` as `content_type`.
pub fn asset(
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::Filter;
    let path = warp::path::full()
        .and_then(move |full: warp::path::FullPath| async move {
            if full.as_str().strip_prefix('/') == Some(name) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one();
    warp::get()
        .and(path)
        .map(move || reply_static(body, content_type))
        .boxed()
}

/// A one-page web app embedded in an example binary: its `index.html`, one script and one
/// stylesheet, served beside the official browser client.
pub struct WebPage {
    /// `GET /`.
    pub index_html: &'static str,
    /// The script's file name (`chat.js`).
    pub script_name: &'static str,
    /// The script.
    pub script: &'static str,
    /// The stylesheet's file name (`chat.css`).
    pub style_name: &'static str,
    /// The stylesheet.
    pub style: &'static str,
}

impl WebPage {
    /// `/`, the script, the stylesheet and `/signalr.min.js`, as one filter.
    pub fn routes(&self) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
        use warp::Filter;
        asset("", self.index_html, "text/html; charset=utf-8")
            .or(asset(self.script_name, self.script, "text/javascript; charset=utf-8"))
            .unify()
            .or(asset(self.style_name, self.style, "text/css; charset=utf-8"))
            .unify()
            .or(signalr_client())
            .unify()
            .boxed()
    }
}

/// `GET /signalr.min.js`: the embedded official browser client.
pub fn signalr_client() -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    asset("signalr.min.js", SIGNALR_BROWSER_JS, "text/javascript; charset=utf-8")
}

fn reply_static(body: &'static str, content_type: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::Args;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        common: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("example").chain(args.iter().copied())).map(|c| c.common)
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).expect("no flags is fine");
        assert_eq!(args.addr, ([127, 0, 0, 1], 5000).into());
        assert_eq!(args.redis, None);
        assert_eq!(args.tls(), None);
        assert_eq!(args.scheme(), "http");
        assert!(!args.short_timeouts);
        let base = hub_runtime::HubOptions::default();
        let options = args.hub_options(base.clone());
        assert_eq!(options.long_poll_timeout, base.long_poll_timeout);
        assert_eq!(options.client_result_timeout, base.client_result_timeout);
    }

    #[test]
    fn every_flag() {
        let args = parse(&[
            "--addr",
            "0.0.0.0:0",
            "--redis",
            "redis://127.0.0.1:6379",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--short-timeouts",
            "--long-poll-timeout",
            "1.5",
        ])
        .expect("valid flags");
        assert_eq!(args.addr, ([0, 0, 0, 0], 0).into());
        assert_eq!(args.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(args.tls(), Some(("cert.pem", "key.pem")));
        assert_eq!(args.scheme(), "https");
        let options = args.hub_options(hub_runtime::HubOptions::default());
        assert_eq!(options.long_poll_timeout, Duration::from_millis(1500));
        assert_eq!(options.client_result_timeout, Duration::from_secs(2));
        assert_eq!(options.disconnect_timeout, Duration::from_secs(2));
        assert_eq!(options.keep_alive_interval, Duration::from_secs(1));
        assert_eq!(options.client_timeout, Duration::from_secs(4));
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            &["--tls-cert", "cert.pem"][..],
            &["--tls-key", "key.pem"],
            &["--long-poll-timeout", "0"],
            &["--long-poll-timeout", "soon"],
            &["--long-poll-timeout", "inf"],
            &["--redis", ""],
            &["--addr", "localhost"],
            &["--unknown"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn help_lists_every_flag() {
        let help = parse(&["--help"]).expect_err("--help stops parsing");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        let text = help.to_string();
        for flag in [
            "--addr <HOST:PORT>",
            "--redis <URL>",
            "--tls-cert <PEM>",
            "--tls-key <PEM>",
            "--short-timeouts",
            "--long-poll-timeout <SECONDS>",
        ] {
            assert!(text.contains(flag), "{flag} missing from:\n{text}");
        }
    }
}
