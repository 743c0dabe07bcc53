//! Intsets: the sorted array of integers Redis keeps small all-integer
//! sets in, stored in RDB files as one string.
//!
//! Layout: element width in bytes (u32 LE: 2, 4 or 8), count (u32 LE),
//! then the elements, little-endian, ascending.

/// Builds an intset of `values` (any order; sorted here).
pub fn build(values: &mut [i64]) -> Vec<u8> {
    values.sort_unstable();
    let width: u32 = if values.iter().all(|v| i16::try_from(*v).is_ok()) {
        2
    } else if values.iter().all(|v| i32::try_from(*v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + values.len() * width as usize);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values.iter() {
        out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
    }
    out
}

/// The elements, or `None` if the header and size disagree.
pub fn entries(b: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || b.len() != 8 + count.checked_mul(width)? {
        return None;
    }
    Some(
        b[8..]
            .chunks_exact(width)
            .map(|c| match width {
                2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
                4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_trip() {
        for set in [vec![3i64, -1, 2], vec![70000, 1], vec![i64::MIN, 5, i64::MAX]] {
            let mut v = set.clone();
            let b = build(&mut v);
            let mut sorted = set.clone();
            sorted.sort();
            assert_eq!(entries(&b), Some(sorted));
        }
        assert_eq!(entries(&[2, 0, 0, 0, 9, 0, 0, 0]), None);
    }
}
