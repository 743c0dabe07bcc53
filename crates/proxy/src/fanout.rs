//! Requests that touch several nodes: split by slot (MGET, MSET, DEL...),
//! fanned out to every master (DBSIZE, KEYS, FLUSHALL...), SCAN's walk over
//! the masters, RANDOMKEY and INFO's keyspace. Each part goes through
//! [`redirect::execute`], so redirections are handled per part; the parts'
//! raw replies are merged by the route's [`Merge`] policy.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::join_all;
use slotway_resp::{frame_len, FrameLimits};

use tokio::time::Instant;

use crate::redirect::{execute, Part, Target};
use crate::router::{Merge, Shape};
use crate::state::Proxy;

/// Bits of a proxy SCAN cursor that name the master; the node's own cursor
/// sits above them.
const NODE_BITS: u32 = 14;

/// Encodes `args` as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    b.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        b.put_slice(format!("${}\r\n", a.len()).as_bytes());
        b.put_slice(a);
        b.put_slice(b"\r\n");
    }
    b.freeze()
}

/// The elements of an array reply, as raw bytes; `None` if not an array.
pub fn array_elems(reply: &[u8]) -> Option<Vec<&[u8]>> {
    let rest = reply.strip_prefix(b"*")?;
    let eol = rest.iter().position(|&b| b == b'\r')?;
    let n: usize = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    let mut pos = 1 + eol + 2;
    let mut out = Vec::with_capacity(n);
    let limits = FrameLimits::default();
    for _ in 0..n {
        let len = frame_len(reply.get(pos..)?, &limits).ok()??;
        out.push(&reply[pos..pos + len]);
        pos += len;
    }
    Some(out)
}

fn int_of(reply: &[u8]) -> Option<i64> {
    std::str::from_utf8(reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?).ok()?.parse().ok()
}

fn array_of(elems: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + elems.iter().map(|e| e.len()).sum::<usize>());
    b.put_slice(format!("*{}\r\n", elems.len()).as_bytes());
    for e in elems {
        b.put_slice(e);
    }
    b.freeze()
}

/// Merges the parts' replies; the first error wins where the policy says
/// everything must succeed.
pub fn merge(policy: Merge, replies: &[Bytes]) -> Bytes {
    let first_err = replies.iter().find(|r| r.first() == Some(&b'-'));
    match policy {
        Merge::OneOk => {
            replies.iter().find(|r| r.first() != Some(&b'-')).or(replies.last()).cloned().unwrap_or_default()
        }
        _ if first_err.is_some() => first_err.cloned().unwrap_or_default(),
        Merge::AllOk => replies.first().cloned().unwrap_or_else(|| Bytes::from_static(b"+OK\r\n")),
        Merge::Sum => {
            let mut sum: i64 = 0;
            for r in replies {
                match int_of(r) {
                    Some(n) => sum = sum.saturating_add(n),
                    None => return r.clone(),
                }
            }
            Bytes::from(format!(":{sum}\r\n"))
        }
        Merge::Concat | Merge::KeyOrder => {
            let mut all = Vec::new();
            for r in replies {
                match array_elems(r) {
                    Some(e) => all.extend(e),
                    None => return r.clone(),
                }
            }
            array_of(&all)
        }
        Merge::LogicalAnd => {
            let mut acc: Vec<bool> = Vec::new();
            for (i, r) in replies.iter().enumerate() {
                let Some(e) = array_elems(r) else { return r.clone() };
                let bits: Vec<bool> = e.iter().map(|x| int_of(x).unwrap_or(0) != 0).collect();
                if i == 0 {
                    acc = bits;
                } else {
                    acc.iter_mut().zip(bits).for_each(|(a, b)| *a &= b);
                }
            }
            let mut b = BytesMut::new();
            b.put_slice(format!("*{}\r\n", acc.len()).as_bytes());
            for a in acc {
                b.put_slice(if a { b":1\r\n" } else { b":0\r\n" });
            }
            b.freeze()
        }
    }
}

/// A multi-key request split by slot, each part queued on its node.
pub struct Split {
    /// (slot, argument indices of its keys), in first-appearance order.
    groups: Vec<(u16, Vec<usize>)>,
    parts: Vec<Part>,
}

/// Splits a multi-key request by slot and queues every part, in order;
/// `keys` are the key argument indices.
pub async fn split_queue(proxy: &Arc<Proxy>, args: &[Bytes], keys: &[usize], shape: Shape, lane: usize) -> Split {
    let step = if shape == Shape::KeyValuePairs { 2 } else { 1 };
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for &k in keys {
        let slot = slotway_slots::key_slot(&args[k]);
        match groups.iter_mut().find(|g| g.0 == slot) {
            Some(g) => g.1.push(k),
            None => groups.push((slot, vec![k])),
        }
    }
    let mut parts = Vec::with_capacity(groups.len());
    let mut part: Vec<&[u8]> = Vec::new();
    for (slot, idx) in &groups {
        part.clear();
        part.push(&args[0]);
        for &i in idx {
            for j in i..i + step {
                part.push(args.get(j).map(|a| &a[..]).unwrap_or(b""));
            }
        }
        parts.push(Part::queue(proxy, Target::Slot(*slot), encode_command(&part), lane).await);
    }
    Split { groups, parts }
}

