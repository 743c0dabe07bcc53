//! What a successful write propagates as: the commands that redo its
//! effect on another copy of the keyspace, whatever the clock or the
//! random choices there (Redis 7.0's rewrites, checked against a real
//! redis-server's AOF):
//!
//! - relative expiries become absolute: EXPIRE/PEXPIRE/EXPIREAT →
//!   `PEXPIREAT key ms [flag]`, SETEX/PSETEX/SET EX|PX|EXAT → `SET key
//!   value PXAT ms`, GETEX EX.. → `PEXPIREAT key ms`, GETEX PERSIST →
//!   `PERSIST key`; an expiry in the past deleted the key → `DEL key`;
//! - GETDEL → DEL; INCRBYFLOAT → `SET key result KEEPTTL`; HINCRBYFLOAT →
//!   `HSET key field result`;
//! - SPOP → one SREM per popped member (DEL when a count took the whole
//!   set);
//! - blocking pops → their non-blocking form: BLPOP → `LPOP key`, BLMOVE →
//!   LMOVE, BRPOPLPUSH → RPOPLPUSH, BZPOPMIN → `ZPOPMIN key`, [B]LMPOP →
//!   `LPOP key n`, [B]ZMPOP → `ZPOPMIN key n`;
//! - MULTI and EXEC themselves propagate nothing (see the parent module);
//! - anything else: its own arguments.
//!
//! The absolute times and results are read back from the keyspace after
//! the handler ran, and popped members from the reply it wrote, so the
//! handlers need not know about propagation.

use bytes::{Bytes, BytesMut};
use slotway_resp::frame::{Frame, FrameCodec};
use tokio_util::codec::Decoder;

use crate::store::{Db, Value};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// What a write propagates as.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Its own arguments (most commands).
    Same,
    /// These commands instead (none: nothing to propagate).
    Rewritten(Vec<Vec<Bytes>>),
}

/// The commands that redo `args` (table name `name`), which just changed
/// `db`; `reply` is the reply it wrote.
pub fn effect(name: &str, args: &[Bytes], db: &Db, reply: &[u8]) -> Effect {
    match name {
        "set" if !args[3..].iter().any(|a| is(a, "ex") || is(a, "px") || is(a, "exat")) => Effect::Same,
        "set" | "setex" | "psetex" | "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" | "getdel"
        | "incrbyfloat" | "hincrbyfloat" | "spop" | "blpop" | "brpop" | "bzpopmin" | "bzpopmax" | "blmove"
        | "brpoplpush" | "lmpop" | "blmpop" | "zmpop" | "bzmpop" | "multi" | "exec" | "migrate" | "restore"
        | "restore-asking" => Effect::Rewritten(rewritten(name, args, db, reply)),
        _ => Effect::Same,
    }
}

