//! SINTER, SINTERCARD, SUNION, SDIFF and their STORE forms.
//!
//! Every key is type-checked before any work, so a WRONGTYPE anywhere wins
//! over a missing key, as in Redis 7.0. A STORE form replaces whatever the
//! destination held (any type, its TTL too) and deletes it when the result
//! is empty.

use bytes::Bytes;

use super::reply_set;
use crate::command::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::value::{set_members, IndexSet};
use crate::store::{Blob, Db, Entry, Value};

/// The sets at `keys` (None for a missing key), after checking each type.
/// `read` counts keyspace hits and misses, as Redis does for the forms that
/// do not store.
fn load<'a>(db: &'a mut Db, keys: &[Bytes], now: u64, read: bool) -> Result<Vec<Option<&'a IndexSet<Blob>>>, CmdError> {
    // A first pass through the typed getter does expiry and WRONGTYPE; then
    // shared borrows can be held side by side.
    for k in keys {
        if read {
            db.get_set(k, now)?;
        } else {
            db.get_set_mut(k, now)?;
        }
    }
    let db: &'a Db = db;
    Ok(keys
        .iter()
        .map(|k| match db.peek(k) {
            Some(Entry { value: Value::Set(s), .. }) => Some(&**s),
            _ => None,
        })
        .collect())
}

/// Members of the intersection in the order Redis visits them (the
/// smallest set's order), stopping after `limit` when it is non-zero.
fn intersect<'a>(sets: &[Option<&'a IndexSet<Blob>>], limit: usize) -> Vec<&'a Blob> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<_>>>() else { return Vec::new() };
    sets.sort_by_key(|s| s.len());
    let Some((first, rest)) = sets.split_first() else { return Vec::new() };
    let mut out = Vec::new();
    for m in set_members(first) {
        if rest.iter().all(|s| s.contains(&m[..])) {
            out.push(m);
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<&IndexSet<Blob>>]) -> IndexSet<Blob> {
    let mut out = IndexSet::default();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            if !out.contains(&m[..]) {
                out.insert(m.clone());
            }
        }
    }
    out
}

fn diff(sets: &[Option<&IndexSet<Blob>>]) -> IndexSet<Blob> {
    let Some(Some(first)) = sets.first() else { return IndexSet::default() };
    first.iter().filter(|m| sets[1..].iter().flatten().all(|s| !s.contains(&m[..]))).cloned().collect()
}

/// Stores `result` at `dst` (or deletes `dst` when it is empty) and
/// replies with its size.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], result: IndexSet<Blob>) -> CmdResult {
    let n = result.len();
    if n == 0 {
        if ctx.db().remove(dst).is_some() {
            ctx.dirty(1);
        }
    } else {
        ctx.db().insert(dst, Entry::new(Value::Set(Box::new(result))));
        ctx.dirty(1);
    }
    ctx.out.int(n as i64);
    Ok(())
}

pub(super) fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let sets = load(db, &args[1..], now, true)?;
    let members = intersect(&sets, 0);
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
    Ok(())
}

pub(super) fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let sets = load(ctx.db(), &args[2..], now, false)?;
    let result: IndexSet<Blob> = intersect(&sets, 0).into_iter().cloned().collect();
    store(ctx, &args[1], result)
}

pub(super) fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let numkeys = match crate::command::parse_i64(&args[1]) {
        Ok(n) if n > 0 => n as u64,
        _ => return Err(CmdError::err("ERR numkeys should be greater than 0")),
    };
    let avail = (args.len() - 2) as u64;
    if numkeys > avail {
        return Err(CmdError::err("ERR Number of keys can't be greater than number of args"));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut i = keys_end;
    while i < args.len() {
        match args.get(i + 1) {
            Some(v) if is(&args[i], "limit") => {
                limit = match crate::command::parse_i64(v) {
                    Ok(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => return Err(CmdError::err("ERR LIMIT can't be negative")),
                };
                i += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let now = ctx.now;
    let (db, out) = ctx.split();
    let sets = load(db, &args[2..keys_end], now, true)?;
    out.int(intersect(&sets, limit).len() as i64);
    Ok(())
}

pub(super) fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let result = union(&load(db, &args[1..], now, true)?);
    reply_set(out, &result);
    Ok(())
}

pub(super) fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let result = union(&load(ctx.db(), &args[2..], now, false)?);
    store(ctx, &args[1], result)
}

pub(super) fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let result = diff(&load(db, &args[1..], now, true)?);
    reply_set(out, &result);
    Ok(())
}

pub(super) fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let result = diff(&load(ctx.db(), &args[2..], now, false)?);
    store(ctx, &args[1], result)
}
