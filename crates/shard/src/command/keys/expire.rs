//! Expiry commands: EXPIRE & co. with NX/XX/GT/LT, TTL & co., PERSIST.

use bytes::Bytes;

use crate::command::{is, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
}

pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    set_expire(ctx, args, now, Unit::Seconds, "expire")
}

pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    set_expire(ctx, args, now, Unit::Millis, "pexpire")
}

pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_expire(ctx, args, 0, Unit::Seconds, "expireat")
}

pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_expire(ctx, args, 0, Unit::Millis, "pexpireat")
}

#[derive(Default)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_flags(args: &[Bytes]) -> Result<Flags, CmdError> {
    let mut f = Flags::default();
    for a in args {
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "gt") {
            f.gt = true;
        } else if is(a, "lt") {
            f.lt = true;
        } else {
            return Err(CmdError::err(format!("ERR Unsupported option {}", String::from_utf8_lossy(a))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(CmdError::err("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// The shared body of the four EXPIRE commands. `base` is the time the
/// argument is relative to (0 for the *AT forms).
fn set_expire(ctx: &mut Ctx<'_>, args: &[Bytes], base: u64, unit: Unit, name: &str) -> CmdResult {
    let flags = parse_flags(&args[3..])?;
    let invalid = || CmdError::InvalidExpire(name.to_string());
    let mut when = parse_i64(&args[2])?;
    if let Unit::Seconds = unit {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base = i64::try_from(base).map_err(|_| invalid())?;
    let when = when.checked_add(base).ok_or_else(invalid)?;
    let now = ctx.now;
    let db = ctx.db();
    let Some(packed) = db.get_write(&args[1], now).map(|e| e.expire()) else {
        ctx.out.int(0);
        return Ok(());
    };
    // No expiry counts as an infinite one for GT and LT.
    let current = match db.exact_expire(&args[1], packed) {
        0 => None,
        at => Some(i64::try_from(at).unwrap_or(i64::MAX)),
    };
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|c| when <= c))
        || (flags.lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= now as i64 {
        db.delete(&args[1], now);
    } else {
        db.set_expire(&args[1], when as u64);
    }
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

/// What TTL & co. report: relative or absolute, in seconds or ms.
fn report_ttl(ctx: &mut Ctx<'_>, args: &[Bytes], millis: bool, absolute: bool) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let reply = match db.get_notouch(&args[1], now).map(|e| e.expire()) {
        None => -2,
        Some(0) => -1,
        Some(packed) => {
            let at = db.exact_expire(&args[1], packed);
            let v = if absolute { at } else { at.saturating_sub(now) };
            // Seconds round to nearest, as Redis does (absolute ones too).
            let v = if millis { v } else { v.saturating_add(500) / 1000 };
            i64::try_from(v).unwrap_or(i64::MAX)
        }
    };
    ctx.out.int(reply);
    Ok(())
}

pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    report_ttl(ctx, args, false, false)
}

pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    report_ttl(ctx, args, true, false)
}

pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    report_ttl(ctx, args, false, true)
}

pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    report_ttl(ctx, args, true, true)
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let had = db.get_write(&args[1], now).is_some_and(|e| e.expire() != 0);
    if had {
        db.set_expire(&args[1], 0);
        ctx.dirty(1);
    }
    ctx.out.int(had as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn expire_flags() {
        let mut t = TestServer::new();
        t.cmd("SET k v");
        assert_eq!(t.cmd("TTL k"), ":-1\r\n");
        assert_eq!(t.cmd("TTL nokey"), ":-2\r\n");
        assert_eq!(t.cmd("EXPIRE k 100 XX"), ":0\r\n");
        assert_eq!(t.cmd("EXPIRE k 100 GT"), ":0\r\n");
        assert_eq!(t.cmd("EXPIRE k 100 LT"), ":1\r\n");
        assert_eq!(t.cmd("EXPIRE k 200 NX"), ":0\r\n");
        assert_eq!(t.cmd("EXPIRE k 50 GT"), ":0\r\n");
        assert_eq!(t.cmd("EXPIRE k 500 GT"), ":1\r\n");
        assert_eq!(t.cmd("TTL k"), ":500\r\n");
        assert_eq!(t.cmd("EXPIRE k 600 LT"), ":0\r\n");
        assert_eq!(
            t.cmd("EXPIRE k 1 NX LT"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(t.cmd("EXPIRE k 1 GT LT"), "-ERR GT and LT options at the same time are not compatible\r\n");
        assert_eq!(t.cmd("EXPIRE k 1 XY"), "-ERR Unsupported option XY\r\n");
        assert_eq!(t.cmd("EXPIRE k x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(t.cmd("EXPIRE k 9223372036854775807"), "-ERR invalid expire time in 'expire' command\r\n");
        assert_eq!(t.cmd("PEXPIRE k 9223372036854775807"), "-ERR invalid expire time in 'pexpire' command\r\n");
        assert_eq!(t.cmd("PERSIST k"), ":1\r\n");
        assert_eq!(t.cmd("PERSIST k"), ":0\r\n");
        assert_eq!(t.cmd("EXPIREAT k 4102444800"), ":1\r\n");
        assert_eq!(t.cmd("EXPIRETIME k"), ":4102444800\r\n");
        assert_eq!(t.cmd("PEXPIRETIME k"), ":4102444800000\r\n");
        assert_eq!(t.cmd("EXPIRE k -1"), ":1\r\n");
        assert_eq!(t.cmd("EXISTS k"), ":0\r\n");
        assert_eq!(t.cmd("EXPIRE k 10"), ":0\r\n");
    }

    #[test]
    fn expiries_after_2109_stay_exact() {
        let mut t = TestServer::new();
        t.cmd("SET k v");
        assert_eq!(t.cmd("PEXPIREAT k 9223372036854775807"), ":1\r\n");
        assert_eq!(t.cmd("PEXPIRETIME k"), ":9223372036854775807\r\n");
        assert_eq!(t.cmd("PEXPIREAT k 9223372036854775806 GT"), ":0\r\n");
        assert_eq!(t.cmd("PEXPIREAT k 9223372036854775000 LT"), ":1\r\n");
        assert_eq!(t.cmd("RENAME k k2"), "+OK\r\n");
        assert_eq!(t.cmd("PEXPIRETIME k2"), ":9223372036854775000\r\n");
        assert_eq!(t.cmd("COPY k2 k3"), ":1\r\n");
        assert_eq!(t.cmd("EXPIRETIME k3"), ":9223372036854775\r\n");
        assert_eq!(t.cmd("MOVE k3 1"), ":1\r\n");
        t.cmd("SELECT 1");
        assert_eq!(t.cmd("PEXPIRETIME k3"), ":9223372036854775000\r\n");
        t.cmd("SELECT 0");
        assert_eq!(t.cmd("PEXPIREAT k2 4102444800000"), ":1\r\n");
        assert_eq!(t.cmd("PEXPIRETIME k2"), ":4102444800000\r\n");
        assert_eq!(t.cmd("PEXPIREAT k2 9223372036854775807"), ":1\r\n");
        assert_eq!(t.cmd("DEL k2"), ":1\r\n");
        t.cmd("SET k2 v");
        t.cmd("PEXPIREAT k2 5000000000000");
        assert_eq!(t.cmd("PEXPIRETIME k2"), ":5000000000000\r\n");
        assert_eq!(t.cmd("PERSIST k2"), ":1\r\n");
        assert_eq!(t.cmd("PEXPIRETIME k2"), ":-1\r\n");
    }

    #[test]
    fn short_ttl_expires_lazily() {
        let mut t = TestServer::new();
        t.cmd("SET k v");
        assert_eq!(t.cmd("PEXPIRE k 20"), ":1\r\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while t.cmd("EXISTS k") != ":0\r\n" {
            assert!(std::time::Instant::now() < deadline, "key never expired");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(t.cmd("GET k"), "$-1\r\n");
        assert_eq!(t.cmd("KEYS *"), "*0\r\n");
        assert_eq!(t.cmd("TTL k"), ":-2\r\n");
    }
}
