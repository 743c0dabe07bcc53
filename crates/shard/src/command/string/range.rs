//! APPEND, STRLEN, GETRANGE/SUBSTR and SETRANGE: byte ranges of a string.

use bytes::Bytes;

use super::{fits, str_value, too_big};
use crate::command::{parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Value};

pub(super) fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let max = ctx.config.proto_max_bulk_len;
    let (key, tail) = (&args[1], &args[2]);
    let db = ctx.db();
    let len = match db.get_str_mut(key, now)? {
        Some(s) => {
            if !fits(s.len() as u64, tail.len() as u64, max) {
                return Err(too_big());
            }
            let v = s.make_mut();
            v.extend_from_slice(tail);
            v.len()
        }
        None => {
            db.insert(key, Entry::new(str_value(tail)));
            tail.len()
        }
    };
    ctx.dirty(1);
    ctx.out.int(len as i64);
    Ok(())
}

pub(super) fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let len = ctx.db().get_str(&args[1], now)?.map_or(0, |s| s.len());
    ctx.out.int(len as i64);
    Ok(())
}

/// The byte range `[start, end]` (inclusive, negative counts from the end)
/// of a string of `len` bytes, clamped as GETRANGE does; `None` if empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 { len.saturating_add(start) } else { start }.max(0);
    let end = if end < 0 { len.saturating_add(end) } else { end }.clamp(0, len - 1);
    (start <= end).then_some((start as usize, end as usize))
}

pub(super) fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let end = parse_i64(&args[3])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let s = db.get_str(&args[1], now)?.map_or(&[][..], |s| &s[..]);
    match clamp_range(start, end, s.len()).and_then(|(a, b)| s.get(a..=b)) {
        Some(part) => out.bulk(part),
        None => out.bulk(b""),
    }
    Ok(())
}

pub(super) fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = parse_i64(&args[2])?;
    if offset < 0 {
        return Err(CmdError::err("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let (key, patch) = (&args[1], &args[3]);
    let now = ctx.now;
    let max = ctx.config.proto_max_bulk_len;
    let db = ctx.db();
    let len = match db.get_str_mut(key, now)? {
        Some(s) if patch.is_empty() => s.len(),
        Some(s) => {
            if !fits(offset, patch.len() as u64, max) {
                return Err(too_big());
            }
            write_at(s.make_mut(), offset as usize, patch)
        }
        // Nothing to write: the key is not created.
        None if patch.is_empty() => 0,
        None => {
            if !fits(offset, patch.len() as u64, max) {
                return Err(too_big());
            }
            let mut v = Vec::new();
            let len = write_at(&mut v, offset as usize, patch);
            db.insert(key, Entry::new(Value::Str(v.into())));
            len
        }
    };
    if !patch.is_empty() {
        ctx.dirty(1);
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// Writes `patch` at `offset`, zero-padding first; returns the new length.
/// The caller has bounded `offset + patch.len()`.
fn write_at(v: &mut Vec<u8>, offset: usize, patch: &[u8]) -> usize {
    let end = offset + patch.len();
    if v.len() < end {
        v.resize(end, 0);
    }
    v[offset..end].copy_from_slice(patch);
    v.len()
}

#[cfg(test)]
mod tests {
    use crate::command::string::tests::put_list;
    use crate::config::Config;
    use crate::test_util::TestServer;

    #[test]
    fn ranges() {
        let mut t = TestServer::new();
        t.cmd("SET r HelloWorld");
        assert_eq!(t.cmd("GETRANGE r 0 4"), "$5\r\nHello\r\n");
        assert_eq!(t.cmd("GETRANGE r -5 -1"), "$5\r\nWorld\r\n");
        assert_eq!(t.cmd("GETRANGE r -1 -5"), "$0\r\n\r\n");
        assert_eq!(t.cmd("GETRANGE r 5 1"), "$0\r\n\r\n");
        assert_eq!(t.cmd("GETRANGE r 0 100"), "$10\r\nHelloWorld\r\n");
        assert_eq!(t.cmd("GETRANGE r -100 -9223372036854775808"), "$0\r\n\r\n");
        assert_eq!(t.cmd("GETRANGE r -100 0"), "$1\r\nH\r\n");
        assert_eq!(t.cmd("SUBSTR nokey 0 1"), "$0\r\n\r\n");
        assert_eq!(t.cmd("GETRANGE r x 1"), "-ERR value is not an integer or out of range\r\n");
    }

    #[test]
    fn setrange_and_append() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("SETRANGE k 3 ab"), ":5\r\n");
        assert_eq!(t.cmd("GET k"), "$5\r\n\0\0\0ab\r\n");
        assert_eq!(t.cmd("SETRANGE k 0 xyzw"), ":5\r\n");
        assert_eq!(t.cmd("GET k"), "$5\r\nxyzwb\r\n");
        assert_eq!(t.cmd("SETRANGE k -1 x"), "-ERR offset is out of range\r\n");
        assert_eq!(
            t.cmd("SETRANGE k 536870912 x"),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
        );
        assert_eq!(
            t.cmd("SETRANGE k 9223372036854775807 x"),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
        );
        assert_eq!(t.cmd_args(&["SETRANGE".into(), "e".into(), "5".into(), "".into()]), ":0\r\n");
        assert_eq!(t.cmd("GET e"), "$-1\r\n");
        assert_eq!(t.cmd("APPEND k 12"), ":7\r\n");
        assert_eq!(t.cmd("APPEND n 12"), ":2\r\n");
        assert_eq!(t.cmd("STRLEN k"), ":7\r\n");
        assert_eq!(t.cmd("STRLEN nokey"), ":0\r\n");
        put_list(&mut t, "l");
        assert!(t.cmd("APPEND l x").starts_with("-WRONGTYPE"));
        assert!(t.cmd("STRLEN l").starts_with("-WRONGTYPE"));
        assert!(t.cmd("GETRANGE l 0 1").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn append_limit() {
        let mut t = TestServer::with_config(Config { proto_max_bulk_len: 4, ..Config::default() });
        assert_eq!(t.cmd("APPEND k abcd"), ":4\r\n");
        assert_eq!(t.cmd("APPEND k e"), "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
        assert_eq!(t.cmd("SETRANGE k 4 e"), "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
        assert_eq!(t.cmd("SETRANGE k 3 e"), ":4\r\n");
    }
}
