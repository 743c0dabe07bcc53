//! Diskless full syncs on the master (`repl-diskless-sync yes`, Redis
//! 7.0's default): the snapshot goes from a forked child through a pipe
//! straight to the replicas' sockets, with no temporary file, framed as
//! `$EOF:<40 random chars>\r\n<rdb><the same 40 chars>` since its length is
//! not known in advance. Only replicas that announced `capa eof` get it.
//!
//! As Redis does, the first such replica opens a window of
//! `repl-diskless-sync-delay` seconds (cut short once
//! `repl-diskless-sync-max-replicas` wait) so that replicas arriving
//! together share one child. Until the window closes they wait
//! (`wait_bgsave`, sent a newline each second) with no stream; when it
//! closes the cron forks under the keyspace lock, each one is answered
//! `+FULLRESYNC <id> <offset>` and starts buffering the stream from that
//! instant. One thread reads the pipe and hands each chunk to every
//! replica's bounded queue, so the slowest replica paces the transfer and
//! memory stays bounded. After the end mark a replica gets the stream
//! only once it has sent its first ACK (it has loaded the snapshot): bytes
//! right after the mark would be taken for more snapshot.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::wait::{waitpid, WaitStatus};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::master::ReplicaConn;
use crate::server::Shared;

/// Pipe chunks queued per replica: with 64 KB reads, at most 512 KB each.
const QUEUE: usize = 8;
const CHUNK: usize = 64 * 1024;

/// Replicas waiting for the next diskless snapshot.
pub struct Waiting {
    since: Instant,
    members: Vec<Member>,
}

struct Member {
    conn: Arc<ReplicaConn>,
    /// PSYNC (answered `+FULLRESYNC`) or the old SYNC (no line).
    psync: bool,
    start: oneshot::Sender<Start>,
}

/// What a waiting replica receives when its snapshot starts.
#[derive(Debug)]
pub struct Start {
    /// `+FULLRESYNC <id> <offset>\r\n`, or empty for SYNC.
    pub line: String,
    pub chunks: mpsc::Receiver<Chunk>,
}

#[derive(Debug)]
pub enum Chunk {
    Data(Bytes),
    /// The child finished: whether its snapshot is whole.
    End(Result<(), String>),
}

/// Adds a replica to the next diskless snapshot (under the replication
/// lock); it must not be fed the stream until that snapshot starts.
pub fn join(st: &mut super::State, conn: Arc<ReplicaConn>, psync: bool) -> oneshot::Receiver<Start> {
    let (tx, rx) = oneshot::channel();
    let waiting = st.diskless.get_or_insert_with(|| Waiting { since: Instant::now(), members: Vec::new() });
    waiting.members.push(Member { conn, psync, start: tx });
    rx
}

/// From the replication cron: starts the snapshot once the window closed.
pub fn maybe_start(shared: &Shared) {
    let cfg = shared.config.load();
    let repl = &shared.repl;
    {
        let st = repl.state.lock();
        let Some(w) = &st.diskless else { return };
        let delay = Duration::from_secs(cfg.int("repl-diskless-sync-delay").clamp(0, 1 << 31) as u64);
        let max = cfg.int("repl-diskless-sync-max-replicas").max(0) as usize;
        let live = w.members.iter().filter(|m| !m.start.is_closed()).count();
        if w.since.elapsed() < delay && !(max > 0 && live >= max) {
            return;
        }
    }
    let store = shared.store.lock();
    let mut st = repl.state.lock();
    let Some(w) = st.diskless.take() else { return };
    let members: Vec<Member> =
        w.members.into_iter().filter(|m| !m.start.is_closed() && !m.conn.handle.kill.is_cancelled()).collect();
    if members.is_empty() {
        return;
    }
    let aux = super::rdbaux::fields(st.stream_db, &st.replid, st.offset);
    // The replicas start in db 0 after loading: the next write selects.
    st.selector.reset();
    let line = format!("+FULLRESYNC {} {}\r\n", st.replid, st.offset);
    let offset = st.offset;
    for m in &members {
        m.conn.start_buffering();
    }
    drop(st);
    let opts = crate::persist::rdb::Options {
        compress: cfg.flag("rdbcompression"),
        checksum: cfg.flag("rdbchecksum"),
        used_mem: crate::memory::used_bytes(),
        aof_base: false,
    };
    let forked = nix::unistd::pipe().map_err(std::io::Error::from).and_then(|(rd, wr)| {
        let store = &*store;
        let read_end = std::os::fd::AsRawFd::as_raw_fd(&rd);
        // The write end moves into the closure: the parent's copy closes
        // when `spawn` returns, so the reader sees EOF when the child ends.
        let pid = crate::persist::fork::spawn(move || {
            // The child's copy of the read end must go, or with the parent
            // gone (killed) it would block forever on a full pipe instead of
            // failing with EPIPE.
            let _ = nix::unistd::close(read_end);
            let write = || -> std::io::Result<()> {
                let w = std::io::BufWriter::with_capacity(CHUNK, std::fs::File::from(wr));
                let mut w = super::rdbaux::AuxWriter::new(w, aux);
                crate::persist::rdb::write_rdb_with(store, &mut w, &opts)?;
                w.finish()?.into_inner().map_err(|e| e.into_error())?;
                Ok(())
            };
            i32::from(write().is_err())
        })?;
        Ok((pid, rd))
    });
    drop(store);
    let (pid, rd) = match forked {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("Can't fork for the diskless sync: {e}");
            // Dropping the senders ends each replica's wait with an error.
            for m in &members {
                m.conn.handle.kill.cancel();
            }
            return;
        }
    };
    tracing::info!(
        "Starting BGSAVE for SYNC with target: replicas sockets, {} replicas, offset {offset}, pid {pid}",
        members.len()
    );
    let mut outs = Vec::with_capacity(members.len());
    for m in members {
        let (tx, rx) = mpsc::channel(QUEUE);
        let line = if m.psync { line.clone() } else { String::new() };
        if m.start.send(Start { line, chunks: rx }).is_ok() {
            outs.push(tx);
        }
    }
    std::thread::spawn(move || pump(std::fs::File::from(rd), pid, outs));
}

