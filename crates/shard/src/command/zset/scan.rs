//! ZSCAN and ZRANDMEMBER: the commands that walk or sample a set rather
//! than address it by rank, score or member.

use bytes::Bytes;
use rand::Rng;

use super::super::{glob_match, is, parse_i64, Ctx};
use super::reply_members;
use crate::error::{CmdError, CmdResult};
use crate::store::value::{COMPACT_VALUE_BYTES, ZSET_COMPACT_ENTRIES};

/// ZSCAN. A set Redis would keep as a listpack comes back whole; a bigger
/// one is walked in (score, member) order, the cursor naming a score.
pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
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

pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
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
