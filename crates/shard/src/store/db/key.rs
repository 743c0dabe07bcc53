//! A stored key: short keys live inside the table entry itself.
//!
//! A lookup compares the probed entry's key with the requested one. With
//! the key on the heap that comparison is a second cache miss after the
//! table's own; keys of up to [`INLINE`] bytes (nearly all real keys) are
//! kept in the entry, so the probe touches one cache line.

use super::super::Blob;

/// Longest key kept inline: tag + length + bytes fill 24 bytes, the size
/// of a heap key's `Box<[u8]>` rounded to the entry's alignment.
pub const INLINE: usize = 22;

#[derive(Debug, Clone)]
pub enum Key {
    Inline(u8, [u8; INLINE]),
    Heap(Blob),
}

impl Key {
    pub fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..key.len()].copy_from_slice(key);
            Key::Inline(key.len() as u8, buf)
        } else {
            Key::Heap(key.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(n, buf) => buf.get(..usize::from(*n)).unwrap_or_default(),
            Key::Heap(b) => b,
        }
    }

    /// Whether this is `key`: lengths first, so most mismatches cost no
    /// byte comparison.
    #[inline]
    pub fn is(&self, key: &[u8]) -> bool {
        match self {
            Key::Inline(n, buf) => usize::from(*n) == key.len() && buf.get(..key.len()) == Some(key),
            Key::Heap(b) => **b == *key,
        }
    }

    pub fn to_blob(&self) -> Blob {
        match self {
            Key::Inline(..) => self.as_bytes().into(),
            Key::Heap(b) => b.clone(),
        }
    }

    /// The key as a `Blob`, reusing a heap key's allocation.
    pub fn into_blob(self) -> Blob {
        match self {
            Key::Inline(..) => self.as_bytes().into(),
            Key::Heap(b) => b,
        }
    }

    pub fn take(&mut self) -> Blob {
        std::mem::replace(self, Key::Inline(0, [0; INLINE])).into_blob()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_24_bytes_and_compares_by_content() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let short = Key::new(b"key:000000012345");
        assert!(matches!(short, Key::Inline(..)));
        assert!(short.is(b"key:000000012345"));
        assert!(!short.is(b"key:000000012346"));
        assert!(!short.is(b"key:00000001234"));
        let long = Key::new(&[b'x'; 40]);
        assert!(matches!(long, Key::Heap(_)));
        assert!(long.is(&[b'x'; 40]));
        assert_eq!(&*long.to_blob(), &[b'x'; 40][..]);
        assert_eq!(Key::new(b"").as_bytes(), b"");
        assert_eq!(Key::new(&[7; INLINE]).as_bytes(), &[7; INLINE][..]);
    }
}
