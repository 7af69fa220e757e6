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
//! past the PDU are never read, bytes its fields leave unread are dropped.

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
        let Some(length) = frame_length(src, self.max_length)? else {
            return Ok(None);
        };
        if src.len() < length {
            src.reserve(length - src.len());
            return Ok(None);
        }
        let (command, unread) = decode_frame(src.split_to(length))?;
        if unread > 0 {
            tracing::debug!(
                command_id = ?command.id(),
                unread,
                "PDU body longer than its fields; the rest is dropped"
            );
        }
        Ok(Some(command))
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
