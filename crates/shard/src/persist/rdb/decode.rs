//! Reading RDB: the primitives, every value encoding Redis 7.0 writes or
//! still loads (listpack, ziplist, intset, quicklist 1 and 2, plain
//! types), whole files and DUMP payloads.
//!
//! The input is a byte slice, so every length is checked against what is
//! left before anything is allocated: a corrupt length is an error, never
//! a huge allocation, and no input makes the reader panic.

use std::collections::VecDeque;

use super::{op, ty, RdbError, RDB_VERSION};
use crate::persist::{crc64, intset, listpack, lzf, ziplist};
use crate::store::value::{IndexMap, IndexSet};
use crate::store::zset::ZSet;
use crate::store::{Blob, Value};

type Result<T> = std::result::Result<T, RdbError>;

/// Largest string we accept (Redis's `proto-max-bulk-len` ceiling).
const MAX_STRING: usize = 512 << 20;

/// Most elements reserved up front for a collection. A declared count is
/// only a claim: beyond this the container grows as elements really
/// arrive, so a corrupt count costs nothing.
const PREALLOC: usize = 4096;

/// A cursor over RDB bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or the special string encoding it announces.
enum Len {
    Plain(u64),
    Special(u8),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(RdbError::Short)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| RdbError::Short)?;
        if n > self.left() {
            return Err(RdbError::Short);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len_or_special(&mut self) -> Result<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return Err(RdbError::Corrupt("unknown length encoding")),
            },
            _ => Len::Special(b & 0x3f),
        })
    }

    pub fn read_len(&mut self) -> Result<u64> {
        match self.len_or_special()? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => Err(RdbError::Corrupt("encoded string where a length belongs")),
        }
    }

    /// A count of items about to be read: at least one byte each must
    /// remain, which bounds any allocation sized by it.
    fn count(&mut self, bytes_each: usize) -> Result<usize> {
        let n = self.read_len()?;
        if n > (self.left() / bytes_each.max(1)) as u64 {
            return Err(RdbError::Short);
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_special()? {
            Len::Plain(n) => Ok(self.take(n)?.to_vec()),
            Len::Special(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Len::Special(1) => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Special(2) => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Special(3) => {
                let clen = self.read_len()?;
                let ulen = self.read_len()?;
                let packed = self.take(clen)?;
                let ulen = usize::try_from(ulen).map_err(|_| RdbError::Short)?;
                if ulen > MAX_STRING {
                    return Err(RdbError::Corrupt("compressed string too long"));
                }
                lzf::decompress(packed, ulen).ok_or(RdbError::Corrupt("invalid LZF compressed string"))
            }
            Len::Special(_) => Err(RdbError::Corrupt("unknown string encoding")),
        }
    }

    /// The text double of the old ZSET type: a length byte, or 253/254/255
    /// for NaN/+inf/-inf.
    fn text_double(&mut self) -> Result<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.take(u64::from(n))?;
                crate::command::parse_float(s).ok_or(RdbError::Corrupt("bad double value"))
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A value of type `t`.
    pub fn value(&mut self, t: u8) -> Result<Value> {
        match t {
            ty::STRING => Ok(Value::Str(self.string()?.into())),
            ty::LIST => {
                let n = self.count(1)?;
                let mut l = VecDeque::with_capacity(n.min(PREALLOC));
                for _ in 0..n {
                    l.push_back(Blob::from(self.string()?));
                }
                Ok(Value::List(l))
            }
            ty::SET => {
                let n = self.count(1)?;
                let mut s = IndexSet::with_capacity_and_hasher(n.min(PREALLOC), Default::default());
                for _ in 0..n {
                    if !s.insert(Blob::from(self.string()?)) {
                        return Err(RdbError::Corrupt("duplicate set members detected"));
                    }
                }
                Ok(Value::Set(Box::new(s)))
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = self.count(2)?;
                let mut z = ZSet::default();
                for _ in 0..n {
                    let m = self.string()?;
                    let score = if t == ty::ZSET { self.text_double()? } else { self.binary_double()? };
                    if score.is_nan() {
                        return Err(RdbError::Corrupt("zset score is NaN"));
                    }
                    if !z.insert(&m, score) {
                        return Err(RdbError::Corrupt("duplicate zset members detected"));
                    }
                }
                Ok(Value::ZSet(Box::new(z)))
            }
            ty::HASH => {
                let n = self.count(2)?;
                let mut h = IndexMap::with_capacity_and_hasher(n.min(PREALLOC), Default::default());
                for _ in 0..n {
                    let k = self.string()?;
                    let v = self.string()?;
                    if h.insert(Blob::from(k), Blob::from(v)).is_some() {
                        return Err(RdbError::Corrupt("duplicate hash fields detected"));
                    }
                }
                Ok(Value::Hash(Box::new(h)))
            }
            ty::LIST_ZIPLIST => {
                let zl = self.string()?;
                Ok(Value::List(ziplist::entries(&zl).ok_or(BAD_ZIPLIST)?.into_iter().map(Blob::from).collect()))
            }
            ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => self.quicklist(t),
            ty::SET_INTSET => {
                let is = self.string()?;
                let ints = intset::entries(&is).ok_or(RdbError::Corrupt("invalid intset"))?;
                members_to_set(ints.iter().map(|v| v.to_string().into_bytes()))
            }
            ty::SET_LISTPACK => {
                let lp = self.string()?;
                members_to_set(listpack::entries(&lp).ok_or(BAD_LISTPACK)?.into_iter())
            }
            ty::HASH_ZIPLIST | ty::HASH_LISTPACK => {
                let b = self.string()?;
                let items = if t == ty::HASH_ZIPLIST {
                    ziplist::entries(&b).ok_or(BAD_ZIPLIST)?
                } else {
                    listpack::entries(&b).ok_or(BAD_LISTPACK)?
                };
                pairs_to_hash(items)
            }
            ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => {
                let b = self.string()?;
                let items = if t == ty::ZSET_ZIPLIST {
                    ziplist::entries(&b).ok_or(BAD_ZIPLIST)?
                } else {
                    listpack::entries(&b).ok_or(BAD_LISTPACK)?
                };
                pairs_to_zset(items)
            }
            ty::HASH_ZIPMAP => Err(RdbError::Unsupported("a hash in the zipmap encoding of Redis 2.x")),
            ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
                Err(RdbError::Unsupported("a stream (streams are not supported yet)"))
            }
            ty::MODULE | ty::MODULE_2 => Err(RdbError::Unsupported("a module data type")),
            _ => Err(RdbError::Corrupt("unknown value type")),
        }
    }

    fn quicklist(&mut self, t: u8) -> Result<Value> {
        let nodes = self.count(1)?;
        let mut l = VecDeque::new();
        for _ in 0..nodes {
            let container = if t == ty::LIST_QUICKLIST_2 { self.read_len()? } else { 2 };
            let node = self.string()?;
            match container {
                // A plain node is one (large) element.
                1 => l.push_back(Blob::from(node)),
                2 => {
                    let items = if t == ty::LIST_QUICKLIST {
                        ziplist::entries(&node).ok_or(BAD_ZIPLIST)?
                    } else {
                        listpack::entries(&node).ok_or(BAD_LISTPACK)?
                    };
                    l.extend(items.into_iter().map(Blob::from));
                }
                _ => return Err(RdbError::Corrupt("unknown quicklist container")),
            }
        }
        Ok(Value::List(l))
    }
}

