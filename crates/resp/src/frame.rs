//! A whole RESP2/RESP3 value and its codec, for the reading side of a
//! connection to a Redis node (replies) and for tests.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::ProtocolError;

/// Any RESP2 or RESP3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP2 `*-1`.
    NullArray,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    BigNumber(Bytes),
    Verbatim {
        format: [u8; 3],
        text: Bytes,
    },
    Push(Vec<Frame>),
    /// Attributes that precede a value; kept with the value they annotate.
    Attribute {
        attrs: Vec<(Frame, Frame)>,
        value: Box<Frame>,
    },
}

/// Encodes and decodes [`Frame`]s.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    pub max_bulk_len: usize,
    pub max_depth: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec { max_bulk_len: 512 * 1024 * 1024, max_depth: 128 }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, _buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        Err(ProtocolError::InvalidValue("frame decoding is not built yet"))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, _item: Frame, _dst: &mut BytesMut) -> Result<(), ProtocolError> {
        Err(ProtocolError::InvalidValue("frame encoding is not built yet"))
    }
}
