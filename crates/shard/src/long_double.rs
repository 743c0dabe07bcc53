//! The x87 80-bit `long double` that Redis's INCRBYFLOAT and HINCRBYFLOAT
//! compute in, done in software so the results match digit for digit.
//!
//! Redis parses both operands with `strtold`, adds them in 64-bit-mantissa
//! precision and prints the sum with `%.17Lf`, trimming trailing zeros.
//! With `f64` instead, `10.5 + 0.1` would print `10.59999999999999964`
//! where Redis prints `10.6`. Every step here is exact big-integer
//! arithmetic followed by one round-half-even, which is what a correctly
//! rounding libc does.

mod big;

use big::Big;

/// `mant * 2^exp`, with `mant` 64 bits wide (top bit set) except for
/// subnormals, which sit at [`MIN_EXP`]. `mant == 0` is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongDouble {
    neg: bool,
    inf: bool,
    mant: u64,
    exp: i64,
}

/// The exponent of the smallest subnormal (2^-16445).
const MIN_EXP: i64 = -16445;
/// The largest exponent of a 64-bit mantissa below 2^16384.
const MAX_EXP: i64 = 16320;
/// Redis refuses longer float strings (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

impl LongDouble {
    pub(crate) const ZERO: LongDouble = LongDouble { neg: false, inf: false, mant: 0, exp: 0 };

