//! [`create`] against scripted fake nodes: the checks before anything is
//! changed, and the bounded wait for agreement.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use slotway_resp::{Frame, FrameCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

use super::*;

/// What a fake node says about itself.
#[derive(Clone)]
struct Fake {
    id: String,
    cluster_enabled: bool,
    keys: bool,
    known_nodes: u32,
    /// Slots it was given by ADDSLOTS (first, last).
    slots: Option<(String, String)>,
    /// Every command it received, by name.
    log: Vec<String>,
}

impl Fake {
    fn new(n: usize) -> Fake {
        Fake {
            id: format!("{n:040}"),
            cluster_enabled: true,
            keys: false,
            known_nodes: 1,
            slots: None,
            log: Vec::new(),
        }
    }

    /// The reply to `args`, as Redis would send it for this state. It never
    /// meets anyone: MEET succeeds and changes nothing.
    fn reply(&mut self, args: &[String], port: u16) -> Vec<u8> {
        let upper: Vec<String> = args.iter().take(2).map(|a| a.to_ascii_uppercase()).collect();
        self.log.push(upper.join(" "));
        let bulk = |s: String| format!("${}\r\n{s}\r\n", s.len()).into_bytes();
        match upper.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["INFO"] => {
                let mut s = format!("# Cluster\r\ncluster_enabled:{}\r\n# Keyspace\r\n", self.cluster_enabled as u8);
                if self.keys {
                    s.push_str("db0:keys=1,expires=0,avg_ttl=0\r\n");
                }
                bulk(s)
            }
            ["CLUSTER", "INFO"] => bulk(format!("cluster_state:fail\r\ncluster_known_nodes:{}\r\n", self.known_nodes)),
            ["CLUSTER", "NODES"] => {
                let slots = self.slots.as_ref().map(|(a, b)| format!(" {a}-{b}")).unwrap_or_default();
                bulk(format!("{} :{port}@{} myself,master - 0 0 0 connected{slots}\n", self.id, port + 10000))
            }
            ["CLUSTER", "ADDSLOTS"] => {
                self.slots = Some((args[2].clone(), args[args.len() - 1].clone()));
                b"+OK\r\n".to_vec()
            }
            ["CLUSTER", _] => b"+OK\r\n".to_vec(),
            _ => b"-ERR unknown command\r\n".to_vec(),
        }
    }
}

/// Serves `fake` on a loopback port; returns its address and its state.
async fn serve(fake: Fake) -> (String, Arc<Mutex<Fake>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(fake));
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                let mut codec = FrameCodec::default();
                loop {
                    while let Ok(Some(Frame::Array(items))) = codec.decode(&mut buf) {
                        let args: Vec<String> = items
                            .iter()
                            .filter_map(|f| f.as_bytes())
                            .map(|b| String::from_utf8_lossy(b).into())
                            .collect();
                        let reply = state.lock().unwrap().reply(&args, addr.port());
                        if s.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    (addr.to_string(), state)
}

async fn three(edit: impl Fn(usize, &mut Fake)) -> (Vec<String>, Vec<Arc<Mutex<Fake>>>) {
    let mut addrs = Vec::new();
    let mut states = Vec::new();
    for n in 0..3 {
        let mut fake = Fake::new(n);
        edit(n, &mut fake);
        let (addr, state) = serve(fake).await;
        addrs.push(addr);
        states.push(state);
    }
    (addrs, states)
}

fn quick() -> CreateOptions {
    CreateOptions {
        replicas: 0,
        command_timeout: Duration::from_secs(2),
        join_timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(20),
    }
}

/// No node got a command that changes anything.
fn untouched(states: &[Arc<Mutex<Fake>>]) -> bool {
    states
        .iter()
        .all(|s| s.lock().unwrap().log.iter().all(|c| matches!(c.as_str(), "INFO" | "CLUSTER INFO" | "CLUSTER NODES")))
}

#[tokio::test]
async fn refuses_a_node_without_cluster_mode() {
    let (addrs, states) = three(|n, f| f.cluster_enabled = n != 1).await;
    match create(&addrs, &quick()).await {
        Err(CreateError::NotClusterNode { addr }) => assert_eq!(addr, addrs[1]),
        other => panic!("{other:?}"),
    }
    assert!(untouched(&states));
}

#[tokio::test]
async fn refuses_a_node_with_keys_or_peers() {
    let (addrs, states) = three(|n, f| f.keys = n == 2).await;
    let e = create(&addrs, &quick()).await.unwrap_err();
    assert!(matches!(&e, CreateError::NotEmpty { addr, .. } if *addr == addrs[2]), "{e:?}");
    assert_eq!(e.to_string(), format!("node {} is not empty: it holds keys in database 0", addrs[2]));
    assert!(untouched(&states));

    let (addrs, states) = three(|n, f| f.known_nodes = if n == 0 { 4 } else { 1 }).await;
    let e = create(&addrs, &quick()).await.unwrap_err();
    assert_eq!(e.to_string(), format!("node {} is not empty: it already knows 4 nodes", addrs[0]));
    assert!(untouched(&states));
}

#[tokio::test]
async fn refuses_two_addresses_of_one_node() {
    let (addrs, states) = three(|n, f| f.id = format!("{:040}", n.min(1))).await;
    let e = create(&addrs, &quick()).await.unwrap_err();
    assert!(matches!(&e, CreateError::Duplicate(what) if what.contains(&addrs[2])), "{e:?}");
    assert!(untouched(&states));
}

#[tokio::test]
async fn nodes_that_never_meet_time_out_naming_what_each_sees() {
    let (addrs, states) = three(|_, _| {}).await;
    let started = std::time::Instant::now();
    let e = create(&addrs, &quick()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "bounded by join_timeout");
    let CreateError::NoAgreement { detail, .. } = &e else { panic!("{e:?}") };
    for addr in &addrs {
        assert!(detail.contains(&format!("{addr} sees 1 slot owner(s)")), "{detail}");
    }
    // What was sent, in redis-cli's order, before the wait gave up.
    let first = states[0].lock().unwrap().log.clone();
    assert_eq!(first[..5], ["INFO", "CLUSTER INFO", "CLUSTER NODES", "CLUSTER ADDSLOTS", "CLUSTER SET-CONFIG-EPOCH"]);
    assert!(!first.contains(&"CLUSTER MEET".to_owned()), "the first node is met, it meets no one");
    let second = states[1].lock().unwrap().log.clone();
    assert!(second.contains(&"CLUSTER MEET".to_owned()));
    assert_eq!(states[1].lock().unwrap().slots, Some(("5461".into(), "10922".into())));
    assert_eq!(states[2].lock().unwrap().slots, Some(("10923".into(), "16383".into())));
}
