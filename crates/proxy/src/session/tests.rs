use super::*;
use crate::upstream::tests::{fake_node, proxy_with};
use std::time::Duration;
use tokio::net::TcpListener;

/// Echoes each key back as a bulk string; keys named `slow*` take 150 ms.
async fn echo_node() -> crate::upstream::tests::FakeNode {
    fake_node(|args| {
        let bulk = |k: &Bytes| format!("${}\r\n{}\r\n", k.len(), String::from_utf8_lossy(k));
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let delay = if args.iter().skip(1).any(|a| a.starts_with(b"slow")) { 150 } else { 0 };
        let reply = match name.as_str() {
            "MGET" => {
                let mut s = format!("*{}\r\n", args.len() - 1);
                args[1..].iter().for_each(|k| s.push_str(&bulk(k)));
                s
            }
            "DEL" => format!(":{}\r\n", args.len() - 1),
            _ => bulk(&args[1]),
        };
        Some((reply.into_bytes(), delay))
    })
    .await
}

/// Runs a session on `proxy`, sends `input`, and reads `n_bytes` of reply.
async fn talk(proxy: Arc<Proxy>, input: &[u8], want: usize) -> Vec<u8> {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        run(proxy, s, 7).await;
    });
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(input).await.unwrap();
    let mut out = vec![0u8; want];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut out)).await.unwrap().unwrap();
    out
}

// Slots: "b" 3300 and "bar" 5061 sit below 8192 (node 0); "a" 15495 and
// "foo" 12182 above it (node 1).

#[tokio::test]
async fn replies_leave_in_request_order_across_nodes() {
    let (n0, n1) = (echo_node().await, echo_node().await);
    let p = proxy_with(&[&n0.addr, &n1.addr], Some(8192));
    // "slowa" (slot 16295) is on node 1, slow; "b" on node 0 answers first.
    let slow = "slowa";
    assert!(slotway_slots::key_slot(slow.as_bytes()) >= 8192);
    let input = format!("*2\r\n$3\r\nGET\r\n${}\r\n{slow}\r\nGET b\r\nPING\r\n", slow.len());
    let want = format!("${}\r\n{slow}\r\n$1\r\nb\r\n+PONG\r\n", slow.len());
    let out = talk(p, input.as_bytes(), want.len()).await;
    assert_eq!(String::from_utf8_lossy(&out), want);
}

#[tokio::test]
async fn a_timed_out_request_gets_its_error_and_later_replies_flow() {
    let n0 = echo_node().await;
    let p = proxy_with(&[&n0.addr], None);
    let mut c = (**p.config.load()).clone();
    c.timeouts.request_ms = 50;
    p.apply_config(c);
    let input = b"GET slowx\r\nPING\r\n";
    let want = format!("{}+PONG\r\n", errors::TIMEOUT);
    let out = talk(p, input, want.len()).await;
    assert_eq!(String::from_utf8_lossy(&out), want);
}

#[tokio::test]
async fn mget_is_split_by_slot_and_merged_in_key_order() {
    let (n0, n1) = (echo_node().await, echo_node().await);
    let p = proxy_with(&[&n0.addr, &n1.addr], Some(8192));
    let input = b"MGET a b foo bar\r\nDEL a b foo\r\nMGET {t}x {t}y\r\n";
    let want = "*4\r\n$1\r\na\r\n$1\r\nb\r\n$3\r\nfoo\r\n$3\r\nbar\r\n:3\r\n*2\r\n$4\r\n{t}x\r\n$4\r\n{t}y\r\n";
    let out = talk(p, input, want.len()).await;
    assert_eq!(String::from_utf8_lossy(&out), want);
    // One request per slot; the hash-tagged pair went whole, as sent.
    let n1_got = String::from_utf8_lossy(&n1.received.lock()).into_owned();
    assert!(n1_got.contains("*2\r\n$4\r\nMGET\r\n$1\r\na\r\n"), "{n1_got}");
}

#[tokio::test]
async fn local_answers_and_refusals() {
    let n0 = echo_node().await;
    let p = proxy_with(&[&n0.addr], None);
    let input = b"SELECT 0\r\nSELECT 2\r\nCLIENT SETNAME me\r\nCLIENT GETNAME\r\nMULTI\r\nNOSUCH x\r\nRENAME a b\r\nECHO hi\r\n";
    let want = "+OK\r\n-ERR SELECT is not allowed in cluster mode\r\n+OK\r\n$2\r\nme\r\n\
        -ERR slotway does not support MULTI: transactions need all of a client's commands on one node connection\r\n\
        -ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n\
        -CROSSSLOT Keys in request don't hash to the same slot\r\n$2\r\nhi\r\n";
    let out = talk(p, input, want.len()).await;
    assert_eq!(String::from_utf8_lossy(&out), want);
    assert!(n0.received.lock().is_empty());
}

#[tokio::test]
async fn run_serves_caps_clients_and_returns_after_shutdown() {
    let n0 = echo_node().await;
    let p = proxy_with(&[&n0.addr], None);
    let mut c = (**p.config.load()).clone();
    c.limits.max_clients = 1;
    p.apply_config(c);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(p.clone().run(l));
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 7];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut refused = Vec::new();
    second.read_to_end(&mut refused).await.unwrap();
    assert_eq!(&refused[..], b"-ERR max number of clients reached\r\n");
    p.shutdown.cancel();
    // The open session stops reading and closes; run returns once it has.
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), server).await.unwrap().unwrap();
}

#[tokio::test]
async fn hello_3_switches_the_client_to_resp3() {
    let n0 = echo_node().await;
    let p = proxy_with(&[&n0.addr], None);
    let input = b"HELLO 3\r\nCLIENT GETNAME\r\nHELLO 2\r\nCLIENT GETNAME\r\n";
    let hello = |v: u8| {
        format!(
            "{}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:{v}\r\n$2\r\nid\r\n:7\r\n\
             $4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
            if v == 3 { "%7" } else { "*14" }
        )
    };
    let want = format!("{}_\r\n{}$-1\r\n", hello(3), hello(2));
    let out = talk(p, input, want.len()).await;
    assert_eq!(String::from_utf8_lossy(&out), want);
}
