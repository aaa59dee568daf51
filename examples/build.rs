//! Makes the official SignalR browser client available to the example pages: installs the
//! pinned npm packages (`examples/js/package-lock.json`) when they are missing, then points
//! the examples at the bundle so it is embedded (the pages load nothing from the internet).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let js = dir.join("js");
    let bundle = js.join("node_modules/@microsoft/signalr/dist/browser/signalr.min.js");
    println!("cargo:rerun-if-changed=js/package-lock.json");
    println!("cargo:rerun-if-changed={}", bundle.display());
    if !bundle.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&js)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!(
                "`npm ci` in {} failed ({s}); the chat example needs the official SignalR client from npm",
                js.display()
            ),
            Err(e) => panic!(
                "could not run `npm ci` in {} ({e}): install Node.js and npm to build the chat example",
                js.display()
            ),
        }
    }
    println!("cargo:rustc-env=SIGNALR_BROWSER_JS={}", bundle.display());
}
