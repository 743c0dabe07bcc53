//! List commands: pushes, reads by index and range, in-place edits
//! (LSET, LINSERT, LREM, LTRIM) and LPOS. Pops, moves and the blocking
//! variants live in [`pop`].
//!
//! Argument checks run in the order Redis runs them, because that order is
//! visible: some commands parse their numbers before looking the key up
//! (LRANGE, LTRIM, LREM), others after (LINDEX, LSET).

mod pop;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::Bytes;

use super::{is, parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::Blob;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "lpush", run: lpush },
    Cmd { name: "rpush", run: rpush },
    Cmd { name: "lpushx", run: lpushx },
    Cmd { name: "rpushx", run: rpushx },
    Cmd { name: "llen", run: llen },
    Cmd { name: "lrange", run: lrange },
    Cmd { name: "lindex", run: lindex },
    Cmd { name: "lset", run: lset },
    Cmd { name: "linsert", run: linsert },
    Cmd { name: "lrem", run: lrem },
    Cmd { name: "ltrim", run: ltrim },
    Cmd { name: "lpos", run: lpos },
    Cmd { name: "lpop", run: pop::lpop },
    Cmd { name: "rpop", run: pop::rpop },
    Cmd { name: "lmove", run: pop::lmove },
    Cmd { name: "rpoplpush", run: pop::rpoplpush },
    Cmd { name: "lmpop", run: pop::lmpop },
    Cmd { name: "blpop", run: pop::blpop },
    Cmd { name: "brpop", run: pop::brpop },
    Cmd { name: "blmove", run: pop::blmove },
    Cmd { name: "brpoplpush", run: pop::brpoplpush },
    Cmd { name: "blmpop", run: pop::blmpop },
];

type List = VecDeque<Blob>;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if is(arg, "left") {
            Ok(End::Left)
        } else if is(arg, "right") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    fn pop(self, l: &mut List) -> Option<Blob> {
        match self {
            End::Left => l.pop_front(),
            End::Right => l.pop_back(),
        }
    }

    fn push(self, l: &mut List, v: Blob) {
        match self {
            End::Left => l.push_front(v),
            End::Right => l.push_back(v),
        }
    }
}

fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Right, true)
}

fn push(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let list = if only_existing {
        match db.get_list_mut(&args[1], now)? {
            Some(l) => l,
            None => {
                ctx.out.int(0);
                return Ok(());
            }
        }
    } else {
        db.list_or_new(&args[1], now)?
    };
    let values = &args[2..];
    list.reserve(values.len());
    for v in values {
        end.push(list, Blob::from(&v[..]));
    }
    let len = list.len();
    ctx.dirty(values.len() as u64);
    ctx.out.int(len as i64);
    Ok(())
}

fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let len = ctx.db().get_list(&args[1], now)?.map_or(0, |l| l.len());
    ctx.out.int(len as i64);
    Ok(())
}

/// Resolves Redis's inclusive `start..=stop` range (negative counts from
/// the end) against a list of `len`; `None` when it selects nothing.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// A single index (negative counts from the end) into a list of `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { (len as i64).checked_add(index)? } else { index };
    (i >= 0 && (i as u64) < len as u64).then_some(i as usize)
}

fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let stop = parse_i64(&args[3])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(list) = db.get_list(&args[1], now)? else {
        out.array(0);
        return Ok(());
    };
    match clamp_range(start, stop, list.len()) {
        None => out.array(0),
        Some((a, b)) => {
            out.array(b - a + 1);
            for v in list.range(a..=b) {
                out.bulk(v);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(list) = db.get_list(&args[1], now)? else {
        out.null();
        return Ok(());
    };
    let index = parse_i64(&args[2])?;
    out.bulk_opt(resolve_index(index, list.len()).and_then(|i| list.get(i)).map(|v| &v[..]));
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let list = ctx.db().get_list_mut(&args[1], now)?.ok_or(CmdError::NoSuchKey)?;
    let index = parse_i64(&args[2])?;
    let slot = resolve_index(index, list.len()).and_then(|i| list.get_mut(i)).ok_or(CmdError::IndexOutOfRange)?;
    *slot = Blob::from(&args[3][..]);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let now = ctx.now;
    let Some(list) = ctx.db().get_list_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let pivot = &args[3][..];
    let Some(at) = list.iter().position(|v| &v[..] == pivot) else {
        ctx.out.int(-1);
        return Ok(());
    };
    list.insert(if after { at + 1 } else { at }, Blob::from(&args[4][..]));
    let len = list.len();
    ctx.dirty(1);
    ctx.out.int(len as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = parse_i64(&args[2])?;
    let now = ctx.now;
    let Some(list) = ctx.db().get_list_mut(&args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let target = &args[3][..];
    // 0 means "all of them"; usize::MAX can never be reached.
    let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
    let removed = if count >= 0 {
        let mut removed = 0;
        list.retain(|v| {
            if removed < limit && &v[..] == target {
                removed += 1;
                false
            } else {
                true
            }
        });
        removed
    } else {
        // From the tail: find where the last match to remove sits, then
        // drop every match from there on in one pass (removing one by one
        // would be quadratic).
        let mut found = 0;
        let mut cut = list.len();
        for (i, v) in list.iter().enumerate().rev() {
            if found == limit {
                break;
            }
            if &v[..] == target {
                found += 1;
                cut = i;
            }
        }
        if found > 0 {
            let mut i = 0;
            list.retain(|v| {
                let keep = i < cut || &v[..] != target;
                i += 1;
                keep
            });
        }
        found
    };
    if removed > 0 {
        ctx.db().drop_if_empty(&args[1]);
        ctx.dirty(removed as u64);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let stop = parse_i64(&args[3])?;
    let now = ctx.now;
    let Some(list) = ctx.db().get_list_mut(&args[1], now)? else {
        ctx.out.ok();
        return Ok(());
    };
    let len = list.len();
    let removed = match clamp_range(start, stop, len) {
        None => {
            list.clear();
            len
        }
        Some((a, b)) => {
            list.truncate(b + 1);
            list.drain(..a);
            len - (b - a + 1)
        }
    };
    ctx.db().drop_if_empty(&args[1]);
    ctx.dirty(removed as u64);
    if removed == 0 {
        // Redis signals the key as modified even when nothing was trimmed,
        // which WATCHers can see.
        let db = ctx.client.db;
        ctx.store.touch(db, &args[1]);
    }
    ctx.out.ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else { return Err(CmdError::Syntax) };
        if is(&args[i], "rank") {
            rank = parse_i64(value)?;
            if rank == 0 {
                return Err(CmdError::err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&args[i], "count") {
            count = Some(non_negative(value, "ERR COUNT can't be negative")?);
        } else if is(&args[i], "maxlen") {
            maxlen = non_negative(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(list) = db.get_list(&args[1], now)? else {
        match count {
            Some(_) => out.array(0),
            None => out.null(),
        }
        return Ok(());
    };
    let from_tail = rank < 0;
    // Redis negates the rank in a C long, so RANK -9223372036854775808
    // stays negative: every match then qualifies and COUNT never stops the
    // scan. Wrapping arithmetic below reproduces exactly that.
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let len = list.len();
    let limit = if maxlen == 0 { len } else { len.min(maxlen as usize) };
    let target = &args[2][..];
    let mut found = Vec::new();
    let mut matches: i64 = 0;
    for step in 0..limit {
        let idx = if from_tail { len - 1 - step } else { step };
        if &list[idx][..] != target {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(idx);
        match count {
            None => break,
            Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
            Some(_) => {}
        }
    }
    match count {
        None => match found.first() {
            Some(&idx) => out.int(idx as i64),
            None => out.null(),
        },
        Some(_) => {
            out.array(found.len());
            for idx in found {
                out.int(idx as i64);
            }
        }
    }
    Ok(())
}

/// A count-like option in `0..=i64::MAX`; Redis answers `msg` both for a
/// negative number and for something that is not a number.
fn non_negative(arg: &[u8], msg: &str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(CmdError::err(msg)),
    }
}
