//! The RDB file format of Redis 7.0 (RDB version 10): what a snapshot, a
//! DUMP payload and (later) a full resync carry.
//!
//! A file is `REDIS0010`, auxiliary fields, then per database a SELECTDB
//! and RESIZEDB opcode followed by its keys (each optionally preceded by an
//! expiry), then EOF and a CRC-64 of everything before it. [`encode`]
//! writes that from a [`crate::store::Store`]; [`decode`] reads everything
//! Redis 7.0 writes (and the compact encodings of older versions) back into
//! values, refusing what this server cannot hold (streams, module data,
//! functions) with an error that says so.

pub mod decode;
pub mod encode;

pub use decode::{load, read_payload, Loaded};
pub use encode::{dump_payload, write_rdb, write_rdb_with, Options};

use thiserror::Error;

/// The version we write, and the newest a DUMP payload may carry.
pub const RDB_VERSION: u16 = 10;

/// Opcodes that may stand where a value's type byte would.
pub mod op {
    pub const FUNCTION_PRE_GA: u8 = 0xf5;
    pub const FUNCTION2: u8 = 0xf6;
    pub const MODULE_AUX: u8 = 0xf7;
    pub const IDLE: u8 = 0xf8;
    pub const FREQ: u8 = 0xf9;
    pub const AUX: u8 = 0xfa;
    pub const RESIZEDB: u8 = 0xfb;
    pub const EXPIRETIME_MS: u8 = 0xfc;
    pub const EXPIRETIME: u8 = 0xfd;
    pub const SELECTDB: u8 = 0xfe;
    pub const EOF: u8 = 0xff;
}

/// Value types.
pub mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Why an RDB file or payload could not be read.
#[derive(Debug, Error)]
pub enum RdbError {
    #[error("Short read or OOM loading DB. Unrecoverable error, aborting now.")]
    Short,
    #[error("Wrong signature trying to load DB from file")]
    Signature,
    #[error("Can't handle RDB format version {0}")]
    Version(u32),
    #[error("Wrong RDB checksum expected: ({expected:x}) got ({got:x}). Aborting now.")]
    Checksum { expected: u64, got: u64 },
    #[error("Internal error in RDB reading: {0}")]
    Corrupt(&'static str),
    #[error("FATAL: Data file was created with a Redis server configured to handle more than {0} databases. Exiting")]
    DbIndex(usize),
    /// Data this server cannot hold; loading stops rather than drop it.
    #[error("The RDB file holds {0}, which this server does not support; refusing to load it rather than drop data")]
    Unsupported(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests;