    /// `strtold` as Redis uses it: the whole string must be a number, no
    /// leading space, no NaN, no overflow or underflow to zero. Infinity is
    /// accepted (an increment by it then fails).
    pub(crate) fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS || s[0].is_ascii_whitespace() || s[0] == 0x0b {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        // Plain integers (most stored counters) are exact: no big numbers.
        if !body.is_empty() && body.len() <= 19 && body.iter().all(u8::is_ascii_digit) {
            let n = body.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            return Some(LongDouble::from_u64(neg, n));
        }
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble { neg, inf: true, mant: 0, exp: 0 });
        }
        let (n, e, nonzero) = match body {
            [b'0', b'x' | b'X', hex @ ..] => parse_hex(hex)?,
            _ => parse_decimal(body)?,
        };
        let Some(n) = n else { return Some(LongDouble { neg, ..Self::ZERO }) };
        let v = round(neg, &n, e)?;
        // Underflow to zero is an ERANGE that Redis rejects.
        (v.mant != 0 || !nonzero).then_some(v)
    }

    /// False for infinity, which [`LongDouble::parse`] accepts.
    pub(crate) fn is_finite(&self) -> bool {
        !self.inf
    }

    fn from_u64(neg: bool, n: u64) -> LongDouble {
        if n == 0 {
            return LongDouble { neg, ..Self::ZERO };
        }
        let z = n.leading_zeros();
        LongDouble { neg, inf: false, mant: n << z, exp: -i64::from(z) }
    }

    /// The sum, or `None` when it is infinite or NaN.
    pub(crate) fn add(&self, o: &LongDouble) -> Option<LongDouble> {
        if self.inf || o.inf {
            return None;
        }
        if self.mant == 0 {
            return Some(if o.mant == 0 { LongDouble { neg: self.neg && o.neg, ..*o } } else { *o });
        }
        if o.mant == 0 {
            return Some(*self);
        }
        let e = self.exp.min(o.exp);
        let a = Big::from_u64(self.mant).shl((self.exp - e) as usize);
        let b = Big::from_u64(o.mant).shl((o.exp - e) as usize);
        let (neg, n) = if self.neg == o.neg {
            (self.neg, a.add(&b))
        } else {
            match a.cmp(&b) {
                std::cmp::Ordering::Equal => return Some(Self::ZERO),
                std::cmp::Ordering::Greater => (self.neg, a.sub(&b)),
                std::cmp::Ordering::Less => (o.neg, b.sub(&a)),
            }
        };
        round(neg, &n, e)
    }

    /// `%.17Lf` with trailing zeros (and a trailing point) removed, `-0`
    /// shown as `0`: Redis's "human" long double format.
    pub(crate) fn to_human(self) -> String {
        if self.mant == 0 {
            return "0".into();
        }
        let mut scaled = Big::from_u64(self.mant);
        scaled.mul_small(1_000_000_000);
        scaled.mul_small(100_000_000);
        let q = if self.exp >= 0 {
            scaled.shl(self.exp as usize)
        } else {
            let k = self.exp.unsigned_abs() as usize;
            let mut q = scaled.shr(k);
            if scaled.bit(k - 1) && (scaled.any_below(k - 1) || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let mut digits = q.to_decimal();
        if digits.len() < 18 {
            digits.insert_str(0, &"0".repeat(18 - digits.len()));
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut s = String::with_capacity(digits.len() + 2);
        if self.neg && !(int == "0" && frac.is_empty()) {
            s.push('-');
        }
        s.push_str(int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        s
    }
}

/// A parsed mantissa: `Some(n)` and the binary exponent `e` for `n * 2^e`
/// (`None` for zero), and whether the written number was nonzero.
type Parsed = (Option<Big>, i64, bool);

fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturated: anything this large over- or underflows anyway.
    let v = digits.iter().fold(0i64, |v, d| (v * 10 + (d - b'0') as i64).min(1 << 40));
    Some(if neg { -v } else { v })
}

/// Splits `digits[.digits][<marker>exponent]`; returns the digit bytes
/// before and after the point and the exponent.
fn split_number(s: &[u8], is_digit: fn(&u8) -> bool, marker: u8) -> Option<(&[u8], &[u8], i64)> {
    let (mant, exp) = match s.iter().position(|c| c.eq_ignore_ascii_case(&marker)) {
        Some(p) => (&s[..p], parse_exponent(&s[p + 1..])?),
        None => (s, 0),
    };
    let (int, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, &[][..]),
    };
    let ok = !(int.is_empty() && frac.is_empty()) && int.iter().all(is_digit) && frac.iter().all(is_digit);
    ok.then_some((int, frac, exp))
}

fn parse_decimal(s: &[u8]) -> Option<Parsed> {
    let (int, frac, exp) = split_number(s, u8::is_ascii_digit, b'e')?;
    let digits = || int.iter().chain(frac.iter());
    let significant = digits().skip_while(|&&d| d == b'0').count() as i64;
    if significant == 0 {
        return Some((None, 0, false));
    }
    let e10 = exp - frac.len() as i64;
    // The value lies in [10^(mag-1), 10^mag): far outside the range it is
    // an overflow or an underflow to zero without computing anything.
    let mag = significant + e10;
    if !(-4952..=4934).contains(&mag) {
        return None;
    }
    let mut n = Big::default();
    for &d in digits() {
        n.mul_small(10);
        n.add_small((d - b'0') as u32);
    }
    if e10 >= 0 {
        for _ in 0..e10 {
            n.mul_small(10);
        }
        return Some((Some(n), 0, true));
    }
    // n / 10^k: scale up first so the quotient keeps at least 66 bits, then
    // divide; a nonzero remainder becomes a sticky bit below them.
    let k = e10.unsigned_abs() as usize;
    let need = 68 + (k as f64 * std::f64::consts::LOG2_10).ceil() as usize;
    let s = need.saturating_sub(n.bit_len());
    let mut q = n.shl(s);
    let mut sticky = false;
    let mut left = k;
    while left > 0 {
        let step = left.min(9);
        sticky |= q.divrem_small(10u32.pow(step as u32)) != 0;
        left -= step;
    }
    let mut q = q.shl(1);
    if sticky {
        q.add_small(1);
    }
    Some((Some(q), -(s as i64) - 1, true))
}

fn parse_hex(s: &[u8]) -> Option<Parsed> {
    let (int, frac, exp) = split_number(s, u8::is_ascii_hexdigit, b'p')?;
    let mut n = Big::default();
    for &d in int.iter().chain(frac.iter()) {
        n.mul_small(16);
        n.add_small((d as char).to_digit(16)?);
    }
    if n.is_zero() {
        return Some((None, 0, false));
    }
    Some((Some(n), exp - 4 * frac.len() as i64, true))
}

/// Rounds `n * 2^e` to the nearest long double (ties to even); `None` on
/// overflow. Underflow gives zero.
fn round(neg: bool, n: &Big, e: i64) -> Option<LongDouble> {
    if n.is_zero() {
        return Some(LongDouble { neg, ..LongDouble::ZERO });
    }
    let mut sh = n.bit_len() as i64 - 64;
    if e.saturating_add(sh) < MIN_EXP {
        sh = MIN_EXP - e;
    }
    let (mant, exp) = if sh <= 0 {
        (n.bits_from(0) << sh.unsigned_abs(), e + sh)
    } else {
        let at = sh as usize;
        let mant = n.bits_from(at);
        let up = n.bit(at - 1) && (n.any_below(at - 1) || mant & 1 == 1);
        round_up((mant, e + sh), up)
    };
    if mant == 0 {
        return Some(LongDouble { neg, ..LongDouble::ZERO });
    }
    if exp > MAX_EXP {
        return None;
    }
    Some(LongDouble { neg, inf: false, mant, exp })
}

/// Adds one unit in the last place when `up`, carrying into the exponent
/// when the mantissa overflows.
fn round_up((mant, exp): (u64, i64), up: bool) -> (u64, i64) {
    match (up, mant.checked_add(1)) {
        (false, _) => (mant, exp),
        (true, Some(m)) => (m, exp),
        (true, None) => (1 << 63, exp + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn sum(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        Some(a.add(&b)?.to_human())
    }

    #[test]
    fn matches_redis() {
        // Expected values taken from redis-server 7.0.15.
        assert_eq!(sum("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(sum("1", "0.1").as_deref(), Some("1.1"));
        assert_eq!(sum("5", "-6").as_deref(), Some("-1"));
        assert_eq!(sum("0", "-0.0").as_deref(), Some("0"));
        assert_eq!(sum("3.0e3", "1.5").as_deref(), Some("3001.5"));
        assert_eq!(sum("0", "0.1").as_deref(), Some("0.1"));
        assert_eq!(sum("0", "1e-20").as_deref(), Some("0"));
        assert_eq!(sum("0", "-1e-20").as_deref(), Some("0"));
        assert_eq!(sum("0", "123456789012345678901234567890").as_deref(), Some("123456789012345678899921813504"));
        assert_eq!(sum("1e4932", "1e4932"), None);
        assert_eq!(sum("inf", "1"), None);
        assert_eq!(sum("1", "-inf"), None);
    }

    #[test]
    fn adds_like_long_double() {
        let cases = [
            ("1.5", "0.1", "1.6"),
            ("1e20", "1e-20", "100000000000000000000"),
            ("5.0e3", "2.0e2", "5200"),
            ("17.6", "-1.6", "16"),
            ("0x10", "007", "23"),
            ("-1e-30", "0", "0"),
            ("1e30", "0", "1000000000000000000024696061952"),
            ("1.1e-3", "0", "0.0011"),
            ("3.0000000000000000001", "0", "3"),
            ("0.00000000000000000999", "0", "0.00000000000000001"),
            ("123456789.123456789", "0", "123456789.12345678899873747"),
            ("123456789.12345678899873747", "0.333333333333333333333", "123456789.45679012233449612"),
            ("0x1.8p1", "1.", "4"),
            (".5", "0", "0.5"),
            ("-5", "3", "-2"),
            ("-0", "0", "0"),
            ("18446744073709551615", "1", "18446744073709551616"),
            ("9999999999999999999", "0.5", "10000000000000000000"),
            ("0X1P-1", "0", "0.5"),
            ("5e-18", "0", "0"),
            ("1.5e-17", "0", "0.00000000000000002"),
            ("2.5e-17", "0", "0.00000000000000002"),
            ("9223372036854775807", "1", "9223372036854775808"),
            ("1e17", "0.3", "100000000000000000.296875"),
        ];
        for (a, b, want) in cases {
            assert_eq!(sum(a, b).as_deref(), Some(want), "{a} + {b}");
        }
        let big = sum("1e4932", "0").unwrap_or_default();
        assert_eq!(big.len(), 4933);
        assert!(big.starts_with("10000000000000000000060189493879638913238377742545331147737850413525330194866087224"));
        assert!(big.ends_with("8418113791886622720"));
    }

    #[test]
    fn parse_refuses_like_string2ld() {
        for bad in [
            "",
            " 1",
            "1 ",
            "nan",
            "1e",
            "abc",
            "1e5000",
            "1e-5000",
            "1e-4952",
            "-1e-4951",
            "1.8e-4951",
            "1.2e4932",
            "1e4933",
            "0x",
            "--1",
            ".",
            // redis-server 7.0.15 refuses an embedded NUL too.
            "1\x005",
            "\x00",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(!LongDouble::parse(b"inf").is_some_and(|v| v.is_finite()));
        assert!(!LongDouble::parse(b"-Infinity").is_some_and(|v| v.is_finite()));
        assert!(LongDouble::parse(b"1").is_some_and(|v| v.is_finite()));
        assert!(LongDouble::parse(b"0e-5000").is_some());
        assert!(LongDouble::parse(b"1e-4940").is_some());
        assert!(LongDouble::parse(b"3e-4951").is_some());
        assert!(LongDouble::parse(b"1.9e-4951").is_some());
    }
}
