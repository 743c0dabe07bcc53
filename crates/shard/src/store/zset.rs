//! Sorted sets: a member -> score hash for O(1) ZSCORE, plus the members
//! ordered by (score, member bytes) for ranges and ranks.
//!
//! The order is a chunked sorted list: sorted runs of at most
//! [`CHUNK_MAX`] entries, with a Fenwick tree over the run lengths. A
//! lookup binary-searches the runs by their last entry and then the run, a
//! rank is a Fenwick prefix sum plus the offset in the run, and an insert
//! or removal moves at most one run's entries. All are O(log n + CHUNK_MAX)
//! and the runs are contiguous, so walking a range is a cache-friendly slice
//! scan; that is why this beats a pointer-chasing skip list here without
//! any `unsafe`. The Fenwick tree is rebuilt only when runs split, merge or
//! vanish, which happens once per ~CHUNK_MAX/2 updates.

use std::cmp::Ordering;

use hashbrown::HashMap;

use super::Blob;

/// Largest run; a run that outgrows it splits in two.
const CHUNK_MAX: usize = 256;
/// A run shorter than this after a removal merges into its neighbour, so
/// deletions cannot leave many near-empty runs behind.
const CHUNK_MIN: usize = CHUNK_MAX / 8;

/// A score with the total order Redis uses (no NaN is ever stored).
#[derive(Debug, Clone, Copy)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // -0.0 and 0.0 are the same score in Redis.
        if self.0 == other.0 {
            Ordering::Equal
        } else {
            self.0.total_cmp(&other.0)
        }
    }
}

/// One ordered entry.
#[derive(Debug, Clone)]
pub struct Node {
    pub score: f64,
    pub member: Blob,
}

impl Node {
    /// Order of this entry against (score, member), as Redis's skiplist
    /// compares: by score, then by member bytes.
    #[inline]
    pub fn cmp_to(&self, score: f64, member: &[u8]) -> Ordering {
        Score(self.score).cmp(&Score(score)).then_with(|| (*self.member).cmp(member))
    }
}

#[derive(Debug, Clone, Default)]
struct Order {
    chunks: Vec<Vec<Node>>,
    /// Fenwick tree (1-based in spirit, stored 0-based) over chunk lengths.
    fen: Vec<usize>,
}

impl Order {
    fn rebuild(&mut self) {
        let n = self.chunks.len();
        self.fen.clear();
        self.fen.extend(self.chunks.iter().map(Vec::len));
        for i in 0..n {
            let parent = i | (i + 1);
            if parent < n {
                let v = self.fen[i];
                self.fen[parent] += v;
            }
        }
    }

    fn fen_add(&mut self, mut i: usize, delta: isize) {
        while i < self.fen.len() {
            self.fen[i] = self.fen[i].wrapping_add_signed(delta);
            i |= i + 1;
        }
    }

    /// Entries in chunks `0..i`.
    fn prefix(&self, i: usize) -> usize {
        let mut sum = 0;
        let mut i = i;
        while i > 0 {
            sum += self.fen[i - 1];
            i &= i - 1;
        }
        sum
    }

    /// (chunk, offset) of rank `r`; `r` must be below the length.
    fn locate(&self, mut r: usize) -> (usize, usize) {
        let n = self.fen.len();
        let mut pos = 0;
        let mut step = n.checked_next_power_of_two().unwrap_or(0);
        if step > n {
            step /= 2;
        }
        if n > 0 && step == 0 {
            step = 1;
        }
        while step > 0 {
            let next = pos + step;
            if next <= n && self.fen[next - 1] <= r {
                r -= self.fen[next - 1];
                pos = next;
            }
            step /= 2;
        }
        (pos, r)
    }

