//! The keyspace: every database, the values in them, and the bookkeeping
//! that commands leave behind (keys to wake blocked clients on, keys that
//! WATCHing clients care about, the change counter the save rules read).
//!
//! The whole [`Store`] sits behind one short-held mutex in
//! [`crate::server::Shared`]; a session takes it once per batch of pipelined
//! requests and never across an `.await`.

pub mod db;
pub mod value;
pub mod zset;

use std::collections::VecDeque;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use tokio::sync::oneshot;

pub use db::{Db, Entry};
pub use value::{Blob, Str, Value};

use crate::client::ClientId;

/// A client waiting in BLPOP & co. for one of `keys` to get data.
pub struct Waiter {
    pub client: ClientId,
    pub db: usize,
    pub keys: Vec<Blob>,
    /// The blocking command, replayed when a key is ready.
    pub args: Vec<Bytes>,
    pub proto: slotway_resp::Proto,
    pub handle: std::sync::Arc<crate::client::ClientHandle>,
    /// Receives the reply once the command has been served.
    pub tx: oneshot::Sender<bytes::BytesMut>,
}

/// A client WATCHing a key.
struct Watcher {
    client: ClientId,
    /// The key was already logically expired when WATCHed.
    expired: bool,
}

/// Everything guarded by the keyspace lock.
pub struct Store {
    pub dbs: Vec<Db>,
    /// Writes since the last successful save (`rdb_changes_since_last_save`).
    pub dirty: u64,
    /// (db, key) -> clients WATCHing it.
    watched: HashMap<(usize, Blob), Vec<Watcher>>,
    /// Clients whose WATCHed keys were touched: their EXEC fails.
    dirty_cas: HashSet<ClientId>,
    /// (db, key) -> clients blocked on it, first come first served.
    blocked: HashMap<(usize, Blob), VecDeque<ClientId>>,
    waiters: HashMap<ClientId, Waiter>,
    /// Keys that got data while someone was blocked on them, in the order
    /// they were touched.
    pub ready: Vec<(usize, Blob)>,
    /// The key a blocked command is being replayed for (see
    /// [`Store::serving_key`]).
    serving: Option<Blob>,
    pub stats: StoreStats,
    /// Eviction's candidate pool and bookkeeping.
    pub evict: crate::evict::State,
}

#[derive(Debug, Default, Clone)]
pub struct StoreStats {
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub evicted_keys: u64,
}

impl Store {
    pub fn new(databases: usize) -> Self {
        Store {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            dirty: 0,
            watched: HashMap::new(),
            dirty_cas: HashSet::new(),
            blocked: HashMap::new(),
            waiters: HashMap::new(),
            ready: Vec::new(),
            serving: None,
            stats: StoreStats::default(),
            evict: Default::default(),
        }
    }

