//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD. Inputs may be
//! sorted sets or plain sets (every member scoring 1).

use bytes::Bytes;
use hashbrown::HashMap;

use super::super::{is, parse_i64, Ctx};
use super::num;
use super::range::store_result;
use super::reply_members;
use crate::error::{CmdError, CmdResult};
use crate::store::value::IndexSet;
use crate::store::zset::{Score, ZSet};
use crate::store::{Blob, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

enum Src<'a> {
    Missing,
    Set(&'a IndexSet<Blob>),
    Z(&'a ZSet),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Set(s) => s.len(),
            Src::Z(z) => z.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Set(s) => s.contains(m).then_some(1.0),
            Src::Z(z) => z.score(m),
        }
    }

    fn members(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            Src::Missing => Box::new(std::iter::empty()),
            Src::Set(s) => Box::new(s.iter().map(|m| (&m[..], 1.0))),
            Src::Z(z) => Box::new(z.iter().map(|(m, s)| (&m[..], s))),
        }
    }
}

fn aggregate(target: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += v;
            // inf + -inf: Redis settles on 0 rather than store NaN.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if v < *target {
                *target = v;
            }
        }
        Agg::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

fn weighted(s: f64, w: f64) -> f64 {
    let v = s * w;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Shared body. `ni` is the index of numkeys; `store` the destination;
/// `card` makes it ZINTERCARD.
fn generic(ctx: &mut Ctx<'_>, args: &[Bytes], ni: usize, store: Option<&Bytes>, op: Op, card: bool) -> CmdResult {
    let numkeys = parse_i64(&args[ni])?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(CmdError::err(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let keys = usize::try_from(numkeys)
        .ok()
        .and_then(|n| args.get(ni + 1..ni + 1 + n))
        .filter(|_| (numkeys as u64) <= (args.len() - ni - 1) as u64)
        .ok_or(CmdError::Syntax)?;
    let now = ctx.now;
    // First pass: expire lazily and check types, so the second pass can
    // hold shared borrows of every input at once.
    for k in keys {
        match ctx.db().get(k, now).map(|e| &e.value) {
            None | Some(Value::Set(_)) | Some(Value::ZSet(_)) => {}
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let mut weights = vec![1.0f64; keys.len()];
    let (mut agg, mut withscores, mut limit) = (Agg::Sum, false, 0usize);
    let mut j = ni + 1 + keys.len();
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != Op::Diff && !card && remaining > keys.len() && is(a, "weights") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                *w = num::score(arg).ok_or_else(|| CmdError::err("ERR weight value is not a float"))?;
            }
            j += 1 + keys.len();
        } else if op != Op::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            agg = if is(v, "sum") {
                Agg::Sum
            } else if is(v, "min") {
                Agg::Min
            } else if is(v, "max") {
                Agg::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if store.is_none() && !card && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            let l = parse_i64(&args[j + 1]).ok().filter(|l| *l >= 0);
            let l = l.ok_or_else(|| CmdError::err("ERR LIMIT can't be negative"))?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }

    let (db, out) = ctx.split();
    let mut srcs: Vec<(Src<'_>, f64)> = keys
        .iter()
        .zip(&weights)
        .map(|(k, &w)| {
            let src = match db.peek(k).map(|e| &e.value) {
                Some(Value::Set(s)) => Src::Set(s),
                Some(Value::ZSet(z)) => Src::Z(z),
                _ => Src::Missing,
            };
            (src, w)
        })
        .collect();
    // Redis works smallest input first; the order also decides how
    // floating-point sums associate, so it is kept for union and inter.
    if op != Op::Diff {
        srcs.sort_by_key(|(s, _)| s.len());
    }
    let mut result: Vec<(&[u8], f64)> = Vec::new();
    let Some(((first, w0), rest)) = srcs.split_first() else { return Err(CmdError::Syntax) };
    match op {
        Op::Inter => {
            if first.len() > 0 {
                'members: for (m, s) in first.members() {
                    let mut score = weighted(s, *w0);
                    for (src, w) in rest {
                        match src.score(m) {
                            Some(v) => aggregate(&mut score, v * w, agg),
                            None => continue 'members,
                        }
                    }
                    result.push((m, score));
                    if card && limit > 0 && result.len() >= limit {
                        break;
                    }
                }
            }
        }
        Op::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            for (src, w) in &srcs {
                for (m, s) in src.members() {
                    let v = weighted(s, *w);
                    acc.entry(m).and_modify(|t| aggregate(t, v, agg)).or_insert(v);
                }
            }
            result.extend(acc);
        }
        Op::Diff => {
            for (m, s) in first.members() {
                if !rest.iter().any(|(src, _)| src.score(m).is_some()) {
                    result.push((m, s));
                }
            }
        }
    }
    if card {
        out.int(result.len() as i64);
        return Ok(());
    }
    result.sort_unstable_by(|a, b| Score(a.1).cmp(&Score(b.1)).then_with(|| a.0.cmp(b.0)));
    match store {
        Some(dst) => {
            let owned: Vec<(Blob, f64)> = result.into_iter().map(|(m, s)| (Blob::from(m), s)).collect();
            store_result(ctx, dst, owned);
        }
        None => reply_members(out, result.len(), withscores, result.into_iter()),
    }
    Ok(())
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 1, None, Op::Union, false)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 1, None, Op::Inter, false)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 1, None, Op::Diff, false)
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 2, Some(&args[1]), Op::Union, false)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 2, Some(&args[1]), Op::Inter, false)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 2, Some(&args[1]), Op::Diff, false)
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, 1, None, Op::Inter, true)
}
