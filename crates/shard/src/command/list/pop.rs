//! Taking elements out of lists: LPOP/RPOP, LMOVE/RPOPLPUSH, LMPOP and
//! their blocking forms.
//!
//! A blocking command that finds nothing calls [`Ctx::block`]; when one of
//! its keys is touched it is run again in [`Mode::ServeBlocked`], with
//! [`crate::store::Store::serving_key`] naming the key that got data.
//! Redis 7.0 serves such a client only from that key and only if it now
//! holds a list; anything else (another type, already emptied by an older
//! waiter) leaves the client blocked in its place. The one error a waiter
//! can be woken with is BLMOVE's WRONGTYPE for a destination of another
//! type, as in Redis.

use bytes::Bytes;

use super::{End, List};
use crate::command::{parse_i64, parse_timeout, Ctx, Mode};
use crate::error::{CmdError, CmdResult};

pub(super) fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Left)
}

pub(super) fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Right)
}

fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Arity(if end == End::Left { "lpop" } else { "rpop" }.into()));
    }
    let count = match args.get(2) {
        Some(a) => {
            Some(usize::try_from(parse_i64(a).map_err(|_| CmdError::NotPositive)?).map_err(|_| CmdError::NotPositive)?)
        }
        None => None,
    };
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(list) = db.get_list_mut(&args[1], now)? else {
        match count {
            Some(_) => out.null_array(),
            None => out.null(),
        }
        return Ok(());
    };
    let popped = match count {
        None => {
            // A stored list is never empty.
            if let Some(v) = end.pop(list) {
                out.bulk(&v);
            }
            1
        }
        Some(n) => write_popped(out, list, end, n),
    };
    db.drop_if_empty(&args[1]);
    ctx.dirty(popped as u64);
    Ok(())
}

/// Pops up to `n` elements from `end` into an array reply; returns how
/// many.
fn write_popped(out: &mut slotway_resp::ReplyBuf, list: &mut List, end: End, n: usize) -> usize {
    let n = n.min(list.len());
    out.array(n);
    for _ in 0..n {
        if let Some(v) = end.pop(list) {
            out.bulk(&v);
        }
    }
    n
}

pub(super) fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    if !move_one(ctx, &args[1], &args[2], from, to)? {
        ctx.out.null();
    }
    Ok(())
}

pub(super) fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !move_one(ctx, &args[1], &args[2], End::Right, End::Left)? {
        ctx.out.null();
    }
    Ok(())
}