    /// A key was modified: WATCHers lose their transaction and blocked
    /// clients get a chance to be served.
    /// Whether touching a key can matter: someone WATCHes or is blocked.
    /// Lets the hot path skip finding the keys a write touched.
    pub fn tracks_keys(&self) -> bool {
        !self.watched.is_empty() || !self.blocked.is_empty()
    }

    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if !self.watched.is_empty() {
            if let Some(watchers) = self.watched.get_mut(&(db, Blob::from(key))) {
                let gone = self.dbs.get(db).is_none_or(|d| d.peek(key).is_none());
                for w in watchers.iter_mut() {
                    if w.expired && gone {
                        // Watched while already logically expired and now
                        // deleted: no visible change, as Redis sees it.
                        w.expired = false;
                        continue;
                    }
                    self.dirty_cas.insert(w.client);
                }
            }
        }
        if !self.blocked.is_empty() && self.blocked.contains_key(&(db, Blob::from(key))) {
            self.ready.push((db, key.into()));
        }
    }

    /// Every key of `db` (all databases for `None`) is about to go at once
    /// (FLUSHDB, FLUSHALL). Call before clearing: like Redis, only watched
    /// keys that exist abort their transactions. (Called on an already
    /// empty database it aborts every watcher of it, so calling it late
    /// errs on the safe side.)
    pub fn touch_all(&mut self, db: Option<usize>) {
        for ((d, key), watchers) in self.watched.iter_mut() {
            if db.is_some_and(|x| x != *d) {
                continue;
            }
            let Some(x) = self.dbs.get(*d) else { continue };
            if !x.is_empty() && x.peek(key).is_none() {
                continue;
            }
            for w in watchers.iter_mut() {
                if w.expired {
                    // An already expired key being flushed is no logical
                    // change.
                    w.expired = false;
                } else {
                    self.dirty_cas.insert(w.client);
                }
            }
        }
        let keys: Vec<_> = self.blocked.keys().filter(|(d, _)| db.is_none_or(|x| x == *d)).cloned().collect();
        self.ready.extend(keys);
    }

    /// Databases `a` and `b` are about to be swapped (SWAPDB): a watched key
    /// that exists on either side changes.
    pub fn touch_swap(&mut self, a: usize, b: usize) {
        for ((d, key), watchers) in self.watched.iter() {
            if *d != a && *d != b {
                continue;
            }
            let other = if *d == a { b } else { a };
            let exists = |db: usize| self.dbs.get(db).is_some_and(|x| x.peek(key).is_some());
            if exists(*d) || exists(other) {
                self.dirty_cas.extend(watchers.iter().map(|w| w.client));
            }
        }
        let keys: Vec<_> = self.blocked.keys().filter(|(d, _)| *d == a || *d == b).cloned().collect();
        self.ready.extend(keys);
    }

    /// WATCH: `now` tells whether the key is already logically expired, in
    /// which case its later deletion is not a change.
    pub fn watch(&mut self, client: ClientId, db: usize, key: &[u8], now: u64) {
        let expired = self.dbs.get(db).and_then(|d| d.peek(key)).is_some_and(|e| e.expire() != 0 && e.expire() <= now);
        let list = self.watched.entry((db, key.into())).or_default();
        if !list.iter().any(|w| w.client == client) {
            list.push(Watcher { client, expired });
        }
    }

    /// Forgets `client`'s watches; `keys` are the (db, key) pairs it watched.
    pub fn unwatch(&mut self, client: ClientId, keys: &[(usize, Blob)]) {
        for k in keys {
            if let Some(list) = self.watched.get_mut(k) {
                list.retain(|w| w.client != client);
                if list.is_empty() {
                    self.watched.remove(k);
                }
            }
        }
        self.dirty_cas.remove(&client);
    }

    /// EXEC must fail: a watched key was touched, or one that was alive at
    /// WATCH time has expired since (even if nobody deleted it yet).
    pub fn is_dirty_cas(&self, client: ClientId, keys: &[(usize, Blob)], now: u64) -> bool {
        if self.dirty_cas.contains(&client) {
            return true;
        }
        keys.iter().any(|k| {
            let was_expired =
                self.watched.get(k).and_then(|l| l.iter().find(|w| w.client == client)).is_some_and(|w| w.expired);
            !was_expired
                && self.dbs.get(k.0).and_then(|d| d.peek(&k.1)).is_some_and(|e| e.expire() != 0 && e.expire() <= now)
        })
    }

    pub fn mark_dirty_cas(&mut self, client: ClientId) {
        self.dirty_cas.insert(client);
    }

    /// Parks a blocked client; [`crate::dispatch::serve_blocked`] serves the
    /// clients of a key in the order they blocked.
    pub fn block(&mut self, w: Waiter) {
        for k in &w.keys {
            self.blocked.entry((w.db, k.clone())).or_default().push_back(w.client);
        }
        self.waiters.insert(w.client, w);
    }

    /// Removes a blocked client (timeout, disconnect, CLIENT UNBLOCK).
    pub fn unblock(&mut self, client: ClientId) -> Option<Waiter> {
        let w = self.waiters.remove(&client)?;
        for k in &w.keys {
            let slot = (w.db, k.clone());
            if let Some(q) = self.blocked.get_mut(&slot) {
                q.retain(|c| *c != client);
                if q.is_empty() {
                    self.blocked.remove(&slot);
                }
            }
        }
        Some(w)
    }

    /// The clients blocked on `key`, oldest first.
    pub fn blocked_on(&self, db: usize, key: &[u8]) -> Vec<ClientId> {
        self.blocked.get(&(db, Blob::from(key))).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    pub fn waiter(&self, client: ClientId) -> Option<&Waiter> {
        self.waiters.get(&client)
    }

    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_blocked(&self, client: ClientId) -> bool {
        self.waiters.contains_key(&client)
    }

    pub fn watched_keys(&self) -> usize {
        self.watched.len()
    }

    /// While a blocked command is replayed: the key whose change woke it.
    /// Blocking handlers serve from this key only, as Redis does.
    pub fn serving_key(&self) -> Option<&[u8]> {
        self.serving.as_deref()
    }

    pub fn set_serving_key(&mut self, key: Option<Blob>) {
        self.serving = key;
    }
}
