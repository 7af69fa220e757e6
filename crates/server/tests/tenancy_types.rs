//! Tenancy is enforced by the compiler, not by review: each file under `tests/ui/` is code
//! a handler of this crate might be tempted to write, and each must fail to compile with
//! the error recorded next to it. After a change to the compiler or to the signatures these
//! files touch, review the new output and record it with `TRYBUILD=overwrite`.

#[test]
fn handlers_cannot_forge_or_widen_a_tenant() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
