//! Drives the tasks hub through its contract: `cargo run -p tasks-client -- --url
//! http://127.0.0.1:5005/tasks`. Prints what it does; exits with an error if anything is not
//! as the contract promises.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use hub_client::HubConnectionBuilder;
use tasks_contract::{Task, TasksClientHandler, TasksProxy};

/// Calls the tasks hub.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The hub's URL.
    #[arg(long, default_value = "http://127.0.0.1:5005/tasks")]
    url: String,
}

/// Answers the hub: remembers what was added, confirms deletions.
#[derive(Clone, Default)]
struct Handler {
    added: Arc<Mutex<Vec<Task>>>,
}

impl TasksClientHandler for Handler {
    async fn added(&self, task: Task) {
        println!("  (the hub says: task {} \"{}\" added)", task.id, task.title);
        self.added.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }

    async fn confirm(&self, question: String) -> bool {
        println!("  (the hub asks: {question} — yes)");
        true
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn check(ok: bool, what: &str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let connection = HubConnectionBuilder::new(&args.url).build()?;
    let handler = Handler::default();
    handler.clone().register(&connection);
    connection.start().await?;
    let tasks = TasksProxy::new(&connection);
    // Other runs may have left tasks behind: every check counts from here.
    let before = tasks.list().await?.len();

    let first = tasks.add("write the contract".into()).await?;
    let second = tasks.add("check both sides".into()).await?;
    println!("added tasks {first} and {second}");
    check(tasks.complete(first).await?, "completing task 1")?;
    check(!tasks.complete(999).await?, "completing a task that does not exist")?;

    let mut watch = tasks.watch();
    let imported = tasks
        .import(futures_util::stream::iter(["ship it", "celebrate"].map(String::from)))
        .await?;
    println!("imported {imported} tasks");
    check(imported == 2, "import count")?;

    // The list as it was when watching began, then the two imported tasks.
    let mut seen = Vec::new();
    while seen.len() < before + 4 {
        match tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
            Ok(Some(task)) => seen.push(task?.title),
            _ => return Err("the watch stream stopped early".into()),
        }
    }
    drop(watch);
    println!("watched: {}", seen.join(", "));
    check(
        seen.ends_with(&["ship it".into(), "celebrate".into()]),
        "the watched tasks",
    )?;

    let removed = tasks.clear_done().await?;
    println!("cleared {removed} done task(s)");
    check(removed == 1, "clear_done count")?;
    let left: Vec<Task> = tasks.list().await?;
    println!(
        "left: {}",
        left.iter().map(|t| t.title.as_str()).collect::<Vec<_>>().join(", ")
    );
    check(
        left.len() == before + 3 && left.iter().all(|t| !t.done),
        "the list after clearing",
    )?;
    let heard = handler.added.lock().unwrap_or_else(|e| e.into_inner()).len();
    check(heard == 2, "`added` callbacks (one per `add`)")?;

    connection.stop().await;
    println!("ok");
    Ok(())
}
