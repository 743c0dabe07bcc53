//! Sorted-set commands (Redis 7.0): single-member commands live here;
//! ranges, set operations and pops in the submodules.

mod num;
mod pop;
mod range;
mod setops;

use bytes::Bytes;
use rand::Rng;
use slotway_resp::ReplyBuf;

use super::{glob_match, is, parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::value::{COMPACT_VALUE_BYTES, ZSET_COMPACT_ENTRIES};
use crate::store::zset::ZSet;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "zadd", run: zadd },
    Cmd { name: "zincrby", run: zincrby },
    Cmd { name: "zrem", run: zrem },
    Cmd { name: "zcard", run: zcard },
    Cmd { name: "zscore", run: zscore },
    Cmd { name: "zmscore", run: zmscore },
    Cmd { name: "zrank", run: zrank },
    Cmd { name: "zrevrank", run: zrevrank },
    Cmd { name: "zscan", run: zscan },
    Cmd { name: "zrandmember", run: zrandmember },
    Cmd { name: "zcount", run: range::zcount },
    Cmd { name: "zlexcount", run: range::zlexcount },
    Cmd { name: "zrange", run: range::zrange },
    Cmd { name: "zrangestore", run: range::zrangestore },
    Cmd { name: "zrangebyscore", run: range::zrangebyscore },
    Cmd { name: "zrevrangebyscore", run: range::zrevrangebyscore },
    Cmd { name: "zrangebylex", run: range::zrangebylex },
    Cmd { name: "zrevrangebylex", run: range::zrevrangebylex },
    Cmd { name: "zrevrange", run: range::zrevrange },
    Cmd { name: "zremrangebyrank", run: range::zremrangebyrank },
    Cmd { name: "zremrangebyscore", run: range::zremrangebyscore },
    Cmd { name: "zremrangebylex", run: range::zremrangebylex },
    Cmd { name: "zpopmin", run: pop::zpopmin },
    Cmd { name: "zpopmax", run: pop::zpopmax },
    Cmd { name: "bzpopmin", run: pop::bzpopmin },
    Cmd { name: "bzpopmax", run: pop::bzpopmax },
    Cmd { name: "zmpop", run: pop::zmpop },
    Cmd { name: "bzmpop", run: pop::bzmpop },
    Cmd { name: "zunion", run: setops::zunion },
    Cmd { name: "zinter", run: setops::zinter },
    Cmd { name: "zdiff", run: setops::zdiff },
    Cmd { name: "zunionstore", run: setops::zunionstore },
    Cmd { name: "zinterstore", run: setops::zinterstore },
    Cmd { name: "zdiffstore", run: setops::zdiffstore },
    Cmd { name: "zintercard", run: setops::zintercard },
];

const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

/// Writes members, optionally with scores: flat pairs in RESP2, one
/// `[member, score]` array per member in RESP3, as Redis 7.0 does.
pub(super) fn reply_members<'a>(
    out: &mut ReplyBuf,
    n: usize,
    withscores: bool,
    items: impl Iterator<Item = (&'a [u8], f64)>,
) {
    let nested = withscores && out.is_resp3();
    out.array(if withscores && !nested { n * 2 } else { n });
    for (m, s) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    }
}

/// Redis keeps small sets as a listpack, which stores an integral score as
/// an integer and so loses the sign of -0; big sets keep it.
fn stored_score(z: &ZSet, member: &[u8], score: f64) -> f64 {
    let len_after = z.len() + usize::from(!z.contains(member));
    if score == 0.0 && len_after <= ZSET_COMPACT_ENTRIES && member.len() <= COMPACT_VALUE_BYTES {
        0.0
    } else {
        score
    }
}

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one ZADD element did.
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    Nop,
}

fn add_one(z: &mut ZSet, f: &AddFlags, score: f64, member: &[u8]) -> Result<Added, CmdError> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(Added::Nop);
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(CmdError::err(NAN_SCORE));
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return Ok(Added::Nop);
            }
            if new != cur {
                z.insert(member, stored_score(z, member, new));
                Ok(Added::Updated(new))
            } else {
                Ok(Added::Same(new))
            }
        }
        None => {
            if f.xx {
                return Ok(Added::Nop);
            }
            z.insert(member, stored_score(z, member, score));
            Ok(Added::New(score))
        }
    }
}

fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let flag = if is(a, "nx") {
            &mut f.nx
        } else if is(a, "xx") {
            &mut f.xx
        } else if is(a, "gt") {
            &mut f.gt
        } else if is(a, "lt") {
            &mut f.lt
        } else if is(a, "ch") {
            &mut f.ch
        } else if is(a, "incr") {
            &mut f.incr
        } else {
            break;
        };
        *flag = true;
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err("ERR XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && pairs.len() > 2 {
        return Err(CmdError::err("ERR INCR option supports a single increment-element pair"));
    }
    let scores = pairs.chunks_exact(2).map(|p| num::score_or_err(&p[0])).collect::<Result<Vec<f64>, _>>()?;
    let (now, key) = (ctx.now, &args[1]);
    let exists = ctx.db().get_zset(key, now)?.is_some();
    let (mut added, mut updated, mut last) = (0i64, 0i64, None);
    if exists || !f.xx {
        let z = ctx.db().zset_or_new(key, now)?;
        for (p, &score) in pairs.chunks_exact(2).zip(&scores) {
            match add_one(z, &f, score, &p[1]) {
                Ok(Added::New(s)) => (added, last) = (added + 1, Some(s)),
                Ok(Added::Updated(s)) => (updated, last) = (updated + 1, Some(s)),
                Ok(Added::Same(s)) => last = Some(s),
                Ok(Added::Nop) => {}
                Err(e) => {
                    ctx.db().drop_if_empty(key);
                    return Err(e);
                }
            }
        }
        ctx.db().drop_if_empty(key);
    }
    ctx.dirty((added + updated) as u64);
    if f.incr {
        match last {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int(if f.ch { added + updated } else { added });
    }
    Ok(())
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = num::score_or_err(&args[2])?;
    let now = ctx.now;
    let z = ctx.db().zset_or_new(&args[1], now)?;
    let f = AddFlags { incr: true, ..AddFlags::default() };
    let r = add_one(z, &f, by, &args[3]);
    ctx.db().drop_if_empty(&args[1]);
    match r? {
        Added::New(s) | Added::Updated(s) => {
            ctx.dirty(1);
            ctx.out.double(s);
        }
        Added::Same(s) => ctx.out.double(s),
        Added::Nop => ctx.out.null(),
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let Some(z) = ctx.db().get_zset_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let n = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    ctx.db().drop_if_empty(&args[1]);
    ctx.dirty(n as u64);
    ctx.out.int(n as i64);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.int(db.get_zset(&args[1], now)?.map_or(0, |z| z.len()) as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    match db.get_zset(&args[1], now)?.and_then(|z| z.score(&args[2])) {
        Some(s) => out.double(s),
        None => out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let z = db.get_zset(&args[1], now)?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let z = db.get_zset(&args[1], now)?;
    match z.and_then(|z| z.rank(&args[2]).map(|r| if rev { z.len() - 1 - r } else { r })) {
        Some(r) => out.int(r as i64),
        None => out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, true)
}

/// ZSCAN. A set Redis would keep as a listpack comes back whole; a bigger
/// one is walked in (score, member) order, the cursor naming a score.
fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2]).ok_or_else(|| CmdError::err("ERR invalid cursor"))?;
    let (mut count, mut pattern) = (10i64, None);
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else { return Err(CmdError::Syntax) };
        if is(&args[i], "count") {
            count = parse_i64(v)?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(&args[i], "match") {
            pattern = Some(&v[..]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(z) = db.get_zset(&args[1], now)? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let compact = z.len() <= ZSET_COMPACT_ENTRIES && z.iter().all(|(m, _)| m.len() <= COMPACT_VALUE_BYTES);
    let (start, end, next) = if compact {
        (0, z.len(), 0)
    } else {
        // The cursor is the order key of the next score to return, and a
        // batch never ends inside a run of equal scores: a member present
        // for the whole scan is returned even if others come and go.
        let start = if cursor == 0 { 0 } else { z.count_while(|n| score_key(n.score) < cursor) };
        let want = start.saturating_add(usize::try_from(count).unwrap_or(usize::MAX));
        match z.at(want) {
            None => (start, z.len(), 0),
            Some((_, s)) => {
                let key = score_key(s);
                let prev = want.checked_sub(1).and_then(|r| z.at(r)).map(|(_, p)| score_key(p));
                if prev == Some(key) && want > start {
                    // Take the rest of the run too.
                    let end = z.count_while(|n| score_key(n.score) <= key);
                    match z.at(end) {
                        Some((_, s2)) => (start, end, score_key(s2)),
                        None => (start, z.len(), 0),
                    }
                } else {
                    (start, want, key)
                }
            }
        }
    };
    let found: Vec<_> = z.range(start, end).filter(|(m, _)| pattern.is_none_or(|p| glob_match(p, m, false))).collect();
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len() * 2);
    for (m, s) in found {
        out.bulk(m);
        out.bulk(slotway_resp::reply::format_double(s).as_bytes());
    }
    Ok(())
}

/// Maps a score to a u64 with the same order (never 0, so 0 can still
/// mean "start" and "done").
fn score_key(s: f64) -> u64 {
    // -0 and 0 are one score.
    let bits = (s + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// A cursor as `strtoul` reads it: a sign is allowed and `-n` wraps.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return arg.is_empty().then_some(0);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let Some(countarg) = args.get(2) else {
        let (db, out) = ctx.split();
        match db.get_zset(&args[1], now)? {
            Some(z) => {
                let r = rand::thread_rng().gen_range(0..z.len());
                out.bulk_opt(z.at(r).map(|(m, _)| &m[..]));
            }
            None => out.null(),
        }
        return Ok(());
    };
    let count = parse_i64(countarg)?;
    let withscores = match args.get(3) {
        Some(a) if args.len() == 4 && is(a, "withscores") => true,
        Some(_) => return Err(CmdError::Syntax),
        None => false,
    };
    if count == i64::MIN {
        return Err(CmdError::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if withscores && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(CmdError::err("ERR value is out of range"));
    }
    let (db, out) = ctx.split();
    let Some(z) = db.get_zset(&args[1], now)? else {
        out.array(0);
        return Ok(());
    };
    let mut rng = rand::thread_rng();
    let len = z.len();
    if count < 0 {
        // Repeats allowed: stream the picks rather than collect them.
        let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let picks = (0..n).filter_map(|_| z.at(rng.gen_range(0..len)));
        reply_members(out, n, withscores, picks.map(|(m, s)| (&m[..], s)));
        return Ok(());
    }
    let picks: Vec<usize> = if count as u64 >= len as u64 {
        // The whole set, in the (descending) order Redis 7.0 lists it.
        (0..len).rev().collect()
    } else {
        rand::seq::index::sample(&mut rng, len, count as usize).into_vec()
    };
    reply_members(out, picks.len(), withscores, picks.iter().filter_map(|&r| z.at(r)).map(|(m, s)| (&m[..], s)));
    Ok(())
}

#[cfg(test)]
mod tests;
