//! Ziplists: the compact list format of RDB files written before Redis 7.0
//! (lists in quicklist nodes, small hashes and sorted sets). Read only.
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), count
//! (u16 LE), entries, 0xFF. Each entry is the previous entry's length (1
//! byte, or 0xFE and a u32), an encoding (string with a 6/14/32-bit length,
//! or an integer of 8/16/24/32/64 bits, or 0..12 in the encoding byte
//! itself) and its data.

/// Every element, integers rendered as decimal strings; `None` if
/// malformed.
pub fn entries(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    if zl.len() < 11 || u32::from_le_bytes(zl[0..4].try_into().ok()?) as usize != zl.len() {
        return None;
    }
    let declared = u16::from_le_bytes([zl[8], zl[9]]);
    let mut out = Vec::new();
    let mut p = 10;
    loop {
        let first = *zl.get(p)?;
        if first == 0xff {
            if p + 1 != zl.len() {
                return None;
            }
            break;
        }
        p += if first == 0xfe { 5 } else { 1 };
        let enc = *zl.get(p)?;
        let int = |v: i64| Some(v.to_string().into_bytes());
        let (item, size) = match enc >> 6 {
            0 => str_at(zl, p, 1, usize::from(enc & 0x3f))?,
            1 => str_at(zl, p, 2, (usize::from(enc & 0x3f) << 8) | usize::from(*zl.get(p + 1)?))?,
            2 => {
                let n = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                str_at(zl, p, 5, n)?
            }
            _ => match enc {
                0xc0 => (int(i64::from(i16::from_le_bytes(zl.get(p + 1..p + 3)?.try_into().ok()?)))?, 3),
                0xd0 => (int(i64::from(i32::from_le_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?)))?, 5),
                0xe0 => (int(i64::from_le_bytes(zl.get(p + 1..p + 9)?.try_into().ok()?))?, 9),
                0xf0 => {
                    let s = zl.get(p + 1..p + 4)?;
                    (int(i64::from(i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8))?, 4)
                }
                0xfe => (int(i64::from(*zl.get(p + 1)? as i8))?, 2),
                0xf1..=0xfd => (int(i64::from(enc & 0x0f) - 1)?, 1),
                _ => return None,
            },
        };
        p += size;
        out.push(item);
    }
    if declared != u16::MAX && usize::from(declared) != out.len() {
        return None;
    }
    Some(out)
}

/// The string of `n` bytes after an encoding of `header` bytes at `at`,
/// and the size of encoding plus data.
fn str_at(zl: &[u8], at: usize, header: usize, n: usize) -> Option<(Vec<u8>, usize)> {
    let from = at + header;
    let s = zl.get(from..from.checked_add(n)?)?;
    Some((s.to_vec(), header + n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist by hand: "ab", 5 (immediate), -2 (int8), 1000 (int16).
    fn sample() -> Vec<u8> {
        let mut body = vec![0u8; 10];
        body.extend_from_slice(&[0x00, 0x02, b'a', b'b']);
        body.extend_from_slice(&[0x04, 0xf6]);
        body.extend_from_slice(&[0x02, 0xfe, 0xfe]);
        body.extend_from_slice(&[0x03, 0xc0, 0xe8, 0x03]);
        body.push(0xff);
        let total = body.len() as u32;
        body[0..4].copy_from_slice(&total.to_le_bytes());
        body[8..10].copy_from_slice(&4u16.to_le_bytes());
        body
    }

    #[test]
    fn reads_entries() {
        let got = entries(&sample()).expect("valid");
        assert_eq!(got, vec![b"ab".to_vec(), b"5".to_vec(), b"-2".to_vec(), b"1000".to_vec()]);
    }

    #[test]
    fn corrupt_is_refused() {
        let zl = sample();
        for cut in 0..zl.len() {
            assert_eq!(entries(&zl[..cut]), None);
        }
    }
}
