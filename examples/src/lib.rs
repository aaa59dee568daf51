//! Shared bits of the example binaries.

use std::net::SocketAddr;

/// Command-line options every example takes.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen (`--addr HOST:PORT`, default 127.0.0.1:5000).
    pub addr: SocketAddr,
    /// A Redis backplane to join (`--redis redis://HOST:PORT`), so several servers act as one.
    pub redis: Option<String>,
    /// Serve HTTPS/WSS with this PEM certificate chain and key (`--tls-cert F --tls-key F`).
    pub tls: Option<(String, String)>,
    /// Test timing (`--short-timeouts`): see [`Args::hub_options`].
    pub short_timeouts: bool,
    /// How long a long poll waits for data before it answers empty (`--long-poll-timeout
    /// SECONDS`; the server's default, 90 s, when absent).
    pub long_poll_timeout: Option<std::time::Duration>,
}

impl Args {
    /// The server's base URL for an address.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
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
    match &args.tls {
        Some((cert, key)) => {
            let tls = hub_runtime::server::TlsConfig::from_pem_files(cert, key)?;
            server.serve_tls_with(listener, tls, routes, signal).await;
        }
        None => server.serve_with(listener, routes, signal).await,
    }
    Ok(())
}

/// Parses `--addr HOST:PORT`, `--redis URL`, `--tls-cert F --tls-key F`, `--short-timeouts`,
/// `--long-poll-timeout SECONDS` (and `--help`), exiting with a message on bad input.
pub fn parse_args(program: &str) -> Args {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 5000).into();
    let mut redis = None;
    let (mut cert, mut key) = (None, None);
    let mut short_timeouts = false;
    let mut long_poll_timeout = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().unwrap_or_default();
                addr = value.parse().unwrap_or_else(|_| {
                    eprintln!("{program}: --addr needs HOST:PORT, got '{value}'");
                    std::process::exit(2);
                });
            }
            "--redis" => {
                let value = args.next().unwrap_or_default();
                if value.is_empty() {
                    eprintln!("{program}: --redis needs a URL such as redis://127.0.0.1:6379");
                    std::process::exit(2);
                }
                redis = Some(value);
            }
            "--tls-cert" => cert = args.next(),
            "--tls-key" => key = args.next(),
            "--short-timeouts" => short_timeouts = true,
            "--long-poll-timeout" => {
                let value = args.next().unwrap_or_default();
                match value.parse::<f64>() {
                    Ok(seconds) if seconds > 0.0 && seconds.is_finite() => {
                        long_poll_timeout = Some(std::time::Duration::from_secs_f64(seconds))
                    }
                    _ => {
                        eprintln!("{program}: --long-poll-timeout needs a number of seconds, got '{value}'");
                        std::process::exit(2);
                    }
                }
            }
            "--help" | "-h" => {
                println!(
                    "usage: {program} [--addr HOST:PORT] [--redis redis://HOST:PORT] [--tls-cert PEM --tls-key PEM] [--short-timeouts] [--long-poll-timeout SECONDS]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("{program}: unknown argument '{other}' (try --help)");
                std::process::exit(2);
            }
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            eprintln!("{program}: --tls-cert and --tls-key go together");
            std::process::exit(2);
        }
    };
    Args {
        addr,
        redis,
        tls,
        short_timeouts,
        long_poll_timeout,
    }
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

/// Operations endpoints: `GET /metrics` (Prometheus text format: the counters listed in
/// `hub_runtime::observability`) and `GET /health` (200 `{"status":"ok",...}` while serving,
/// 503 while shutting down; `connections`, `groups` and `users` count the open connections,
/// the groups with members and the users with connections on this server, summed over hubs).
pub fn operations(server: hub_runtime::HubServer) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::Filter;
    let metrics = warp::get().and(warp::path!("metrics")).map(|| {
        let body = prometheus().map(|p| p.render()).unwrap_or_default();
        reply(200, "text/plain; version=0.0.4", body)
    });
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

/// Starts a server builder, joined to the Redis backplane when `--redis` was given. Installs
/// the metrics recorder first.
pub async fn builder(args: &Args, program: &str) -> hub_runtime::HubServerBuilder {
    let _ = prometheus();
    let builder = hub_runtime::HubServer::builder();
    match &args.redis {
        None => builder,
        Some(url) => match hub_runtime::backplane::RedisBackplane::connect(url).await {
            Ok(redis) => {
                eprintln!(
                    "{program}: joined the Redis backplane at {url} as {}",
                    redis.server_name()
                );
                builder.backplane(redis)
            }
            Err(e) => {
                eprintln!("{program}: cannot use the Redis backplane at {url}: {e}");
                std::process::exit(1);
            }
        },
    }
}