const BAD_ZIPLIST: RdbError = RdbError::Corrupt("invalid ziplist");
const BAD_LISTPACK: RdbError = RdbError::Corrupt("invalid listpack");

fn members_to_set(items: impl Iterator<Item = Vec<u8>>) -> Result<Value> {
    let mut s = IndexSet::default();
    for m in items {
        if !s.insert(Blob::from(m)) {
            return Err(RdbError::Corrupt("duplicate set members detected"));
        }
    }
    Ok(Value::Set(Box::new(s)))
}

fn pairs_to_hash(items: Vec<Vec<u8>>) -> Result<Value> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("hash with an odd number of items"));
    }
    let mut h = IndexMap::with_capacity_and_hasher(items.len() / 2, Default::default());
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if h.insert(Blob::from(k), Blob::from(v)).is_some() {
            return Err(RdbError::Corrupt("duplicate hash fields detected"));
        }
    }
    Ok(Value::Hash(Box::new(h)))
}

fn pairs_to_zset(items: Vec<Vec<u8>>) -> Result<Value> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("zset with an odd number of items"));
    }
    let mut z = ZSet::default();
    let mut it = items.into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        let score = crate::command::parse_float(&s).ok_or(RdbError::Corrupt("bad zset score"))?;
        if !z.insert(&m, score) {
            return Err(RdbError::Corrupt("duplicate zset members detected"));
        }
    }
    Ok(Value::ZSet(Box::new(z)))
}

