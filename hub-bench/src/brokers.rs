//! The brokers of the scale-out scenario: a private `redis-server`, PostgreSQL cluster or
//! `nats-server` on a free loopback port, started by the harness and torn down after the
//! round, so nothing already running on the machine is used (or disturbed).
//!
//! Binaries: `REDIS_SERVER` or `redis-server` on the PATH; `PG_BIN` (the directory holding
//! `initdb` and `pg_ctl`) or the newest `/usr/lib/postgresql/<version>/bin`; `NATS_SERVER` or
//! `nats-server` on the PATH or in `/usr/sbin`. PostgreSQL refuses to run as root: under root
//! its programs run as the `postgres` user (`runuser`), in a directory given to that user.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::sys;

/// How long a broker may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A backplane the interop example can join, and so a broker to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backplane {
    Redis,
    Postgres,
    Nats,
}

impl Backplane {
    pub const ALL: [Backplane; 3] = [Backplane::Redis, Backplane::Postgres, Backplane::Nats];

    pub fn name(self) -> &'static str {
        match self {
            Backplane::Redis => "redis",
            Backplane::Postgres => "postgres",
            Backplane::Nats => "nats",
        }
    }

    /// `redis`, `postgres` (or `postgresql`, `pg`), `nats`, or `all`.
    pub fn parse_list(text: &str) -> Option<Vec<Backplane>> {
        let one = match text.to_ascii_lowercase().as_str() {
            "all" => return Some(Backplane::ALL.to_vec()),
            "redis" => Backplane::Redis,
            "postgres" | "postgresql" | "pg" => Backplane::Postgres,
            "nats" => Backplane::Nats,
            _ => return None,
        };
        Some(vec![one])
    }

    /// The interop example's option naming the broker's URL.
    fn interop_flag(self) -> &'static str {
        match self {
            Backplane::Redis => "--redis",
            Backplane::Postgres => "--postgres",
            Backplane::Nats => "--nats",
        }
    }
}

/// A running broker.
pub struct Broker {
    pub kind: Backplane,
    /// What the interop servers connect to (`redis://127.0.0.1:PORT`…).
    pub url: String,
    /// Its loopback port.
    pub port: u16,
    /// The broker's process (PostgreSQL: the postmaster).
    pub pid: u32,
    process: Process,
}

/// How the broker runs, and so how it stops.
enum Process {
    /// Our own child (redis-server, nats-server), killed on drop.
    Child(Child),
    /// A PostgreSQL cluster in `dir` (data in `dir/data`), daemonized by `pg_ctl`.
    Cluster { bin: PathBuf, dir: PathBuf, stopped: bool },
}

impl Broker {
    /// Starts a broker of `kind` on a free loopback port and waits until it accepts
    /// connections. Its log goes to `log_dir`.
    pub async fn start(kind: Backplane, log_dir: &Path, tag: &str) -> Result<Broker, String> {
        std::fs::create_dir_all(log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let port = free_port()?;
        let log = log_dir.join(format!("{}-{tag}.log", kind.name()));
        let broker = match kind {
            Backplane::Redis => start_redis(port, &log)?,
            Backplane::Postgres => start_postgres(port, tag).await?,
            Backplane::Nats => start_nats(port, &log)?,
        };
        wait_accepting(kind, port).await?;
        Ok(broker)
    }

    /// The interop example's arguments joining this broker (`--redis URL`…).
    pub fn interop_args(&self) -> Vec<String> {
        vec![self.kind.interop_flag().to_string(), self.url.clone()]
    }

    /// CPU seconds the broker has used so far (PostgreSQL: the postmaster and every process it
    /// forked, living or exited).
    pub fn cpu_seconds(&self) -> Option<f64> {
        match &self.process {
            Process::Child(_) => sys::process_cpu_seconds(self.pid),
            Process::Cluster { .. } => sys::process_family_cpu_seconds(self.pid),
        }
    }

    /// Redis only: the channels clients are subscribed to (`pubsub_channels` of `INFO stats`),
    /// read over a plain RESP connection (bounded: 5 s). `None` for the other brokers.
    pub async fn pubsub_channels(&self) -> Option<u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.kind != Backplane::Redis {
            return None;
        }
        let read = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            stream.write_all(b"INFO stats\r\n").await.ok()?;
            let mut reply = Vec::new();
            let mut chunk = [0u8; 4096];
            // A bulk string: `$LEN\r\n` and LEN bytes; INFO stats is a few KiB.
            while reply.len() < 64 * 1024 {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&reply);
                // The whole line, up to its `\r\n` (it may arrive in two reads).
                if let Some(rest) = text.split("pubsub_channels:").nth(1) {
                    if let Some(end) = rest.find("\r\n") {
                        return rest[..end].trim().parse().ok();
                    }
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(5), read).await.ok().flatten()
    }

