//! One connection to the master: the handshake, PSYNC, and the snapshot
//! of a full resync, before [`super::stream`] takes over.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{set_state, LinkState};
use crate::replication::NO_REPLID;
use crate::server::{unix_ms, Shared};

/// The largest snapshot we accept. It is read into memory as it arrives
/// (never allocated from the announced length), so this only stops a
/// broken master from exhausting memory.
const MAX_SNAPSHOT: usize = 1 << 36;

/// A reply line is at most this long (Redis's own limit for the
/// handshake replies is far smaller).
const MAX_LINE: usize = 64 * 1024;

/// The master connection with what was read past the last line.
pub(super) struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    timeout: Duration,
}

impl Conn {
    async fn send(&mut self, argv: &[&[u8]]) -> Result<(), String> {
        let mut out = Vec::new();
        crate::propagate::encode_command(argv, &mut out);
        tokio::time::timeout(self.timeout, self.stream.write_all(&out))
            .await
            .map_err(|_| "timeout writing to the master".to_string())?
            .map_err(|e| e.to_string())
    }

    async fn fill(&mut self) -> Result<(), String> {
        let n = tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by the master".into());
        }
        Ok(())
    }

    /// One `\n`-terminated line, without `\r\n`.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let text = String::from_utf8_lossy(&line[..i]).trim_end_matches('\r').to_string();
                return Ok(text);
            }
            if self.buf.len() > MAX_LINE {
                return Err("reply line too long".into());
            }
            self.fill().await?;
        }
    }

    /// A line that is not a keepalive newline.
    async fn reply(&mut self) -> Result<String, String> {
        loop {
            let l = self.line().await?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }
}

/// Connects, handshakes, syncs and applies the stream until the link
/// ends. `Ok(true)` when the stream had started.
pub(super) async fn follow(
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    host: &str,
    port: u16,
) -> Result<bool, String> {
    let cfg = shared.config.load_full();
    let timeout = Duration::from_secs(cfg.int("repl-timeout").max(1) as u64);
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
        .map_err(|e| format!("Error connecting to MASTER: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut conn = Conn { stream, buf: BytesMut::with_capacity(16 * 1024), timeout };
    set_state(shared, cancel, |m| m.state = LinkState::Handshake);
    conn.send(&[b"PING"]).await?;
    let pong = conn.reply().await?;
    // A master that wants a password refuses PING; that is still a live
    // master.
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let pass = cfg.string("masterauth");
    if !pass.is_empty() {
        let user = cfg.string("masteruser");
        if user.is_empty() {
            conn.send(&[b"AUTH", pass.as_bytes()]).await?;
        } else {
            conn.send(&[b"AUTH", user.as_bytes(), pass.as_bytes()]).await?;
        }
        let r = conn.reply().await?;
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    let announced = cfg.int("replica-announce-port");
    let our_port =
        if announced > 0 { announced as u64 } else { shared.port.load(std::sync::atomic::Ordering::Relaxed) };
    conn.send(&[b"REPLCONF", b"listening-port", our_port.to_string().as_bytes()]).await?;
    conn.reply().await?;
    let ip = cfg.string("replica-announce-ip");
    if !ip.is_empty() {
        conn.send(&[b"REPLCONF", b"ip-address", ip.as_bytes()]).await?;
        conn.reply().await?;
    }
    conn.send(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]).await?;
    conn.reply().await?;

    let (id, next) = {
        let st = shared.repl.state.lock();
        match st.backlog {
            Some(_) => (st.replid.clone(), st.offset + 1),
            None => ("?".to_string(), -1),
        }
    };
    let next = next.to_string();
    // An old master handing over to its replica: the target becomes the
    // master when it sees its own history id with FAILOVER.
    let failover = crate::replication::failover::in_progress(shared);
    if failover {
        conn.send(&[b"PSYNC", id.as_bytes(), next.as_bytes(), b"FAILOVER"]).await?;
    } else {
        conn.send(&[b"PSYNC", id.as_bytes(), next.as_bytes()]).await?;
    }
    let reply = conn.reply().await?;
    if failover {
        if reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE") {
            crate::replication::failover::completed(shared);
        } else if !reply.starts_with("-NOMASTERLINK") && !reply.starts_with("-LOADING") {
            // Not a passing state of the target's: it refused.
            crate::replication::failover::abort(shared, "Failover target rejected psync request");
            return Err(format!("PSYNC FAILOVER refused: {reply}"));
        }
    }
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut parts = rest.split(' ');
        let replid = parts.next().filter(|r| r.len() == 40).ok_or("bad +FULLRESYNC reply")?.to_string();
        let offset: i64 = parts.next().and_then(|o| o.parse().ok()).ok_or("bad +FULLRESYNC reply")?;
        tracing::info!("Full resync from master: {replid}:{offset}");
        set_state(shared, cancel, |m| m.state = LinkState::Sync);
        let rdb = receive_snapshot(shared, cancel, &mut conn).await?;
        load_snapshot(shared, &rdb, replid, offset)?;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let new_id = rest.trim();
        continue_with(shared, new_id);
        tracing::info!("Successful partial resynchronization with master.");
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    super::stream::apply(shared, cancel, conn).await.map(|()| true)
}

/// Reads the snapshot in either framing: `$<len>\r\n<bytes>` or
/// `$EOF:<40-byte mark>\r\n<bytes><mark>` (diskless).
async fn receive_snapshot(shared: &Shared, cancel: &CancellationToken, conn: &mut Conn) -> Result<Vec<u8>, String> {
    let header = conn.reply().await?;
    let Some(spec) = header.strip_prefix('$') else {
        return Err(format!("Bad protocol from MASTER, the first byte is not '$': {header}"));
    };
    let mut data = Vec::new();
    if let Some(mark) = spec.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err("bad EOF mark from the master".into());
        }
        loop {
            data.extend_from_slice(&conn.buf);
            conn.buf.clear();
            if data.len() >= 40 && data[data.len() - 40..] == mark[..] {
                data.truncate(data.len() - 40);
                break;
            }
            if data.len() > MAX_SNAPSHOT {
                return Err("snapshot from the master too large".into());
            }
            progress(shared, cancel, -1, data.len());
            conn.fill().await?;
        }
    } else {
        let len: usize = spec.parse().map_err(|_| format!("bad snapshot length from the master: {header}"))?;
        if len > MAX_SNAPSHOT {
            return Err("snapshot from the master too large".into());
        }
        loop {
            let n = (len - data.len()).min(conn.buf.len());
            data.extend_from_slice(&conn.buf[..n]);
            conn.buf.advance(n);
            if data.len() == len {
                break;
            }
            progress(shared, cancel, len as i64, data.len());
            conn.fill().await?;
        }
    }
    Ok(data)
}

