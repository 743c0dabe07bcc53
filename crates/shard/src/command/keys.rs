//! Generic key commands: the ones that work on any type of value.
//!
//! Per-key commands (DEL, EXISTS, RENAME, COPY, MOVE...) live here; expiry
//! in [`expire`], whole-keyspace commands (KEYS, SCAN, FLUSHDB, SWAPDB...)
//! in [`space`], OBJECT in [`object`] and SORT in [`sort`].

mod expire;
mod object;
mod sort;
mod space;

use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;

use bytes::Bytes;

use super::{Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::db::FAR_EXPIRE;
use crate::store::{Db, Value};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "del", run: del },
    Cmd { name: "unlink", run: unlink },
    Cmd { name: "exists", run: exists },
    Cmd { name: "type", run: type_cmd },
    Cmd { name: "touch", run: touch },
    Cmd { name: "rename", run: rename },
    Cmd { name: "renamenx", run: renamenx },
    Cmd { name: "copy", run: copy },
    Cmd { name: "move", run: move_cmd },
    Cmd { name: "expire", run: expire::expire },
    Cmd { name: "pexpire", run: expire::pexpire },
    Cmd { name: "expireat", run: expire::expireat },
    Cmd { name: "pexpireat", run: expire::pexpireat },
    Cmd { name: "ttl", run: expire::ttl },
    Cmd { name: "pttl", run: expire::pttl },
    Cmd { name: "expiretime", run: expire::expiretime },
    Cmd { name: "pexpiretime", run: expire::pexpiretime },
    Cmd { name: "persist", run: expire::persist },
    Cmd { name: "keys", run: space::keys },
    Cmd { name: "scan", run: space::scan },
    Cmd { name: "randomkey", run: space::randomkey },
    Cmd { name: "dbsize", run: space::dbsize },
    Cmd { name: "flushdb", run: space::flushdb },
    Cmd { name: "flushall", run: space::flushall },
    Cmd { name: "swapdb", run: space::swapdb },
    Cmd { name: "object", run: object::object },
    Cmd { name: "sort", run: sort::sort },
    Cmd { name: "sort_ro", run: sort::sort_ro },
];

/// Values with more elements than this are freed on a background thread by
/// UNLINK and FLUSH* ASYNC, as Redis's lazyfree threshold.
const LAZYFREE_THRESHOLD: usize = 64;

type Garbage = Box<dyn Send>;

/// Drops `garbage` on the lazy-free thread, so freeing a huge value never
/// holds the keyspace lock. Falls back to dropping here if the thread is
/// gone.
pub(crate) fn free_later(garbage: Garbage) {
    static TX: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Garbage>();
        std::thread::Builder::new().name("lazyfree".into()).spawn(move || rx.into_iter().for_each(drop)).ok()?;
        Some(tx)
    });
    if let Some(tx) = tx {
        // A failed send hands the value back inside the error; it drops here.
        let _ = tx.send(garbage);
    }
}

fn element_count(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
    }
}

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    delete_keys(ctx, args, false)
}

fn unlink(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    delete_keys(ctx, args, true)
}

