//! AOF rewrites: BGREWRITEAOF, the automatic trigger, and turning the
//! AOF on at runtime (see the parent module for the two halves: a
//! snapshot and a switch of incremental file under the keyspace lock,
//! then a thread that writes the base and swaps the manifest).
//!
//! The cron thread lives here too: the `everysec` fsync and the check of
//! `auto-aof-rewrite-percentage` / `-min-size`.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::base::{self, BaseFormat};
use super::manifest::{self, FileEntry, Kind, Manifest};
use super::writer::{Aof, Fsync};
use super::{open_append, spawn_writer, Ctl};
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

/// Starts a rewrite; see the module doc. `enable` (with its fsync policy)
/// turns the AOF on: the writer starts on the new incremental file.
pub fn rewrite(shared: &Shared, store: &Store, enable: Option<Fsync>) -> Result<(), RewriteError> {
    let ctl = shared.aof.0.clone();
    if ctl.rewrite_in_progress.swap(true, Ordering::AcqRel) {
        return Err(RewriteError::InProgress);
    }
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
        let mut snapshot = Vec::new();
        base::write_base(store, unix_ms(), &mut snapshot)?;
        st.rewrite_started = Some(Instant::now());
        Ok::<_, RewriteError>((snapshot, base_seq, new_incr))
    })();
    let (snapshot, base_seq, new_incr) = match started {
        Ok(s) => s,
        Err(e) => {
            ctl.rewrite_in_progress.store(false, Ordering::Release);
            failed(&ctl);
            return Err(e);
        }
    };
    tracing::info!("Background append only file rewriting started");
    let spawned = std::thread::Builder::new().name("aof-rewrite".into()).spawn({
        let ctl = ctl.clone();
        move || {
            let result = finish_rewrite(&ctl, &snapshot, base_seq, new_incr);
            let mut st = ctl.state.lock();
            let secs = st.rewrite_started.take().map_or(0, |t| t.elapsed().as_secs() as i64);
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
            drop(st);
            ctl.rewrite_in_progress.store(false, Ordering::Release);
        }
    });
    if let Err(e) = spawned {
        ctl.rewrite_in_progress.store(false, Ordering::Release);
        failed(&ctl);
        return Err(e.into());
    }
    Ok(())
}

fn failed(ctl: &Ctl) {
    let mut st = ctl.state.lock();
    st.consecutive_failures += 1;
    st.last_failure = Some(Instant::now());
    st.last_rewrite_failed = true;
}

/// The second half of a rewrite, off the keyspace lock.
fn finish_rewrite(ctl: &Ctl, snapshot: &[u8], base_seq: u64, new_incr: Option<FileEntry>) -> std::io::Result<()> {
    let (dir, name) = {
        let st = ctl.state.lock();
        (st.dir.clone(), st.name.clone())
    };
    let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let mut f = File::create(&tmp)?;
    f.write_all(snapshot)?;
    f.sync_all()?;
    drop(f);
    let base_name = format!("{name}.{base_seq}.base.{}", BaseFormat::Commands.suffix());
    std::fs::rename(&tmp, dir.join(&base_name))?;
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
    st.persist_manifest()?;
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

/// Fsyncs under `everysec`, starts automatic rewrites.
pub(super) fn cron_loop(shared: &Arc<Shared>) {
    let mut last_sync = Instant::now();
    while !shared.shutdown.is_cancelled() {
        std::thread::sleep(Duration::from_millis(100));
        let Some(w) = shared.aof.writer.load_full() else { continue };
        let policy = w.fsync_policy();
        if policy == Fsync::EverySec && last_sync.elapsed() >= Duration::from_secs(1) {
            last_sync = Instant::now();
            if let Err(e) = w.sync_written() {
                tracing::warn!("Error syncing the AOF: {e}");
            }
        }
        if auto_rewrite_due(shared, &w) {
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
