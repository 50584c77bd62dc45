//! The wire format of peer connections.
//!
//! A connection carries frames, each a 4-byte big-endian payload length followed by that
//! many bytes of [postcard](https://docs.rs/postcard) encoding one [`Frame`]. The first
//! frame of every connection is a [`Hello`]; the others are messages and snapshot chunks.
//! Connections are one-way: a node writes its messages to a peer on the connection it
//! opened, and reads the peer's messages on the connection the peer opened.
//!
//! Decoding is safe on arbitrary bytes: a length above the limit is refused before any
//! allocation, a payload buffer only grows as bytes actually arrive, and postcard trusts a
//! collection's length prefix for preallocation only when the remaining input could hold
//! it, so memory stays proportional to the bytes received.

use bytes::Bytes;
use raft_core::{Message, NodeId};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The version of this wire format, checked by the handshake. Any change to [`Frame`] or
/// the types it carries needs a new version. Version 2: a pre-vote says whether it asks
/// to confirm a leadership transfer, and a leader can tell a node it was removed.
pub const PROTOCOL_VERSION: u32 = 2;

/// The bytes of the length prefix before each payload.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// The largest payload the length prefix can describe.
pub const PAYLOAD_BYTES_LIMIT: usize = u32::MAX as usize;

/// One unit on the wire.
///
/// The variant order is part of the format ([`Frame::Hello`] first, so that every future
/// version still starts with a decodable handshake carrying its version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The handshake opening every connection.
    Hello(Hello),
    /// A message from the connecting node to the accepting one.
    Message(Message),
    /// A piece of a snapshot.
    SnapshotChunk(SnapshotChunk),
}

/// The handshake: who is connecting to whom, in which cluster, speaking which version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`]; first, so that it stays decodable across versions.
    pub version: u32,
    /// The cluster the sender belongs to; nodes of other clusters are refused.
    pub cluster_id: u64,
    /// The connecting node.
    pub from: NodeId,
    /// The node the sender means to reach.
    pub to: NodeId,
}

/// A piece of a snapshot. The chunks of one transfer follow each other in order on one
/// connection (messages may come in between); the receiver appends them until it holds
/// `total` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// Which transfer of the connection this chunk belongs to.
    pub transfer: u64,
    /// The `InstallSnapshot` message the data goes with: in the first chunk (offset 0)
    /// only, so that the receiver can check it before accepting any data.
    pub message: Option<Message>,
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The size of the whole snapshot.
    pub total: u64,
    /// The bytes from `offset` on.
    pub data: Bytes,
}

/// Why a frame could not be encoded, read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The frame's payload is larger than allowed.
    #[error("frame of {length} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The payload length (announced, when reading).
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {received} of {expected} bytes")]
    Truncated {
        /// The bytes the frame needed (its prefix while reading the prefix, else its payload).
        expected: usize,
        /// The bytes that arrived.
        received: usize,
    },
    /// The payload does not decode as a frame.
    #[error("undecodable payload: {0}")]
    Decode(postcard::Error),
    /// The payload decodes as a frame with bytes left over.
    #[error("{0} bytes left over after the frame")]
    TrailingBytes(usize),
    /// The frame could not be encoded.
    #[error("unencodable frame: {0}")]
    Encode(postcard::Error),
    /// Reading the stream failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `frame` to `buffer` as a length prefix and its payload. Refuses (leaving
/// `buffer` as it was) a payload larger than the prefix can describe.
pub fn encode_frame(frame: &Frame, buffer: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_frame_within(frame, PAYLOAD_BYTES_LIMIT, buffer)
}

/// Appends `frame` to `buffer` as a length prefix and its payload. Refuses (leaving
/// `buffer` as it was) a payload larger than `payload_bytes_max`, which a receiver with
/// that limit would refuse too.
pub fn encode_frame_within(
    frame: &Frame,
    payload_bytes_max: usize,
    buffer: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let limit = payload_bytes_max.min(PAYLOAD_BYTES_LIMIT);
    let start = buffer.len();
    // Reserve the prefix, encode the payload after it, then fill the prefix in: one pass,
    // no intermediate buffer.
    buffer.extend_from_slice(&[0; LENGTH_PREFIX_BYTES]);
    if let Err(error) = postcard::to_extend(frame, AppendTo(buffer)) {
        buffer.truncate(start);
        return Err(CodecError::Encode(error));
    }
    let length = buffer.len() - start - LENGTH_PREFIX_BYTES;
    if length > limit {
        buffer.truncate(start);
        return Err(CodecError::FrameTooLarge { length, limit });
    }
    let prefix = u32::try_from(length).expect("the limit is at most u32::MAX");
    buffer[start..start + LENGTH_PREFIX_BYTES].copy_from_slice(&prefix.to_be_bytes());
    Ok(())
}

/// Lets postcard append to a borrowed buffer (it takes its writer by value).
struct AppendTo<'buffer>(&'buffer mut Vec<u8>);

impl Extend<u8> for AppendTo<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

/// Decodes one frame's payload (without its length prefix). Every byte must belong to
/// the frame.
pub fn decode_frame(payload: &[u8]) -> Result<Frame, CodecError> {
    let (frame, rest) = postcard::take_from_bytes::<Frame>(payload).map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(frame)
}

