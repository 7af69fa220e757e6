// A tenant-scoped store function takes the principal's AccountId, not a string.
async fn handler(conn: &mut ami_store::Conn) {
    let _ = ami_store::mids::get(conn, "acct_someone_else", "mid_x").await;
}

fn main() {
    drop(handler);
}
