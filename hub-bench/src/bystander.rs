//! The bystander of the hostile scenarios: one ordinary WebSocket connection making an echo
//! call every 10 ms, and a fresh connection opened once a second (a probe), on its own thread
//! and runtime so the attackers' tasks never delay it. It records its figures per phase
//! (quiet, attack, settle).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::client::{self, ConnectSpec, Ws};
use crate::wire::{Incoming, Proto};

/// A phase of a hostile scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Warmup = 0,
    Quiet = 1,
    Attack = 2,
    Settle = 3,
}

const PHASES: usize = 4;
/// Time between two echo calls.
const CALL_INTERVAL: Duration = Duration::from_millis(10);
/// Time between two probe connections.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A call or probe slower than this counts as an error (and as this long).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the bystander saw in one phase.
pub struct PhaseFigures {
    pub echo: Histogram<u64>,
    pub errors: u64,
    pub probe_open: Histogram<u64>,
    pub probe_failures: u64,
}

impl PhaseFigures {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds");
        PhaseFigures {
            echo: h(),
            errors: 0,
            probe_open: h(),
            probe_failures: 0,
        }
    }
}

/// Shared between the bystander's thread and the scenario.
struct Shared {
    phase: AtomicUsize,
    stop: AtomicBool,
    figures: Mutex<Vec<PhaseFigures>>,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn phase(&self) -> usize {
        self.phase.load(Ordering::Relaxed)
    }

    fn with<R>(&self, phase: usize, f: impl FnOnce(&mut PhaseFigures) -> R) -> R {
        let mut figures = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut figures[phase])
    }

    /// Counts a failed echo call (or reconnect) and remembers the first error.
    fn error(&self, phase: usize, error: String) {
        self.with(phase, |f| f.errors += 1);
        self.remember(error);
    }

    fn remember(&self, error: String) {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(format!("bystander: {error}"));
        }
    }
}

/// A running bystander.
pub struct Bystander {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bystander {
    /// Starts the bystander (in the warm-up phase) on `spec` (JSON, negotiated).
    pub fn start(spec: ConnectSpec) -> Result<Bystander, String> {
        let shared = Arc::new(Shared {
            phase: AtomicUsize::new(Phase::Warmup as usize),
            stop: AtomicBool::new(false),
            figures: Mutex::new((0..PHASES).map(|_| PhaseFigures::new()).collect()),
            first_error: Mutex::new(None),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("bystander runtime: {e}"))?;
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bystander".into())
            .spawn(move || runtime.block_on(run(spec, inner)))
            .map_err(|e| format!("bystander thread: {e}"))?;
        Ok(Bystander {
            shared,
            thread: Some(thread),
        })
    }

    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as usize, Ordering::Relaxed);
    }

    /// Stops the bystander; returns its figures per phase and its first error.
    pub fn finish(mut self) -> (Vec<PhaseFigures>, Option<String>) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let figures = std::mem::take(&mut *self.shared.figures.lock().unwrap_or_else(|p| p.into_inner()));
        let error = self.shared.first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        (figures, error)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

async fn run(spec: ConnectSpec, shared: Arc<Shared>) {
    let probes = tokio::spawn(probe_loop(spec.clone(), shared.clone()));
    let mut ws: Option<Ws> = None;
    let mut n: u64 = 0;
    let mut next = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next = (next + CALL_INTERVAL).max(Instant::now());
        let phase = shared.phase();
        let socket = match ws.as_mut() {
            Some(socket) => socket,
            None => match tokio::time::timeout(CALL_TIMEOUT, client::open(&spec, 0)).await {
                Ok(Ok(socket)) => ws.insert(socket),
                Ok(Err(e)) => {
                    shared.error(phase, format!("reconnect: {e}"));
                    next = Instant::now() + Duration::from_millis(200);
                    continue;
                }
                Err(_) => {
                    shared.error(phase, format!("reconnect: not open within {CALL_TIMEOUT:?}"));
                    continue;
                }
            },
        };
        n += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(CALL_TIMEOUT, echo_once(socket, n)).await;
        let micros = started.elapsed().as_micros() as u64;
        match outcome {
            Ok(Ok(())) => shared.with(phase, |f| f.echo.saturating_record(micros.max(1))),
            Ok(Err(e)) => {
                shared.error(phase, e);
                ws = None;
            }
            Err(_) => {
                shared.with(phase, |f| f.echo.saturating_record(CALL_TIMEOUT.as_micros() as u64));
                shared.error(phase, format!("no completion within {CALL_TIMEOUT:?}"));
                ws = None;
            }
        }
    }
    probes.abort();
    if let Some(mut socket) = ws {
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    }
}

/// One echo call, waiting for its completion.
async fn echo_once(ws: &mut Ws, n: u64) -> Result<(), String> {
    let id = n.to_string();
    let mut buf = Vec::with_capacity(96);
    Proto::Json.write_invocation(&mut buf, Some(&id), "Echo", "bystander");
    ws.send(Proto::Json.frame(buf))
        .await
        .map_err(|e| format!("send: {e}"))?;
    loop {
        let message = match ws.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("connection closed".into()),
        };
        let Some(data) = client::payload(&message) else {
            continue;
        };
        let mut done = None;
        Proto::Json.parse(data, |m| match m {
            Incoming::Completion { invocation_id, result } if invocation_id == id.as_str() => {
                done = Some(result.map(|_| ()).map_err(|e| format!("error completion: {e}")));
            }
            Incoming::Close { error } => done = Some(Err(format!("server sent Close {error:?}"))),
            _ => {}
        })?;
        if let Some(done) = done {
            return done;
        }
    }
}

/// Once a second: open a fresh connection (negotiate, upgrade, handshake), time it, close it.
async fn probe_loop(spec: ConnectSpec, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut index = 1;
    loop {
        tick.tick().await;
        let phase = shared.phase();
        let started = Instant::now();
        index += 1;
        match tokio::time::timeout(CALL_TIMEOUT, client::open(&spec, index)).await {
            Ok(Ok(mut ws)) => {
                let micros = started.elapsed().as_micros() as u64;
                shared.with(phase, |f| f.probe_open.saturating_record(micros.max(1)));
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            }
            Ok(Err(e)) => {
                shared.with(phase, |f| f.probe_failures += 1);
                shared.remember(format!("probe open: {e}"));
            }
            Err(_) => {
                shared.with(phase, |f| f.probe_failures += 1);
                shared.remember(format!("probe open: not open within {CALL_TIMEOUT:?}"));
            }
        }
    }
}
