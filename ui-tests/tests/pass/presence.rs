use hub_runtime::prelude::*;
use hub_runtime::Hub;

#[hub_client]
trait RoomClient {
    fn joined(&self, group: String, user: String);
    #[hub(name = "user_left")]
    fn left(&self, group: &str, user: &str);
}

struct Rooms;

// Event names match client methods' wire names as the official clients do (ASCII case aside).
#[hub(client = RoomClient, presence(joined = "joined", left = "user_left"))]
impl Rooms {
    async fn who(&self, cx: &HubContext<Self>, room: String) -> Result<Vec<String>, HubError> {
        Ok(cx.groups.members(&room).await?.into_iter().map(|m| m.user).collect())
    }
}

struct Plain;

#[hub(presence)]
impl Plain {
    async fn here(&self, cx: &HubContext<Self>, user: String) -> Result<bool, HubError> {
        Ok(cx.users.online(&user).await?)
    }
}

fn main() {
    let events = <Rooms as Hub>::__PRESENCE.expect("presence");
    assert_eq!(events.joined, Some("joined"));
    assert_eq!(events.left, Some("user_left"));
    let plain = <Plain as Hub>::__PRESENCE.expect("presence");
    assert_eq!(plain.joined, None);
}
