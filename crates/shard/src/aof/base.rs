//! The base file of an AOF rewrite: the keyspace at one instant, in one of
//! Redis 7.0's two formats ([`BaseFormat`]). With `aof-use-rdb-preamble
//! yes` (the default) it is an RDB image (`<name>.<seq>.base.rdb`, the
//! `aof-base` aux field set); with `no` it is the commands that rebuild the
//! keyspace (`.base.aof`). The loader tells the two apart by their first
//! bytes (`REDIS`), as Redis does, not by the name.
//!
//! The command format: per database with keys `SELECT n`, then per live
//! key one command per up to 64 elements (RPUSH, SADD, HMSET, ZADD; SET
//! for strings) and a `PEXPIREAT` for a key with a TTL.

use std::io::{self, Write};

use bytes::Bytes;

use crate::propagate::encode_command;
use crate::store::{Store, Value};

/// Elements per command, as Redis's rewrite batches them.
const ITEMS_PER_CMD: usize = 64;

/// What a base file holds, and so the suffix of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseFormat {
    Commands,
    Rdb,
}

impl BaseFormat {
    /// The format `aof-use-rdb-preamble` asks for.
    pub fn configured(cfg: &crate::config::Config) -> BaseFormat {
        if cfg.flag("aof-use-rdb-preamble") {
            BaseFormat::Rdb
        } else {
            BaseFormat::Commands
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            BaseFormat::Commands => "aof",
            BaseFormat::Rdb => "rdb",
        }
    }
}

/// Writes the base in `format`; `rdb` carries the RDB options (the
/// `aof-base` flag is set here).
pub fn write_base_as(
    format: BaseFormat,
    store: &Store,
    now: u64,
    rdb: &crate::persist::rdb::Options,
    w: &mut impl Write,
) -> io::Result<()> {
    match format {
        BaseFormat::Commands => write_base(store, now, w),
        BaseFormat::Rdb => {
            let opts = crate::persist::rdb::Options { aof_base: true, ..rdb.clone() };
            crate::persist::rdb::write_rdb_with(store, w, &opts)
        }
    }
}

/// Writes every live key of `store` (as of `now`) into `w`.
pub fn write_base(store: &Store, now: u64, w: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for (n, db) in store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let num = n.to_string();
        encode_command(&[b"SELECT".as_slice(), num.as_bytes()], &mut buf);
        for (key, entry) in db.iter(now) {
            write_value(key, &entry.value, &mut buf);
            let at = db.exact_expire(key, entry.expire());
            if at != 0 {
                let at = at.to_string();
                encode_command(&[b"PEXPIREAT".as_slice(), key, at.as_bytes()], &mut buf);
            }
            if buf.len() >= 64 * 1024 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    w.write_all(&buf)
}

fn write_value(key: &[u8], value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => encode_command(&[b"SET".as_slice(), key, s], out),
        Value::List(l) => batched(b"RPUSH", key, l.iter().map(|e| vec![Bytes::copy_from_slice(e)]), out),
        Value::Set(s) => batched(b"SADD", key, s.iter().map(|e| vec![Bytes::copy_from_slice(e)]), out),
        Value::Hash(h) => batched(
            b"HMSET",
            key,
            h.iter().map(|(f, v)| vec![Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)]),
            out,
        ),
        Value::ZSet(z) => batched(
            b"ZADD",
            key,
            z.iter().map(|(m, score)| vec![Bytes::from(fmt_score(score)), Bytes::copy_from_slice(m)]),
            out,
        ),
    }
}

/// `cmd key item...` with at most [`ITEMS_PER_CMD`] items per command.
fn batched(cmd: &'static [u8], key: &[u8], items: impl Iterator<Item = Vec<Bytes>>, out: &mut Vec<u8>) {
    let mut argv: Vec<Bytes> = Vec::new();
    let mut n = 0;
    let head = |argv: &mut Vec<Bytes>| {
        argv.clear();
        argv.push(Bytes::from_static(cmd));
        argv.push(Bytes::copy_from_slice(key));
    };
    head(&mut argv);
    for item in items {
        argv.extend(item);
        n += 1;
        if n == ITEMS_PER_CMD {
            encode_command(&argv, out);
            head(&mut argv);
            n = 0;
        }
    }
    if n > 0 {
        encode_command(&argv, out);
    }
}

/// A score that reads back as the same double (shortest round trip).
fn fmt_score(s: f64) -> String {
    if s == f64::INFINITY {
        "inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{s}")
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn base_rebuilds_every_type_and_ttl() {
        let mut t = TestServer::new();
        t.cmd("SET s v");
        t.cmd("PEXPIREAT s 99999999999000");
        t.cmd("RPUSH l a b c");
        t.cmd("SADD st x y");
        t.cmd("HSET h f1 v1 f2 v2");
        t.cmd("ZADD z 1.5 a -inf b 3 c");
        t.cmd("SELECT 2");
        t.cmd("SET other 1");
        let mut out = Vec::new();
        super::write_base(&t.shared.store.lock(), crate::server::unix_ms(), &mut out).unwrap();
        let mut fresh = TestServer::new();
        for cmd in crate::aof::load::parse_all(&out).unwrap() {
            fresh.cmd_args(&cmd);
        }
        fresh.cmd("SELECT 0");
        t.cmd("SELECT 0");
        for c in ["GET s", "PTTL s", "LRANGE l 0 -1", "SMEMBERS st", "HGETALL h", "ZRANGE z 0 -1 WITHSCORES"] {
            assert_eq!(fresh.cmd(c), t.cmd(c), "{c}");
        }
        fresh.cmd("SELECT 2");
        assert_eq!(fresh.cmd("GET other"), "$1\r\n1\r\n");
    }

    #[test]
    fn long_collections_are_batched() {
        let mut t = TestServer::new();
        let members: Vec<String> = (0..150).map(|i| i.to_string()).collect();
        t.cmd(&format!("SADD big {}", members.join(" ")));
        let mut out = Vec::new();
        super::write_base(&t.shared.store.lock(), crate::server::unix_ms(), &mut out).unwrap();
        let cmds = crate::aof::load::parse_all(&out).unwrap();
        // SELECT, then 64 + 64 + 22 members.
        assert_eq!(cmds.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 66, 66, 24]);
    }
}
