//! String commands: the SET family, the GET family, MGET/MSET, and (in the
//! submodules) counters, ranges and LCS.
//!
//! SET, GET, INCR and MSET are on the benchmarked hot path: the plain forms
//! take the shortest route (no option parsing beyond a length check, one
//! lookup, no allocation beyond storing the value).

mod lcs;
mod numeric;
mod range;

use bytes::Bytes;

use super::{is, parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Value};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "get", run: get },
    Cmd { name: "set", run: set },
    Cmd { name: "setnx", run: setnx },
    Cmd { name: "setex", run: setex },
    Cmd { name: "psetex", run: psetex },
    Cmd { name: "getset", run: getset },
    Cmd { name: "getex", run: getex },
    Cmd { name: "getdel", run: getdel },
    Cmd { name: "mget", run: mget },
    Cmd { name: "mset", run: mset },
    Cmd { name: "msetnx", run: msetnx },
    Cmd { name: "append", run: range::append },
    Cmd { name: "strlen", run: range::strlen },
    Cmd { name: "getrange", run: range::getrange },
    Cmd { name: "substr", run: range::getrange },
    Cmd { name: "setrange", run: range::setrange },
    Cmd { name: "incr", run: numeric::incr },
    Cmd { name: "decr", run: numeric::decr },
    Cmd { name: "incrby", run: numeric::incrby },
    Cmd { name: "decrby", run: numeric::decrby },
    Cmd { name: "incrbyfloat", run: numeric::incrbyfloat },
    Cmd { name: "lcs", run: lcs::lcs },
];

