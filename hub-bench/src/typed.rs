//! The Rust client (`hub-client`) as a load generator: echo calls through a typed contract
//! proxy, and idle connections held for the memory figure. Its samples carry the same
//! metric names as the hand-written client's (`scenario::echo`), so the two compare directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hub_client::{HubConnection, HubConnectionBuilder, Protocol, TransportKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::scenario::{FirstError, Latencies, Meter, Sample};
use crate::wire::Proto;

/// The part of the interop server's `/broadcast` hub this benchmark calls.
mod contract {
    use hub_protocol::contract::hub_contract;

    /// `Echo` returns its argument.
    #[hub_contract]
    pub trait BenchHub {
        fn echo(&self, message: String) -> String;
    }
}

use contract::BenchHubProxy;

/// How long one echo call may take before the round counts it as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the typed client connects.
#[derive(Debug, Clone)]
pub struct TypedSpec {
    /// The hub URL, `http://127.0.0.1:PORT/broadcast`.
    pub url: String,
    pub proto: Proto,
}

impl TypedSpec {
    fn protocol(&self) -> Protocol {
        match self.proto {
            Proto::Json => Protocol::Json,
            Proto::MessagePack => Protocol::MessagePack,
        }
    }
}

/// Opens one hub-client connection over WebSockets (negotiating first, as the client does by
/// default) within `crate::client::OPEN_TIMEOUT`.
pub async fn open(spec: &TypedSpec) -> Result<HubConnection, String> {
    let connection = HubConnectionBuilder::new(spec.url.clone())
        .protocol(spec.protocol())
        .transports([TransportKind::WebSockets])
        .build()
        .map_err(|e| format!("hub-client build: {e}"))?;
    match tokio::time::timeout(crate::client::OPEN_TIMEOUT, connection.start()).await {
        Ok(Ok(())) => Ok(connection),
        Ok(Err(e)) => Err(format!("hub-client start: {e}")),
        Err(_) => Err("hub-client start timed out".into()),
    }
}

/// Opens `count` connections with at most `concurrency` starting at once; the ones that
/// failed are reported through `errors`.
pub async fn open_many(spec: &TypedSpec, count: usize, concurrency: usize, errors: &FirstError) -> Vec<HubConnection> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..count {
        let spec = spec.clone();
        let semaphore = semaphore.clone();
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            open(&spec).await
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(result) = set.join_next().await {
        match result {
            Ok(Ok(connection)) => out.push(connection),
            Ok(Err(e)) => errors.set(e),
            Err(e) => errors.set(format!("open task failed: {e}")),
        }
    }
    out
}

/// The timing of one echo round.
#[derive(Debug, Clone, Copy)]
pub struct EchoPlan {
    pub connections: usize,
    pub payload: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub open_concurrency: usize,
}

struct EchoShared {
    payload: String,
    begin: Instant,
    measure_from: Instant,
    end: Instant,
    latencies: Latencies,
    completed: AtomicU64,
    errors: AtomicU64,
    first_error: FirstError,
}

/// Echo calls through the typed proxy, one call in flight per connection, as the
/// hand-written client does; `server_pid` is metered for CPU and memory.
pub async fn echo(spec: &TypedSpec, plan: &EchoPlan, server_pid: u32) -> Result<(Sample, Option<String>), String> {
    let open_errors = FirstError::default();
    let connections = open_many(spec, plan.connections, plan.open_concurrency, &open_errors).await;
    let failed_opens = plan.connections - connections.len();
    if connections.is_empty() {
        return Err(open_errors.take().unwrap_or_else(|| "no connection opened".into()));
    }
    let begin = Instant::now() + Duration::from_millis(200);
    let measure_from = begin + plan.warmup;
    let shared = Arc::new(EchoShared {
        payload: "x".repeat(plan.payload),
        begin,
        measure_from,
        end: measure_from + plan.duration,
        latencies: Latencies::new(),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: FirstError::default(),
    });
    let mut set = JoinSet::new();
    for (i, connection) in connections.iter().enumerate() {
        set.spawn(echo_worker(connection.clone(), i, shared.clone()));
    }
    tokio::time::sleep_until(measure_from).await;
    let meter = Meter::start(server_pid);
    tokio::time::sleep_until(shared.end).await;
    let completed = shared.completed.load(Ordering::Relaxed) as f64;
    let mut sample = Sample::default();
    sample.put("throughput_per_s", completed / plan.duration.as_secs_f64());
    let h = shared.latencies.merged();
    sample.put("latency_p50_us", h.value_at_quantile(0.50) as f64);
    sample.put("latency_p99_us", h.value_at_quantile(0.99) as f64);
    sample.put("latency_p999_us", h.value_at_quantile(0.999) as f64);
    meter.finish(&mut sample, Some(completed));
    sample.put(
        "server_rss_mib",
        crate::sys::process_rss_bytes(server_pid).unwrap_or(0) as f64 / (1024.0 * 1024.0),
    );
    // Workers stop at `end`; each waits at most CALL_TIMEOUT for its last reply.
    let _ = tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(5), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    for connection in &connections {
        let _ = tokio::time::timeout(Duration::from_secs(1), connection.stop()).await;
    }
    let errors = shared.errors.load(Ordering::Relaxed) as f64 + failed_opens as f64;
    sample.put("errors", errors);
    let error = open_errors.take().or_else(|| shared.first_error.take());
    Ok((sample, error))
}

