use std::time::Duration;

use ami_smsc_sim::{MoCoding, Segmentation, decode_gsm7};
use rusmpp::CommandId;
use rusmpp::tlvs::TlvValue;

use crate::client::{Bind, Client, deliver_of, tlv_values};
use crate::{start, start_with};

#[tokio::test]
async fn a_short_gsm_text_arrives_as_one_deliver_sm() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    assert_eq!(
        smsc.send_mo("+4479111", "100", "Hi {all} €5", MoCoding::Gsm7)
            .unwrap(),
        1
    );
    let mo = client.expect(CommandId::DeliverSm).await;
    let deliver = deliver_of(&mo);
    assert_eq!(u8::from(deliver.esm_class), 0);
    assert_eq!(u8::from(deliver.data_coding), 0);
    assert_eq!(deliver.source_addr.as_str(), "4479111");
    assert_eq!(deliver.destination_addr.as_str(), "100");
    assert_eq!(decode_gsm7(deliver.short_message().as_ref()), "Hi {all} €5");
    client.answer_deliver(&mo).await;
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s
            .counters()
            .deliver_sm_acknowledged
            == 1)
            .await
    );
}

#[tokio::test]
async fn a_long_ucs2_text_arrives_in_udh_parts() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let text = "Привет! ".repeat(20);
    let parts = smsc
        .send_mo("4479111", "100", &text, MoCoding::Ucs2)
        .unwrap();
    assert_eq!(parts, 3);
    let mut units = Vec::new();
    for number in 1..=3u8 {
        let mo = client.expect(CommandId::DeliverSm).await;
        let deliver = deliver_of(&mo);
        assert_eq!(u8::from(deliver.esm_class), 0x40);
        assert_eq!(u8::from(deliver.data_coding), 8);
        let body = deliver.short_message().as_ref();
        assert_eq!(body[..3], [5, 0, 3]);
        assert_eq!(body[4..6], [3, number]);
        units.extend(
            body[6..]
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
        );
        client.answer_deliver(&mo).await;
    }
    assert_eq!(String::from_utf16(&units).unwrap(), text);
    assert_eq!(smsc.counters().mo_parts, 3);
}

#[tokio::test]
async fn sar_segmentation_uses_tlvs() {
    let smsc = start_with(|config| config.segmentation = Segmentation::Sar).await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    smsc.send_mo("4479111", "100", &"z".repeat(200), MoCoding::Gsm7)
        .unwrap();
    let mut lengths = Vec::new();
    for number in 1..=2u8 {
        let mo = client.expect(CommandId::DeliverSm).await;
        let deliver = deliver_of(&mo);
        assert_eq!(u8::from(deliver.esm_class), 0);
        let tlvs = tlv_values(deliver);
        assert!(tlvs.contains(&TlvValue::SarTotalSegments(2)));
        assert!(tlvs.contains(&TlvValue::SarSegmentSeqnum(number)));
        assert!(
            tlvs.iter()
                .any(|tlv| matches!(tlv, TlvValue::SarMsgRefNum(_)))
        );
        lengths.push(deliver.short_message().len());
        client.answer_deliver(&mo).await;
    }
    assert_eq!(lengths, vec![153, 47]);
}

#[tokio::test]
async fn mo_is_not_sent_to_a_transmitter() {
    let smsc = start().await;
    let mut transmitter = Client::bound(smsc.addr(), Bind::Transmitter, "ami").await;
    smsc.send_mo("4479111", "100", "hello", MoCoding::Gsm7)
        .unwrap();
    assert!(
        transmitter
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    let mut receiver = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    let mo = receiver.expect(CommandId::DeliverSm).await;
    assert_eq!(deliver_of(&mo).short_message().as_ref(), b"hello");
}

#[tokio::test]
async fn text_outside_the_gsm_alphabet_is_refused() {
    let smsc = start().await;
    assert!(
        smsc.send_mo("4479111", "100", "🙂", MoCoding::Gsm7)
            .is_err()
    );
}

#[tokio::test]
async fn send_mo_to_reaches_only_that_system_id() {
    let smsc = start().await;
    let mut other = Client::bound(smsc.addr(), Bind::Receiver, "other").await;
    let mut ami = Client::bound(smsc.addr(), Bind::Receiver, "ami").await;
    for _ in 0..3 {
        smsc.send_mo_to("ami", "4479111", "100", "for ami", MoCoding::Gsm7)
            .unwrap();
    }
    for _ in 0..3 {
        let mo = ami.expect(CommandId::DeliverSm).await;
        ami.answer_deliver(&mo).await;
    }
    assert!(
        other
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
}
