//! Listpacks: the compact serialized list Redis 7.0 uses for small hashes
//! and sorted sets and for the nodes of a quicklist, stored in RDB files
//! as one string.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 when it did
//! not fit), the entries, and a 0xFF terminator. Each entry is an encoding
//! byte (small integer, string with a 6/12/32-bit length, or a 13/16/24/
//! 32/64-bit integer), its data, and a "backlen" (the entry's own length in
//! 7-bit groups) that lets Redis walk backwards; we only walk forwards.

/// Builds a listpack of `items`. Strings that are canonical integers are
/// stored as integers, as Redis does, so a loaded value is byte-identical.
pub fn build<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    let mut count: usize = 0;
    for item in items {
        push(&mut out, item);
        count += 1;
    }
    out.push(0xff);
    let total = out.len() as u32;
    out[0..4].copy_from_slice(&total.to_le_bytes());
    let n = if count < 65535 { count as u16 } else { 65535 };
    out[4..6].copy_from_slice(&n.to_le_bytes());
    out
}

/// Appends one entry (encoding, data, backlen).
fn push(out: &mut Vec<u8>, item: &[u8]) {
    let start = out.len();
    match canonical_int(item) {
        Some(v @ 0..=127) => out.push(v as u8),
        Some(v) if (-4096..4096).contains(&v) => {
            let u = (v as u16) & 0x1fff;
            out.push(0xc0 | (u >> 8) as u8);
            out.push(u as u8);
        }
        Some(v) if i16::try_from(v).is_ok() => {
            out.push(0xf1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
            out.push(0xf2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        Some(v) if i32::try_from(v).is_ok() => {
            out.push(0xf3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        Some(v) => {
            out.push(0xf4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => {
            let n = item.len();
            if n < 64 {
                out.push(0x80 | n as u8);
            } else if n < 4096 {
                out.push(0xe0 | (n >> 8) as u8);
                out.push(n as u8);
            } else {
                out.push(0xf0);
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
            out.extend_from_slice(item);
        }
    }
    let len = out.len() - start;
    push_backlen(out, len);
}

fn push_backlen(out: &mut Vec<u8>, l: usize) {
    let mut groups = [0u8; 5];
    let mut n = 0;
    let mut v = l;
    loop {
        groups[n] = (v & 127) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    // Most significant group first; every group but the first written
    // carries the continuation bit.
    for i in (0..n).rev() {
        let b = if i == n - 1 { groups[i] } else { groups[i] | 128 };
        out.push(b);
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// `s` as an integer when it is the canonical decimal form of one (what
/// Redis's `string2ll` accepts).
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    slotway_resp::request::parse_int(s)
}

/// Every element of a listpack, integers rendered as decimal strings.
/// `None` for anything malformed: a bad header, an entry running past the
/// end, a missing terminator, or a count that disagrees.
pub fn entries(lp: &[u8]) -> Option<Vec<Vec<u8>>> {
    if lp.len() < 7 || u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    let declared = u16::from_le_bytes([lp[4], lp[5]]);
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let enc = *lp.get(p)?;
        if enc == 0xff {
            if p + 1 != lp.len() {
                return None;
            }
            break;
        }
        let (item, len) = entry(&lp[p..])?;
        p += len + backlen_size(len);
        if p > lp.len() {
            return None;
        }
        out.push(item);
    }
    if declared != 65535 && usize::from(declared) != out.len() {
        return None;
    }
    Some(out)
}

/// One entry at the start of `b`: its value and the length of encoding
/// plus data.
fn entry(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let enc = b[0];
    let int = |v: i64, len: usize| Some((v.to_string().into_bytes(), len));
    let bytes = |from: usize, n: usize| b.get(from..from.checked_add(n)?).map(|s| (s.to_vec(), from + n));
    match enc {
        0x00..=0x7f => int(i64::from(enc), 1),
        0x80..=0xbf => bytes(1, usize::from(enc & 0x3f)),
        0xc0..=0xdf => {
            let u = (u16::from(enc & 0x1f) << 8) | u16::from(*b.get(1)?);
            // Sign-extend 13 bits.
            let v = i64::from(((u << 3) as i16) >> 3);
            int(v, 2)
        }
        0xe0..=0xef => bytes(2, (usize::from(enc & 0x0f) << 8) | usize::from(*b.get(1)?)),
        0xf0 => bytes(5, u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize),
        0xf1 => int(i64::from(i16::from_le_bytes(b.get(1..3)?.try_into().ok()?)), 3),
        0xf2 => {
            let s = b.get(1..4)?;
            let v = i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8;
            int(i64::from(v), 4)
        }
        0xf3 => int(i64::from(i32::from_le_bytes(b.get(1..5)?.try_into().ok()?)), 5),
        0xf4 => int(i64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_encoding() {
        let long = vec![b'z'; 5000];
        let mid = vec![b'm'; 300];
        let items: Vec<Vec<u8>> = [
            &b"0"[..],
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"-32768",
            b"32767",
            b"8388607",
            b"-8388608",
            b"2147483647",
            b"-2147483648",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"007",
            b"",
            b"hello",
            &mid,
            &long,
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect();
        let lp = build(items.iter().map(|v| &v[..]));
        assert_eq!(entries(&lp), Some(items));
    }

    #[test]
    fn corrupt_is_refused() {
        let lp = build([&b"a"[..], b"bb"]);
        for cut in 0..lp.len() {
            assert_eq!(entries(&lp[..cut]), None);
        }
        let mut bad = lp.clone();
        bad[4] = 3;
        assert_eq!(entries(&bad), None);
    }
}
