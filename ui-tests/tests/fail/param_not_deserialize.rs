use hub_runtime::prelude::*;

struct Point {
    x: i32,
    y: i32,
}

struct Geometry;

#[hub]
impl Geometry {
    fn length(&self, point: Point) -> f64 {
        f64::from(point.x * point.x + point.y * point.y).sqrt()
    }
}

fn main() {}
