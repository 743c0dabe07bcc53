//! The append-only file, in Redis 7.0's multi-part layout: a manifest, one
//! base file (a snapshot) and incremental files (every write since).
//!
//! Flow: at start ([`start`]) the manifest's files are replayed into the
//! keyspace, then an [`writer::Aof`] subscribes to the propagation stream
//! ([`crate::propagate`]) and appends to the last incremental file: under
//! `appendfsync always` sessions make their changes reach the disk before
//! they write replies, one fsync for every session the event loop had
//! ready ([`before_reply`]); otherwise a writer thread writes the buffer
//! every millisecond. A cron thread fsyncs once a second under
//! `everysec` and starts automatic rewrites.
//!
//! A rewrite (BGREWRITEAOF, `auto-aof-rewrite-*`, `CONFIG SET appendonly
//! yes`) switches writes to a new incremental file and forks a child that
//! writes the new base from its point-in-time copy of the keyspace (an
//! RDB image with `aof-use-rdb-preamble yes`, commands with `no`); when
//! the child succeeds the manifest swaps atomically to the new base plus
//! the incremental files written since (see `rewrite`).
//!
//! At start a pre-7.0 single-file AOF (`appendfilename` in `dir`, no
//! manifest) is moved into `appenddirname` and becomes the base, as Redis
//! 7.0 upgrades it; a file that starts with `REDIS` (an RDB base, or an
//! old AOF with an RDB preamble) is loaded as RDB, then any commands after
//! the image ([`load`]).

pub mod base;
pub mod load;
pub mod manifest;
mod rewrite;
pub mod writer;

pub use rewrite::{rewrite, RewriteError};

use std::fs::{File, OpenOptions};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::command::{Cmd, Ctx};
use crate::config::Config;
use crate::error::{CmdError, CmdResult};
use crate::server::Shared;
use crate::store::Store;
use base::BaseFormat;
use manifest::{FileEntry, Kind, Manifest};
use writer::{Aof, Fsync};

pub const COMMANDS: &[Cmd] = &[Cmd { name: "bgrewriteaof", run: bgrewriteaof }];

/// The AOF's state, shared by sessions, commands and the cron thread.
#[derive(Default)]
pub struct AofControl(Arc<Ctl>);

impl Deref for AofControl {
    type Target = Ctl;
    fn deref(&self) -> &Ctl {
        &self.0
    }
}

#[derive(Default)]
pub struct Ctl {
    /// The writer, while `appendonly` is on.
    pub writer: ArcSwapOption<Aof>,
    pub rewrite_in_progress: AtomicBool,
    /// BGREWRITEAOF came while another child (a BGSAVE) ran, or inside
    /// MULTI: the cron thread starts it once no child runs.
    pub rewrite_scheduled: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `appenddirname`, made absolute at start.
    dir: PathBuf,
    /// `appendfilename`.
    name: String,
    manifest: Manifest,
    /// Size of the whole AOF after the last rewrite or load.
    base_size: u64,
    rewrite_started: Option<Instant>,
    last_rewrite_secs: i64,
    rewrites: u64,
    consecutive_failures: u64,
    /// When the last rewrite failed: automatic ones wait a minute after.
    last_failure: Option<Instant>,
    last_rewrite_failed: bool,
    /// The rewrite child while one runs.
    child: Option<rewrite::RewriteChild>,
}

impl State {
    fn manifest_name(&self) -> String {
        format!("{}.manifest", self.name)
    }

    fn persist_manifest(&self) -> std::io::Result<()> {
        self.manifest.persist(&self.dir, &self.manifest_name())
    }

