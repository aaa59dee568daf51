//! The chat demo: a web page using the official JavaScript client. Pick a name, join rooms
//! (groups), send messages, see who joins and leaves.
//!
//! Run with `cargo run --release --bin chat`, then open http://127.0.0.1:5000/.

const PROGRAM: &str = "chat";

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use hub_runtime::prelude::*;
use warp::Filter;

#[hub_client]
trait ChatClient {
    /// Someone joined a room (sent to the room, the newcomer included).
    fn user_joined(&self, room: &str, name: &str);
    /// Someone left a room.
    fn user_left(&self, room: &str, name: &str);
    /// A message in a room.
    fn receive_message(&self, room: &str, name: &str, text: &str);
}

/// The caller's chosen name, kept per connection.
#[derive(Clone)]
struct Nick(String);

/// Rooms and who is in them: room → (connection id → name).
#[derive(Default)]
struct ChatHub {
    rooms: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

const MAX_NAME: usize = 40;
const MAX_ROOM: usize = 40;
const MAX_TEXT: usize = 2000;

fn check(what: &str, value: &str, max: usize) -> Result<(), HubError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(HubError::for_client(format!("{what} must be 1 to {max} characters")));
    }
    Ok(())
}

impl ChatHub {
    fn members(&self, room: &str) -> Vec<String> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let names: BTreeSet<&String> = rooms.get(room).map(|m| m.values().collect()).unwrap_or_default();
        names.into_iter().cloned().collect()
    }

    /// Removes a connection from a room; returns whether it was there.
    fn forget(&self, room: &str, connection_id: &str) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let Some(members) = rooms.get_mut(room) else {
            return false;
        };
        let was = members.remove(connection_id).is_some();
        if members.is_empty() {
            rooms.remove(room);
        }
        was
    }

    fn rooms_of(&self, connection_id: &str) -> Vec<String> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .iter()
            .filter(|(_, m)| m.contains_key(connection_id))
            .map(|(r, _)| r.clone())
            .collect()
    }
}

#[hub(client = ChatClient)]
impl ChatHub {
    /// Joins a room under a name; returns who is in it now.
    async fn join(&self, cx: &HubContext<Self>, room: String, name: String) -> Result<Vec<String>, HubError> {
        check("a name", &name, MAX_NAME)?;
        check("a room name", &room, MAX_ROOM)?;
        let (room, name) = (room.trim().to_string(), name.trim().to_string());
        cx.items().insert(Nick(name.clone()));
        cx.groups.add(cx.connection_id(), &room).await?;
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(room.clone())
            .or_default()
            .insert(cx.connection_id().to_string(), name.clone());
        cx.clients.group(&room).user_joined(&room, &name).await?;
        Ok(self.members(&room))
    }

    /// Leaves a room.
    async fn leave(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
        if self.forget(&room, cx.connection_id()) {
            let name = cx.items().get::<Nick>().map(|n| n.0).unwrap_or_default();
            cx.clients.group(&room).user_left(&room, &name).await?;
        }
        cx.groups.remove(cx.connection_id(), &room).await?;
        Ok(())
    }

    /// Sends a message to a room the caller is in.
    async fn send_message(&self, cx: &HubContext<Self>, room: String, text: String) -> Result<(), HubError> {
        check("a message", &text, MAX_TEXT)?;
        if !self.rooms_of(cx.connection_id()).contains(&room) {
            return Err(HubError::for_client(format!("join '{room}' before writing to it")));
        }
        let name = cx.items().get::<Nick>().map(|n| n.0).unwrap_or_default();
        cx.clients.group(&room).receive_message(&room, &name, &text).await?;
        Ok(())
    }

    #[hub(on_disconnected)]
    async fn gone(&self, cx: &HubContext<Self>) {
        let name = cx.items().get::<Nick>().map(|n| n.0).unwrap_or_default();
        for room in self.rooms_of(cx.connection_id()) {
            self.forget(&room, cx.connection_id());
            let _ = cx.clients.group(&room).user_left(&room, &name).await;
        }
    }
}

/// The chat demo: a web page where people pick a name, join rooms and talk.
/// Open http://ADDR/ in two browser windows.
#[derive(clap::Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: hub_examples::Args,
    /// Writes the TypeScript typings of the hub (`DIR/ChatHub.ts`, for `@microsoft/signalr`)
    /// and exits. The page's `examples/web/chat.ts` is written against them.
    #[arg(long, value_name = "DIR")]
    emit_typescript: Option<std::path::PathBuf>,
}

/// `--emit-typescript DIR`: the hub's module, `DIR/ChatHub.ts`.
fn emit_typescript(dir: &std::path::Path) -> std::io::Result<()> {
    use hub_runtime::typescript::{file_name, module};

    let text = module::<ChatHub>().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(file_name::<ChatHub>()), text)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    hub_examples::init_logging();
    let cli = <Cli as clap::Parser>::parse();
    if let Some(dir) = &cli.emit_typescript {
        return emit_typescript(dir);
    }
    let args = cli.common;
    let server = hub_examples::builder(&args, PROGRAM)
        .await
        .options(args.hub_options(hub_runtime::HubOptions::default()))
        .hub("/chat", ChatHub::default())
        .build();

    let routes = server.filter().or(PAGE.routes()).unify().boxed();

    let (listener, addr) = hub_runtime::server::bind(args.addr).await?;
    println!("listening on {}://{addr}", args.scheme());
    println!("open {}://{addr}/ in two browser windows to chat", args.scheme());
    hub_examples::serve(&args, server, listener, routes).await
}

/// The page: `examples/web/`. `chat.js` is compiled from `chat.ts` and the generated
/// `generated/ChatHub.ts` (`npm run build:web` in `examples/js`) and committed, so this binary
/// builds without a TypeScript toolchain.
const PAGE: hub_examples::WebPage = hub_examples::WebPage {
    index_html: include_str!("../../web/index.html"),
    script_name: "chat.js",
    script: include_str!("../../web/chat.js"),
    style_name: "chat.css",
    style: include_str!("../../web/chat.css"),
};
