//! When and where snapshots are written: SAVE, BGSAVE, the `save` rules,
//! SHUTDOWN's final save, and loading `dir`/`dbfilename` at start.
//!
//! A save writes `temp-<pid>.rdb` in `dir` (the working directory), syncs
//! it and renames it over `dbfilename`, so a crash never leaves a broken
//! dump behind. A background save does the same in a forked child (see
//! [`super::fork`]); [`cron`], run ten times a second, reaps the child,
//! records how it went, and starts saves the rules or BGSAVE SCHEDULE
//! asked for. Every bit of state here is also what INFO persistence shows.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use parking_lot::Mutex;

use super::rdb::{self, Options, RdbError};
use crate::config::Config;
use crate::server::{unix_ms, Shared};
use crate::store::{Entry, Store};

/// A failed background save is retried by the rules only after this many
/// seconds (Redis's `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY_SECS: u64 = 5;

/// Persistence state shared by every connection.
pub struct State {
    inner: Mutex<Status>,
    /// The last background save failed: a copy of `!last_bgsave_ok` that
    /// every write command can read without a lock (MISCONF).
    failed: AtomicBool,
}

/// What INFO persistence reports, and the running child.
#[derive(Debug, Clone)]
pub struct Status {
    pub child: Option<Child>,
    /// Unix seconds of the last successful save (LASTSAVE).
    pub lastsave: u64,
    /// Unix seconds of the last background save attempt.
    pub last_try: u64,
    pub last_bgsave_ok: bool,
    pub last_bgsave_secs: i64,
    pub saves: u64,
    /// BGSAVE SCHEDULE: start one as soon as no child runs.
    pub scheduled: bool,
    pub last_load_keys: u64,
    pub last_load_expired: u64,
    /// The final save of SHUTDOWN was done; exiting must not save again.
    pub final_done: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub pid: Pid,
    pub started: Instant,
    pub started_ms: u64,
    /// `Store::dirty` at the fork: what a successful save accounts for.
    pub dirty_at_fork: u64,
}

impl State {
    pub fn new(started_secs: u64) -> Self {
        State {
            inner: Mutex::new(Status {
                child: None,
                lastsave: started_secs,
                last_try: 0,
                last_bgsave_ok: true,
                last_bgsave_secs: -1,
                saves: 0,
                scheduled: false,
                last_load_keys: 0,
                last_load_expired: 0,
                final_done: false,
            }),
            failed: AtomicBool::new(false),
        }
    }

    /// Writes are refused (MISCONF): the last background save failed, save
    /// rules exist and `stop-writes-on-bgsave-error` is on. One atomic
    /// load on the hot path while saves succeed.
    pub fn writes_denied(&self, cfg: &Config) -> bool {
        self.failed.load(Ordering::Relaxed) && !cfg.save.is_empty() && cfg.flag("stop-writes-on-bgsave-error")
    }

    fn set_ok(&self, st: &mut Status, ok: bool) {
        st.last_bgsave_ok = ok;
        self.failed.store(!ok, Ordering::Relaxed);
    }

    pub fn status(&self) -> Status {
        self.inner.lock().clone()
    }

    pub fn in_progress(&self) -> bool {
        self.inner.lock().child.is_some()
    }

    pub fn schedule(&self) {
        self.inner.lock().scheduled = true;
    }
}

/// The error write commands get while [`State::writes_denied`].
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// The dump file: `dbfilename` in `dir`, which is the working directory.
pub fn rdb_path(cfg: &Config) -> PathBuf {
    PathBuf::from(&cfg.dbfilename)
}

pub(crate) fn options(cfg: &Config) -> Options {
    Options {
        compress: cfg.flag("rdbcompression"),
        checksum: cfg.flag("rdbchecksum"),
        used_mem: crate::memory::used_bytes(),
        aof_base: false,
    }
}

/// Writes `store` to a temp file, syncs it and renames it to `path`.
fn write_file(store: &Store, path: &PathBuf, opts: &Options) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("temp-{}.rdb", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        rdb::write_rdb_with(store, &mut w, opts)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SAVE: a foreground save under the keyspace lock the caller holds.
pub fn save(shared: &Shared, store: &mut Store, cfg: &Config) -> std::io::Result<()> {
    let path = rdb_path(cfg);
    match write_file(store, &path, &options(cfg)) {
        Ok(()) => {
            tracing::info!("DB saved on disk");
            store.dirty = 0;
            let mut st = shared.persist.inner.lock();
            st.lastsave = unix_ms() / 1000;
            shared.persist.set_ok(&mut st, true);
            st.saves += 1;
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Write error saving DB on disk: {e}");
            Err(e)
        }
    }
}

/// BGSAVE: forks a child that writes the snapshot. The caller holds the
/// keyspace lock, which is what makes the child's copy consistent.
pub fn bgsave(shared: &Shared, store: &Store, cfg: &Config) -> std::io::Result<Pid> {
    let path = rdb_path(cfg);
    let opts = options(cfg);
    let now = unix_ms();
    shared.persist.inner.lock().last_try = now / 1000;
    let pid = super::fork::spawn(|| match write_file(store, &path, &opts) {
        Ok(()) => 0,
        Err(_) => 1,
    });
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => {
            shared.persist.set_ok(&mut shared.persist.inner.lock(), false);
            tracing::warn!("Can't save in background: fork: {e}");
            return Err(e);
        }
    };
    tracing::info!("Background saving started by pid {pid}");
    shared.persist.inner.lock().child =
        Some(Child { pid, started: Instant::now(), started_ms: now, dirty_at_fork: store.dirty });
    Ok(pid)
}

