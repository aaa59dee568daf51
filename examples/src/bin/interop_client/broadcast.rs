//! BroadcastHub (`/broadcast?user=…`): fan-out to everyone, to a group, to a user, and a
//! client result asked from inside a hub call. Two connections of one pair, alice and bob,
//! each with the typed handler of `BroadcastHubClient`.

use hub_client::{HubConnection, HubConnectionBuilder};
use hub_examples::interop_contract::{BroadcastHubClientHandler, BroadcastHubProxy};
use tokio::sync::{mpsc, Mutex};

use crate::report::{expect_eq, within, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

/// The handler: forwards `Receive` to its member and answers `Answer`.
struct Recorder {
    received: mpsc::UnboundedSender<String>,
    user: String,
}

impl BroadcastHubClientHandler for Recorder {
    async fn receive(&self, message: String) {
        let _ = self.received.send(message);
    }

    async fn answer(&self, question: String) -> String {
        format!("{} answers {question}", self.user)
    }
    // Presence events: these scenarios do not check them (the Node presence tests do).
    async fn joined(&self, _group: String, _user: String) {}

    async fn left(&self, _group: String, _user: String) {}
}

/// One connection to BroadcastHub and the messages it received.
struct Member {
    user: String,
    id: String,
    connection: HubConnection,
    received: Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Member {
    async fn start(target: &Target, pair: Pair, user: String) -> Result<Self, Failure> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user", &user)
            .finish();
        let connection = HubConnectionBuilder::new(target.url(&format!("/broadcast?{query}")))
            .transports([pair.transport])
            .protocol(pair.protocol)
            .build()
            .context("building the connection")?;
        let (sender, received) = mpsc::unbounded_channel();
        Recorder {
            received: sender,
            user: user.clone(),
        }
        .register(&connection);
        connection.start().await.context(&format!("start ({user})"))?;
        let id = connection
            .connection_id()
            .ok_or_else(|| format!("{user}'s connection has no connection id"))?;
        Ok(Member {
            user,
            id,
            connection,
            received: Mutex::new(received),
        })
    }

    fn hub(&self) -> BroadcastHubProxy<&HubConnection> {
        BroadcastHubProxy::new(&self.connection)
    }

    /// The next message carrying `token` (each check marks its messages with a token of its
    /// own: messages another check or run left behind are skipped).
    async fn next(&self, token: &str) -> Result<String, Failure> {
        let mut received = self.received.lock().await;
        let what = format!("{}'s next Receive", self.user);
        within(CALLBACK_TIMEOUT, &what, async {
            loop {
                match received.recv().await {
                    Some(message) if message.contains(token) => return Ok(message),
                    Some(_) => {}
                    None => return Err(format!("{what}: the handler is gone")),
                }
            }
        })
        .await?
    }

    /// Checks that no message with `token` is on its way to this member: `sender` sends it a
    /// sentinel (after anything sent before, from the same hub to the same connection), which
    /// must be its next message with `token`.
    async fn expect_nothing_before_sentinel(&self, sender: &Member, token: &str) -> Result<(), Failure> {
        let sentinel = format!("{token} sentinel");
        sender
            .hub()
            .send_to_connection(self.id.clone(), sentinel.clone())
            .await
            .context("SendToConnection")?;
        let next = self.next(token).await?;
        if next == sentinel {
            Ok(())
        } else {
            Err(format!("{} got {next:?}, which was not meant for it", self.user))
        }
    }

    async fn stop(self) {
        let _ = tokio::time::timeout(CALLBACK_TIMEOUT, self.connection.stop()).await;
    }
}

/// alice and bob, connected.
struct Members {
    alice: Member,
    bob: Member,
}

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    let run_id = &target.run_id;
    let tag = format!("{run_id}-{}", pair.label().replace('/', "-"));
    let members = report
        .check(pair, "connect to /broadcast (alice, bob)", async {
            let alice = Member::start(target, pair, format!("alice-{tag}")).await?;
            match Member::start(target, pair, format!("bob-{tag}")).await {
                Ok(bob) => Ok(Members { alice, bob }),
                Err(why) => {
                    alice.stop().await;
                    Err(why)
                }
            }
        })
        .await
        .ok_or_else(|| "not run: the connections to /broadcast did not start".to_string());
    report
        .check(pair, "BroadcastHub SendToAll", async {
            let Members { alice, bob } = members.as_ref()?;
            let token = format!("{run_id}/SendToAll");
            let message = format!("{token} to all ✓");
            alice.hub().send_to_all(message.clone()).await.context("SendToAll")?;
            expect_eq(
                "alice (the caller) received",
                alice.next(&token).await?,
                message.clone(),
            )?;
            expect_eq("bob received", bob.next(&token).await?, message)
        })
        .await;
    report
        .check(pair, "BroadcastHub group join, send, leave", async {
            let Members { alice, bob } = members.as_ref()?;
            let token = format!("{run_id}/group");
            let group = format!("group-{tag}");
            alice
                .hub()
                .join_group(group.clone())
                .await
                .context("JoinGroup (alice)")?;
            bob.hub().join_group(group.clone()).await.context("JoinGroup (bob)")?;
            let first = format!("{token} to the group");
            alice
                .hub()
                .send_to_group(group.clone(), first.clone())
                .await
                .context("SendToGroup")?;
            expect_eq("alice received", alice.next(&token).await?, first.clone())?;
            expect_eq("bob received", bob.next(&token).await?, first)?;
            bob.hub().leave_group(group.clone()).await.context("LeaveGroup (bob)")?;
            let second = format!("{token} to the group after bob left");
            alice
                .hub()
                .send_to_group(group.clone(), second.clone())
                .await
                .context("SendToGroup")?;
            expect_eq("alice received", alice.next(&token).await?, second)?;
            bob.expect_nothing_before_sentinel(alice, &token).await?;
            alice.hub().leave_group(group).await.context("LeaveGroup (alice)")
        })
        .await;
    report
        .check(pair, "BroadcastHub SendToUser", async {
            let Members { alice, bob } = members.as_ref()?;
            let token = format!("{run_id}/SendToUser");
            let message = format!("{token} to the user {}", bob.user);
            alice
                .hub()
                .send_to_user(bob.user.clone(), message.clone())
                .await
                .context("SendToUser")?;
            expect_eq("bob received", bob.next(&token).await?, message)?;
            alice.expect_nothing_before_sentinel(alice, &token).await
        })
        .await;
    report
        .check(pair, "BroadcastHub AskCaller", async {
            let Members { alice, .. } = members.as_ref()?;
            let question = format!("ready, {}?", alice.user);
            let answer = alice.hub().ask_caller(question.clone()).await.context("AskCaller")?;
            expect_eq("AskCaller", answer, format!("{} answers {question}", alice.user))
        })
        .await;
    if let Ok(Members { alice, bob }) = members {
        alice.stop().await;
        bob.stop().await;
    }
}
