//! Shared bits of the example binaries.

use std::net::SocketAddr;

/// Command-line options every example takes.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen (`--addr HOST:PORT`, default 127.0.0.1:5000).
    pub addr: SocketAddr,
    /// A Redis backplane to join (`--redis redis://HOST:PORT`), so several servers act as one.
    pub redis: Option<String>,
}

/// Parses `--addr HOST:PORT` (and `--help`), exiting with a message on bad input.
pub fn parse_args(program: &str) -> Args {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 5000).into();
    let mut redis = None;
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
            "--help" | "-h" => {
                println!("usage: {program} [--addr HOST:PORT] [--redis redis://HOST:PORT]");
                std::process::exit(0);
            }
            other => {
                eprintln!("{program}: unknown argument '{other}' (try --help)");
                std::process::exit(2);
            }
        }
    }
    Args { addr, redis }
}

/// Logs to stderr; quiet (warnings) unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Starts a server builder, joined to the Redis backplane when `--redis` was given.
pub async fn builder(args: &Args, program: &str) -> hub_runtime::HubServerBuilder {
    let builder = hub_runtime::HubServer::builder();
    match &args.redis {
        None => builder,
        Some(url) => match hub_runtime::backplane::RedisBackplane::connect(url).await {
            Ok(redis) => {
                eprintln!("{program}: joined the Redis backplane at {url} as {}", redis.server_name());
                builder.backplane(redis)
            }
            Err(e) => {
                eprintln!("{program}: cannot use the Redis backplane at {url}: {e}");
                std::process::exit(1);
            }
        },
    }
}
