//! The command propagation stream: what a write did, as commands that redo
//! it deterministically, in keyspace order, for the AOF and (later) the
//! replication backlog.
//!
//! Flow: [`crate::dispatch::run`] opens a unit ([`Propagator::begin`]) per
//! command; after the handler it pushes the DELs of keys that expired on
//! the way, then the command's effect (its arguments, or the rewrite from
//! [`rewrite`]: relative expiries made absolute, INCRBYFLOAT as SET, SPOP
//! as SREM, a served BLPOP as LPOP, ...). When the outermost unit ends
//! (EXEC's inner commands are nested units), its commands go to every
//! consumer, wrapped in MULTI/EXEC when there is more than one, as Redis
//! 7.0 does. Everything happens under the keyspace lock, so the stream is
//! in the order the keyspace saw the changes.
//!
//! A consumer ([`Consumer`]) gets `(db, argv)` per command and keeps its
//! own SELECT state ([`Selector`]): the AOF file and each replica stream
//! start with no database selected. `feed` runs under the keyspace lock: a
//! consumer only appends to a buffer it drains elsewhere (the AOF writes it
//! before replies go out; a replication backlog would copy it into its
//! bounded ring and wake the replica tasks), and must never block.
//!
//! With no consumer the stream is off: `dispatch::run` pays one relaxed
//! atomic load per command and nothing else.

pub mod rewrite;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// Receives the propagated commands. See the module doc for the rules.
pub trait Consumer: Send + Sync {
    fn feed(&self, db: usize, argv: &[Bytes]);
}

#[derive(Default)]
pub struct Propagator {
    active: AtomicBool,
    /// Nesting of units: 1 inside a plain command, 2 inside EXEC's. Only
    /// changed under the keyspace lock; atomic so that opening and closing
    /// a unit takes no lock.
    depth: AtomicU32,
    /// Whether `Inner::pending` has commands.
    has_pending: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    consumers: Vec<Arc<dyn Consumer>>,
    /// The commands of the open unit.
    pending: Vec<(usize, Vec<Bytes>)>,
}

impl Propagator {
    /// Whether anything consumes the stream (the hot path's only check).
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Adds a consumer. Call under the keyspace lock, right after taking
    /// the snapshot the consumer starts from, so it misses no change.
    pub fn subscribe(&self, c: Arc<dyn Consumer>) {
        let mut inner = self.inner.lock();
        inner.consumers.push(c);
        self.active.store(true, Ordering::Relaxed);
    }

    pub fn unsubscribe(&self, c: &Arc<dyn Consumer>) {
        let mut inner = self.inner.lock();
        inner.consumers.retain(|x| !Arc::ptr_eq(x, c));
        self.active.store(!inner.consumers.is_empty(), Ordering::Relaxed);
    }

    /// Opens a unit (one command, or EXEC around its commands).
    pub fn begin(&self) {
        self.depth.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the unit being run is the outermost one.
    pub fn is_top(&self) -> bool {
        self.depth.load(Ordering::Relaxed) <= 1
    }

    /// Adds a command to the open unit.
    pub fn push(&self, db: usize, argv: Vec<Bytes>) {
        let mut inner = self.inner.lock();
        if self.depth.load(Ordering::Relaxed) == 0 {
            feed_all(&inner.consumers, db, &argv);
        } else {
            inner.pending.push((db, argv));
            self.has_pending.store(true, Ordering::Relaxed);
        }
    }

    /// A plain command's effect, when it is its own arguments: outside a
    /// transaction nothing can join it, so it goes out without a copy.
    pub fn push_args(&self, db: usize, args: &[Bytes]) {
        if self.is_top() && !self.has_pending.load(Ordering::Relaxed) {
            self.emit(db, args);
        } else {
            self.push(db, args.to_vec());
        }
    }

    /// Sends a command on its own, outside any unit: keys deleted by the
    /// active expiry cycle (or eviction), and lazily expired keys ahead of
    /// the plain command that found them (Redis 7.0 does not wrap those).
    pub fn emit(&self, db: usize, argv: &[Bytes]) {
        let inner = self.inner.lock();
        feed_all(&inner.consumers, db, argv);
    }

    /// Closes a unit; the outermost one sends what it gathered.
    pub fn end(&self) {
        let depth = self.depth.load(Ordering::Relaxed).saturating_sub(1);
        self.depth.store(depth, Ordering::Relaxed);
        if depth > 0 || !self.has_pending.load(Ordering::Relaxed) {
            return;
        }
        let mut inner = self.inner.lock();
        self.has_pending.store(false, Ordering::Relaxed);
        let pending = std::mem::take(&mut inner.pending);
        if pending.is_empty() {
            return;
        }
        let wrap = pending.len() > 1;
        let db0 = pending[0].0;
        if wrap {
            feed_all(&inner.consumers, db0, &[Bytes::from_static(b"MULTI")]);
        }
        let mut last = db0;
        for (db, argv) in &pending {
            feed_all(&inner.consumers, *db, argv);
            last = *db;
        }
        if wrap {
            feed_all(&inner.consumers, last, &[Bytes::from_static(b"EXEC")]);
        }
    }
}

/// Keys that expired (lazily, or in the active cycle) or were evicted:
/// each propagates as a DEL. Inside a transaction they belong to it; else
/// they go out on their own, ahead of the command that found them.
pub fn expired(shared: &crate::server::Shared, db: usize, keys: &[crate::store::Blob]) {
    let p = &shared.propagator;
    let alone = p.is_top();
    for k in keys {
        let argv = vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(k)];
        if alone {
            p.emit(db, &argv);
        } else {
            p.push(db, argv);
        }
    }
}

