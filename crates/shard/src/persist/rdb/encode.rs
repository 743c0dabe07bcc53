//! Writing RDB: the primitives (lengths, strings, doubles), one value in
//! the encoding Redis 7.0 would load it into, and a whole snapshot.
//!
//! Everything is encoded into a `Vec<u8>` first: a DUMP payload is exactly
//! that buffer, and a snapshot hands the buffer to its writer every 64 KiB,
//! so the writer sees few large writes whatever the key sizes.

use std::io::{self, Write};

use super::{op, ty, RDB_VERSION};
use crate::persist::{crc64, intset, listpack, lzf};
use crate::store::value::{is_intset, set_members};
use crate::store::{Store, Value};

/// What a snapshot writes besides the data.
#[derive(Debug, Clone)]
pub struct Options {
    /// LZF-compress strings longer than 20 bytes (`rdbcompression`).
    pub compress: bool,
    /// Write a real checksum (`rdbchecksum`); 0 otherwise.
    pub checksum: bool,
    /// The `used-mem` aux field.
    pub used_mem: u64,
    /// The `aof-base` aux field: 1 when the file is an AOF's base.
    pub aof_base: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { compress: true, checksum: true, used_mem: 0, aof_base: false }
    }
}

/// Largest listpack node of a quicklist, as `list-max-listpack-size -2`.
const NODE_BYTES: usize = 8 * 1024;
/// Bytes buffered before they go to the writer.
const FLUSH_AT: usize = 64 * 1024;

