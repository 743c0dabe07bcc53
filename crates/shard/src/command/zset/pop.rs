//! ZPOPMIN/ZPOPMAX, ZMPOP and their blocking forms. The blocking ones pop
//! at once when they can and otherwise park the client with
//! [`Ctx::block`]; a replay (`Mode::ServeBlocked`) runs the same code.

use bytes::Bytes;

use super::super::{is, parse_i64, parse_timeout, Ctx, Mode};
use crate::error::{CmdError, CmdResult};

/// Popped (member, score) pairs, in pop order.
type Popped = Vec<(Box<[u8]>, f64)>;

/// Pops up to `count` members from one end of the set at `key`.
fn pop_from(ctx: &mut Ctx<'_>, key: &[u8], max: bool, count: usize) -> Result<Popped, CmdError> {
    let now = ctx.now;
    let Some(z) = ctx.db().get_zset_mut(key, now)? else { return Ok(Vec::new()) };
    let n = count.min(z.len());
    let (lo, hi) = if max { (z.len() - n, z.len()) } else { (0, n) };
    let popped: Vec<_> = if max {
        z.range(lo, hi).rev().map(|(m, s)| (m.clone(), s)).collect()
    } else {
        z.range(lo, hi).map(|(m, s)| (m.clone(), s)).collect()
    };
    z.remove_range(lo, hi);
    ctx.db().drop_if_empty(key);
    ctx.dirty(popped.len() as u64);
    Ok(popped)
}

/// The first key holding a non-empty sorted set; WRONGTYPE for a key of
/// another type met before it.
fn first_nonempty<'a>(ctx: &mut Ctx<'_>, keys: &'a [Bytes]) -> Result<Option<&'a Bytes>, CmdError> {
    let now = ctx.now;
    // A replay for a blocked client skips keys that now hold another type:
    // like Redis, the client stays blocked instead of getting an error.
    let replay = ctx.mode == Mode::ServeBlocked;
    for k in keys {
        match ctx.db().get_zset(k, now) {
            Ok(Some(_)) => return Ok(Some(k)),
            Ok(None) => {}
            Err(_) if replay => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => Some(parse_i64(a).ok().filter(|c| *c >= 0).ok_or(CmdError::NotPositive)?),
    };
    let now = ctx.now;
    ctx.db().get_zset(&args[1], now)?;
    if count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let popped = pop_from(ctx, &args[1], max, n)?;
    // RESP3 nests the pairs only when a count was given.
    let nested = ctx.out.is_resp3() && count.is_some();
    ctx.out.array(if nested { popped.len() } else { popped.len() * 2 });
    for (m, s) in &popped {
        if nested {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
    Ok(())
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, true)
}

fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let keys = &args[1..args.len() - 1];
    let timeout = parse_timeout(&args[args.len() - 1])?;
    let Some(key) = first_nonempty(ctx, keys)? else { return ctx.block(keys, timeout) };
    let popped = pop_from(ctx, key, max, 1)?;
    let Some((m, s)) = popped.first() else { return ctx.block(keys, timeout) };
    ctx.out.array(3);
    ctx.out.bulk(key);
    ctx.out.bulk(m);
    ctx.out.double(*s);
    Ok(())
}

pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, false)
}

pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, true)
}

/// ZMPOP's arguments from `numkeys` on: (keys, max?, count).
fn parse_mpop(args: &[Bytes]) -> Result<(&[Bytes], bool, usize), CmdError> {
    let numkeys_err = || CmdError::err("ERR numkeys should be greater than 0");
    let numkeys = parse_i64(&args[0]).map_err(|_| numkeys_err())?;
    if numkeys < 1 {
        return Err(numkeys_err());
    }
    let numkeys = usize::try_from(numkeys).map_err(|_| numkeys_err())?;
    let keys = args.get(1..numkeys.saturating_add(1)).ok_or(CmdError::Syntax)?;
    let rest = &args[numkeys + 1..];
    let max = match rest.first() {
        Some(w) if is(w, "min") => false,
        Some(w) if is(w, "max") => true,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = None;
    let mut j = 1;
    while let Some(a) = rest.get(j) {
        match rest.get(j + 1) {
            Some(v) if count.is_none() && is(a, "count") => {
                let c = parse_i64(v).ok().filter(|c| *c > 0);
                count = Some(c.ok_or_else(|| CmdError::err("ERR count should be greater than 0"))?);
                j += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok((keys, max, count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX))))
}

/// `[key, [[member, score], ...]]`, in RESP2 as well.
fn reply_mpop(ctx: &mut Ctx<'_>, key: &[u8], popped: &[(Box<[u8]>, f64)]) {
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.array(popped.len());
    for (m, s) in popped {
        ctx.out.array(2);
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
}

pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(&args[1..])?;
    match first_nonempty(ctx, keys)? {
        Some(key) => {
            let popped = pop_from(ctx, key, max, count)?;
            reply_mpop(ctx, key, &popped);
        }
        None => ctx.out.null_array(),
    }
    Ok(())
}

pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis checks numkeys and the options before the timeout.
    let (keys, max, count) = parse_mpop(&args[2..])?;
    let timeout = parse_timeout(&args[1])?;
    let Some(key) = first_nonempty(ctx, keys)? else { return ctx.block(keys, timeout) };
    let popped = pop_from(ctx, key, max, count)?;
    if popped.is_empty() {
        return ctx.block(keys, timeout);
    }
    reply_mpop(ctx, key, &popped);
    Ok(())
}
