//! The active expiry cycle: reclaims expired keys nobody reads.
//!
//! Ten times a second (`hz`), it takes the keyspace lock for a bounded
//! amount of work per database, so clients never wait long behind it, and
//! keeps going in later ticks where it stopped. While a step keeps finding
//! mostly expired keys it takes another, releasing the lock in between, up
//! to a time budget per tick: as Redis, it works harder when many keys are
//! expiring and stays cheap when few are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::{unix_ms, Shared};

/// Entries examined per database per step: small enough that the lock is
/// held for well under a millisecond.
const BUDGET: usize = 2000;

/// Wall time one tick may spend expiring: a quarter of the 100 ms period,
/// Redis's default active-expire effort.
const TICK_TIME: Duration = Duration::from_millis(25);

/// Another step is worth it while more than this share of the examined
/// entries had expired (Redis's 10% acceptable stale ratio).
const STALE_PERCENT: usize = 10;

pub async fn active_cycle(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        let databases = shared.store.lock().dbs.len();
        for db in 0..databases {
            // Each pass is one lock hold; between passes clients get in.
            while cycle_step(&shared, db) && started.elapsed() < TICK_TIME {
                tokio::task::yield_now().await;
            }
        }
        crate::store::db::update_lru_clock(unix_ms());
        // Eviction a command left unfinished (its time limit) goes on here.
        crate::evict::cycle(&shared, TICK_TIME).await;
    }
}

/// One bounded step on `db` under the lock; true if expired keys were dense
/// enough that another step should follow.
fn cycle_step(shared: &Shared, db: usize) -> bool {
    // A replica's keys expire when its master says so.
    if shared.repl.is_replica() {
        return false;
    }
    // While writes are paused (CLIENT PAUSE WRITE, a SHUTDOWN waiting for
    // replicas, a FAILOVER) nothing may add to the replication stream.
    if shared.pause.writes_held() {
        return false;
    }
    let mut store = shared.store.lock();
    let now = unix_ms();
    let Some(d) = store.dbs.get_mut(db) else { return false };
    let (gone, examined) = d.expire_step(now, BUDGET);
    let more = !gone.is_empty() && gone.len() * 100 > examined * STALE_PERCENT;
    store.stats.expired_keys += gone.len() as u64;
    for k in &gone {
        store.touch(db, k);
    }
    if shared.propagator.is_active() {
        crate::propagate::expired(shared, db, &gone);
    }
    if !store.ready.is_empty() {
        crate::dispatch::serve_blocked(&mut store, shared);
    }
    more
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;
    use std::time::{Duration, Instant};

    #[test]
    fn active_cycle_reclaims_unread_keys() {
        let mut t = TestServer::new();
        for i in 0..5000 {
            t.cmd(&format!("SET k{i} v"));
            t.cmd(&format!("PEXPIRE k{i} 20"));
        }
        t.cmd("SET keep v");
        assert_eq!(t.cmd("DBSIZE"), ":5001\r\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            std::thread::sleep(Duration::from_millis(30));
            // Stand-in for the timer: the steps themselves are what runs.
            while super::cycle_step(&t.shared, 0) {}
            super::cycle_step(&t.shared, 0);
            if t.cmd("DBSIZE") == ":1\r\n" {
                break;
            }
            assert!(Instant::now() < deadline, "expired keys were not reclaimed");
        }
        assert_eq!(t.shared.store.lock().stats.expired_keys, 5000);
        assert_eq!(t.cmd("KEYS *"), "*1\r\n$4\r\nkeep\r\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn timer_loop_reclaims_and_stops_on_shutdown() {
        let mut t = TestServer::new();
        for i in 0..3000 {
            t.cmd(&format!("SET k{i} v"));
            t.cmd(&format!("PEXPIRE k{i} 10"));
        }
        t.cmd("SET keep v");
        let task = tokio::spawn(super::active_cycle(t.shared.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.shared.store.lock().dbs[0].len() != 1 {
            assert!(Instant::now() < deadline, "the timer never reclaimed the keys");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t.shared.shutdown.cancel();
        assert!(tokio::time::timeout(Duration::from_secs(5), task).await.is_ok());
        assert_eq!(t.cmd("GET keep"), "$1\r\nv\r\n");
    }
}
