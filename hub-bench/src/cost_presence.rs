//! `--scenario presence`, one mode: N clients connect and join, then leave.
//!
//! Client `i` belongs to user `u{i / per_user}` (consecutive clients share a user, so a user's
//! connections open at the same moment and the store decides their first and last), and that
//! user to group `g{user % groups}`. Each client, `open_concurrency` at a time: connect
//! (negotiate, upgrade, handshake) and call `JoinGroup`, timed from its start to the
//! completion. Once every client has joined (and events have settled), each calls
//! `LeaveGroup`, timed the same way. Every client reads its socket all along, counting the
//! `Joined` and `Left` events it receives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{self, Ws};
use crate::cost::{CpuMeter, Measured, Mode, Plan};
use crate::scenario::{FirstError, Latencies, Sample};
use crate::wire::Incoming;

/// How long one phase (all joins, all leaves) may take.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a single call may wait for its completion.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Between the phases: events still on their way arrive.
const SETTLE: Duration = Duration::from_millis(500);

/// What every client adds to.
struct Shared {
    joined: AtomicU64,
    left: AtomicU64,
    failed: AtomicU64,
    /// `Joined` / `Left` invocations received by every client.
    joined_events: AtomicU64,
    left_events: AtomicU64,
    join_latency: Latencies,
    leave_latency: Latencies,
    first_error: FirstError,
}

/// Where a client is told to go on.
struct Signals {
    join_gate: Arc<Semaphore>,
    leave_gate: Arc<Semaphore>,
    leave: watch::Receiver<bool>,
    close: watch::Receiver<bool>,
}

