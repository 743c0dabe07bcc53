//! LZF, the compression RDB files use for strings (`rdbcompression yes`).
//!
//! The format is a stream of runs: a control byte below 32 starts a run of
//! `ctrl + 1` literal bytes; any other starts a back reference of
//! `(ctrl >> 5) + 2` bytes (an extra length byte follows when the 3-bit
//! length is 7) at distance `((ctrl & 31) << 8 | next) + 1`. The
//! compressor is a greedy single-probe hash matcher: not the best ratio,
//! but the format is all that has to match.

const HASH_LOG: u32 = 14;
/// Table size for short inputs, kept on the stack.
const SMALL_LOG: u32 = 8;
const MAX_LITERAL: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// Compresses `input`; `None` unless the result is at most `max_out` bytes.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    if n < 4 {
        return None;
    }
    let mut out = Vec::with_capacity(max_out.min(n));
    // The table scales with the input: most values are short, and zeroing
    // a full-size table per value would cost more than compressing it.
    let hash_log = (usize::BITS - n.leading_zeros() + 1).clamp(SMALL_LOG, HASH_LOG);
    let mut small = [0u32; 1 << SMALL_LOG];
    let mut large = Vec::new();
    let table: &mut [u32] = if hash_log == SMALL_LOG {
        &mut small
    } else {
        large.resize(1 << hash_log, 0);
        &mut large
    };
    let mut lit_start = 0;
    let mut i = 0;
    let hash = |p: usize| -> usize {
        let v = u32::from(input[p]) << 16 | u32::from(input[p + 1]) << 8 | u32::from(input[p + 2]);
        (v.wrapping_mul(0x9E37_79B1) >> (32 - hash_log)) as usize
    };
    while i + 2 < n {
        let h = hash(i);
        let cand = table[h] as usize;
        table[h] = i as u32 + 1;
        if cand > 0 {
            let r = cand - 1;
            let off = i - r - 1;
            if off < MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let max = (n - i).min(MAX_REF);
                let mut len = 3;
                while len < max && input[r + len] == input[i + len] {
                    len += 1;
                }
                flush_literals(&mut out, &input[lit_start..i]);
                let l = len - 2;
                if l < 7 {
                    out.push(((off >> 8) as u8) | ((l as u8) << 5));
                } else {
                    out.push(((off >> 8) as u8) | (7 << 5));
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                i += len;
                lit_start = i;
                if out.len() > max_out {
                    return None;
                }
                continue;
            }
        }
        i += 1;
    }
    flush_literals(&mut out, &input[lit_start..]);
    (out.len() <= max_out).then_some(out)
}

fn flush_literals(out: &mut Vec<u8>, mut lit: &[u8]) {
    while !lit.is_empty() {
        let take = lit.len().min(MAX_LITERAL);
        out.push((take - 1) as u8);
        out.extend_from_slice(&lit[..take]);
        lit = &lit[take..];
    }
}

/// Decompresses `input` into exactly `expected` bytes; `None` if the data
/// is corrupt or does not come out at that length. Never writes past
/// `expected`, so a lying length cannot make it allocate more.
pub fn decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    // Reserve what the input can plausibly produce, not what the header
    // claims; the buffer grows (up to `expected`) if the claim was true.
    let mut out = Vec::with_capacity(expected.min(input.len().saturating_mul(4)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            let lit = input.get(i..i + len)?;
            if out.len() + len > expected {
                return None;
            }
            out.extend_from_slice(lit);
            i += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i)?);
                i += 1;
            }
            len += 2;
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            if back > out.len() || out.len() + len > expected {
                return None;
            }
            let start = out.len() - back;
            // Byte by byte: a reference may overlap what it produces.
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == expected).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // "aaaaaaaaaa...": one literal then a back reference of distance 1.
        let packed = [0x00, b'a', 0xe0, 0x01, 0x00];
        assert_eq!(decompress(&packed, 11).as_deref(), Some(&[b'a'; 11][..]));
        // Wrong expected length or a reference before the start: refused.
        assert_eq!(decompress(&packed, 12), None);
        assert_eq!(decompress(&packed, 10), None);
        assert_eq!(decompress(&[0x20, 0x05], 10), None);
    }

    #[test]
    fn round_trips() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"hello hello hello hello hello hello".to_vec(),
            vec![b'x'; 1000],
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabc!".to_vec(),
        ];
        let mut seed = 7u64;
        inputs.push(
            (0..3000)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    b"abcd"[(seed >> 62) as usize]
                })
                .collect(),
        );
        for input in inputs {
            let c = compress(&input, input.len()).expect("compressible");
            assert_eq!(decompress(&c, input.len()).as_deref(), Some(&input[..]));
        }
        // Random bytes do not shrink: refused within the budget.
        let noise: Vec<u8> = (0..64u64).map(|i| (i.wrapping_mul(0x9E3779B97F4A7C15) >> 56) as u8).collect();
        assert!(compress(&noise, noise.len() - 4).is_none());
    }
}
