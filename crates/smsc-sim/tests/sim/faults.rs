use std::time::{Duration, Instant};

use ami_smsc_sim::{Faults, ResponseDelay, SubmitAnswer, Trigger};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};

use crate::client::{Bind, Client};
use crate::start;

async fn statuses(client: &mut Client, count: usize) -> Vec<CommandStatus> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        client.submit("4479111", "x", 0).await;
        statuses.push(client.expect(CommandId::SubmitSmResp).await.status());
    }
    statuses
}

const OK: CommandStatus = CommandStatus::EsmeRok;

#[tokio::test]
async fn throttle_answers_the_next_n_submits_with_rthrottled() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    assert_eq!(statuses(&mut client, 1).await, vec![OK]);
    smsc.set_faults(Faults {
        throttle: Some(Trigger::Next(2)),
        ..Faults::default()
    });
    let throttled = CommandStatus::EsmeRthrottled;
    assert_eq!(
        statuses(&mut client, 3).await,
        vec![throttled, throttled, OK]
    );
    assert_eq!(smsc.counters().responses_with(0x58), 2);
    assert_eq!(
        smsc.submits()[1].answer,
        SubmitAnswer::Refused { status: 0x58 }
    );
}

#[tokio::test]
async fn queue_full_answers_every_kth_submit_with_rmsgqful() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        queue_full: Some(Trigger::EveryKth(2)),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let full = CommandStatus::EsmeRmsgqful;
    assert_eq!(statuses(&mut client, 4).await, vec![OK, full, OK, full]);
}

#[tokio::test]
async fn a_rejected_prefix_gets_rinvdstadr_every_time() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        reject_destination_prefixes: vec!["4479666".into()],
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    for destination in ["4479666001", "4479111", "4479666002"] {
        client.submit(destination, "x", 1).await;
        let resp = client.expect(CommandId::SubmitSmResp).await;
        let expected = if destination.starts_with("4479666") {
            CommandStatus::EsmeRinvdstadr
        } else {
            OK
        };
        assert_eq!(resp.status(), expected);
        if expected == OK {
            let receipt = client.expect(CommandId::DeliverSm).await;
            client.answer_deliver(&receipt).await;
        }
    }
    // A refused submit gets no receipt.
    assert!(
        client
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_fixed_response_delay_holds_the_answer() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(250))),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let started = Instant::now();
    client.submit("4479111", "slow", 0).await;
    client.expect(CommandId::SubmitSmResp).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn random_delays_let_responses_interleave() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        response_delay: Some(ResponseDelay::Random(
            Duration::from_millis(1)..Duration::from_millis(200),
        )),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let mut sent = Vec::new();
    for _ in 0..20 {
        sent.push(client.submit("4479111", "x", 0).await);
    }
    let mut answered = Vec::new();
    for _ in 0..20 {
        answered.push(
            client
                .expect(CommandId::SubmitSmResp)
                .await
                .sequence_number(),
        );
    }
    assert_ne!(answered, sent, "20 random delays came back in order");
    answered.sort_unstable();
    assert_eq!(answered, sent);
}

#[tokio::test]
async fn a_reverse_window_answers_each_run_backwards() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        reverse_order_window: Some(3),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(client.submit("4479111", "x", 0).await);
    }
    let mut answered = Vec::new();
    for _ in 0..3 {
        answered.push(
            client
                .expect(CommandId::SubmitSmResp)
                .await
                .sequence_number(),
        );
    }
    sent.reverse();
    assert_eq!(answered, sent);
}

#[tokio::test]
async fn a_receipt_can_come_before_its_response() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        receipt_before_response: true,
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479111", "early receipt", 1).await;
    let receipt = client.expect(CommandId::DeliverSm).await;
    let resp = client.expect(CommandId::SubmitSmResp).await;
    let message_id = crate::client::message_id_of(&resp);
    let text = crate::client::text_of(crate::client::deliver_of(&receipt));
    assert!(text.starts_with(&format!("id:{message_id} ")), "{text}");
}

#[tokio::test]
async fn the_connection_drops_on_the_nth_submit_without_answering_it() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        drop_connection_at_submit: Some(3),
        response_delay: Some(ResponseDelay::Fixed(Duration::from_secs(3))),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    for _ in 0..3 {
        client.submit("4479111", "in flight", 0).await;
    }
    assert!(client.closed_within(Duration::from_secs(2)).await);
    assert_eq!(smsc.counters().submits, 3);
    assert_eq!(smsc.submits()[2].answer, SubmitAnswer::None);
    assert!(
        smsc.wait_until(Duration::from_secs(2), |s| s.binds().is_empty())
            .await
    );
}

#[tokio::test]
async fn generic_nack_replaces_the_submit_sm_resp() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        generic_nack: Some(Trigger::Next(1)),
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    let sequence = client.submit("4479111", "x", 0).await;
    let nack = client.expect(CommandId::GenericNack).await;
    assert_eq!(nack.sequence_number(), sequence);
    client.submit("4479111", "x", 0).await;
    client.expect(CommandId::SubmitSmResp).await;
}

#[tokio::test]
async fn a_blackhole_answers_no_submit_and_optionally_nothing() {
    let smsc = start().await;
    smsc.set_faults(Faults {
        blackhole_submits: true,
        ..Faults::default()
    });
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    client.submit("4479111", "lost", 1).await;
    client.send(Pdu::EnquireLink).await;
    // The enquire_link is answered; the submit is not.
    client.expect(CommandId::EnquireLinkResp).await;
    assert!(
        client
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    smsc.set_faults(Faults {
        blackhole_all: true,
        ..Faults::default()
    });
    client.send(Pdu::EnquireLink).await;
    assert!(
        client
            .recv_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    assert_eq!(smsc.sessions()[0].max_outstanding, 1);
}

#[tokio::test]
async fn the_simulator_can_unbind_the_client() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    assert_eq!(smsc.send_unbind(), 1);
    let unbind = client.expect(CommandId::Unbind).await;
    client
        .send_command(Command::new(OK, unbind.sequence_number(), Pdu::UnbindResp))
        .await;
    assert!(client.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn the_simulator_can_send_garbage_bytes() {
    let smsc = start().await;
    let mut client = Client::bound(smsc.addr(), Bind::Transceiver, "ami").await;
    assert_eq!(smsc.send_garbage(37), 1);
    let bytes = client.read_raw(37).await;
    assert_eq!(bytes.len(), 37);
}
