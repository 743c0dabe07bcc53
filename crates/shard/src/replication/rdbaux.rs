//! The replication facts a snapshot for a replica carries in its aux
//! fields, as Redis writes them: `repl-stream-db` (the database the
//! stream has selected at the snapshot's offset), `repl-id` and
//! `repl-offset`.
//!
//! `repl-stream-db` matters for chained replicas: a replica forwards its
//! master's bytes untouched, so a sub-replica that loads our snapshot must
//! know which database those bytes are in until the next SELECT.
//!
//! [`AuxWriter`] adds the fields to what the RDB writer produces, on the
//! fly: it inserts them after the 9-byte header and recomputes the
//! trailing CRC-64, holding back the writer's own 8 checksum bytes.
//! [`stream_db`] reads the field back from a received snapshot.

use std::io::{self, Write};

use crate::persist::crc64;
use crate::persist::rdb::encode::put_str;
use crate::persist::rdb::op;

const HEADER: usize = 9;
const CRC: usize = 8;

/// The aux records for a replica's snapshot.
pub fn fields(stream_db: usize, replid: &str, offset: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in
        [("repl-stream-db", stream_db.to_string()), ("repl-id", replid.into()), ("repl-offset", offset.to_string())]
    {
        out.push(op::AUX);
        put_str(&mut out, k.as_bytes(), false);
        put_str(&mut out, v.as_bytes(), false);
    }
    out
}

/// Passes an RDB stream through, adding `extra` after the header and
/// replacing the checksum (a zero checksum, `rdbchecksum no`, stays zero).
pub struct AuxWriter<W: Write> {
    inner: W,
    extra: Vec<u8>,
    seen: usize,
    /// The newest bytes, held back until we know they are not the CRC.
    tail: Vec<u8>,
    crc: u64,
}

impl<W: Write> AuxWriter<W> {
    pub fn new(inner: W, extra: Vec<u8>) -> Self {
        AuxWriter { inner, extra, seen: 0, tail: Vec::with_capacity(64 * 1024), crc: 0 }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > CRC {
            let n = self.tail.len() - CRC;
            self.inner.write_all(&self.tail[..n])?;
            self.crc = crc64::update(self.crc, &self.tail[..n]);
            self.tail.drain(..n);
        }
        Ok(())
    }

    /// Writes the checksum; call once the RDB writer is done.
    pub fn finish(mut self) -> io::Result<W> {
        if self.tail.len() != CRC {
            return Err(io::Error::other("snapshot shorter than its checksum"));
        }
        let zero = self.tail.iter().all(|&b| b == 0);
        let crc = if zero { 0 } else { self.crc };
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for AuxWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        if self.seen < HEADER {
            let head = (HEADER - self.seen).min(buf.len());
            self.emit(&buf[..head])?;
            self.seen += head;
            buf = &buf[head..];
            if self.seen == HEADER {
                let extra = std::mem::take(&mut self.extra);
                self.emit(&extra)?;
            }
        }
        self.seen += buf.len();
        self.emit(buf)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `repl-stream-db` from a snapshot's leading aux fields, if present.
pub fn stream_db(rdb: &[u8]) -> Option<usize> {
    let mut at = HEADER;
    while *rdb.get(at)? == op::AUX {
        at += 1;
        let key = read_str(rdb, &mut at)?;
        let value = read_str(rdb, &mut at)?;
        if key == b"repl-stream-db" {
            return std::str::from_utf8(&value).ok()?.parse().ok();
        }
    }
    None
}

/// One RDB string (plain or integer-encoded); `None` for what aux fields
/// never hold (compressed strings) or a truncated buffer.
fn read_str(rdb: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    let first = *rdb.get(*at)?;
    *at += 1;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = rdb.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let len = match first >> 6 {
        0 => usize::from(first & 0x3f),
        1 => (usize::from(first & 0x3f) << 8) | usize::from(*take(at, 1)?.first()?),
        2 if first == 0x80 => u32::from_be_bytes(take(at, 4)?.try_into().ok()?) as usize,
        2 => usize::try_from(u64::from_be_bytes(take(at, 8)?.try_into().ok()?)).ok()?,
        _ => {
            let v: i64 = match first & 0x3f {
                0 => i64::from(take(at, 1)?[0] as i8),
                1 => i64::from(i16::from_le_bytes(take(at, 2)?.try_into().ok()?)),
                2 => i64::from(i32::from_le_bytes(take(at, 4)?.try_into().ok()?)),
                _ => return None,
            };
            return Some(v.to_string().into_bytes());
        }
    };
    take(at, len).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::rdb::{write_rdb_with, Options};
    use crate::store::{Entry, Store, Str, Value};

    fn snapshot(checksum: bool) -> (Vec<u8>, Store) {
        let mut store = Store::new(4);
        store.dbs[2].insert(b"k", Entry::new(Value::Str(Str::from(&b"v"[..]))));
        let opts = Options { compress: false, checksum, used_mem: 0, aof_base: false };
        let mut w = AuxWriter::new(Vec::new(), fields(3, &"a".repeat(40), 1234));
        write_rdb_with(&store, &mut w, &opts).unwrap();
        (w.finish().unwrap(), store)
    }

    #[test]
    fn added_fields_read_back_and_the_checksum_holds() {
        let (rdb, _) = snapshot(true);
        assert_eq!(stream_db(&rdb), Some(3));
        let body = &rdb[..rdb.len() - 8];
        let crc = u64::from_le_bytes(rdb[rdb.len() - 8..].try_into().unwrap());
        assert_eq!(crc, crc64::checksum(body));
        let mut loaded = Store::new(4);
        crate::persist::snapshot::load_into(&mut loaded, &rdb, crate::server::unix_ms()).unwrap();
        assert!(loaded.dbs[2].peek(b"k").is_some());
    }

    #[test]
    fn a_zero_checksum_stays_zero() {
        let (rdb, _) = snapshot(false);
        assert_eq!(&rdb[rdb.len() - 8..], &[0u8; 8]);
        assert_eq!(stream_db(&rdb), Some(3));
    }

    #[test]
    fn no_field_no_db() {
        assert_eq!(stream_db(b"REDIS0010\xff"), None);
        assert_eq!(stream_db(b"REDIS"), None);
    }
}