    fn size_of(&self, names: &[&FileEntry]) -> u64 {
        names.iter().filter_map(|e| std::fs::metadata(self.dir.join(&e.name)).ok()).map(|m| m.len()).sum()
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reads the manifest, loads the AOF when `appendonly` is on, and starts
/// the cron thread. An error means the server must not start.
pub fn start(shared: &Arc<Shared>) -> Result<(), String> {
    let cfg = shared.config.load_full();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut st = shared.aof.state.lock();
    st.dir = cwd.join(cfg.string("appenddirname"));
    st.name = cfg.string("appendfilename");
    let mpath = st.dir.join(st.manifest_name());
    // Read even with the AOF off, so that turning it on later continues
    // the sequence numbers; only fatal when the AOF is to be loaded.
    let read = match std::fs::read_to_string(&mpath) {
        Ok(text) => manifest::Manifest::parse(&text)
            .map_err(|err| load::LoadError::Manifest { file: st.manifest_name(), err }.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(format!("Can't open the AOF manifest {}: {e}", mpath.display())),
    };
    st.manifest = match read {
        Ok(m) => m,
        Err(e) if cfg.appendonly => return Err(e),
        Err(e) => {
            tracing::warn!("{e}");
            Manifest::default()
        }
    };
    if cfg.appendonly {
        upgrade_single_file(&mut st, &cwd)?;
        open_at_start(shared, &mut st, &cfg)?;
    }
    drop(st);
    let cron = shared.clone();
    std::thread::Builder::new()
        .name("aof-cron".into())
        .spawn(move || rewrite::cron_loop(&cron))
        .map_err(|e| format!("can't start the AOF thread: {e}"))?;
    Ok(())
}

/// A pre-7.0 AOF: `appendfilename` in `dir` and no manifest. As Redis 7.0
/// does, it moves into `appenddirname` under its own name and becomes the
/// base (seq 1) of a new manifest; the first incremental file follows.
fn upgrade_single_file(st: &mut State, cwd: &Path) -> Result<(), String> {
    let old = cwd.join(&st.name);
    if st.manifest.base.is_some() || !st.manifest.incrs.is_empty() || !old.is_file() {
        return Ok(());
    }
    let io = |e: std::io::Error| format!("Error upgrading the old AOF file {}: {e}", old.display());
    std::fs::create_dir_all(&st.dir).map_err(io)?;
    std::fs::rename(&old, st.dir.join(&st.name)).map_err(io)?;
    st.manifest.base = Some(FileEntry { name: st.name.clone(), seq: 1, kind: Kind::Base });
    st.persist_manifest().map_err(io)?;
    manifest::sync_dir(cwd).map_err(io)?;
    tracing::info!("Successfully migrated an old-style AOF into the AOF directory");
    Ok(())
}

fn open_at_start(shared: &Shared, st: &mut State, cfg: &Config) -> Result<(), String> {
    let io = |e: std::io::Error| format!("Can't open the append-only file: {e}");
    if st.manifest.base.is_some() || !st.manifest.incrs.is_empty() {
        let started = Instant::now();
        let loaded =
            load::load(shared, &st.dir, &st.manifest, cfg.flag("aof-load-truncated")).map_err(|e| e.to_string())?;
        tracing::info!(
            "DB loaded from append only file: {:.3} seconds ({} commands, {} files)",
            started.elapsed().as_secs_f64(),
            loaded.commands,
            loaded.files
        );
    }
    std::fs::create_dir_all(&st.dir).map_err(io)?;
    if st.manifest.base.is_none() && st.manifest.incrs.is_empty() {
        // A fresh AOF: a base of the (empty) keyspace in the configured
        // format, as Redis writes on first start.
        let format = BaseFormat::configured(cfg);
        let name = format!("{}.1.base.{}", st.name, format.suffix());
        let mut f = File::create(st.dir.join(&name)).map_err(io)?;
        let rdb = crate::persist::snapshot::options(cfg);
        base::write_base_as(format, &shared.store.lock(), crate::server::unix_ms(), &rdb, &mut f).map_err(io)?;
        f.sync_all().map_err(io)?;
        st.manifest.base = Some(FileEntry { name, seq: 1, kind: Kind::Base });
    }
    if st.manifest.incrs.is_empty() {
        let seq = st.manifest.last_incr_seq() + 1;
        st.manifest.incrs.push(FileEntry { name: format!("{}.{seq}.incr.aof", st.name), seq, kind: Kind::Incr });
    }
    st.persist_manifest().map_err(io)?;
    let Some(last) = st.manifest.incrs.last().cloned() else { return Err("no incremental AOF file".into()) };
    let file = open_append(&st.dir.join(&last.name)).map_err(io)?;
    let others: Vec<&FileEntry> = st.manifest.load_order().filter(|e| e.name != last.name).collect();
    let other_size = st.size_of(&others);
    let w = Arc::new(Aof::new(file, other_size, fsync_of(cfg)).map_err(io)?);
    st.base_size = w.current_size.load(Ordering::Relaxed);
    spawn_writer(&w).map_err(io)?;
    shared.aof.writer.store(Some(w.clone()));
    shared.propagator.subscribe(w);
    Ok(())
}

fn spawn_writer(w: &Arc<Aof>) -> std::io::Result<()> {
    let weak = Arc::downgrade(w);
    std::thread::Builder::new().name("aof-writer".into()).spawn(move || writer::writer_loop(weak))?;
    Ok(())
}

fn fsync_of(cfg: &Config) -> Fsync {
    Fsync::from_word(&cfg.string("appendfsync"))
}

/// Before a session writes replies: the changes they report must be in
/// the AOF first. Costs one relaxed load when nothing is propagated.
#[inline]
pub async fn before_reply(shared: &Shared) {
    if shared.propagator.is_active() {
        // Decided through a borrowed guard: the common case (nothing to
        // wait for) takes no reference count, whose cache line every
        // connection's flush would otherwise bounce between the cores.
        let w = match &*shared.aof.writer.load() {
            Some(w) if w.reply_must_wait() => w.clone(),
            _ => return,
        };
        w.before_reply().await;
    }
}

/// At exit: everything fed reaches the disk.
pub fn shutdown(shared: &Shared) {
    rewrite::kill_child(&shared.aof);
    if let Some(w) = &*shared.aof.writer.load() {
        if let Err(e) = w.write_out(true) {
            tracing::warn!("Error writing the AOF on shutdown: {e}");
        }
    }
}

/// CONFIG SET: `appendonly` turns the AOF on (through a rewrite, which
/// makes the base) or off; `appendfsync` changes the policy. Runs under
/// the keyspace lock, before the new configuration is published.
pub fn config_changed(shared: &Shared, store: &Store, old: &Config, new: &Config) -> Result<(), String> {
    if let Some(w) = &*shared.aof.writer.load() {
        w.set_fsync_policy(fsync_of(new));
    }
    match (old.appendonly, new.appendonly) {
        (false, true) if shared.aof.writer.load().is_none() => {
            rewrite(shared, store, Some(fsync_of(new))).map_err(|e| {
                tracing::warn!("Unable to turn on AOF: {e}");
                "Unable to turn on AOF. Check server logs.".to_string()
            })
        }
        (true, false) => {
            // As Redis: a rewrite for a log nobody writes is moot.
            rewrite::kill_child(&shared.aof);
            if let Some(w) = shared.aof.writer.swap(None) {
                let _ = w.write_out(true);
                let c: Arc<dyn crate::propagate::Consumer> = w;
                shared.propagator.unsubscribe(&c);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.aof.rewrite_in_progress.load(Ordering::Acquire) {
        return Err(CmdError::err("ERR Background append only file rewriting already in progress"));
    }
    // One child at a time, and no fork halfway through a transaction.
    if ctx.shared.persist.in_progress() || ctx.mode == crate::command::Mode::Exec {
        ctx.shared.aof.rewrite_scheduled.store(true, Ordering::Release);
        ctx.out.simple(b"Background append only file rewriting scheduled");
        return Ok(());
    }
    match rewrite(ctx.shared, ctx.store, None) {
        Ok(()) => {
            ctx.out.simple(b"Background append only file rewriting started");
            Ok(())
        }
        Err(RewriteError::InProgress) => {
            Err(CmdError::err("ERR Background append only file rewriting already in progress"))
        }
        Err(e) => {
            tracing::warn!("Can't rewrite the append only file: {e}");
            Err(CmdError::err(
                "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ))
        }
    }
}

/// The `aof_*` fields of INFO persistence (and the module fork ones
/// between them), in Redis's order.
pub fn info_fields(shared: &Shared) -> Vec<(&'static str, String)> {
    let st = shared.aof.state.lock();
    let w = shared.aof.writer.load_full();
    let in_progress = shared.aof.rewrite_in_progress.load(Ordering::Acquire);
    let ok = |b: bool| if b { "ok" } else { "err" }.to_string();
    let mut v = vec![
        ("aof_enabled", u8::from(w.is_some()).to_string()),
        ("aof_rewrite_in_progress", u8::from(in_progress).to_string()),
        ("aof_rewrite_scheduled", u8::from(shared.aof.rewrite_scheduled.load(Ordering::Acquire)).to_string()),
        (
            "aof_last_rewrite_time_sec",
            if st.rewrites + st.consecutive_failures == 0 { -1 } else { st.last_rewrite_secs }.to_string(),
        ),
        ("aof_current_rewrite_time_sec", st.rewrite_started.map_or(-1, |t| t.elapsed().as_secs() as i64).to_string()),
        ("aof_last_bgrewrite_status", ok(!st.last_rewrite_failed)),
        ("aof_rewrites", st.rewrites.to_string()),
        ("aof_rewrites_consecutive_failures", st.consecutive_failures.to_string()),
        ("aof_last_write_status", ok(w.as_ref().is_none_or(|w| w.last_write_ok.load(Ordering::Relaxed)))),
        ("aof_last_cow_size", "0".into()),
        ("module_fork_in_progress", "0".into()),
        ("module_fork_last_cow_size", "0".into()),
    ];
    if let Some(w) = w {
        v.push(("aof_current_size", w.current_size.load(Ordering::Relaxed).to_string()));
        v.push(("aof_base_size", st.base_size.to_string()));
        v.push(("aof_pending_rewrite", "0".into()));
        v.push(("aof_buffer_length", w.buffered().to_string()));
        v.push(("aof_pending_bio_fsync", "0".into()));
        v.push(("aof_delayed_fsync", "0".into()));
    }
    v
}
