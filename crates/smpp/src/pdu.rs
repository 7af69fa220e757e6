//! Framing in front of the `rusmpp` PDU decoder.
//!
//! `rusmpp`'s `CommandCodec` decodes a PDU's fields from the whole receive buffer rather
//! than from the PDU's `command_length` bytes. Two consequences for a stream:
//!
//! - a PDU whose C-string lacks its NUL (bind_*, query_sm, cancel_sm, outbind) reads on into
//!   the next PDU when that one is already buffered, and decodes successfully with bytes that
//!   are not its own — or fails when the next PDU has not arrived yet;
//! - a PDU whose body is longer than its fields (e.g. an enquire_link with a body) leaves the
//!   rest in the buffer, where it is read as the next PDU's header.
//!
//! Either way the stream loses its framing, and what happens depends on how TCP cut it.
//! [`StrictCodec`] cuts each PDU to its `command_length` first and decodes it alone: bytes
//! past the PDU are never read, bytes its fields leave unread are dropped. Where the codec is
//! not ours to choose (a client library that frames the socket itself), [`FrameGuard`] does
//! the same on the received bytes before they reach that codec.

use rusmpp::Command;
use rusmpp::tokio_codec::{CommandCodec, DecodeError, EncodeError};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

/// The SMPP header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LENGTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("command_length {0} is shorter than the {HEADER_LENGTH}-byte header")]
    TooShort(usize),
    #[error("command_length {length} exceeds the maximum of {max}")]
    TooLong { length: usize, max: usize },
    #[error("PDU does not decode within its command_length: {0}")]
    Malformed(DecodeError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The `command_length` at the start of `buffer`, once its 4 bytes are there, checked
/// against the header size and `max_length`.
pub fn frame_length(buffer: &[u8], max_length: usize) -> Result<Option<usize>, FrameError> {
    let Some(&[a, b, c, d]) = buffer.get(..4) else {
        return Ok(None);
    };
    let length = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
    if length < HEADER_LENGTH {
        return Err(FrameError::TooShort(length));
    }
    if length > max_length {
        return Err(FrameError::TooLong {
            length,
            max: max_length,
        });
    }
    Ok(Some(length))
}

/// Decodes one complete PDU (`frame` holds exactly its `command_length` bytes) on its own.
/// Returns the command and how many bytes of the body its fields left unread.
pub fn decode_frame(mut frame: BytesMut) -> Result<(Command, usize), FrameError> {
    // The length was checked by the caller; the inner codec only splits the fields.
    let mut codec = CommandCodec::new().without_max_length();
    match codec.decode(&mut frame) {
        Ok(Some(command)) => Ok((command, frame.len())),
        Ok(None) => Err(FrameError::Malformed(DecodeError::Io(
            std::io::ErrorKind::UnexpectedEof.into(),
        ))),
        Err(error) => Err(FrameError::Malformed(error)),
    }
}

/// Received bytes checked PDU by PDU before a `CommandCodec` sees them.
#[derive(Debug)]
pub struct FrameGuard {
    max_length: usize,
    pending: BytesMut,
}

impl FrameGuard {
    pub fn new(max_length: usize) -> Self {
        FrameGuard {
            max_length,
            pending: BytesMut::new(),
        }
    }

    /// Adds received bytes.
    pub fn extend(&mut self, received: &[u8]) {
        self.pending.extend_from_slice(received);
    }

    /// The next complete PDU, once it is shown to decode within its own `command_length`
    /// (see [`take_checked_frame`]); None until the whole PDU has been received. After an
    /// error the connection is to be closed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(take_checked_frame(&mut self.pending, self.max_length)?.map(|frame| frame.to_vec()))
    }
}

/// Takes the next complete PDU off `buffer` once it decodes on its own, within its
/// `command_length`; body bytes its fields leave unread are cut off and the length adjusted,
/// so that any `CommandCodec` decodes the result exactly as [`StrictCodec`] does. None (and
/// room reserved) while the PDU is incomplete.
pub fn take_checked_frame(
    buffer: &mut BytesMut,
    max_length: usize,
) -> Result<Option<BytesMut>, FrameError> {
    let Some(length) = frame_length(buffer, max_length)? else {
        return Ok(None);
    };
    if buffer.len() < length {
        buffer.reserve(length - buffer.len());
        return Ok(None);
    }
    let mut frame = buffer.split_to(length);
    let (command, unread) = decode_frame(frame.clone())?;
    if unread > 0 {
        tracing::debug!(
            command_id = ?command.id(),
            unread,
            "PDU body longer than its fields; the rest is dropped"
        );
        let used = length - unread;
        frame.truncate(used);
        let used_length = u32::try_from(used).map_err(|_| FrameError::TooLong {
            length,
            max: max_length,
        })?;
        if let Some(prefix) = frame.get_mut(..4) {
            prefix.copy_from_slice(&used_length.to_be_bytes());
        }
    }
    Ok(Some(frame))
}

/// `CommandCodec` with every PDU decoded within its own `command_length`.
#[derive(Debug)]
pub struct StrictCodec {
    max_length: usize,
    inner: CommandCodec,
}

impl StrictCodec {
    /// PDUs longer than `max_length` bytes are refused before any of them is buffered.
    pub fn new(max_length: usize) -> Self {
        StrictCodec {
            max_length,
            inner: CommandCodec::new(),
        }
    }
}

impl Decoder for StrictCodec {
    type Item = Command;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Command>, FrameError> {
        match take_checked_frame(src, self.max_length)? {
            Some(frame) => decode_frame(frame).map(|(command, _)| Some(command)),
            None => Ok(None),
        }
    }
}

impl Encoder<&Command> for StrictCodec {
    type Error = EncodeError;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.inner.encode(command, dst)
    }
}

impl Encoder<Command> for StrictCodec {
    type Error = EncodeError;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.inner.encode(&command, dst)
    }
}