/// Reads the child's pipe and hands every chunk to each replica still
/// there; a replica that left is dropped, and with none left the child
/// is stopped.
fn pump(mut pipe: std::fs::File, pid: nix::unistd::Pid, mut outs: Vec<mpsc::Sender<Chunk>>) {
    let mut buf = vec![0u8; CHUNK];
    let read_ok = loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        };
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        outs.retain(|tx| tx.blocking_send(Chunk::Data(chunk.clone())).is_ok());
        if outs.is_empty() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            break false;
        }
    };
    drop(pipe);
    let status = waitpid(pid, None);
    let end = match status {
        Ok(WaitStatus::Exited(_, 0)) if read_ok => Ok(()),
        other => Err(format!("diskless snapshot child failed: {other:?}")),
    };
    if let Err(e) = &end {
        tracing::warn!("{e}");
    }
    for tx in outs {
        let _ = tx.blocking_send(Chunk::End(end.clone()));
    }
}

/// A waiting replica's side: newlines each second until its snapshot
/// starts (as Redis keeps a pre-sync link alive), then the reply line,
/// `$EOF:<mark>\r\n`, the chunks and the mark.
pub(super) async fn send(
    shared: &Shared,
    stream: &mut TcpStream,
    conn: &ReplicaConn,
    start: &mut oneshot::Receiver<Start>,
) -> std::io::Result<()> {
    let kill = conn.handle.kill.clone();
    let gone = || std::io::Error::other("replica gone");
    let Start { mut line, mut chunks } = loop {
        tokio::select! {
            s = &mut *start => break s.map_err(|_| std::io::Error::other("no diskless snapshot for it"))?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => stream.write_all(b"\n").await?,
            _ = kill.cancelled() => return Err(gone()),
            _ = shared.shutdown.cancelled() => return Err(gone()),
        }
    };
    // Forty random characters, as Redis's mark: never a plausible end of
    // an RDB by accident.
    let mark = super::new_replid();
    line.push_str(&format!("$EOF:{mark}\r\n"));
    // The slowest replica paces the pipe for all: one that stops reading
    // for `repl-timeout` is dropped, as Redis drops a stalled transfer.
    let timeout = Duration::from_secs(shared.config.load().int("repl-timeout").max(1) as u64);
    let stalled = || std::io::Error::other("timeout writing the diskless snapshot");
    stream.write_all(line.as_bytes()).await?;
    let mut sent = line.len();
    loop {
        let chunk = tokio::select! {
            c = chunks.recv() => c,
            _ = kill.cancelled() => return Err(gone()),
            _ = shared.shutdown.cancelled() => return Err(gone()),
        };
        match chunk {
            Some(Chunk::Data(b)) => {
                tokio::time::timeout(timeout, stream.write_all(&b)).await.map_err(|_| stalled())??;
                sent += b.len();
            }
            Some(Chunk::End(Ok(()))) => break,
            Some(Chunk::End(Err(e))) => return Err(std::io::Error::other(e)),
            None => return Err(std::io::Error::other("diskless snapshot ended early")),
        }
    }
    stream.write_all(mark.as_bytes()).await?;
    shared.stats.net_output_bytes.fetch_add((sent + mark.len()) as u64, Ordering::Relaxed);
    tracing::info!("Streamed RDB transfer with replica {:?} succeeded (socket)", conn);
    Ok(())
}
