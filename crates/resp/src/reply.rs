//! Writing replies straight into an output buffer, no intermediate tree.
//!
//! The same calls produce RESP2 or RESP3 depending on what the client asked
//! for with `HELLO`: a map is a flat array in RESP2, a null is `$-1` or `_`,
//! a double is a bulk string or `,`.

use bytes::{BufMut, BytesMut};

/// The protocol version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// An output buffer plus the client's protocol version.
#[derive(Debug, Default)]
pub struct ReplyBuf {
    pub buf: BytesMut,
    pub proto: Proto,
}

impl ReplyBuf {
    pub fn new(proto: Proto) -> Self {
        ReplyBuf { buf: BytesMut::with_capacity(4096), proto }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.buf.reserve(body.len() + 3);
        self.buf.put_u8(prefix);
        self.buf.put_slice(body);
        self.buf.put_slice(b"\r\n");
    }

    fn header(&mut self, prefix: u8, n: i64) {
        let mut tmp = itoa_buf();
        let s = fmt_i64(&mut tmp, n);
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(prefix);
        self.buf.put_slice(s);
        self.buf.put_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &[u8]) {
        self.line(b'+', s);
    }

    /// `msg` is the whole error text including its code (`ERR ...`,
    /// `WRONGTYPE ...`). Newlines would break the frame, so they become
    /// spaces, as Redis does.
    pub fn error(&mut self, msg: &str) {
        if msg.bytes().any(|b| b == b'\r' || b == b'\n') {
            let clean: String = msg.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
            self.line(b'-', clean.as_bytes());
        } else {
            self.line(b'-', msg.as_bytes());
        }
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len() as i64);
        self.buf.reserve(b.len() + 2);
        self.buf.put_slice(b);
        self.buf.put_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        let mut tmp = itoa_buf();
        let s = fmt_i64(&mut tmp, n);
        let s = s.to_vec();
        self.bulk(&s);
    }

    pub fn bulk_opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// The null bulk string (RESP2 `$-1`) or RESP3 null.
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.put_slice(b"$-1\r\n"),
            Proto::Resp3 => self.buf.put_slice(b"_\r\n"),
        }
    }

    /// The null array (RESP2 `*-1`) or RESP3 null.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.put_slice(b"*-1\r\n"),
            Proto::Resp3 => self.buf.put_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, an array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', 2 * n as i64),
            Proto::Resp3 => self.header(b'%', n as i64),
        }
    }

    /// A set of `n` members: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'~', n as i64),
        }
    }

    /// A push message header (`>n` in RESP3, an array in RESP2).
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'>', n as i64),
        }
    }

    /// A double: `,` in RESP3, a bulk string in Redis's `%.17g` form in RESP2.
    pub fn double(&mut self, d: f64) {
        let s = format_double(d);
        match self.proto {
            Proto::Resp2 => self.bulk(s.as_bytes()),
            Proto::Resp3 => self.line(b',', s.as_bytes()),
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp2 => self.int(b as i64),
            Proto::Resp3 => self.buf.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Verbatim text (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.header(b'=', text.len() as i64 + 4);
                self.buf.put_slice(b"txt:");
                self.buf.put_slice(text);
                self.buf.put_slice(b"\r\n");
            }
        }
    }

    /// Bytes already encoded (a cached reply, a forwarded frame).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Decimal digits of `n`, written at the end of `buf` without allocating;
/// shared with the commands that store integers as text (INCR & co.).
pub fn fmt_i64(buf: &mut [u8; 20], n: i64) -> &[u8] {
    let mut u = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        // 20 digits of i64::MIN fit in 19 plus the sign.
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Formats a double as Redis's `%.17g` for replies: `inf`, `-inf`, `nan`,
/// integers without a decimal point, otherwise the shortest `%.17g` text.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g17(d)
}

/// C's `%.17g`.
fn format_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exp = d.abs().log10().floor() as i32;
    // `{:.16e}` gives 17 significant digits; its exponent is authoritative
    // (log10 can be off by one near powers of ten).
    let sci = format!("{:.16e}", d);
    let (mant, e) = sci.split_once('e').expect("exponent");
    let e: i32 = e.parse().unwrap_or(exp);
    if (-4..17).contains(&e) {
        let decimals = (16 - e).max(0) as usize;
        let s = format!("{:.*}", decimals, d);
        trim_fraction(&s)
    } else {
        let m = trim_fraction(mant);
        format!("{}e{}{:02}", m, if e < 0 { '-' } else { '+' }, e.abs())
    }
}

fn trim_fraction(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        let mut r = ReplyBuf::default();
        r.int(i64::MIN);
        r.int(0);
        r.int(42);
        assert_eq!(&r.buf[..], b":-9223372036854775808\r\n:0\r\n:42\r\n");
    }

    #[test]
    fn protocol_versions() {
        let mut r2 = ReplyBuf::new(Proto::Resp2);
        let mut r3 = ReplyBuf::new(Proto::Resp3);
        for r in [&mut r2, &mut r3] {
            r.map(1);
            r.bulk(b"k");
            r.double(1.5);
            r.null();
            r.boolean(true);
        }
        assert_eq!(&r2.buf[..], b"*2\r\n$1\r\nk\r\n$3\r\n1.5\r\n$-1\r\n:1\r\n");
        assert_eq!(&r3.buf[..], b"%1\r\n$1\r\nk\r\n,1.5\r\n_\r\n#t\r\n");
    }

    #[test]
    fn doubles_like_printf_g17() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(123456789012345680.0), "1.2345678901234568e+17");
    }
}
