//! The AOF writer: a propagation consumer that appends commands to the
//! current incremental file.
//!
//! Flow: [`Aof::feed`] (under the keyspace lock) encodes into an in-memory
//! buffer and counts the bytes (`appended`). Under `appendfsync always`,
//! before a session writes its replies it awaits [`Aof::before_reply`]:
//! the first session to wait leads, lets the other ready sessions feed
//! theirs, and writes everything buffered so far, from every client, in
//! one write(2) and one fdatasync; the others wait without holding a
//! thread and wake when the leader is done (group commit, as Redis's one
//! fsync per event-loop turn). So nobody is answered before its change
//! reached the disk. Under `everysec` and `no` the writer thread writes
//! the buffer every millisecond and replies do not wait (unless the
//! buffer grows past [`MAX_BUFFERED`]); with `everysec` the cron thread
//! fsyncs once a second, outside the file lock. A write that fails keeps
//! its bytes for the next attempt and marks `aof_last_write_status:err`.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::propagate::{Consumer, Selector};

/// Bytes that may wait for the background writer before replies wait too:
/// what bounds the buffer when the disk is slower than the writes.
pub const MAX_BUFFERED: u64 = 4 << 20;

/// The background writer of an [`Aof`]: writes what is buffered every
/// millisecond while writes come in (less often when idle). Under
/// `appendfsync always` sessions write and fsync for themselves
/// ([`Aof::before_reply`]); the thread only backs them up, syncing what
/// was fed a poll ago and is still not on disk with no session at it
/// (writes nobody waits for: expiries, a replica's stream). Ends when the
/// writer is dropped (AOF turned off).
pub fn writer_loop(aof: std::sync::Weak<Aof>) {
    let mut idle_rounds = 0u32;
    let mut fed_before = 0;
    loop {
        let pause = if idle_rounds < 100 { 1 } else { 10 };
        std::thread::park_timeout(std::time::Duration::from_millis(pause));
        let Some(aof) = aof.upgrade() else { return };
        let appended = aof.feed.appended.load(Ordering::Acquire);
        if aof.fsync_policy() == Fsync::Always {
            if aof.synced.load(Ordering::Acquire) < fed_before && !aof.leading.load(Ordering::Acquire) {
                let _ = aof.write_out(true);
            }
        } else if aof.written.load(Ordering::Acquire) < appended {
            let _ = aof.write_out(false);
        }
        idle_rounds = if appended == fed_before { idle_rounds.saturating_add(1) } else { 0 };
        fed_before = appended;
    }
}

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fsync {
    No = 0,
    EverySec = 1,
    Always = 2,
}

impl Fsync {
    pub fn from_word(w: &str) -> Fsync {
        match w {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::EverySec,
        }
    }
}

struct Pending {
    bytes: Vec<u8>,
    sel: Selector,
    /// Bytes ever fed, this one included (mirrors `Aof::appended`).
    total: u64,
}

struct Current {
    file: Arc<File>,
    /// Taken from the buffer but not yet written (a failed write).
    unwritten: Vec<u8>,
    /// Reused as the write buffer, so steady state allocates nothing.
    spare: Vec<u8>,
}

/// What every `feed` writes, together on one cache line: the lock, the
/// buffer's header and the count of bytes fed. Feeds run on whichever core
/// serves the command, so each of them moves the line it writes; one line
/// instead of three.
#[repr(align(64))]
struct FeedSide {
    pending: Mutex<Pending>,
    appended: AtomicU64,
}

pub struct Aof {
    feed: FeedSide,
    current: Mutex<Current>,
    written: AtomicU64,
    synced: AtomicU64,
    fsync: AtomicU8,
    /// Bytes written to the incremental files since the last rewrite or
    /// load, plus the base and older files then (`aof_current_size`).
    pub current_size: AtomicU64,
    pub last_write_ok: AtomicBool,
    /// Signalled after every write (and fsync): waiting sessions re-check.
    progress: tokio::sync::watch::Sender<()>,
    /// Failed writes and fsyncs: a waiter stops waiting on one.
    failures: AtomicU64,
    /// A session is leading a group commit (`appendfsync always`).
    leading: AtomicBool,
}