/// The merged reply of a split request.
pub async fn split_reply(
    proxy: &Arc<Proxy>,
    split: Split,
    keys: &[usize],
    policy: Merge,
    is_write: bool,
    lane: usize,
    deadline: Instant,
) -> Bytes {
    let Split { groups, parts } = split;
    let replies = join_all(parts.into_iter().map(|p| p.reply(proxy, is_write, lane, deadline))).await;
    if policy != Merge::KeyOrder {
        return merge(policy, &replies);
    }
    let mut out: Vec<&[u8]> = vec![b"$-1\r\n"; keys.len()];
    for ((_, idx), reply) in groups.iter().zip(&replies) {
        let Some(elems) = array_elems(reply).filter(|e| e.len() == idx.len()) else { return reply.clone() };
        for (k, e) in idx.iter().zip(elems) {
            if let Some(pos) = keys.iter().position(|x| x == k) {
                out[pos] = e;
            }
        }
    }
    array_of(&out)
}

/// Queues the same request to every master; `None` when there are none.
pub async fn all_queue(proxy: &Arc<Proxy>, raw: &Bytes, lane: usize) -> Option<Vec<Part>> {
    let n = proxy.topology.load().shards.len();
    if n == 0 {
        return None;
    }
    let mut parts = Vec::with_capacity(n);
    for i in 0..n {
        parts.push(Part::queue(proxy, Target::Master(i), raw.clone(), lane).await);
    }
    Some(parts)
}

/// The replies of requests queued to every master, merged.
pub async fn all_reply(
    proxy: &Arc<Proxy>,
    parts: Option<Vec<Part>>,
    policy: Merge,
    is_write: bool,
    lane: usize,
    deadline: Instant,
) -> Bytes {
    let Some(parts) = parts else { return Bytes::from_static(crate::redirect::errors::NOT_SERVED.as_bytes()) };
    let replies = join_all(parts.into_iter().map(|p| p.reply(proxy, is_write, lane, deadline))).await;
    merge(policy, &replies)
}

/// Splits a proxy cursor into (master index, that master's cursor).
pub fn unpack_cursor(c: u64) -> (usize, u64) {
    ((c & ((1 << NODE_BITS) - 1)) as usize, c >> NODE_BITS)
}

/// The proxy cursor for `node_cursor` on master `idx`; `None` when the
/// node's cursor is too large to pack.
pub fn pack_cursor(idx: usize, node_cursor: u64) -> Option<u64> {
    if node_cursor >> (64 - NODE_BITS) != 0 || idx >= 1 << NODE_BITS {
        return None;
    }
    Some(node_cursor << NODE_BITS | idx as u64)
}

/// A SCAN queued on the master its cursor names.
pub struct Scan {
    idx: usize,
    masters: usize,
    part: Part,
}

/// SCAN: the cursor names a master and that master's cursor; when one
/// master is done the cursor moves on to the next, and 0 after the last.
/// An invalid cursor is answered at once.
pub async fn scan_queue(proxy: &Arc<Proxy>, mut args: Vec<Bytes>, lane: usize) -> Result<Scan, Bytes> {
    let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|s| s.parse::<u64>().ok()) else {
        return Err(Bytes::from_static(b"-ERR invalid cursor\r\n"));
    };
    let (idx, node_cursor) = unpack_cursor(cursor);
    let masters = proxy.topology.load().shards.len();
    if idx >= masters.max(1) {
        return Err(Bytes::from_static(b"-ERR invalid cursor\r\n"));
    }
    args[1] = Bytes::from(node_cursor.to_string());
    let part = Part::queue(proxy, Target::Master(idx), encode_command(&args), lane).await;
    Ok(Scan { idx, masters, part })
}

