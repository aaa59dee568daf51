use hub_runtime::prelude::*;

struct Report {
    lines: Vec<String>,
}

struct Reports;

#[hub]
impl Reports {
    fn latest(&self) -> Report {
        Report { lines: Vec::new() }
    }
}

fn main() {}
