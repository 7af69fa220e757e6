//! A minimal ESME on the same codec, for driving the simulator.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter, DeliverSm, SubmitSm};
use rusmpp::tlvs::{MessageSubmissionRequestTlvValue, TlvValue};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu, tokio_codec::CommandCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Client {
    framed: Framed<TcpStream, CommandCodec>,
    sequence: u32,
}

#[derive(Clone, Copy)]
pub enum Bind {
    Transmitter,
    Receiver,
    Transceiver,
}

pub fn c_string<const MIN: usize, const MAX: usize>(text: &str) -> COctetString<MIN, MAX> {
    COctetString::from_str(text).unwrap()
}

/// A submit_sm from 4479000 (TON 1, NPI 1) with `text` in data_coding 0.
pub fn submit_sm(destination: &str, text: &[u8], registered_delivery: u8) -> SubmitSm {
    SubmitSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(c_string("4479000"))
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(c_string(destination))
        .esm_class(EsmClass::from(0))
        .registered_delivery(RegisteredDelivery::from(registered_delivery))
        .data_coding(DataCoding::from(0))
        .short_message(OctetString::from_slice(text).unwrap())
        .build()
}

pub fn with_sar(mut submit: SubmitSm, reference: u16, total: u8, number: u8) -> SubmitSm {
    submit.push_tlv(MessageSubmissionRequestTlvValue::SarMsgRefNum(reference));
    submit.push_tlv(MessageSubmissionRequestTlvValue::SarTotalSegments(total));
    submit.push_tlv(MessageSubmissionRequestTlvValue::SarSegmentSeqnum(number));
    submit
}

pub fn deliver_of(command: &Command) -> &DeliverSm {
    match command.pdu() {
        Some(Pdu::DeliverSm(deliver)) => deliver,
        other => panic!("expected deliver_sm, got {:?} {other:?}", command.id()),
    }
}

pub fn message_id_of(command: &Command) -> String {
    match command.pdu() {
        Some(Pdu::SubmitSmResp(resp)) => resp.message_id().as_str().to_owned(),
        other => panic!("expected submit_sm_resp, got {:?} {other:?}", command.id()),
    }
}

pub fn text_of(deliver: &DeliverSm) -> String {
    String::from_utf8(deliver.short_message().as_ref().to_vec()).unwrap()
}

pub fn tlv_values(deliver: &DeliverSm) -> Vec<TlvValue> {
    deliver
        .tlvs()
        .iter()
        .filter_map(|tlv| tlv.value().cloned())
        .collect()
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            framed: Framed::new(stream, CommandCodec::new()),
            sequence: 0,
        }
    }

    /// Connects and binds; panics unless the bind is accepted.
    pub async fn bound(addr: SocketAddr, bind: Bind, system_id: &str) -> Client {
        let mut client = Client::connect(addr).await;
        let status = client.bind(bind, system_id, "secret").await;
        assert_eq!(status, CommandStatus::EsmeRok);
        client
    }

    pub async fn bind(&mut self, bind: Bind, system_id: &str, password: &str) -> CommandStatus {
        let (system_id, password) = (c_string(system_id), c_string(password));
        let pdu = match bind {
            Bind::Transmitter => Pdu::BindTransmitter(
                BindTransmitter::builder()
                    .system_id(system_id)
                    .password(password)
                    .build(),
            ),
            Bind::Receiver => Pdu::BindReceiver(
                BindReceiver::builder()
                    .system_id(system_id)
                    .password(password)
                    .build(),
            ),
            Bind::Transceiver => Pdu::BindTransceiver(
                BindTransceiver::builder()
                    .system_id(system_id)
                    .password(password)
                    .build(),
            ),
        };
        let sequence = self.send(pdu).await;
        let resp = self.recv().await;
        assert_eq!(resp.sequence_number(), sequence);
        resp.status()
    }

    /// Sends a request with the next sequence number; returns that number.
    pub async fn send(&mut self, pdu: impl Into<Pdu>) -> u32 {
        self.sequence += 1;
        let command = Command::new(CommandStatus::EsmeRok, self.sequence, pdu);
        self.framed.send(command).await.unwrap();
        self.sequence
    }

    pub async fn send_command(&mut self, command: Command) {
        self.framed.send(command).await.unwrap();
    }

    pub async fn submit(&mut self, destination: &str, text: &str, registered_delivery: u8) -> u32 {
        self.send(submit_sm(destination, text.as_bytes(), registered_delivery))
            .await
    }

    /// The next PDU; panics after [`WAIT`].
    pub async fn recv(&mut self) -> Command {
        self.recv_within(WAIT).await.expect("no PDU in time")
    }

    /// The next PDU within `wait`, None if none came (or the connection closed).
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Command> {
        match tokio::time::timeout(wait, self.framed.next()).await {
            Ok(Some(Ok(command))) => Some(command),
            Ok(Some(Err(error))) => panic!("undecodable PDU from the simulator: {error}"),
            Ok(None) | Err(_) => None,
        }
    }

    /// The next PDU, which must have this command_id.
    pub async fn expect(&mut self, id: CommandId) -> Command {
        let command = self.recv().await;
        assert_eq!(command.id(), id, "{command:?}");
        command
    }

    pub async fn answer_deliver(&mut self, deliver: &Command) {
        let resp = Command::new(
            CommandStatus::EsmeRok,
            deliver.sequence_number(),
            rusmpp::pdus::DeliverSmResp::default(),
        );
        self.framed.send(resp).await.unwrap();
    }

    /// Writes bytes outside the codec.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.framed.get_mut().write_all(bytes).await.unwrap();
    }

    /// Reads exactly `length` bytes outside the codec.
    pub async fn read_raw(&mut self, length: usize) -> Vec<u8> {
        let mut bytes = self.framed.read_buffer_mut().split().to_vec();
        let mut rest = vec![0u8; length.saturating_sub(bytes.len())];
        tokio::time::timeout(WAIT, self.framed.get_mut().read_exact(&mut rest))
            .await
            .unwrap()
            .unwrap();
        bytes.extend_from_slice(&rest);
        bytes
    }

    /// Whether the simulator closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Ok(None) => return true,
                Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }
}
