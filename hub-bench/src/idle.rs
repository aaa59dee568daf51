//! `hub-bench client-idle`: a child process that opens idle client connections and reports
//! how much its own resident memory grew, so the figure is the client's alone (the harness
//! process has histograms, servers' pipes and earlier rounds' freed memory in it).
//!
//! It prints one JSON line: `{"opened":N,"rss_before_bytes":B,"rss_after_bytes":A,"errors":E}`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::client::{self, ConnectSpec};
use crate::scenario::FirstError;
use crate::typed::{self, TypedSpec};
use crate::wire::Proto;

/// Connections opened (and kept) before the first reading, so what is allocated once per
/// process or per worker thread (runtime, allocator arenas, the HTTP client) is not counted.
const WARM_CONNECTIONS: usize = 16;

/// Which client holds the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// The harness's own client (`client.rs`): a bare WebSocket after the handshake.
    HandWritten,
    /// `hub-client`, with its driver task, keep-alive and server timeout running.
    Typed,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::HandWritten => "hand-written",
            ClientKind::Typed => "typed",
        }
    }

    pub fn parse(text: &str) -> Option<ClientKind> {
        match text {
            "hand-written" => Some(ClientKind::HandWritten),
            "typed" => Some(ClientKind::Typed),
            _ => None,
        }
    }
}

/// What the child is asked to do.
#[derive(Debug, Clone)]
pub struct IdleRequest {
    pub server: SocketAddr,
    pub kind: ClientKind,
    pub connections: usize,
    pub proto: Proto,
    pub open_concurrency: usize,
    /// How long the connections are held before the second reading.
    pub hold: Duration,
}

impl IdleRequest {
    /// The child's command line (after the binary).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "client-idle".into(),
            "--addr".into(),
            self.server.to_string(),
            "--client".into(),
            self.kind.name().into(),
            "--connections".into(),
            self.connections.to_string(),
            "--protocol".into(),
            self.proto.name().into(),
            "--open-concurrency".into(),
            self.open_concurrency.to_string(),
            "--hold".into(),
            self.hold.as_secs_f64().to_string(),
        ]
    }

    fn parse(args: &[String]) -> Result<IdleRequest, String> {
        let mut request = IdleRequest {
            server: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            kind: ClientKind::Typed,
            connections: 1000,
            proto: Proto::Json,
            open_concurrency: 64,
            hold: Duration::from_secs(2),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let value = it.next().ok_or(format!("{arg} needs a value"))?;
            let bad = || format!("{arg}: bad value '{value}'");
            match arg.as_str() {
                "--addr" => request.server = value.parse().map_err(|_| bad())?,
                "--client" => request.kind = ClientKind::parse(value).ok_or_else(bad)?,
                "--connections" => request.connections = value.parse().map_err(|_| bad())?,
                "--protocol" => request.proto = Proto::from_name(value).ok_or_else(bad)?,
                "--open-concurrency" => request.open_concurrency = value.parse::<usize>().map_err(|_| bad())?.max(1),
                "--hold" => request.hold = Duration::from_secs_f64(value.parse::<f64>().map_err(|_| bad())?.max(0.0)),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        if request.server.port() == 0 {
            return Err("--addr is required".into());
        }
        Ok(request)
    }
}

/// What the child measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleReport {
    pub opened: usize,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub errors: usize,
}

impl IdleReport {
    /// Resident MiB the client process grew by per 1,000 connections.
    pub fn mib_per_1000(&self) -> Option<f64> {
        (self.opened > 0).then(|| {
            self.rss_after_bytes.saturating_sub(self.rss_before_bytes) as f64 / self.opened as f64 * 1000.0
                / (1024.0 * 1024.0)
        })
    }

    /// The child's output line.
    pub fn to_json(self) -> String {
        serde_json::json!({
            "opened": self.opened,
            "rss_before_bytes": self.rss_before_bytes,
            "rss_after_bytes": self.rss_after_bytes,
            "errors": self.errors,
        })
        .to_string()
    }

    /// Reads the child's output line.
    pub fn from_json(line: &str) -> Option<IdleReport> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(IdleReport {
            opened: v.get("opened")?.as_u64()? as usize,
            rss_before_bytes: v.get("rss_before_bytes")?.as_u64()?,
            rss_after_bytes: v.get("rss_after_bytes")?.as_u64()?,
            errors: v.get("errors")?.as_u64()? as usize,
        })
    }
}

/// The connections a child holds, of either kind.
enum Held {
    HandWritten(Vec<client::Ws>),
    Typed(Vec<hub_client::HubConnection>),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::HandWritten(v) => v.len(),
            Held::Typed(v) => v.len(),
        }
    }
}

async fn open(request: &IdleRequest, count: usize, errors: &FirstError) -> Held {
    match request.kind {
        ClientKind::HandWritten => {
            let spec = ConnectSpec {
                server: request.server,
                sources: vec![Ipv4Addr::LOCALHOST],
                negotiate: true,
                proto: request.proto,
                path: "/broadcast".into(),
                query: String::new(),
                version: 1,
            };
            Held::HandWritten(crate::scenario::open_many(&spec, 0, count, request.open_concurrency, errors).await)
        }
        ClientKind::Typed => {
            let spec = TypedSpec {
                url: format!("http://{}/broadcast", request.server),
                proto: request.proto,
            };
            Held::Typed(typed::open_many(&spec, count, request.open_concurrency, errors).await)
        }
    }
}

fn own_rss() -> u64 {
    crate::sys::process_rss_bytes(std::process::id()).unwrap_or(0)
}

/// Opens the warm-up connections, reads RSS, opens the measured ones, holds them, reads again.
pub async fn measure(request: &IdleRequest) -> (IdleReport, Option<String>) {
    let errors = FirstError::default();
    let warm = open(request, WARM_CONNECTIONS.min(request.connections), &errors).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_bytes = own_rss();
    let held = open(request, request.connections, &errors).await;
    tokio::time::sleep(request.hold).await;
    let rss_after_bytes = own_rss();
    let opened = held.len();
    let report = IdleReport {
        opened,
        rss_before_bytes,
        rss_after_bytes,
        errors: request.connections - opened,
    };
    drop((warm, held));
    (report, errors.take())
}

/// The `client-idle` subcommand.
pub fn main(args: &[String]) -> Result<(), String> {
    let request = IdleRequest::parse(args)?;
    crate::sys::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (report, error) = runtime.block_on(measure(&request));
    if let Some(e) = error {
        eprintln!("hub-bench client-idle: first error: {e}");
    }
    println!("{}", report.to_json());
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}