/// Encodes a message alone (no frame, no prefix): its postcard bytes.
pub fn encode_message(message: &Message) -> Vec<u8> {
    postcard::to_stdvec(message).expect("a message always encodes")
}

/// Decodes what [`encode_message`] produced. Never panics, and allocates in proportion to
/// `bytes`, whatever they hold.
pub fn decode_message(bytes: &[u8]) -> Result<Message, CodecError> {
    let (message, rest) =
        postcard::take_from_bytes::<Message>(bytes).map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(message)
}

/// Reads frames from a stream, refusing payloads above a limit before reading them.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    payload_bytes_max: usize,
    payload: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames from `reader`, refusing payloads larger than `payload_bytes_max`.
    pub fn new(reader: R, payload_bytes_max: usize) -> FrameReader<R> {
        FrameReader {
            reader,
            payload_bytes_max: payload_bytes_max.min(PAYLOAD_BYTES_LIMIT),
            payload: Vec::new(),
        }
    }

    /// The next frame, or `None` when the stream ends cleanly between frames.
    ///
    /// Cancelling the future loses the position in the stream; use it where the reader is
    /// dropped on cancellation (or not cancelled at all).
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        let mut prefix = [0; LENGTH_PREFIX_BYTES];
        let mut received = 0;
        while received < LENGTH_PREFIX_BYTES {
            let count = self.reader.read(&mut prefix[received..]).await?;
            if count == 0 {
                if received == 0 {
                    return Ok(None);
                }
                return Err(CodecError::Truncated {
                    expected: LENGTH_PREFIX_BYTES,
                    received,
                });
            }
            received += count;
        }
        let length = u32::from_be_bytes(prefix) as usize;
        if length > self.payload_bytes_max {
            return Err(CodecError::FrameTooLarge {
                length,
                limit: self.payload_bytes_max,
            });
        }
        // `read_to_end` grows the buffer as bytes arrive: a peer announcing a large frame
        // and sending nothing costs nothing. The buffer is reused across frames but shrunk
        // after an unusually large one, so one snapshot chunk does not pin its size.
        self.payload.clear();
        if self.payload.capacity() > PAYLOAD_CAPACITY_KEPT {
            self.payload.shrink_to(PAYLOAD_CAPACITY_KEPT);
        }
        self.payload.reserve(length.min(PAYLOAD_CAPACITY_KEPT));
        let mut limited = (&mut self.reader).take(length as u64);
        limited.read_to_end(&mut self.payload).await?;
        if self.payload.len() < length {
            return Err(CodecError::Truncated {
                expected: length,
                received: self.payload.len(),
            });
        }
        decode_frame(&self.payload).map(Some)
    }
}

/// The payload buffer capacity a [`FrameReader`] keeps between frames.
const PAYLOAD_CAPACITY_KEPT: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{MessageBody, Term};

    fn heartbeat() -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::Heartbeat {
                commit: raft_core::Index(4),
                round: 5,
            },
        }
    }

    #[test]
    fn frames_round_trip_and_refuse_trailing_bytes() {
        let frame = Frame::Message(heartbeat());
        let mut buffer = vec![9];
        encode_frame(&frame, &mut buffer).unwrap();
        let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, buffer.len() - 5);
        assert_eq!(decode_frame(&buffer[5..]).unwrap(), frame);
        let mut longer = buffer[5..].to_vec();
        longer.push(0);
        assert!(matches!(
            decode_frame(&longer),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[test]
    fn an_oversized_frame_leaves_the_buffer_unchanged() {
        let frame = Frame::SnapshotChunk(SnapshotChunk {
            transfer: 1,
            message: None,
            offset: 0,
            total: 100,
            data: Bytes::from(vec![7; 100]),
        });
        let mut buffer = vec![1, 2, 3];
        let error = encode_frame_within(&frame, 50, &mut buffer).unwrap_err();
        assert!(matches!(error, CodecError::FrameTooLarge { limit: 50, .. }));
        assert_eq!(buffer, [1, 2, 3]);
    }

    #[tokio::test]
    async fn the_reader_refuses_large_lengths_and_reports_truncation() {
        let large = [0xff, 0xff, 0xff, 0xff];
        let mut reader = FrameReader::new(&large[..], 1024);
        assert!(matches!(
            reader.next_frame().await,
            Err(CodecError::FrameTooLarge { .. })
        ));
        let truncated = [0, 0, 0, 10, 1, 2];
        let mut reader = FrameReader::new(&truncated[..], 1024);
        assert!(matches!(
            reader.next_frame().await,
            Err(CodecError::Truncated {
                expected: 10,
                received: 2
            })
        ));
        let mut reader = FrameReader::new(&[0u8, 0][..], 1024);
        assert!(matches!(
            reader.next_frame().await,
            Err(CodecError::Truncated { .. })
        ));
        let mut reader = FrameReader::new(&[][..], 1024);
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[test]
    fn decoding_huge_collection_lengths_fails_without_allocating_them() {
        // A `ForwardProposals` claiming about 2^63 commands, then nothing: postcard does
        // not preallocate beyond the remaining input, so this fails fast instead of aborting.
        let mut bytes = encode_message(&Message {
            body: MessageBody::ForwardProposals { commands: vec![] },
            ..heartbeat()
        });
        bytes.pop();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode_message(&bytes).is_err());
    }
}
