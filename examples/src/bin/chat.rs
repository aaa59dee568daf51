//! The chat demo: a web page using the official JavaScript client. Pick a name, join rooms
//! (groups), send messages, see who joins and leaves.
//!
//! Run with `cargo run --release --bin chat`, then open http://127.0.0.1:5000/.
//!
//! Who is in a room comes from presence (`#[hub(presence(...))]`, `cx.groups.members`): the
//! hub keeps no room map of its own. The name a page picks is its connection's user id (the
//! `name` query parameter), so two pages with one name are one member. Every room keeps a
//! history (`cx.history`): a page shows the recent messages when it joins, and after a
//! reconnect or a reload it resumes from the last position it saw, so it shows what it missed,
//! once. With `--redis URL` the backplane, presence and history live in Redis (with
//! `--postgres URL` in PostgreSQL, with `--nats URL` history in NATS JetStream), so several
//! servers act as one chat and a page may come back on any of them.

const PROGRAM: &str = "chat";

use hub_runtime::history::{GroupPattern, HistoryEvent, HistoryRule, Position};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use serde::{Deserialize, Serialize};
use warp::Filter;

#[hub_client]
trait ChatClient {
    /// A user's first connection joined a room (sent to the room, the newcomer included).
    fn user_joined(&self, room: String, name: String);
    /// A user's last connection left a room (or its server stopped).
    fn user_left(&self, room: String, name: String);
    /// A message, for a room the server keeps no history of. This server's rule covers every
    /// room on every backplane, so messages come through `Subscribe`; the page still takes it.
    fn receive_message(&self, room: String, name: String, text: String);
}

/// What a room's history keeps per message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    name: String,
    text: String,
}

/// A message of a room, with its offset in the room's history.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
struct Posted {
    /// Its offset in the room's current epoch.
    offset: i64,
    /// Who wrote it.
    name: String,
    /// What they wrote.
    text: String,
}

/// Where a page stands in a room's history (a position from `Join` or `Subscribe`).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
struct Mark {
    /// One unbroken history of the room.
    epoch: String,
    /// The last message seen (0: none).
    offset: i64,
}

/// A room as a page finds it when it joins.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
struct RoomView {
    /// The users in the room, on every server, sorted.
    members: Vec<String>,
    /// The room's latest messages, oldest first.
    recent: Vec<Posted>,
    /// The position of the last of them: subscribe from here. None when rooms keep no
    /// history (messages then come as `ReceiveMessage`).
    position: Option<Mark>,
}

/// The first item of a `Subscribe` stream, and the item sent when the room's history starts
/// again (a new epoch).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
struct Resumed {
    /// Whether every message after the asked position follows; false when history no longer
    /// has them.
    recovered: bool,
    /// The room's current position.
    epoch: String,
    /// The room's current offset.
    offset: i64,
}

/// An item of a `Subscribe` stream: a header or a message (untagged).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(untagged)]
enum RoomItem {
    /// `{recovered, epoch, offset}`.
    Resumed(Resumed),
    /// `{offset, name, text}`.
    Posted(Posted),
}

/// The chat hub. It keeps nothing: members come from presence, messages from history.
struct ChatHub {
    /// How many of a room's latest messages `Join` returns.
    recent: usize,
}

const MAX_NAME: usize = 40;
const MAX_ROOM: usize = 40;
const MAX_TEXT: usize = 2000;

fn check(what: &str, value: &str, max: usize) -> Result<(), HubError> {
    if value.trim().is_empty() || value.trim() != value || value.chars().count() > max {
        return Err(HubError::for_client(format!(
            "{what} must be 1 to {max} characters, without spaces around"
        )));
    }
    Ok(())
}

/// The caller's name: its user id.
fn name_of(cx: &HubContext<ChatHub>) -> Result<String, HubError> {
    cx.user_id()
        .map(str::to_string)
        .ok_or_else(|| HubError::for_client("connect with a name: /chat?name=..."))
}

fn history_error(e: hub_runtime::history::HistoryError) -> HubError {
    HubError::for_client(format!("room history: {e}"))
}

#[hub(client = ChatClient, presence(joined = "UserJoined", left = "UserLeft"))]
impl ChatHub {
    /// Joins a room; returns who is in it and its latest messages.
    async fn join(&self, cx: &HubContext<Self>, room: String) -> Result<RoomView, HubError> {
        name_of(cx)?;
        check("a room name", &room, MAX_ROOM)?;
        cx.groups.add(cx.connection_id(), &room).await?;
        let members = cx.groups.members(&room).await?;
        let members = members.into_iter().map(|m| m.user).collect();
        if cx.history.limits(&room).is_none() {
            return Ok(RoomView {
                members,
                recent: Vec::new(),
                position: None,
            });
        }
        let recent = cx
            .history
            .last::<Line>(&room, self.recent)
            .await
            .map_err(history_error)?;
        Ok(RoomView {
            members,
            recent: recent
                .items
                .into_iter()
                .map(|item| Posted {
                    offset: item.offset,
                    name: item.message.name,
                    text: item.message.text,
                })
                .collect(),
            position: Some(Mark {
                epoch: recent.position.epoch,
                offset: recent.position.offset,
            }),
        })
    }

