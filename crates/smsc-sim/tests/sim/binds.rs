use std::time::Duration;

use ami_smsc_sim::BindType;
use rusmpp::{CommandId, CommandStatus, Pdu};

use crate::client::{Bind, Client};
use crate::start;

#[tokio::test]
async fn the_three_bind_types_are_accepted_and_listed() {
    let smsc = start().await;
    let _tx = Client::bound(smsc.addr(), Bind::Transmitter, "ami").await;
    let _rx = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    let _trx = Client::bound(smsc.addr(), Bind::Transceiver, "other").await;
    let binds = smsc.binds();
    let kinds: Vec<_> = binds
        .iter()
        .map(|b| (b.bind_type, b.system_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (BindType::Transmitter, "ami"),
            (BindType::Receiver, "ami"),
            (BindType::Transceiver, "other"),
        ]
    );
    assert_eq!(smsc.counters().binds, 3);
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_rinvpaswd() {
    let smsc = start().await;
    let mut client = Client::connect(smsc.addr()).await;
    assert_eq!(
        client.bind(Bind::Transceiver, "ami", "wrong").await,
        CommandStatus::EsmeRinvpaswd
    );
    assert_eq!(
        client.bind(Bind::Transceiver, "nobody", "secret").await,
        CommandStatus::EsmeRinvsysid
    );
    assert!(smsc.binds().is_empty());
    assert_eq!(smsc.counters().bind_refusals, 2);
    // The connection stays usable: a right bind after wrong ones succeeds.
    assert_eq!(
        client.bind(Bind::Transceiver, "ami", "secret").await,
        CommandStatus::EsmeRok
    );
}

#[tokio::test]
async fn a_second_bind_on_one_connection_is_refused() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    assert_eq!(
        client.bind(Bind::Transceiver, "ami", "secret").await,
        CommandStatus::EsmeRalybnd
    );
}

#[tokio::test]
async fn enquire_link_is_answered_before_and_after_bind() {
    let smsc = start().await;
    let mut client = Client::connect(smsc.addr()).await;
    let sequence = client.send(Pdu::EnquireLink).await;
    let resp = client.expect(CommandId::EnquireLinkResp).await;
    assert_eq!(resp.sequence_number(), sequence);
    client.bind(Bind::Transmitter, "ami", "secret").await;
    client.send(Pdu::EnquireLink).await;
    client.expect(CommandId::EnquireLinkResp).await;
    assert_eq!(smsc.counters().enquire_links, 2);
}

#[tokio::test]
async fn unbind_is_answered_then_the_connection_closes() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let sequence = client.send(Pdu::Unbind).await;
    let resp = client.expect(CommandId::UnbindResp).await;
    assert_eq!(resp.sequence_number(), sequence);
    assert!(client.closed_within(Duration::from_secs(2)).await);
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s.binds().is_empty())
            .await
    );
    assert!(!smsc.sessions()[0].open);
}

#[tokio::test]
async fn submit_before_bind_is_refused_with_rinvbndsts() {
    let smsc = start().await;
    let mut client = Client::connect(smsc.addr()).await;
    client.submit("4479111", "early", 0).await;
    let resp = client.expect(CommandId::SubmitSmResp).await;
    assert_eq!(resp.status(), CommandStatus::EsmeRinvbndsts);
    assert!(resp.pdu().is_none(), "an error response has no body");
    let mut receiver = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    receiver.submit("4479111", "wrong side", 0).await;
    let resp = receiver.expect(CommandId::SubmitSmResp).await;
    assert_eq!(resp.status(), CommandStatus::EsmeRinvbndsts);
    assert_eq!(smsc.counters().submits, 0);
}

#[tokio::test]
async fn an_unknown_command_gets_generic_nack_and_the_session_goes_on() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    // A well-framed PDU with command_id 0x00007777 and sequence 42.
    client
        .send_raw(&[
            0, 0, 0, 20, 0, 0, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0, 42, 1, 2, 3, 4,
        ])
        .await;
    let nack = client.expect(CommandId::GenericNack).await;
    assert_eq!(nack.sequence_number(), 42);
    assert_eq!(nack.status(), CommandStatus::EsmeRinvcmdid);
    client.send(Pdu::EnquireLink).await;
    client.expect(CommandId::EnquireLinkResp).await;
    assert_eq!(smsc.counters().generic_nacks_sent, 1);
}

#[tokio::test]
async fn a_submit_sm_with_a_broken_body_gets_generic_nack() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    // submit_sm, sequence 7, whose body is four bytes with no C-string terminator.
    client
        .send_raw(&[
            0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 7, b'a', b'b', b'c', b'd',
        ])
        .await;
    let nack = client.expect(CommandId::GenericNack).await;
    assert_eq!(nack.sequence_number(), 7);
    client.send(Pdu::EnquireLink).await;
    client.expect(CommandId::EnquireLinkResp).await;
}

#[tokio::test]
async fn garbage_with_an_impossible_length_gets_generic_nack_then_a_close() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.send_raw(&[0xde; 32]).await;
    let nack = client.expect(CommandId::GenericNack).await;
    assert_eq!(nack.status(), CommandStatus::EsmeRinvcmdlen);
    assert!(client.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn shutdown_closes_every_connection() {
    let smsc = start().await;
    let mut bound = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let mut unbound = Client::connect(smsc.addr()).await;
    let addr = smsc.addr();
    smsc.shutdown().await;
    assert!(bound.closed_within(Duration::from_secs(1)).await);
    assert!(unbound.closed_within(Duration::from_secs(1)).await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_that_stopped_reading() {
    let smsc = start().await;
    let _stalled = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    // Far more than the socket buffers hold, never read.
    for _ in 0..200 {
        smsc.send_mo(
            "4479111",
            "100",
            &"x".repeat(150),
            ami_smsc_sim::MoCoding::Gsm7,
        )
        .unwrap();
    }
    smsc.send_garbage(8 * 1024 * 1024);
    let started = std::time::Instant::now();
    smsc.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}
