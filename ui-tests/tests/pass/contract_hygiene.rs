// Names the generated code must not trip over: parameters called `this`, `args`, `receiver`,
// `caller`; user types called `C`, `R`, `K`; a handler method called `clone`; a borrowed type
// that is not `Clone`; raw identifiers; a client result that may fail.
use hub_protocol::contract::{hub_client_contract, hub_contract};
use hub_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct C(u8);
#[derive(Serialize, Deserialize)]
pub struct R(u8);
#[derive(Serialize, Deserialize)]
pub struct K(u8);
/// Not `Clone`.
#[derive(Serialize, Deserialize)]
pub struct Point {
    x: i32,
}

#[hub_contract]
pub trait r#Odd {
    fn put(&self, args: C, this: R, caller: K) -> C;
    fn r#type(&self, receiver: String) -> R;
}

#[hub_client_contract]
pub trait OddClient {
    fn clone(&self, this: String, args: C);
    fn point(&self, receiver: Point, k: K);
    fn ask(&self, args: String) -> Result<R, String>;
}

#[hub_client(contract = OddClient)]
trait OddCallbacks {
    fn clone(&self, this: &str, args: &C);
    fn point(&self, receiver: &Point, k: &K);
    fn ask(&self, args: &str) -> R;
}

struct OddHub;

#[hub(client = OddCallbacks, contract = r#Odd, proxy)]
impl OddHub {
    fn put(&self, args: C, _this: R, _caller: K) -> C {
        args
    }

    fn r#type(&self, _receiver: String) -> R {
        R(0)
    }
}

struct Handler;

impl OddClientHandler for Handler {
    async fn clone(&self, _this: String, _args: C) {}

    async fn point(&self, _receiver: Point, _k: K) {}

    async fn ask(&self, _args: String) -> Result<R, String> {
        Err("no".into())
    }
}

async fn client(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
    Handler.register(&connection);
    let odd = OddProxy::new(&connection);
    let _c: C = odd.put(C(1), R(2), K(3)).await?;
    let _r: R = odd.r#type("t".into()).await?;
    let own = OddHubProxy::new(&connection);
    let _c: C = own.put(C(1), R(2), K(3)).await?;
    Ok(())
}

fn main() {
    let _ = client;
}