fn rewritten(name: &str, args: &[Bytes], db: &Db, reply: &[u8]) -> Vec<Vec<Bytes>> {
    let key = || args[1].clone();
    let expire_of = |k: &[u8]| db.peek(k).map(|e| db.exact_expire(k, e.expire()));
    match name {
        // MIGRATE's deletions go out as DELs on their own.
        "multi" | "exec" | "migrate" => Vec::new(),
        "restore" | "restore-asking" => {
            let relative = args[2][..] != *b"0" && !args[4..].iter().any(|a| is(a, "absttl"));
            match expire_of(&args[1]) {
                Some(at) if relative && at != 0 => {
                    let mut v = args.to_vec();
                    v[2] = Bytes::from(at.to_string());
                    v.push(b("ABSTTL"));
                    vec![v]
                }
                None if relative => Vec::new(),
                _ => vec![args.to_vec()],
            }
        }
        "set" => {
            let has_rel = args[3..].iter().any(|a| is(a, "ex") || is(a, "px") || is(a, "exat"));
            match expire_of(&args[1]) {
                Some(at) if has_rel && at != 0 => vec![set_pxat(key(), args[2].clone(), at)],
                _ => vec![args.to_vec()],
            }
        }
        "setex" | "psetex" => match expire_of(&args[1]) {
            Some(at) if at != 0 => vec![set_pxat(key(), args[3].clone(), at)],
            _ => vec![args.to_vec()],
        },
        "expire" | "pexpire" | "expireat" | "pexpireat" => match expire_of(&args[1]) {
            None => vec![vec![b("DEL"), key()]],
            Some(at) => {
                let mut v = vec![b("PEXPIREAT"), key(), Bytes::from(at.to_string())];
                v.extend(args[3..].iter().cloned());
                vec![v]
            }
        },
        "getex" => match expire_of(&args[1]) {
            None => vec![vec![b("DEL"), key()]],
            Some(_) if args[2..].iter().any(|a| is(a, "persist")) => vec![vec![b("PERSIST"), key()]],
            Some(at) if at != 0 => vec![vec![b("PEXPIREAT"), key(), Bytes::from(at.to_string())]],
            Some(_) => Vec::new(),
        },
        "getdel" => vec![vec![b("DEL"), key()]],
        "incrbyfloat" => match db.peek(&args[1]).map(|e| &e.value) {
            Some(Value::Str(s)) => vec![vec![b("SET"), key(), Bytes::copy_from_slice(s), b("KEEPTTL")]],
            _ => vec![args.to_vec()],
        },
        "hincrbyfloat" => match db.peek(&args[1]).map(|e| &e.value) {
            Some(Value::Hash(h)) => match h.get(&args[2][..]) {
                Some(v) => vec![vec![b("HSET"), key(), args[2].clone(), Bytes::copy_from_slice(v)]],
                None => vec![args.to_vec()],
            },
            _ => vec![args.to_vec()],
        },
        "spop" => spop(args, db, reply),
        "blpop" | "brpop" => match parse(reply) {
            Some(Frame::Array(a)) if a.len() == 2 => {
                let cmd = if name == "blpop" { "LPOP" } else { "RPOP" };
                vec![vec![b(cmd), bytes_of(&a[0])]]
            }
            _ => Vec::new(),
        },
        "bzpopmin" | "bzpopmax" => match parse(reply) {
            Some(Frame::Array(a)) if a.len() == 3 => {
                let cmd = if name == "bzpopmin" { "ZPOPMIN" } else { "ZPOPMAX" };
                vec![vec![b(cmd), bytes_of(&a[0])]]
            }
            _ => Vec::new(),
        },
        "blmove" => {
            let mut v = vec![b("LMOVE")];
            v.extend(args[1..5].iter().cloned());
            vec![v]
        }
        "brpoplpush" => vec![vec![b("RPOPLPUSH"), args[1].clone(), args[2].clone()]],
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => mpop(name, args, reply),
        _ => vec![args.to_vec()],
    }
}

fn set_pxat(key: Bytes, value: Bytes, at: u64) -> Vec<Bytes> {
    vec![b("SET"), key, value, b("PXAT"), Bytes::from(at.to_string())]
}

fn parse(reply: &[u8]) -> Option<Frame> {
    let mut buf = BytesMut::from(reply);
    FrameCodec::default().decode(&mut buf).ok().flatten()
}

fn bytes_of(f: &Frame) -> Bytes {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => b.clone(),
        Frame::Integer(i) => Bytes::from(i.to_string()),
        _ => Bytes::new(),
    }
}

/// SPOP: the members went one SREM each; a count that emptied the set
/// deleted it whole.
fn spop(args: &[Bytes], db: &Db, reply: &[u8]) -> Vec<Vec<Bytes>> {
    let key = &args[1];
    match parse(reply) {
        Some(Frame::Bulk(m)) => vec![vec![b("SREM"), key.clone(), m]],
        Some(Frame::Array(ms) | Frame::Set(ms)) => {
            if db.peek(key).is_none() {
                return vec![vec![b("DEL"), key.clone()]];
            }
            ms.iter().map(|m| vec![b("SREM"), key.clone(), bytes_of(m)]).collect()
        }
        _ => Vec::new(),
    }
}

/// LMPOP/ZMPOP and their blocking forms: the key and the number of
/// elements come from the reply, the direction from the arguments.
fn mpop(name: &str, args: &[Bytes], reply: &[u8]) -> Vec<Vec<Bytes>> {
    let Some(Frame::Array(a)) = parse(reply) else { return Vec::new() };
    let (Some(key), Some(Frame::Array(items))) = (a.first(), a.get(1)) else { return Vec::new() };
    // numkeys follows the timeout in the blocking forms.
    let at = if name.starts_with('b') { 2 } else { 1 };
    let numkeys = args.get(at).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok()).unwrap_or(0);
    let dir = args.get(at + 1 + numkeys).map(|d| d.to_ascii_uppercase()).unwrap_or_default();
    let cmd = match (name.ends_with("lmpop"), &dir[..]) {
        (true, b"LEFT") => "LPOP",
        (true, _) => "RPOP",
        (false, b"MIN") => "ZPOPMIN",
        (false, _) => "ZPOPMAX",
    };
    vec![vec![b(cmd), bytes_of(key), Bytes::from(items.len().to_string())]]
}

#[cfg(test)]
mod tests;
