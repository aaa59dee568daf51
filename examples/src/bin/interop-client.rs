//! Drives the interop contract (`shared/reference/interop-contract.md`) through the typed Rust
//! client: hub-client's `HubConnection` under the proxies and handler traits generated from
//! `hub_examples::interop_contract`, the same definitions the `interop` server is checked
//! against.
//!
//! Start a server (`cargo run --release --bin interop -- --addr 127.0.0.1:5000`), then
//! `cargo run --release --bin interop-client -- --url http://127.0.0.1:5000`. It runs every
//! check on the five transport × protocol pairs (or those `--transport` / `--protocol` narrow
//! it to), prints one line per check and last `N passed, M failed`; the exit status is 0 only
//! when nothing failed.

use std::process::ExitCode;

use clap::Parser;
use hub_client::{Protocol, TransportKind};

#[path = "interop_client/auth.rs"]
mod auth;
#[path = "interop_client/broadcast.rs"]
mod broadcast;
#[path = "interop_client/client_results.rs"]
mod client_results;
#[path = "interop_client/http.rs"]
mod http;
#[path = "interop_client/presence.rs"]
mod presence;
#[path = "interop_client/recovery.rs"]
mod recovery;
#[path = "interop_client/report.rs"]
mod report;
#[path = "interop_client/session.rs"]
mod session;
#[path = "interop_client/stateful.rs"]
mod stateful;
#[path = "interop_client/streams.rs"]
mod streams;
#[path = "interop_client/test_hub.rs"]
mod test_hub;

use report::Report;
use session::{ResultAnswer, TestHubSession};

/// Checks a SignalR server against the interop contract with the typed Rust client (hub-client).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The server, e.g. http://127.0.0.1:5000 (the hubs' paths are added to it).
    #[arg(long, value_name = "http://HOST:PORT", value_parser = parse_base_url)]
    url: String,
    /// Only this transport [default: WebSockets, ServerSentEvents and LongPolling].
    #[arg(long, value_enum, ignore_case = true)]
    transport: Option<TransportArg>,
    /// Only this hub protocol [default: json and messagepack].
    #[arg(long, value_enum, ignore_case = true)]
    protocol: Option<ProtocolArg>,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TransportArg {
    #[value(name = "WebSockets")]
    WebSockets,
    #[value(name = "ServerSentEvents")]
    ServerSentEvents,
    #[value(name = "LongPolling")]
    LongPolling,
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolArg {
    #[value(name = "json")]
    Json,
    #[value(name = "messagepack")]
    MessagePack,
}

/// One transport with one hub protocol: what every check runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub transport: TransportKind,
    pub protocol: Protocol,
}

impl Pair {
    /// `WebSockets/json`, `LongPolling/messagepack`, …
    pub fn label(self) -> String {
        let protocol = match self.protocol {
            Protocol::Json => "json",
            Protocol::MessagePack => "messagepack",
            _ => "?",
        };
        format!("{}/{protocol}", self.transport.name())
    }
}

/// Every transport with every protocol it carries (Server-Sent Events are text only).
const PAIRS: [Pair; 5] = [
    Pair {
        transport: TransportKind::WebSockets,
        protocol: Protocol::Json,
    },
    Pair {
        transport: TransportKind::WebSockets,
        protocol: Protocol::MessagePack,
    },
    Pair {
        transport: TransportKind::ServerSentEvents,
        protocol: Protocol::Json,
    },
    Pair {
        transport: TransportKind::LongPolling,
        protocol: Protocol::Json,
    },
    Pair {
        transport: TransportKind::LongPolling,
        protocol: Protocol::MessagePack,
    },
];

impl Cli {
    /// The pairs `--transport` and `--protocol` leave; an error for a pair no server offers.
    fn pairs(&self) -> Result<Vec<Pair>, String> {
        let transport = self.transport.map(|t| match t {
            TransportArg::WebSockets => TransportKind::WebSockets,
            TransportArg::ServerSentEvents => TransportKind::ServerSentEvents,
            TransportArg::LongPolling => TransportKind::LongPolling,
        });
        let protocol = self.protocol.map(|p| match p {
            ProtocolArg::Json => Protocol::Json,
            ProtocolArg::MessagePack => Protocol::MessagePack,
        });
        let pairs: Vec<Pair> = PAIRS
            .into_iter()
            .filter(|p| transport.is_none_or(|t| p.transport == t) && protocol.is_none_or(|q| p.protocol == q))
            .collect();
        if pairs.is_empty() {
            return Err(
                "Server-Sent Events carry text only: use --protocol json with --transport ServerSentEvents".into(),
            );
        }
        Ok(pairs)
    }
}

