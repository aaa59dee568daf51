//! A live dashboard: a web page with two charts fed by the server.
//!
//! - **Pushed samples.** A background task, outside any hub method, samples the server every
//!   `--interval-ms` (open connections, open streams and a simulated load gauge) and sends each
//!   sample to every page through a [`HubHandle`] (`handle.clients.all().sample(..)`). Every page
//!   sees the same samples, in the same order.
//! - **A server-to-client stream.** The page calls the `Readings(intervalMs)` hub method with
//!   `connection.stream(..)`; the server answers with an `impl Stream` of readings of the load
//!   gauge at the rate the page asked for, until the page disposes the subscription (the Pause
//!   button) or disconnects.
//!
//! With `--redis`, several dashboard servers act as one: every server's task pushes its own
//! samples (tagged with its address) to every page on every server.
//!
//! Run with `cargo run --release --bin dashboard`, then open http://127.0.0.1:5000/ (in several
//! windows: the pushed samples are the same in each). `--help` lists the options.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hub_runtime::prelude::*;
use serde::Serialize;
use warp::Filter;

const PROGRAM: &str = "dashboard";

/// The fastest stream a page may ask for, and the slowest.
const MIN_STREAM_INTERVAL: Duration = Duration::from_millis(20);
const MAX_STREAM_INTERVAL: Duration = Duration::from_secs(10);

/// A live dashboard: a background task pushes server samples to every page, and each page
/// streams gauge readings for its chart. Open http://ADDR/ in a browser.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: hub_examples::Args,
    /// How often the background task pushes a sample to every page, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    interval_ms: u64,
}

#[hub_client]
trait DashboardClient {
    /// A server sample, pushed to every page by the background task.
    fn sample(&self, sample: Sample);
}

/// One pushed sample.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    /// The server that took it (its listening address): with `--redis`, every server's task
    /// pushes to every page.
    server: String,
    /// 1, 2, 3, ... in the order that server took them.
    seq: u64,
    /// When, in milliseconds since the Unix epoch.
    time_ms: u64,
    /// Open connections on this server (all hubs).
    connections: usize,
    /// Open `Readings` streams (a page's stream ends when it pauses or goes away).
    streams: usize,
    /// The load gauge, 0 to 100.
    load: f64,
}

/// One streamed reading.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reading {
    /// 1, 2, 3, ... within one stream.
    seq: u64,
    /// When, in milliseconds since the Unix epoch.
    time_ms: u64,
    /// The load gauge, 0 to 100.
    load: f64,
}

/// A simulated load gauge: a bounded random walk, moved on every read.
#[derive(Clone)]
struct Gauge(Arc<Mutex<f64>>);

impl Gauge {
    fn new() -> Self {
        Gauge(Arc::new(Mutex::new(50.0)))
    }

    fn read(&self) -> f64 {
        let mut value = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let step: f64 = rand::random::<f64>() * 10.0 - 5.0;
        *value = (*value + step).clamp(0.0, 100.0);
        (*value * 10.0).round() / 10.0
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// How many `Readings` streams are open.
#[derive(Clone, Default)]
struct OpenStreams(Arc<AtomicUsize>);

impl OpenStreams {
    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more stream until the returned guard is dropped (with the stream).
    fn open(&self) -> StreamGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.0.clone())
    }
}

struct StreamGuard(Arc<AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Dashboard {
    gauge: Gauge,
    streams: OpenStreams,
}

#[hub(client = DashboardClient)]
impl Dashboard {
    /// Readings of the load gauge every `interval_ms` milliseconds (clamped to 20 ms .. 10 s),
    /// until the caller cancels the stream.
    fn readings(&self, interval_ms: u64) -> impl Stream<Item = Reading> {
        let every = Duration::from_millis(interval_ms).clamp(MIN_STREAM_INTERVAL, MAX_STREAM_INTERVAL);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let gauge = self.gauge.clone();
        // The guard lives in the stream's state: the count drops when the runtime drops the
        // stream (the caller cancelled it or went away).
        let guard = self.streams.open();
        futures_util::stream::unfold((ticks, 0u64, guard), move |(mut ticks, seq, guard)| {
            let gauge = gauge.clone();
            async move {
                ticks.tick().await;
                let reading = Reading {
                    seq: seq + 1,
                    time_ms: now_ms(),
                    load: gauge.read(),
                };
                Some((reading, (ticks, seq + 1, guard)))
            }
        })
    }
}

/// What the background task samples.
struct Sources {
    /// This server's listening address, the samples' `server`.
    name: String,
    server: HubServer,
    gauge: Gauge,
    streams: OpenStreams,
}

/// The background task: a sample every `every`, pushed to every page.
async fn push_samples(sources: Sources, handle: HubHandle<Dashboard>, every: Duration) {
    let Sources {
        name,
        server,
        gauge,
        streams,
    } = sources;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    loop {
        ticks.tick().await;
        if server.is_stopping() {
            return;
        }
        seq += 1;
        let sample = Sample {
            server: name.clone(),
            seq,
            time_ms: now_ms(),
            connections: server.connection_count(),
            streams: streams.count(),
            load: gauge.read(),
        };
        if let Err(e) = handle.clients.all().sample(sample).await {
            tracing::warn!("{PROGRAM}: pushing a sample failed: {e}");
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    hub_examples::init_logging();
    let cli = Cli::parse();
    let args = cli.common;
    let (gauge, streams) = (Gauge::new(), OpenStreams::default());
    let server = hub_examples::builder(&args, PROGRAM)
        .await
        .options(args.hub_options(hub_runtime::HubOptions::default()))
        .hub(
            "/dashboard",
            Dashboard {
                gauge: gauge.clone(),
                streams: streams.clone(),
            },
        )
        .build();
    let handle = server.handle::<Dashboard>().expect("the Dashboard hub is mapped above");
    let routes = server.filter().or(PAGE.routes()).unify().boxed();

    let (listener, addr) = hub_runtime::server::bind(args.addr).await?;
    println!("listening on {}://{addr}", args.scheme());
    println!("open {}://{addr}/ to watch the dashboard", args.scheme());
    let sources = Sources {
        name: addr.to_string(),
        server: server.clone(),
        gauge,
        streams,
    };
    tokio::spawn(push_samples(sources, handle, Duration::from_millis(cli.interval_ms)));

    hub_examples::serve(&args, server, listener, routes).await
}

/// The page: `examples/web/dashboard/`.
const PAGE: hub_examples::WebPage = hub_examples::WebPage {
    index_html: include_str!("../../web/dashboard/index.html"),
    script_name: "dashboard.js",
    script: include_str!("../../web/dashboard/dashboard.js"),
    style_name: "dashboard.css",
    style: include_str!("../../web/dashboard/dashboard.css"),
};
