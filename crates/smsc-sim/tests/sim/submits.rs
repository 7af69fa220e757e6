use std::time::Duration;

use ami_smsc_sim::{Faults, MessageIdScheme, ResponseDelay, SarInfo, SubmitAnswer};
use rusmpp::tlvs::MessageSubmissionRequestTlvValue;
use rusmpp::types::AnyOctetString;
use rusmpp::values::MessagePayload;
use rusmpp::{CommandId, CommandStatus};

use crate::client::{Bind, Client, message_id_of, submit_sm, with_sar};
use crate::{start, start_with};

#[tokio::test]
async fn a_submit_is_answered_with_a_sequential_message_id_and_recorded() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transmitter, "ami").await;
    let first = client.submit("4479111", "hello", 0).await;
    let resp = client.expect(CommandId::SubmitSmResp).await;
    assert_eq!(resp.sequence_number(), first);
    assert_eq!(resp.status(), CommandStatus::EsmeRok);
    assert_eq!(message_id_of(&resp), "1");
    client.submit("4479112", "again", 0).await;
    assert_eq!(
        message_id_of(&client.expect(CommandId::SubmitSmResp).await),
        "2"
    );

    let submits = smsc.submits();
    assert_eq!(submits.len(), 2);
    let record = &submits[0];
    assert_eq!(record.sequence_number, first);
    assert_eq!(record.system_id, "ami");
    assert_eq!(record.session_id, smsc.binds()[0].session_id);
    assert_eq!(
        (
            record.source_addr.as_str(),
            record.source_addr_ton,
            record.source_addr_npi
        ),
        ("4479000", 1, 1)
    );
    assert_eq!(
        (
            record.destination_addr.as_str(),
            record.dest_addr_ton,
            record.dest_addr_npi
        ),
        ("4479111", 1, 1)
    );
    assert_eq!(record.short_message, b"hello");
    assert_eq!(
        (
            record.esm_class,
            record.data_coding,
            record.registered_delivery
        ),
        (0, 0, 0)
    );
    assert_eq!(
        record.answer,
        SubmitAnswer::Accepted {
            message_id: "1".into()
        }
    );
    assert_eq!(record.sar, None);
    assert_eq!(smsc.counters().responses_with(0), 2);
    // No receipt was asked for, so none comes.
    assert!(
        client
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    assert_eq!(smsc.counters().deliver_sm_sent, 0);
}

#[tokio::test]
async fn hex_message_ids_are_hex() {
    let smsc = start_with(|config| config.message_ids = MessageIdScheme::Hex).await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    for expected in ["00000001", "00000002"] {
        client.submit("4479111", "x", 0).await;
        assert_eq!(
            message_id_of(&client.expect(CommandId::SubmitSmResp).await),
            expected
        );
    }
}

#[tokio::test]
async fn sar_tlvs_and_message_payload_are_recorded() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client
        .send(with_sar(submit_sm("4479111", b"part one", 0), 513, 2, 1))
        .await;
    client.expect(CommandId::SubmitSmResp).await;
    let mut with_payload = submit_sm("4479111", b"", 0);
    with_payload.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
        MessagePayload::new(AnyOctetString::from_slice(&[b'p'; 300])),
    ));
    client.send(with_payload).await;
    client.expect(CommandId::SubmitSmResp).await;

    let submits = smsc.submits();
    assert_eq!(
        submits[0].sar,
        Some(SarInfo {
            msg_ref_num: 513,
            total_segments: 2,
            segment_seqnum: 1
        })
    );
    assert_eq!(
        submits[1].message_payload.as_deref(),
        Some(&[b'p'; 300][..])
    );
    assert!(submits[1].short_message.is_empty());
}

#[tokio::test]
async fn outstanding_submits_and_rate_are_measured_per_session() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(300))),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    for _ in 0..6 {
        client.submit("4479111", "burst", 0).await;
    }
    for _ in 0..6 {
        client.expect(CommandId::SubmitSmResp).await;
    }
    // A second later, a lone submit: it has one outstanding and one within its second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.submit("4479111", "alone", 0).await;
    client.expect(CommandId::SubmitSmResp).await;
    let sessions = smsc.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].submits, 7);
    assert_eq!(sessions[0].max_outstanding, 6);
    assert_eq!(sessions[0].max_submits_per_second, 6);
    let counters = smsc.counters();
    assert_eq!((counters.max_outstanding, counters.submits), (6, 7));
}
