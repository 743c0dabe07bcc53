//! AOF rewrites: BGREWRITEAOF, the automatic trigger, and turning the
//! AOF on at runtime, as Redis 7.0 does them.
//!
//! Under the keyspace lock (the caller holds it): writes switch to a new
//! incremental file, listed in the manifest at once so a crash loses
//! nothing, and a child is forked ([`crate::persist::fork`]). The child
//! owns a copy-on-write image of the keyspace at that instant and writes
//! the new base from it ([`super::base`]: RDB with `aof-use-rdb-preamble
//! yes`, commands otherwise) to a temp file, fsynced; the parent never
//! walks the keyspace and goes on serving. A reaper thread waits for the
//! child; on success it renames the temp file to the new base, swaps the
//! manifest atomically to that base plus the incremental files written
//! since, and deletes the old files. A failed child changes nothing on
//! disk but its temp file (removed): the old base and every incremental
//! file stay in force, and INFO says `aof_last_bgrewrite_status:err`.
//!
//! The cron thread lives here too: the `everysec` fsync and the check of
//! `auto-aof-rewrite-percentage` / `-min-size`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::base::{self, BaseFormat};
use super::manifest::{self, FileEntry, Kind, Manifest};
use super::writer::{Aof, Fsync};
use super::{open_append, spawn_writer, Ctl};
use crate::persist::rdb::Options;
use crate::server::{unix_ms, Shared};
use crate::store::Store;

/// How long automatic rewrites wait after a failed one.
const RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("a rewrite is already in progress")]
    InProgress,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The running rewrite child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RewriteChild {
    pub pid: Pid,
}

/// The child's temp file, named by its pid as Redis names it.
fn temp_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("temp-rewriteaof-bg-{pid}.aof"))
}

/// Starts a rewrite; see the module doc. The caller holds the keyspace
/// lock (`store`). `enable` (with its fsync policy) turns the AOF on: the
/// writer starts on the new incremental file.
pub fn rewrite(shared: &Shared, store: &Store, enable: Option<Fsync>) -> Result<(), RewriteError> {
    let ctl = shared.aof.0.clone();
    if ctl.rewrite_in_progress.swap(true, Ordering::AcqRel) {
        return Err(RewriteError::InProgress);
    }
    let cfg = shared.config.load_full();
    let format = BaseFormat::configured(&cfg);
    let rdb_opts = crate::persist::snapshot::options(&cfg);
    let started = (|| {
        let mut st = ctl.state.lock();
        std::fs::create_dir_all(&st.dir)?;
        let base_seq = st.manifest.base.as_ref().map_or(1, |b| b.seq + 1);
        let incr_seq = st.manifest.last_incr_seq() + 1;
        let incr = FileEntry { name: format!("{}.{incr_seq}.incr.aof", st.name), seq: incr_seq, kind: Kind::Incr };
        let writer = ctl.writer.load_full();
        let new_incr = match (&writer, enable) {
            (Some(w), _) => {
                w.switch(open_append(&st.dir.join(&incr.name))?)?;
                st.manifest.incrs.push(incr.clone());
                st.persist_manifest()?;
                Some(incr)
            }
            (None, Some(policy)) => {
                let w = Arc::new(Aof::new(open_append(&st.dir.join(&incr.name))?, 0, policy)?);
                spawn_writer(&w)?;
                ctl.writer.store(Some(w.clone()));
                shared.propagator.subscribe(w);
                Some(incr)
            }
            (None, None) => None,
        };
        let dir = st.dir.clone();
        // Forked while the keyspace lock is held: the child's image is
        // this instant, the one the new incremental file starts from.
        let now = unix_ms();
        let pid = crate::persist::fork::spawn(|| {
            match write_temp(&temp_path(&dir, std::process::id()), format, store, now, &rdb_opts) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        })?;
        st.rewrite_started = Some(Instant::now());
        st.child = Some(RewriteChild { pid });
        Ok::<_, RewriteError>((pid, base_seq, new_incr))
    })();
    let (pid, base_seq, new_incr) = match started {
        Ok(s) => s,
        Err(e) => {
            ctl.rewrite_in_progress.store(false, Ordering::Release);
            failed(&ctl);
            return Err(e);
        }
    };
    tracing::info!("Background append only file rewriting started by pid {pid}");
    let spawned = std::thread::Builder::new().name("aof-rewrite".into()).spawn({
        let ctl = ctl.clone();
        move || reap(&ctl, pid, format, base_seq, new_incr)
    });
    if let Err(e) = spawned {
        // Nobody would reap the child: stop it and reap it here.
        kill_child(&ctl);
        let _ = waitpid(pid, None);
        ctl.rewrite_in_progress.store(false, Ordering::Release);
        failed(&ctl);
        return Err(e.into());
    }
    Ok(())
}

