//! An axum application with a hub beside its REST routes, sharing one state.
//!
//! - **REST**: `GET /api/notes` lists the notes, `POST /api/notes` (JSON `{"text": "..."}`)
//!   adds one, `DELETE /api/notes/{id}` removes one. Every change is pushed to every
//!   connected client through a [`HubHandle`], from the axum handler.
//! - **The hub** (`/hubs/notes`, mounted with `nest_service`): `List()` returns the same notes,
//!   `Add(text)` adds one the same way the REST route does. Clients receive `NoteAdded(note)`
//!   and `NoteRemoved(id)`.
//! - **Shared state**: one `Arc<Notes>` (a `Mutex<Vec<Note>>` standing in for a database
//!   pool) held by the hub and by axum's `State`.
//! - `GET /health` reports the hub server's connections; Ctrl-C or SIGTERM says goodbye to
//!   every hub connection before axum stops.
//!
//! Run with `cargo run --release --bin axum_app`, then, for example:
//! `curl -d '{"text":"hello"}' -H 'content-type: application/json' http://127.0.0.1:5000/api/notes`.
//! `--help` lists the options.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use clap::Parser;
use hub_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// An axum app: REST routes and a hub sharing one state; changes are pushed to hub clients.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Where to listen.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    addr: SocketAddr,
}

/// One note.
#[derive(Debug, Clone, Serialize)]
struct Note {
    id: u64,
    text: String,
}

/// The application's state: the notes (a database in a real application).
#[derive(Default)]
struct Notes {
    next_id: AtomicU64,
    notes: Mutex<Vec<Note>>,
}

impl Notes {
    fn list(&self) -> Vec<Note> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn add(&self, text: String) -> Note {
        let note = Note {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            text,
        };
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).push(note.clone());
        note
    }

    fn remove(&self, id: u64) -> bool {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let before = notes.len();
        notes.retain(|n| n.id != id);
        notes.len() != before
    }
}

#[hub_client]
trait NotesClient {
    /// A note was added (through REST or the hub).
    fn note_added(&self, note: Note);
    /// A note was removed.
    fn note_removed(&self, id: u64);
}

/// The hub: the same notes as the REST routes.
struct NotesHub {
    notes: Arc<Notes>,
}

#[hub(client = NotesClient)]
impl NotesHub {
    fn list(&self) -> Vec<Note> {
        self.notes.list()
    }

    async fn add(&self, cx: &HubContext<Self>, text: String) -> Result<Note, HubError> {
        let note = checked(&text).map(|()| self.notes.add(text))?;
        cx.clients.all().note_added(note.clone()).await?;
        Ok(note)
    }
}

/// A note's text must be 1 to 500 characters.
fn checked(text: &str) -> Result<(), HubError> {
    match text.chars().count() {
        1..=500 => Ok(()),
        _ => Err(HubError::for_client("a note has 1 to 500 characters")),
    }
}

/// What the axum handlers share: the notes and the hub's handle.
#[derive(Clone)]
struct AppState {
    notes: Arc<Notes>,
    hub: HubHandle<NotesHub>,
    server: HubServer,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

async fn list_notes(State(app): State<AppState>) -> Json<Vec<Note>> {
    Json(app.notes.list())
}

async fn add_note(
    State(app): State<AppState>,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), (StatusCode, String)> {
    checked(&new.text).map_err(|e| (StatusCode::BAD_REQUEST, e.message().to_owned()))?;
    let note = app.notes.add(new.text);
    // Nobody connected is not an error for a broadcast; a failing backplane would be.
    if let Err(e) = app.hub.clients.all().note_added(note.clone()).await {
        tracing::warn!(error = %e, "could not push the new note");
    }
    Ok((StatusCode::CREATED, Json(note)))
}

async fn remove_note(State(app): State<AppState>, Path(id): Path<u64>) -> StatusCode {
    if !app.notes.remove(id) {
        return StatusCode::NOT_FOUND;
    }
    if let Err(e) = app.hub.clients.all().note_removed(id).await {
        tracing::warn!(error = %e, "could not push the removal");
    }
    StatusCode::NO_CONTENT
}

async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "connections": app.server.connection_count() }))
}

/// The application: REST routes and the hub, sharing `notes`.
fn app(server: &HubServer, notes: Arc<Notes>) -> Router {
    let state = AppState {
        notes,
        hub: server.handle::<NotesHub>().expect("NotesHub is mapped"),
        server: server.clone(),
    };
    Router::new()
        .route("/api/notes", get(list_notes).post(add_note))
        .route("/api/notes/{id}", delete(remove_note))
        .route("/health", get(health))
        .with_state(state)
        .nest_service("/hubs", server.clone().into_service())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    hub_examples::init_logging();
    let cli = Cli::parse();
    let notes = Arc::new(Notes::default());
    let server = HubServer::builder()
        .hub("/notes", NotesHub { notes: notes.clone() })
        .build();
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&server, notes))
        .with_graceful_shutdown(async move {
            hub_runtime::server::shutdown_signal().await;
            server.graceful_shutdown().await;
        })
        .await
}
