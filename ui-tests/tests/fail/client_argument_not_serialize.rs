use hub_runtime::prelude::*;

struct Secret(String);

#[hub_client]
trait VaultClient {
    fn reveal(&self, secret: Secret);
}

fn main() {}
