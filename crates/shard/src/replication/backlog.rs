//! The replication backlog: the last `repl-backlog-size` bytes of the
//! replication stream, so a replica that lost its link for a moment can
//! continue (PSYNC `+CONTINUE`) instead of taking a whole new snapshot.
//!
//! Offsets are Redis's: the stream's first byte has offset 1 and
//! `master_repl_offset` is the offset of the last byte written. The ring
//! holds the bytes `first_byte_offset ..= end_offset`; a replica asking to
//! continue at offset `o` (the first byte it has not got) can be served
//! when `first_byte_offset <= o <= end_offset + 1`.

/// A fixed-size ring of the newest stream bytes.
#[derive(Debug)]
pub struct Backlog {
    buf: Vec<u8>,
    /// Where the next byte goes in `buf`.
    head: usize,
    /// Bytes held (at most `buf.len()`).
    histlen: usize,
    /// Offset of the last byte written (`master_repl_offset` when the
    /// backlog was fed all along).
    end_offset: i64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte will have offset
    /// `end_offset + 1`.
    pub fn new(size: usize, end_offset: i64) -> Self {
        Backlog { buf: vec![0; size.max(1)], head: 0, histlen: 0, end_offset }
    }

    pub fn size(&self) -> usize {
        self.buf.len()
    }

    pub fn histlen(&self) -> usize {
        self.histlen
    }

    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// INFO's `repl_backlog_first_byte_offset`.
    pub fn first_byte_offset(&self) -> i64 {
        self.end_offset - self.histlen as i64 + 1
    }

    /// Appends stream bytes, dropping the oldest when full.
    pub fn append(&mut self, mut data: &[u8]) {
        self.end_offset += data.len() as i64;
        let size = self.buf.len();
        if data.len() > size {
            // Only the newest `size` bytes can stay.
            data = &data[data.len() - size..];
        }
        while !data.is_empty() {
            let room = size - self.head;
            let n = room.min(data.len());
            self.buf[self.head..self.head + n].copy_from_slice(&data[..n]);
            self.head = (self.head + n) % size;
            self.histlen = (self.histlen + n).min(size);
            data = &data[n..];
        }
    }

    /// Whether a replica whose next wanted byte is `offset` can continue
    /// from here.
    pub fn covers(&self, offset: i64) -> bool {
        offset >= self.first_byte_offset() && offset <= self.end_offset + 1
    }

    /// The bytes from `offset` to the end; `None` when not covered.
    pub fn copy_from(&self, offset: i64) -> Option<Vec<u8>> {
        if !self.covers(offset) {
            return None;
        }
        let len = (self.end_offset + 1 - offset) as usize;
        let size = self.buf.len();
        // `head` is one past the newest byte; walk back `len` bytes.
        let start = (self.head + size - len % size) % size;
        let mut out = Vec::with_capacity(len);
        if len == 0 {
            return Some(out);
        }
        if start + len <= size {
            out.extend_from_slice(&self.buf[start..start + len]);
        } else {
            out.extend_from_slice(&self.buf[start..]);
            out.extend_from_slice(&self.buf[..len - (size - start)]);
        }
        Some(out)
    }

    /// CONFIG SET repl-backlog-size: a new ring keeping what fits.
    pub fn resize(&mut self, size: usize) {
        if size.max(1) == self.buf.len() {
            return;
        }
        let keep = self.histlen.min(size.max(1));
        let tail = self.copy_from(self.end_offset + 1 - keep as i64).unwrap_or_default();
        let end = self.end_offset;
        *self = Backlog::new(size, end - tail.len() as i64);
        self.append(&tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_backlog_covers_only_the_next_byte() {
        let b = Backlog::new(8, 100);
        assert_eq!(b.first_byte_offset(), 101);
        assert!(b.covers(101));
        assert!(!b.covers(100));
        assert!(!b.covers(102));
        assert_eq!(b.copy_from(101), Some(vec![]));
    }

    #[test]
    fn offsets_follow_the_stream() {
        let mut b = Backlog::new(16, 0);
        b.append(b"hello");
        assert_eq!((b.first_byte_offset(), b.end_offset(), b.histlen()), (1, 5, 5));
        assert_eq!(b.copy_from(1).unwrap(), b"hello");
        assert_eq!(b.copy_from(3).unwrap(), b"llo");
        assert_eq!(b.copy_from(6).unwrap(), b"");
        assert!(b.copy_from(7).is_none());
        assert!(b.copy_from(0).is_none());
    }

    #[test]
    fn wraps_and_forgets_the_oldest_bytes() {
        let mut b = Backlog::new(8, 0);
        b.append(b"abcdef");
        b.append(b"ghij");
        // 10 bytes written, 8 kept: c..j at offsets 3..=10.
        assert_eq!((b.first_byte_offset(), b.end_offset(), b.histlen()), (3, 10, 8));
        assert_eq!(b.copy_from(3).unwrap(), b"cdefghij");
        assert_eq!(b.copy_from(8).unwrap(), b"hij");
        assert!(!b.covers(2), "overwritten bytes cannot be continued from");
        assert!(b.copy_from(2).is_none());
    }

    #[test]
    fn a_write_larger_than_the_ring_keeps_its_tail() {
        let mut b = Backlog::new(4, 10);
        b.append(b"0123456789");
        assert_eq!((b.first_byte_offset(), b.end_offset()), (17, 20));
        assert_eq!(b.copy_from(17).unwrap(), b"6789");
        b.append(b"x");
        assert_eq!(b.copy_from(18).unwrap(), b"789x");
    }

    #[test]
    fn many_small_writes_match_a_model() {
        let mut b = Backlog::new(13, 0);
        let mut all = Vec::new();
        for i in 0..500u32 {
            let chunk: Vec<u8> = (0..(i % 7)).map(|j| (i * 31 + j) as u8).collect();
            b.append(&chunk);
            all.extend_from_slice(&chunk);
            let end = all.len() as i64;
            assert_eq!(b.end_offset(), end);
            let first = b.first_byte_offset();
            assert_eq!(first, (end - 13).max(0) + 1);
            for off in first..=end + 1 {
                assert_eq!(b.copy_from(off).unwrap(), &all[(off - 1) as usize..], "offset {off}");
            }
        }
    }

    #[test]
    fn resize_keeps_the_newest_bytes() {
        let mut b = Backlog::new(8, 0);
        b.append(b"abcdefgh");
        b.resize(4);
        assert_eq!((b.first_byte_offset(), b.end_offset()), (5, 8));
        assert_eq!(b.copy_from(5).unwrap(), b"efgh");
        b.resize(16);
        b.append(b"ij");
        assert_eq!(b.copy_from(5).unwrap(), b"efghij");
    }
}
