//! A set of hash slots as a 16384-bit bitmap: what a node claims in every
//! bus message, and each node's own slots in the state.

use crate::SLOTS;

/// 16384 bits, one per slot.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet(Box<[u64; SLOTS / 64]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(Box::new([0; SLOTS / 64]))
    }
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> =
            self.ranges().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        write!(f, "SlotSet[{}]", ranges.join(" "))
    }
}

impl SlotSet {
    pub fn contains(&self, slot: u16) -> bool {
        let s = slot as usize;
        s < SLOTS && self.0[s / 64] & (1 << (s % 64)) != 0
    }

    pub fn insert(&mut self, slot: u16) {
        let s = slot as usize;
        if s < SLOTS {
            self.0[s / 64] |= 1 << (s % 64);
        }
    }

    pub fn remove(&mut self, slot: u16) {
        let s = slot as usize;
        if s < SLOTS {
            self.0[s / 64] &= !(1 << (s % 64));
        }
    }

    pub fn clear(&mut self) {
        self.0.fill(0);
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((i * 64 + bit as usize) as u16)
            })
        })
    }

    /// Maximal runs of consecutive slots, as CLUSTER NODES prints them.
    pub fn ranges(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let mut it = self.iter().peekable();
        std::iter::from_fn(move || {
            let start = it.next()?;
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end = it.next().unwrap_or(end);
            }
            Some((start, end))
        })
    }

    /// The 2048 bytes of the bitmap, little-endian words (the wire form).
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        for w in self.0.iter() {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// The inverse of [`SlotSet::to_bytes`]; `None` unless exactly 2048 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<SlotSet> {
        if b.len() != SLOTS / 8 {
            return None;
        }
        let mut set = SlotSet::default();
        for (i, chunk) in b.chunks_exact(8).enumerate() {
            set.0[i] = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_maximal_runs() {
        let mut s = SlotSet::default();
        for slot in [0, 1, 2, 5, 63, 64, 65, 16383] {
            s.insert(slot);
        }
        let r: Vec<_> = s.ranges().collect();
        assert_eq!(r, vec![(0, 2), (5, 5), (63, 65), (16383, 16383)]);
        assert_eq!(s.len(), 8);
        s.remove(64);
        assert!(!s.contains(64));
        assert_eq!(s.ranges().count(), 5);
    }

    #[test]
    fn bytes_round_trip() {
        let mut s = SlotSet::default();
        (100..200).for_each(|x| s.insert(x));
        let mut b = Vec::new();
        s.to_bytes(&mut b);
        assert_eq!(b.len(), 2048);
        assert_eq!(SlotSet::from_bytes(&b), Some(s));
        assert!(SlotSet::from_bytes(&b[1..]).is_none());
    }
}
