//! BroadcastHub presence (`/broadcast?user=…`): `Joined` once for a user's first connection in
//! a group (the newcomer included), `Members` lists each user once however many connections it
//! has, and `Left` comes once, when the user's last connection leaves (by `LeaveGroup` or by
//! its end).

use hub_client::{HubConnection, HubConnectionBuilder};
use hub_examples::interop_contract::{BroadcastHubClientHandler, BroadcastHubProxy};
use tokio::sync::mpsc;

use crate::report::{expect_eq, within, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

/// The handler: `Joined` and `Left` as `joined GROUP USER` and `left GROUP USER`.
struct Watcher(mpsc::UnboundedSender<String>);

impl BroadcastHubClientHandler for Watcher {
    async fn receive(&self, _message: String) {}

    async fn answer(&self, question: String) -> String {
        question
    }

    async fn joined(&self, group: String, user: String) {
        let _ = self.0.send(format!("joined {group} {user}"));
    }

    async fn left(&self, group: String, user: String) {
        let _ = self.0.send(format!("left {group} {user}"));
    }
}

/// One connection of a user, and the presence events it got.
struct Connection {
    user: String,
    connection: HubConnection,
    events: mpsc::UnboundedReceiver<String>,
}

impl Connection {
    async fn start(target: &Target, pair: Pair, user: &str) -> Result<Self, Failure> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user", user)
            .finish();
        let connection = HubConnectionBuilder::new(target.url(&format!("/broadcast?{query}")))
            .transports([pair.transport])
            .protocol(pair.protocol)
            .build()
            .context("building the connection")?;
        let (sender, events) = mpsc::unbounded_channel();
        Watcher(sender).register(&connection);
        connection.start().await.context(&format!("start ({user})"))?;
        Ok(Connection {
            user: user.to_string(),
            connection,
            events,
        })
    }

    fn hub(&self) -> BroadcastHubProxy<&HubConnection> {
        BroadcastHubProxy::new(&self.connection)
    }

    /// The next presence event about `group` (events of other groups are skipped).
    async fn next(&mut self, group: &str) -> Result<String, Failure> {
        let what = format!("{}'s next presence event", self.user);
        let events = &mut self.events;
        within(CALLBACK_TIMEOUT, &what, async {
            loop {
                match events.recv().await {
                    Some(event) if event.split(' ').nth(1) == Some(group) => return Ok(event),
                    Some(_) => {}
                    None => return Err(format!("{what}: the handler is gone")),
                }
            }
        })
        .await?
    }

    async fn expect(&mut self, group: &str, event: String) -> Result<(), Failure> {
        let what = format!("{}'s next presence event", self.user);
        expect_eq(&what, self.next(group).await?, event)
    }

    async fn stop(self) {
        let _ = tokio::time::timeout(CALLBACK_TIMEOUT, self.connection.stop()).await;
    }
}

async fn members(connection: &Connection, group: &str) -> Result<Vec<String>, Failure> {
    connection.hub().members(group.to_string()).await.context("Members")
}

/// ann twice and bob: one `Joined` per user, `Members` lists ann once; ann's first connection
/// leaves (no `Left`), her second ends (`Left` once, seen by bob); cy's `Joined` after it
/// shows nothing came twice. (A connection dropped on a failure closes as `stop` would.)
async fn presence(target: &Target, pair: Pair) -> Result<(), Failure> {
    let tag = format!("{}-{}", target.run_id, pair.label().replace('/', "-"));
    let group = format!("presence-{tag}");
    let [ann, bob, cy] = ["ann", "bob", "cy"].map(|name| format!("{tag}-{name}"));
    let mut ann1 = Connection::start(target, pair, &ann).await?;
    let mut ann2 = Connection::start(target, pair, &ann).await?;
    let mut bob1 = Connection::start(target, pair, &bob).await?;
    let cy1 = Connection::start(target, pair, &cy).await?;

    ann1.hub().join_group(group.clone()).await.context("JoinGroup")?;
    ann1.expect(&group, format!("joined {group} {ann}")).await?;
    ann2.hub().join_group(group.clone()).await.context("JoinGroup")?;
    expect_eq(
        "Members, ann with two connections",
        members(&ann1, &group).await?,
        vec![ann.clone()],
    )?;
    bob1.hub().join_group(group.clone()).await.context("JoinGroup")?;
    // Had ann's second connection fired a `Joined`, it would come before bob's.
    for connection in [&mut ann1, &mut ann2, &mut bob1] {
        connection.expect(&group, format!("joined {group} {bob}")).await?;
    }
    expect_eq(
        "Members, ann and bob",
        members(&bob1, &group).await?,
        vec![ann.clone(), bob.clone()],
    )?;

    ann1.hub().leave_group(group.clone()).await.context("LeaveGroup")?;
    expect_eq(
        "Members after one of ann's connections left",
        members(&bob1, &group).await?,
        vec![ann.clone(), bob.clone()],
    )?;
    ann2.stop().await;
    // Had ann's first leave fired a `Left`, it would come before this one.
    bob1.expect(&group, format!("left {group} {ann}")).await?;
    cy1.hub().join_group(group.clone()).await.context("JoinGroup")?;
    // And a second `Left` for ann would come before cy's `Joined`.
    bob1.expect(&group, format!("joined {group} {cy}")).await?;
    expect_eq(
        "Members at the end",
        members(&bob1, &group).await?,
        vec![bob.clone(), cy.clone()],
    )?;
    for connection in [ann1, bob1, cy1] {
        connection.stop().await;
    }
    Ok(())
}

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    report
        .check(
            pair,
            "BroadcastHub presence: Joined once per user, Members, Left after the last connection",
            presence(target, pair),
        )
        .await;
}
