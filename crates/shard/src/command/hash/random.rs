//! HRANDFIELD.
//!
//! Like Redis: a negative count picks with repeats; a count at least the
//! size returns the whole hash in its order; a smaller positive count picks
//! distinct fields, in hash order for a compact (listpack) hash.

use bytes::Bytes;
use rand::Rng;

use super::is_compact;
use crate::command::{is, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};

pub(super) fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    if args.len() == 2 {
        let (db, out) = ctx.split();
        let h = db.get_hash(&args[1], now)?;
        let mut rng = rand::thread_rng();
        let pick = h.filter(|h| !h.is_empty()).and_then(|h| h.get_index(rng.gen_range(0..h.len())));
        out.bulk_opt(pick.map(|(k, _)| &k[..]));
        return Ok(());
    }
    let count = parse_i64(&args[2])?;
    if count == i64::MIN {
        return Err(CmdError::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withvalues = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "withvalues") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    // Redis refuses a count whose doubled reply length would overflow.
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("ERR value is out of range"));
    }
    let (db, out) = ctx.split();
    // Stored collections are never empty, but an empty one must not panic.
    let Some(h) = db.get_hash(&args[1], now)?.filter(|h| !h.is_empty()) else {
        out.array(0);
        return Ok(());
    };
    let resp3 = out.is_resp3();
    let emit = |out: &mut slotway_resp::ReplyBuf, k: &[u8], v: &[u8]| {
        if withvalues && resp3 {
            out.array(2);
        }
        out.bulk(k);
        if withvalues {
            out.bulk(v);
        }
    };
    let header = |out: &mut slotway_resp::ReplyBuf, n: usize| {
        out.array(if withvalues && !resp3 { n.saturating_mul(2) } else { n });
    };
    let mut rng = rand::thread_rng();
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        header(out, n);
        for _ in 0..n {
            if let Some((k, v)) = h.get_index(rng.gen_range(0..h.len())) {
                emit(out, k, v);
            }
        }
        return Ok(());
    }
    let n = count as usize;
    if n >= h.len() {
        header(out, h.len());
        for (k, v) in h.iter() {
            emit(out, k, v);
        }
    } else if is_compact(h) {
        // Selection sampling: exactly n distinct fields, in listpack order.
        header(out, n);
        let (mut need, mut left) = (n, h.len());
        for (k, v) in h.iter() {
            if need == 0 {
                break;
            }
            if rng.gen_range(0..left) < need {
                emit(out, k, v);
                need -= 1;
            }
            left -= 1;
        }
    } else {
        header(out, n);
        for i in rand::seq::index::sample(&mut rng, h.len(), n) {
            if let Some((k, v)) = h.get_index(i) {
                emit(out, k, v);
            }
        }
    }
    Ok(())
}
