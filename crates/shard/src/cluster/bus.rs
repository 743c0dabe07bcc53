//! The cluster bus's IO: the listener on the bus port, the connections
//! other nodes open to us (we answer their PING/MEET with a PONG on the
//! same connection), and our outbound link to each known node (our PINGs
//! go out there; its PONGs come back there).
//!
//! Every connection reads frames into a buffer bounded by the largest
//! frame; a frame that does not decode drops the connection. Outbound
//! messages wait in a bounded channel per link.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use slotway_cluster::msg::{Msg, FRAME_HEADER, MAX_PAYLOAD};
use slotway_cluster::{Link, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

/// Messages queued on one link before new ones are dropped.
const LINK_QUEUE: usize = 1024;

/// Our side of an outbound link.
pub struct LinkHandle {
    pub tx: mpsc::Sender<Msg>,
    /// When the link was opened (ms).
    pub created: u64,
    /// The node this link is for; a handshake node is renamed once it
    /// tells us its real name.
    pub node: Arc<Mutex<NodeId>>,
    pub cancel: CancellationToken,
}

/// Binds the bus port on every `bind` address and accepts until shutdown.
pub async fn listen(shared: &Arc<Shared>, bind: &[String], cport: u16) -> anyhow::Result<()> {
    let mut bound = 0;
    for addr in bind {
        let (optional, host) = crate::server::bind_host(addr);
        match TcpListener::bind((host, cport)).await {
            Ok(l) => {
                bound += 1;
                tokio::spawn(accept_loop(shared.clone(), l));
            }
            Err(_) if optional => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("Could not bind the cluster bus port {host}:{cport}")))
            }
        }
    }
    anyhow::ensure!(bound > 0, "no cluster bus socket could be bound");
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    while let Some((stream, peer)) = crate::server::accept_next(&shared, &listener, "cluster bus").await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(inbound(shared.clone(), stream, peer));
    }
}

/// Reads whole frames into `buf`; `Ok(false)` on a clean EOF.
async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<bool> {
    if buf.len() >= FRAME_HEADER + MAX_PAYLOAD {
        return Err(std::io::Error::other("cluster bus frame too large"));
    }
    buf.reserve(16 * 1024);
    Ok(stream.read_buf(buf).await? > 0)
}

/// Takes every complete frame out of `buf`.
fn frames(buf: &mut BytesMut) -> Result<Vec<Msg>, slotway_cluster::msg::MsgError> {
    let mut out = Vec::new();
    while let Some((msg, used)) = Msg::decode(buf)? {
        let _ = buf.split_to(used);
        out.push(msg);
    }
    Ok(out)
}

/// Connects from our first `bind` address when it is a specific one, as
/// Redis does, so that peers see the address we serve on.
async fn dial(shared: &Shared, ip: &str, cport: u16) -> std::io::Result<TcpStream> {
    let target: std::net::IpAddr =
        ip.parse().map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "node address"))?;
    let source =
        shared.config.load().bind.first().and_then(|b| b.trim_start_matches('-').parse::<std::net::IpAddr>().ok());
    let socket = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if let Some(src) = source.filter(|s| !s.is_unspecified() && s.is_ipv4() == target.is_ipv4()) {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.connect(SocketAddr::new(target, cport)).await
}

fn ip_of(a: &SocketAddr) -> String {
    a.ip().to_canonical().to_string()
}

/// A connection another node opened to us.
async fn inbound(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let Some(cluster) = shared.cluster.get().cloned() else { return };
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cluster.inbound.lock().insert(serial, (None, crate::server::unix_ms()));
    // Unregisters the link however this task ends.
    struct Registered(Arc<crate::cluster::Cluster>, u64);
    impl Drop for Registered {
        fn drop(&mut self) {
            self.0.inbound.lock().remove(&self.1);
        }
    }
    let _registered = Registered(cluster.clone(), serial);
    let local = stream.local_addr().map(|a| ip_of(&a)).unwrap_or_default();
    let peer_ip = ip_of(&peer);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::new();
    loop {
        let more = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = read_more(&mut stream, &mut buf) => r,
        };
        match more {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let msgs = match frames(&mut buf) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "dropping a cluster bus connection");
                return;
            }
        };
        for msg in msgs {
            if let Some(entry) = cluster.inbound.lock().get_mut(&serial) {
                entry.0 = Some(msg.header.sender);
            }
            let link = Link { outbound_of: None, peer_ip: &peer_ip, local_ip: &local };
            let replies = cluster.update(&shared, None, |st, env| {
                st.handle(env, link, msg);
                st.take_replies()
            });
            for r in replies {
                r.encode(&mut out);
            }
        }
        if !out.is_empty() && stream.write_all(&out.split()).await.is_err() {
            return;
        }
    }
}

/// Opens our link to a node; the task reports up/down to the state.
pub fn connect(shared: Arc<Shared>, id: NodeId, ip: String, cport: u16) -> LinkHandle {
    let (tx, rx) = mpsc::channel(LINK_QUEUE);
    let node = Arc::new(Mutex::new(id));
    let cancel = CancellationToken::new();
    tokio::spawn(outbound(shared, node.clone(), ip, cport, rx, cancel.clone()));
    LinkHandle { tx, node, cancel, created: crate::server::unix_ms() }
}

async fn outbound(
    shared: Arc<Shared>,
    node: Arc<Mutex<NodeId>>,
    ip: String,
    cport: u16,
    mut rx: mpsc::Receiver<Msg>,
    cancel: CancellationToken,
) {
    let Some(cluster) = shared.cluster.get().cloned() else { return };
    let timeout = Duration::from_millis(shared.config.load().cluster_node_timeout.clamp(100, 5000));
    let connected = tokio::select! {
        _ = cancel.cancelled() => return,
        r = tokio::time::timeout(timeout, dial(&shared, &ip, cport)) => r,
    };
    let mut stream = match connected {
        Ok(Ok(s)) => s,
        _ => {
            // Retried by the cron; the failure detection clock runs.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let id = *node.lock();
            cluster.update(&shared, None, |st, env| st.link_down(env, id));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let peer_ip = ip.clone();
    let local = stream.local_addr().map(|a| ip_of(&a)).unwrap_or_default();
    let id = *node.lock();
    cluster.update(&shared, None, |st, env| st.link_up(env, id));
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = shared.shutdown.cancelled() => break,
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                msg.encode(&mut out);
                while let Ok(more) = rx.try_recv() {
                    more.encode(&mut out);
                }
                if stream.write_all(&out.split()).await.is_err() {
                    break;
                }
            }
            r = read_more(&mut stream, &mut buf) => {
                if !matches!(r, Ok(true)) {
                    break;
                }
                let Ok(msgs) = frames(&mut buf) else { break };
                for msg in msgs {
                    let via = *node.lock();
                    let link = Link { outbound_of: Some(via), peer_ip: &peer_ip, local_ip: &local };
                    cluster.update(&shared, None, |st, env| st.handle(env, link, msg));
                }
            }
        }
    }
    if !cancel.is_cancelled() {
        let id = *node.lock();
        cluster.update(&shared, None, |st, env| st.link_down(env, id));
    }
}
