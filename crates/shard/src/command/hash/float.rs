//! HINCRBYFLOAT's arithmetic: x87 80-bit `long double`, emulated.
//!
//! Redis parses with `strtold`, adds in `long double` and prints the sum
//! with `%.17Lf` minus trailing zeros. Doing the same in `f64` gives
//! visibly different text (`1.5 + 0.1` would print `1.60000000000000009`
//! instead of `1.6`), so this module models the 64-bit-mantissa format:
//! correctly rounded parsing, correctly rounded addition and exact
//! formatting, with a small big-integer type for the exact steps.
//! Subnormal results are kept at full precision: they print as `0` either
//! way, which is all a client can observe.

use std::cmp::Ordering;

/// `mant * 2^exp`, `mant` normalized (top bit set) unless the value is 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LongDouble {
    neg: bool,
    inf: bool,
    mant: u64,
    exp: i64,
}

/// Largest and smallest binary exponents of the format (of `1.xxx * 2^E`).
const MAX_E: i64 = 16383;
/// `1.xxx * 2^E` with E below this is under half the smallest subnormal
/// (2^-16445), which rounds to 0; exactly half ties to even, 0 as well.
const HALF_SUBNORMAL_E: i64 = -16446;
/// Redis refuses longer float strings outright.
const MAX_CHARS: usize = 5 * 1024;

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble { neg: false, inf: false, mant: 0, exp: 0 };

    fn from_u64(n: u64) -> LongDouble {
        if n == 0 {
            return LongDouble::ZERO;
        }
        let z = n.leading_zeros();
        LongDouble { neg: false, inf: false, mant: n << z, exp: -i64::from(z) }
    }

    pub fn is_finite(&self) -> bool {
        !self.inf
    }

    /// As Redis's `string2ld`: `strtold` on the whole string, refusing
    /// leading space, trailing bytes, NaN, and overflow or underflow to 0.
    pub fn parse(input: &[u8]) -> Option<LongDouble> {
        if input.is_empty() || input.len() >= MAX_CHARS || input[0].is_ascii_whitespace() || input[0] == 0x0b {
            return None;
        }
        // Redis hands strtold a NUL-terminated copy: it stops at a NUL.
        let s = match input.iter().position(|&b| b == 0) {
            Some(0) => return Some(LongDouble::ZERO),
            Some(p) => &input[..p],
            None => input,
        };
        let (neg, body) = match s {
            [b'-', r @ ..] => (true, r),
            [b'+', r @ ..] => (false, r),
            _ => (false, s),
        };
        // Plain integers (most stored counters) are exact: no big numbers.
        if !body.is_empty() && body.len() <= 19 && body.iter().all(u8::is_ascii_digit) {
            let n: u64 = body.iter().fold(0, |acc, &d| acc * 10 + u64::from(d - b'0'));
            return Some(LongDouble { neg, ..LongDouble::from_u64(n) });
        }
        if body.first().is_some_and(|c| c.is_ascii_alphabetic()) {
            let lower = body.to_ascii_lowercase();
            if lower == b"inf" || lower == b"infinity" {
                return Some(LongDouble { neg, inf: true, mant: 0, exp: 0 });
            }
            return None;
        }
        let v = match body {
            [b'0', b'x' | b'X', rest @ ..] => parse_hex(&rest.to_ascii_lowercase())?,
            _ => parse_dec(body)?,
        };
        if v.inf {
            return None;
        }
        Some(LongDouble { neg, ..v })
    }

    /// IEEE addition, rounding to nearest-even.
    pub fn add(self, other: LongDouble) -> LongDouble {
        if self.inf || other.inf {
            let neg = if self.inf { self.neg } else { other.neg };
            return LongDouble { neg, inf: true, mant: 0, exp: 0 };
        }
        if other.mant == 0 {
            return if self.mant == 0 { LongDouble { neg: self.neg && other.neg, ..self } } else { self };
        }
        if self.mant == 0 {
            return other;
        }
        let (big, small) = if (self.exp, self.mant) >= (other.exp, other.mant) { (self, other) } else { (other, self) };
        // 62 guard bits leave room for the carry of a u128 sum.
        let a = u128::from(big.mant) << 62;
        let d = (big.exp - small.exp) as u64;
        let full = u128::from(small.mant) << 62;
        let b = if d >= 127 {
            1
        } else {
            let shifted = full >> d;
            shifted | u128::from(shifted << d != full)
        };
        let (sum, neg) = if big.neg == small.neg { (a + b, big.neg) } else { (a - b, big.neg) };
        if sum == 0 {
            return LongDouble::ZERO;
        }
        let bits = 128 - i64::from(sum.leading_zeros());
        let shift = bits - 64;
        let (mant, carry) = if shift <= 0 { ((sum << -shift) as u64, 0) } else { round_u128(sum, shift as u32) };
        finish(neg, mant, big.exp - 62 + shift + carry)
    }

    /// `%.17Lf` with trailing zeros (and a bare point) dropped; `-0` is `0`.
    pub fn format_human(&self) -> Vec<u8> {
        if self.inf {
            return if self.neg { b"-inf".to_vec() } else { b"inf".to_vec() };
        }
        let mut out = Vec::new();
        if self.exp >= 0 {
            let mut n = Big::from_u64(self.mant);
            n.shl(self.exp as u64);
            if self.neg && !n.is_zero() {
                out.push(b'-');
            }
            out.extend_from_slice(n.to_decimal().as_bytes());
            return out;
        }
        const SCALE: u128 = 100_000_000_000_000_000;
        let m = u128::from(self.mant) * SCALE;
        let k = (-self.exp) as u64;
        let x = if k >= 127 {
            0
        } else {
            let q = m >> k;
            let r = m & ((1u128 << k) - 1);
            let half = 1u128 << (k - 1);
            if r > half || (r == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        if x == 0 {
            return b"0".to_vec();
        }
        if self.neg {
            out.push(b'-');
        }
        let int = x / SCALE;
        let frac = x % SCALE;
        out.extend_from_slice(int.to_string().as_bytes());
        if frac != 0 {
            let digits = format!("{frac:017}");
            out.push(b'.');
            out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
        }
        out
    }
}

/// Rounds `v >> shift` to nearest-even; the second value is 1 when the
/// rounding carried into a new top bit (the mantissa is then renormalized).
fn round_u128(v: u128, shift: u32) -> (u64, i64) {
    let top = (v >> shift) as u64;
    let rem = v & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    round_up(top, rem > half, rem == half)
}

fn round_up(top: u64, above: bool, tie: bool) -> (u64, i64) {
    if above || (tie && top & 1 == 1) {
        match top.checked_add(1) {
            Some(t) => (t, 0),
            None => (1 << 63, 1),
        }
    } else {
        (top, 0)
    }
}

/// Range checks on a rounded result: overflow is infinity, underflow 0.
fn finish(neg: bool, mant: u64, exp: i64) -> LongDouble {
    let e = exp + 63;
    if e > MAX_E {
        LongDouble { neg, inf: true, mant: 0, exp: 0 }
    } else if e < HALF_SUBNORMAL_E || (e == HALF_SUBNORMAL_E && mant == 1 << 63) {
        LongDouble { neg, ..LongDouble::ZERO }
    } else {
        LongDouble { neg, inf: false, mant, exp }
    }
}

/// `n * 2^exp2` rounded to a 64-bit mantissa; `sticky` says bits below `n`
/// were lost already.
fn from_big(n: &Big, exp2: i64, sticky: bool) -> LongDouble {
    let bits = n.bit_len() as i64;
    if bits == 0 {
        return LongDouble::ZERO;
    }
    let shift = bits - 64;
    let (mant, carry) = if shift <= 0 {
        (n.low_u64() << -shift, 0)
    } else {
        let s = shift as u64;
        let top = n.bits_from(s);
        let half_bit = n.bit(s - 1);
        let below = n.any_below(s - 1) || sticky;
        round_up(top, half_bit && below, half_bit && !below)
    };
    finish(false, mant, exp2 + shift + carry)
}

/// Reads an exponent's digits, saturating far beyond any meaningful value.
fn parse_exp(s: &[u8]) -> Option<(i64, usize)> {
    let (neg, start) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = s[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in &s[start..start + digits] {
        v = (v * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    Some((if neg { -v } else { v }, start + digits))
}

/// Digits with an optional point: the digit bytes and how many followed
/// the point. Stops at the first byte that is neither.
fn mantissa(s: &[u8], radix_ok: impl Fn(u8) -> bool) -> (Vec<u8>, i64, usize) {
    let mut digits = Vec::new();
    let mut frac = 0;
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if radix_ok(c) {
            // Leading zeros carry no value; after the point they still
            // count in `frac`, which scales the rest.
            if !(digits.is_empty() && c == b'0') {
                digits.push(c);
            }
            if seen_point {
                frac += 1;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    (digits, frac, i)
}

fn parse_dec(s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, mut i) = mantissa(s, |c| c.is_ascii_digit());
    if !s[..i].iter().any(u8::is_ascii_digit) {
        return None;
    }
    let mut e10 = -frac;
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let (e, used) = parse_exp(&s[i + 1..])?;
        e10 += e;
        i += 1 + used;
    }
    if i != s.len() {
        return None;
    }
    if digits.is_empty() {
        return Some(LongDouble::ZERO);
    }
    let magnitude = digits.len() as i64 + e10;
    if magnitude > 4934 {
        return Some(LongDouble { neg: false, inf: true, mant: 0, exp: 0 });
    }
    if magnitude < -4952 {
        return None;
    }
    let mut d = Big::from_u64(0);
    for &c in &digits {
        d.mul_add(10, u32::from(c - b'0'));
    }
    let v = if e10 >= 0 {
        for _ in 0..e10 {
            d.mul_add(10, 0);
        }
        from_big(&d, 0, false)
    } else {
        let mut p = Big::from_u64(1);
        for _ in 0..-e10 {
            p.mul_add(10, 0);
        }
        // Scale so the quotient has 66+ bits: 64 kept, a round bit, and
        // the remainder says whether anything sticks below.
        let (bd, bp) = (d.bit_len() as i64, p.bit_len() as i64);
        let s = (bp - bd + 66).max(0);
        let t = (bd - bp - 66).max(0);
        d.shl(s as u64);
        p.shl(t as u64);
        let (q, rem) = d.div_small_quotient(&p);
        from_big(&Big::from_u128(q), t - s, rem)
    };
    if v.mant == 0 && !v.inf {
        return None;
    }
    Some(v)
}

fn parse_hex(s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, mut i) = mantissa(s, |c| c.is_ascii_hexdigit());
    if !s[..i].iter().any(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut e2 = -4 * frac;
    if s.get(i) == Some(&b'p') {
        let (e, used) = parse_exp(&s[i + 1..])?;
        e2 += e;
        i += 1 + used;
    }
    if i != s.len() {
        return None;
    }
    let mut n = Big::from_u64(0);
    for &c in &digits {
        let v = (c as char).to_digit(16).unwrap_or(0);
        n.mul_add(16, v);
    }
    if n.is_zero() {
        return Some(LongDouble::ZERO);
    }
    let v = from_big(&n, e2, false);
    if v.mant == 0 && !v.inf {
        return None;
    }
    Some(v)
}

/// A little-endian unsigned big integer, only what the conversions need.
#[derive(Debug, Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn from_u128(v: u128) -> Big {
        let mut b = Big((0..4).map(|i| (v >> (32 * i)) as u32).collect());
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for w in self.0.iter_mut() {
            let v = u64::from(*w) * u64::from(m) + carry;
            *w = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn shl(&mut self, bits: u64) {
        if self.is_zero() || bits == 0 {
            return;
        }
        let words = (bits / 32) as usize;
        let b = (bits % 32) as u32;
        if b != 0 {
            let mut carry = 0u32;
            for w in self.0.iter_mut() {
                let nw = (*w << b) | carry;
                carry = *w >> (32 - b);
                *w = nw;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, words));
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for w in self.0.iter_mut().rev() {
            let nw = (*w >> 1) | carry;
            carry = *w << 31;
            *w = nw;
        }
        self.trim();
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros()),
        }
    }

    fn bit(&self, i: u64) -> bool {
        self.0.get((i / 32) as usize).is_some_and(|w| (w >> (i % 32)) & 1 == 1)
    }

    fn any_below(&self, i: u64) -> bool {
        let word = (i / 32) as usize;
        self.0.iter().take(word).any(|&w| w != 0)
            || self.0.get(word).is_some_and(|&w| w & ((1u32 << (i % 32)) - 1) != 0)
    }

    /// The 64 bits starting at bit `from`.
    fn bits_from(&self, from: u64) -> u64 {
        (0..64).fold(0u64, |acc, j| acc | (u64::from(self.bit(from + j)) << j))
    }

    fn low_u64(&self) -> u64 {
        self.bits_from(0)
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, w) in self.0.iter_mut().enumerate() {
            let o = i64::from(other.0.get(i).copied().unwrap_or(0));
            let mut v = i64::from(*w) - o - borrow;
            borrow = if v < 0 {
                v += 1 << 32;
                1
            } else {
                0
            };
            *w = v as u32;
        }
        self.trim();
    }

    /// `self / d` when the quotient is known to fit in 127 bits, and
    /// whether a remainder was left. Consumes `self`'s value.
    fn div_small_quotient(&mut self, d: &Big) -> (u128, bool) {
        let span = self.bit_len().saturating_sub(d.bit_len());
        let mut shifted = d.clone();
        shifted.shl(span);
        let mut q: u128 = 0;
        for i in (0..=span).rev() {
            if self.cmp(&shifted) != Ordering::Less {
                self.sub_assign(&shifted);
                q |= 1u128 << i.min(127);
            }
            shifted.shr1();
        }
        (q, !self.is_zero())
    }

    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for w in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*w);
            *w = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = chunks.last().map_or(String::new(), |c| c.to_string());
        for c in chunks.iter().rev().skip(1) {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn sum(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).expect("a");
        let b = LongDouble::parse(b.as_bytes()).expect("b");
        String::from_utf8(a.add(b).format_human()).expect("utf8")
    }

    #[test]
    fn adds_like_long_double() {
        assert_eq!(sum("1.5", "0.1"), "1.6");
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("0", "0.1"), "0.1");
        assert_eq!(sum("1e20", "1e-20"), "100000000000000000000");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("17.6", "-1.6"), "16");
        assert_eq!(sum("0x10", "007"), "23");
        assert_eq!(sum("-1e-30", "0"), "0");
        assert_eq!(sum("1e30", "0"), "1000000000000000000024696061952");
        assert_eq!(sum("1.1e-3", "0"), "0.0011");
        assert_eq!(sum("3.0000000000000000001", "0"), "3");
        assert_eq!(sum("0.00000000000000000999", "0"), "0.00000000000000001");
        assert_eq!(sum("123456789.123456789", "0"), "123456789.12345678899873747");
        assert_eq!(sum("123456789.12345678899873747", "0.333333333333333333333"), "123456789.45679012233449612");
        assert_eq!(sum("0x1.8p1", "1."), "4");
        assert_eq!(sum(".5", "0"), "0.5");
        assert_eq!(sum("-5", "3"), "-2");
        assert_eq!(sum("-0", "0"), "0");
        assert_eq!(sum("18446744073709551615", "1"), "18446744073709551616");
        assert_eq!(sum("9999999999999999999", "0.5"), "10000000000000000000");
        assert_eq!(sum("0X1P-1", "0"), "0.5");
        assert_eq!(sum("5e-18", "0"), "0");
        assert_eq!(sum("1.5e-17", "0"), "0.00000000000000002");
        assert_eq!(sum("2.5e-17", "0"), "0.00000000000000002");
        assert_eq!(sum("9223372036854775807", "1"), "9223372036854775808");
        assert_eq!(sum("1e17", "0.3"), "100000000000000000.296875");
        let big = sum("1e4932", "0");
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
            "0x",
            "--1",
            ".",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(!LongDouble::parse(b"inf").expect("inf").is_finite());
        assert!(LongDouble::parse(b"1e-4940").is_some());
        assert!(LongDouble::parse(b"3e-4951").is_some());
        assert!(LongDouble::parse(b"1.9e-4951").is_some());
    }
}
