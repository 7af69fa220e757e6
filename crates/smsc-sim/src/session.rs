//! One client connection: its reader (binds, requests, responses) and its writer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rusmpp::command::CommandParts;
use rusmpp::pdus::{BindReceiverResp, BindTransceiverResp, BindTransmitterResp};
use rusmpp::types::COctetString;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::{Inbound, InboundCodec};
use crate::deliver;
use crate::observe::{BindInfo, BindType, RateWindow, SessionStats, bump};
use crate::registry::{Outgoing, SessionLink, Shared};

/// How long a closing connection may take to flush what is queued for it.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// Whether the connection stays open after a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// A response without a body, as SMPP 3.4 sends for most error statuses.
pub(crate) fn header_only(id: CommandId, status: CommandStatus, sequence: u32) -> Command {
    Command::from_parts(CommandParts::new(id, status, sequence, None))
}

pub(crate) fn generic_nack(status: CommandStatus, sequence: u32) -> Command {
    Command::new(status, sequence, Pdu::GenericNack)
}

/// The reader's own state; everything others need is in the [`SessionLink`].
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub peer: SocketAddr,
    pub tx: mpsc::UnboundedSender<Outgoing>,
    pub link: Option<Arc<SessionLink>>,
    pub rate: RateWindow,
    /// Responses held back to be sent in reverse order.
    pub held: Vec<crate::submit::Reply>,
}

pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    bump(&shared.tally.connections);
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(
        FramedWrite::new(write, rusmpp::tokio_codec::CommandCodec::new()),
        rx,
    ));
    let mut session = Session {
        id: shared.new_session_id(),
        shared: shared.clone(),
        peer,
        tx,
        link: None,
        rate: RateWindow::default(),
        held: Vec::new(),
    };
    let mut reader = FramedRead::new(read, InboundCodec);
    loop {
        let inbound = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            next = reader.next() => match next {
                Some(Ok(inbound)) => inbound,
                _ => break,
            },
        };
        if session.handle(inbound) == Flow::Close {
            break;
        }
    }
    session.finish();
    drop(session);
    // A client that stops reading must not keep the connection (or a shutdown) waiting.
    let mut writer = writer;
    let flushed = tokio::select! {
        biased;
        _ = &mut writer => true,
        _ = shared.cancel.cancelled() => false,
        _ = tokio::time::sleep(WRITER_GRACE) => false,
    };
    if !flushed {
        writer.abort();
        let _ = writer.await;
    }
    shared.connection_closed();
}

