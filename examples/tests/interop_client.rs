//! `interop-client` against the `interop` server: every check passes and the exit status is 0;
//! against no server, every check fails with its reason and the exit status is 1.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// A running `interop` on a free port, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_interop"))
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("interop starts");
        let stdout = child.stdout.take().expect("interop's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("interop prints a line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_client(args: &[&str]) -> (Output, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_interop-client"))
        .args(args)
        .output()
        .expect("interop-client runs");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (output, lines)
}

#[test]
fn every_check_passes_against_interop() {
    let server = Server::start();
    let (output, lines) = interop_client(&["--url", &server.url, "--transport", "WebSockets", "--protocol", "json"]);
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let checks = lines.len() - 1;
    assert!(checks >= 20, "{lines:#?}");
    assert_eq!(lines.last(), Some(&format!("{checks} passed, 0 failed")));
    assert!(lines
        .iter()
        .any(|l| l.contains("WebSockets/json") && l.contains("StreamingConcat")));
    assert!(output.status.success(), "{:?}", output.status);
}

#[test]
fn every_check_fails_with_its_reason_without_a_server() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (output, lines) = interop_client(&["--url", &url, "--transport", "LongPolling"]);
    let (summary, checks) = lines.split_last().expect("a summary line");
    assert!(checks.len() >= 40, "{lines:#?}");
    assert_eq!(summary, &format!("0 passed, {} failed", checks.len()));
    for line in checks {
        assert!(line.starts_with("FAIL  LongPolling/"), "{line}");
        assert!(line.contains(": "), "a failure says why: {line}");
    }
    assert_eq!(output.status.code(), Some(1));
}
