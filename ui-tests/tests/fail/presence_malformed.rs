use hub_runtime::prelude::*;

#[hub_client]
trait RoomClient {
    fn joined(&self, group: String, user: String);
}

struct NotAString;

#[hub(client = RoomClient, presence(joined = Joined))]
impl NotAString {}

struct UnknownEvent;

#[hub(client = RoomClient, presence(entered = "Joined"))]
impl UnknownEvent {}

struct Empty;

#[hub(client = RoomClient, presence(joined = ""))]
impl Empty {}

struct Twice;

#[hub(client = RoomClient, presence(joined = "Joined", joined = "Joined"))]
impl Twice {}

struct PresenceTwice;

#[hub(client = RoomClient, presence, presence(joined = "Joined"))]
impl PresenceTwice {}

fn main() {}
