//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, and (in [`bitfield`]) BITFIELD and BITFIELD_RO.
//!
//! Bit 0 is the most significant bit of byte 0, as in Redis. A string
//! grows (zero-padded) only as far as a write reaches; offsets are bounded
//! by `proto-max-bulk-len` before anything is allocated.

mod bitfield;

use bytes::Bytes;

use super::{is, parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Db, Entry, Str, Value};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "setbit", run: setbit },
    Cmd { name: "getbit", run: getbit },
    Cmd { name: "bitcount", run: bitcount },
    Cmd { name: "bitpos", run: bitpos },
    Cmd { name: "bitop", run: bitop },
    Cmd { name: "bitfield", run: bitfield::bitfield },
    Cmd { name: "bitfield_ro", run: bitfield::bitfield_ro },
];

fn bad_offset() -> CmdError {
    CmdError::err("ERR bit offset is not an integer or out of range")
}

/// A bit offset argument; with `width` (BITFIELD) a `#n` form means `n`
/// fields of that width.
fn parse_offset(arg: &[u8], width: Option<u32>, max_bulk: i64) -> Result<u64, CmdError> {
    let (digits, scale) = match (arg, width) {
        ([b'#', rest @ ..], Some(w)) => (rest, w as i64),
        _ => (arg, 1),
    };
    let v = slotway_resp::request::parse_int(digits).and_then(|v| v.checked_mul(scale)).ok_or_else(bad_offset)?;
    if v < 0 || (v >> 3) >= max_bulk {
        return Err(bad_offset());
    }
    Ok(v as u64)
}

/// The string at `key` for a write reaching bit `max_bit`, created or
/// zero-padded to cover it.
fn str_for_write<'d>(db: &'d mut Db, key: &[u8], max_bit: u64, now: u64) -> Result<&'d mut Vec<u8>, CmdError> {
    let need = (max_bit >> 3) as usize + 1;
    let s: &mut Str = db.str_or_new(key, now)?;
    let v = s.make_mut();
    if v.len() < need {
        v.resize(need, 0);
    }
    Ok(v)
}

fn get_bit(s: &[u8], bit: u64) -> bool {
    s.get((bit >> 3) as usize).is_some_and(|b| b >> (7 - (bit & 7)) & 1 == 1)
}

fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = parse_offset(&args[2], None, ctx.config.proto_max_bulk_len)?;
    let on = match &args[3][..] {
        b"0" => false,
        b"1" => true,
        _ => return Err(CmdError::err("ERR bit is not an integer or out of range")),
    };
    let now = ctx.now;
    let v = str_for_write(ctx.db(), &args[1], offset, now)?;
    let byte = &mut v[(offset >> 3) as usize];
    let mask = 1u8 << (7 - (offset & 7));
    let old = *byte & mask != 0;
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    ctx.dirty(1);
    ctx.out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = parse_offset(&args[2], None, ctx.config.proto_max_bulk_len)?;
    let now = ctx.now;
    let bit = ctx.db().get_str(&args[1], now)?.is_some_and(|s| get_bit(s, offset));
    ctx.out.int(bit as i64);
    Ok(())
}

/// The bit range `[first, last]` that `start`/`end` (in bytes, or in bits
/// with `bits`) select in a string of `len` bytes, negative indexes
/// counting from the end; `None` when empty.
fn bit_range(start: i64, end: i64, bits: bool, len: usize) -> Option<(u64, u64)> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    let fix = |i: i64| if i < 0 { total.saturating_add(i).max(0) } else { i };
    let (start, end) = (fix(start), fix(end).min(total - 1));
    if start > end {
        return None;
    }
    let (s, e) = (start as u64, end as u64);
    Some(if bits { (s, e) } else { (s * 8, e * 8 + 7) })
}

/// The BYTE|BIT unit argument.
fn parse_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Set bits of `s` in the bit range `[first, last]`.
fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let Some(bytes) = s.get(fb..=lb) else { return 0 };
    let mut n: u64 = bytes.iter().map(|b| b.count_ones() as u64).sum();
    // Take off the bits of the end bytes that lie outside the range.
    n -= (bytes[0] & !(0xffu8 >> (first & 7))).count_ones() as u64;
    n -= (bytes[bytes.len() - 1] & (0x7fu8 >> (last & 7))).count_ones() as u64;
    n
}

fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    let Some(s) = db.get_str(&args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let range = match args.len() {
        2 => bit_range(0, -1, false, s.len()),
        4 | 5 => {
            let start = parse_i64(&args[2])?;
            let end = parse_i64(&args[3])?;
            let bits = match args.get(4) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            // Unlike BITPOS, BITCOUNT takes an inverted all-negative range
            // as empty before clamping.
            if start < 0 && end < 0 && start > end {
                None
            } else {
                bit_range(start, end, bits, s.len())
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    out.int(range.map_or(0, |(a, b)| count_bits(s, a, b)) as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let want = match parse_i64(&args[2])? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::err("ERR The bit argument must be 1 or 0.")),
    };
    let now = ctx.now;
    let (db, out) = ctx.split();
    // A missing key is an endless run of zeros.
    let Some(s) = db.get_str(&args[1], now)? else {
        out.int(if want { -1 } else { 0 });
        return Ok(());
    };
    let (range, end_given) = match args.len() {
        3 => (bit_range(0, -1, false, s.len()), false),
        4..=6 => {
            let start = parse_i64(&args[3])?;
            let bits = match args.get(5) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            match args.get(4) {
                Some(e) => (bit_range(start, parse_i64(e)?, bits, s.len()), true),
                None => (bit_range(start, -1, bits, s.len()), false),
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((first, last)) = range else {
        out.int(-1);
        return Ok(());
    };
    let found = (first..=last).find(|&b| get_bit(s, b) == want);
    out.int(match found {
        Some(pos) => pos as i64,
        // Looking for a clear bit past the end of an open range finds the
        // padding right after the string.
        None if !want && !end_given => last as i64 + 1,
        None => -1,
    });
    Ok(())
}

#[derive(Clone, Copy)]
enum Op {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let op = if is(&args[1], "and") {
        Op::And
    } else if is(&args[1], "or") {
        Op::Or
    } else if is(&args[1], "xor") {
        Op::Xor
    } else if is(&args[1], "not") {
        Op::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if matches!(op, Op::Not) && args.len() != 4 {
        return Err(CmdError::err("ERR BITOP NOT must be called with a single source key."));
    }
    let now = ctx.now;
    let db = ctx.db();
    // Every source is type-checked (and copied) before anything is written.
    let mut srcs = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        srcs.push(db.get_str(key, now)?.map_or_else(Vec::new, |s| s.to_vec()));
    }
    let maxlen = srcs.iter().map(Vec::len).max().unwrap_or(0);
    let dest = &args[2];
    if maxlen == 0 {
        if db.remove(dest).is_some() {
            ctx.dirty(1);
        }
        ctx.out.int(0);
        return Ok(());
    }
    let mut srcs = srcs.into_iter();
    let mut res = srcs.next().unwrap_or_default();
    res.resize(maxlen, 0);
    match op {
        Op::Not => res.iter_mut().for_each(|b| *b = !*b),
        Op::And | Op::Or | Op::Xor => {
            for src in srcs {
                for (i, r) in res.iter_mut().enumerate() {
                    let b = src.get(i).copied().unwrap_or(0);
                    match op {
                        Op::And => *r &= b,
                        Op::Or => *r |= b,
                        _ => *r ^= b,
                    }
                }
            }
        }
    }
    db.insert(dest, Entry::new(Value::Str(res.into())));
    ctx.dirty(1);
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::command::string::tests::put_list;
    use crate::test_util::TestServer;

    #[test]
    fn setbit_getbit() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("SETBIT k 7 1"), ":0\r\n");
        assert_eq!(t.cmd("SETBIT k 7 1"), ":1\r\n");
        assert_eq!(t.cmd("GET k"), "$1\r\n\x01\r\n");
        assert_eq!(t.cmd("GETBIT k 7"), ":1\r\n");
        assert_eq!(t.cmd("GETBIT k 6"), ":0\r\n");
        assert_eq!(t.cmd("GETBIT k 100"), ":0\r\n");
        assert_eq!(t.cmd("SETBIT k 15 1"), ":0\r\n");
        assert_eq!(t.cmd("STRLEN k"), ":2\r\n");
        assert_eq!(t.cmd("SETBIT k 7 2"), "-ERR bit is not an integer or out of range\r\n");
        assert_eq!(t.cmd("SETBIT k -1 1"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("SETBIT k 4294967296 1"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("GETBIT k x"), "-ERR bit offset is not an integer or out of range\r\n");
        put_list(&mut t, "l");
        assert!(t.cmd("SETBIT l 1 1").starts_with("-WRONGTYPE"));
        assert!(t.cmd("GETBIT l 1").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn count_and_pos() {
        let mut t = TestServer::new();
        t.cmd("SET k foobar");
        assert_eq!(t.cmd("BITCOUNT k"), ":26\r\n");
        assert_eq!(t.cmd("BITCOUNT k 1 1"), ":6\r\n");
        assert_eq!(t.cmd("BITCOUNT k 5 30 BIT"), ":17\r\n");
        assert_eq!(t.cmd("BITCOUNT k -1 -2"), ":0\r\n");
        assert_eq!(t.cmd("BITCOUNT k -26 -65"), ":0\r\n");
        assert_eq!(t.cmd("BITCOUNT k -26 0"), ":4\r\n");
        assert_eq!(t.cmd("BITPOS k 1 -26 -65"), ":1\r\n");
        assert_eq!(t.cmd("BITCOUNT k 0"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("BITCOUNT nokey 0"), ":0\r\n");
        t.cmd_args(&["SET".into(), "p".into(), Bytes::from_static(b"\x00\x0f\xff")]);
        assert_eq!(t.cmd("BITPOS p 1"), ":12\r\n");
        assert_eq!(t.cmd("BITPOS p 0 2"), ":24\r\n");
        assert_eq!(t.cmd("BITPOS p 0 2 -1"), ":-1\r\n");
        assert_eq!(t.cmd("BITPOS p 1 3 10 BIT"), ":-1\r\n");
        assert_eq!(t.cmd("BITPOS p 1 3 12 BIT"), ":12\r\n");
        assert_eq!(t.cmd("BITPOS nokey 0"), ":0\r\n");
        assert_eq!(t.cmd("BITPOS nokey 1"), ":-1\r\n");
        assert_eq!(t.cmd("BITPOS p 2"), "-ERR The bit argument must be 1 or 0.\r\n");
    }

    #[test]
    fn bitop() {
        let mut t = TestServer::new();
        t.cmd("SET a abc");
        t.cmd("SET b xy");
        assert_eq!(t.cmd("BITOP AND d a b"), ":3\r\n");
        assert_eq!(t.cmd("GET d"), "$3\r\n``\x00\r\n");
        assert_eq!(t.cmd("BITOP OR d a b"), ":3\r\n");
        assert_eq!(t.cmd("GET d"), "$3\r\ny{c\r\n");
        assert_eq!(t.cmd("BITOP XOR d a b"), ":3\r\n");
        assert_eq!(t.cmd("BITOP NOT d b"), ":2\r\n");
        assert_eq!(t.cmd("GET d"), "$2\r\n\u{FFFD}\u{FFFD}\r\n");
        assert_eq!(t.cmd("BITOP NOT d a b"), "-ERR BITOP NOT must be called with a single source key.\r\n");
        assert_eq!(t.cmd("BITOP NAND d a b"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("BITOP AND d x y"), ":0\r\n");
        assert_eq!(t.cmd("GET d"), "$-1\r\n");
        put_list(&mut t, "l");
        assert!(t.cmd("BITOP OR d a l").starts_with("-WRONGTYPE"));
    }

    #[test]
    fn which_error_wins() {
        // Expected replies taken from redis-server 7.0.15.
        let mut t = TestServer::new();
        put_list(&mut t, "wl");
        t.cmd("SET k abc");
        for (cmd, want) in [
            ("SETBIT wl 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SETBIT wl x 1", "-ERR bit offset is not an integer or out of range\r\n"),
            ("SETBIT wl 0 2", "-ERR bit is not an integer or out of range\r\n"),
            ("GETBIT wl 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("GETBIT wl x", "-ERR bit offset is not an integer or out of range\r\n"),
            ("BITCOUNT wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITCOUNT wl 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITCOUNT wl x y", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITPOS wl 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITPOS wl 2", "-ERR The bit argument must be 1 or 0.\r\n"),
            ("BITOP AND d k wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITOP NOT d wl", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITFIELD wl GET u8 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITFIELD wl SET u8 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITFIELD wl SET u8 0 x", "-ERR value is not an integer or out of range\r\n"),
            ("BITFIELD_RO wl GET u8 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("BITFIELD_RO wl SET u8 0 1", "-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
            ("BITOP AND wl k", ":3\r\n"),
        ] {
            assert_eq!(t.cmd(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn offsets_bounded_by_proto_max_bulk_len() {
        let config = crate::config::Config { proto_max_bulk_len: 2, ..Default::default() };
        let mut t = TestServer::with_config(config);
        assert_eq!(t.cmd("SETBIT k 15 1"), ":0\r\n");
        assert_eq!(t.cmd("SETBIT k 16 1"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("GETBIT k 16"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("BITFIELD k GET u8 #2"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("BITFIELD k SET u8 #1 7"), "*1\r\n:1\r\n");
        assert_eq!(t.cmd("STRLEN k"), ":2\r\n");
    }
}