/// Reaps a finished child and applies the save rules and a scheduled
/// BGSAVE. Cheap when there is nothing to do; called every 100 ms.
pub fn cron(shared: &Shared) {
    let child = shared.persist.inner.lock().child;
    if let Some(child) = child {
        let ok = match waitpid(child.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return,
            Ok(WaitStatus::Exited(_, 0)) => {
                tracing::info!("Background saving terminated with success");
                true
            }
            Ok(WaitStatus::Exited(..)) => {
                tracing::warn!("Background saving error");
                false
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                tracing::warn!("Background saving terminated by signal {}", sig as i32);
                false
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("waitpid() returned an error: {e}");
                false
            }
        };
        finish(shared, child, ok);
    }
    let cfg = shared.config.load();
    let store = shared.store.lock();
    let now = unix_ms() / 1000;
    let st = shared.persist.status();
    // One child at a time: a scheduled save or a rule waits for an AOF
    // rewrite's child, as in Redis.
    if st.child.is_some() || shared.aof.rewrite_in_progress.load(std::sync::atomic::Ordering::Acquire) {
        return;
    }
    if st.scheduled {
        shared.persist.inner.lock().scheduled = false;
        let _ = bgsave(shared, &store, &cfg);
        return;
    }
    let retry_ok = st.last_bgsave_ok || now.saturating_sub(st.last_try) > RETRY_DELAY_SECS;
    for &(secs, changes) in &cfg.save {
        if store.dirty >= changes as u64 && now.saturating_sub(st.lastsave) as i64 > secs && retry_ok {
            tracing::info!("{changes} changes in {secs} seconds. Saving...");
            let _ = bgsave(shared, &store, &cfg);
            break;
        }
    }
}

/// Records the end of a background save.
fn finish(shared: &Shared, child: Child, ok: bool) {
    if ok {
        let mut store = shared.store.lock();
        store.dirty = store.dirty.saturating_sub(child.dirty_at_fork);
    } else {
        let _ = std::fs::remove_file(format!("temp-{}.rdb", child.pid));
    }
    let mut st = shared.persist.inner.lock();
    st.child = None;
    shared.persist.set_ok(&mut st, ok);
    st.last_bgsave_secs = child.started.elapsed().as_secs() as i64;
    if ok {
        st.lastsave = unix_ms() / 1000;
        st.saves += 1;
    }
}

/// Stops a running background save (SHUTDOWN, FLUSHALL) and removes its
/// temp file.
pub fn kill_child(shared: &Shared) {
    let child = shared.persist.inner.lock().child.take();
    if let Some(child) = child {
        tracing::warn!("There is a child saving an .rdb. Killing it!");
        let _ = kill(child.pid, Signal::SIGKILL);
        let _ = waitpid(child.pid, None);
        let _ = std::fs::remove_file(format!("temp-{}.rdb", child.pid));
    }
}

/// FLUSHALL: stops a running background save, and saves the now empty
/// dataset when save rules exist.
pub fn after_flushall(shared: &Shared, store: &mut Store, cfg: &Config) {
    kill_child(shared);
    if !cfg.save.is_empty() {
        let _ = save(shared, store, cfg);
    }
}

/// The final save before exiting: SHUTDOWN SAVE, or plain SHUTDOWN / a
/// signal when save rules exist. `save` is SHUTDOWN's SAVE/NOSAVE choice.
pub fn final_save(shared: &Shared, store: &mut Store, cfg: &Config, save: Option<bool>) -> std::io::Result<()> {
    kill_child(shared);
    if shared.persist.inner.lock().final_done {
        return Ok(());
    }
    let wanted = save.unwrap_or(!cfg.save.is_empty());
    if wanted {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        // The caller says what follows (stay up, or exit anyway).
        self::save(shared, store, cfg)?;
    }
    shared.persist.inner.lock().final_done = true;
    Ok(())
}

/// SHUTDOWN FORCE after a failed save: exit without trying again.
pub fn skip_final_save(shared: &Shared) {
    shared.persist.inner.lock().final_done = true;
}

/// Loads `dbfilename` at start, if it exists. An unreadable or corrupt
/// file is an error: starting empty would lose it at the next save.
pub fn load_at_start(shared: &Shared) -> Result<(), RdbError> {
    let cfg = shared.config.load();
    // As Redis: with `appendonly yes` the AOF is the source of truth and
    // its loader runs instead.
    if cfg.appendonly {
        return Ok(());
    }
    let path = rdb_path(&cfg);
    let buf = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let started = Instant::now();
    let mut store = shared.store.lock();
    let loaded = load_into(&mut store, &buf, unix_ms())?;
    if let Some(v) = &loaded.redis_ver {
        tracing::info!("Loading RDB produced by version {v}");
    }
    if let Some(ctime) = loaded.ctime {
        tracing::info!("RDB age {} seconds", (unix_ms() / 1000).saturating_sub(ctime));
    }
    tracing::info!("Done loading RDB, keys loaded: {}, keys expired: {}.", loaded.keys, loaded.expired);
    tracing::info!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64());
    let mut st = shared.persist.inner.lock();
    st.last_load_keys = loaded.keys;
    st.last_load_expired = loaded.expired;
    Ok(())
}

/// Loads an RDB image into `store`, replacing keys with the same names.
pub fn load_into(store: &mut Store, buf: &[u8], now: u64) -> Result<rdb::Loaded, RdbError> {
    let databases = store.dbs.len();
    rdb::load(buf, databases, now, |db, key, value, at| {
        let d = &mut store.dbs[db];
        d.insert(&key, Entry::new(value));
        if at != 0 {
            d.set_expire(&key, at);
        }
    })
}
