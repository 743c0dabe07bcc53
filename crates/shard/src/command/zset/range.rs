//! Ranges by rank, score and lex: the ZRANGE family, ZRANGESTORE, ZCOUNT,
//! ZLEXCOUNT and ZREMRANGEBY*. Every range is resolved to a rank interval
//! with two binary searches, so none of them walks the skipped members.

use bytes::Bytes;

use super::super::{is, parse_i64, Ctx};
use super::num;
use super::reply_members;
use crate::error::{CmdError, CmdResult};
use crate::store::value::{COMPACT_VALUE_BYTES, ZSET_COMPACT_ENTRIES};
use crate::store::zset::ZSet;
use crate::store::{Entry, Value};

const NOT_FLOAT: &str = "ERR min or max is not a float";
const NOT_LEX: &str = "ERR min or max not valid string range item";

/// `min max` of BYSCORE; `(` makes a bound exclusive.
pub(super) struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.split_first() {
        Some((b'(', rest)) => num::bound(rest).map(|v| (v, true)),
        _ => num::bound(arg).map(|v| (v, false)),
    }
}

impl ScoreRange {
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Result<Self, CmdError> {
        let err = || CmdError::err(NOT_FLOAT);
        let (min, minex) = score_bound(min).ok_or_else(err)?;
        let (max, maxex) = score_bound(max).ok_or_else(err)?;
        Ok(ScoreRange { min, minex, max, maxex })
    }

    /// The rank interval `lo..hi` of the members inside the range.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.count_while(|n| if self.minex { n.score <= self.min } else { n.score < self.min });
        let hi = z.count_while(|n| if self.maxex { n.score < self.max } else { n.score <= self.max });
        (lo, hi.max(lo))
    }
}

enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

/// `min max` of BYLEX: `-`, `+`, `[x` or `(x`.
pub(super) struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

fn lex_bound(arg: &[u8]) -> Option<Lex<'_>> {
    match arg.split_first()? {
        (b'-', []) => Some(Lex::Min),
        (b'+', []) => Some(Lex::Max),
        (b'[', rest) => Some(Lex::Incl(rest)),
        (b'(', rest) => Some(Lex::Excl(rest)),
        _ => None,
    }
}

impl<'a> LexRange<'a> {
    pub(super) fn parse(min: &'a [u8], max: &'a [u8]) -> Result<Self, CmdError> {
        let err = || CmdError::err(NOT_LEX);
        Ok(LexRange { min: lex_bound(min).ok_or_else(err)?, max: lex_bound(max).ok_or_else(err)? })
    }

    fn gte_min(&self, m: &[u8]) -> bool {
        match self.min {
            Lex::Min => true,
            Lex::Max => false,
            Lex::Incl(v) => m >= v,
            Lex::Excl(v) => m > v,
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(v) => m <= v,
            Lex::Excl(v) => m < v,
        }
    }

    /// Rank interval of the members in range. Redis assumes the members
    /// share one score; when they do not, a small (listpack) set is
    /// scanned as Redis scans it, from the end `rev` picks, so that even
    /// then the replies agree.
    fn ranks(&self, z: &ZSet, rev: bool) -> (usize, usize) {
        if z.len() > ZSET_COMPACT_ENTRIES {
            let lo = z.count_while(|n| !self.gte_min(&n.member));
            let hi = z.count_while(|n| self.lte_max(&n.member));
            return (lo, hi.max(lo));
        }
        let (Some((first, _)), Some((last, _))) = (z.iter().next(), z.iter().next_back()) else { return (0, 0) };
        if !self.gte_min(last) || !self.lte_max(first) {
            return (0, 0);
        }
        if rev {
            let Some(hi) = z.iter().rev().position(|(m, _)| self.lte_max(m)).map(|p| z.len() - p) else {
                return (0, 0);
            };
            let n = z.range(0, hi).rev().take_while(|(m, _)| self.gte_min(m)).count();
            (hi - n, hi)
        } else {
            let Some(lo) = z.iter().position(|(m, _)| self.gte_min(m)) else { return (0, 0) };
            let n = z.range(lo, z.len()).take_while(|(m, _)| self.lte_max(m)).count();
            (lo, lo + n)
        }
    }
}

