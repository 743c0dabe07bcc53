//! HSCAN, and the cursor and option parsing HSCAN and SSCAN share.
//!
//! A compact collection (listpack hash, intset) is answered whole with
//! cursor 0 whatever COUNT says, as Redis does. A bigger one is walked by
//! position (see [`window`]).

use bytes::Bytes;

use super::is_compact;
use crate::command::{glob_match, is, Ctx};
use crate::error::{CmdError, CmdResult};

/// What follows the cursor: COUNT and MATCH.
pub(crate) struct ScanOpts<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
}

impl ScanOpts<'_> {
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, item, false))
    }
}

/// A cursor as C's `strtoul` reads it: optional sign (a negative one
/// wraps), decimal digits, nothing around them; the empty string is 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("ERR invalid cursor");
    let (neg, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return if arg.is_empty() { Ok(0) } else { Err(invalid()) };
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The options after the cursor. Parsed only once the key is known to
/// exist with the right type: for a missing key Redis ignores them.
pub(crate) fn parse_opts(args: &[Bytes]) -> Result<ScanOpts<'_>, CmdError> {
    let mut opts = ScanOpts { count: 10, pattern: None };
    let mut i = 0;
    while i < args.len() {
        let Some(val) = args.get(i + 1) else { return Err(CmdError::Syntax) };
        if is(&args[i], "count") {
            let n = crate::command::parse_i64(val)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(&args[i], "match") {
            opts.pattern = (&val[..] != b"*").then_some(&val[..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(opts)
}

/// The positions one scan step covers over `len` elements, and the cursor
/// to hand back.
///
/// Positions are walked from the end down: the cursor is the bound below
/// which nothing was returned yet. Deleting with `swap_remove` or
/// `shift_remove` only ever moves an element from above a position to it,
/// and inserting appends, so an element present for the whole scan stays
/// below the cursor until it is returned, which is SCAN's guarantee (a
/// moved element may come back twice, which SCAN allows).
pub(crate) fn window(compact: bool, len: usize, cursor: u64, count: usize) -> (std::ops::Range<usize>, u64) {
    if compact {
        return (0..len, 0);
    }
    let end = if cursor == 0 { len } else { usize::try_from(cursor).unwrap_or(usize::MAX).min(len) };
    let start = end.saturating_sub(count);
    (start..end, start as u64)
}

/// The reply every SCAN flavour gives: `[cursor, [items...]]`.
pub(crate) fn reply_head(out: &mut slotway_resp::ReplyBuf, cursor: u64, n: usize) {
    out.array(2);
    out.bulk(cursor.to_string().as_bytes());
    out.array(n);
}

pub(super) fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(h) = db.get_hash(&args[1], now)? else {
        reply_head(out, 0, 0);
        return Ok(());
    };
    let opts = parse_opts(&args[3..])?;
    let (range, next) = window(is_compact(h), h.len(), cursor, opts.count);
    let picked: Vec<(&[u8], &[u8])> = h
        .get_range(range)
        .into_iter()
        .flat_map(|s| s.iter())
        .filter(|(k, _)| opts.matches(k))
        .map(|(k, v)| (&k[..], &v[..]))
        .collect();
    reply_head(out, next, picked.len() * 2);
    for (k, v) in picked {
        out.bulk(k);
        out.bulk(v);
    }
    Ok(())
}
