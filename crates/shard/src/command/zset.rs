//! Sorted-set commands (Redis 7.0): single-member commands live here;
//! ranges, set operations and pops in the submodules.

mod num;
mod pop;
mod range;
mod scan;
mod setops;

use bytes::Bytes;
use slotway_resp::ReplyBuf;

use super::{is, Cmd, Ctx};
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
    Cmd { name: "zscan", run: scan::zscan },
    Cmd { name: "zrandmember", run: scan::zrandmember },
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

#[cfg(test)]
mod tests;
