//! A bad argument before `crate = "..."` is reported alone: the crate path is still read, so
//! the stub emitted beside the error names the renamed crate and nothing else fails to resolve.
//! (`::hub_runtime` names this test crate itself, as in `pass/renamed_crate.rs`.)

extern crate hub_runtime as renamed;
extern crate self as hub_runtime;

use renamed::prelude::*;

#[renamed::hub_client(bogus, crate = "renamed")]
trait NoticeClient {
    fn notice(&self, text: String);
}

struct Renamed;

#[renamed::hub(bogus, crate = "renamed", client = NoticeClient)]
impl Renamed {
    async fn echo(&self, cx: &HubContext<Self>, text: String) -> Result<String, HubError> {
        cx.clients.all().notice(text.clone()).await?;
        Ok(text)
    }
}

fn main() {}
