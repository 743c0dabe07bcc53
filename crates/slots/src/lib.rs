//! Which hash slot a key lives in, and which arguments of a command are keys.
//!
//! Both the proxy and the shard route through this crate so that they always
//! agree: [`key_slot`] maps a key to one of [`SLOTS`] slots (CRC16/XMODEM of
//! the key, or of its hash tag, modulo 16384), and [`commands`] describes
//! every Redis 7.0 command: arity, flags and where its keys sit.

pub mod commands;
mod table;

/// The number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The part of `key` that is hashed: the contents of the first `{...}` when
/// that is non-empty, otherwise the whole key. Exactly Redis's rule: the
/// first `{`, then the first `}` after it.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b"name"), 5798);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    #[test]
    fn hash_tag_rule() {
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{a"), b"}{a");
    }
}
