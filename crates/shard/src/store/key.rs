//! The name a key is stored under in its database's table.
//!
//! Most keys are short (`user:1000`, `session:ab12...`), and a lookup that
//! has to follow a pointer to compare the key's bytes pays a cache miss
//! for it. A [`Key`] of up to [`INLINE`] bytes therefore lives inside the
//! table's bucket, in the same cache line as the entry it names; longer
//! keys are boxed.

use super::Blob;

/// Longest key kept inline: what fits beside the length byte and the
/// enum's tag in 24 bytes, the size of the boxed form.
pub const INLINE: usize = 22;

/// A stored key. Read it as a byte slice (`Deref`).
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline(u8, [u8; INLINE]),
    Heap(Blob),
}

impl Key {
    /// The key as an owned boxed slice, for the queues that carry deleted
    /// keys on (expired, evicted).
    pub fn into_blob(self) -> Blob {
        match self.0 {
            Repr::Heap(b) => b,
            Repr::Inline(..) => Blob::from(&*self),
        }
    }
}

impl Default for Key {
    fn default() -> Key {
        Key(Repr::Inline(0, [0; INLINE]))
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(n, buf) => buf.get(..usize::from(*n)).unwrap_or_default(),
            Repr::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        let mut buf = [0; INLINE];
        match buf.get_mut(..b.len()) {
            Some(head) => {
                head.copy_from_slice(b);
                Key(Repr::Inline(b.len() as u8, buf))
            }
            None => Key(Repr::Heap(b.into())),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_three_words() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }

    #[test]
    fn short_and_long_keys_round_trip() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::from(&bytes[..]);
            assert_eq!(&*key, &bytes[..]);
            assert_eq!(matches!(key.0, Repr::Inline(..)), len <= INLINE, "len {len}");
            assert_eq!(&*key.clone().into_blob(), &bytes[..]);
        }
    }
}