pub async fn measure(plan: &Plan, mode: Mode, target: &Measured<'_>) -> Result<(Sample, Option<String>), String> {
    let shared = Arc::new(Shared {
        joined: AtomicU64::new(0),
        left: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        joined_events: AtomicU64::new(0),
        left_events: AtomicU64::new(0),
        join_latency: Latencies::new(),
        leave_latency: Latencies::new(),
        first_error: FirstError::default(),
    });
    let (leave_tx, leave_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(false);
    let join_gate = Arc::new(Semaphore::new(plan.open_concurrency));
    let leave_gate = Arc::new(Semaphore::new(plan.open_concurrency));
    let n = plan.connections;
    let mut sample = Sample::default();

    let meter = CpuMeter::start(target);
    let start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..n {
        let user = i / plan.per_user;
        let group = format!("g{}", user % plan.groups);
        let spec = plan.spec(target.addr, mode, format!("&user=u{user}"));
        let signals = Signals {
            join_gate: join_gate.clone(),
            leave_gate: leave_gate.clone(),
            leave: leave_rx.clone(),
            close: close_rx.clone(),
        };
        let shared = shared.clone();
        set.spawn(async move {
            if let Err(e) = client(&spec, i, &group, signals, &shared).await {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.first_error.set(e);
            }
        });
    }
    let joins = wait_phase(&shared, &shared.joined, n, start).await;
    sample.put("joins_per_s", joins.done as f64 / joins.secs.max(1e-9));
    put_latency(&mut sample, &shared.join_latency, ["join_p50_ms", "join_p99_ms"]);
    meter.finish(
        target,
        joins.done,
        &mut sample,
        ["server_cpu_us_per_join", "broker_cpu_us_per_join"],
    );
    tokio::time::sleep(SETTLE).await;

    let meter = CpuMeter::start(target);
    let start = Instant::now();
    let _ = leave_tx.send(true);
    let leaves = wait_phase(&shared, &shared.left, n, start).await;
    sample.put("leaves_per_s", leaves.done as f64 / leaves.secs.max(1e-9));
    put_latency(&mut sample, &shared.leave_latency, ["leave_p50_ms", "leave_p99_ms"]);
    meter.finish(
        target,
        leaves.done,
        &mut sample,
        ["server_cpu_us_per_leave", "broker_cpu_us_per_leave"],
    );
    tokio::time::sleep(SETTLE).await;

    let _ = close_tx.send(true);
    let closing = tokio::time::timeout(Duration::from_secs(20), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    sample.put("joined_events", shared.joined_events.load(Ordering::Relaxed) as f64);
    sample.put("left_events", shared.left_events.load(Ordering::Relaxed) as f64);
    let mut errors = shared.failed.load(Ordering::Relaxed);
    if closing.is_err() {
        errors += 1;
        shared.first_error.set("clients did not close within 20 s".into());
    }
    sample.put("errors", errors as f64);
    Ok((sample, shared.first_error.take()))
}

/// How far a phase got.
struct Phase {
    done: u64,
    /// From the phase's start to its last completion.
    secs: f64,
}

/// Waits until `counter` plus the failed clients reach `n` (or the phase times out).
async fn wait_phase(shared: &Shared, counter: &AtomicU64, n: usize, start: Instant) -> Phase {
    let mut last = (0, start);
    while start.elapsed() < PHASE_TIMEOUT {
        let done = counter.load(Ordering::Acquire);
        if done != last.0 {
            last = (done, Instant::now());
        }
        if done + shared.failed.load(Ordering::Acquire) >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Phase {
        done: last.0,
        secs: (last.1 - start).as_secs_f64(),
    }
}

fn put_latency(sample: &mut Sample, latencies: &Latencies, names: [&'static str; 2]) {
    let h = latencies.merged();
    sample.put(names[0], h.value_at_quantile(0.50) as f64 / 1000.0);
    sample.put(names[1], h.value_at_quantile(0.99) as f64 / 1000.0);
}

/// One client's life: connect and join, wait, leave, wait, close.
async fn client(
    spec: &client::ConnectSpec,
    index: usize,
    group: &str,
    mut signals: Signals,
    shared: &Shared,
) -> Result<(), String> {
    let mut ws = {
        let _permit = signals.join_gate.acquire().await.map_err(|e| e.to_string())?;
        let begin = Instant::now();
        let mut ws = client::open(spec, index).await?;
        call(&mut ws, spec.proto, "1", "JoinGroup", group, shared).await?;
        shared.join_latency.record(index, begin.elapsed().as_micros() as u64);
        ws
    };
    shared.joined.fetch_add(1, Ordering::Release);
    drain_until(&mut ws, spec.proto, &mut signals.leave, shared).await?;
    {
        let _permit = signals.leave_gate.acquire().await.map_err(|e| e.to_string())?;
        let begin = Instant::now();
        call(&mut ws, spec.proto, "2", "LeaveGroup", group, shared).await?;
        shared.leave_latency.record(index, begin.elapsed().as_micros() as u64);
    }
    shared.left.fetch_add(1, Ordering::Release);
    drain_until(&mut ws, spec.proto, &mut signals.close, shared).await?;
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    Ok(())
}

/// Invokes `target(argument)` and reads until its completion.
async fn call(
    ws: &mut Ws,
    proto: crate::wire::Proto,
    id: &str,
    target: &str,
    argument: &str,
    shared: &Shared,
) -> Result<(), String> {
    let mut buf = Vec::new();
    proto.write_invocation(&mut buf, Some(id), target, argument);
    ws.send(proto.frame(buf))
        .await
        .map_err(|e| format!("{target} send: {e}"))?;
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("{target}: no completion within {} s", CALL_TIMEOUT.as_secs()))?;
        let message = match message {
            Some(Ok(message)) => message,
            other => return Err(format!("{target}: connection ended: {other:?}")),
        };
        if let Some(result) = take(&message, proto, Some(id), shared)? {
            return result.map_err(|e| format!("{target} failed: {e}"));
        }
    }
}

/// Reads (counting events) until `signal` turns true.
async fn drain_until(
    ws: &mut Ws,
    proto: crate::wire::Proto,
    signal: &mut watch::Receiver<bool>,
    shared: &Shared,
) -> Result<(), String> {
    while !*signal.borrow() {
        tokio::select! {
            _ = signal.changed() => {}
            incoming = ws.next() => match incoming {
                Some(Ok(message)) => {
                    take(&message, proto, None, shared)?;
                }
                other => return Err(format!("connection ended while waiting: {other:?}")),
            },
        }
    }
    Ok(())
}

/// Counts the events in one frame; returns the completion of `id` if it is there.
fn take(
    message: &tokio_tungstenite::tungstenite::Message,
    proto: crate::wire::Proto,
    id: Option<&str>,
    shared: &Shared,
) -> Result<Option<Result<(), String>>, String> {
    let Some(data) = client::payload(message) else {
        return Ok(None);
    };
    let mut completion = None;
    proto.parse(data, |m| match m {
        Incoming::Invocation { target, .. } if target == "Joined" => {
            shared.joined_events.fetch_add(1, Ordering::Relaxed);
        }
        Incoming::Invocation { target, .. } if target == "Left" => {
            shared.left_events.fetch_add(1, Ordering::Relaxed);
        }
        Incoming::Completion { invocation_id, result } if Some(invocation_id.as_ref()) == id => {
            completion = Some(result.map(|_| ()));
        }
        Incoming::Close { error } => completion = Some(Err(format!("server sent Close {error:?}"))),
        _ => {}
    })?;
    Ok(completion)
}