/// `--url`: an absolute `http://` URL, without a trailing slash.
fn parse_base_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("http://")
        .ok_or_else(|| format!("needs http://HOST:PORT, got '{value}'"))?;
    if rest.trim_end_matches('/').is_empty() || rest.contains(['?', '#']) {
        return Err(format!("needs http://HOST:PORT, got '{value}'"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// What every check needs: the server, a name unique to this run, and the HTTP client for the
/// contract's plain endpoints.
pub struct Target {
    /// `http://HOST:PORT`.
    pub base_url: String,
    /// Part of every group, user and message name this run makes up, so that two runs against
    /// one server cannot see each other's traffic.
    pub run_id: String,
    pub http: http::HttpClient,
}

impl Target {
    /// The URL of a hub path (`/testhub`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Runs every check of one pair.
async fn run_pair(report: &mut Report, target: &Target, pair: Pair) {
    let answer = ResultAnswer::Value(client_results::CLIENT_RESULT);
    let session = report
        .check(
            pair,
            "connect to /testhub",
            TestHubSession::start(target, pair, Some(answer)),
        )
        .await
        .ok_or_else(|| "not run: the connection to /testhub did not start".to_string());
    test_hub::run(report, pair, &session).await;
    streams::run(report, pair, &session).await;
    client_results::run(report, target, pair, &session).await;
    if let Ok(session) = session {
        session.stop().await;
    }
    broadcast::run(report, target, pair).await;
    presence::run(report, target, pair).await;
    recovery::run(report, target, pair).await;
    auth::run(report, target, pair).await;
    stateful::run(report, target, pair).await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let pairs = match cli.pairs() {
        Ok(pairs) => pairs,
        Err(error) => {
            eprintln!("interop-client: {error}");
            return ExitCode::from(2);
        }
    };
    let target = Target {
        base_url: cli.url.clone(),
        run_id: format!("{:08x}", rand::random::<u32>()),
        http: http::HttpClient::new(),
    };
    let mut report = Report::default();
    for pair in pairs {
        run_pair(&mut report, &target, pair).await;
    }
    report::say(format_args!("{} passed, {} failed", report.passed, report.failed));
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("interop-client").chain(args.iter().copied()))
    }

    #[test]
    fn all_five_pairs_unless_narrowed() {
        let cli = parse(&["--url", "http://127.0.0.1:5000/"]).unwrap();
        assert_eq!(cli.url, "http://127.0.0.1:5000");
        assert_eq!(cli.pairs().unwrap(), PAIRS);
        let labels: Vec<String> = PAIRS.iter().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            [
                "WebSockets/json",
                "WebSockets/messagepack",
                "ServerSentEvents/json",
                "LongPolling/json",
                "LongPolling/messagepack"
            ]
        );
    }

    #[test]
    fn transport_and_protocol_narrow_the_pairs() {
        let only = |args: &[&str]| -> Vec<String> {
            let mut all = vec!["--url", "http://h:1"];
            all.extend_from_slice(args);
            parse(&all)
                .unwrap()
                .pairs()
                .unwrap()
                .iter()
                .map(|p| p.label())
                .collect()
        };
        assert_eq!(
            only(&["--transport", "LongPolling"]),
            ["LongPolling/json", "LongPolling/messagepack"]
        );
        assert_eq!(
            only(&["--protocol", "messagepack"]),
            ["WebSockets/messagepack", "LongPolling/messagepack"]
        );
        assert_eq!(only(&["--transport", "ServerSentEvents"]), ["ServerSentEvents/json"]);
        assert_eq!(
            only(&["--transport", "websockets", "--protocol", "JSON"]),
            ["WebSockets/json"]
        );
        let sse_msgpack = parse(&[
            "--url",
            "http://h:1",
            "--transport",
            "ServerSentEvents",
            "--protocol",
            "messagepack",
        ]);
        assert!(sse_msgpack.unwrap().pairs().is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            &[][..],
            &["--url", "127.0.0.1:5000"],
            &["--url", "https://127.0.0.1:5000"],
            &["--url", "http://"],
            &["--url", "http://h:1?x=1"],
            &["--url", "http://h:1", "--transport", "Smoke"],
            &["--url", "http://h:1", "--protocol", "xml"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
