//! `--scenario history`, one mode: L listeners of one group and S senders.
//!
//! Durable: each listener calls `Subscribe("durable-bench")` (a stream of the group's
//! messages), the senders call `Publish("durable-bench", text)` (appended to RedisHistory and
//! delivered to the streams). Plain: each listener calls `JoinGroup("bench")`, the senders call
//! `SendToGroup("bench", text)` (the Redis backplane's group fan-out). Every text carries its
//! sequence number and send time (`scaleout_listen::stamp_text`), so each listener times its
//! deliveries. Each sender keeps at most `window` calls in flight (and, with `--rate`, paces
//! itself). The senders send until every listener has received a message, then through the
//! warm-up, then through the measured window; only messages sent in the window count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Ws};
use crate::cost::{CpuMeter, Measured, Mode, Plan};
use crate::scaleout_listen::{listen, stamp_text, Tally};
use crate::scenario::{self, FirstError, Sample};
use crate::wire::{Incoming, Proto};

/// How long every listener may take to receive its first message.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the senders share.
struct Senders {
    /// The last sequence number taken.
    seq: AtomicU64,
    /// Completed calls.
    completed: AtomicU64,
    errors: AtomicU64,
    first_error: FirstError,
}

pub async fn measure(plan: &Plan, mode: Mode, target: &Measured<'_>) -> Result<(Sample, Option<String>), String> {
    let durable = mode == Mode::Durable;
    let group = if durable { "durable-bench" } else { "bench" };
    let proto = plan.proto;
    let spec = plan.spec(target.addr, mode, String::new());
    let open_errors = FirstError::default();
    let mut sockets = scenario::open_many(&spec, 0, plan.connections, plan.open_concurrency, &open_errors).await;
    let listeners = sockets.len();
    if listeners == 0 {
        return Err(open_errors.take().unwrap_or_else(|| "no listener opened".into()));
    }
    for ws in &mut sockets {
        enter(ws, proto, durable, group).await?;
    }
    let tally = Arc::new(Tally::new(proto));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        set.spawn(listen(ws, i, tally.clone(), stop_rx.clone()));
    }
    let shared = Arc::new(Senders {
        seq: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: FirstError::default(),
    });
    let (halt_tx, halt_rx) = watch::channel(false);
    let mut senders = JoinSet::new();
    for s in 0..plan.senders {
        let ws = client::open(&spec, listeners + s)
            .await
            .map_err(|e| format!("sender: {e}"))?;
        let call = Call::new(plan, durable, group);
        senders.spawn(send(ws, call, shared.clone(), tally.clone(), halt_rx.clone()));
    }

    let begin = Instant::now();
    while tally.ready.load(Ordering::Relaxed) < listeners as u64 {
        if begin.elapsed() > READY_TIMEOUT || shared.errors.load(Ordering::Relaxed) > 0 {
            let _ = halt_tx.send(true);
            let _ = stop_tx.send(true);
            return Err(format!(
                "only {} of {listeners} listeners received a message within {} s{}",
                tally.ready.load(Ordering::Relaxed),
                READY_TIMEOUT.as_secs(),
                shared.first_error.take().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready_s = begin.elapsed().as_secs_f64();
    tokio::time::sleep(plan.warmup).await;

    // The window: messages from the next sequence number on count.
    let first = shared.seq.load(Ordering::Acquire) + 1;
    tally.first_measured.store(first, Ordering::Release);
    let meter = CpuMeter::start(target);
    let completed_before = shared.completed.load(Ordering::Relaxed);
    let window_start = Instant::now();
    tokio::time::sleep(plan.duration).await;
    let completed = shared.completed.load(Ordering::Relaxed) - completed_before;
    let _ = halt_tx.send(true);
    let send_secs = window_start.elapsed().as_secs_f64();
    // Each sender stops taking sequence numbers and waits for its calls in flight.
    let mut idle = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(done) = senders.join_next().await {
            idle.extend(done.ok());
        }
    })
    .await;
    senders.abort_all();
    let sent = (shared.seq.load(Ordering::Acquire) + 1).saturating_sub(first);
    let expected = sent * listeners as u64;
    scenario::wait_for_deliveries(&tally.delivered, expected).await;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let elapsed = window_start.elapsed().as_secs_f64();
    let deliver_secs = if delivered >= expected { elapsed } else { send_secs };

    let mut sample = Sample::default();
    sample.put("published_per_s", completed as f64 / plan.duration.as_secs_f64());
    sample.put("deliveries_per_s", delivered as f64 / deliver_secs.max(1e-9));
    sample.put("delivered_pct", delivered as f64 * 100.0 / expected.max(1) as f64);
    let h = tally.latencies.merged();
    sample.put("latency_p50_ms", h.value_at_quantile(0.50) as f64 / 1000.0);
    sample.put("latency_p99_ms", h.value_at_quantile(0.99) as f64 / 1000.0);
    meter.finish(
        target,
        delivered,
        &mut sample,
        ["server_cpu_us_per_delivery", "broker_cpu_us_per_delivery"],
    );
    sample.put("sent", sent as f64);
    sample.put("duplicates", tally.duplicates.load(Ordering::Relaxed) as f64);
    sample.put("ready_s", ready_s);

    let closed = tally.closed_early.load(Ordering::Relaxed);
    for (mut sink, reader) in idle {
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        reader.abort();
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    let errors = (plan.connections - listeners) as u64
        + closed
        + tally.malformed.load(Ordering::Relaxed)
        + tally.duplicates.load(Ordering::Relaxed)
        + shared.errors.load(Ordering::Relaxed)
        + u64::from(delivered < expected);
    sample.put("errors", errors as f64);
    let error = open_errors
        .take()
        .or_else(|| shared.first_error.take())
        .or_else(|| tally.first_error.take())
        .or_else(|| (delivered < expected).then(|| format!("{delivered} of {expected} deliveries arrived")));
    Ok((sample, error))
}

/// Subscribes a listener to the durable group, or joins it to the plain one, before its
/// reading starts (its reader ignores the reply).
async fn enter(ws: &mut Ws, proto: Proto, durable: bool, group: &str) -> Result<(), String> {
    let mut buf = Vec::new();
    if durable {
        let call =
            json!({"type": 4, "invocationId": "1", "target": "Subscribe", "arguments": [group], "streamIds": []});
        proto.write_message(&mut buf, &call);
    } else {
        proto.write_invocation(&mut buf, Some("1"), "JoinGroup", group);
    }
    ws.send(proto.frame(buf)).await.map_err(|e| format!("listener: {e}"))
}

/// What a sender calls, and how often.
struct Call {
    proto: Proto,
    /// `Publish` or `SendToGroup`.
    target: &'static str,
    group: &'static str,
    payload: usize,
    /// Calls in flight at most.
    window: usize,
    /// With `--rate`: this sender's time between calls.
    period: Option<Duration>,
}

impl Call {
    fn new(plan: &Plan, durable: bool, group: &'static str) -> Call {
        Call {
            proto: plan.proto,
            target: if durable { "Publish" } else { "SendToGroup" },
            group,
            payload: plan.payload,
            window: plan.window,
            period: (plan.rate > 0.0).then(|| Duration::from_secs_f64(plan.senders as f64 / plan.rate)),
        }
    }
}

/// A sender after its last completion: its connection (closed later) and its reader.
type IdleSender = (SplitSink<Ws, Message>, tokio::task::JoinHandle<()>);

/// One sender: calls until `halt`, at most `window` in flight; its reader counts completions.
/// Returns once its calls in flight have completed (at most 5 s later).
async fn send(
    ws: Ws,
    call: Call,
    shared: Arc<Senders>,
    tally: Arc<Tally>,
    mut halt: watch::Receiver<bool>,
) -> IdleSender {
    let (mut sink, mut stream) = ws.split();
    let slots = Arc::new(Semaphore::new(call.window));
    let reader = {
        let (slots, shared, proto) = (slots.clone(), shared.clone(), call.proto);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Some(data) = client::payload(&message) else {
                    continue;
                };
                let parsed = proto.parse(data, |m| {
                    if let Incoming::Completion { result, .. } = m {
                        match result {
                            Ok(_) => {
                                shared.completed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                shared.errors.fetch_add(1, Ordering::Relaxed);
                                shared.first_error.set(format!("a call failed: {e}"));
                            }
                        }
                        slots.add_permits(1);
                    }
                });
                if let Err(e) = parsed {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    shared.first_error.set(e);
                }
            }
        })
    };
    let mut tick = call.period.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut buf = Vec::new();
    let mut id: u64 = 0;
    loop {
        tokio::select! {
            _ = halt.changed() => break,
            permit = slots.acquire() => match permit {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            },
        }
        let halted = match &mut tick {
            Some(tick) => tokio::select! {
                _ = halt.changed() => true,
                _ = tick.tick() => *halt.borrow(),
            },
            None => *halt.borrow(),
        };
        if halted {
            // The slot taken is not used.
            slots.add_permits(1);
            break;
        }
        id += 1;
        let seq = shared.seq.fetch_add(1, Ordering::AcqRel) + 1;
        tally.last_sent.fetch_max(seq, Ordering::AcqRel);
        buf.clear();
        let message = json!({
            "type": 1,
            "invocationId": id.to_string(),
            "target": call.target,
            "arguments": [call.group, stamp_text(seq, call.payload)],
        });
        call.proto.write_message(&mut buf, &message);
        match tokio::time::timeout(Duration::from_secs(10), sink.send(call.proto.frame(buf.clone()))).await {
            Ok(Ok(())) => {}
            _ => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared
                    .first_error
                    .set(format!("{}: a send failed or took over 10 s", call.target));
                break;
            }
        }
    }
    // The last completions come in.
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(call.window as u32)).await;
    (sink, reader)
}