fn delete_keys(ctx: &mut Ctx<'_>, args: &[Bytes], lazy: bool) -> CmdResult {
    let now = ctx.now;
    let mut n = 0;
    for k in &args[1..] {
        if let Some(e) = ctx.db().delete(k, now) {
            n += 1;
            if lazy && element_count(&e.value) > LAZYFREE_THRESHOLD {
                free_later(Box::new(e));
            }
        }
    }
    ctx.dirty(n as u64);
    ctx.out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.get_notouch(k, now).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let name = ctx.db().get_notouch(&args[1], now).map_or("none", |e| e.value.kind().name());
    ctx.out.simple(name.as_bytes());
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.get_read(k, now).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let now = ctx.now;
    let db = ctx.db();
    if db.get_write(src, now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if nx && db.get_write(dst, now).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    // The entry moves whole: value, expiry and access time go with it.
    let Some(entry) = db.peek(src).map(|e| e.expire()) else { return Err(CmdError::NoSuchKey) };
    let at = db.exact_expire(src, entry);
    let Some(entry) = db.delete(src, now) else { return Err(CmdError::NoSuchKey) };
    if let Some(old) = db.insert(dst, entry) {
        if element_count(&old.value) > LAZYFREE_THRESHOLD {
            free_later(Box::new(old));
        }
    }
    keep_far_expire(db, dst, at);
    ctx.dirty(1);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// An entry moved or copied whole carries a packed expiry; one too late to
/// pack needs its exact value restored at the destination.
fn keep_far_expire(db: &mut Db, key: &[u8], at: u64) {
    if at >= FAR_EXPIRE {
        db.set_expire(key, at);
    }
}

/// A database index argument (COPY DB, MOVE), with Redis's errors.
fn parse_db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let n = super::parse_i64(arg)?;
    if i32::try_from(n).is_err() {
        return Err(CmdError::err("ERR value is out of range, value must between -2147483648 and 2147483647"));
    }
    usize::try_from(n).ok().filter(|&n| n < ctx.store.dbs.len()).ok_or(CmdError::DbIndex)
}

fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if super::is(&args[i], "replace") {
            replace = true;
        } else if super::is(&args[i], "db") && i + 1 < args.len() {
            dst_db = parse_db_index(ctx, &args[i + 1])?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let (key, newkey) = (&args[1], &args[2]);
    if src_db == dst_db && key == newkey {
        return Err(CmdError::err("ERR source and destination objects are the same"));
    }
    let now = ctx.now;
    if ctx.store.dbs[src_db].get_read(key, now).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    if ctx.store.dbs[dst_db].get_write(newkey, now).is_some() && !replace {
        ctx.out.int(0);
        return Ok(());
    }
    // Cloned only once the copy is sure to happen.
    let src = &ctx.store.dbs[src_db];
    let Some(entry) = src.peek(key).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    let at = src.exact_expire(key, entry.expire());
    let dst = &mut ctx.store.dbs[dst_db];
    // A copy is a new object: its access clock starts now.
    let mut fresh = entry;
    fresh.touch();
    dst.insert(newkey, fresh);
    keep_far_expire(dst, newkey, at);
    ctx.store.touch(dst_db, newkey);
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let src_db = ctx.client.db;
    let dst_db = parse_db_index(ctx, &args[2])?;
    if src_db == dst_db {
        return Err(CmdError::err("ERR source and destination objects are the same"));
    }
    let key = &args[1];
    let now = ctx.now;
    if ctx.store.dbs[src_db].get_write(key, now).is_none() || ctx.store.dbs[dst_db].get_write(key, now).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let src = &mut ctx.store.dbs[src_db];
    let at = src.peek(key).map_or(0, |e| src.exact_expire(key, e.expire()));
    let Some(entry) = src.delete(key, now) else {
        ctx.out.int(0);
        return Ok(());
    };
    ctx.store.dbs[dst_db].insert(key, entry);
    keep_far_expire(&mut ctx.store.dbs[dst_db], key, at);
    ctx.store.touch(dst_db, key);
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn del_exists_type() {
        let mut t = TestServer::new();
        t.cmd("SET a 1");
        t.cmd("SET b 2");
        assert_eq!(t.cmd("EXISTS a a b c"), ":3\r\n");
        assert_eq!(t.cmd("TYPE a"), "+string\r\n");
        assert_eq!(t.cmd("TYPE c"), "+none\r\n");
        assert_eq!(t.cmd("DEL a c a"), ":1\r\n");
        assert_eq!(t.cmd("UNLINK b"), ":1\r\n");
        assert_eq!(t.cmd("EXISTS a b"), ":0\r\n");
        assert_eq!(t.cmd("TOUCH a"), ":0\r\n");
    }

    #[test]
    fn rename_keeps_ttl() {
        let mut t = TestServer::new();
        t.cmd("SET a 1");
        t.cmd("EXPIRE a 100");
        assert_eq!(t.cmd("RENAME a b"), "+OK\r\n");
        assert_eq!(t.cmd("TTL b"), ":100\r\n");
        assert_eq!(t.cmd("EXISTS a"), ":0\r\n");
        assert_eq!(t.cmd("RENAME b b"), "+OK\r\n");
        assert_eq!(t.cmd("RENAMENX b b"), ":0\r\n");
        assert_eq!(t.cmd("RENAME a b"), "-ERR no such key\r\n");
        t.cmd("SET c 3");
        assert_eq!(t.cmd("RENAMENX b c"), ":0\r\n");
        assert_eq!(t.cmd("RENAME b c"), "+OK\r\n");
        assert_eq!(t.cmd("GET c"), "$1\r\n1\r\n");
        assert_eq!(t.cmd("TTL c"), ":100\r\n");
    }

    #[test]
    fn copy_and_move() {
        let mut t = TestServer::new();
        t.cmd("SET a 1");
        t.cmd("PEXPIRE a 100000");
        assert_eq!(t.cmd("COPY a a"), "-ERR source and destination objects are the same\r\n");
        assert_eq!(t.cmd("COPY a b"), ":1\r\n");
        let pttl: i64 = t.cmd("PTTL b").trim_start_matches(':').trim_end().parse().unwrap_or(0);
        assert!((99_000..=100_000).contains(&pttl), "{pttl}");
        assert_eq!(t.cmd("COPY a b"), ":0\r\n");
        assert_eq!(t.cmd("COPY a b REPLACE"), ":1\r\n");
        assert_eq!(t.cmd("COPY a a DB 1"), ":1\r\n");
        assert_eq!(t.cmd("COPY a a DB 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(t.cmd("COPY a a DB x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(t.cmd("COPY a a DB"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("MOVE a 1"), ":0\r\n");
        assert_eq!(t.cmd("MOVE b 1"), ":1\r\n");
        assert_eq!(t.cmd("MOVE b 0"), "-ERR source and destination objects are the same\r\n");
        assert_eq!(t.cmd("MOVE b -1"), "-ERR DB index is out of range\r\n");
        t.cmd("SELECT 1");
        assert_eq!(t.cmd("GET b"), "$1\r\n1\r\n");
        assert_eq!(t.cmd("EXISTS a"), ":1\r\n");
    }
}
