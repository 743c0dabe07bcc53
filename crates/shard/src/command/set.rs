//! Set commands: membership, SMOVE, SSCAN here; SPOP/SRANDMEMBER in
//! [`random`], the SINTER/SUNION/SDIFF family in [`algebra`].
//!
//! Reply order: Redis 7.0 keeps a small all-integer set as a sorted
//! intset, so those reply in ascending order ([`set_members`]); any other
//! set is a hashtable in arbitrary order, where insertion order will do.

mod algebra;
mod random;

use bytes::Bytes;

use super::hash::scan;
use super::{Cmd, Ctx};
use crate::error::CmdResult;
use crate::store::value::{is_intset, set_members, IndexSet};
use crate::store::Blob;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "sadd", run: sadd },
    Cmd { name: "srem", run: srem },
    Cmd { name: "smembers", run: smembers },
    Cmd { name: "sismember", run: sismember },
    Cmd { name: "smismember", run: smismember },
    Cmd { name: "scard", run: scard },
    Cmd { name: "smove", run: smove },
    Cmd { name: "sscan", run: sscan },
    Cmd { name: "spop", run: random::spop },
    Cmd { name: "srandmember", run: random::srandmember },
    Cmd { name: "sinter", run: algebra::sinter },
    Cmd { name: "sinterstore", run: algebra::sinterstore },
    Cmd { name: "sintercard", run: algebra::sintercard },
    Cmd { name: "sunion", run: algebra::sunion },
    Cmd { name: "sunionstore", run: algebra::sunionstore },
    Cmd { name: "sdiff", run: algebra::sdiff },
    Cmd { name: "sdiffstore", run: algebra::sdiffstore },
];

/// Writes a whole set as a RESP3 set (array in RESP2), in Redis's order.
fn reply_set(out: &mut slotway_resp::ReplyBuf, s: &IndexSet<Blob>) {
    let members = set_members(s);
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
}

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let s = ctx.db().set_or_new(&args[1], now)?;
    let mut added = 0;
    for m in &args[2..] {
        if !s.contains(&m[..]) {
            s.insert(m[..].into());
            added += 1;
        }
    }
    ctx.dirty(added);
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let Some(s) = db.get_set_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut n = 0;
    for m in &args[2..] {
        n += s.swap_remove(&m[..]) as u64;
    }
    db.drop_if_empty(&args[1]);
    ctx.dirty(n);
    ctx.out.int(n as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    match db.get_set(&args[1], now)? {
        Some(s) => reply_set(out, s),
        None => out.set(0),
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let s = db.get_set(&args[1], now)?;
    out.int(s.is_some_and(|s| s.contains(&args[2][..])) as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let s = db.get_set(&args[1], now)?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        out.int(s.is_some_and(|s| s.contains(&m[..])) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.int(db.get_set(&args[1], now)?.map_or(0, |s| s.len()) as i64);
    Ok(())
}

/// A missing source answers 0 before the destination's type is checked,
/// as in Redis.
fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3][..]);
    let now = ctx.now;
    let db = ctx.db();
    let Some(s) = db.get_set_mut(src, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let present = s.contains(member);
    db.get_set_mut(dst, now)?;
    if src == dst || !present {
        ctx.out.int(present as i64);
        return Ok(());
    }
    if let Some(s) = db.get_set_mut(src, now)? {
        s.swap_remove(member);
    }
    db.drop_if_empty(src);
    db.set_or_new(dst, now)?.insert(member.into());
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = scan::parse_cursor(&args[2])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(s) = db.get_set(&args[1], now)? else {
        scan::reply_head(out, 0, 0);
        return Ok(());
    };
    let opts = scan::parse_opts(&args[3..])?;
    // An intset comes back whole, sorted, with cursor 0.
    let (picked, next): (Vec<&Blob>, u64) = if is_intset(s) {
        (set_members(s).into_iter().filter(|m| opts.matches(m)).collect(), 0)
    } else {
        let (range, next) = scan::window(false, s.len(), cursor, opts.count);
        (s.get_range(range).into_iter().flat_map(|r| r.iter()).filter(|m| opts.matches(m)).collect(), next)
    };
    scan::reply_head(out, next, picked.len());
    for m in picked {
        out.bulk(m);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
