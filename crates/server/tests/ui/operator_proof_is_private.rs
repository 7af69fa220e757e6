// Only an authenticated operator principal carries the Operator proof.
fn main() {
    let operator = ami_store::Operator { _private: () };
    let _other = ami_store::AccountId::operator_chosen(&operator, "acct_someone_else");
}