/// Moves one element from `src` to `dst` and replies with it; false (and
/// no reply) when `src` does not exist. Both types are checked before
/// anything moves.
fn move_one(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> Result<bool, CmdError> {
    let now = ctx.now;
    let (db, out) = ctx.split();
    if db.get_list(src, now)?.is_none() {
        return Ok(false);
    }
    if src == dst {
        // Rotating in place keeps the key (and its TTL) even when the list
        // has a single element.
        if let Some(l) = db.get_list_mut(src, now)? {
            if let Some(v) = from.pop(l) {
                out.bulk(&v);
                to.push(l, v);
            }
        }
    } else {
        db.get_list_mut(dst, now)?;
        let Some(v) = db.get_list_mut(src, now)?.and_then(|l| from.pop(l)) else { return Ok(false) };
        db.drop_if_empty(src);
        out.bulk(&v);
        to.push(db.list_or_new(dst, now)?, v);
    }
    ctx.dirty(1);
    Ok(true)
}

/// LMPOP/BLMPOP arguments from `numkeys` at `at` on: the keys' range in
/// `args`, the end and the count.
fn parse_mpop(args: &[Bytes], at: usize) -> Result<(std::ops::Range<usize>, End, usize), CmdError> {
    let numkeys_err = || CmdError::err("ERR numkeys should be greater than 0");
    let numkeys = parse_i64(&args[at]).map_err(|_| numkeys_err())?;
    if numkeys <= 0 {
        return Err(numkeys_err());
    }
    let room = args.len().saturating_sub(at + 2);
    let numkeys = usize::try_from(numkeys).ok().filter(|&n| n <= room).ok_or(CmdError::Syntax)?;
    let keys = at + 1..at + 1 + numkeys;
    let end = End::parse(&args[keys.end])?;
    let mut count = None;
    let mut i = keys.end + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(v) if count.is_none() && super::is(&args[i], "count") => {
                let n = parse_i64(v)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| CmdError::err("ERR count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok((keys, end, count.unwrap_or(1)))
}

/// Pops up to `count` from the first of `keys` holding a list, replying
/// `[key, [elements]]`; false (no reply) when none does.
fn mpop_from(ctx: &mut Ctx<'_>, keys: &[Bytes], end: End, count: usize) -> Result<bool, CmdError> {
    let now = ctx.now;
    let (db, out) = ctx.split();
    for key in keys {
        if let Some(list) = db.get_list_mut(key, now)? {
            out.array(2);
            out.bulk(key);
            let n = write_popped(out, list, end, count);
            db.drop_if_empty(key);
            ctx.dirty(n as u64);
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 1)?;
    if !mpop_from(ctx, &args[keys], end, count)? {
        ctx.out.null_array();
    }
    Ok(())
}

/// When replayed for a waiter: the key that got data, if it is one of
/// `keys` and now holds a list (the only case Redis 7.0 serves).
fn ready_list_key<'k>(ctx: &mut Ctx<'_>, keys: &'k [Bytes]) -> Option<&'k Bytes> {
    let ready = ctx.store.serving_key()?;
    let key = keys.iter().find(|k| k[..] == *ready)?;
    let now = ctx.now;
    matches!(ctx.db().get_list(key, now), Ok(Some(_))).then_some(key)
}

pub(super) fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, End::Left)
}

pub(super) fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, End::Right)
}

fn bpop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let Some((last, keys)) = args[1..].split_last() else { return Err(CmdError::Syntax) };
    let timeout = parse_timeout(last)?;
    let now = ctx.now;
    let candidates: &[Bytes] = if ctx.mode == Mode::ServeBlocked {
        match ready_list_key(ctx, keys) {
            Some(k) => std::slice::from_ref(k),
            None => return ctx.block(keys, timeout),
        }
    } else {
        keys
    };
    let (db, out) = ctx.split();
    for key in candidates {
        if let Some(v) = db.get_list_mut(key, now)?.and_then(|l| end.pop(l)) {
            db.drop_if_empty(key);
            out.array(2);
            out.bulk(key);
            out.bulk(&v);
            ctx.dirty(1);
            return Ok(());
        }
    }
    ctx.block(keys, timeout)
}

pub(super) fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    let timeout = parse_timeout(&args[5])?;
    bmove(ctx, args, from, to, timeout)
}

pub(super) fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[3])?;
    bmove(ctx, args, End::Right, End::Left, timeout)
}

fn bmove(ctx: &mut Ctx<'_>, args: &[Bytes], from: End, to: End, timeout: Option<std::time::Duration>) -> CmdResult {
    let src = std::slice::from_ref(&args[1]);
    if ctx.mode == Mode::ServeBlocked && ready_list_key(ctx, src).is_none() {
        return ctx.block(src, timeout);
    }
    if move_one(ctx, &args[1], &args[2], from, to)? {
        return Ok(());
    }
    if ctx.mode == Mode::Exec {
        // Unlike the other blocking commands, BLMOVE answers a null bulk
        // string (not a null array) when it may not block.
        ctx.out.null();
        return Ok(());
    }
    ctx.block(src, timeout)
}

pub(super) fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis checks the keys and options before the timeout.
    let (keys, end, count) = parse_mpop(args, 2)?;
    let timeout = parse_timeout(&args[1])?;
    let keys = &args[keys];
    let served = if ctx.mode == Mode::ServeBlocked {
        match ready_list_key(ctx, keys) {
            Some(k) => mpop_from(ctx, std::slice::from_ref(k), end, count)?,
            None => false,
        }
    } else {
        mpop_from(ctx, keys, end, count)?
    };
    if served {
        return Ok(());
    }
    ctx.block(keys, timeout)
}