/// The error of every command that would grow a string past
/// `proto-max-bulk-len` (APPEND, SETRANGE).
pub(crate) fn too_big() -> CmdError {
    CmdError::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// Whether a string of `len + extra` bytes stays within `max`; checked before
/// anything is allocated, and safe against overflow.
pub(crate) fn fits(len: u64, extra: u64, max: i64) -> bool {
    len.checked_add(extra).is_some_and(|total| total <= max.max(0) as u64)
}

fn str_value(v: &[u8]) -> Value {
    Value::Str(v.into())
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.bulk_opt(db.get_str(&args[1], now)?.map(|v| &v[..]));
    Ok(())
}

/// Which expiry option was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// The options of SET and GETEX as parsed, before the expiry is converted.
#[derive(Default)]
struct Opts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses SET's (`for_set`) or GETEX's options with Redis's conflict rules:
/// NX/XX exclude each other, KEEPTTL and PERSIST exclude any expiry, and
/// the expiry kinds exclude each other (repeating the same one is allowed,
/// the last wins).
fn parse_opts(args: &[Bytes], for_set: bool) -> Result<Opts<'_>, CmdError> {
    let mut o = Opts::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let next = args.get(i + 1);
        let kind = if is(arg, "ex") {
            Some(ExpireKind::Ex)
        } else if is(arg, "px") {
            Some(ExpireKind::Px)
        } else if is(arg, "exat") {
            Some(ExpireKind::ExAt)
        } else if is(arg, "pxat") {
            Some(ExpireKind::PxAt)
        } else {
            None
        };
        if let Some(kind) = kind {
            let clash = o.keepttl || o.persist || o.expire.is_some_and(|(k, _)| k != kind);
            match next {
                Some(v) if !clash => {
                    o.expire = Some((kind, &v[..]));
                    i += 2;
                    continue;
                }
                _ => return Err(CmdError::Syntax),
            }
        }
        if for_set && is(arg, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(arg, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(arg, "get") {
            o.get = true;
        } else if for_set && is(arg, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(arg, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// Converts an expiry argument to absolute unix ms, with Redis's checks:
/// positive, no overflow when scaled or made absolute.
fn expire_at(kind: ExpireKind, arg: &[u8], now: u64, cmd: &str) -> Result<u64, CmdError> {
    let v = parse_i64(arg)?;
    let invalid = || CmdError::InvalidExpire(cmd.to_string());
    if v <= 0 {
        return Err(invalid());
    }
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::ExAt => v.checked_mul(1000).ok_or_else(invalid)?,
        ExpireKind::Px | ExpireKind::PxAt => v,
    };
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now as i64).ok_or_else(invalid)?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    Ok(ms as u64)
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        ctx.db().insert(&args[1], Entry::new(str_value(&args[2])));
        ctx.dirty(1);
        ctx.out.ok();
        return Ok(());
    }
    let o = parse_opts(&args[3..], true)?;
    let expire = match o.expire {
        Some((kind, arg)) => expire_at(kind, arg, ctx.now, "set")?,
        None => 0,
    };
    set_generic(ctx, &args[1], &args[2], &o, expire)
}

/// SET after option parsing (SETEX and PSETEX come here too).
fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], val: &[u8], o: &Opts<'_>, expire: u64) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    if o.get {
        // Type error first: a failed GET sets nothing.
        out.bulk_opt(db.get_str(key, now)?.map(|v| &v[..]));
    }
    let old = db.get_mut(key, now);
    let found = old.is_some();
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            out.null();
        }
        return Ok(());
    }
    match old {
        Some(e) if o.keepttl => e.value = str_value(val),
        _ => {
            db.insert(key, Entry::new(str_value(val)));
            if expire != 0 {
                // Through the Db so that expiries beyond the packed range
                // stay exact.
                db.set_expire(key, expire);
            }
        }
    }
    ctx.dirty(1);
    if !o.get {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let added = !ctx.db().contains(&args[1], now);
    if added {
        ctx.db().insert(&args[1], Entry::new(str_value(&args[2])));
        ctx.dirty(1);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let expire = expire_at(ExpireKind::Ex, &args[2], ctx.now, "setex")?;
    set_generic(ctx, &args[1], &args[3], &Opts::default(), expire)
}

fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let expire = expire_at(ExpireKind::Px, &args[2], ctx.now, "psetex")?;
    set_generic(ctx, &args[1], &args[3], &Opts::default(), expire)
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.bulk_opt(db.get_str(&args[1], now)?.map(|v| &v[..]));
    db.insert(&args[1], Entry::new(str_value(&args[2])));
    ctx.dirty(1);
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let o = parse_opts(&args[2..], false)?;
    let key = &args[1];
    let (db, out) = ctx.split();
    let Some(v) = db.get_str(key, now)? else {
        out.null();
        return Ok(());
    };
    // Redis converts the expiry only once it has the value: a missing or
    // mistyped key wins over an invalid time.
    let expire = match o.expire {
        Some((kind, arg)) => Some(expire_at(kind, arg, now, "getex")?),
        None => None,
    };
    out.bulk(v);
    match expire {
        // An absolute time already past deletes the key, as Redis does.
        Some(at) if at <= now => {
            db.remove(key);
            ctx.dirty(1);
        }
        Some(at) => {
            db.set_expire(key, at);
            ctx.dirty(1);
        }
        None if o.persist && db.peek(key).is_some_and(|e| e.expire() != 0) => {
            db.set_expire(key, 0);
            ctx.dirty(1);
        }
        None => {}
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(v) = db.get_str(&args[1], now)? else {
        out.null();
        return Ok(());
    };
    out.bulk(v);
    db.remove(&args[1]);
    ctx.dirty(1);
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.array(args.len() - 1);
    for key in &args[1..] {
        // A key of another type reads as missing, not as an error.
        out.bulk_opt(db.get_str(key, now).ok().flatten().map(|v| &v[..]));
    }
    Ok(())
}

fn check_pairs(args: &[Bytes], name: &str) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(name.to_string()));
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_pairs(args, "mset")?;
    let db = ctx.db();
    for pair in args[1..].chunks_exact(2) {
        db.insert(&pair[0], Entry::new(str_value(&pair[1])));
    }
    ctx.dirty((args.len() / 2) as u64);
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_pairs(args, "msetnx")?;
    let now = ctx.now;
    let db = ctx.db();
    if args[1..].chunks_exact(2).any(|pair| db.contains(&pair[0], now)) {
        ctx.out.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks_exact(2) {
        db.insert(&pair[0], Entry::new(str_value(&pair[1])));
    }
    ctx.dirty((args.len() / 2) as u64);
    ctx.out.int(1);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::store::{Entry, Value};
    use crate::test_util::TestServer;

    /// Stores a list under `key`, for WRONGTYPE cases (the list commands
    /// are another family's).
    pub(crate) fn put_list(t: &mut TestServer, key: &str) {
        let list = Value::List([b"x"[..].into()].into_iter().collect());
        t.shared.store.lock().dbs[0].insert(key.as_bytes(), Entry::new(list));
    }

    fn ttl_ms(t: &mut TestServer, key: &str) -> u64 {
        let store = t.shared.store.lock();
        store.dbs[0].peek(key.as_bytes()).map_or(0, |e| store.dbs[0].exact_expire(key.as_bytes(), e.expire()))
    }

    #[test]
    fn set_options() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("SET k v NX"), "+OK\r\n");
        assert_eq!(t.cmd("SET k w NX"), "$-1\r\n");
        assert_eq!(t.cmd("SET k w NX GET"), "$1\r\nv\r\n");
        assert_eq!(t.cmd("SET nope w XX"), "$-1\r\n");
        assert_eq!(t.cmd("SET nope w XX GET"), "$-1\r\n");
        assert_eq!(t.cmd("SET k w XX GET"), "$1\r\nv\r\n");
        assert_eq!(t.cmd("SET k v NX XX"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SET k v EX 10 PX 10"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SET k v EX 10 EX 20"), "+OK\r\n");
        assert_eq!(t.cmd("SET k v EX"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SET k v PERSIST"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SET k v EX 0"), "-ERR invalid expire time in 'set' command\r\n");
        assert_eq!(t.cmd("SET k v PX 9223372036854775807"), "-ERR invalid expire time in 'set' command\r\n");
        assert_eq!(t.cmd("SET k v EX x"), "-ERR value is not an integer or out of range\r\n");
    }

    #[test]
    fn set_expiry_and_keepttl() {
        let mut t = TestServer::new();
        t.cmd("SET k v EX 100");
        let at = ttl_ms(&mut t, "k");
        assert!(at > 0);
        t.cmd("SET k v2 KEEPTTL");
        assert_eq!(ttl_ms(&mut t, "k"), at);
        t.cmd("SET k v3");
        assert_eq!(ttl_ms(&mut t, "k"), 0);
        t.cmd("SET k v PXAT 99999999999999");
        assert_eq!(ttl_ms(&mut t, "k"), 99999999999999);
        t.cmd("SET k v EXAT 1");
        assert_eq!(t.cmd("GET k"), "$-1\r\n");
        assert_eq!(t.cmd("SETEX k 100 v"), "+OK\r\n");
        assert!(ttl_ms(&mut t, "k") > 0);
        assert_eq!(t.cmd("SETEX k -5 v"), "-ERR invalid expire time in 'setex' command\r\n");
        assert_eq!(t.cmd("PSETEX k 0 v"), "-ERR invalid expire time in 'psetex' command\r\n");
    }

    #[test]
    fn getex_and_getdel() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("GETEX k"), "$-1\r\n");
        assert_eq!(t.cmd("GETEX k EX 0"), "$-1\r\n");
        assert_eq!(t.cmd("GETEX k BOGUS"), "-ERR syntax error\r\n");
        t.cmd("SET k v");
        assert_eq!(t.cmd("GETEX k EX 100"), "$1\r\nv\r\n");
        assert!(ttl_ms(&mut t, "k") > 0);
        assert_eq!(t.cmd("GETEX k PERSIST"), "$1\r\nv\r\n");
        assert_eq!(ttl_ms(&mut t, "k"), 0);
        assert_eq!(t.cmd("GETEX k PERSIST EX 1"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("GETEX k KEEPTTL"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("GETEX k EX 0"), "-ERR invalid expire time in 'getex' command\r\n");
        assert_eq!(t.cmd("GETEX k PXAT 1"), "$1\r\nv\r\n");
        assert_eq!(t.cmd("GET k"), "$-1\r\n");
        t.cmd("SET k v");
        assert_eq!(t.cmd("GETDEL k"), "$1\r\nv\r\n");
        assert_eq!(t.cmd("GETDEL k"), "$-1\r\n");
        put_list(&mut t, "h");
        assert!(t.cmd("GETDEL h").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn multi_key() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("MSET a 1 b 2"), "+OK\r\n");
        assert_eq!(t.cmd("MSET a 1 b"), "-ERR wrong number of arguments for 'mset' command\r\n");
        assert_eq!(t.cmd("MGET a b c"), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
        assert_eq!(t.cmd("MSETNX a 9 c 9"), ":0\r\n");
        assert_eq!(t.cmd("MSETNX c 3 d 4"), ":1\r\n");
        assert_eq!(t.cmd("GETSET c x"), "$1\r\n3\r\n");
        assert_eq!(t.cmd("SETNX c y"), ":0\r\n");
        assert_eq!(t.cmd("SETNX e y"), ":1\r\n");
    }

    #[test]
    fn which_error_wins() {
        // Expected replies taken from redis-server 7.0.15.
        let mut t = TestServer::new();
        put_list(&mut t, "wl");
        t.cmd("SET k abc");
        for (cmd, want) in [
            ("GET wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SET wl v GET", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SET wl v NX GET", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SET wl v XX GET", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETEX wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETEX wl PERSIST", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETEX wl EX 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETDEL wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("MGET wl k", "*2\r\n$-1\r\n$3\r\nabc\r\n"),
            ("APPEND wl x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("STRLEN wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETRANGE wl 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETRANGE wl x 1", "-ERR value is not an integer or out of range\r\n"),
            ("SUBSTR wl 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SETRANGE wl 0 x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SETRANGE wl -1 x", "-ERR offset is out of range\r\n"),
            ("INCR wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("DECR wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("INCRBY wl 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("INCRBY wl x", "-ERR value is not an integer or out of range\r\n"),
            ("DECRBY wl 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("INCRBYFLOAT wl 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("INCRBYFLOAT wl x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("LCS wl k", "-ERR The specified keys must contain string values\r\n"),
            ("LCS k wl BOGUS", "-ERR The specified keys must contain string values\r\n"),
            ("SETNX wl x", ":0\r\n"),
            ("MSETNX wl x", ":0\r\n"),
            ("GETSET wl v", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SET wl v EX 0 GET", "-ERR invalid expire time in 'set' command\r\n"),
        ] {
            assert_eq!(t.cmd(cmd), want, "{cmd}");
        }
    }
}
