//! Client requests: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or inline
//! (`GET k\r\n`), decoded incrementally.
//!
//! The decoder remembers how far it got inside a multibulk request, so a
//! request with a million arguments or a 512 MB value arriving in small
//! reads is scanned once, not once per read.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::inline::split_args;
use crate::ProtocolError;

/// Longest header line (`*<n>` or `$<n>`) and longest inline request, as
/// Redis's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX: usize = 64 * 1024;
/// What Redis lets a client that has not authenticated yet send.
const UNAUTH_MULTIBULK_MAX: i64 = 10;
const UNAUTH_BULK_MAX: i64 = 16 * 1024;

/// The bounds a request must respect. Shared by the shard and the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest single argument.
    pub max_bulk_len: i64,
    /// Largest argument count (Redis allows up to `INT_MAX`; memory is
    /// bounded separately by the query buffer limit).
    pub max_multibulk_len: i64,
    /// Before AUTH succeeds, requests are held to Redis's tight bounds so an
    /// unauthenticated peer cannot make the server buffer much.
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: i32::MAX as i64, authenticated: true }
    }
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Exactly the bytes this request was parsed from.
    pub raw: Bytes,
    /// The arguments, command name first; slices of `raw`.
    pub args: Vec<Bytes>,
    /// Typed by hand (`set a b`), not multibulk. A proxy re-encodes these.
    pub inline: bool,
}

impl Request {
    /// The command name, as sent (not case-folded).
    pub fn name(&self) -> &[u8] {
        self.args.first().map(|a| &a[..]).unwrap_or(b"")
    }
}

/// Progress inside a multibulk request that has not fully arrived.
#[derive(Debug, Default)]
struct Partial {
    nargs: usize,
    /// Bytes of the buffer already consumed by complete arguments.
    pos: usize,
    spans: Vec<(usize, usize)>,
}

/// A `tokio_util` decoder of requests; also usable directly on a buffer
/// through [`RequestDecoder::decode`].
#[derive(Debug, Default)]
pub struct RequestDecoder {
    pub limits: Limits,
    partial: Option<Partial>,
}

impl RequestDecoder {
    pub fn new(limits: Limits) -> Self {
        RequestDecoder { limits, partial: None }
    }
}

impl Decoder for RequestDecoder {
    type Item = Request;
    type Error = ProtocolError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.partial.is_none() {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {}
                    Some(_) => match decode_inline(buf)? {
                        Inline::Incomplete => return Ok(None),
                        Inline::Empty => continue,
                        Inline::Request(r) => return Ok(Some(r)),
                    },
                }
                let Some((line, next)) = header_line(buf, 0, ProtocolError::TooBigMultibulkCount)? else {
                    return Ok(None);
                };
                let n = parse_int(&buf[1..line]).filter(|&n| n <= i32::MAX as i64);
                let n = match n {
                    Some(n) if n > self.limits.max_multibulk_len => return Err(ProtocolError::InvalidMultibulkLength),
                    Some(n) if n > UNAUTH_MULTIBULK_MAX && !self.limits.authenticated => {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength)
                    }
                    Some(n) => n,
                    None => return Err(ProtocolError::InvalidMultibulkLength),
                };
                if n <= 0 {
                    // `*0` and `*-1` are empty requests: Redis skips them.
                    buf.advance(next);
                    continue;
                }
                let nargs = n as usize;
                self.partial = Some(Partial { nargs, pos: next, spans: Vec::with_capacity(nargs.min(1024)) });
            }
            return self.continue_multibulk(buf);
        }
    }
}

impl RequestDecoder {
    fn continue_multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let limits = self.limits;
        let p = self.partial.as_mut().expect("multibulk in progress");
        while p.spans.len() < p.nargs {
            let Some((line, next)) = header_line(buf, p.pos, ProtocolError::TooBigBulkCount)? else {
                return Ok(None);
            };
            if buf[p.pos] != b'$' {
                let got = buf[p.pos] as char;
                self.partial = None;
                return Err(ProtocolError::ExpectedBulk(got));
            }
            let len = match parse_int(&buf[p.pos + 1..line]) {
                Some(l) if l < 0 || l > limits.max_bulk_len => {
                    self.partial = None;
                    return Err(ProtocolError::InvalidBulkLength);
                }
                Some(l) if !limits.authenticated && l > UNAUTH_BULK_MAX => {
                    self.partial = None;
                    return Err(ProtocolError::UnauthenticatedBulkLength);
                }
                Some(l) => l as usize,
                None => {
                    self.partial = None;
                    return Err(ProtocolError::InvalidBulkLength);
                }
            };
            // The two bytes after the payload are skipped, not checked: Redis
            // does the same.
            let end = next + len + 2;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                return Ok(None);
            }
            p.spans.push((next, next + len));
            p.pos = end;
        }
        let p = self.partial.take().expect("multibulk in progress");
        let raw = buf.split_to(p.pos).freeze();
        let args = p.spans.iter().map(|&(s, e)| raw.slice(s..e)).collect();
        Ok(Some(Request { raw, args, inline: false }))
    }
}

