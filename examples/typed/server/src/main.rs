//! The tasks hub: `cargo run -p tasks-server -- --port 5005` serves it at `/tasks`.

use std::sync::Mutex;

use clap::Parser;
use hub_runtime::prelude::*;
use hub_runtime::ClientStream;
use tasks_contract::Task;
use tokio::sync::broadcast;

/// Serves the tasks hub.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 5005)]
    port: u16,
}

#[hub_client(contract = tasks_contract::TasksClient)]
trait TasksClient {
    fn added(&self, task: &Task);
    fn confirm(&self, question: &str) -> bool;
}

struct TasksHub {
    tasks: Mutex<TaskList>,
    /// New tasks, for `watch` streams.
    news: broadcast::Sender<Task>,
}

#[derive(Default)]
struct TaskList {
    tasks: Vec<Task>,
    /// Ids are never reused, even after `clear_done`.
    last_id: u32,
}

impl TasksHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, TaskList> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, title: String) -> Task {
        let mut list = self.lock();
        list.last_id += 1;
        let task = Task {
            id: list.last_id,
            title,
            done: false,
        };
        list.tasks.push(task.clone());
        let _ = self.news.send(task.clone());
        task
    }
}

#[hub(client = TasksClient, contract = tasks_contract::Tasks)]
impl TasksHub {
    async fn add(&self, cx: &HubContext<Self>, title: String) -> Result<u32, HubError> {
        let task = self.push(title);
        cx.clients.all().added(&task).await?;
        Ok(task.id)
    }

    fn complete(&self, id: u32) -> bool {
        let mut list = self.lock();
        list.tasks
            .iter_mut()
            .find(|t| t.id == id)
            .map(|t| t.done = true)
            .is_some()
    }

    fn list(&self) -> Vec<Task> {
        self.lock().tasks.clone()
    }

    fn watch(&self) -> impl Stream<Item = Task> {
        // Subscribe before reading the list: a task added in between comes twice rather than
        // not at all.
        let news = self.news.subscribe();
        let now = futures_util::stream::iter(self.list());
        let later = futures_util::stream::unfold(news, |mut news| async move {
            loop {
                match news.recv().await {
                    Ok(task) => return Some((task, news)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        now.chain(later)
    }

    async fn import(&self, titles: ClientStream<String>) -> Result<u32, HubError> {
        let titles = titles.collect_all().await?;
        for title in &titles {
            self.push(title.clone());
        }
        Ok(titles.len() as u32)
    }

    async fn clear_done(&self, cx: &HubContext<Self>) -> Result<u32, HubError> {
        let done = self.list().iter().filter(|t| t.done).count();
        let question = format!("Remove {done} done task(s)?");
        if !cx.clients.caller().confirm(&question).await? {
            return Ok(0);
        }
        self.lock().tasks.retain(|t| !t.done);
        Ok(done as u32)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    let hub = TasksHub {
        tasks: Mutex::new(TaskList::default()),
        news: broadcast::channel(64).0,
    };
    let address = format!("127.0.0.1:{}", args.port);
    println!("tasks hub at http://{address}/tasks");
    HubServer::builder().hub("/tasks", hub).build().serve(address).await
}