    /// The number of leading entries for which `pred` holds; `pred` must
    /// hold for a prefix of the order and fail after it.
    fn partition_point(&self, mut pred: impl FnMut(&Node) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(&mut pred));
        match self.chunks.get(ci) {
            None => self.prefix(ci),
            Some(c) => self.prefix(ci) + c.partition_point(pred),
        }
    }

    fn insert(&mut self, node: Node) {
        if self.chunks.is_empty() {
            self.chunks.push(vec![node]);
            self.rebuild();
            return;
        }
        let (s, m) = (node.score, &node.member);
        let ci = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|l| l.cmp_to(s, m) == Ordering::Less))
            .min(self.chunks.len() - 1);
        let chunk = &mut self.chunks[ci];
        let at = chunk.partition_point(|n| n.cmp_to(s, m) == Ordering::Less);
        chunk.insert(at, node);
        if chunk.len() > CHUNK_MAX {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(ci + 1, tail);
            self.rebuild();
        } else {
            self.fen_add(ci, 1);
        }
    }

    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let ci = self.chunks.partition_point(|c| c.last().is_some_and(|l| l.cmp_to(score, member) == Ordering::Less));
        let Some(chunk) = self.chunks.get_mut(ci) else { return false };
        let Ok(at) = chunk.binary_search_by(|n| n.cmp_to(score, member)) else { return false };
        chunk.remove(at);
        if chunk.len() < CHUNK_MIN {
            self.compact(ci);
        } else {
            self.fen_add(ci, -1);
        }
        true
    }

    /// Merges a short chunk into a neighbour (or drops it when empty).
    fn compact(&mut self, ci: usize) {
        if self.chunks[ci].is_empty() {
            self.chunks.remove(ci);
        } else if ci + 1 < self.chunks.len() && self.chunks[ci].len() + self.chunks[ci + 1].len() <= CHUNK_MAX {
            let next = self.chunks.remove(ci + 1);
            self.chunks[ci].extend(next);
        } else if ci > 0 && self.chunks[ci].len() + self.chunks[ci - 1].len() <= CHUNK_MAX {
            let cur = self.chunks.remove(ci);
            self.chunks[ci - 1].extend(cur);
        }
        self.rebuild();
    }

    /// Chunk/offset bounds of the rank range `start..end` (end exclusive,
    /// both within the length).
    fn slices(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = &[Node]> + '_ {
        let len = self.prefix(self.chunks.len());
        let (c0, o0) = if start < len { self.locate(start) } else { (self.chunks.len(), 0) };
        let (c1, o1) = if end < len { self.locate(end) } else { (self.chunks.len(), 0) };
        let empty = start >= end;
        self.chunks.iter().enumerate().skip(c0).take(if empty { 0 } else { c1 + 1 - c0 }).filter_map(move |(i, c)| {
            let lo = if i == c0 { o0 } else { 0 };
            let hi = if i == c1 { o1 } else { c.len() };
            c.get(lo..hi).filter(|s| !s.is_empty())
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: HashMap<Blob, f64>,
    order: Order,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.scores.contains_key(member)
    }

    /// Adds or updates; returns true when the member is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        match self.scores.get_mut(member) {
            Some(old) => {
                // Bit equality, not `==`: 0 -> -0 must still be stored.
                if old.to_bits() != score.to_bits() {
                    let prev = *old;
                    *old = score;
                    self.order.remove(prev, member);
                    self.order.insert(Node { score, member: member.into() });
                }
                false
            }
            None => {
                let key: Blob = member.into();
                self.scores.insert(key.clone(), score);
                self.order.insert(Node { score, member: key });
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        self.order.remove(score, member);
        Some(score)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Blob, f64)> + '_ {
        self.range(0, self.len())
    }

    /// Entries with ranks `start..end` (clamped to the length), ascending;
    /// reverse it for descending order.
    pub fn range(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = (&Blob, f64)> + '_ {
        let end = end.min(self.len());
        self.order.slices(start.min(end), end).flat_map(|s| s.iter()).map(|n| (&n.member, n.score))
    }

    /// 0-based ascending rank.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.order.partition_point(|n| n.cmp_to(score, member) == Ordering::Less))
    }

    /// The entry at ascending rank `r`.
    pub fn at(&self, r: usize) -> Option<(&Blob, f64)> {
        if r >= self.len() {
            return None;
        }
        let (c, o) = self.order.locate(r);
        self.order.chunks.get(c)?.get(o).map(|n| (&n.member, n.score))
    }

    /// How many leading entries satisfy `pred`, which must hold for a prefix
    /// of the order (e.g. "score below min") and fail for the rest.
    pub fn count_while(&self, pred: impl FnMut(&Node) -> bool) -> usize {
        self.order.partition_point(pred)
    }

    /// Removes the entries with ranks `start..end`; returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        let (c0, o0) = self.order.locate(start);
        let mut left = end - start;
        let mut ci = c0;
        let mut off = o0;
        while left > 0 {
            let Some(chunk) = self.order.chunks.get_mut(ci) else { break };
            let hi = chunk.len().min(off + left);
            for n in chunk.drain(off..hi) {
                self.scores.remove(&n.member);
                left -= 1;
            }
            ci += 1;
            off = 0;
        }
        self.order.chunks.retain(|c| !c.is_empty());
        // Two partial chunks may be left short at the cut; merge them.
        if let Some(c) = self.order.chunks.get(c0) {
            if c.len() < CHUNK_MIN {
                self.order.compact(c0);
                return end - start;
            }
        }
        self.order.rebuild();
        end - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn order_and_rank() {
        let mut z = ZSet::default();
        assert!(z.insert(b"b", 1.0));
        assert!(z.insert(b"a", 1.0));
        assert!(z.insert(b"c", 0.5));
        assert!(!z.insert(b"c", 2.0));
        let order: Vec<_> = z.iter().map(|(m, _)| m.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(z.rank(b"c"), Some(2));
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.rank(b"b"), Some(0));
    }

    #[test]
    fn negative_zero_is_stored() {
        let mut z = ZSet::default();
        z.insert(b"a", 0.0);
        z.insert(b"a", -0.0);
        assert!(z.score(b"a").unwrap().is_sign_negative());
        assert!(z.iter().next().unwrap().1.is_sign_negative());
    }

    /// Random inserts, updates, removals and range removals against a
    /// sorted Vec, checking ranks, positional access, ranges and
    /// partition points after every step.
    #[test]
    fn randomized_against_sorted_vec() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut z = ZSet::default();
        let mut model: Vec<(Score, Vec<u8>)> = Vec::new();
        for step in 0..20_000 {
            let op = rng.gen_range(0..100);
            let member = format!("m{}", rng.gen_range(0..3000)).into_bytes();
            let score = f64::from(rng.gen_range(-50..50)) / 4.0;
            if op < 60 {
                let new = z.insert(&member, score);
                let pos = model.iter().position(|(_, m)| *m == member);
                assert_eq!(new, pos.is_none());
                if let Some(p) = pos {
                    model.remove(p);
                }
                model.push((Score(score), member));
                model.sort();
            } else if op < 95 {
                let pos = model.iter().position(|(_, m)| *m == member);
                assert_eq!(z.remove(&member), pos.map(|p| model.remove(p).0 .0));
            } else if !model.is_empty() {
                let a = rng.gen_range(0..model.len());
                let b = rng.gen_range(a..=model.len().min(a + 700));
                assert_eq!(z.remove_range(a, b), b - a);
                model.drain(a..b);
            }
            assert_eq!(z.len(), model.len());
            if step % 97 == 0 || model.len() < 5 {
                let all: Vec<_> = z.iter().map(|(m, s)| (Score(s), m.to_vec())).collect();
                assert_eq!(all, model);
                let rev: Vec<_> = z.iter().rev().map(|(m, _)| m.to_vec()).collect();
                assert!(rev.iter().eq(model.iter().rev().map(|(_, m)| m)));
            }
            if !model.is_empty() {
                let r = rng.gen_range(0..model.len());
                let (s, m) = &model[r];
                assert_eq!(z.rank(m), Some(r));
                assert_eq!(z.at(r).map(|(mm, ss)| (Score(ss), mm.to_vec())), Some((*s, m.clone())));
                let e = rng.gen_range(r..=model.len());
                let got: Vec<_> = z.range(r, e).map(|(m, _)| m.to_vec()).collect();
                let want: Vec<_> = model[r..e].iter().map(|(_, m)| m.clone()).collect();
                assert_eq!(got, want);
                let got_rev: Vec<_> = z.range(r, e).rev().map(|(m, _)| m.to_vec()).collect();
                assert!(got_rev.iter().eq(want.iter().rev()));
                let bound = f64::from(rng.gen_range(-60..60)) / 4.0;
                assert_eq!(z.count_while(|n| n.score < bound), model.partition_point(|(s, _)| s.0 < bound));
            }
        }
        assert_eq!(z.at(z.len()), None);
    }

    #[test]
    fn million_members_rank_and_range() {
        let mut z = ZSet::default();
        for i in 0..1_000_000u32 {
            z.insert(format!("{i:07}").as_bytes(), f64::from(i % 1000));
        }
        // score i%1000, then member bytes: rank of "0000005" (score 5) is
        // 1000 members for each lower score times 5.
        assert_eq!(z.rank(b"0000005"), Some(5000));
        assert_eq!(z.at(5000).map(|(m, _)| m.to_vec()), Some(b"0000005".to_vec()));
        assert_eq!(z.range(999_998, 2_000_000).count(), 2);
        assert_eq!(z.remove_range(0, 500_000), 500_000);
        assert_eq!(z.len(), 500_000);
        assert_eq!(z.rank(b"0999999"), Some(499_999));
    }
}
