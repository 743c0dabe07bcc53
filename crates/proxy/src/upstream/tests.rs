//! Scripted fake nodes: a TcpListener that answers each request with the
//! bytes a handler chooses and records everything it received.

use super::*;
use crate::redirect::{errors, execute, Target};
use crate::state::Proxy;
use crate::topology::{Node, Shard, Topology};
use parking_lot::Mutex;
use slotway_resp::RequestDecoder;
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

type Handler = Arc<dyn Fn(&[Bytes]) -> Option<(Vec<u8>, u64)> + Send + Sync>;

/// A fake node; the handler returns (reply, delay ms) or `None` to drop
/// the connection.
pub struct FakeNode {
    pub addr: String,
    pub received: Arc<Mutex<Vec<u8>>>,
}

pub async fn fake_node(handler: impl Fn(&[Bytes]) -> Option<(Vec<u8>, u64)> + Send + Sync + 'static) -> FakeNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let rec = received.clone();
    let handler: Handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let rec = rec.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                let mut dec = RequestDecoder::default();
                loop {
                    match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(Some(req)) = dec.decode(&mut buf) {
                        rec.lock().extend_from_slice(&req.raw);
                        let Some((reply, delay)) = handler(&req.args) else { return };
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        if s.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    FakeNode { addr, received }
}

/// A proxy whose whole slot range belongs to `addr`.
pub fn proxy_with(addrs: &[&str], split_at: Option<u16>) -> Arc<Proxy> {
    let mut config = ProxyConfig::default();
    config.timeouts.retry_ms = 300;
    config.pool.connections_per_node = 1;
    let p = Proxy::new(config);
    let mut t = Topology::empty();
    for (i, a) in addrs.iter().enumerate() {
        t.nodes.push(Node { addr: a.to_string(), id: None });
        t.shards.push(Shard { master: i, replicas: vec![] });
    }
    for s in 0..slotway_slots::SLOTS {
        t.slots[s as usize] = match split_at {
            Some(at) if s >= at => 1,
            _ => 0,
        };
    }
    t.version = 1;
    p.topology.store(Arc::new(t));
    p
}

fn cmd(args: &[&str]) -> Bytes {
    crate::fanout::encode_command(args)
}

#[tokio::test]
async fn replies_are_matched_fifo() {
    let node = fake_node(|args| {
        // The first request is answered last: the link must still hand
        // replies to requests in the order they were written.
        let delay = if &args[1][..] == b"a" { 50 } else { 0 };
        Some((format!("${}\r\n{}\r\n", args[1].len(), String::from_utf8_lossy(&args[1])).into_bytes(), delay))
    })
    .await;
    let p = proxy_with(&[&node.addr], None);
    let config = p.config.load_full();
    let up = &p.upstreams;
    let (a, b, c) = tokio::join!(
        up.send(&config, &p.metrics, &node.addr, 0, cmd(&["GET", "a"]), false),
        up.send(&config, &p.metrics, &node.addr, 0, cmd(&["GET", "bb"]), false),
        up.send(&config, &p.metrics, &node.addr, 0, cmd(&["GET", "ccc"]), false),
    );
    assert_eq!(&a.unwrap()[..], b"$1\r\na\r\n");
    assert_eq!(&b.unwrap()[..], b"$2\r\nbb\r\n");
    assert_eq!(&c.unwrap()[..], b"$3\r\nccc\r\n");
}

#[tokio::test]
async fn ask_sends_asking_then_the_command_and_keeps_the_table() {
    let target = fake_node(|args| {
        let r: &[u8] = if args[0].eq_ignore_ascii_case(b"ASKING") { b"+OK\r\n" } else { b"$1\r\nv\r\n" };
        Some((r.to_vec(), 0))
    })
    .await;
    let to = target.addr.clone();
    let source = fake_node(move |_| Some((format!("-ASK 12182 {to}\r\n").into_bytes(), 0))).await;
    let p = proxy_with(&[&source.addr], None);
    let reply = execute(&p, Target::Slot(12182), cmd(&["GET", "foo"]), false, 0).await;
    assert_eq!(&reply[..], b"$1\r\nv\r\n");
    assert_eq!(&target.received.lock()[..], b"*1\r\n$6\r\nASKING\r\n*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n");
    assert_eq!(p.topology.load().master_addr(12182), Some(source.addr.as_str()));
}

#[tokio::test]
async fn moved_patches_the_slot_and_resends() {
    let target = fake_node(|_| Some((b"+OK\r\n".to_vec(), 0))).await;
    let to = target.addr.clone();
    let source = fake_node(move |_| Some((format!("-MOVED 12182 {to}\r\n").into_bytes(), 0))).await;
    let p = proxy_with(&[&source.addr], None);
    let reply = execute(&p, Target::Slot(12182), cmd(&["SET", "foo", "x"]), true, 0).await;
    assert_eq!(&reply[..], b"+OK\r\n");
    assert_eq!(&target.received.lock()[..], b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$1\r\nx\r\n");
    let t = p.topology.load();
    assert_eq!(t.master_addr(12182), Some(target.addr.as_str()));
    assert_eq!(t.master_addr(12181), Some(source.addr.as_str()));
    assert_eq!(t.version, 2);
}

#[tokio::test]
async fn a_lost_write_is_not_retried_a_lost_read_is() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    // Drops the connection on the first request it sees, answers later ones.
    let node = fake_node(
        move |_| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                None
            } else {
                Some((b"$1\r\nv\r\n".to_vec(), 0))
            }
        },
    )
    .await;
    let p = proxy_with(&[&node.addr], None);
    let reply = execute(&p, Target::Slot(1), cmd(&["SET", "k", "v"]), true, 0).await;
    assert_eq!(&reply[..], errors::UNKNOWN_OUTCOME.as_bytes());
    calls.store(0, Ordering::SeqCst);
    let reply = execute(&p, Target::Slot(1), cmd(&["GET", "k"]), false, 0).await;
    assert_eq!(&reply[..], b"$1\r\nv\r\n");
}

