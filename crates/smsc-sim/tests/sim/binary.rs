use std::process::Stdio;
use std::time::Duration;

use rusmpp::CommandId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::client::{Bind, Client};

#[tokio::test]
async fn the_binary_prints_its_address_then_its_counters_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ami-smsc-sim"))
        .args([
            "--system-id",
            "ami",
            "--password",
            "secret",
            "--receipts",
            "on",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next_line().await.unwrap().unwrap().parse().unwrap();

    let mut client = Client::bound(addr, Bind::Transceiver, "ami").await;
    client.submit("4479111", "via the binary", 1).await;
    client.expect(CommandId::SubmitSmResp).await;
    let receipt = client.expect(CommandId::DeliverSm).await;
    client.answer_deliver(&receipt).await;
    // Give the deliver_sm_resp time to arrive before the counters are read.
    tokio::time::sleep(Duration::from_millis(200)).await;

    drop(child.stdin.take());
    let json = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(json.contains("\"binds\":1"), "{json}");
    assert!(json.contains("\"submits\":1"), "{json}");
    assert!(
        json.contains("\"submit_responses\":{\"0x00000000\":1}"),
        "{json}"
    );
    assert!(json.contains("\"deliver_sm_acknowledged\":1"), "{json}");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn the_binary_refuses_unknown_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_ami-smsc-sim"))
        .arg("--bogus")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown flag --bogus"));
}