/// A Redis rank pair (negative from the end) as a rank interval.
fn rank_interval(start: i64, end: i64, len: usize) -> (usize, usize) {
    let len_i = len as i64;
    let start = if start < 0 { start.saturating_add(len_i).max(0) } else { start };
    let end = if end < 0 { end.saturating_add(len_i) } else { end.min(len_i - 1) };
    if start > end || start >= len_i {
        return (0, 0);
    }
    (start as usize, end as usize + 1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its older forms. `key_at` is the source key's index;
/// `store` the destination of ZRANGESTORE.
fn zrange_generic(ctx: &mut Ctx<'_>, args: &[Bytes], key_at: usize, mut kind: Kind, rev: Option<bool>) -> CmdResult {
    let store = (key_at == 2).then(|| &args[1]);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut rev_opt = rev;
    let mut j = key_at + 3;
    while let Some(a) = args.get(j) {
        let left = args.len() - j - 1;
        if store.is_none() && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = parse_i64(&args[j + 1])?;
            limit = parse_i64(&args[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && is(a, "rev") {
            rev_opt = Some(true);
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev_opt.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(CmdError::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut a, mut b) = (&args[key_at + 1][..], &args[key_at + 2][..]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut a, &mut b);
    }
    enum R<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let range = match kind {
        Kind::Score => R::Score(ScoreRange::parse(a, b)?),
        Kind::Lex => R::Lex(LexRange::parse(a, b)?),
        _ => R::Rank(parse_i64(a)?, parse_i64(b)?),
    };
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(z) = db.get_zset(&args[key_at], now)? else {
        match store {
            Some(dst) => store_result(ctx, dst, Vec::new()),
            None => out.array(0),
        }
        return Ok(());
    };
    let (lo, hi) = match &range {
        R::Rank(s, e) => {
            let (lo, hi) = rank_interval(*s, *e, z.len());
            if rev {
                (z.len() - hi, z.len() - lo)
            } else {
                (lo, hi)
            }
        }
        R::Score(r) => r.ranks(z),
        R::Lex(r) => r.ranks(z, rev),
    };
    // Redis applies LIMIT after the direction: skip `offset` from the
    // starting end; a negative offset gives nothing, a negative count all.
    let (lo, hi) = if kind == Kind::Rank {
        (lo, hi)
    } else if offset < 0 {
        (lo, lo)
    } else {
        let n = hi - lo;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX).min(n);
        let take = if limit < 0 { n - skip } else { usize::try_from(limit).unwrap_or(usize::MAX).min(n - skip) };
        if rev {
            (hi - skip - take, hi - skip)
        } else {
            (lo + skip, lo + skip + take)
        }
    };
    let items = z.range(lo, hi);
    if let Some(dst) = store {
        let result: Vec<(Box<[u8]>, f64)> = if rev {
            items.rev().map(|(m, s)| (m.clone(), s)).collect()
        } else {
            items.map(|(m, s)| (m.clone(), s)).collect()
        };
        store_result(ctx, dst, result);
    } else if rev {
        reply_members(out, hi - lo, withscores, items.rev().map(|(m, s)| (&m[..], s)));
    } else {
        reply_members(out, hi - lo, withscores, items.map(|(m, s)| (&m[..], s)));
    }
    Ok(())
}

/// Replaces `dst` with the given members (deleting it when there are
/// none) and replies with the count, as the *STORE commands do.
pub(super) fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], members: Vec<(Box<[u8]>, f64)>) {
    let now = ctx.now;
    let n = members.len();
    let existed = ctx.db().get(dst, now).is_some();
    if n == 0 {
        if existed {
            ctx.db().remove(dst);
            ctx.dirty(1);
        }
    } else {
        // A result small enough for a listpack loses the sign of -0 there.
        let compact = n <= ZSET_COMPACT_ENTRIES && members.iter().all(|(m, _)| m.len() <= COMPACT_VALUE_BYTES);
        let mut z = ZSet::default();
        for (m, s) in members {
            z.insert(&m, if compact && s == 0.0 { 0.0 } else { s });
        }
        ctx.db().insert(dst, Entry::new(Value::ZSet(Box::new(z))));
        ctx.dirty(1);
    }
    ctx.out.int(n as i64);
}

pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Auto, None)
}

pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 2, Kind::Auto, None)
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Score, Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Score, Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Lex, Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Lex, Some(true))
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, Kind::Rank, Some(true))
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let n = db.get_zset(&args[1], now)?.map_or(0, |z| {
        let (lo, hi) = r.ranks(z);
        hi - lo
    });
    out.int(n as i64);
    Ok(())
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let n = db.get_zset(&args[1], now)?.map_or(0, |z| {
        let (lo, hi) = r.ranks(z, false);
        hi - lo
    });
    out.int(n as i64);
    Ok(())
}

fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes], ranks: &dyn Fn(&ZSet) -> (usize, usize)) -> CmdResult {
    let now = ctx.now;
    let Some(z) = ctx.db().get_zset_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let (lo, hi) = ranks(z);
    let n = z.remove_range(lo, hi);
    ctx.db().drop_if_empty(&args[1]);
    ctx.dirty(n as u64);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (s, e) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    zremrange(ctx, args, &|z| rank_interval(s, e, z.len()))
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3])?;
    zremrange(ctx, args, &|z| r.ranks(z))
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3])?;
    zremrange(ctx, args, &|z| r.ranks(z, false))
}
