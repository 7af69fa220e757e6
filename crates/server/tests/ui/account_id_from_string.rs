// A handler cannot turn a string from the request into an account id.
fn main() {
    let _other = ami_store::AccountId("acct_someone_else".to_owned());
}
