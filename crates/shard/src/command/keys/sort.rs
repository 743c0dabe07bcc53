//! SORT and SORT_RO: lists, sets and sorted sets, by their own values or by
//! external keys (`BY weight_*`, `BY h_*->field`), with LIMIT, GET
//! patterns, ASC/DESC, ALPHA and STORE.

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;

use crate::command::{is, parse_hex_float, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{value::set_members, Blob, Db, Entry, Value};

pub fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: (i64, i64),
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    /// `BY` without a `*`: keep the native order.
    dontsort: bool,
    get: Vec<&'a [u8]>,
}

fn parse(args: &[Bytes], readonly: bool) -> Result<Options<'_>, CmdError> {
    let mut o =
        Options { desc: false, alpha: false, limit: (0, -1), store: None, by: None, dontsort: false, get: vec![] };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit = (parse_i64(&args[j + 1])?, parse_i64(&args[j + 2])?);
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            o.by = Some(&args[j + 1]);
            // Once a BY without `*` was seen the order stays native, even if
            // a later BY has a pattern (Redis never clears the flag).
            if !args[j + 1].contains(&b'*') {
                o.dontsort = true;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            o.get.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// What a `BY`/`GET` pattern names for one element: `#` is the element
/// itself, `key_*` a string key, `key_*->field` a hash field. A pattern
/// without `*` names nothing.
fn lookup_pattern(db: &mut Db, pattern: &[u8], elem: &[u8], now: u64) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&p| p + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(p) => (&after[..p], Some(&after[p + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    match (db.get_read(&key, now).map(|e| &e.value), field) {
        (Some(Value::Str(s)), None) => Some(s.to_vec()),
        (Some(Value::Hash(h)), Some(f)) => h.get(f).map(|v| v.to_vec()),
        _ => None,
    }
}

/// A sort weight as Redis reads it with `strtod`: leading spaces allowed,
/// nothing may follow, no NaN and no overflow. An empty string is 0.
fn parse_weight(b: &[u8]) -> Option<f64> {
    if b.is_empty() {
        return Some(0.0);
    }
    let s = std::str::from_utf8(b).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let v: f64 = match parse_hex(t) {
        Some(h) => h,
        None => t.parse().ok()?,
    };
    let spelled_inf = t.to_ascii_lowercase().contains("inf");
    (!v.is_nan() && (v.is_finite() || spelled_inf)).then_some(v)
}

/// `strtod`'s hexadecimal form: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`.
fn parse_hex(t: &str) -> Option<f64> {
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let v = parse_hex_float(rest)?;
    Some(if neg { -v } else { v })
}

struct Item {
    elem: Blob,
    score: f64,
    cmp: Option<Vec<u8>>,
}

/// The elements in their native order; `None` for a value SORT refuses.
fn elements(entry: Option<&Entry>) -> Result<Vec<Blob>, CmdError> {
    Ok(match entry.map(|e| &e.value) {
        None => Vec::new(),
        Some(Value::List(l)) => l.iter().cloned().collect(),
        Some(Value::Set(s)) => set_members(s).into_iter().cloned().collect(),
        Some(Value::ZSet(z)) => z.iter().map(|(m, _)| m.clone()).collect(),
        Some(_) => return Err(CmdError::WrongType),
    })
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> CmdResult {
    let mut o = parse(args, readonly)?;
    let now = ctx.now;
    let db = ctx.db();
    let entry = db.get_read(&args[1], now);
    let is_set = matches!(entry.as_ref().map(|e| &e.value), Some(Value::Set(_)));
    let ordered = matches!(entry.as_ref().map(|e| &e.value), Some(Value::List(_) | Value::ZSet(_)));
    let mut elems = elements(entry.map(|e| &*e))?;

    // A set has no order of its own: when the result is stored, sort it so
    // that it is deterministic.
    if o.dontsort && is_set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }

    let len = elems.len() as i64;
    let (limit_start, limit_count) = o.limit;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 { len - 1 } else { start.saturating_add(limit_count) - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    if ordered && o.dontsort && o.desc {
        elems.reverse();
    }
    let mut items: Vec<Item> = elems.into_iter().map(|elem| Item { elem, score: 0.0, cmp: None }).collect();

    if !o.dontsort {
        let mut bad_score = false;
        for it in &mut items {
            let by_value = match o.by {
                Some(p) => match lookup_pattern(db, p, &it.elem, now) {
                    Some(v) => v,
                    None => continue,
                },
                None => {
                    if !o.alpha {
                        match parse_weight(&it.elem) {
                            Some(v) => it.score = v,
                            None => bad_score = true,
                        }
                    }
                    continue;
                }
            };
            if o.alpha {
                it.cmp = Some(by_value);
            } else {
                match parse_weight(&by_value) {
                    Some(v) => it.score = v,
                    None => bad_score = true,
                }
            }
        }
        if bad_score {
            return Err(CmdError::err("ERR One or more scores can't be converted into double"));
        }
        let by_pattern = o.by.is_some();
        let alpha = o.alpha;
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                // A missing weight sorts first.
                a.cmp.cmp(&b.cmp)
            } else {
                a.elem.cmp(&b.elem)
            };
            if o.desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    let range: &[Item] = if end >= start {
        usize::try_from(start).ok().zip(usize::try_from(end).ok()).and_then(|(s, e)| items.get(s..=e)).unwrap_or(&[])
    } else {
        &[]
    };

    match o.store {
        None => {
            let (db, out) = ctx.split();
            if o.get.is_empty() {
                out.array(range.len());
                for it in range {
                    out.bulk(&it.elem);
                }
            } else {
                out.array(range.len().saturating_mul(o.get.len()));
                for it in range {
                    for p in &o.get {
                        match lookup_pattern(db, p, &it.elem, now) {
                            Some(v) => out.bulk(&v),
                            None => out.null(),
                        }
                    }
                }
            }
        }
        Some(dst) => {
            let mut list: VecDeque<Blob> = VecDeque::with_capacity(range.len().saturating_mul(o.get.len().max(1)));
            for it in range {
                if o.get.is_empty() {
                    list.push_back(it.elem.clone());
                } else {
                    for p in &o.get {
                        list.push_back(lookup_pattern(db, p, &it.elem, now).unwrap_or_default().into());
                    }
                }
            }
            let n = list.len();
            let changed = if n > 0 {
                db.insert(dst, Entry::new(Value::List(list)));
                ctx.dirty(n as u64);
                true
            } else if db.delete(dst, now).is_some() {
                ctx.dirty(1);
                true
            } else {
                false
            };
            if changed {
                let db_index = ctx.client.db;
                ctx.store.touch(db_index, dst);
            }
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_weight;
    use crate::store::{Entry, Value};
    use crate::test_util::TestServer;

    fn list(t: &mut TestServer, key: &str, items: &[&str]) {
        let v = Value::List(items.iter().map(|s| s.as_bytes().into()).collect());
        t.shared.store.lock().dbs[0].insert(key.as_bytes(), Entry::new(v));
    }

    #[test]
    fn weights_like_strtod() {
        assert_eq!(parse_weight(b""), Some(0.0));
        assert_eq!(parse_weight(b" 1.5"), Some(1.5));
        assert_eq!(parse_weight(b"1.5 "), None);
        assert_eq!(parse_weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_weight(b"1e999"), None);
        assert_eq!(parse_weight(b"nan"), None);
        assert_eq!(parse_weight(b"abc"), None);
        assert_eq!(parse_weight(b"0x10"), Some(16.0));
        assert_eq!(parse_weight(b"-0X1f"), Some(-31.0));
        assert_eq!(parse_weight(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_weight(b"0x"), None);
        assert_eq!(parse_weight(b"INFINITY"), Some(f64::INFINITY));
        assert_eq!(parse_weight(b".5"), Some(0.5));
        assert_eq!(parse_weight(b"5."), Some(5.0));
    }

    #[test]
    fn sort_numeric_alpha_limit_store() {
        let mut t = TestServer::new();
        list(&mut t, "l", &["3", "1", "2", "10"]);
        assert_eq!(t.cmd("SORT l"), "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n");
        assert_eq!(t.cmd("SORT l ALPHA DESC LIMIT 0 2"), "*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
        assert_eq!(t.cmd("SORT l BY nosort DESC"), "*4\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n");
        assert_eq!(t.cmd("SORT l LIMIT 1 x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(t.cmd("SORT l FOO"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SORT_RO l STORE x"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SORT l STORE dst"), ":4\r\n");
        assert_eq!(t.cmd("TYPE dst"), "+list\r\n");
        assert_eq!(t.cmd("SORT nokey STORE dst"), ":0\r\n");
        assert_eq!(t.cmd("EXISTS dst"), ":0\r\n");
        list(&mut t, "bad", &["a", "1"]);
        assert_eq!(t.cmd("SORT bad"), "-ERR One or more scores can't be converted into double\r\n");
        t.cmd("SET str x");
        assert_eq!(t.cmd("SORT str"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    }

    #[test]
    fn sort_by_and_get_patterns() {
        let mut t = TestServer::new();
        list(&mut t, "l", &["a", "b", "c"]);
        t.cmd("SET w_a 3");
        t.cmd("SET w_b 1");
        t.cmd("SET w_c 2");
        t.cmd("SET v_a A");
        assert_eq!(t.cmd("SORT l BY w_*"), "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n");
        assert_eq!(
            t.cmd("SORT l BY w_* GET # GET v_*"),
            "*6\r\n$1\r\nb\r\n$-1\r\n$1\r\nc\r\n$-1\r\n$1\r\na\r\n$1\r\nA\r\n"
        );
        let h = Value::Hash(Box::new([(b"f"[..].into(), b"9"[..].into())].into_iter().collect()));
        t.shared.store.lock().dbs[0].insert(b"h_b", Entry::new(h));
        assert_eq!(t.cmd("SORT l BY h_*->f DESC LIMIT 0 1"), "*1\r\n$1\r\nb\r\n");
        assert_eq!(t.cmd("SORT l BY nosort GET h_*->f"), "*3\r\n$-1\r\n$1\r\n9\r\n$-1\r\n");
    }
}
