//! INCR, DECR, INCRBY, DECRBY and INCRBYFLOAT. A counter is updated in
//! place, keeping the key's TTL; INCR formats into a stack buffer and reuses
//! the value's allocation.

use bytes::Bytes;
use slotway_resp::reply::fmt_i64;

use crate::command::{parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::long_double::LongDouble;
use crate::store::{Entry, Value};

pub(super) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

pub(super) fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

pub(super) fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = parse_i64(&args[2])?;
    incr_by(ctx, &args[1], by)
}

pub(super) fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = parse_i64(&args[2])?;
    let by = by.checked_neg().ok_or_else(|| CmdError::err("ERR decrement would overflow"))?;
    incr_by(ctx, &args[1], by)
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let now = ctx.now;
    let mut buf = [0u8; 20];
    let db = ctx.db();
    let n = match db.get_str_mut(key, now)? {
        Some(s) => {
            let n = parse_i64(s)?.checked_add(by).ok_or(CmdError::Overflow)?;
            s.set(fmt_i64(&mut buf, n));
            n
        }
        None => {
            db.insert(key, Entry::new(Value::Str(fmt_i64(&mut buf, by).into())));
            by
        }
    };
    ctx.dirty(1);
    ctx.out.int(n);
    Ok(())
}

pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let key = &args[1];
    let db = ctx.db();
    let old = db.get_str_mut(key, now)?;
    let base = match &old {
        Some(s) => LongDouble::parse(s).ok_or(CmdError::NotFloat)?,
        None => LongDouble::ZERO,
    };
    let incr = LongDouble::parse(&args[2]).ok_or(CmdError::NotFloat)?;
    let sum = base.add(&incr).ok_or_else(|| CmdError::err("ERR increment would produce NaN or Infinity"))?;
    let text = sum.to_human();
    match old {
        Some(s) => {
            s.set(text.as_bytes());
        }
        None => {
            db.insert(key, Entry::new(Value::Str(text.as_bytes().into())));
        }
    }
    ctx.dirty(1);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::command::string::tests::put_list;
    use crate::test_util::TestServer;

    #[test]
    fn counters() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("INCR n"), ":1\r\n");
        assert_eq!(t.cmd("INCRBY n 10"), ":11\r\n");
        assert_eq!(t.cmd("DECRBY n 20"), ":-9\r\n");
        assert_eq!(t.cmd("DECR n"), ":-10\r\n");
        assert_eq!(t.cmd("GET n"), "$3\r\n-10\r\n");
        assert_eq!(t.cmd("DECRBY n -9223372036854775808"), "-ERR decrement would overflow\r\n");
        t.cmd("SET m 9223372036854775807");
        assert_eq!(t.cmd("INCR m"), "-ERR increment or decrement would overflow\r\n");
        t.cmd("SET m -9223372036854775808");
        assert_eq!(t.cmd("DECR m"), "-ERR increment or decrement would overflow\r\n");
        t.cmd("SET m 007");
        assert_eq!(t.cmd("INCR m"), "-ERR value is not an integer or out of range\r\n");
        t.cmd("SET m abc");
        assert_eq!(t.cmd("INCRBY m x"), "-ERR value is not an integer or out of range\r\n");
        put_list(&mut t, "l");
        assert!(t.cmd("INCR l").starts_with("-WRONGTYPE"));
        assert!(t.cmd("INCRBYFLOAT l 1").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn counter_keeps_ttl() {
        let mut t = TestServer::new();
        t.cmd("SET n 5 EX 100");
        t.cmd("INCR n");
        t.cmd("INCRBYFLOAT n 1.5");
        let store = t.shared.store.lock();
        assert!(store.dbs[0].peek(b"n").is_some_and(|e| e.expire() > 0));
    }

    #[test]
    fn floats() {
        let mut t = TestServer::new();
        t.cmd("SET f 10.5");
        assert_eq!(t.cmd("INCRBYFLOAT f 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT f -5"), "$3\r\n5.6\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g 1e3"), "$4\r\n1000\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g -1000"), "$1\r\n0\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g 0x10"), "$2\r\n16\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g inf"), "-ERR increment would produce NaN or Infinity\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g nan"), "-ERR value is not a valid float\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g 1e-5000"), "-ERR value is not a valid float\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g 1e"), "-ERR value is not a valid float\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT g 1.5e4932"), "-ERR value is not a valid float\r\n");
        assert_eq!(t.cmd("GET g"), "$2\r\n16\r\n");
    }
}
