//! Private brokers for the scale-out tests: a `redis-server`, a PostgreSQL cluster or a
//! `nats-server` of the test's own, on a free loopback port, stopped and restarted at will and
//! torn down when dropped.
//!
//! Binaries: `REDIS_SERVER` or `redis-server` on the PATH; `PG_BIN` (the directory with `initdb`
//! and `pg_ctl`) or the newest `/usr/lib/postgresql/<version>/bin`; `NATS_SERVER` or
//! `nats-server` on the PATH or in `/usr/sbin`. `scripts/test-all` installs them. When one is
//! missing, [`require`] skips the test with a message, except under `CI=true`, where a missing
//! broker fails the test: CI must never pass by testing nothing.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// `Some(path)` if the broker's binary was found; otherwise `None` after printing why the test is
/// skipped — or a panic under `CI=true`.
pub fn require(broker: &str, binary: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = binary {
        return Some(path);
    }
    let message = format!("{broker} is not installed (scripts/test-all installs it)");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{message}; CI=true, so a missing broker fails the test");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

fn on_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn from_env_or(var: &str, name: &str, extra: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None => on_path(name, extra),
    }
}

async fn accepting(what: &str, port: u16) {
    eventually_long(what, || TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
}

async fn refusing(what: &str, port: u16) {
    eventually_long(what, || TcpStream::connect(("127.0.0.1", port)).is_err()).await;
}

/// As `eventually`, with room for a broker that takes a few seconds to start on a busy machine.
async fn eventually_long(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after 30 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(child: &Child, signal: &str) {
    let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A private `redis-server` without persistence.
pub struct Redis {
    binary: PathBuf,
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Redis {
    /// Starts one on a free port; `None` (skipped) if redis-server is not installed.
    pub async fn start() -> Option<Redis> {
        let binary = require("redis-server", from_env_or("REDIS_SERVER", "redis-server", &[]))?;
        let port = free_port();
        let child = Redis::spawn(&binary, port);
        accepting("redis-server accepts connections", port).await;
        Some(Redis {
            binary,
            child,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    fn spawn(binary: &Path, port: u16) -> Child {
        Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
    }

    /// Kills it: every connection drops.
    pub async fn stop(&mut self) {
        kill(&mut self.child);
        refusing("redis-server stopped", self.port).await;
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.child = Redis::spawn(&self.binary, self.port);
        accepting("redis-server accepts connections again", self.port).await;
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn freeze(&self) {
        signal(&self.child, "-STOP");
    }

    /// SIGCONT after [`Redis::freeze`].
    pub fn thaw(&self) {
        signal(&self.child, "-CONT");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.thaw();
        kill(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A private PostgreSQL cluster (trust authentication, `fsync=off`), owned by the `postgres`
/// user when the tests run as root (initdb and postgres refuse to run as root).
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub url: String,
    settings: Vec<String>,
}

fn postgres_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    let program = bin.join(program);
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory under the temp dir the postgres user may write.
fn owned_temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hub-pg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    if running_as_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:postgres"]).arg(&dir);
                c
            },
            "chown the cluster directory",
        );
    }
    dir
}

/// One initdb per test process (about 2 s); every cluster starts as a copy of it.
fn template(bin: &Path) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        remove_stale_clusters();
        let dir = owned_temp_dir("template");
        let data = dir.join("data");
        let mut initdb = pg_command(bin, "initdb");
        initdb
            .args(["-D"])
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(initdb, "initdb");
        data
    })
}

/// The template (and any cluster a killed test left) outlives its test process: the next process
/// removes the directories of processes that are gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `hub-pg-{pid}-…`; anything else is not ours to remove.
        let Some(pid) = name
            .strip_prefix("hub-pg-")
            .and_then(|rest| rest.split('-').next())
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let data = entry.path().join("data");
            if data.join("postmaster.pid").exists() {
                // A cluster still running from a killed process: stop it first.
                let _ = Command::new("kill")
                    .arg(
                        std::fs::read_to_string(data.join("postmaster.pid"))
                            .unwrap_or_default()
                            .lines()
                            .next()
                            .unwrap_or("0"),
                    )
                    .status();
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

static NEXT_CLUSTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Postgres {
    /// Starts a cluster on a free port; `None` (skipped) if PostgreSQL is not installed.
    pub async fn start() -> Option<Postgres> {
        Postgres::start_with(&[]).await
    }

    /// Starts a cluster with extra settings (`"ssl=on"`, `"max_connections=20"`…), each passed
    /// to the server as `-c NAME=VALUE`.
    pub async fn start_with(settings: &[&str]) -> Option<Postgres> {
        let bin = require("PostgreSQL (initdb, pg_ctl)", postgres_bin())?;
        let bin_for_template = bin.clone();
        let template = tokio::task::spawn_blocking(move || template(&bin_for_template).to_path_buf())
            .await
            .expect("initdb");
        let n = NEXT_CLUSTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = owned_temp_dir(&format!("cluster{n}"));
        // `cp -a` keeps the owner (postgres) and the 0700 mode the server insists on.
        run(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(&template).arg(dir.join("data"));
                c
            },
            "copy the template cluster",
        );
        let port = free_port();
        let mut postgres = Postgres {
            bin,
            dir,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        postgres.restart().await;
        Some(postgres)
    }

    /// The cluster's directory (its data directory is `dir()/data`); files placed here (TLS
    /// keys…) must be readable by the `postgres` user: see [`Postgres::give_to_postgres`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `path` owned by the postgres user (when running as root) with mode 0600.
    pub fn give_to_postgres(&self, path: &Path) {
        if running_as_root() {
            let mut c = Command::new("chown");
            c.arg("postgres:postgres").arg(path);
            run(c, "chown");
        }
        let mut c = Command::new("chmod");
        c.arg("600").arg(path);
        run(c, "chmod");
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = pg_command(&self.bin, "pg_ctl");
        command.arg("-D").arg(self.dir.join("data")).args(args);
        command
    }

    /// Stops the server at once (`-m immediate`): every connection drops.
    pub async fn stop(&mut self) {
        run(self.pg_ctl(&["-m", "immediate", "-w", "stop"]), "pg_ctl stop");
        refusing("postgres stopped", self.port).await;
    }

    /// Starts the server (again) on the same port with the same settings.
    pub async fn restart(&mut self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.dir.join("log");
        let mut start = self.pg_ctl(&["-w", "-t", "30", "-o", &options, "-l"]);
        start.arg(&log).arg("start");
        let out = start
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("pg_ctl start: {e}"));
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        accepting("postgres accepts connections", self.port).await;
    }

    /// Runs SQL through `psql` (next to pg_ctl, or on the PATH) and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let psql = [self.bin.join("psql"), PathBuf::from("psql")]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let out = Command::new(psql)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// NATS

/// A private `nats-server` with JetStream on, its store in a directory of its own that outlives
/// [`Nats::stop`] (a restarted server finds its streams again) and is removed on drop.
pub struct Nats {
    binary: PathBuf,
    child: Child,
    args: Vec<String>,
    store: PathBuf,
    pub port: u16,
    /// `nats://127.0.0.1:PORT`
    pub url: String,
}

impl Nats {
    /// Starts one on a free port; `None` (skipped) if nats-server is not installed.
    pub async fn start() -> Option<Nats> {
        Nats::start_with(&[]).await
    }

    /// Starts one with extra arguments (`--user`, `--tls`…).
    pub async fn start_with(args: &[&str]) -> Option<Nats> {
        let binary = require("nats-server", from_env_or("NATS_SERVER", "nats-server", &["/usr/sbin"]))?;
        let port = free_port();
        let store = std::env::temp_dir().join(format!("hub-nats-{}-{port}", std::process::id()));
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["-js".to_string(), "-sd".to_string(), store.display().to_string()]);
        let child = Nats::spawn(&binary, port, &args);
        accepting("nats-server accepts connections", port).await;
        Some(Nats {
            binary,
            child,
            args,
            store,
            port,
            url: format!("nats://127.0.0.1:{port}"),
        })
    }

    fn spawn(binary: &Path, port: u16, args: &[String]) -> Child {
        Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
    }

    /// Kills it: every connection drops.
    pub async fn stop(&mut self) {
        kill(&mut self.child);
        refusing("nats-server stopped", self.port).await;
    }

    /// Starts it again on the same port with the same arguments.
    pub async fn restart(&mut self) {
        self.child = Nats::spawn(&self.binary, self.port, &self.args);
        accepting("nats-server accepts connections again", self.port).await;
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn freeze(&self) {
        signal(&self.child, "-STOP");
    }

    /// SIGCONT after [`Nats::freeze`].
    pub fn thaw(&self) {
        signal(&self.child, "-CONT");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.thaw();
        kill(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
