//! Client results: the server asks the browser a question and waits for its answer.
//!
//! The page lists items. Its Delete button invokes the `Delete(id)` hub method, which does not
//! delete at once: it calls `ConfirmDelete(item)` on the caller's page, a `#[hub_client]` method
//! with a return type (`-> bool`), and awaits the answer. The page's
//! `connection.on('ConfirmDelete', ...)` handler shows a Yes/No dialog and returns the click as a
//! promise. Yes deletes the item (every page's list updates), No keeps it, and no answer within
//! `--confirm-timeout` seconds (the server's client-result timeout) keeps it too.
//!
//! Run with `cargo run --release --bin confirm`, then open http://127.0.0.1:5000/. `--help`
//! lists the options.

use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use hub_runtime::prelude::*;
use serde::Serialize;
use warp::Filter;

const PROGRAM: &str = "confirm";

/// The items a fresh server starts with.
const DEFAULT_ITEMS: [&str; 4] = [
    "quarterly-report.pdf",
    "holiday-photos.zip",
    "notes.txt",
    "old-backup.tar",
];
const MAX_NAME: usize = 60;

/// Client results: the page's Delete buttons make the server ask the page "delete X?" and wait
/// for its answer. Open http://ADDR/ in a browser.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: hub_examples::Args,
    /// How long the server waits for the page's answer (its client-result timeout) before it
    /// keeps the item [default: 30, or 2 with --short-timeouts].
    #[arg(long, value_name = "SECONDS", value_parser = hub_examples::parse_seconds)]
    confirm_timeout: Option<Duration>,
}

#[hub_client]
trait ConfirmClient {
    /// Asks the page whether to delete an item; the page answers true or false.
    fn confirm_delete(&self, item: Item) -> bool;
    /// The list changed (sent to every page).
    fn items_changed(&self, items: Vec<Item>);
}

#[derive(Debug, Clone, Serialize)]
struct Item {
    id: u64,
    name: String,
}

/// What became of a `Delete`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
enum Outcome {
    /// The page said yes; the item is gone.
    Deleted,
    /// The page said no.
    Kept,
    /// The page did not answer within the client-result timeout; the item is kept.
    NoAnswer,
    /// The page said yes, but someone else deleted the item meanwhile.
    AlreadyGone,
}

#[derive(Default)]
struct ItemList {
    next_id: u64,
    items: Vec<Item>,
}

#[derive(Default)]
struct Confirm {
    list: Mutex<ItemList>,
}

impl Confirm {
    fn with_items(names: &[&str]) -> Self {
        let confirm = Confirm::default();
        for name in names {
            confirm.insert(name);
        }
        confirm
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ItemList> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, name: &str) -> Item {
        let mut list = self.lock();
        list.next_id += 1;
        let item = Item {
            id: list.next_id,
            name: name.to_string(),
        };
        list.items.push(item.clone());
        item
    }

    fn snapshot(&self) -> Vec<Item> {
        self.lock().items.clone()
    }

    fn find(&self, id: u64) -> Option<Item> {
        self.lock().items.iter().find(|i| i.id == id).cloned()
    }

    /// Removes an item; returns whether it was there.
    fn remove(&self, id: u64) -> bool {
        let mut list = self.lock();
        let before = list.items.len();
        list.items.retain(|i| i.id != id);
        list.items.len() != before
    }
}

#[hub(client = ConfirmClient)]
impl Confirm {
    /// The current list.
    fn items(&self) -> Vec<Item> {
        self.snapshot()
    }

    /// Adds an item (1 to 60 characters); every page gets the new list.
    async fn add(&self, cx: &HubContext<Self>, name: String) -> Result<Item, HubError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(HubError::for_client(format!(
                "a name must be 1 to {MAX_NAME} characters"
            )));
        }
        let item = self.insert(name);
        cx.clients.all().items_changed(self.snapshot()).await?;
        Ok(item)
    }

    /// Deletes an item once the caller's page confirms it (a client result).
    async fn delete(&self, cx: &HubContext<Self>, id: u64) -> Result<Outcome, HubError> {
        let item = self
            .find(id)
            .ok_or_else(|| HubError::for_client(format!("there is no item {id}")))?;
        let outcome = match cx.clients.caller().confirm_delete(item).await {
            Ok(true) if self.remove(id) => Outcome::Deleted,
            Ok(true) => Outcome::AlreadyGone,
            Ok(false) => Outcome::Kept,
            Err(ClientResultError::Timeout) => Outcome::NoAnswer,
            Err(e) => return Err(HubError::for_client(format!("could not ask for confirmation: {e}"))),
        };
        if let Outcome::Deleted = outcome {
            cx.clients.all().items_changed(self.snapshot()).await?;
        }
        Ok(outcome)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    hub_examples::init_logging();
    let cli = Cli::parse();
    let args = cli.common;
    let mut options = args.hub_options(hub_runtime::HubOptions {
        client_result_timeout: Duration::from_secs(30),
        ..Default::default()
    });
    if let Some(timeout) = cli.confirm_timeout {
        options.client_result_timeout = timeout;
    }
    let server = hub_examples::builder(&args, PROGRAM)
        .await
        .options(options)
        .hub("/confirm", Confirm::with_items(&DEFAULT_ITEMS))
        .build();

    let routes = server.filter().or(PAGE.routes()).unify().boxed();

    let (listener, addr) = hub_runtime::server::bind(args.addr).await?;
    println!("listening on {}://{addr}", args.scheme());
    println!("open {}://{addr}/ and delete something", args.scheme());
    hub_examples::serve(&args, server, listener, routes).await
}

/// The page: `examples/web/confirm/`.
const PAGE: hub_examples::WebPage = hub_examples::WebPage {
    index_html: include_str!("../../web/confirm/index.html"),
    script_name: "confirm.js",
    script: include_str!("../../web/confirm/confirm.js"),
    style_name: "confirm.css",
    style: include_str!("../../web/confirm/confirm.css"),
};