/// The SCAN reply with the node's cursor packed into the proxy's.
pub async fn scan_reply(proxy: &Arc<Proxy>, scan: Scan, lane: usize, deadline: Instant) -> Bytes {
    let Scan { idx, masters, part } = scan;
    let reply = part.reply(proxy, false, lane, deadline).await;
    let Some(elems) = array_elems(&reply).filter(|e| e.len() == 2) else { return reply };
    let next = std::str::from_utf8(elems[0])
        .ok()
        .and_then(|s| s.strip_prefix('$'))
        .and_then(|s| s.split("\r\n").nth(1))
        .and_then(|s| s.parse::<u64>().ok());
    let Some(next) = next else { return reply };
    let packed = if next != 0 {
        pack_cursor(idx, next)
    } else if idx + 1 < masters {
        pack_cursor(idx + 1, 0)
    } else {
        Some(0)
    };
    let Some(packed) = packed else { return Bytes::from_static(b"-ERR slotway: node cursor too large\r\n") };
    let c = packed.to_string();
    let mut b = BytesMut::with_capacity(reply.len() + 8);
    b.put_slice(format!("*2\r\n${}\r\n{c}\r\n", c.len()).as_bytes());
    b.put_slice(elems[1]);
    b.freeze()
}

/// RANDOMKEY: a random master first (queued now), the others while they
/// have no keys.
pub async fn random_key_queue(proxy: &Arc<Proxy>, raw: Bytes, lane: usize) -> (usize, Part) {
    let n = proxy.topology.load().shards.len().max(1);
    let start: usize = rand::random::<usize>() % n;
    (start, Part::queue(proxy, Target::Master(start), raw, lane).await)
}

pub async fn random_key_reply(
    proxy: &Arc<Proxy>,
    (start, first): (usize, Part),
    raw: Bytes,
    lane: usize,
    deadline: Instant,
) -> Bytes {
    let n = proxy.topology.load().shards.len().max(1);
    let mut reply = first.reply(proxy, false, lane, deadline).await;
    for i in 1..n {
        if &reply[..] != b"$-1\r\n" {
            break;
        }
        reply = execute(proxy, Target::Master((start + i) % n), raw.clone(), false, lane).await;
    }
    reply
}

/// Sums the `dbN:keys=..,expires=..` lines of the masters' INFO keyspace.
pub async fn keyspace(proxy: &Arc<Proxy>, lane: usize) -> String {
    let n = proxy.topology.load().shards.len();
    let cmd = encode_command(&["INFO", "keyspace"]);
    let replies = join_all((0..n).map(|i| execute(proxy, Target::Master(i), cmd.clone(), false, lane))).await;
    let (mut keys, mut expires) = (0u64, 0u64);
    for r in &replies {
        let text = String::from_utf8_lossy(r);
        for line in text.lines().filter(|l| l.starts_with("db0:")) {
            for field in line["db0:".len()..].split(',') {
                match field.split_once('=') {
                    Some(("keys", v)) => keys += v.parse::<u64>().unwrap_or(0),
                    Some(("expires", v)) => expires += v.parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    if keys == 0 {
        return "# Keyspace\r\n".into();
    }
    format!("# Keyspace\r\ndb0:keys={keys},expires={expires},avg_ttl=0\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_packing_round_trips() {
        assert_eq!(pack_cursor(0, 0), Some(0));
        let c = pack_cursor(2, 12345).unwrap();
        assert_eq!(unpack_cursor(c), (2, 12345));
        assert_eq!(unpack_cursor(pack_cursor(1, 0).unwrap()), (1, 0));
        assert_eq!(pack_cursor(0, u64::MAX), None);
        assert_eq!(pack_cursor(1 << 14, 1), None);
    }

    #[test]
    fn merges_follow_their_policy() {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(merge(Merge::Sum, &[b(":2\r\n"), b(":3\r\n")]), b(":5\r\n"));
        assert_eq!(merge(Merge::Sum, &[b(":2\r\n"), b("-ERR x\r\n")]), b("-ERR x\r\n"));
        assert_eq!(merge(Merge::AllOk, &[b("+OK\r\n"), b("+OK\r\n")]), b("+OK\r\n"));
        assert_eq!(
            merge(Merge::Concat, &[b("*1\r\n$1\r\na\r\n"), b("*0\r\n"), b("*1\r\n$2\r\nbc\r\n")]),
            b("*2\r\n$1\r\na\r\n$2\r\nbc\r\n")
        );
        assert_eq!(merge(Merge::OneOk, &[b("-NOTBUSY x\r\n"), b("+OK\r\n")]), b("+OK\r\n"));
        assert_eq!(
            merge(Merge::LogicalAnd, &[b("*2\r\n:1\r\n:1\r\n"), b("*2\r\n:1\r\n:0\r\n")]),
            b("*2\r\n:1\r\n:0\r\n")
        );
    }

    #[test]
    fn array_elements_are_split_exactly() {
        let e = array_elems(b"*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n").unwrap();
        assert_eq!(e, vec![&b"$1\r\na\r\n"[..], b"$-1\r\n", b"*1\r\n:1\r\n"]);
        assert!(array_elems(b"*2\r\n$1\r\na\r\n").is_none());
        assert!(array_elems(b":1\r\n").is_none());
        assert_eq!(&encode_command(&["GET", "k"])[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