/// The value in a DUMP payload, after checking its RDB version and
/// checksum. `Err(true)`: version or checksum wrong; `Err(false)`: the data
/// itself is bad (RESTORE tells the two apart).
pub fn read_payload(p: &[u8]) -> std::result::Result<Value, bool> {
    if p.len() < 11 {
        return Err(true);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| true)?);
    if version > RDB_VERSION || crc64::checksum(&p[..p.len() - 8]) != crc {
        return Err(true);
    }
    let mut r = Reader::new(body);
    let t = r.byte().map_err(|_| false)?;
    let v = r.value(t).map_err(|_| false)?;
    if r.left() != 0 || v.is_empty_collection() {
        return Err(false);
    }
    Ok(v)
}

/// What loading a file found.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub keys: u64,
    pub expired: u64,
    pub empty_skipped: u64,
    /// The `redis-ver` aux field, if any.
    pub redis_ver: Option<String>,
    pub ctime: Option<u64>,
    pub used_mem: Option<u64>,
    /// Bytes the image took, checksum included: where an AOF with an RDB
    /// preamble goes on with commands.
    pub len: usize,
}

/// Parses a whole RDB file, handing each live key to `sink` as (database,
/// key, value, expiry in unix ms or 0). Keys already expired at `now` are
/// counted and dropped, as a master does.
pub fn load(
    buf: &[u8],
    databases: usize,
    now: u64,
    mut sink: impl FnMut(usize, Vec<u8>, Value, u64),
) -> Result<Loaded> {
    let mut r = Reader::new(buf);
    let magic = r.take(9).map_err(|_| RdbError::Signature)?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::Signature);
    }
    let version: u32 = std::str::from_utf8(&magic[5..]).ok().and_then(|s| s.parse().ok()).ok_or(RdbError::Signature)?;
    if !(1..=11).contains(&version) {
        return Err(RdbError::Version(version));
    }
    let mut stats = Loaded::default();
    let mut db = 0usize;
    let mut expire = 0u64;
    loop {
        let t = r.byte()?;
        match t {
            op::EOF => break,
            op::AUX => {
                let k = r.string()?;
                let v = r.string()?;
                let text = String::from_utf8_lossy(&v).into_owned();
                match &k[..] {
                    b"redis-ver" => stats.redis_ver = Some(text),
                    b"ctime" => stats.ctime = text.parse().ok(),
                    b"used-mem" => stats.used_mem = text.parse().ok(),
                    _ => {}
                }
            }
            op::RESIZEDB => {
                r.read_len()?;
                r.read_len()?;
            }
            op::SELECTDB => {
                let n = r.read_len()?;
                if n >= databases as u64 {
                    return Err(RdbError::DbIndex(databases));
                }
                db = n as usize;
            }
            op::EXPIRETIME_MS => expire = u64::from_le_bytes(r.array()?),
            // Seconds, as a signed 32-bit number: a negative one has expired.
            op::EXPIRETIME => expire = u64::try_from(i32::from_le_bytes(r.array()?)).map_or(1, |s| s.max(1) * 1000),
            op::IDLE => {
                r.read_len()?;
            }
            op::FREQ => {
                r.byte()?;
            }
            op::MODULE_AUX => return Err(RdbError::Unsupported("module auxiliary data")),
            op::FUNCTION2 | op::FUNCTION_PRE_GA => {
                return Err(RdbError::Unsupported("a function library (functions are not supported yet)"))
            }
            _ => {
                let key = r.string()?;
                let value = r.value(t)?;
                let at = std::mem::take(&mut expire);
                if value.is_empty_collection() {
                    stats.empty_skipped += 1;
                } else if at != 0 && at <= now {
                    stats.expired += 1;
                } else {
                    stats.keys += 1;
                    sink(db, key, value, at);
                }
            }
        }
    }
    if version >= 5 {
        let end = r.pos;
        let expected = u64::from_le_bytes(r.array()?);
        if expected != 0 {
            let got = crc64::checksum(&buf[..end]);
            if got != expected {
                return Err(RdbError::Checksum { expected, got });
            }
        }
    }
    stats.len = r.pos;
    Ok(stats)
}
