use hub_runtime::prelude::*;

#[hub_client]
trait RoomClient {
    fn joined(&self, group: String, user: String);
    fn left(&self, user: String);
}

struct Rooms;

// `Arrived` is no client method; `Left` takes one argument, not (group, user).
#[hub(client = RoomClient, presence(joined = "Arrived", left = "Left"))]
impl Rooms {}

fn main() {}