fn feed_all(consumers: &[Arc<dyn Consumer>], db: usize, argv: &[Bytes]) {
    for c in consumers {
        c.feed(db, argv);
    }
}

/// A consumer's SELECT state: encodes commands as RESP, preceded by a
/// SELECT whenever the database differs from the previous command's.
#[derive(Debug, Default, Clone)]
pub struct Selector {
    selected: Option<usize>,
}

impl Selector {
    /// Forgets the selected database: the next command starts with SELECT
    /// (a new AOF file, a new replica).
    pub fn reset(&mut self) {
        self.selected = None;
    }

    pub fn encode(&mut self, db: usize, argv: &[Bytes], out: &mut Vec<u8>) {
        if self.selected != Some(db) {
            let n = db.to_string();
            encode_command(&[b"SELECT".as_slice(), n.as_bytes()], out);
            self.selected = Some(db);
        }
        encode_command(argv, out);
    }
}

/// `*N\r\n$len\r\narg\r\n...`: a command as Redis writes it to the AOF.
///
/// This runs for every propagated write, under the keyspace lock: the
/// output grows once, and a header with a length under 100 (nearly all of
/// them) is one fixed-size copy the compiler turns into a few moves, not a
/// digit loop and three `memcpy` calls.
pub fn encode_command<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<u8>) {
    let bound = MAX_HEADER + argv.iter().map(|a| MAX_HEADER + a.as_ref().len() + 2).sum::<usize>();
    out.reserve(bound);
    header(b'*', argv.len(), out);
    for a in argv {
        let a = a.as_ref();
        header(b'$', a.len(), out);
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The longest header: marker, 20 digits, CRLF.
const MAX_HEADER: usize = 23;

/// `*12\r\n` or `$5\r\n`, without the formatting machinery.
#[inline(always)]
fn header(marker: u8, n: usize, out: &mut Vec<u8>) {
    if n < 10 {
        out.extend_from_slice(&[marker, b'0' + n as u8, b'\r', b'\n']);
    } else if n < 100 {
        out.extend_from_slice(&[marker, b'0' + (n / 10) as u8, b'0' + (n % 10) as u8, b'\r', b'\n']);
    } else {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        while n > 0 {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.push(marker);
        out.extend_from_slice(&digits[i..]);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what it is fed, for tests.
    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<(usize, Vec<Bytes>)>>);

    impl Consumer for Recorder {
        fn feed(&self, db: usize, argv: &[Bytes]) {
            self.0.lock().push((db, argv.to_vec()));
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn units_of_more_than_one_command_are_wrapped() {
        let p = Propagator::default();
        let r = Arc::new(Recorder::default());
        p.subscribe(r.clone());
        assert!(p.is_active());
        p.begin();
        p.push(0, vec![b("SET"), b("a"), b("1")]);
        p.end();
        p.begin();
        p.begin();
        p.push(0, vec![b("SET"), b("a"), b("1")]);
        p.end();
        p.begin();
        p.push(2, vec![b("DEL"), b("a")]);
        p.end();
        p.end();
        let got: Vec<String> = r.0.lock().iter().map(|(db, a)| format!("{db}:{}", a.len())).collect();
        assert_eq!(got, ["0:3", "0:1", "0:3", "2:2", "2:1"]);
        let c: Arc<dyn Consumer> = r;
        p.unsubscribe(&c);
        assert!(!p.is_active());
    }

    #[test]
    fn encodes_every_length_exactly() {
        for len in [0usize, 1, 9, 10, 99, 100, 12345] {
            let arg = vec![b'x'; len];
            let mut out = b"prefix".to_vec();
            encode_command(&[b"SET".as_slice(), &arg], &mut out);
            let want = format!("prefix*2\r\n$3\r\nSET\r\n${len}\r\n{}\r\n", "x".repeat(len));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        let many: Vec<&[u8]> = vec![b"a"; 11];
        let mut out = Vec::new();
        encode_command(&many, &mut out);
        assert!(out.starts_with(b"*11\r\n$1\r\na\r\n"));
        assert_eq!(out.len(), 5 + 11 * 7);
    }

    #[test]
    fn selector_selects_on_change_only() {
        let mut s = Selector::default();
        let mut out = Vec::new();
        s.encode(0, &[b("PING")], &mut out);
        s.encode(0, &[b("PING")], &mut out);
        s.encode(3, &[b("PING")], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n\
             *2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*1\r\n$4\r\nPING\r\n"
        );
    }
}