/// Held by the session leading a group commit; lets the next one lead
/// when it is done, or dropped (its connection went away mid-way).
struct Leading<'a>(&'a Aof);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.leading.store(false, Ordering::Release);
        self.0.progress.send_replace(());
    }
}

impl Aof {
    /// A writer appending to `file`, whose existing length counts towards
    /// `aof_current_size` along with `other_size` (the base, older files).
    pub fn new(file: File, other_size: u64, fsync: Fsync) -> std::io::Result<Aof> {
        let len = file.metadata()?.len();
        Ok(Aof {
            feed: FeedSide {
                pending: Mutex::new(Pending { bytes: Vec::new(), sel: Selector::default(), total: 0 }),
                appended: AtomicU64::new(0),
            },
            current: Mutex::new(Current { file: Arc::new(file), unwritten: Vec::new(), spare: Vec::new() }),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            fsync: AtomicU8::new(fsync as u8),
            current_size: AtomicU64::new(len + other_size),
            last_write_ok: AtomicBool::new(true),
            progress: tokio::sync::watch::Sender::new(()),
            failures: AtomicU64::new(0),
            leading: AtomicBool::new(false),
        })
    }

    pub fn fsync_policy(&self) -> Fsync {
        match self.fsync.load(Ordering::Relaxed) {
            0 => Fsync::No,
            2 => Fsync::Always,
            _ => Fsync::EverySec,
        }
    }

    pub fn set_fsync_policy(&self, f: Fsync) {
        self.fsync.store(f as u8, Ordering::Relaxed);
    }

    /// Bytes buffered and not yet written (`aof_buffer_length`).
    pub fn buffered(&self) -> u64 {
        self.feed.appended.load(Ordering::Acquire).saturating_sub(self.written.load(Ordering::Acquire))
    }

    /// Whether [`Aof::before_reply`] may have to wait: always under
    /// `appendfsync always`, else only when the writer is far behind.
    #[inline]
    pub fn reply_must_wait(&self) -> bool {
        self.fsync_policy() == Fsync::Always || self.buffered() > MAX_BUFFERED
    }

    /// Await before writing replies. Under `appendfsync always` every
    /// change fed so far reaches the disk first, by group commit as in
    /// Redis's event loop: the first session to wait leads. It yields
    /// once, so that the other sessions the event loop has ready run and
    /// feed their changes too, then writes and fsyncs everything at once
    /// on this thread (Redis blocks its loop on that fsync the same way),
    /// and the sessions that waited meanwhile find their changes covered.
    /// Under `everysec` and `no` the background writer ([`writer_loop`])
    /// writes within a millisecond (at most about a second is at risk
    /// there anyway, as in Redis), so replies only wait when more than
    /// [`MAX_BUFFERED`] bytes are behind.
    pub async fn before_reply(&self) {
        if !self.reply_must_wait() {
            return;
        }
        let always = self.fsync_policy() == Fsync::Always;
        let target = self.feed.appended.load(Ordering::Acquire);
        let done = if always { &self.synced } else { &self.written };
        let failures = self.failures.load(Ordering::Acquire);
        loop {
            // Subscribed before checking, so a write that finishes in
            // between is not missed.
            let mut progress = self.progress.subscribe();
            if done.load(Ordering::Acquire) >= target || self.failures.load(Ordering::Acquire) != failures {
                return;
            }
            if always {
                if !self.leading.swap(true, Ordering::AcqRel) {
                    let _lead = Leading(self);
                    tokio::task::yield_now().await;
                    // A failed write is logged and counted; the reply
                    // still goes out, as Redis's does.
                    let _ = self.write_out(true);
                    return;
                }
            } else if let Some(cur) = self.current.try_lock() {
                if self.write_locked(cur, false).is_err() {
                    return;
                }
                continue;
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    }

    /// Writes the buffer to the file; with `sync`, fdatasyncs it too.
    pub fn write_out(&self, sync: bool) -> std::io::Result<()> {
        let cur = self.current.lock();
        self.write_locked(cur, sync)
    }

    /// The leader's work, under the file lock; waiters are woken after the
    /// lock is released.
    fn write_locked(&self, mut cur: parking_lot::MutexGuard<'_, Current>, sync: bool) -> std::io::Result<()> {
        let result = self.write_buffered(&mut cur, sync);
        drop(cur);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::AcqRel);
        }
        self.progress.send_replace(());
        result
    }

