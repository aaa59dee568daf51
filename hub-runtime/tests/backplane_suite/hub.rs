//! The suite's hub: methods that send to every kind of target, change groups, ask client
//! results and send bursts, so the cases can send from a hub method as well as from a
//! `HubHandle`.

use std::collections::BTreeMap;

use hub_runtime::prelude::*;
use hub_runtime::{AuthError, Hub, HubClients, Identity, RequestContext, SendError};
use serde::{Deserialize, Serialize};

#[hub_client]
pub trait SuiteClient {
    fn receive(&self, message: String);
    fn record(&self, record: Record);
}

/// A structured payload, to compare what JSON and MessagePack clients decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: u32,
    pub text: String,
    pub values: Vec<i64>,
    pub ratio: f64,
    pub flag: bool,
    pub missing: Option<String>,
    pub tags: BTreeMap<String, u32>,
}

/// Who a message goes to, as a hub method argument (`Others` and `OthersInGroup` are relative
/// to the caller: hub methods only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum To {
    All,
    AllExcept(Vec<String>),
    Client(String),
    Clients(Vec<String>),
    Group(String),
    Groups(Vec<String>),
    GroupExcept(String, Vec<String>),
    User(String),
    Users(Vec<String>),
    Others,
    OthersInGroup(String),
}

pub type Clients = HubClients<<Suite as Hub>::Client>;

/// Sends `Receive(message)` to `to` (not a caller-relative target).
pub async fn send(clients: &Clients, to: &To, message: String) -> Result<(), SendError> {
    match to.clone() {
        To::All => clients.all().receive(message).await,
        To::AllExcept(ids) => clients.all_except(ids).receive(message).await,
        To::Client(id) => clients.client(id).receive(message).await,
        To::Clients(ids) => clients.clients(ids).receive(message).await,
        To::Group(group) => clients.group(group).receive(message).await,
        To::Groups(groups) => clients.groups(groups).receive(message).await,
        To::GroupExcept(group, ids) => clients.group_except(group, ids).receive(message).await,
        To::User(user) => clients.user(user).receive(message).await,
        To::Users(users) => clients.users(users).receive(message).await,
        To::Others | To::OthersInGroup(_) => panic!("{to:?} is relative to a caller: send it from a hub method"),
    }
}

pub struct Suite;

#[hub(client = SuiteClient)]
impl Suite {
    fn echo(&self, message: String) -> String {
        message
    }

    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    /// Adds any connection (on any server) to a group.
    async fn add_to_group(&self, cx: &HubContext<Self>, connection_id: String, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(&connection_id, &group).await?)
    }

    async fn send_to(&self, cx: &HubContext<Self>, to: To, message: String) -> Result<(), HubError> {
        match to {
            To::Others => cx.clients.others().receive(message).await?,
            To::OthersInGroup(group) => cx.clients.others_in_group(group).receive(message).await?,
            other => send(&cx.clients, &other, message).await?,
        }
        Ok(())
    }

    /// Sends `tag:0` … `tag:count-1` to every connection, one after another.
    async fn burst(&self, cx: &HubContext<Self>, tag: String, count: u32) -> Result<(), HubError> {
        for n in 0..count {
            cx.clients.all().receive(format!("{tag}:{n}")).await?;
        }
        Ok(())
    }

    /// Asks connection `connection_id` (anywhere) for a client result.
    async fn ask(&self, cx: &HubContext<Self>, connection_id: String, value: i64) -> Result<i64, HubError> {
        Ok(cx
            .clients
            .client(connection_id)
            .invoke::<_, i64>("Result", &(value,))
            .await?)
    }

    async fn record_to_all(&self, cx: &HubContext<Self>, record: Record) -> Result<(), HubError> {
        Ok(cx.clients.all().record(record).await?)
    }
}

/// Users come from `?user=`.
pub fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}