    /// Leaves a room.
    async fn leave(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
        cx.groups.remove(cx.connection_id(), &room).await?;
        Ok(())
    }

    /// Sends a message to a room the caller is in (through its history, to its subscribers).
    async fn send_message(&self, cx: &HubContext<Self>, room: String, text: String) -> Result<(), HubError> {
        let name = name_of(cx)?;
        if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
            return Err(HubError::for_client(format!(
                "a message must be 1 to {MAX_TEXT} characters"
            )));
        }
        let members = cx.groups.members(&room).await?;
        if !members.iter().any(|m| m.user == name) {
            return Err(HubError::for_client(format!("join '{room}' before writing to it")));
        }
        if cx.history.limits(&room).is_none() {
            cx.clients
                .group(&room)
                .receive_message(room.clone(), name, text)
                .await?;
            return Ok(());
        }
        cx.history
            .publish(&room, &Line { name, text })
            .await
            .map_err(history_error)?;
        Ok(())
    }

    /// A room's messages after `from` (a header first: whether they could all be recovered),
    /// then each new one. Without `from`, new messages only.
    async fn subscribe(
        &self,
        cx: &HubContext<Self>,
        room: String,
        from: Option<Mark>,
    ) -> Result<impl Stream<Item = Result<RoomItem, HubError>>, HubError> {
        check("a room name", &room, MAX_ROOM)?;
        let from = from.map(|m| Position::new(m.epoch, m.offset));
        let events = cx.history.subscribe::<Line>(&room, from).await.map_err(history_error)?;
        Ok(events.map(|event| match event {
            Ok(HistoryEvent::Header(h)) => Ok(RoomItem::Resumed(Resumed {
                recovered: h.recovered,
                epoch: h.epoch,
                offset: h.offset,
            })),
            Ok(HistoryEvent::Item(item)) => Ok(RoomItem::Posted(Posted {
                offset: item.offset,
                name: item.message.name,
                text: item.message.text,
            })),
            Err(e) => Err(history_error(e)),
        }))
    }
}

/// A connection's user id is the `name` it connects with (`/chat?name=alice`); without one it
/// may connect but not join. A name must be 1 to 40 characters without spaces around.
fn name_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    let Some(name) = request.query("name") else {
        return Ok(None);
    };
    check("a name", name, MAX_NAME).map_err(|_| AuthError::new(format!("bad name {name:?}")))?;
    Ok(Some(Identity::user(name)))
}

/// The chat demo: a web page where people pick a name, join rooms and talk.
/// Open http://ADDR/ in two browser windows.
#[derive(clap::Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: hub_examples::Args,
    /// With --redis, --postgres or --nats: how long the members of a server that died stay in
    /// their rooms (seconds).
    #[arg(long, value_name = "SECONDS", value_parser = hub_examples::parse_seconds, default_value = "30")]
    presence_ttl: std::time::Duration,
    /// How many messages each room's history keeps.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    history_size: u64,
    /// How long (seconds) a room keeps a message.
    #[arg(long, value_name = "SECONDS", value_parser = hub_examples::parse_seconds, default_value = "3600")]
    history_ttl: std::time::Duration,
    /// How many of a room's latest messages a page gets when it joins.
    #[arg(long, value_name = "N", default_value_t = 50)]
    recent: usize,
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
    // Every room keeps a history (not only `durable-` ones): a chat page always wants the
    // messages it missed. With a backplane it lives in the backplane's broker (Redis,
    // PostgreSQL, NATS JetStream), shared by every server; in memory otherwise.
    let rooms = HistoryRule::new(GroupPattern::Any)
        .max_len(usize::try_from(cli.history_size).unwrap_or(usize::MAX))
        .ttl(cli.history_ttl);
    let builder = hub_examples::builder(&args, PROGRAM).await;
    let builder = hub_examples::with_presence(builder, &args, cli.presence_ttl, PROGRAM).await;
    let endpoint = EndpointOptions::new().authenticator(name_from_query).history(rooms);
    let server = hub_examples::with_history(builder, &args, PROGRAM)
        .await
        .options(args.hub_options(hub_runtime::HubOptions::default()))
        .hub_with("/chat", ChatHub { recent: cli.recent }, endpoint)
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
