//! How fast the simulator answers a pipelined client. Ignored by default: run with
//! `cargo test --release -p ami-smsc-sim --test sim throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use rusmpp::CommandId;

use crate::client::{Bind, Client, submit_sm};
use crate::start_with;

async fn pipelined(receipts: bool, total: usize, window: usize) -> f64 {
    let smsc = start_with(|config| config.record_submits = false).await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let registered_delivery = u8::from(receipts);
    let (mut sent, mut answered, mut receipts_seen) = (0, 0, 0);
    let started = Instant::now();
    while answered < total || (receipts && receipts_seen < total) {
        while sent < total && sent - answered < window {
            client
                .send(submit_sm("4479111", b"load", registered_delivery))
                .await;
            sent += 1;
        }
        let command = client.recv().await;
        match command.id() {
            CommandId::SubmitSmResp => answered += 1,
            CommandId::DeliverSm => {
                receipts_seen += 1;
                client.answer_deliver(&command).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    assert!(
        smsc.wait_until(Duration::from_secs(5), |s| {
            s.counters().deliver_sm_acknowledged == if receipts { total as u64 } else { 0 }
        })
        .await
    );
    let counters = smsc.counters();
    assert_eq!(counters.responses_with(0), total as u64);
    assert!(counters.max_outstanding <= window as u64);
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run in release"]
async fn throughput() {
    let plain = pipelined(false, 200_000, 1024).await;
    let with_receipts = pipelined(true, 100_000, 1024).await;
    println!("submits/s without receipts: {plain:.0}, with receipts: {with_receipts:.0}");
}
