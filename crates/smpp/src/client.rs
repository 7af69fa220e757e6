//! One SMPP connection: a writer that sends everything queued and then flushes, a reader
//! that matches responses to their requests by sequence number and hands the SMSC's own
//! requests to the session, and the SMSC's `enquire_link` answered on the spot.
//!
//! Written on the rusmpp codec rather than on the rusmppc client, whose connection writes at
//! most two queued PDUs per wake-up and then waits for the next event on the socket: a burst
//! of `deliver_sm_resp` or a full window of `submit_sm` sat unsent until the SMSC spoke again
//! (docs/dependencies.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::link::Link;
use crate::pdu::StrictCodec;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection was closed before the request could be written: it was not sent.
    #[error("the connection is closed; nothing was sent")]
    NotSent,
    /// The connection is closed: a request not yet written never will be; one written may
    /// or may not have been read.
    #[error("the connection is closed")]
    Closed,
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

/// What the SMSC sends that is not a response to us. Requests are the common case; the
/// closing is once per connection, so its size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Request(Command),
    /// The connection ended, with the reason.
    Closed(String),
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Command>>>>;

#[derive(Clone)]
pub struct Client {
    outgoing: mpsc::UnboundedSender<Command>,
    pending: Pending,
    sequence: Arc<AtomicU32>,
    closed: CancellationToken,
}

impl Client {
    /// Runs the connection over `link`; the events end with [`Event::Closed`].
    pub fn start(link: Link, max_pdu: usize) -> (Client, mpsc::UnboundedReceiver<Event>) {
        let (outgoing, queued) = mpsc::unbounded_channel();
        let (events, received) = mpsc::unbounded_channel();
        let client = Client {
            outgoing,
            pending: Arc::default(),
            sequence: Arc::new(AtomicU32::new(1)),
            closed: CancellationToken::new(),
        };
        let framed = Framed::new(link, StrictCodec::new(max_pdu));
        tokio::spawn(client.clone().run(framed, queued, events));
        (client, received)
    }

    /// Sends a request and waits for its response (or a `generic_nack` with its sequence
    /// number).
    pub async fn request(&self, pdu: Pdu, timeout: Duration) -> Result<Command, ClientError> {
        let sequence = self.next_sequence();
        let (answer, response) = oneshot::channel();
        self.lock().insert(sequence, answer);
        if self.closed.is_cancelled()
            || self
                .outgoing
                .send(Command::new(CommandStatus::EsmeRok, sequence, pdu))
                .is_err()
        {
            self.lock().remove(&sequence);
            return Err(ClientError::NotSent);
        }
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(command)) => Ok(command),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                self.lock().remove(&sequence);
                Err(ClientError::Timeout(timeout))
            }
        }
    }

    /// Answers the SMSC's request `sequence`.
    pub fn respond(&self, sequence: u32, status: CommandStatus, pdu: Pdu) {
        let _ = self.outgoing.send(Command::new(status, sequence, pdu));
    }

    /// Ends the connection at once; requests waiting get [`ClientError::Closed`].
    pub fn close(&self) {
        self.closed.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn next_sequence(&self) -> u32 {
        // 1..=0x7FFFFFFF, as SMPP allows.
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
        n.max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Command>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(
        self,
        framed: Framed<Link, StrictCodec>,
        mut queued: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<Event>,
    ) {
        let (mut sink, mut stream) = framed.split();
        let reason = loop {
            tokio::select! {
                () = self.closed.cancelled() => break "closed by this side".to_owned(),
                command = queued.recv() => {
                    let Some(command) = command else { break "closed by this side".to_owned() };
                    // Everything queued goes out before one flush.
                    let mut written = sink.feed(command).await;
                    while written.is_ok() {
                        match queued.try_recv() {
                            Ok(more) => written = sink.feed(more).await,
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = written.and(sink.flush().await) {
                        break format!("write failed: {e}");
                    }
                }
                frame = stream.next() => match frame {
                    None => break "the SMSC closed the connection".to_owned(),
                    Some(Err(e)) => break format!("unreadable PDU: {e}"),
                    Some(Ok(command)) => self.received(command, &events),
                }
            }
        };
        self.closed.cancel();
        // Waiting requests learn the connection is gone.
        self.lock().clear();
        let _ = events.send(Event::Closed(reason));
    }

    fn received(&self, command: Command, events: &mpsc::UnboundedSender<Event>) {
        let id = command.id();
        let is_response = u32::from(id) & 0x8000_0000 != 0;
        if is_response {
            let waiting = self.lock().remove(&command.sequence_number());
            match waiting {
                Some(answer) => {
                    let _ = answer.send(command);
                }
                None if id == CommandId::GenericNack => {
                    let _ = events.send(Event::Request(command));
                }
                None => tracing::debug!(?id, "a response nobody waits for (late)"),
            }
            return;
        }
        if id == CommandId::EnquireLink {
            self.respond(
                command.sequence_number(),
                CommandStatus::EsmeRok,
                Pdu::EnquireLinkResp,
            );
            return;
        }
        let _ = events.send(Event::Request(command));
    }
}
