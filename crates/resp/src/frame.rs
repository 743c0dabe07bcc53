//! A whole RESP2/RESP3 value and its codec, for the reading side of a
//! connection to a Redis node (replies) and for tests.
//!
//! Decoding is two steps, as in mini-redis: [`frame_len`] checks that a
//! complete frame is buffered and how long it is, without allocating and
//! with every limit enforced; only then is the value tree built. A proxy
//! that forwards replies untouched needs only the first step: it can split
//! the exact reply bytes off the buffer and never build a tree.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::reply::format_double;
use crate::request::parse_int;
use crate::ProtocolError;

/// Any RESP2 or RESP3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    /// `-ERR ...` or a RESP3 blob error; the text without the `-`.
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

impl Frame {
    /// The frame as a command: an array of bulk strings.
    pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Frame {
        Frame::Array(args.iter().map(|a| Frame::Bulk(Bytes::copy_from_slice(a.as_ref()))).collect())
    }

    /// The bytes of a simple string, bulk string or verbatim text.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}

/// The bounds a frame must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// The largest bulk string, blob error or verbatim payload.
    pub max_bulk_len: usize,
    /// The largest element count of one aggregate.
    pub max_elements: usize,
    /// How deeply aggregates may nest.
    pub max_depth: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits { max_bulk_len: 512 * 1024 * 1024, max_elements: i32::MAX as usize, max_depth: 128 }
    }
}

/// The length of the complete frame at the start of `buf`, `Ok(None)` while
/// it is still arriving. Never allocates; checks every limit first.
pub fn frame_len(buf: &[u8], limits: &FrameLimits) -> Result<Option<usize>, ProtocolError> {
    // An explicit stack of "elements still to read" so that depth costs no
    // recursion and a deep frame cannot overflow the thread's stack.
    let mut pending: Vec<u64> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(&kind) = buf.get(pos) else { return Ok(None) };
        let Some((line_end, next)) = line(buf, pos + 1)? else { return Ok(None) };
        let body = &buf[pos + 1..line_end];
        let children: u64 = match kind {
            b'+' | b'-' | b'_' | b'#' | b',' | b'(' | b':' => {
                check_line(kind, body)?;
                pos = next;
                0
            }
            b'$' | b'!' | b'=' => {
                let n = int(body, "bulk length")?;
                if kind == b'$' && n == -1 {
                    pos = next;
                } else {
                    if n < 0 || n as usize > limits.max_bulk_len {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    let end = next + n as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err(ProtocolError::InvalidValue("bulk terminator"));
                    }
                    pos = end;
                }
                0
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = int(body, "aggregate length")?;
                pos = next;
                if kind == b'*' && n == -1 {
                    0
                } else {
                    if n < 0 || n as usize > limits.max_elements {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    let per = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                    // An attribute is followed by the value it annotates.
                    n as u64 * per + u64::from(kind == b'|')
                }
            }
            other => return Err(ProtocolError::InvalidFrameType(other as char)),
        };
        if children > 0 {
            if pending.len() >= limits.max_depth {
                return Err(ProtocolError::TooDeep(limits.max_depth));
            }
            pending.push(children);
            continue;
        }
        // One value finished: it completes its parent's element, and so on up.
        loop {
            match pending.last_mut() {
                None => return Ok(Some(pos)),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    pending.pop();
                }
            }
        }
    }
}

/// The `\r\n` ending the line that starts at `from`: (index of `\r`, index
/// after `\n`).
fn line(buf: &[u8], from: usize) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == b'\r') {
        Some(i) if i + 1 < rest.len() => {
            if rest[i + 1] != b'\n' {
                return Err(ProtocolError::InvalidValue("line terminator"));
            }
            Ok(Some((from + i, from + i + 2)))
        }
        Some(_) => Ok(None),
        None if rest.len() > crate::request::INLINE_MAX * 16 => Err(ProtocolError::TooLarge(rest.len())),
        None => Ok(None),
    }
}

fn int(body: &[u8], what: &'static str) -> Result<i64, ProtocolError> {
    if body == b"0" {
        return Ok(0);
    }
    parse_int(body).ok_or(ProtocolError::InvalidValue(what))
}

fn check_line(kind: u8, body: &[u8]) -> Result<(), ProtocolError> {
    match kind {
        b':' => int(body, "integer").map(drop),
        b'_' if !body.is_empty() => Err(ProtocolError::InvalidValue("null")),
        b'#' if body != b"t" && body != b"f" => Err(ProtocolError::InvalidValue("boolean")),
        b',' => parse_double(body).map(drop),
        b'(' if body.is_empty()
            || !body.iter().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-')) =>
        {
            Err(ProtocolError::InvalidValue("big number"))
        }
        _ => Ok(()),
    }
}

fn parse_double(body: &[u8]) -> Result<f64, ProtocolError> {
    let s = std::str::from_utf8(body).map_err(|_| ProtocolError::InvalidValue("double"))?;
    match s {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| ProtocolError::InvalidValue("double")),
    }
}

