//! Starting and stopping the servers under test: each round gets a fresh process, so its
//! resident memory and CPU time belong to that round alone.

// libc calls (kill(2) on our own child); each block says why it is sound.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The `interop` example (hub).
    Hub,
    /// The floor (`hub-bench floor`).
    Floor,
    /// The Socket.IO peer: socketioxide (`hub-bench sioxide`).
    Sioxide,
    /// The feature-cost scenarios' hub server (`hub-bench hub-server`).
    BenchHub,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Hub => "hub",
            Target::Floor => "floor",
            Target::Sioxide => "sioxide",
            Target::BenchHub => "bench-hub",
        }
    }
}

/// A running server process.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub target: Target,
    pub log: PathBuf,
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Launch {
    pub interop: PathBuf,
    /// Extra arguments for the interop server (`--short-timeouts`) or the bench hub server
    /// (`--redis URL`).
    pub interop_args: Vec<String>,
    pub floor_exe: PathBuf,
    pub listen: String,
    pub log_dir: PathBuf,
}

impl Server {
    /// Starts `target` and waits (at most 30 s) for its `listening on http://ADDR` line.
    pub async fn start(target: Target, launch: &Launch, tag: &str) -> Result<Server, String> {
        let mut command = match target {
            Target::Hub => {
                let mut c = Command::new(&launch.interop);
                c.args(["--addr", &launch.listen]);
                c.args(&launch.interop_args);
                c
            }
            Target::Floor | Target::Sioxide => {
                let mut c = Command::new(&launch.floor_exe);
                c.args([target.name(), "--addr", &launch.listen]);
                c
            }
            Target::BenchHub => {
                let mut c = Command::new(&launch.floor_exe);
                c.args(["hub-server", "--addr", &launch.listen]);
                c.args(&launch.interop_args);
                c
            }
        };
        std::fs::create_dir_all(&launch.log_dir).map_err(|e| format!("{}: {e}", launch.log_dir.display()))?;
        let log = launch.log_dir.join(format!("{}-{tag}.stderr.log", target.name()));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program(target, launch).display()))?;
        let pid = child.id().ok_or("server exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    return addr
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("bad address '{addr}': {e}"));
                }
            }
            Err("the server exited before listening".to_string())
        })
        .await
        .map_err(|_| "the server did not say where it listens within 30 s".to_string())??;
        // Keep draining stdout so the server never blocks on (or dies from) a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            pid,
            addr,
            target,
            log,
        })
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s. Returns its number of log lines
    /// (warnings and errors).
    pub async fn stop(mut self) -> usize {
        // SAFETY: kill on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
        std::fs::read_to_string(&self.log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

fn program(target: Target, launch: &Launch) -> &Path {
    match target {
        Target::Hub => &launch.interop,
        Target::Floor | Target::Sioxide | Target::BenchHub => &launch.floor_exe,
    }
}
