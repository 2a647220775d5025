//! Compile-time behavior of `#[derive(RingEvent)]`, pinned by trybuild: every refusal with its message
//! and span (`tests/ui/fail_*.rs` and their `.stderr`), and the accepted forms (`tests/ui/pass_*.rs`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p disruptor-mp --test derive_ui`,
//! then read every changed `.stderr`: it is the message a user will see.

#[test]
fn derive_ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail_*.rs");
    cases.pass("tests/ui/pass_*.rs");
}
