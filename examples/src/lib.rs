//! Shared bits of the example binaries.

use std::net::SocketAddr;

/// Command-line options every example takes.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen (`--addr HOST:PORT`, default 127.0.0.1:5000).
    pub addr: SocketAddr,
}

/// Parses `--addr HOST:PORT` (and `--help`), exiting with a message on bad input.
pub fn parse_args(program: &str) -> Args {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 5000).into();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().unwrap_or_default();
                addr = value.parse().unwrap_or_else(|_| {
                    eprintln!("{program}: --addr needs HOST:PORT, got '{value}'");
                    std::process::exit(2);
                });
            }
            "--help" | "-h" => {
                println!("usage: {program} [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => {
                eprintln!("{program}: unknown argument '{other}' (try --help)");
                std::process::exit(2);
            }
        }
    }
    Args { addr }
}

/// Logs to stderr; quiet (warnings) unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
