//! The interop hubs' TypeScript typings (`interop --emit-typescript DIR`) are committed under
//! `examples/js/typings/`: this fails when regenerating them changes anything. To accept a
//! change, run it with `UPDATE_TYPINGS=1` and review the diff.

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

#[test]
fn committed_typings_match_the_hub_definitions() {
    let out = std::env::temp_dir().join(format!("hub-typings-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_interop"))
        .arg("--emit-typescript")
        .arg(&out)
        .status()
        .expect("interop runs");
    assert!(status.success(), "interop --emit-typescript failed: {status}");
    let generated = ts_files(&out);
    let _ = std::fs::remove_dir_all(&out);
    let names: Vec<&str> = generated.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "BroadcastHub.ts",
            "HubWithAuthorization.ts",
            "TestHub.ts",
            "Uncreatable.ts"
        ],
        "one module per hub type"
    );

    let committed_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/typings");
    if std::env::var_os("UPDATE_TYPINGS").is_some() {
        for (name, text) in &generated {
            std::fs::write(committed_dir.join(name), text).expect("writing a typing");
        }
    }
    let committed = ts_files(&committed_dir);
    for (name, text) in &generated {
        assert_eq!(
            committed.get(name),
            Some(text),
            "examples/js/typings/{name} differs from what `interop --emit-typescript` writes; rerun this test with UPDATE_TYPINGS=1 and commit the result"
        );
    }
    let stale: Vec<&String> = committed.keys().filter(|n| !generated.contains_key(*n)).collect();
    assert!(stale.is_empty(), "typings no hub generates any more: {stale:?}");
}
