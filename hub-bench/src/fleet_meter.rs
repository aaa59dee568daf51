//! The fleet scenario's per-process figures: every process of the run (servers, broker,
//! generators, the harness with the sender), the CPU time each used over the measured
//! window, and its resident memory.

use tokio::time::Instant;

use crate::scaleout::Cluster;
use crate::scenario::Sample;
use crate::sys;

/// One process's figures.
#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub name: String,
    pub pid: Option<u32>,
    pub connections: usize,
    /// Resident memory at the end of the window.
    pub rss_bytes: Option<u64>,
    /// CPU cores it used over the window and its drain.
    pub cpu_cores: f64,
}

/// Every process of the run, with what it holds.
pub struct Roster<'a> {
    pub cluster: &'a Cluster<'a>,
    pub server_connections: Vec<usize>,
    pub generators: Vec<(Option<u32>, usize)>,
}

/// CPU seconds of every process (servers, broker, generators, this one) and of the machine.
pub struct CpuSnapshot {
    servers: Vec<f64>,
    broker: f64,
    generators: Vec<f64>,
    harness: f64,
    machine: sys::MachineCpu,
    at: Instant,
}

impl Roster<'_> {
    pub fn cpu(&self) -> CpuSnapshot {
        let of = |pid: Option<u32>| pid.and_then(sys::process_cpu_seconds).unwrap_or(0.0);
        CpuSnapshot {
            servers: self.cluster.server_pids.iter().map(|&p| of(Some(p))).collect(),
            broker: self.cluster.broker.cpu_seconds().unwrap_or(0.0),
            generators: self.generators.iter().map(|&(p, _)| of(p)).collect(),
            harness: sys::own_cpu_seconds(),
            machine: sys::machine_cpu().unwrap_or_default(),
            at: Instant::now(),
        }
    }

    /// Per-process rows and the CPU figures of the window that began at `start`.
    pub fn finish(&self, start: &CpuSnapshot, deliveries: u64, sample: &mut Sample) -> Vec<ProcessRow> {
        let end = self.cpu();
        let wall = start.at.elapsed().as_secs_f64().max(1e-9);
        let rss = |pid: Option<u32>| pid.and_then(sys::process_rss_bytes);
        let mut rows = Vec::new();
        for (i, &pid) in self.cluster.server_pids.iter().enumerate() {
            rows.push(ProcessRow {
                name: format!("server {i}"),
                pid: Some(pid),
                connections: self.server_connections[i],
                rss_bytes: rss(Some(pid)),
                cpu_cores: (end.servers[i] - start.servers[i]) / wall,
            });
        }
        rows.push(ProcessRow {
            name: self.cluster.broker.kind.name().into(),
            pid: Some(self.cluster.broker.pid),
            // Its clients are the servers' backplane connections, not listeners.
            connections: 0,
            rss_bytes: rss(Some(self.cluster.broker.pid)),
            cpu_cores: (end.broker - start.broker) / wall,
        });
        for (i, &(pid, connections)) in self.generators.iter().enumerate() {
            rows.push(ProcessRow {
                name: format!("generator {i}"),
                pid,
                connections,
                rss_bytes: rss(pid),
                cpu_cores: (end.generators[i] - start.generators[i]) / wall,
            });
        }
        rows.push(ProcessRow {
            name: "harness (sender)".into(),
            pid: Some(std::process::id()),
            connections: 1,
            rss_bytes: rss(Some(std::process::id())),
            cpu_cores: (end.harness - start.harness) / wall,
        });
        let sum = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x - y).sum::<f64>();
        let servers = sum(&end.servers, &start.servers);
        let generators = sum(&end.generators, &start.generators);
        let broker = end.broker - start.broker;
        let harness = end.harness - start.harness;
        let per_delivery = |s: f64| {
            if deliveries == 0 {
                f64::NAN
            } else {
                s * 1e6 / deliveries as f64
            }
        };
        sample.put("server_cpu_us_per_delivery", per_delivery(servers));
        sample.put("broker_cpu_us_per_delivery", per_delivery(broker));
        sample.put("generator_cpu_us_per_delivery", per_delivery(generators));
        sample.put("server_cpu_cores", servers / wall);
        sample.put("broker_cpu_cores", broker / wall);
        sample.put("generator_cpu_cores", generators / wall);
        sample.put("harness_cpu_cores", harness / wall);
        let machine = end.machine.busy - start.machine.busy;
        let interrupts = end.machine.interrupts - start.machine.interrupts;
        let steal = end.machine.steal - start.machine.steal;
        // Busy time no process measured here was charged with (other processes, steal). The
        // interrupt and softirq share is reported beside it; the kernel also charges that time
        // to the processes it interrupted (the fleet's rows add up to more than the machine).
        let other = (machine - servers - broker - generators - harness).max(0.0);
        sample.put("other_cpu_cores", other / wall);
        sample.put("interrupt_cpu_cores", interrupts / wall);
        sample.put("steal_cpu_cores", steal / wall);
        rows
    }

    /// Resident bytes of the servers together.
    pub fn server_rss(&self) -> u64 {
        self.cluster
            .server_pids
            .iter()
            .filter_map(|&p| sys::process_rss_bytes(p))
            .sum()
    }
}