/// Builds the tree of a frame already known to be complete and valid.
fn parse(buf: &Bytes, pos: &mut usize) -> Frame {
    let kind = buf[*pos];
    let line_end = *pos + buf[*pos..].iter().position(|&b| b == b'\r').unwrap_or(0);
    let body = buf.slice(*pos + 1..line_end);
    *pos = line_end + 2;
    let n = || int(&body, "length").unwrap_or(0);
    let mut payload = |len: i64| {
        let b = buf.slice(*pos..*pos + len as usize);
        *pos += len as usize + 2;
        b
    };
    match kind {
        b'+' => Frame::Simple(body),
        b'-' => Frame::Error(body),
        b':' => Frame::Integer(n()),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(&body[..] == b"t"),
        b',' => Frame::Double(parse_double(&body).unwrap_or(f64::NAN)),
        b'(' => Frame::BigNumber(body),
        b'$' if n() == -1 => Frame::Null,
        b'$' => Frame::Bulk(payload(n())),
        b'!' => Frame::Error(payload(n())),
        b'=' => {
            let all = payload(n());
            let mut format = *b"txt";
            if all.len() >= 4 && all[3] == b':' {
                format.copy_from_slice(&all[..3]);
                Frame::Verbatim { format, text: all.slice(4..) }
            } else {
                Frame::Verbatim { format, text: all }
            }
        }
        b'*' if n() == -1 => Frame::NullArray,
        b'*' | b'~' | b'>' => {
            let items = (0..n()).map(|_| parse(buf, pos)).collect();
            match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                _ => Frame::Push(items),
            }
        }
        b'%' | b'|' => {
            let pairs = (0..n()).map(|_| (parse(buf, pos), parse(buf, pos))).collect();
            if kind == b'%' {
                Frame::Map(pairs)
            } else {
                Frame::Attribute { attrs: pairs, value: Box::new(parse(buf, pos)) }
            }
        }
        _ => Frame::Null,
    }
}

/// Encodes and decodes [`Frame`]s.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec {
    pub limits: FrameLimits,
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = frame_len(buf, &self.limits)? else { return Ok(None) };
        let bytes = buf.split_to(len).freeze();
        let mut pos = 0;
        Ok(Some(parse(&bytes, &mut pos)))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(&item, dst);
        Ok(())
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(item, dst);
        Ok(())
    }
}

/// Writes `frame` in RESP (RESP3 types as RESP3).
pub fn encode(frame: &Frame, dst: &mut BytesMut) {
    fn head(dst: &mut BytesMut, kind: u8, n: impl std::fmt::Display) {
        dst.put_u8(kind);
        dst.put_slice(n.to_string().as_bytes());
        dst.put_slice(b"\r\n");
    }
    fn blob(dst: &mut BytesMut, kind: u8, b: &[u8]) {
        head(dst, kind, b.len());
        dst.put_slice(b);
        dst.put_slice(b"\r\n");
    }
    fn text(dst: &mut BytesMut, kind: u8, b: &[u8]) {
        dst.put_u8(kind);
        dst.put_slice(b);
        dst.put_slice(b"\r\n");
    }
    match frame {
        Frame::Simple(s) => text(dst, b'+', s),
        Frame::Error(e) => text(dst, b'-', e),
        Frame::Integer(n) => head(dst, b':', n),
        Frame::Bulk(b) => blob(dst, b'$', b),
        Frame::Null => dst.put_slice(b"_\r\n"),
        Frame::NullArray => dst.put_slice(b"*-1\r\n"),
        Frame::Double(d) => text(dst, b',', format_double(*d).as_bytes()),
        Frame::Boolean(b) => dst.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::BigNumber(n) => text(dst, b'(', n),
        Frame::Verbatim { format, text } => {
            head(dst, b'=', text.len() + 4);
            dst.put_slice(format);
            dst.put_u8(b':');
            dst.put_slice(text);
            dst.put_slice(b"\r\n");
        }
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let kind = match frame {
                Frame::Array(_) => b'*',
                Frame::Set(_) => b'~',
                _ => b'>',
            };
            head(dst, kind, items.len());
            items.iter().for_each(|f| encode(f, dst));
        }
        Frame::Map(pairs) => {
            head(dst, b'%', pairs.len());
            pairs.iter().for_each(|(k, v)| {
                encode(k, dst);
                encode(v, dst)
            });
        }
        Frame::Attribute { attrs, value } => {
            head(dst, b'|', attrs.len());
            attrs.iter().for_each(|(k, v)| {
                encode(k, dst);
                encode(v, dst)
            });
            encode(value, dst);
        }
    }
}