fn progress(shared: &Shared, cancel: &CancellationToken, total: i64, read: usize) {
    set_state(shared, cancel, |m| {
        m.sync_total = total;
        m.sync_read = read as i64;
        m.last_io_ms = unix_ms();
    });
}

/// Replaces the keyspace with the snapshot and takes the master's history.
fn load_snapshot(shared: &Arc<Shared>, rdb: &[u8], replid: String, offset: i64) -> Result<(), String> {
    let cfg = shared.config.load();
    let mut store = shared.store.lock();
    store.touch_all(None);
    let mut flushed = 0;
    for db in store.dbs.iter_mut() {
        flushed += db.clear();
    }
    store.dirty += flushed as u64;
    let loaded = crate::persist::snapshot::load_into(&mut store, rdb, unix_ms());
    if let Err(e) = &loaded {
        // Half a snapshot is worse than none.
        for db in store.dbs.iter_mut() {
            db.clear();
        }
        return Err(format!("Failed trying to load the MASTER synchronization DB from socket: {e}"));
    }
    let repl = &shared.repl;
    {
        let mut st = repl.state.lock();
        st.replid = replid;
        st.replid2 = NO_REPLID.into();
        st.second_offset = -1;
        st.offset = offset;
        repl.offset.store(offset, std::sync::atomic::Ordering::Relaxed);
        st.backlog = None;
        st.selector.reset();
        st.stream_db = super::super::rdbaux::stream_db(rdb).filter(|&d| d < store.dbs.len()).unwrap_or(0);
        // Our replicas followed the old history: they must resync.
        for r in &st.replicas {
            r.handle.kill.cancel();
        }
        if let Some(m) = st.master.as_mut() {
            m.read_offset = offset;
            m.sync_total = -1;
        }
    }
    let size = cfg.int("repl-backlog-size").clamp(1, 1 << 40) as usize;
    repl.ensure_backlog(shared, size, false);
    // The AOF does not hold the snapshot's data: as Redis does after a
    // sync, it starts over from the new keyspace.
    if shared.aof.writer.load().is_some() {
        if let Err(e) = crate::aof::rewrite(shared, &store, None) {
            tracing::warn!("Can't rewrite the AOF after the sync with the master: {e}");
        }
    }
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

/// `+CONTINUE [<replid>]`: keep data and offset; a new id means the master
/// was promoted, and its old id stays valid for us up to here.
fn continue_with(shared: &Arc<Shared>, new_id: &str) {
    let repl = &shared.repl;
    {
        let mut st = repl.state.lock();
        if new_id.len() == 40 && new_id != st.replid {
            st.replid2 = std::mem::replace(&mut st.replid, new_id.to_string());
            st.second_offset = st.offset + 1;
            for r in &st.replicas {
                r.handle.kill.cancel();
            }
        }
        let offset = st.offset;
        if let Some(m) = st.master.as_mut() {
            m.read_offset = offset;
        }
    }
    let size = shared.config.load().int("repl-backlog-size").clamp(1, 1 << 40) as usize;
    let _store = shared.store.lock();
    repl.ensure_backlog(shared, size, false);
}
