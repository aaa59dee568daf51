//! A hub method's error type needs only `Into<HubError>`: a hand-written `Into` (no `From`)
//! compiles, as it did before the blanket `From` was replaced.

use hub_runtime::prelude::*;

struct RoomFull;

#[allow(clippy::from_over_into)]
impl Into<HubError> for RoomFull {
    fn into(self) -> HubError {
        HubError::for_client("the room is full")
    }
}

struct Rooms;

#[hub]
impl Rooms {
    fn join(&self, room: String) -> Result<String, RoomFull> {
        if room.is_empty() {
            Err(RoomFull)
        } else {
            Ok(room)
        }
    }
}

fn main() {}
