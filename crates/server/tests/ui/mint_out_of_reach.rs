// The door authentication uses is in a crate this one does not depend on.
fn main() {
    let _other = ami_tenant::mint::account_id("acct_someone_else");
}
