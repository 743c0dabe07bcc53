//! BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits
//! (unsigned up to 63) at arbitrary bit offsets, with WRAP/SAT/FAIL
//! overflow control.
//!
//! Every operation is parsed and checked before the key is touched, so a
//! bad argument anywhere leaves the value as it was.

use bytes::Bytes;

use super::{parse_offset, str_for_write};
use crate::command::{is, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    Incrby,
}

#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
}

struct Op {
    kind: Kind,
    field: Field,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

pub(super) fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false)
}

pub(super) fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true)
}

fn parse_type(arg: &[u8]) -> Result<Field, CmdError> {
    let err = || {
        CmdError::err(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let bits = slotway_resp::request::parse_int(&arg[1..]).ok_or_else(err)?;
    if bits < 1 || bits > if signed { 64 } else { 63 } {
        return Err(err());
    }
    Ok(Field { signed, bits: bits as u32 })
}

fn parse_ops(args: &[Bytes], max_bulk: i64) -> Result<Vec<Op>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while let Some(sub) = args.get(j) {
        let left = args.len() - j - 1;
        let kind = if is(sub, "get") && left >= 2 {
            Kind::Get
        } else if is(sub, "set") && left >= 3 {
            Kind::Set
        } else if is(sub, "incrby") && left >= 3 {
            Kind::Incrby
        } else if is(sub, "overflow") && left >= 1 {
            let how = &args[j + 1];
            overflow = if is(how, "wrap") {
                Overflow::Wrap
            } else if is(how, "sat") {
                Overflow::Sat
            } else if is(how, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let field = parse_type(&args[j + 1])?;
        let offset = parse_offset(&args[j + 2], Some(field.bits), max_bulk)?;
        let value = if kind == Kind::Get { 0 } else { parse_i64(&args[j + 3])? };
        ops.push(Op { kind, field, offset, value, overflow });
        j += if kind == Kind::Get { 3 } else { 4 };
    }
    Ok(ops)
}

fn run(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let ops = parse_ops(args, ctx.config.proto_max_bulk_len)?;
    let now = ctx.now;
    let key = &args[1];
    let writes = ops.iter().filter(|o| o.kind != Kind::Get).count();
    let (db, out) = ctx.split();
    if writes == 0 {
        let s = db.get_str(key, now)?.map_or(&[][..], |s| &s[..]);
        out.array(ops.len());
        for op in &ops {
            out.int(read(s, op.offset, op.field));
        }
        return Ok(());
    }
    if read_only {
        return Err(CmdError::err("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    let max_bit = ops.iter().filter(|o| o.kind != Kind::Get).map(|o| o.offset + o.field.bits as u64 - 1).max();
    let v = str_for_write(db, key, max_bit.unwrap_or(0), now)?;
    out.array(ops.len());
    for op in &ops {
        if op.kind == Kind::Get {
            out.int(read(v, op.offset, op.field));
            continue;
        }
        let old = read(v, op.offset, op.field);
        let (target, reply_old) = match op.kind {
            // An unsigned field reads the new value as a u64.
            Kind::Set if !op.field.signed => (op.value as u64 as i128, true),
            Kind::Set => (op.value as i128, true),
            _ => (old as i128 + op.value as i128, false),
        };
        match fit(target, op.field, op.overflow, op.kind == Kind::Set) {
            Some(new) => {
                write(v, op.offset, op.field.bits, new as u64);
                out.int(if reply_old { old } else { new });
            }
            None => out.null(),
        }
    }
    ctx.dirty(writes as u64);
    Ok(())
}

/// Brings `v` into the field's range by its overflow rule; `None` for a
/// FAIL overflow.
///
/// Saturation copies a Redis quirk: its overflow test for a signed SET
/// computes `max - value` in wrapping 64-bit arithmetic, so a value so
/// negative that this wraps saturates to the maximum, not the minimum.
fn fit(v: i128, f: Field, how: Overflow, set: bool) -> Option<i64> {
    let (min, max): (i128, i128) =
        if f.signed { (-(1i128 << (f.bits - 1)), (1i128 << (f.bits - 1)) - 1) } else { (0, (1i128 << f.bits) - 1) };
    if (min..=max).contains(&v) {
        return Some(v as i64);
    }
    match how {
        Overflow::Fail => None,
        Overflow::Sat => {
            let wraps = set && f.signed && f.bits < 64 && max - v > i64::MAX as i128;
            Some(if v > max || wraps { max } else { min } as i64)
        }
        Overflow::Wrap => {
            let m = (v as u128 as u64) & mask(f.bits);
            Some(if f.signed { sign_extend(m, f.bits) } else { m as i64 })
        }
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v >> (bits - 1) & 1 == 1 {
        (v | !mask(bits)) as i64
    } else {
        v as i64
    }
}

/// The field at bit `offset`; bits past the end of `s` read as zero.
fn read(s: &[u8], offset: u64, f: Field) -> i64 {
    let mut v = 0u64;
    for i in 0..f.bits as u64 {
        v = (v << 1) | super::get_bit(s, offset + i) as u64;
    }
    if f.signed {
        sign_extend(v, f.bits)
    } else {
        v as i64
    }
}

/// Writes the low `bits` of `v` at bit `offset`; `s` covers the field.
fn write(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..bits as u64 {
        let bit = offset + i;
        let on = v >> (bits as u64 - 1 - i) & 1 == 1;
        if let Some(byte) = s.get_mut((bit >> 3) as usize) {
            let m = 1u8 << (7 - (bit & 7));
            if on {
                *byte |= m;
            } else {
                *byte &= !m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::command::string::tests::put_list;
    use crate::test_util::TestServer;

    #[test]
    fn get_set_incr() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("BITFIELD k SET i8 0 100 GET i8 0"), "*2\r\n:0\r\n:100\r\n");
        assert_eq!(t.cmd("BITFIELD k INCRBY i8 0 100"), "*1\r\n:-56\r\n");
        assert_eq!(t.cmd("BITFIELD k OVERFLOW SAT INCRBY i8 0 -100"), "*1\r\n:-128\r\n");
        assert_eq!(t.cmd("BITFIELD k OVERFLOW FAIL INCRBY i8 0 -1 GET u8 0"), "*2\r\n$-1\r\n:128\r\n");
        assert_eq!(t.cmd("BITFIELD k SET u8 #1 255 GET u4 #2 GET u4 #3"), "*3\r\n:0\r\n:15\r\n:15\r\n");
        assert_eq!(t.cmd("BITFIELD k OVERFLOW SAT SET u8 0 -1 OVERFLOW WRAP SET u4 0 -1"), "*2\r\n:128\r\n:15\r\n");
        assert_eq!(
            t.cmd("BITFIELD k SET i64 0 -1 GET i64 0 GET u63 0"),
            "*3\r\n:-281474976710656\r\n:-1\r\n:9223372036854775807\r\n"
        );
        assert_eq!(t.cmd("BITFIELD k INCRBY i64 0 -9223372036854775808"), "*1\r\n:9223372036854775807\r\n");
        assert_eq!(
            t.cmd(
                "BITFIELD k OVERFLOW SAT SET i8 0 -9223372036854775808 GET i8 0 SET i8 0 -9223372036854775680 GET i8 0"
            ),
            "*4\r\n:127\r\n:127\r\n:127\r\n:-128\r\n"
        );
        assert_eq!(t.cmd("BITFIELD k OVERFLOW"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("BITFIELD k OVERFLOW X GET i8 0"), "-ERR Invalid OVERFLOW type specified\r\n");
        assert_eq!(t.cmd("BITFIELD k OVERFLOW SAT"), "*0\r\n");
        assert!(t.cmd("BITFIELD k GET u64 0").starts_with("-ERR Invalid bitfield type."));
        assert!(t.cmd("BITFIELD k GET I8 0").starts_with("-ERR Invalid bitfield type."));
        assert_eq!(t.cmd("BITFIELD k GET i8 -1"), "-ERR bit offset is not an integer or out of range\r\n");
        assert_eq!(t.cmd("BITFIELD k GET i8 4294967296"), "-ERR bit offset is not an integer or out of range\r\n");
    }

    #[test]
    fn read_only() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("BITFIELD_RO k GET i8 0"), "*1\r\n:0\r\n");
        assert_eq!(t.cmd("BITFIELD_RO k SET i8 0 1"), "-ERR BITFIELD_RO only supports the GET subcommand\r\n");
        assert_eq!(t.cmd("BITFIELD_RO k SET i8 0 x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(t.cmd("GET k"), "$-1\r\n");
        put_list(&mut t, "l");
        assert!(t.cmd("BITFIELD l GET i8 0").starts_with("-WRONGTYPE"));
        assert!(t.cmd("BITFIELD_RO l GET i8 0").starts_with("-WRONGTYPE"));
    }
}
