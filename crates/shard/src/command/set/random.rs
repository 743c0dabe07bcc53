//! SPOP and SRANDMEMBER.
//!
//! A count at least the set's size returns the whole set in Redis's order
//! (ascending for an intset); a smaller one picks distinct members at
//! random. SRANDMEMBER with a negative count picks with repeats. Both
//! parse their count before looking at the key, as Redis does.

use bytes::Bytes;
use rand::Rng;

use super::reply_set;
use crate::command::{parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::value::set_members;
use crate::store::{Blob, Db};
use slotway_resp::ReplyBuf;

pub(super) fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.now;
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(CmdError::NotPositive),
        },
    };
    let (db, out) = ctx.split();
    let changed = pop(db, out, &args[1], count, now)?;
    ctx.dirty(changed);
    Ok(())
}

/// SPOP's work; returns how many members it removed.
fn pop(db: &mut Db, out: &mut ReplyBuf, key: &[u8], count: Option<u64>, now: u64) -> Result<u64, CmdError> {
    let Some(s) = db.get_set_mut(key, now)?.filter(|s| !s.is_empty()) else {
        match count {
            None => out.null(),
            Some(_) => out.set(0),
        }
        return Ok(0);
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        let i = rng.gen_range(0..s.len());
        let m = s.swap_remove_index(i);
        out.bulk_opt(m.as_deref());
        db.drop_if_empty(key);
        return Ok(1);
    };
    if count == 0 {
        out.set(0);
        return Ok(0);
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    if n >= s.len() {
        reply_set(out, s);
        let len = s.len();
        db.remove(key);
        return Ok(len as u64);
    }
    let mut picks = rand::seq::index::sample(&mut rng, s.len(), n).into_vec();
    // Removing from the highest position down never moves a chosen member:
    // swap_remove fills the hole from the end, past every pick still left.
    picks.sort_unstable_by(|a, b| b.cmp(a));
    let popped: Vec<Blob> = picks.into_iter().filter_map(|i| s.swap_remove_index(i)).collect();
    out.set(popped.len());
    for m in &popped {
        out.bulk(m);
    }
    Ok(popped.len() as u64)
}

pub(super) fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.now;
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a)? {
            i64::MIN => {
                return Err(CmdError::err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ))
            }
            n => Some(n),
        },
    };
    let (db, out) = ctx.split();
    let s = db.get_set(&args[1], now)?.filter(|s| !s.is_empty());
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        let m = s.and_then(|s| s.get_index(rng.gen_range(0..s.len())));
        out.bulk_opt(m.map(|m| &m[..]));
        return Ok(());
    };
    let Some(s) = s else {
        out.array(0);
        return Ok(());
    };
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        out.array(n);
        for _ in 0..n {
            if let Some(m) = s.get_index(rng.gen_range(0..s.len())) {
                out.bulk(m);
            }
        }
        return Ok(());
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    if n >= s.len() {
        let members = set_members(s);
        out.array(members.len());
        for m in members {
            out.bulk(m);
        }
        return Ok(());
    }
    out.array(n);
    for i in rand::seq::index::sample(&mut rng, s.len(), n) {
        if let Some(m) = s.get_index(i) {
            out.bulk(m);
        }
    }
    Ok(())
}