/// Skips one frame in `buf` if it is complete (convenience for tests and
/// tools that only need to count replies).
pub fn skip_frame(buf: &mut BytesMut, limits: &FrameLimits) -> Result<bool, ProtocolError> {
    match frame_len(buf, limits)? {
        Some(n) => {
            buf.advance(n);
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        FrameCodec::default().decode(&mut BytesMut::from(input))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn every_type() {
        let cases: Vec<(&[u8], Frame)> = vec![
            (b"+OK\r\n", Frame::Simple(b("OK"))),
            (b"-ERR x\r\n", Frame::Error(b("ERR x"))),
            (b":-12\r\n", Frame::Integer(-12)),
            (b"$3\r\na\r\n\r\n", Frame::Bulk(b("a\r\n"))),
            (b"$0\r\n\r\n", Frame::Bulk(b(""))),
            (b"$-1\r\n", Frame::Null),
            (b"*-1\r\n", Frame::NullArray),
            (b"_\r\n", Frame::Null),
            (b",1.5\r\n", Frame::Double(1.5)),
            (b",-inf\r\n", Frame::Double(f64::NEG_INFINITY)),
            (b"#t\r\n", Frame::Boolean(true)),
            (b"(12345678901234567890\r\n", Frame::BigNumber(b("12345678901234567890"))),
            (b"!5\r\nERR x\r\n", Frame::Error(b("ERR x"))),
            (b"=7\r\ntxt:abc\r\n", Frame::Verbatim { format: *b"txt", text: b("abc") }),
            (b"*2\r\n:1\r\n*0\r\n", Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])])),
            (b"%1\r\n+k\r\n:1\r\n", Frame::Map(vec![(Frame::Simple(b("k")), Frame::Integer(1))])),
            (b"~1\r\n+a\r\n", Frame::Set(vec![Frame::Simple(b("a"))])),
            (b">2\r\n+m\r\n+c\r\n", Frame::Push(vec![Frame::Simple(b("m")), Frame::Simple(b("c"))])),
            (
                b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
                Frame::Attribute {
                    attrs: vec![(Frame::Simple(b("ttl")), Frame::Integer(3))],
                    value: Box::new(Frame::Bulk(b("v"))),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input).unwrap(), Some(want.clone()), "{:?}", String::from_utf8_lossy(input));
            assert_eq!(frame_len(input, &FrameLimits::default()).unwrap(), Some(input.len()));
        }
    }

    #[test]
    fn incomplete_is_none_and_rejects_garbage() {
        for partial in
            [&b""[..], b"+OK", b"+OK\r", b"$3\r\nab", b"*2\r\n:1\r\n", b"%1\r\n+k\r\n", b"|1\r\n+a\r\n:1\r\n"]
        {
            assert_eq!(decode(partial).unwrap(), None, "{:?}", String::from_utf8_lossy(partial));
        }
        assert_eq!(decode(b"?x\r\n"), Err(ProtocolError::InvalidFrameType('?')));
        assert_eq!(decode(b"$-2\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(decode(b"$1\r\nabc\r\n"), Err(ProtocolError::InvalidValue("bulk terminator")));
        assert_eq!(decode(b"*-2\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(decode(b":x\r\n"), Err(ProtocolError::InvalidValue("integer")));
        assert_eq!(decode(b"#x\r\n"), Err(ProtocolError::InvalidValue("boolean")));
        assert_eq!(decode(b"+a\rb\r\n"), Err(ProtocolError::InvalidValue("line terminator")));
        let limits = FrameLimits { max_depth: 3, max_bulk_len: 4, max_elements: 2 };
        assert_eq!(frame_len(b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", &limits), Err(ProtocolError::TooDeep(3)));
        assert_eq!(frame_len(b"$5\r\n", &limits), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(frame_len(b"*3\r\n", &limits), Err(ProtocolError::InvalidMultibulkLength));
    }

    #[test]
    fn deep_nesting_needs_no_stack() {
        let mut input = "*1\r\n".repeat(100_000).into_bytes();
        input.extend_from_slice(b":1\r\n");
        let limits = FrameLimits { max_depth: 1_000_000, ..FrameLimits::default() };
        assert_eq!(frame_len(&input, &limits).unwrap(), Some(input.len()));
        assert!(matches!(frame_len(&input, &FrameLimits::default()), Err(ProtocolError::TooDeep(128))));
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,8}".prop_map(|s| Frame::Simple(b(&s))),
            "ERR [a-z]{0,8}".prop_map(|s| Frame::Error(b(&s))),
            any::<i64>().prop_map(Frame::Integer),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| Frame::Bulk(Bytes::from(v))),
            Just(Frame::Null),
            Just(Frame::NullArray),
            any::<bool>().prop_map(Frame::Boolean),
            (-1e6f64..1e6).prop_map(Frame::Double),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Push),
                proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(f in arb_frame()) {
            let mut buf = BytesMut::new();
            encode(&f, &mut buf);
            let len = buf.len();
            let got = FrameCodec::default().decode(&mut buf).unwrap().unwrap();
            // Doubles go through %.17g, which round-trips exactly.
            prop_assert_eq!(got, f);
            prop_assert!(buf.is_empty(), "decoder read {} of {} bytes", len - buf.len(), len);
        }

        #[test]
        fn truncated_frames_wait(f in arb_frame(), cut in 0usize..64) {
            let mut buf = BytesMut::new();
            encode(&f, &mut buf);
            let cut = cut.min(buf.len().saturating_sub(1));
            let part = &buf[..cut];
            prop_assert_eq!(frame_len(part, &FrameLimits::default()).unwrap(), None);
        }

        #[test]
        fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut buf = BytesMut::from(&input[..]);
            let mut codec = FrameCodec::default();
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }
    }
}