    fn write_buffered(&self, cur: &mut Current, sync: bool) -> std::io::Result<()> {
        let upto = {
            let mut p = self.feed.pending.lock();
            std::mem::swap(&mut p.bytes, &mut cur.spare);
            p.total
        };
        if !cur.unwritten.is_empty() {
            cur.unwritten.extend_from_slice(&cur.spare);
            cur.spare.clear();
            std::mem::swap(&mut cur.unwritten, &mut cur.spare);
        }
        if !cur.spare.is_empty() {
            if let Err(e) = (&*cur.file).write_all(&cur.spare) {
                // Keep the bytes for the next attempt (a part that landed
                // is cut off by the loader as a truncated tail at worst).
                if self.last_write_ok.swap(false, Ordering::Relaxed) {
                    tracing::warn!("Error writing to the AOF file: {e}");
                }
                std::mem::swap(&mut cur.unwritten, &mut cur.spare);
                return Err(e);
            }
            self.current_size.fetch_add(cur.spare.len() as u64, Ordering::Relaxed);
            cur.spare.clear();
            if !self.last_write_ok.swap(true, Ordering::Relaxed) {
                tracing::warn!("AOF write error looks solved, Redis can write again.");
            }
        }
        self.written.fetch_max(upto, Ordering::Release);
        if sync && self.synced.load(Ordering::Acquire) < upto {
            cur.file.sync_data()?;
            self.synced.fetch_max(upto, Ordering::Release);
        }
        Ok(())
    }

    /// The `everysec` fsync: outside the file lock, so writers go on.
    pub fn sync_written(&self) -> std::io::Result<()> {
        let (file, upto) = {
            let cur = self.current.lock();
            (cur.file.clone(), self.written.load(Ordering::Acquire))
        };
        if self.synced.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        file.sync_data()?;
        self.synced.fetch_max(upto, Ordering::Release);
        self.progress.send_replace(());
        Ok(())
    }

    /// Moves writing to a new incremental file (an AOF rewrite starts):
    /// what is buffered goes to the old file, which is synced, and the new
    /// file starts with a SELECT. Call under the keyspace lock, so that no
    /// change lands between the snapshot and the new file.
    pub fn switch(&self, file: File) -> std::io::Result<()> {
        self.write_out(true)?;
        let mut cur = self.current.lock();
        cur.file = Arc::new(file);
        self.feed.pending.lock().sel.reset();
        Ok(())
    }
}

impl Consumer for Aof {
    fn feed(&self, db: usize, argv: &[Bytes]) {
        let mut p = self.feed.pending.lock();
        let before = p.bytes.len();
        let Pending { bytes, sel, total } = &mut *p;
        sel.encode(db, argv, bytes);
        *total += (bytes.len() - before) as u64;
        self.feed.appended.store(*total, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on(f: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn feeds_reach_the_file_before_reply() {
        let dir = std::env::temp_dir().join(format!("slotway-aof-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.aof");
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let aof = Aof::new(f, 0, Fsync::Always).unwrap();
        aof.feed(0, &[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"v")]);
        assert!(aof.buffered() > 0);
        block_on(aof.before_reply());
        assert_eq!(aof.buffered(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        let g = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("b.aof")).unwrap();
        aof.switch(g).unwrap();
        aof.feed(0, &[Bytes::from_static(b"PING")]);
        block_on(aof.before_reply());
        let text = std::fs::read_to_string(dir.join("b.aof")).unwrap();
        assert!(text.starts_with("*2\r\n$6\r\nSELECT"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
