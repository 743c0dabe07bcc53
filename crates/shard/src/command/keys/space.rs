//! Whole-keyspace commands: KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB,
//! FLUSHALL, SWAPDB.

use bytes::Bytes;

use crate::command::{glob_match, is, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::Db;

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let (db, out) = ctx.split();
    let found: Vec<&[u8]> = db.iter(now).map(|(k, _)| k).filter(|k| all || glob_match(pattern, k, false)).collect();
    out.array(found.len());
    for k in found {
        out.bulk(k);
    }
    Ok(())
}

/// A SCAN cursor as `strtoul` reads it: an optional sign, digits, nothing
/// after; a negative one wraps around as in C.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul consumed nothing: fine only if there was nothing at all.
        return arg.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1]).ok_or_else(|| CmdError::err("ERR invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(&args[i], "count") && has_value {
            let n = parse_i64(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(&args[i], "match") && has_value {
            pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else if is(&args[i], "type") && has_value {
            type_name = Some(&args[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let (db, out) = ctx.split();
    let (next, found) = db.scan(cursor, count, now, |k, e| {
        pattern.is_none_or(|p| glob_match(p, k, false))
            && type_name.is_none_or(|t| t.eq_ignore_ascii_case(e.value.kind().name().as_bytes()))
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len());
    for k in &found {
        out.bulk(k);
    }
    Ok(())
}

pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    match ctx.db().random_key(now) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let n = ctx.db().len();
    ctx.out.int(n as i64);
    Ok(())
}

/// FLUSHDB/FLUSHALL's optional SYNC|ASYNC; true for ASYNC.
fn flush_async(args: &[Bytes]) -> Result<bool, CmdError> {
    match args {
        [_] => Ok(false),
        [_, mode] if is(mode, "sync") => Ok(false),
        [_, mode] if is(mode, "async") => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// Empties `db`; a big one is freed off the keyspace lock when asked.
fn empty(db: &mut Db, lazy: bool) -> usize {
    let n = db.len();
    let old = db.take();
    if lazy && n > super::LAZYFREE_THRESHOLD {
        super::free_later(Box::new(old));
    }
    n
}

pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lazy = flush_async(args)?;
    // Before the clear: only watched keys that exist abort their EXEC.
    let db = ctx.client.db;
    ctx.store.touch_all(Some(db));
    let n = empty(ctx.db(), lazy);
    ctx.dirty(n as u64);
    ctx.out.ok();
    Ok(())
}

pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lazy = flush_async(args)?;
    ctx.store.touch_all(None);
    let n: usize = ctx.store.dbs.iter_mut().map(|db| empty(db, lazy)).sum();
    ctx.dirty(n as u64);
    // As Redis: a running BGSAVE is stopped, and with save rules the empty
    // dataset is saved at once.
    crate::persist::snapshot::after_flushall(ctx.shared, ctx.store, ctx.config);
    // One more for the command itself, as Redis counts it.
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let index = |arg: &[u8], msg: &str| {
        let n = parse_i64(arg).ok().filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| CmdError::err(msg))?;
        usize::try_from(n).ok().filter(|&n| n < ctx.store.dbs.len()).ok_or(CmdError::DbIndex)
    };
    let a = index(&args[1], "ERR invalid first DB index");
    let b = index(&args[2], "ERR invalid second DB index");
    // Both indexes parse before either is range-checked, as in Redis.
    let (a, b) = match (a, b) {
        (Err(e @ CmdError::Other(_)), _) | (_, Err(e @ CmdError::Other(_))) => return Err(e),
        (a, b) => (a?, b?),
    };
    // Before the swap: a watched key that exists on either side changes.
    ctx.store.touch_swap(a, b);
    ctx.store.dbs.swap(a, b);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;
    use crate::test_util::TestServer;

    #[test]
    fn cursor_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"99999999999999999999999"), None);
    }

    #[test]
    fn scan_filters_and_walks_everything() {
        let mut t = TestServer::new();
        for i in 0..300 {
            t.cmd(&format!("SET key:{i} v"));
        }
        t.cmd("SET other v");
        let (mut cursor, mut seen) = ("0".to_string(), 0);
        loop {
            let r = t.cmd(&format!("SCAN {cursor} MATCH key:* COUNT 20 TYPE string"));
            let lines: Vec<&str> = r.split("\r\n").collect();
            cursor = lines[2].to_string();
            seen += lines.iter().filter(|l| l.starts_with("key:")).count();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, 300);
        assert_eq!(t.cmd("SCAN 0 TYPE list COUNT 1000"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(t.cmd("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SCAN 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SCAN x"), "-ERR invalid cursor\r\n");
        assert_eq!(t.cmd("DBSIZE"), ":301\r\n");
    }

    #[test]
    fn flush_and_swap() {
        let mut t = TestServer::new();
        t.cmd("SET a 1");
        assert_eq!(t.cmd("FLUSHDB SYNC ASYNC"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("FLUSHDB foo"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SWAPDB 0 1"), "+OK\r\n");
        assert_eq!(t.cmd("DBSIZE"), ":0\r\n");
        assert_eq!(t.cmd("RANDOMKEY"), "$-1\r\n");
        assert_eq!(t.cmd("SWAPDB 1 0"), "+OK\r\n");
        assert_eq!(t.cmd("RANDOMKEY"), "$1\r\na\r\n");
        assert_eq!(t.cmd("SWAPDB x 99"), "-ERR invalid first DB index\r\n");
        assert_eq!(t.cmd("SWAPDB 99 x"), "-ERR invalid second DB index\r\n");
        assert_eq!(t.cmd("SWAPDB 0 99"), "-ERR DB index is out of range\r\n");
        assert_eq!(t.cmd("FLUSHDB ASYNC"), "+OK\r\n");
        assert_eq!(t.cmd("DBSIZE"), ":0\r\n");
        t.cmd("SET a 1");
        t.cmd("SELECT 3");
        t.cmd("SET b 1");
        assert_eq!(t.cmd("FLUSHALL"), "+OK\r\n");
        assert_eq!(t.cmd("DBSIZE"), ":0\r\n");
        t.cmd("SELECT 0");
        assert_eq!(t.cmd("KEYS *"), "*0\r\n");
    }

    #[test]
    fn keyspace_wide_commands_invalidate_watchers() {
        let mut t = TestServer::new();
        let id = t.client.handle.id;
        for cmd in ["SWAPDB 0 1", "SWAPDB 1 0", "FLUSHDB", "FLUSHALL"] {
            // Only a watched key that exists is changed by these, as in Redis.
            t.cmd("SET k v");
            t.shared.store.lock().watch(id, 0, b"k", crate::server::unix_ms());
            assert_eq!(t.cmd(cmd), "+OK\r\n");
            assert!(
                t.shared.store.lock().is_dirty_cas(id, &[], crate::server::unix_ms()),
                "{cmd} left the watcher alone"
            );
            t.shared.store.lock().unwatch(id, &[(0, b"k"[..].into())]);
        }
        // MOVE and COPY ... DB touch the key in the target database too.
        t.cmd("SET k v");
        t.shared.store.lock().watch(id, 1, b"k", crate::server::unix_ms());
        assert_eq!(t.cmd("COPY k k DB 1"), ":1\r\n");
        assert!(t.shared.store.lock().is_dirty_cas(id, &[], crate::server::unix_ms()));
        t.shared.store.lock().unwatch(id, &[(1, b"k"[..].into())]);
        t.cmd("SELECT 1");
        t.cmd("DEL k");
        t.cmd("SELECT 0");
        t.shared.store.lock().watch(id, 1, b"k", crate::server::unix_ms());
        assert_eq!(t.cmd("MOVE k 1"), ":1\r\n");
        assert!(t.shared.store.lock().is_dirty_cas(id, &[], crate::server::unix_ms()));
    }
}
