//! The tasks hub as both sides see it: what clients call (`Tasks`) and what the hub calls back
//! (`TasksClient`). The server checks its hub against these traits; the client calls through
//! `TasksProxy` and implements `TasksClientHandler`.

use hub_protocol::contract::{hub_client_contract, hub_contract};
use serde::{Deserialize, Serialize};

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: u32,
    pub title: String,
    pub done: bool,
}

/// A shared task list.
#[hub_contract]
pub trait Tasks {
    /// Adds a task; every client's `added` hears of it. Returns its id.
    fn add(&self, title: String) -> u32;
    /// Marks a task done; `false` if there is no such task.
    fn complete(&self, id: u32) -> bool;
    /// Every task, in the order they were added.
    fn list(&self) -> Vec<Task>;
    /// The tasks as they are now, then each new one as it is added.
    fn watch(&self) -> impl Stream<Item = Task>;
    /// Adds one task per uploaded title; returns how many.
    fn import(&self, titles: impl Stream<Item = String>) -> u32;
    /// Removes every done task, after the caller confirms; returns how many went.
    fn clear_done(&self) -> u32;
}

/// What the tasks hub calls on its clients.
#[hub_client_contract]
pub trait TasksClient {
    /// A task was added (by anyone).
    fn added(&self, task: Task);
    /// A client result: the hub asks before it deletes anything.
    fn confirm(&self, question: String) -> bool;
}
