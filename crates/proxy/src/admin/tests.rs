//! The admin routes over real sockets, with hand-written HTTP/1 requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::tests::{reloader, TempFile};
use crate::state::Proxy;
use crate::topology::{Node, Shard, Topology};

struct Running {
    addr: SocketAddr,
    proxy: Arc<Proxy>,
    file: TempFile,
    server: tokio::task::JoinHandle<()>,
}

async fn start(tag: &str) -> Running {
    let file = TempFile::new(&format!("admin-{tag}"), "seeds: [127.0.0.1:7000]\n");
    let (proxy, reloader, _) = reloader(&file, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(super::serve(listener, proxy.clone(), reloader));
    Running { addr, proxy, file, server }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `raw` as is and reads until the server closes.
async fn send(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await.expect("answer in time").unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_string(), body: body.to_string() }
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    send(addr, format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes()).await
}

#[tokio::test]
async fn healthz_and_metrics() {
    let r = start("health").await;
    let a = request(r.addr, "GET", "/healthz").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));

    r.proxy.metrics.requests.with_label_values(&["get"]).inc();
    let a = request(r.addr, "GET", "/metrics").await;
    assert_eq!(a.status, 200);
    assert!(a.head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{}", a.head);
    assert!(a.body.contains("# TYPE slotway_requests_total counter\n"), "{}", a.body);
    assert!(a.body.contains("slotway_requests_total{command=\"get\"} 1\n"), "{}", a.body);
}

#[tokio::test]
async fn readyz_follows_the_proxy() {
    let r = start("ready").await;
    let a = request(r.addr, "GET", "/readyz").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body, "not ready: no slot table yet (no seed has answered CLUSTER SLOTS)");

    let mut t = Topology::empty();
    t.version = 1;
    t.nodes = vec![Node { addr: "127.0.0.1:7000".into(), id: None }];
    t.shards = vec![Shard { master: 0, replicas: vec![] }];
    t.slots[..100].fill(0);
    r.proxy.topology.store(Arc::new(t.clone()));
    let a = request(r.addr, "GET", "/readyz").await;
    assert_eq!((a.status, a.body.as_str()), (503, "not ready: 16284 of 16384 slots are served by no node"));

    // Full coverage: the answer is whatever `Proxy::ready` says (the data
    // path may also want its node connections up).
    t.slots.fill(0);
    r.proxy.topology.store(Arc::new(t));
    let a = request(r.addr, "GET", "/readyz").await;
    if r.proxy.ready() {
        assert_eq!((a.status, a.body.as_str()), (200, "ready"));
    } else {
        assert_eq!(a.status, 503, "{}", a.body);
    }
}

#[tokio::test]
async fn topology_as_json() {
    let r = start("topology").await;
    let a = request(r.addr, "GET", "/topology").await;
    assert_eq!(a.status, 200);
    assert!(a.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", a.head);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["version"], 0);
    assert_eq!(v["unassigned_slots"], 16384);

    let mut t = Topology::empty();
    t.version = 2;
    t.fetched_at = std::time::SystemTime::now();
    t.nodes = vec![Node { addr: "10.0.0.1:7000".into(), id: None }, Node { addr: "10.0.0.2:7001".into(), id: None }];
    t.shards = vec![Shard { master: 0, replicas: vec![1] }];
    t.slots.fill(0);
    r.proxy.topology.store(Arc::new(t));
    let a = request(r.addr, "GET", "/topology").await;
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(
        v["shards"],
        serde_json::json!([{"master": "10.0.0.1:7000", "master_id": null, "replicas": ["10.0.0.2:7001"], "slots": [[0, 16383]]}])
    );
    assert!(v["age_seconds"].as_f64().is_some_and(|a| (0.0..60.0).contains(&a)), "{v}");
}

#[tokio::test]
async fn reload_answers_200_or_400() {
    let r = start("reload").await;
    r.file.write("seeds: [127.0.0.1:7000]\ntimeouts: {request_ms: 77}\n");
    let a = request(r.addr, "POST", "/reload").await;
    assert_eq!((a.status, a.body.as_str()), (200, "configuration reloaded"));
    assert_eq!(r.proxy.config.load().timeouts.request_ms, 77);

    r.file.write("seeds: [127.0.0.1:7000]\ntimeouts: {request_ms: 0}\n");
    let a = request(r.addr, "POST", "/reload").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body, "reload refused: timeouts.request_ms: must be between 1 and 600000");
    assert_eq!(r.proxy.config.load().timeouts.request_ms, 77);

    r.file.write("seeds: [127.0.0.1:7000]\nlisten: 127.0.0.1:1\n");
    let a = request(r.addr, "POST", "/reload").await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("listen: '127.0.0.1:1' needs a restart to take effect; still '127.0.0.1:6380'"),
        "{}",
        a.body
    );
    assert_eq!(r.proxy.config.load().listen, "127.0.0.1:6380");

    // A body is allowed and ignored.
    let raw = "POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    assert_eq!(send(r.addr, raw.as_bytes()).await.status, 200);
}

#[tokio::test]
async fn unknown_paths_methods_and_garbage() {
    let r = start("bad").await;
    assert_eq!(request(r.addr, "GET", "/nope").await.status, 404);
    assert_eq!(request(r.addr, "GET", "/").await.status, 404);
    let a = request(r.addr, "POST", "/metrics").await;
    assert_eq!(a.status, 405);
    assert!(a.head.to_ascii_lowercase().contains("allow: get"), "{}", a.head);
    let a = request(r.addr, "GET", "/reload").await;
    assert_eq!(a.status, 405);
    assert!(a.head.to_ascii_lowercase().contains("allow: post"), "{}", a.head);
    // Query strings do not change the route.
    assert_eq!(request(r.addr, "GET", "/healthz?verbose=1").await.status, 200);

    // Malformed requests get hyper's 4xx or a closed connection, and the
    // server keeps serving.
    for raw in [
        &b"BLAH\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost\r\n\r\n",
    ] {
        let a = send(r.addr, raw).await;
        assert!(a.status == 0 || (400..500).contains(&a.status), "{raw:?}: {}", a.head);
    }
    // A client that connects and goes away.
    drop(TcpStream::connect(r.addr).await.unwrap());
    assert_eq!(request(r.addr, "GET", "/healthz").await.status, 200);
}

#[tokio::test]
async fn keep_alive_serves_several_requests() {
    let r = start("keepalive").await;
    let raw = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let a = send(r.addr, raw.as_bytes()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.matches("HTTP/1.1 200 OK").count(), 1, "{}", a.body);
}

#[tokio::test]
async fn stops_on_shutdown() {
    let r = start("shutdown").await;
    // An idle keep-alive connection must not hold the server up.
    let mut idle = TcpStream::connect(r.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    r.proxy.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), r.server).await.expect("stops in time").unwrap();
    assert!(TcpStream::connect(r.addr).await.is_err());
}
