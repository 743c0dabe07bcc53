//! The eviction pool: the best candidates seen so far, across rounds.
//!
//! Each round of sampling offers a few keys with their scores; the pool
//! keeps the sixteen highest, ordered, so that a key that scored well in an
//! earlier round is still considered when the next round's sample is
//! poor. This is what makes sampled eviction approach true LRU/LFU.

use crate::store::Blob;

/// Candidates kept, as in Redis.
pub const POOL_SIZE: usize = 16;

struct Candidate {
    score: u64,
    db: usize,
    key: Blob,
}

/// Candidates ordered by ascending score: the best is last.
#[derive(Default)]
pub struct Pool {
    entries: Vec<Candidate>,
}

impl Pool {
    /// Considers `key` of `db` with `score` (higher: evict sooner). A full
    /// pool ignores keys that score no better than its worst; a key already
    /// pooled is not added twice.
    pub fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.entries.len() == POOL_SIZE && self.entries.first().is_some_and(|c| score <= c.score) {
            return;
        }
        if self.entries.iter().any(|c| c.db == db && *c.key == *key) {
            return;
        }
        let at = self.entries.partition_point(|c| c.score < score);
        self.entries.insert(at, Candidate { score, db, key: key.into() });
        if self.entries.len() > POOL_SIZE {
            self.entries.remove(0);
        }
    }

    /// Removes and returns the best candidate.
    pub fn take_best(&mut self) -> Option<(usize, Blob)> {
        self.entries.pop().map(|c| (c.db, c.key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_sixteen_in_order() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            // Scores arrive shuffled.
            let score = (i * 17) % 40;
            p.offer(score, 0, format!("k{score}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let mut got = Vec::new();
        while let Some((_, k)) = p.take_best() {
            got.push(String::from_utf8(k.to_vec()).unwrap());
        }
        let want: Vec<String> = (24..40).rev().map(|s| format!("k{s}")).collect();
        assert_eq!(got, want);
        assert!(p.is_empty());
    }

    #[test]
    fn ignores_duplicates_and_poor_scores_when_full() {
        let mut p = Pool::default();
        p.offer(5, 0, b"a");
        p.offer(9, 0, b"a");
        assert_eq!(p.len(), 1);
        p.offer(5, 1, b"a");
        assert_eq!(p.len(), 2, "same key in another database is another key");
        for i in 0..POOL_SIZE as u64 {
            p.offer(100 + i, 0, format!("x{i}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        p.offer(100, 0, b"low");
        assert!(!p.entries.iter().any(|c| &*c.key == b"low"));
    }
}
