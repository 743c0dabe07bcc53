//! The value types a key can hold.

use std::collections::VecDeque;

use hashbrown::DefaultHashBuilder;

use super::zset::ZSet;

/// An owned byte string: keys, list elements, hash fields and set members.
/// A boxed slice rather than a `Vec` because these are never grown in
/// place, and the missing capacity word is 8 bytes per element saved.
pub type Blob = Box<[u8]>;

pub type IndexMap<K, V> = indexmap::IndexMap<K, V, DefaultHashBuilder>;
pub type IndexSet<K> = indexmap::IndexSet<K, DefaultHashBuilder>;

/// Listpack-sized limits: below them Redis reports the compact encoding and
/// keeps insertion order, which our ordered containers reproduce.
pub const LIST_COMPACT_ENTRIES: usize = 128;
pub const HASH_COMPACT_ENTRIES: usize = 512;
pub const COMPACT_VALUE_BYTES: usize = 64;
pub const SET_INTSET_ENTRIES: usize = 512;
pub const ZSET_COMPACT_ENTRIES: usize = 128;

/// A string value. Read it as a byte slice (`Deref`); change it in place
/// through [`Str::make_mut`] or replace it with [`Str::set`]. The
/// representation is private so that it can change without touching the
/// commands.
///
/// Short values (counters, flags, small tokens) are kept inline: reading
/// one costs no pointer chase after the key's lookup, and writing one no
/// allocation. The inline form fits beside `Vec`'s capacity niche, so a
/// `Str` stays 24 bytes and an [`super::Entry`] 40.
#[derive(Debug, Clone)]
pub struct Str(Repr);

/// Longest value kept inline.
const INLINE: usize = 15;

#[derive(Debug, Clone)]
enum Repr {
    Heap(Vec<u8>),
    Inline(u8, [u8; INLINE]),
}

impl Str {
    fn inline(b: &[u8]) -> Option<Str> {
        let mut buf = [0; INLINE];
        buf.get_mut(..b.len())?.copy_from_slice(b);
        Some(Str(Repr::Inline(b.len() as u8, buf)))
    }

    /// The bytes as a growable buffer (APPEND, SETRANGE, SETBIT). An inline
    /// value moves to the heap first: a value that is grown in place tends
    /// to keep growing.
    pub fn make_mut(&mut self) -> &mut Vec<u8> {
        if let Repr::Inline(..) = self.0 {
            self.0 = Repr::Heap(self.to_vec());
        }
        match &mut self.0 {
            Repr::Heap(v) => v,
            Repr::Inline(..) => unreachable!("moved to the heap above"),
        }
    }

    /// Replaces the bytes (INCR and friends), reusing a heap buffer.
    pub fn set(&mut self, b: &[u8]) {
        match &mut self.0 {
            Repr::Heap(v) => {
                v.clear();
                v.extend_from_slice(b);
            }
            Repr::Inline(..) => *self = Str::from(b),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Heap(v) => v,
            Repr::Inline(..) => self.to_vec(),
        }
    }
}

impl Default for Str {
    fn default() -> Str {
        Str(Repr::Inline(0, [0; INLINE]))
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        **self == **other
    }
}

impl Eq for Str {}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Heap(v) => v,
            Repr::Inline(n, buf) => buf.get(..usize::from(*n)).unwrap_or_default(),
        }
    }
}

impl From<&[u8]> for Str {
    fn from(b: &[u8]) -> Str {
        Str::inline(b).unwrap_or_else(|| Str(Repr::Heap(b.to_vec())))
    }
}

impl From<Vec<u8>> for Str {
    fn from(v: Vec<u8>) -> Str {
        Str::inline(&v).unwrap_or(Str(Repr::Heap(v)))
    }
}

#[derive(Debug, Clone)]
pub enum Value {
    Str(Str),
    List(VecDeque<Blob>),
    /// Insertion-ordered: small Redis hashes reply in insertion order.
    Hash(Box<IndexMap<Blob, Blob>>),
    Set(Box<IndexSet<Blob>>),
    ZSet(Box<ZSet>),
}

/// The type names TYPE prints and SCAN TYPE filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
    Hash,
    Set,
    ZSet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Kind> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => Kind::String,
            b"list" => Kind::List,
            b"hash" => Kind::Hash,
            b"set" => Kind::Set,
            b"zset" => Kind::ZSet,
            _ => return None,
        })
    }
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    pub fn new_hash() -> Value {
        Value::Hash(Box::default())
    }

    pub fn new_set() -> Value {
        Value::Set(Box::default())
    }

    pub fn new_zset() -> Value {
        Value::ZSet(Box::default())
    }

    /// An empty collection is never stored: the key is deleted instead.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    /// What OBJECT ENCODING reports; derived from the contents the way Redis
    /// 7.0 would have chosen the encoding.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && slotway_resp::request::parse_int(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Redis 7.0 always reports quicklist for lists (listpack lists
            // came with 7.2).
            Value::List(_) => "quicklist",
            Value::Hash(h) => {
                if h.len() <= HASH_COMPACT_ENTRIES
                    && h.iter().all(|(k, v)| k.len() <= COMPACT_VALUE_BYTES && v.len() <= COMPACT_VALUE_BYTES)
                {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Value::Set(s) => {
                if is_intset(s) {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            Value::ZSet(z) => {
                if z.len() <= ZSET_COMPACT_ENTRIES && z.iter().all(|(m, _)| m.len() <= COMPACT_VALUE_BYTES) {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
        }
    }
}

/// Redis keeps small all-integer sets as a sorted intset, and replies in
/// that sorted order; callers that list members use this to match.
pub fn is_intset(s: &IndexSet<Blob>) -> bool {
    s.len() <= SET_INTSET_ENTRIES && s.iter().all(|m| slotway_resp::request::parse_int(m).is_some())
}

/// Set members in the order Redis would list them.
pub fn set_members(s: &IndexSet<Blob>) -> Vec<&Blob> {
    let mut v: Vec<&Blob> = s.iter().collect();
    if is_intset(s) {
        v.sort_by_key(|m| slotway_resp::request::parse_int(m).unwrap_or(0));
    }
    v
}