async fn write_loop(mut sink: Sink, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Queue everything ready, then flush once: one write for a burst of responses.
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Pdu(command) => {
                    if sink.feed(command).await.is_err() {
                        return;
                    }
                }
                Outgoing::Raw(bytes) => {
                    if !flush(&mut sink).await || sink.get_mut().write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Outgoing::Close => {
                    let _ = flush(&mut sink).await;
                    let _ = sink.get_mut().shutdown().await;
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        if !flush(&mut sink).await {
            return;
        }
    }
}

type Sink = FramedWrite<OwnedWriteHalf, rusmpp::tokio_codec::CommandCodec>;

async fn flush(sink: &mut Sink) -> bool {
    SinkExt::<Command>::flush(sink).await.is_ok()
}

impl Session {
    pub(crate) fn send(&self, command: Command) {
        let _ = self.tx.send(Outgoing::Pdu(command));
    }

    fn finish(&mut self) {
        let _ = self.tx.send(Outgoing::Close);
        if let Some(link) = self.link.take() {
            self.shared.unregister(link.info.session_id);
            link.abandon_deliveries();
        }
    }

    fn handle(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Unframeable { sequence_number } => {
                self.send(generic_nack(CommandStatus::EsmeRinvcmdlen, sequence_number));
                bump(&self.shared.tally.generic_nacks_sent);
                Flow::Close
            }
            Inbound::Undecodable {
                sequence_number,
                status,
            } => {
                self.send(generic_nack(status, sequence_number));
                bump(&self.shared.tally.generic_nacks_sent);
                Flow::Continue
            }
            Inbound::Command(command) => self.handle_command(command),
        }
    }

    fn handle_command(&mut self, command: Command) -> Flow {
        let sequence = command.sequence_number();
        let status = command.status();
        let id = command.id();
        // Answers to what this side sent are taken whatever the fault plan says.
        match id {
            CommandId::DeliverSmResp => return self.deliver_answered(sequence, status),
            CommandId::GenericNack => {
                bump(&self.shared.tally.generic_nacks_received);
                return self.deliver_answered(sequence, CommandStatus::EsmeRsyserr);
            }
            CommandId::UnbindResp => return Flow::Close,
            CommandId::EnquireLinkResp => return Flow::Continue,
            _ => {}
        }
        if self.link.is_some() && self.shared.blackhole_all() {
            return Flow::Continue;
        }
        let Some(pdu) = command.pdu() else {
            // A request with no body at all, where one is required.
            self.send(generic_nack(CommandStatus::EsmeRinvcmdlen, sequence));
            bump(&self.shared.tally.generic_nacks_sent);
            return Flow::Continue;
        };
        match pdu {
            Pdu::BindTransmitter(bind) => self.bind(
                BindType::Transmitter,
                sequence,
                bind.system_id.as_str(),
                bind.password.as_str(),
            ),
            Pdu::BindReceiver(bind) => self.bind(
                BindType::Receiver,
                sequence,
                bind.system_id.as_str(),
                bind.password.as_str(),
            ),
            Pdu::BindTransceiver(bind) => self.bind(
                BindType::Transceiver,
                sequence,
                bind.system_id.as_str(),
                bind.password.as_str(),
            ),
            Pdu::SubmitSm(submit) => self.submit(sequence, submit),
            Pdu::EnquireLink => {
                bump(&self.shared.tally.enquire_links);
                self.send(Command::new(
                    CommandStatus::EsmeRok,
                    sequence,
                    Pdu::EnquireLinkResp,
                ));
                Flow::Continue
            }
            Pdu::Unbind => {
                self.send(Command::new(
                    CommandStatus::EsmeRok,
                    sequence,
                    Pdu::UnbindResp,
                ));
                Flow::Close
            }
            _ if is_response(id) => Flow::Continue,
            _ => {
                self.send(generic_nack(CommandStatus::EsmeRinvcmdid, sequence));
                bump(&self.shared.tally.generic_nacks_sent);
                Flow::Continue
            }
        }
    }

    fn deliver_answered(&mut self, sequence: u32, status: CommandStatus) -> Flow {
        if let Some(link) = &self.link {
            deliver::answered(&self.shared, link, sequence, status);
        }
        Flow::Continue
    }

    fn bind(
        &mut self,
        bind_type: BindType,
        sequence: u32,
        system_id: &str,
        password: &str,
    ) -> Flow {
        let resp_id = match bind_type {
            BindType::Transmitter => CommandId::BindTransmitterResp,
            BindType::Receiver => CommandId::BindReceiverResp,
            BindType::Transceiver => CommandId::BindTransceiverResp,
        };
        let credentials = &self.shared.config.credentials;
        let refusal = if self.link.is_some() {
            Some(CommandStatus::EsmeRalybnd)
        } else if credentials.is_empty()
            || credentials
                .iter()
                .any(|c| c.system_id == system_id && c.password == password)
        {
            None
        } else if credentials.iter().any(|c| c.system_id == system_id) {
            Some(CommandStatus::EsmeRinvpaswd)
        } else {
            Some(CommandStatus::EsmeRinvsysid)
        };
        if let Some(status) = refusal {
            bump(&self.shared.tally.bind_refusals);
            self.send(header_only(resp_id, status, sequence));
            return Flow::Continue;
        }
        let info = BindInfo {
            session_id: self.id,
            bind_type,
            system_id: system_id.to_owned(),
            peer: self.peer,
        };
        let stats = Arc::new(SessionStats::new(self.id, system_id.to_owned(), bind_type));
        let link = Arc::new(SessionLink::new(info, stats, self.tx.clone()));
        // The bind_resp is queued before any receipt or MO can pick this session.
        self.send(self.bind_resp(bind_type, sequence));
        self.link = Some(link.clone());
        self.shared.register(link);
        bump(&self.shared.tally.binds);
        Flow::Continue
    }

    fn bind_resp(&self, bind_type: BindType, sequence: u32) -> Command {
        let name = COctetString::from_string(self.shared.config.smsc_system_id.clone())
            .unwrap_or_else(|_| COctetString::empty());
        let version = Some(InterfaceVersion::Smpp3_4);
        let pdu = match bind_type {
            BindType::Transmitter => {
                Pdu::BindTransmitterResp(BindTransmitterResp::new(name, version))
            }
            BindType::Receiver => Pdu::BindReceiverResp(BindReceiverResp::new(name, version)),
            BindType::Transceiver => {
                Pdu::BindTransceiverResp(BindTransceiverResp::new(name, version))
            }
        };
        Command::new(CommandStatus::EsmeRok, sequence, pdu)
    }
}

fn is_response(id: CommandId) -> bool {
    u32::from(id) & 0x8000_0000 != 0
}