    /// Stops the broker and removes its files (a PostgreSQL cluster's log is kept in
    /// `log_dir`).
    pub async fn stop(mut self, log_dir: &Path) {
        match &mut self.process {
            Process::Child(child) => {
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            }
            Process::Cluster { bin, dir, stopped } => {
                let mut stop = pg_command(bin, "pg_ctl");
                stop.arg("-D").arg(dir.join("data")).args(["-m", "fast", "-w", "stop"]);
                let _ = run(stop, "pg_ctl stop").await;
                *stopped = true;
                let _ = std::fs::copy(dir.join("log"), log_dir.join("postgres.log"));
                let _ = std::fs::remove_dir_all(&*dir);
            }
        }
    }
}

impl Drop for Broker {
    /// A round that failed halfway still leaves no cluster running.
    fn drop(&mut self) {
        if let Process::Cluster {
            bin,
            dir,
            stopped: false,
        } = &self.process
        {
            let (program, leading) = pg_program(bin, "pg_ctl");
            let mut stop = std::process::Command::new(program);
            stop.args(leading)
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Polls until the broker's port accepts a TCP connection.
async fn wait_accepting(kind: Backplane, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "{} did not accept connections on {addr} within {} s",
        kind.name(),
        START_TIMEOUT.as_secs()
    ))
}

/// `VAR` if set, else `name` in a PATH directory or in one of `extra`.
fn binary(var: &str, name: &str, extra: &[&str]) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("{name} not found (set {var} or put it on the PATH)"))
}

/// Spawns a broker that runs in the foreground, its output going to `log`.
fn spawn_child(program: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))
}

fn child_broker(kind: Backplane, port: u16, url: String, child: Child) -> Result<Broker, String> {
    let pid = child.id().ok_or_else(|| format!("{} exited at once", kind.name()))?;
    Ok(Broker {
        kind,
        url,
        port,
        pid,
        process: Process::Child(child),
    })
}

/// redis-server without persistence.
fn start_redis(port: u16, log: &Path) -> Result<Broker, String> {
    let program = binary("REDIS_SERVER", "redis-server", &[])?;
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn_child(&program, &args, log)?;
    child_broker(Backplane::Redis, port, format!("redis://127.0.0.1:{port}"), child)
}

/// nats-server with JetStream (the interop example keeps presence in it), its store beside
/// the log; no monitoring port.
fn start_nats(port: u16, log: &Path) -> Result<Broker, String> {
    let program = binary("NATS_SERVER", "nats-server", &["/usr/sbin"])?;
    let store = log.with_extension("jetstream");
    let args: Vec<String> = vec![
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-js".into(),
        "-sd".into(),
        store.display().to_string(),
    ];
    let child = spawn_child(&program, &args, log)?;
    child_broker(Backplane::Nats, port, format!("nats://127.0.0.1:{port}"), child)
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn postgres_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL not found (set PG_BIN): /usr/lib/postgresql: {e}"))?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    newest
        .map(|(_, bin)| bin)
        .ok_or_else(|| "PostgreSQL not found (set PG_BIN): no /usr/lib/postgresql/<version>/bin/initdb".into())
}

/// The program and leading arguments that run PostgreSQL's `program`: as the `postgres` user
/// (`runuser -u postgres -- PATH`) when we are root.
fn pg_program(bin: &Path, program: &str) -> (PathBuf, Vec<PathBuf>) {
    let path = bin.join(program);
    if sys::running_as_root() {
        let args = ["-u", "postgres", "--"]
            .iter()
            .map(PathBuf::from)
            .chain([path])
            .collect();
        (PathBuf::from("runuser"), args)
    } else {
        (path, Vec::new())
    }
}