async fn echo_worker(connection: HubConnection, index: usize, shared: Arc<EchoShared>) {
    tokio::time::sleep_until(shared.begin).await;
    let hub = BenchHubProxy::new(&connection);
    while Instant::now() < shared.end {
        let sent_at = Instant::now();
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, hub.echo(shared.payload.clone())).await {
            Ok(Ok(text)) if text.len() == shared.payload.len() => Ok(()),
            Ok(Ok(text)) => Err(format!("echo: unexpected result of {} bytes", text.len())),
            Ok(Err(e)) => Err(format!("echo: {e}")),
            Err(_) => Err(format!("echo: no completion within {} s", CALL_TIMEOUT.as_secs())),
        };
        match outcome {
            Ok(()) => {
                let now = Instant::now();
                if sent_at >= shared.measure_from && now <= shared.end {
                    shared
                        .latencies
                        .record(index, now.duration_since(sent_at).as_micros() as u64);
                    shared.completed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.first_error.set(e);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hub_runtime::prelude::*;
    use tokio::sync::oneshot;

    use super::*;
    use crate::idle::{self, ClientKind, IdleRequest};

    struct Echoes;

    #[hub]
    impl Echoes {
        fn echo(&self, message: String) -> String {
            message
        }
    }

    /// Answers `Echo` with one byte less than it got.
    struct ShortEchoes;

    #[hub]
    impl ShortEchoes {
        fn echo(&self, mut message: String) -> String {
            message.pop();
            message
        }
    }

    /// A hub-runtime server on a loopback port with `hub` at `/broadcast`, as interop has it.
    async fn serve(server: HubServer) -> (SocketAddr, oneshot::Sender<()>) {
        let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0").await.expect("bind");
        let routes = server.filter();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve_with(listener, routes, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    fn plan() -> EchoPlan {
        EchoPlan {
            connections: 4,
            payload: 32,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(400),
            open_concurrency: 4,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_echo_measures_calls_on_both_protocols() {
        let (addr, _stop) = serve(HubServer::builder().hub("/broadcast", Echoes).build()).await;
        for proto in [Proto::Json, Proto::MessagePack] {
            let spec = TypedSpec {
                url: format!("http://{addr}/broadcast"),
                proto,
            };
            let (sample, error) = echo(&spec, &plan(), std::process::id()).await.expect("echo round");
            assert_eq!(error, None, "{proto:?}");
            assert_eq!(sample.get("errors"), Some(0.0), "{proto:?}");
            assert!(
                sample.get("throughput_per_s").unwrap_or(0.0) > 0.0,
                "{proto:?}: {sample:?}"
            );
            assert!(
                sample.get("latency_p99_us").unwrap_or(0.0) >= 1.0,
                "{proto:?}: {sample:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_echo_counts_a_wrong_result_as_an_error() {
        let (addr, _stop) = serve(HubServer::builder().hub("/broadcast", ShortEchoes).build()).await;
        let spec = TypedSpec {
            url: format!("http://{addr}/broadcast"),
            proto: Proto::Json,
        };
        let (sample, error) = echo(&spec, &plan(), std::process::id()).await.expect("echo round");
        assert_eq!(sample.get("errors"), Some(4.0), "{sample:?}");
        assert!(error.unwrap_or_default().contains("unexpected result"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_measure_holds_connections_of_both_clients() {
        let (addr, _stop) = serve(HubServer::builder().hub("/broadcast", Echoes).build()).await;
        for kind in [ClientKind::HandWritten, ClientKind::Typed] {
            let request = IdleRequest {
                server: addr,
                kind,
                connections: 40,
                proto: Proto::Json,
                open_concurrency: 16,
                hold: Duration::from_millis(200),
            };
            let (report, error) = idle::measure(&request).await;
            assert_eq!(error, None, "{kind:?}");
            assert_eq!((report.opened, report.errors), (40, 0), "{kind:?}");
            assert!(
                report.rss_before_bytes > 0 && report.mib_per_1000().is_some(),
                "{report:?}"
            );
            assert_eq!(idle::IdleReport::from_json(&report.to_json()), Some(report));
        }
    }
}
