//! The scale-out scenario's listeners: the stamp each message carries (`SEQ;MICROS;xxx…`),
//! which sequence numbers a listener has seen, and the tally every listener adds to —
//! deliveries in the measured window, their latency, duplicates, reordering, listeners that
//! have received anything (so joined), and connections lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Ws};
use crate::scenario::{self, FirstError, Latencies, PING_INTERVAL};
use crate::wire::{Incoming, Proto};

/// A message's text: `SEQ;MICROS;` padded with `x` to `payload` bytes (longer when the two
/// numbers need more room).
pub fn stamp_text(seq: u64, payload: usize) -> String {
    stamp_text_at(seq, scenario::now_us(), payload)
}

/// A message's text stamped with `sent_us` (on the clock its listeners read).
pub fn stamp_text_at(seq: u64, sent_us: u64, payload: usize) -> String {
    let mut text = format!("{seq};{sent_us};");
    while text.len() < payload {
        text.push('x');
    }
    text
}

/// What a message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    /// When it was sent (`scenario::now_us` clock).
    pub sent_us: u64,
}

impl Stamp {
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut parts = text.split(';');
        let seq = parts.next()?.parse().ok()?;
        let sent_us = parts.next()?.parse().ok()?;
        Some(Stamp { seq, sent_us })
    }
}

/// How a message arrived at one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Later than every one before it.
    InOrder,
    /// New, but after a later one.
    Late,
    /// Seen already.
    Duplicate,
}

/// The sequence numbers one listener has seen (a bit each).
#[derive(Debug, Default)]
pub struct Seen {
    bits: Vec<u64>,
    highest: u64,
}

impl Seen {
    /// Notes `seq` (≥ 1; the caller bounds it by the highest sent).
    pub fn note(&mut self, seq: u64) -> Arrival {
        let word = (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit != 0 {
            return Arrival::Duplicate;
        }
        self.bits[word] |= bit;
        if seq < self.highest {
            Arrival::Late
        } else {
            self.highest = seq;
            Arrival::InOrder
        }
    }

    pub fn is_empty(&self) -> bool {
        self.highest == 0
    }
}

/// What every listener adds to.
pub struct Tally {
    pub proto: Proto,
    /// The first measured sequence number (`u64::MAX` until the window opens).
    pub first_measured: AtomicU64,
    /// The highest sequence number sent: anything above is not ours.
    pub last_sent: AtomicU64,
    /// Listeners that have received a message.
    pub ready: AtomicU64,
    /// Measured messages received (once each).
    pub delivered: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_order: AtomicU64,
    /// `Receive` invocations without a valid stamp.
    pub malformed: AtomicU64,
    pub closed_early: AtomicU64,
    pub latencies: Latencies,
    pub first_error: FirstError,
    /// The clock stamps are read on (µs): this process's (`scenario::now_us`) when the
    /// sender is in the same process, the machine's (`sys::monotonic_us`) when it is not.
    pub clock: fn() -> u64,
}

/// One frame's counts, added to the tally at once.
#[derive(Default)]
struct FrameCounts {
    delivered: u64,
    duplicates: u64,
    out_of_order: u64,
    malformed: u64,
}

impl Tally {
    pub fn new(proto: Proto) -> Tally {
        Tally::with_clock(proto, scenario::now_us)
    }

    /// A tally reading arrival times on `clock`.
    pub fn with_clock(proto: Proto, clock: fn() -> u64) -> Tally {
        Tally {
            proto,
            first_measured: AtomicU64::new(u64::MAX),
            last_sent: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            latencies: Latencies::new(),
            first_error: FirstError::default(),
            clock,
        }
    }

    /// Counts (and times) the `Receive` invocations and stream items in one frame of listener
    /// `index`.
    pub fn take(&self, data: &[u8], index: usize, seen: &mut Seen) {
        let now = (self.clock)();
        let first = self.first_measured.load(Ordering::Acquire);
        let last_sent = self.last_sent.load(Ordering::Acquire);
        let was_empty = seen.is_empty();
        let mut counts = FrameCounts::default();
        let parsed = self.proto.parse(data, |m| {
            // `Receive(text)` invocations, or the string items of a stream (history's `Subscribe`).
            let text = match m {
                Incoming::Invocation { target, argument } if target.eq_ignore_ascii_case("receive") => argument,
                Incoming::StreamItem { item } => item,
                _ => return,
            };
            let stamp = text.as_deref().and_then(Stamp::parse);
            let Some(stamp) = stamp.filter(|s| (1..=last_sent).contains(&s.seq)) else {
                counts.malformed += 1;
                return;
            };
            let arrival = seen.note(stamp.seq);
            match arrival {
                Arrival::Duplicate => counts.duplicates += 1,
                Arrival::Late => counts.out_of_order += 1,
                Arrival::InOrder => {}
            }
            if arrival != Arrival::Duplicate && stamp.seq >= first {
                counts.delivered += 1;
                self.latencies.record(index, now.saturating_sub(stamp.sent_us));
            }
        });
        if let Err(e) = parsed {
            self.first_error.set(e);
        }
        if was_empty && !seen.is_empty() {
            self.ready.fetch_add(1, Ordering::Relaxed);
        }
        for (total, n) in [
            (&self.delivered, counts.delivered),
            (&self.duplicates, counts.duplicates),
            (&self.out_of_order, counts.out_of_order),
            (&self.malformed, counts.malformed),
        ] {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        if counts.malformed > 0 {
            self.first_error
                .set("a Receive without a valid SEQ;MICROS stamp".into());
        }
    }

    fn closed(&self, stop: &watch::Receiver<bool>, why: String) {
        if !*stop.borrow() {
            self.closed_early.fetch_add(1, Ordering::Relaxed);
            self.first_error.set(why);
        }
    }
}

/// Reads everything the server sends to one listener into the tally, and sends a Ping every
/// 15 s (as the official clients do), until `stop` says so.
pub async fn listen(mut ws: Ws, index: usize, tally: Arc<Tally>, mut stop: watch::Receiver<bool>) {
    let proto = tally.proto;
    let jitter = Duration::from_millis((index as u64 * 7919) % 3000);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL - jitter, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping_bytes = Vec::new();
    proto.write_ping(&mut ping_bytes);
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ping.tick() => {
                let sent = tokio::time::timeout(Duration::from_secs(10), ws.send(proto.frame(ping_bytes.clone()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    tally.closed(&stop, "listener: ping send failed".into());
                    return;
                }
            }
            incoming = ws.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    other => {
                        tally.closed(&stop, format!("listener closed: {:?}", other.map(|r| r.map(|_| ()))));
                        return;
                    }
                };
                if let Some(data) = client::payload(&message) {
                    tally.take(data, index, &mut seen);
                } else if let Message::Close(frame) = &message {
                    tally.closed(&stop, format!("server closed a listener: {frame:?}"));
                    return;
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
}
