use std::time::Duration;

use ami_smsc_sim::{FinalState, FinalStateRule, RECEIPT_ESM_CLASS};
use rusmpp::CommandId;
use rusmpp::tlvs::TlvValue;
use rusmpp::types::COctetString;
use rusmpp::values::MessageState;

use crate::client::{Bind, Client, deliver_of, message_id_of, text_of, tlv_values};
use crate::{start, start_with};

/// `id:1 sub:001 dlvrd:001 submit date:2612071910 done date:...` without the dates.
fn without_dates(text: &str) -> String {
    text.split(' ')
        .filter(|word| !word.starts_with("date:"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn a_receipt_follows_the_response_and_is_not_resent_once_answered() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client
        .submit("4479111", "Hello there, this is a long text", 1)
        .await;
    let resp = client.expect(CommandId::SubmitSmResp).await;
    let message_id = message_id_of(&resp);
    let receipt = client.expect(CommandId::DeliverSm).await;
    let deliver = deliver_of(&receipt);
    assert_eq!(u8::from(deliver.esm_class), RECEIPT_ESM_CLASS);
    assert_eq!(deliver.source_addr.as_str(), "4479111");
    assert_eq!(deliver.destination_addr.as_str(), "4479000");
    let text = text_of(deliver);
    assert_eq!(
        without_dates(&text),
        format!(
            "id:{message_id} sub:001 dlvrd:001 submit done stat:DELIVRD err:000 text:Hello there, this is"
        )
    );
    assert!(text.contains(" submit date:") && text.contains(" done date:"));
    let tlvs = tlv_values(deliver);
    assert!(tlvs.contains(&TlvValue::ReceiptedMessageId(
        COctetString::from_string(message_id).unwrap()
    )));
    assert!(tlvs.contains(&TlvValue::MessageState(MessageState::Delivered)));
    client.answer_deliver(&receipt).await;
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s
            .counters()
            .deliver_sm_acknowledged
            == 1)
            .await
    );
    // Well past the resend timeout: nothing more comes.
    assert!(
        client
            .recv_within(Duration::from_millis(600))
            .await
            .is_none()
    );
    let counters = smsc.counters();
    assert_eq!(
        (counters.deliver_sm_sent, counters.deliver_sm_resent),
        (1, 0)
    );
    assert_eq!(counters.receipts, 1);
}

#[tokio::test]
async fn an_unanswered_receipt_is_sent_again_until_answered() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479111", "resend me", 1).await;
    client.expect(CommandId::SubmitSmResp).await;
    let first = client.expect(CommandId::DeliverSm).await;
    let second = client.expect(CommandId::DeliverSm).await;
    assert_ne!(first.sequence_number(), second.sequence_number());
    assert_eq!(deliver_of(&first), deliver_of(&second));
    client.answer_deliver(&second).await;
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s
            .counters()
            .deliver_sm_acknowledged
            == 1)
            .await
    );
    assert!(
        client
            .recv_within(Duration::from_millis(600))
            .await
            .is_none()
    );
    let counters = smsc.counters();
    assert_eq!(
        (counters.deliver_sm_sent, counters.deliver_sm_resent),
        (2, 1)
    );
}

#[tokio::test]
async fn a_receipt_is_given_up_after_the_last_attempt() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479111", "never answered", 1).await;
    client.expect(CommandId::SubmitSmResp).await;
    for _ in 0..5 {
        client.expect(CommandId::DeliverSm).await;
    }
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s
            .counters()
            .deliver_sm_abandoned
            == 1)
            .await
    );
    assert!(
        client
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(smsc.counters().deliver_sm_resent, 4);
}

#[tokio::test]
async fn the_final_state_follows_the_destination_prefix() {
    let smsc = start_with(|config| {
        config.receipts.final_states = vec![FinalStateRule {
            prefix: "4479666".into(),
            state: FinalState::Undeliverable,
            error_code: 34,
        }];
    })
    .await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479666123", "doomed", 1).await;
    client.expect(CommandId::SubmitSmResp).await;
    let receipt = client.expect(CommandId::DeliverSm).await;
    let deliver = deliver_of(&receipt);
    assert!(text_of(deliver).contains("dlvrd:000"));
    assert!(text_of(deliver).contains("stat:UNDELIV err:034"));
    assert!(tlv_values(deliver).contains(&TlvValue::MessageState(MessageState::Undeliverable)));
    client.answer_deliver(&receipt).await;

    // registered_delivery 2 asks for failure receipts only.
    client.submit("4479666123", "doomed too", 2).await;
    client.expect(CommandId::SubmitSmResp).await;
    let failure = client.expect(CommandId::DeliverSm).await;
    client.answer_deliver(&failure).await;
    client.submit("4479111", "fine", 2).await;
    client.expect(CommandId::SubmitSmResp).await;
    assert!(
        client
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn receipts_go_to_a_receiver_of_the_same_system_id_once_it_binds() {
    let smsc = start_with(|config| config.receipts.delay = Duration::from_millis(20)).await;
    let mut transmitter = Client::bound(smsc.addr(), Bind::Transmitter, "ami").await;
    let mut stranger = Client::bound(smsc.addr(), Bind::Receiver, "other").await;
    transmitter.submit("4479111", "for later", 1).await;
    transmitter.expect(CommandId::SubmitSmResp).await;
    // No receiver of "ami" yet: the receipt waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(smsc.counters().deliver_sm_sent, 0);
    let mut receiver = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    let receipt = receiver.expect(CommandId::DeliverSm).await;
    assert!(text_of(deliver_of(&receipt)).contains("stat:DELIVRD"));
    receiver.answer_deliver(&receipt).await;
    assert!(
        stranger
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(
        transmitter
            .recv_within(Duration::from_millis(10))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn receipts_off_sends_none() {
    let smsc = start_with(|config| config.receipts.enabled = false).await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479111", "quiet", 1).await;
    client.expect(CommandId::SubmitSmResp).await;
    assert!(
        client
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_receipt_owed_to_a_closed_session_goes_to_the_next_receiver() {
    let smsc = start().await;
    let mut first = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    first.submit("4479111", "survive", 1).await;
    first.expect(CommandId::SubmitSmResp).await;
    first.expect(CommandId::DeliverSm).await;
    drop(first);
    let mut second = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    let receipt = second.expect(CommandId::DeliverSm).await;
    assert!(text_of(deliver_of(&receipt)).contains("text:survive"));
    second.answer_deliver(&receipt).await;
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s
            .counters()
            .deliver_sm_acknowledged
            == 1)
            .await
    );
}
