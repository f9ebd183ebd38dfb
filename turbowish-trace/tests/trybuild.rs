//! `#[derive(Trace)]` at compile time: what compiles (generic structs,
//! tuple and unit structs, enums, skipped fields with reasons) and the
//! errors for what must not (a skip without a reason or with an empty one,
//! an unknown attribute, a union). The `.stderr` files are the expected
//! messages.

#[test]
fn derive() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