/// In the child: the base into `tmp`, flushed and fsynced.
fn write_temp(tmp: &Path, format: BaseFormat, store: &Store, now: u64, rdb: &Options) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    base::write_base_as(format, store, now, rdb, &mut w)?;
    w.flush()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// The reaper thread: waits for the child and finishes (or abandons) the
/// rewrite.
fn reap(ctl: &Arc<Ctl>, pid: Pid, format: BaseFormat, base_seq: u64, new_incr: Option<FileEntry>) {
    let status = loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let dir = ctl.state.lock().dir.clone();
    let tmp = temp_path(&dir, pid.as_raw() as u32);
    let child_ok = match status {
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(WaitStatus::Exited(_, code)) => Err(format!("the child exited with code {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Err(format!("the child was terminated by signal {}", sig as i32)),
        Ok(other) => Err(format!("unexpected child status {other:?}")),
        Err(e) => Err(format!("waitpid: {e}")),
    };
    // Killed on purpose (AOF turned off, shutdown): nothing to record.
    let cancelled = ctl.state.lock().child != Some(RewriteChild { pid });
    let result = match (cancelled, child_ok) {
        (true, _) => Err("cancelled".to_string()),
        (false, Ok(())) => finish_rewrite(ctl, &tmp, format, base_seq, new_incr).map_err(|e| e.to_string()),
        (false, Err(e)) => Err(e),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let mut st = ctl.state.lock();
    let secs = st.rewrite_started.take().map_or(0, |t| t.elapsed().as_secs() as i64);
    if !cancelled {
        st.child = None;
        st.last_rewrite_secs = secs;
        match result {
            Ok(()) => {
                st.rewrites += 1;
                st.consecutive_failures = 0;
                st.last_rewrite_failed = false;
                tracing::info!("Background AOF rewrite finished successfully");
            }
            Err(e) => {
                st.consecutive_failures += 1;
                st.last_failure = Some(Instant::now());
                st.last_rewrite_failed = true;
                tracing::warn!("Background AOF rewrite failed: {e}");
            }
        }
    }
    drop(st);
    ctl.rewrite_in_progress.store(false, Ordering::Release);
}

/// Stops a running rewrite child (AOF turned off, shutdown) and removes
/// its temp file; the reaper thread then records nothing.
pub(super) fn kill_child(ctl: &Ctl) {
    let child = ctl.state.lock().child.take();
    if let Some(child) = child {
        tracing::warn!("Killing running AOF rewrite child: {}", child.pid);
        let _ = kill(child.pid, Signal::SIGKILL);
        let dir = ctl.state.lock().dir.clone();
        let _ = std::fs::remove_file(temp_path(&dir, child.pid.as_raw() as u32));
    }
}

fn failed(ctl: &Ctl) {
    let mut st = ctl.state.lock();
    st.consecutive_failures += 1;
    st.last_failure = Some(Instant::now());
    st.last_rewrite_failed = true;
}

/// The child succeeded: its file becomes the base, the manifest swaps.
fn finish_rewrite(
    ctl: &Ctl,
    tmp: &Path,
    format: BaseFormat,
    base_seq: u64,
    new_incr: Option<FileEntry>,
) -> std::io::Result<()> {
    let (dir, name) = {
        let st = ctl.state.lock();
        (st.dir.clone(), st.name.clone())
    };
    let base_name = base_name_of(&name, base_seq, format);
    std::fs::rename(tmp, dir.join(&base_name))?;
    manifest::sync_dir(&dir)?;
    let mut st = ctl.state.lock();
    let old = st.manifest.clone();
    let keep_from = new_incr.as_ref().map_or(u64::MAX, |e| e.seq);
    let mut incrs: Vec<FileEntry> = old.incrs.iter().filter(|e| e.seq >= keep_from).cloned().collect();
    if let Some(e) = new_incr.filter(|e| !incrs.contains(e)) {
        incrs.insert(0, e);
    }
    st.manifest =
        Manifest { base: Some(FileEntry { name: base_name, seq: base_seq, kind: Kind::Base }), history: vec![], incrs };
    if let Err(e) = st.persist_manifest() {
        // The old manifest (still on disk) names the old files: keep them.
        st.manifest = old;
        let _ = std::fs::remove_file(dir.join(base_name_of(&name, base_seq, format)));
        return Err(e);
    }
    let live: Vec<&FileEntry> = st.manifest.load_order().collect();
    for gone in old.load_order().chain(&old.history) {
        if !live.iter().any(|l| l.name == gone.name) {
            let _ = std::fs::remove_file(dir.join(&gone.name));
        }
    }
    let size = st.size_of(&live);
    st.base_size = size;
    if let Some(w) = &*ctl.writer.load() {
        w.current_size.store(size, Ordering::Relaxed);
    }
    Ok(())
}

/// `<appendfilename>.<seq>.base.<aof|rdb>`.
fn base_name_of(name: &str, seq: u64, format: BaseFormat) -> String {
    format!("{name}.{seq}.base.{}", format.suffix())
}

/// Fsyncs under `everysec`, starts automatic rewrites.
pub(super) fn cron_loop(shared: &Arc<Shared>) {
    let mut last_sync = Instant::now();
    while !shared.shutdown.is_cancelled() {
        std::thread::sleep(Duration::from_millis(100));
        let writer = shared.aof.writer.load_full();
        if let Some(w) = &writer {
            if w.fsync_policy() == Fsync::EverySec && last_sync.elapsed() >= Duration::from_secs(1) {
                last_sync = Instant::now();
                if let Err(e) = w.sync_written() {
                    tracing::warn!("Error syncing the AOF: {e}");
                }
            }
        }
        // One child at a time, as Redis: a rewrite waits for a BGSAVE.
        if shared.aof.rewrite_in_progress.load(Ordering::Acquire) || shared.persist.in_progress() {
            continue;
        }
        if shared.aof.rewrite_scheduled.swap(false, Ordering::AcqRel) {
            let store = shared.store.lock();
            let _ = rewrite(shared, &store, None);
        } else if writer.is_some_and(|w| auto_rewrite_due(shared, &w)) {
            let store = shared.store.lock();
            tracing::info!("Starting automatic rewriting of AOF");
            let _ = rewrite(shared, &store, None);
        }
    }
}

/// `auto-aof-rewrite-percentage` and `-min-size`, as Redis computes them.
fn auto_rewrite_due(shared: &Shared, w: &Aof) -> bool {
    if shared.aof.rewrite_in_progress.load(Ordering::Acquire) {
        return false;
    }
    let cfg = shared.config.load();
    let perc = cfg.int("auto-aof-rewrite-percentage");
    let min = cfg.int("auto-aof-rewrite-min-size");
    let size = w.current_size.load(Ordering::Relaxed) as i128;
    let st = shared.aof.state.lock();
    let backing_off = st.last_failure.is_some_and(|t| st.consecutive_failures > 0 && t.elapsed() < RETRY_AFTER);
    if perc == 0 || size <= min || backing_off {
        return false;
    }
    let base = (st.base_size as i128).max(1);
    (size * 100 / base) - 100 >= perc
}
