//! Applying the master's stream: each request runs through `dispatch` as
//! the master client (replies dropped, read-only rule not applied), under
//! one keyspace lock per chunk read. The offset advances by each request's
//! exact byte length, and those exact bytes go to our backlog and our own
//! replicas. `REPLCONF ACK <offset>` goes back once a second, on `REPLCONF
//! GETACK`, and right after each applied chunk (so `replica-ack-writes`
//! masters hear back at once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use slotway_resp::{Limits, ReplyBuf, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use super::handshake::Conn;
use super::{set_state, LinkState};
use crate::client::Client;
use crate::command::{Ctx, Mode};
use crate::server::{unix_ms, Shared};
use crate::store::db::{set_expiry_mode, ExpiryMode};

pub(super) async fn apply(shared: &Arc<Shared>, cancel: &CancellationToken, conn: Conn) -> Result<(), String> {
    let Conn { mut stream, buf: mut inbuf, .. } = conn;
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let handle = shared.new_client(peer, local);
    handle.set_flag(crate::client::FLAG_MASTER, true);
    let id = handle.id;
    let mut client = Client::new(handle.clone(), true);
    client.is_master = true;
    // Where the stream stands: a resumed stream goes on in the database
    // it had selected, a fresh one where the snapshot said.
    client.db = shared.repl.state.lock().stream_db;
    handle.db.store(client.db, Ordering::Relaxed);
    set_state(shared, cancel, |m| {
        m.state = LinkState::Connected;
        m.last_io_ms = unix_ms();
        m.client_kill = Some(handle.kill.clone());
    });
    let cfg = shared.config.load_full();
    let timeout = Duration::from_secs(cfg.int("repl-timeout").max(1) as u64);
    let limits = Limits { max_bulk_len: cfg.proto_max_bulk_len, authenticated: true, ..Limits::default() };
    let mut decoder = RequestDecoder::new(limits);
    let mut ack_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_io = tokio::time::Instant::now();
    let (mut rd, mut wr) = stream.split();
    let result = async {
        // The first ACK also tells a diskless master we are ready.
        let mut acked = shared.repl.master_offset();
        send_ack(&mut wr, acked).await?;
        let mut pending = std::mem::take(&mut inbuf);
        loop {
            if !pending.is_empty() {
                let getack = apply_chunk(shared, cancel, &mut client, &mut decoder, &mut pending)?;
                let offset = shared.repl.master_offset();
                if let Some(at) = getack {
                    send_ack(&mut wr, at).await?;
                }
                if offset != acked {
                    send_ack(&mut wr, offset).await?;
                    acked = offset;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = handle.kill.cancelled() => return Ok(()),
                _ = shared.shutdown.cancelled() => return Ok(()),
                _ = ack_tick.tick() => {
                    acked = shared.repl.master_offset();
                    send_ack(&mut wr, acked).await?;
                    if last_io.elapsed() > timeout {
                        return Err("MASTER timeout: no data nor PING received...".to_string());
                    }
                }
                read = rd.read_buf(&mut pending) => {
                    let n = read.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Ok(());
                    }
                    last_io = tokio::time::Instant::now();
                    shared.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    set_state(shared, cancel, |m| {
                        m.last_io_ms = unix_ms();
                        m.read_offset += n as i64;
                    });
                }
            }
        }
    }
    .await;
    shared.clients.lock().remove(&id);
    result
}

async fn send_ack(wr: &mut tokio::net::tcp::WriteHalf<'_>, offset: i64) -> Result<(), String> {
    let mut out = Vec::with_capacity(48);
    crate::propagate::encode_command(&[b"REPLCONF".as_slice(), b"ACK", offset.to_string().as_bytes()], &mut out);
    tokio::time::timeout(Duration::from_secs(5), wr.write_all(&out))
        .await
        .map_err(|_| "timeout writing to the master".to_string())?
        .map_err(|e| e.to_string())
}

/// Runs every complete request in `buf` under one keyspace lock. Returns
/// the offset to report when the master asked for an ACK (as Redis does,
/// the offset before the GETACK itself).
fn apply_chunk(
    shared: &Shared,
    cancel: &CancellationToken,
    client: &mut Client,
    decoder: &mut RequestDecoder,
    buf: &mut BytesMut,
) -> Result<Option<i64>, String> {
    let config = shared.config.load();
    let repl = &shared.repl;
    let mut store = shared.store.lock();
    // REPLICAOF (NO ONE, or another master) may have run since the read:
    // nothing of this master's may be applied after it.
    if cancel.is_cancelled() {
        return Err("replication link replaced".into());
    }
    let mut out = ReplyBuf::new(client.proto);
    let mut getack = None;
    // The master decides what has expired: its keys stay readable to it.
    set_expiry_mode(ExpiryMode::MasterStream);
    let result = loop {
        let req = match decoder.decode(buf) {
            Ok(Some(req)) => req,
            Ok(None) => break Ok(getack),
            Err(e) => break Err(format!("Protocol error from the master: {e}")),
        };
        let args = &req.args;
        if args.len() >= 2 && args[0].eq_ignore_ascii_case(b"replconf") && args[1].eq_ignore_ascii_case(b"getack") {
            getack = Some(repl.master_offset());
        } else if !args.is_empty() {
            let now = unix_ms();
            let mut ctx = Ctx::new(&mut store, shared, &config, &mut *client, &mut out, now, Mode::Normal);
            crate::dispatch::execute(&mut ctx, args);
            if !store.ready.is_empty() {
                crate::dispatch::serve_blocked(&mut store, shared);
            }
            if out.buf.first() == Some(&b'-') {
                // The master applied it; we could not. Nothing can be
                // answered to the master, so at least say so.
                let name = String::from_utf8_lossy(&args[0][..args[0].len().min(64)]).into_owned();
                let reply = String::from_utf8_lossy(&out.buf[..out.buf.len().min(200)]).into_owned();
                tracing::warn!(
                    "== CRITICAL == This replica failed a command from its master: '{name}': {}",
                    reply.trim_end()
                );
            }
            out.buf.clear();
        }
        let mut st = repl.state.lock();
        st.stream_db = client.db;
        repl.push(&mut st, &req.raw);
    };
    repl.apply_expiry_mode();
    result
}
