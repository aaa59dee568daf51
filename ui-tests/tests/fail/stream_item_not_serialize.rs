use hub_runtime::prelude::*;

struct Tick(u64);

struct Clock;

#[hub]
impl Clock {
    fn ticks(&self) -> impl Stream<Item = Tick> {
        futures_util::stream::iter([Tick(1)])
    }
}

fn main() {}
