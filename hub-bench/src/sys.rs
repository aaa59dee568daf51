//! What the operating system says about processes: CPU time, resident memory, file limits.

// libc calls (getrusage, sysconf, geteuid, clock_gettime and getrlimit/setrlimit); each block says why it is sound.
#![allow(unsafe_code)]

/// CPU seconds (user + system) this process has used so far (getrusage).
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Microseconds on the system-wide monotonic clock (`CLOCK_MONOTONIC`): every process on
/// the machine reads the same clock, so a time stamped in one process can be subtracted in
/// another (the fleet's sender and its generator processes).
pub fn monotonic_us() -> u64 {
    // SAFETY: clock_gettime writes into the zeroed timespec we pass; CLOCK_MONOTONIC always exists.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// What `/proc/PID/stat` says about a process's parent and CPU time (in clock ticks).
struct ProcStat {
    ppid: u32,
    /// utime + stime: this process's own threads.
    own_ticks: u64,
    /// cutime + cstime: its children that have exited and been waited for.
    reaped_children_ticks: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at overall field 3 (state): field 4 is ppid, 14–17 utime, stime, cutime, cstime.
    let field = |overall: usize| fields.get(overall - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        ppid: u32::try_from(field(4)?).ok()?,
        own_ticks: field(14)? + field(15)?,
        reaped_children_ticks: field(16)? + field(17)?,
    })
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
}

/// CPU seconds (user + system) of process `pid`, from `/proc/PID/stat`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    proc_stat(pid).map(|s| ticks_to_seconds(s.own_ticks))
}

/// CPU seconds of process `pid` and of its children: the living ones (found by their parent
/// pid in `/proc`) and the exited ones it has waited for. For a server that forks a process
/// per connection or task (the PostgreSQL postmaster).
pub fn process_family_cpu_seconds(pid: u32) -> Option<f64> {
    let parent = proc_stat(pid)?;
    let mut ticks = parent.own_ticks + parent.reaped_children_ticks;
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(stat) = proc_stat(child).filter(|s| s.ppid == pid) {
            ticks += stat.own_ticks + stat.reaped_children_ticks;
        }
    }
    Some(ticks_to_seconds(ticks))
}

/// CPU seconds the whole machine has been busy (every core; `/proc/stat`: user, nice,
/// system, irq, softirq and steal, not idle or iowait).
pub fn machine_busy_seconds() -> Option<f64> {
    machine_cpu().map(|cpu| cpu.busy)
}

/// The machine's CPU seconds (every core, from `/proc/stat`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// User, nice, system, irq, softirq and steal (not idle or iowait).
    pub busy: f64,
    /// Interrupts and softirqs (loopback delivery runs there), as the kernel sampled them: on
    /// this kernel the same time is also charged to the processes they interrupted.
    pub interrupts: f64,
    /// Taken by the hypervisor for other guests.
    pub steal: f64,
}

/// The machine's CPU seconds so far, split as [`MachineCpu`].
pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal …
    let sum = |which: &[usize]| ticks_to_seconds(which.iter().filter_map(|&i| fields.get(i)).sum());
    Some(MachineCpu {
        busy: sum(&[0, 1, 2, 5, 6, 7]),
        interrupts: sum(&[5, 6]),
        steal: sum(&[7]),
    })
}

/// Whether this process runs as root (some servers refuse to; they run as another user).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Resident memory of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
pub fn process_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on a zeroed struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        limit.rlim_cur
    }
}

/// How many file descriptors this process has open now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// A short description of the machine for the report.
pub fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0);
    serde_json::json!({
        "cores": cores,
        "cpu": cpu,
        "kernel": kernel,
        "memory_gib": mem_gib,
        "loadavg_at_end": load_average(),
    })
}

/// `/proc/loadavg`'s first three fields: the machine's load (other work shares the cores).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns about `ms` of CPU time on this thread.
    fn spin(ms: u64) {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn a_family_counts_its_children() {
        let me = std::process::id();
        // A child that burns CPU and is still alive when read.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5"])
            .spawn()
            .expect("sh");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let own = process_cpu_seconds(me).expect("own CPU time");
        let child_cpu = process_cpu_seconds(child.id()).expect("the child's CPU time");
        let family = process_family_cpu_seconds(me).expect("family CPU time");
        let _ = child.kill();
        let _ = child.wait();
        assert!(child_cpu > 0.0, "the child burnt some CPU");
        assert!(family >= own + child_cpu - 0.02, "{family} < {own} + {child_cpu}");
    }

    #[test]
    fn the_machine_is_busy_while_we_are() {
        let before = machine_busy_seconds().expect("/proc/stat");
        spin(300);
        let after = machine_busy_seconds().expect("/proc/stat");
        assert!(after - before >= 0.2, "{before} → {after}");
    }

    #[test]
    fn the_monotonic_clock_advances_with_time() {
        let before = monotonic_us();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let elapsed = monotonic_us() - before;
        assert!((100_000..2_000_000).contains(&elapsed), "{elapsed} µs");
    }

    #[test]
    fn root_is_told_by_the_effective_user() {
        let id = std::process::Command::new("id").arg("-u").output().expect("id -u");
        let root = String::from_utf8_lossy(&id.stdout).trim() == "0";
        assert_eq!(running_as_root(), root);
    }
}