fn pg_command(bin: &Path, program: &str) -> Command {
    let (program, args) = pg_program(bin, program);
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// Runs a short command to completion; its output becomes the error when it fails.
async fn run(mut command: Command, what: &str) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// An empty directory under the temp dir, owned by the postgres user when we are root.
async fn cluster_dir(tag: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hub-bench-pg-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if sys::running_as_root() {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(&dir);
        run(chown, "chown the cluster directory to postgres").await?;
    }
    Ok(dir)
}

/// A fresh cluster (initdb, trust authentication, no fsync) started with `pg_ctl`.
async fn start_postgres(port: u16, tag: &str) -> Result<Broker, String> {
    let bin = postgres_bin()?;
    let dir = cluster_dir(tag).await?;
    let data = dir.join("data");
    let mut initdb = pg_command(&bin, "initdb");
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
    run(initdb, "initdb").await?;
    // From here on, dropping the broker stops the cluster and removes the directory.
    let mut broker = Broker {
        kind: Backplane::Postgres,
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        port,
        pid: 0,
        process: Process::Cluster {
            bin: bin.clone(),
            dir: dir.clone(),
            stopped: false,
        },
    };
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        dir.display()
    );
    let mut start = pg_command(&bin, "pg_ctl");
    start
        .arg("-D")
        .arg(&data)
        .args(["-w", "-t", "30", "-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("start");
    if let Err(e) = run(start, "pg_ctl start").await {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        return Err(format!("{e}\n{log}"));
    }
    broker.pid = postmaster_pid(&data)?;
    Ok(broker)
}

/// The first line of `DATA/postmaster.pid`.
fn postmaster_pid(data: &Path) -> Result<u32, String> {
    let file = data.join("postmaster.pid");
    std::fs::read_to_string(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("{}: no process id on its first line", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backplane_names_parse() {
        assert_eq!(Backplane::parse_list("all"), Some(Backplane::ALL.to_vec()));
        assert_eq!(Backplane::parse_list("Redis"), Some(vec![Backplane::Redis]));
        assert_eq!(Backplane::parse_list("pg"), Some(vec![Backplane::Postgres]));
        assert_eq!(Backplane::parse_list("nats"), Some(vec![Backplane::Nats]));
        assert_eq!(Backplane::parse_list("kafka"), None);
    }

    fn accepts(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    /// Starts a broker of `kind`: it accepts connections, its CPU time can be read, the
    /// interop example is told its URL; stopped, it no longer accepts. Skipped when the broker
    /// is not installed, except under `CI=true`.
    async fn starts_and_stops(kind: Backplane) {
        let logs = std::env::temp_dir().join(format!("hub-bench-test-{}", std::process::id()));
        let broker = match Broker::start(kind, &logs, "unit").await {
            Ok(broker) => broker,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!("{e}"),
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                return;
            }
        };
        let port = broker.port;
        assert!(accepts(port), "{} accepts connections", kind.name());
        assert!(broker.url.contains(&format!("127.0.0.1:{port}")), "{}", broker.url);
        assert_eq!(broker.interop_args()[0], kind.interop_flag());
        assert!(broker.cpu_seconds().is_some_and(|s| s >= 0.0));
        // Nobody has subscribed to anything yet.
        let channels = broker.pubsub_channels().await;
        assert_eq!(channels, (kind == Backplane::Redis).then_some(0));
        let cluster_dir = match &broker.process {
            Process::Cluster { dir, .. } => {
                // The postmaster's forked processes count too.
                let own = sys::process_cpu_seconds(broker.pid).unwrap_or(f64::MAX);
                assert!(broker.cpu_seconds().unwrap_or(0.0) >= own);
                Some(dir.clone())
            }
            Process::Child(_) => None,
        };
        broker.stop(&logs).await;
        assert!(!accepts(port), "{} stopped", kind.name());
        if let Some(dir) = cluster_dir {
            assert!(!dir.exists(), "the cluster's directory is removed");
        }
    }

    #[tokio::test]
    async fn redis_starts_and_stops() {
        starts_and_stops(Backplane::Redis).await;
    }

    #[tokio::test]
    async fn postgres_starts_and_stops() {
        starts_and_stops(Backplane::Postgres).await;
    }

    #[tokio::test]
    async fn nats_starts_and_stops() {
        starts_and_stops(Backplane::Nats).await;
    }

    #[tokio::test]
    async fn a_dropped_cluster_is_stopped() {
        let logs = std::env::temp_dir();
        let Ok(broker) = Broker::start(Backplane::Postgres, &logs, "dropped").await else {
            eprintln!("SKIPPED: PostgreSQL not available");
            return;
        };
        let port = broker.port;
        drop(broker);
        assert!(!accepts(port), "dropping the broker stops the cluster");
    }
}
