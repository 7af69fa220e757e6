// What acts across tenants needs the System proof, which the services never hand out.
async fn handler(services: &ami_services::Services, conn: &mut ami_store::Conn) {
    let _ = ami_store::system::mids::by_id(services.system(), conn, "mid_x").await;
}

fn main() {
    drop(handler);
}
