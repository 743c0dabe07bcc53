//! Decoded RESP2 replies, for tests that look inside a reply (SCAN cursors,
//! counting error replies) rather than compare its bytes, and the encoder
//! tests use to say what bytes they expect.

use crate::reply_len;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// `None` is the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None` is the null array.
    Array(Option<Vec<Reply>>),
    /// Any RESP3 type, kept as raw bytes.
    Other(Vec<u8>),
}

impl Reply {
    /// Decodes one complete reply; `None` if `buf` does not start with one.
    pub fn parse(buf: &[u8]) -> Option<Reply> {
        let (reply, _) = parse_at(buf, 0)?;
        Some(reply)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error text, without the leading `-`.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    pub fn bulk(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// The RESP2 bytes of this reply.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(e) => out.extend_from_slice(format!("-{e}\r\n").as_bytes()),
            Reply::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.encode_into(out);
                }
            }
            Reply::Other(raw) => out.extend_from_slice(raw),
        }
    }
}

fn parse_at(buf: &[u8], at: usize) -> Option<(Reply, usize)> {
    let len = reply_len(buf, at)?;
    let line_end = buf.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
    let header = std::str::from_utf8(buf.get(at + 1..line_end)?).ok()?;
    let after = line_end + 2;
    let reply = match *buf.get(at)? {
        b'+' => Reply::Simple(header.to_owned()),
        b'-' => Reply::Error(header.to_owned()),
        b':' => Reply::Int(header.parse().ok()?),
        b'$' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                Reply::Bulk(Some(buf.get(after..after + n as usize)?.to_vec()))
            }
        }
        b'*' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                let mut pos = after;
                for _ in 0..n {
                    let (item, used) = parse_at(buf, pos)?;
                    items.push(item);
                    pos += used;
                }
                Reply::Array(Some(items))
            }
        }
        _ => Reply::Other(buf.get(at..at + len)?.to_vec()),
    };
    Some((reply, len))
}

#[cfg(test)]
mod tests {
    use super::Reply;

    #[test]
    fn round_trips() {
        for raw in
            [&b"+OK\r\n"[..], b"-ERR x\r\n", b":-3\r\n", b"$-1\r\n", b"$2\r\nab\r\n", b"*2\r\n$1\r\n0\r\n*1\r\n:1\r\n"]
        {
            let r = Reply::parse(raw).expect("parses");
            assert_eq!(r.encode(), raw);
        }
        assert_eq!(Reply::parse(b"$3\r\nab"), None);
        assert!(Reply::parse(b"-MOVED 1 x\r\n").unwrap().is_error());
    }
}
