//! The committed TypeScript typings match the hub definitions: the interop hubs' modules
//! (`interop --emit-typescript DIR`) under `examples/js/typings/`, and the chat hub's
//! (`chat --emit-typescript DIR`) under `examples/web/generated/`, which the chat page is written
//! against. These tests fail when regenerating changes anything. To accept a change, run them
//! with `UPDATE_TYPINGS=1` and review the diff (then rebuild the chat page: `npm run build:web`
//! in `examples/js`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ts_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ts"))
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a UTF-8 module");
            (name, text)
        })
        .collect()
}

/// One example binary's `--emit-typescript` output and where it is committed.
struct Golden {
    /// The binary's name, for messages.
    program: &'static str,
    /// Its path (`CARGO_BIN_EXE_…`).
    binary: &'static str,
    /// The committed modules' folder, relative to `examples/`.
    committed: &'static str,
    /// The module names the binary must write, one per hub type, sorted.
    modules: &'static [&'static str],
}

impl Golden {
    fn check(&self) {
        let program = self.program;
        let out = std::env::temp_dir().join(format!("hub-typings-{program}-{}", std::process::id()));
        let status = Command::new(self.binary)
            .arg("--emit-typescript")
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
        assert!(status.success(), "{program} --emit-typescript failed: {status}");
        let generated = ts_files(&out);
        let _ = std::fs::remove_dir_all(&out);
        let names: Vec<&str> = generated.keys().map(String::as_str).collect();
        assert_eq!(names, self.modules, "one module per hub type");

        let committed_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(self.committed);
        if std::env::var_os("UPDATE_TYPINGS").is_some() {
            std::fs::create_dir_all(&committed_dir).expect("creating the typings folder");
            for (name, text) in &generated {
                std::fs::write(committed_dir.join(name), text).expect("writing a typing");
            }
        }
        let committed = ts_files(&committed_dir);
        for (name, text) in &generated {
            assert_eq!(
                committed.get(name),
                Some(text),
                "examples/{}/{name} differs from what `{program} --emit-typescript` writes; rerun this test with UPDATE_TYPINGS=1 and commit the result",
                self.committed
            );
        }
        let stale: Vec<&String> = committed.keys().filter(|n| !generated.contains_key(*n)).collect();
        assert!(stale.is_empty(), "typings no hub generates any more: {stale:?}");
    }
}

#[test]
fn committed_typings_match_the_hub_definitions() {
    Golden {
        program: "interop",
        binary: env!("CARGO_BIN_EXE_interop"),
        committed: "js/typings",
        modules: &[
            "BroadcastHub.ts",
            "HubWithAuthorization.ts",
            "TestHub.ts",
            "Uncreatable.ts",
        ],
    }
    .check();
}

#[test]
fn committed_chat_typings_match_the_chat_hub() {
    Golden {
        program: "chat",
        binary: env!("CARGO_BIN_EXE_chat"),
        committed: "web/generated",
        modules: &["ChatHub.ts"],
    }
    .check();
}