/// Finds the `\r\n`-terminated header line starting at `from`. Returns the
/// index of the `\r` and the index just past the `\n`, or `None` while the
/// line is still arriving.
fn header_line(buf: &[u8], from: usize, too_big: ProtocolError) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = &buf[from..];
    match rest.iter().position(|&b| b == b'\r') {
        Some(i) if i > INLINE_MAX => Err(too_big),
        Some(i) if i + 1 < rest.len() => Ok(Some((from + i, from + i + 2))),
        Some(_) => Ok(None),
        None if rest.len() > INLINE_MAX => Err(too_big),
        None => Ok(None),
    }
}

/// Parses a decimal integer exactly as Redis's `string2ll`: optional `-`,
/// no `+`, no leading zeros, no spaces, fits in an i64.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        v = if neg { v.checked_mul(10)?.checked_sub(d)? } else { v.checked_mul(10)?.checked_add(d)? };
    }
    Some(v)
}

enum Inline {
    Incomplete,
    Empty,
    Request(Request),
}

fn decode_inline(buf: &mut BytesMut) -> Result<Inline, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX { Err(ProtocolError::TooBigInline) } else { Ok(Inline::Incomplete) };
    };
    if nl > INLINE_MAX {
        return Err(ProtocolError::TooBigInline);
    }
    let raw = buf.split_to(nl + 1).freeze();
    let line = raw[..nl].strip_suffix(b"\r").unwrap_or(&raw[..nl]);
    let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    if args.is_empty() {
        return Ok(Inline::Empty);
    }
    Ok(Inline::Request(Request { raw, args, inline: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        while let Some(r) = d.decode(&mut buf)? {
            out.push(r.args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let reqs = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset a \"b c\"\r\nPING\n\r\n").unwrap();
        assert_eq!(
            reqs,
            vec![
                vec![Bytes::from("GET"), Bytes::from("k")],
                vec!["set".into(), "a".into(), "b c".into()],
                vec![Bytes::from("PING")]
            ]
        );
    }

    #[test]
    fn raw_is_exact_bytes() {
        let input = b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(&input[..]);
        let r = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&r.raw[..], &input[..14]);
        assert_eq!(buf.len(), 14);
    }

    #[test]
    fn byte_by_byte_resumes() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, b) in input.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            if let Some(r) = d.decode(&mut buf).unwrap() {
                assert_eq!(i, input.len() - 1);
                got = Some(r);
            }
        }
        assert_eq!(got.unwrap().args[2], Bytes::from("world"));
        assert!(buf.is_empty());
    }

    #[test]
    fn limits() {
        assert_eq!(decode_all(b"*x\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(decode_all(b"*1\r\n$-2\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(decode_all(b"*1\r\n:1\r\n"), Err(ProtocolError::ExpectedBulk(':')));
        assert_eq!(decode_all(b"*1\r\n$536870913\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(decode_all(b"set a \"b\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(decode_all(&vec![b'a'; INLINE_MAX + 1]), Err(ProtocolError::TooBigInline));
        let mut d = RequestDecoder::new(Limits { authenticated: false, ..Limits::default() });
        assert_eq!(d.decode(&mut BytesMut::from("*11\r\n")), Err(ProtocolError::UnauthenticatedMultibulkLength));
        assert_eq!(decode_all(b"*0\r\n*-1\r\n\r\n").unwrap().len(), 0);
    }

    #[test]
    fn parse_int_like_redis() {
        assert_eq!(parse_int(b"123"), Some(123));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"+1", b"01", b"-0", b"1 ", b"9223372036854775808", b"-"] {
            assert_eq!(parse_int(bad), None, "{:?}", bad);
        }
        assert_eq!(parse_int(b"0"), Some(0));
    }

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    use proptest::prelude::*;

    fn arb_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6)
    }

    proptest! {
        #[test]
        fn random_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = RequestDecoder::default();
            let mut buf = BytesMut::from(&input[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }

        #[test]
        fn reads_exactly_one_request(a in arb_args(), b in arb_args()) {
            let (first, second) = (encode(&a), encode(&b));
            let mut buf = BytesMut::from(&first[..]);
            buf.extend_from_slice(&second);
            let mut d = RequestDecoder::default();
            let r = d.decode(&mut buf).unwrap().unwrap();
            prop_assert_eq!(&r.raw[..], &first[..]);
            prop_assert_eq!(r.args.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), a);
            prop_assert_eq!(&buf[..], &second[..]);
        }

        #[test]
        fn truncated_request_waits_then_completes(a in arb_args(), cut in 0usize..200) {
            let full = encode(&a);
            let cut = cut.min(full.len() - 1);
            let mut d = RequestDecoder::default();
            let mut buf = BytesMut::from(&full[..cut]);
            prop_assert!(d.decode(&mut buf).unwrap().is_none());
            buf.extend_from_slice(&full[cut..]);
            let r = d.decode(&mut buf).unwrap().unwrap();
            prop_assert_eq!(r.args.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), a);
            prop_assert!(buf.is_empty());
        }
    }
}
