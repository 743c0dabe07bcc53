//! Number parsing as Redis's sorted sets do it, on top of C's `strtod`:
//! hex floats and `infinity` are accepted, overflow is rejected for scores
//! but not for range bounds, and a range bound may even be empty.

use crate::error::CmdError;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtod` makes of the start of `s`: the value, how many bytes it
/// consumed and whether it set `ERANGE` (overflow, or underflow to 0).
/// `None` when no number starts there.
fn strtod(s: &[u8]) -> Option<(f64, usize, bool)> {
    let mut i = s.iter().take_while(|b| is_space(**b)).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = s.get(i..)?;
    let sign = if neg { -1.0 } else { 1.0 };
    let starts = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    if starts(b"infinity") {
        return Some((sign * f64::INFINITY, i + 8, false));
    }
    if starts(b"inf") {
        return Some((sign * f64::INFINITY, i + 3, false));
    }
    if starts(b"nan") {
        return Some((f64::NAN, i + 3, false));
    }
    if starts(b"0x") {
        if let Some((v, n)) = hex(&rest[2..]) {
            return Some((sign * v, i + 2 + n, v.is_infinite()));
        }
    }
    let digits = |from: usize| rest.get(from..).map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count());
    let int = digits(0);
    let mut j = int;
    let mut frac = 0;
    if rest.get(j) == Some(&b'.') {
        frac = digits(j + 1);
        if int + frac > 0 {
            j += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let k = j + 1 + usize::from(matches!(rest.get(j + 1), Some(b'+' | b'-')));
        let e = digits(k);
        if e > 0 {
            j = k + e;
        }
    }
    let text = std::str::from_utf8(&rest[..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    let nonzero_digit = rest[..j].iter().take_while(|b| !matches!(b, b'e' | b'E')).any(|b| (b'1'..=b'9').contains(b));
    let erange = v.is_infinite() || (v == 0.0 && nonzero_digit);
    Some((sign * v, i + j, erange))
}

/// A hex float body after `0x`: digits, optional `.digits`, optional
/// binary exponent `p[+-]digits`.
fn hex(s: &[u8]) -> Option<(f64, usize)> {
    let mut mant = 0f64;
    let mut exp: i64 = 0;
    let mut i = 0;
    let mut any = false;
    while let Some(d) = s.get(i).and_then(|b| (*b as char).to_digit(16)) {
        mant = mant * 16.0 + f64::from(d);
        any = true;
        i += 1;
    }
    if s.get(i) == Some(&b'.') {
        let mut k = i + 1;
        while let Some(d) = s.get(k).and_then(|b| (*b as char).to_digit(16)) {
            mant = mant * 16.0 + f64::from(d);
            exp -= 4;
            any = true;
            k += 1;
        }
        if any {
            i = k;
        }
    }
    if !any {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let k = i + 1 + usize::from(matches!(s.get(i + 1), Some(b'+' | b'-')));
        let n = s.get(k..).map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count());
        if n > 0 {
            let e: i64 = std::str::from_utf8(&s[k..k + n]).ok()?.parse().unwrap_or(i64::MAX / 2);
            exp = exp.saturating_add(if s[i + 1] == b'-' { -e } else { e });
            i = k + n;
        }
    }
    let e = i32::try_from(exp.clamp(-10_000, 10_000)).unwrap_or(0);
    Some((mant * 2f64.powi(e), i))
}

/// A score, increment or weight (Redis's `getDoubleFromObject`).
pub(super) fn score(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|b| is_space(*b)) {
        return None;
    }
    let (v, n, erange) = strtod(arg)?;
    let overflow = erange && (v.is_infinite() || v == 0.0);
    (n == arg.len() && !overflow && !v.is_nan()).then_some(v)
}

pub(super) fn score_or_err(arg: &[u8]) -> Result<f64, CmdError> {
    score(arg).ok_or(CmdError::NotFloat)
}

/// A BYSCORE bound after its optional `(`: anything `strtod` consumes
/// whole, including nothing at all (which is 0).
pub(super) fn bound(arg: &[u8]) -> Option<f64> {
    match strtod(arg) {
        None => arg.is_empty().then_some(0.0),
        Some((v, n, _)) => (n == arg.len() && !v.is_nan()).then_some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_strtod() {
        assert_eq!(score(b"1.5"), Some(1.5));
        assert_eq!(score(b"0x1p3"), Some(8.0));
        assert_eq!(score(b"0X1A"), Some(26.0));
        assert_eq!(score(b"-0x.8"), Some(-0.5));
        assert_eq!(score(b"-INFINITY"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b".5"), Some(0.5));
        assert_eq!(score(b"5."), Some(5.0));
        assert_eq!(score(b"+.5e1"), Some(5.0));
        assert_eq!(score(b"5e-324"), Some(5e-324));
        for bad in [&b"1e400"[..], b"1e-400", b" 1", b"1 ", b"", b".", b"e5", b"nan", b"1x", b"0x"] {
            assert_eq!(score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(bound(b""), Some(0.0));
        assert_eq!(bound(b" 1"), Some(1.0));
        assert_eq!(bound(b"1e400"), Some(f64::INFINITY));
        assert_eq!(bound(b"1 "), None);
        assert_eq!(bound(b"nan"), None);
        assert_eq!(bound(b"x"), None);
    }
}
