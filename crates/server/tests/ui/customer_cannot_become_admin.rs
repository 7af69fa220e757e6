// A customer's handler cannot make itself an operator.
fn main() {
    let _admin = ami_services::auth::AdminCaller {};
}