/// A length: 6 bits, 14 bits, or a marker byte and 32/64 big-endian bits.
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string: as an 8/16/32-bit integer when it is one, LZF-compressed
/// when that saves at least 4 bytes, raw otherwise.
pub fn put_str(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = listpack::canonical_int(s) {
            if let Ok(b) = i8::try_from(v) {
                out.extend_from_slice(&[0xc0, b as u8]);
                return;
            }
            if let Ok(h) = i16::try_from(v) {
                out.push(0xc1);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            }
            if let Ok(w) = i32::try_from(v) {
                out.push(0xc2);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A score as text for a listpack, as Redis's `d2string` writes it:
/// integral scores as integers (which the listpack then stores as
/// integers), others as `%.17g`, so our payloads are byte-identical.
fn score_text(score: f64) -> String {
    const LIMIT: f64 = 4_503_599_627_370_496.0; // 2^52
    if score == 0.0 {
        return if score.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if score > -LIMIT + 1.0 && score < LIMIT && score.fract() == 0.0 {
        return format!("{}", score as i64);
    }
    slotway_resp::reply::format_double(score)
}

/// The type byte `value` is written with.
pub fn type_of(value: &Value) -> u8 {
    match value {
        Value::Str(_) => ty::STRING,
        Value::List(_) => ty::LIST_QUICKLIST_2,
        Value::Hash(_) if value.encoding() == "listpack" => ty::HASH_LISTPACK,
        Value::Hash(_) => ty::HASH,
        Value::Set(s) if is_intset(s) => ty::SET_INTSET,
        Value::Set(_) => ty::SET,
        Value::ZSet(_) if value.encoding() == "listpack" => ty::ZSET_LISTPACK,
        Value::ZSet(_) => ty::ZSET_2,
    }
}

/// The value's body in the encoding [`type_of`] names.
pub fn put_value(out: &mut Vec<u8>, value: &Value, compress: bool) {
    match (type_of(value), value) {
        (_, Value::Str(s)) => put_str(out, s, compress),
        (_, Value::List(l)) => {
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut start = 0;
            while start < l.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < l.len() && (end == start || bytes + l[end].len() + 11 <= NODE_BYTES) {
                    bytes += l[end].len() + 11;
                    end += 1;
                }
                nodes.push(listpack::build(l.range(start..end).map(|e| &e[..])));
                start = end;
            }
            put_len(out, nodes.len() as u64);
            for n in nodes {
                // Container 2: a packed (listpack) node.
                put_len(out, 2);
                put_str(out, &n, compress);
            }
        }
        (ty::HASH_LISTPACK, Value::Hash(h)) => {
            let lp = listpack::build(h.iter().flat_map(|(k, v)| [&k[..], &v[..]]));
            put_str(out, &lp, compress);
        }
        (_, Value::Hash(h)) => {
            put_len(out, h.len() as u64);
            for (k, v) in h.iter() {
                put_str(out, k, compress);
                put_str(out, v, compress);
            }
        }
        (ty::SET_INTSET, Value::Set(s)) => {
            let mut ints: Vec<i64> = s.iter().filter_map(|m| listpack::canonical_int(m)).collect();
            put_str(out, &intset::build(&mut ints), compress);
        }
        (_, Value::Set(s)) => {
            put_len(out, s.len() as u64);
            for m in set_members(s) {
                put_str(out, m, compress);
            }
        }
        (ty::ZSET_LISTPACK, Value::ZSet(z)) => {
            let scores: Vec<String> = z.iter().map(|(_, s)| score_text(s)).collect();
            let lp = listpack::build(z.iter().zip(&scores).flat_map(|((m, _), s)| [&m[..], s.as_bytes()]));
            put_str(out, &lp, compress);
        }
        (_, Value::ZSet(z)) => {
            put_len(out, z.len() as u64);
            // Highest score first, as Redis writes its skiplist, so a
            // loader appending at the head builds it in order.
            for (m, s) in z.iter().rev() {
                put_str(out, m, compress);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// DUMP's payload: type, value, RDB version (2 bytes LE), CRC-64 (8 bytes
/// LE) of all that.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut out = vec![type_of(value)];
    put_value(&mut out, value, true);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes a snapshot of every database with the default [`Options`].
pub fn write_rdb(store: &Store, w: impl Write) -> io::Result<()> {
    write_rdb_with(store, w, &Options::default())
}

/// Writes a snapshot of `store` to `w`: header, aux fields, each non-empty
/// database, EOF and checksum. Keys already expired are left out.
pub fn write_rdb_with(store: &Store, w: impl Write, opts: &Options) -> io::Result<()> {
    let mut w = crc64::CrcWriter { inner: w, crc: 0 };
    let now = crate::server::unix_ms();
    let mut out = Vec::with_capacity(FLUSH_AT * 2);
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    let aux: [(&str, String); 5] = [
        ("redis-ver", crate::command::server::REDIS_VERSION.to_string()),
        ("redis-bits", "64".into()),
        ("ctime", (now / 1000).to_string()),
        ("used-mem", opts.used_mem.to_string()),
        ("aof-base", u8::from(opts.aof_base).to_string()),
    ];
    for (k, v) in aux {
        out.push(op::AUX);
        put_str(&mut out, k.as_bytes(), false);
        put_str(&mut out, v.as_bytes(), false);
    }
    for (index, db) in store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        out.push(op::SELECTDB);
        put_len(&mut out, index as u64);
        out.push(op::RESIZEDB);
        put_len(&mut out, db.len() as u64);
        put_len(&mut out, db.volatile_len() as u64);
        for (key, entry) in db.iter(now) {
            let at = entry.expire();
            if at != 0 {
                out.push(op::EXPIRETIME_MS);
                out.extend_from_slice(&db.exact_expire(key, at).to_le_bytes());
            }
            out.push(type_of(&entry.value));
            put_str(&mut out, key, opts.compress);
            put_value(&mut out, &entry.value, opts.compress);
            if out.len() >= FLUSH_AT {
                w.write_all(&out)?;
                out.clear();
            }
        }
    }
    out.push(op::EOF);
    w.write_all(&out)?;
    let crc = if opts.checksum { w.crc } else { 0 };
    w.inner.write_all(&crc.to_le_bytes())?;
    w.inner.flush()
}
