//! The active expiry cycle: reclaims expired keys nobody reads.
//!
//! Ten times a second (`hz`), it takes the keyspace lock for a bounded
//! amount of work per database, so clients never wait long behind it, and
//! keeps going in later ticks where it stopped.

use std::sync::Arc;
use std::time::Duration;

use crate::server::{unix_ms, Shared};

/// Entries examined per database per tick: small enough that the lock is
/// held for well under a millisecond.
const BUDGET: usize = 2000;

pub async fn active_cycle(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut store = shared.store.lock();
        let now = unix_ms();
        for db in 0..store.dbs.len() {
            let gone = store.dbs[db].expire_cycle(now, BUDGET);
            store.stats.expired_keys += gone.len() as u64;
            for k in &gone {
                store.touch(db, k);
            }
        }
        crate::dispatch::serve_blocked(&mut store, &shared);
    }
}
