use hub_runtime::prelude::*;

// A `std::error::Error` of the user's own: it does not convert into `HubError` by itself.
#[derive(Debug)]
struct RoomFull;

impl std::fmt::Display for RoomFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the room is full")
    }
}

impl std::error::Error for RoomFull {}

struct Rooms;

#[hub]
impl Rooms {
    async fn join(&self, room: String) -> Result<(), RoomFull> {
        let _ = room;
        Err(RoomFull)
    }

    async fn on_connected(&self, cx: &HubContext<Self>) -> Result<(), RoomFull> {
        let _ = cx;
        Ok(())
    }

    fn occupants(&self) -> impl Stream<Item = Result<u32, RoomFull>> {
        futures_util::stream::iter([Ok(1), Err(RoomFull)])
    }
}

fn main() {}