#[tokio::test]
async fn tryagain_is_retried_until_it_clears() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let node = fake_node(move |_| {
        let r: &[u8] = if c.fetch_add(1, Ordering::SeqCst) < 2 {
            b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
        } else {
            b":1\r\n"
        };
        Some((r.to_vec(), 0))
    })
    .await;
    let p = proxy_with(&[&node.addr], None);
    let reply = execute(&p, Target::Slot(1), cmd(&["DEL", "a"]), true, 0).await;
    assert_eq!(&reply[..], b":1\r\n");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_node_fails_as_unreachable() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let p = proxy_with(&[&addr], None);
    let config = p.config.load_full();
    let r = p.upstreams.send(&config, &p.metrics, &addr, 0, cmd(&["GET", "a"]), false).await;
    assert!(matches!(r, Err(UpstreamError::Unreachable(_))), "{r:?}");
}

#[tokio::test]
async fn ready_once_every_master_has_a_live_connection() {
    let node = fake_node(|_| Some((b"+OK\r\n".to_vec(), 0))).await;
    let p = proxy_with(&[&node.addr], None);
    assert!(!p.ready(), "no connection yet");
    // Only running workers are warmed: attach this loop as worker 0.
    p.upstreams.attach(0);
    p.upstreams.warm(&p.config.load_full(), &p.metrics, &node.addr);
    let mut ok = false;
    for _ in 0..100 {
        if p.ready() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ok);
    assert!(!Proxy::new(ProxyConfig::default()).ready(), "empty table");
}

#[tokio::test]
async fn a_burst_of_triggers_is_one_refresh() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let seed = fake_node(move |args| {
        if args[0].eq_ignore_ascii_case(b"CLUSTER") {
            c.fetch_add(1, Ordering::SeqCst);
        }
        Some((b"*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$0\r\n\r\n:1\r\n".to_vec(), 0))
    })
    .await;
    let mut config = ProxyConfig { seeds: vec![seed.addr.clone()], ..Default::default() };
    config.topology.min_interval_ms = 200;
    let p = Proxy::new(config);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = tokio::spawn(p.clone().run(l));
    for _ in 0..50 {
        if p.topology.load().version > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = p.topology.load_full();
    assert_eq!(t.master_addr(0), Some("127.0.0.1:1"), "the empty host is the seed's");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A MOVED storm: many triggers, one refresh after min_interval.
    for _ in 0..100 {
        p.trigger_refresh();
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(p.topology.load().version, 2);
    p.shutdown.cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_the_refreshed_table() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let live = fake_node(|_| Some((b"+OK\r\n".to_vec(), 0))).await;
    let p = proxy_with(&[&dead], None);
    let swap = {
        let p = p.clone();
        let live = live.addr.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            // What the refresh task would publish after the failover.
            p.topology.store(Arc::new(p.topology.load().with_slot_moved(1, &live)));
        }
    };
    let (reply, _) = tokio::join!(execute(&p, Target::Slot(1), cmd(&["SET", "k", "v"]), true, 0), swap);
    assert_eq!(&reply[..], b"+OK\r\n");
    assert_eq!(&live.received.lock()[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
}

#[tokio::test]
async fn a_read_whose_master_is_down_is_served_by_its_replica() {
    let replica = fake_node(|args| {
        let name = args[0].to_ascii_uppercase();
        Some(match name.as_slice() {
            b"READONLY" => (b"+OK\r\n".to_vec(), 0),
            b"GET" => (b"$7\r\nreplica\r\n".to_vec(), 0),
            _ => (b"-ERR unexpected\r\n".to_vec(), 0),
        })
    })
    .await;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let mut config = ProxyConfig::default();
    config.timeouts.request_ms = 300;
    config.pool.connections_per_node = 1;
    let p = Proxy::new(config);
    let mut t = Topology::empty();
    t.nodes.push(Node { addr: dead.clone(), id: None });
    t.nodes.push(Node { addr: replica.addr.clone(), id: None });
    t.shards.push(Shard { master: 0, replicas: vec![1] });
    t.slots.fill(0);
    p.topology.store(Arc::new(t));

    let reply = execute(&p, Target::Slot(7), cmd(&["GET", "k"]), false, 0).await;
    assert_eq!(&reply[..], b"$7\r\nreplica\r\n");
    assert_eq!(&replica.received.lock()[..], b"*1\r\n$8\r\nREADONLY\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    // A write is never sent to a replica: it waits for a master, up to its
    // deadline.
    let reply = execute(&p, Target::Slot(7), cmd(&["SET", "k", "v"]), true, 0).await;
    assert!(reply.starts_with(b"-ERR slotway: upstream"), "{:?}", reply);
    assert!(!replica.received.lock().windows(3).any(|w| w == b"SET"));
}
