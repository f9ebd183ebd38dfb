//! `#[derive(Trace)]` at compile time: what compiles (generic structs,
//! tuple and unit structs, enums, skipped fields with reasons) and the
//! errors for what must not (a skip without a reason or with an empty one,
//! an unknown attribute, a union). The `.stderr` files are the expected
//! messages.

// What compiles and what the compiler says do not depend on the profile,
// so the release test run in `.ci/run` (there for the allocator's inlined
// paths) skips this: it would compile every case again (33 s on CI).
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "compile-time checks: run in the debug build"
)]
fn derive() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
