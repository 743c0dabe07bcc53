//! Hash commands: HSET & co., HINCRBY/HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! Redis 7.0 keeps a small hash (at most 128 fields, none longer than 64
//! bytes) as a listpack, which answers in insertion order and keeps that
//! order when a field is deleted. The `IndexMap` reproduces it as long as
//! small hashes delete with `shift_remove`; bigger ones are hashtables in
//! Redis, whose order is arbitrary, so the O(1) `swap_remove` is fine there.

mod random;
pub(crate) mod scan;

use bytes::Bytes;

use super::{parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::long_double::LongDouble;
use crate::store::value::{IndexMap, COMPACT_VALUE_BYTES, HASH_COMPACT_ENTRIES};
use crate::store::Blob;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "hset", run: hset },
    Cmd { name: "hmset", run: hset },
    Cmd { name: "hsetnx", run: hsetnx },
    Cmd { name: "hget", run: hget },
    Cmd { name: "hmget", run: hmget },
    Cmd { name: "hdel", run: hdel },
    Cmd { name: "hlen", run: hlen },
    Cmd { name: "hstrlen", run: hstrlen },
    Cmd { name: "hexists", run: hexists },
    Cmd { name: "hkeys", run: hkeys },
    Cmd { name: "hvals", run: hvals },
    Cmd { name: "hgetall", run: hgetall },
    Cmd { name: "hincrby", run: hincrby },
    Cmd { name: "hincrbyfloat", run: hincrbyfloat },
    Cmd { name: "hrandfield", run: random::hrandfield },
    Cmd { name: "hscan", run: scan::hscan },
];

/// Whether Redis would still hold this hash as a listpack (insertion order).
pub(crate) fn is_compact(h: &IndexMap<Blob, Blob>) -> bool {
    h.len() <= HASH_COMPACT_ENTRIES
        && h.iter().all(|(k, v)| k.len() <= COMPACT_VALUE_BYTES && v.len() <= COMPACT_VALUE_BYTES)
}

/// Removes a field, keeping the order of the rest where Redis would.
fn remove_field(h: &mut IndexMap<Blob, Blob>, field: &[u8]) -> bool {
    if h.len() <= HASH_COMPACT_ENTRIES {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

/// Sets a field; an existing field keeps its position, as in a listpack.
fn set_field(h: &mut IndexMap<Blob, Blob>, field: &[u8], value: &[u8]) -> bool {
    match h.get_mut(field) {
        Some(v) => {
            *v = value.into();
            false
        }
        None => {
            h.insert(field.into(), value.into());
            true
        }
    }
}

/// HSET and HMSET: same work, HMSET answers OK instead of a count.
fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        let name = if super::is(&args[0], "hmset") { "hmset" } else { "hset" };
        return Err(CmdError::Arity(name.into()));
    }
    let now = ctx.now;
    let h = ctx.db().hash_or_new(&args[1], now)?;
    let mut added = 0;
    for pair in args[2..].chunks_exact(2) {
        added += set_field(h, &pair[0], &pair[1]) as i64;
    }
    ctx.dirty(((args.len() - 2) / 2) as u64);
    if super::is(&args[0], "hmset") {
        ctx.out.ok();
    } else {
        ctx.out.int(added);
    }
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let h = ctx.db().hash_or_new(&args[1], now)?;
    let added = !h.contains_key(&args[2][..]);
    if added {
        h.insert(args[2][..].into(), args[3][..].into());
        ctx.dirty(1);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let h = db.get_hash(&args[1], now)?;
    out.bulk_opt(h.and_then(|h| h.get(&args[2][..])).map(|v| &v[..]));
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let h = db.get_hash(&args[1], now)?;
    out.array(args.len() - 2);
    for f in &args[2..] {
        out.bulk_opt(h.and_then(|h| h.get(&f[..])).map(|v| &v[..]));
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let Some(h) = db.get_hash_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut n = 0;
    for f in &args[2..] {
        n += remove_field(h, f) as i64;
        if h.is_empty() {
            break;
        }
    }
    db.drop_if_empty(&args[1]);
    ctx.dirty(n as u64);
    ctx.out.int(n);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.int(db.get_hash(&args[1], now)?.map_or(0, |h| h.len()) as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let h = db.get_hash(&args[1], now)?;
    out.int(h.and_then(|h| h.get(&args[2][..])).map_or(0, |v| v.len()) as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let h = db.get_hash(&args[1], now)?;
    out.int(h.is_some_and(|h| h.contains_key(&args[2][..])) as i64);
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, true, false)
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, false, true)
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    getall(ctx, args, true, true)
}

/// HKEYS, HVALS and HGETALL; only HGETALL is a map in RESP3.
fn getall(ctx: &mut Ctx<'_>, args: &[Bytes], keys: bool, vals: bool) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let h = db.get_hash(&args[1], now)?;
    let n = h.map_or(0, |h| h.len());
    if keys && vals {
        out.map(n);
    } else {
        out.array(n);
    }
    for (k, v) in h.into_iter().flatten() {
        if keys {
            out.bulk(k);
        }
        if vals {
            out.bulk(v);
        }
    }
    Ok(())
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let incr = parse_i64(&args[3])?;
    let now = ctx.now;
    let db = ctx.db();
    let h = db.hash_or_new(&args[1], now)?;
    let old = match h.get(&args[2][..]) {
        Some(v) => match slotway_resp::request::parse_int(v) {
            Some(n) => n,
            None => return Err(CmdError::err("ERR hash value is not an integer")),
        },
        None => 0,
    };
    let Some(new) = old.checked_add(incr) else {
        db.drop_if_empty(&args[1]);
        return Err(CmdError::Overflow);
    };
    set_field(h, &args[2], new.to_string().as_bytes());
    ctx.dirty(1);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let incr = LongDouble::parse(&args[3]).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::err("ERR value is NaN or Infinity"));
    }
    let now = ctx.now;
    let db = ctx.db();
    let h = db.hash_or_new(&args[1], now)?;
    let old = match h.get(&args[2][..]) {
        Some(v) => match LongDouble::parse(v) {
            Some(n) => n,
            None => return Err(CmdError::err("ERR hash value is not a float")),
        },
        None => LongDouble::ZERO,
    };
    let Some(new) = old.add(&incr) else {
        db.drop_if_empty(&args[1]);
        return Err(CmdError::err("ERR increment would produce NaN or Infinity"));
    };
    let text = new.to_human();
    set_field(h, &args[2], text.as_bytes());
    ctx.dirty(1);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
