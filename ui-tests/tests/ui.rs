//! Pins every macro error message: `TRYBUILD=overwrite cargo test -p ui-tests` regenerates the
//! `.stderr` files, which must then be read — the message is the product.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/fail/*.rs");
}
