//! The TypeScript module of a hub (feature `typescript`): names, types, uploads and streams,
//! reserved words, doc comments, and payload types that collide.

use hub_runtime::prelude::*;
use hub_runtime::types::{Binary, DateTime};
use hub_runtime::typescript::{file_name, module, TypeScriptError};
use serde::{Deserialize, Serialize};

mod a {
    /// An item of list A.
    #[derive(serde::Serialize, serde::Deserialize, ts_rs::TS)]
    pub struct Item {
        #[serde(rename = "id")]
        pub item_id: u64,
        pub when: Option<hub_runtime::types::DateTime>,
    }
}

mod b {
    #[derive(serde::Serialize, serde::Deserialize, ts_rs::TS)]
    pub struct Item {
        pub name: String,
    }
}

#[derive(Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<a::Item>,
    next_token: Option<String>,
    blob: Binary,
}

#[hub_client]
trait FilesClient {
    /// A file changed.
    fn changed(&self, path: &str, at: DateTime);
    fn confirm(&self, question: String) -> bool;
}

struct Files;

/// Files, listed and uploaded.
#[hub(client = FilesClient)]
impl Files {
    /// One page.
    fn list(&self, cx: &HubContext<Self>, r#in: String, default: Option<i64>, cancel: CancellationToken) -> Page {
        let _ = (cx, r#in, default, cancel);
        Page {
            items: Vec::new(),
            next_token: None,
            blob: Binary(Vec::new()),
        }
    }

    fn watch(&self, prefix: String) -> impl Stream<Item = Result<a::Item, HubError>> {
        let _ = prefix;
        futures_util::stream::empty()
    }

    async fn upload(&self, name: String, chunks: ClientStream<Binary>) -> Result<usize, HubError> {
        let _ = name;
        Ok(chunks.collect_all().await?.len())
    }

    #[hub(name = "remove-all")]
    fn remove_all(&self) {}

    #[hub(skip)]
    fn helper(&self) {}

    #[hub(on_connected)]
    fn hello(&self) {
        self.helper();
    }
}

struct Clash;

#[hub]
impl Clash {
    fn first(&self, item: a::Item) -> b::Item {
        let _ = item;
        b::Item { name: String::new() }
    }
}

#[test]
fn a_hub_becomes_one_module() {
    let ts = module::<Files>().unwrap();
    assert_eq!(file_name::<Files>(), "Files.ts");
    let expected = [
        "import type { HubConnection, IStreamResult, Subject } from \"@microsoft/signalr\";",
        "/**\n * An item of list A.\n */\nexport type Item = { id: number, when: string | Date | null, };",
        "export type Page = { items: Array<Item>, nextToken: string | null, blob: string | Uint8Array, };",
        "/**\n * Files, listed and uploaded.\n */\nexport interface Files {",
        "  /**\n   * One page.\n   */\n  list(in_: string, default_: number | null): Promise<Page>;",
        "  watch(prefix: string): IStreamResult<Item>;",
        "  upload(name: string, chunks: IStreamResult<string | Uint8Array> | Subject<string | Uint8Array>): Promise<number>;",
        "  removeAll(): Promise<void>;\n}",
        "export function createFilesProxy(connection: HubConnection): Files {",
        "    list: (in_, default_) => connection.invoke<Page>(\"List\", in_, default_),",
        "    watch: (prefix) => connection.stream<Item>(\"Watch\", prefix),",
        "    upload: (name, chunks) => connection.invoke<number>(\"Upload\", name, chunks),",
        "    removeAll: () => connection.invoke<void>(\"remove-all\"),",
        "export interface FilesClient {\n  /**\n   * A file changed.\n   */\n  changed(path: string, at: string | Date): void | Promise<void>;\n  confirm(question: string): boolean | Promise<boolean>;\n}",
        "export function registerFilesClient(connection: HubConnection, receiver: FilesClient): { dispose(): void } {",
        "    [\"Changed\", async (path: string, at: string | Date) => { await receiver.changed(path, at); }],",
        "    [\"Confirm\", (question: string) => receiver.confirm(question)],",
    ];
    for text in expected {
        assert!(ts.contains(text), "missing\n{text}\nin\n{ts}");
    }
    for absent in ["helper", "hello", "cancel", "cx", "bigint"] {
        assert!(!ts.contains(absent), "{absent} in\n{ts}");
    }
}

#[test]
fn two_payload_types_of_one_name_are_an_error() {
    let error = module::<Clash>().unwrap_err();
    assert_eq!(error, TypeScriptError::NameCollision { name: "Item".into() });
    assert!(error.to_string().contains("`Item`"));
}
