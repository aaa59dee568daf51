//! Group changes for connections on other servers are acknowledged: once `add` resolves, a
//! message to the group from a third server reaches the new member (no waiting); once
//! `remove` resolves, none does; an id no server owns fails with `UnknownConnection`.

use hub_runtime::GroupError;
use serde_json::json;

use crate::common::within;
use crate::fleet::{Fleet, Kind};

pub async fn group_changes_are_acknowledged_across_servers<K: Kind>() {
    let Some(fleet) = Fleet::<K>::start().await else { return };
    let mut a = fleet.json(0, None).await;
    let mut b = fleet.json(1, None).await;
    let mut c = fleet.msgpack(2).await;
    let (a_handle, c_handle) = (&fleet.server(0).handle, &fleet.server(2).handle);

    // A's handle adds B's connection; C sends to the group at once.
    within("A adds B's connection", a_handle.groups.add(&b.id, "room"))
        .await
        .expect("acknowledged");
    c_handle.clients.group("room").receive("one".into()).await.unwrap();
    b.expect("one").await;
    c_handle.clients.all().receive("marker one".into()).await.unwrap();
    assert!(b.until("marker one").await.is_empty());
    assert!(
        a.until("marker one").await.is_empty(),
        "A's connection is not in the group"
    );
    assert!(
        c.until("marker one").await.is_empty(),
        "C's connection is not in the group"
    );

    // A hub method on A adds C's connection; B's handle sends to the group.
    a.call("AddToGroup", vec![json!(c.id), json!("room")]).await;
    let b_handle = &fleet.server(1).handle;
    b_handle.clients.group("room").receive("two".into()).await.unwrap();
    b.expect("two").await;
    c.expect("two").await;
    b_handle.clients.all().receive("marker two".into()).await.unwrap();
    assert!(b.until("marker two").await.is_empty());
    assert!(c.until("marker two").await.is_empty());
    assert!(a.until("marker two").await.is_empty());

    // A removes B's connection; C's next message to the group does not reach it.
    within("A removes B's connection", a_handle.groups.remove(&b.id, "room"))
        .await
        .expect("acknowledged");
    c_handle.clients.group("room").receive("three".into()).await.unwrap();
    c.expect("three").await;
    c_handle.clients.all().receive("marker three".into()).await.unwrap();
    assert!(
        b.until("marker three").await.is_empty(),
        "B's connection left the group"
    );
    assert!(c.until("marker three").await.is_empty());

    // No server owns these ids.
    assert_eq!(
        within("add an unknown connection", a_handle.groups.add("nobody", "room")).await,
        Err(GroupError::UnknownConnection("nobody".into()))
    );
    assert_eq!(
        within("remove an unknown connection", a_handle.groups.remove("nobody", "room")).await,
        Err(GroupError::UnknownConnection("nobody".into()))
    );
}
