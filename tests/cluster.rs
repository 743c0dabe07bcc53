//! slotway-shard in cluster mode, as real processes on loopback driven by
//! the real `redis-cli --cluster` and by plain connections: redirections
//! exactly as Redis words them, resharding under a write load with no
//! acknowledged write lost, automatic failover after `kill -9` (timed),
//! a SIGSTOPped master coming back as a replica, CLUSTER FAILOVER, and
//! PUBLISH reaching subscribers on other nodes.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotway_slots::key_slot;
use slotway_testkit::cluster::{run_bounded, Follow};
use slotway_testkit::{require_tool, wait_until, RawClient, RedisCluster};

fn shards(masters: usize, replicas: usize, timeout_ms: u64) -> RedisCluster {
    let t = timeout_ms.to_string();
    RedisCluster::start_shards(masters, replicas, &["--cluster-node-timeout", &t])
}

fn cli(args: &[&str]) -> slotway_testkit::cluster::Output {
    let mut c = Command::new("redis-cli");
    c.args(args);
    run_bounded(c, None, Duration::from_secs(120))
}

/// A key whose slot `port` does not serve, and the port that does.
fn foreign_key(cluster: &RedisCluster, port: u16) -> (String, u16) {
    let map = cluster.slot_map(port);
    (0..)
        .map(|i| format!("k{i}"))
        .find_map(|k| {
            let owner = map[key_slot(k.as_bytes()) as usize]?;
            (owner != port).then_some((k, owner))
        })
        .expect("some key lives elsewhere")
}

#[test]
fn redirections_speak_redis() {
    require_tool!("redis-cli");
    let cluster = shards(3, 0, 5000);
    let port = cluster.masters()[0];
    let mut c = cluster.client(port);
    let (key, owner) = foreign_key(&cluster, port);
    let slot = key_slot(key.as_bytes());
    assert_eq!(c.cmd_str(&["SET", &key, "v"]), format!("-MOVED {slot} 127.0.0.1:{owner}\r\n"));
    assert_eq!(
        c.cmd_str(&["MSET", "{a}1", "x", "{b}2", "y"]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(c.cmd_str(&["SELECT", "1"]), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd_str(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(c.cmd_str(&["CLUSTER", "KEYSLOT", "hello"]), ":866\r\n");

    // A slot in migration: present keys are served, missing ones ASK, a
    // mix is TRYAGAIN; the target serves only after ASKING.
    let mut o = cluster.client(owner);
    let tag = format!("{{{key}}}");
    assert_eq!(o.cmd_str(&["SET", &format!("{tag}a"), "1"]), "+OK\r\n");
    let (owner_id, target_id) = (cluster.node_id(owner), cluster.node_id(port));
    let s = slot.to_string();
    assert_eq!(cluster.client(port).cmd_str(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &owner_id]), "+OK\r\n");
    assert_eq!(o.cmd_str(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &target_id]), "+OK\r\n");
    assert_eq!(o.cmd_str(&["GET", &format!("{tag}a")]), "$1\r\n1\r\n");
    assert_eq!(o.cmd_str(&["GET", &format!("{tag}b")]), format!("-ASK {slot} 127.0.0.1:{port}\r\n"));
    assert_eq!(
        o.cmd_str(&["MGET", &format!("{tag}a"), &format!("{tag}b")]),
        "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
    );
    assert_eq!(c.cmd_str(&["GET", &format!("{tag}b")]), format!("-MOVED {slot} 127.0.0.1:{owner}\r\n"));
    assert_eq!(c.cmd_str(&["ASKING"]), "+OK\r\n");
    assert_eq!(c.cmd_str(&["GET", &format!("{tag}b")]), "$-1\r\n");
    assert!(c.cmd_str(&["GET", &format!("{tag}b")]).starts_with("-MOVED"), "ASKING covers one command");
    let nodes = cluster.cluster_nodes(owner);
    assert!(nodes.contains(&format!("[{slot}->-{target_id}]")), "{nodes}");
    assert!(cluster.cluster_nodes(port).contains(&format!("[{slot}-<-{owner_id}]")));
    // redis-cli sees the open slot, and fix closes it.
    let check = cli(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    assert!(check.stdout.contains("open slot"), "{}", check.stdout);
    let fix = cli(&["--cluster", "fix", &format!("127.0.0.1:{port}")]);
    assert!(fix.ok, "{}\n{}", fix.stdout, fix.stderr);
    wait_until!(
        Duration::from_secs(30),
        cli(&["--cluster", "check", &format!("127.0.0.1:{port}")]).ok,
        "check after fix"
    );

    // Keys live in per-slot tables: counted and listed without a scan.
    let f = Follow { seed: port, budget: Duration::from_secs(10) };
    for i in 0..5 {
        f.call(&["SET", &format!("{{t}}{i}"), "x"]).unwrap();
    }
    let t_slot = key_slot(b"t").to_string();
    let t_owner = cluster.slot_owner(port, key_slot(b"t")).unwrap();
    let mut t = cluster.client(t_owner);
    assert_eq!(t.cmd_str(&["CLUSTER", "COUNTKEYSINSLOT", &t_slot]), ":5\r\n");
    let listed = t.call(&["CLUSTER", "GETKEYSINSLOT", &t_slot, "3"]).unwrap();
    assert_eq!(listed.array().map(|a| a.len()), Some(3));
    assert_eq!(t.cmd_str(&["CLUSTER", "COUNTKEYSINSLOT", "16384"]), "-ERR Invalid slot\r\n");
}

#[test]
fn replies_parse_as_redis_clients_expect() {
    require_tool!("redis-cli");
    let cluster = shards(3, 1, 5000);
    let port = cluster.masters()[0];
    let mut c = cluster.client(port);
    let info = String::from_utf8_lossy(c.call(&["CLUSTER", "INFO"]).unwrap().bulk().unwrap()).into_owned();
    for field in ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:6", "cluster_size:3"] {
        assert!(info.contains(field), "{field} in {info}");
    }
    // Replicas are announced by gossip, a ping or two after they attach.
    let with_replicas = |c: &mut RawClient| {
        let slots = c.call(&["CLUSTER", "SLOTS"]).unwrap();
        slots.array().is_some_and(|a| a.len() == 3 && a.iter().all(|r| r.array().is_some_and(|r| r.len() == 4)))
    };
    wait_until!(Duration::from_secs(10), with_replicas(&mut c), "CLUSTER SLOTS: start, end, master, one replica");
    let slots = c.call(&["CLUSTER", "SLOTS"]).unwrap();
    for r in slots.array().unwrap() {
        let r = r.array().unwrap();
        let node = r[2].array().unwrap();
        assert_eq!(node[0].bulk(), Some(&b"127.0.0.1"[..]));
        assert!(node[1].int().is_some() && node[2].bulk().map(|b| b.len()) == Some(40));
    }
    let shards = c.call(&["CLUSTER", "SHARDS"]).unwrap();
    assert_eq!(shards.array().map(|a| a.len()), Some(3));
    // A link to each of the five others, and one from each of them.
    wait_until!(
        Duration::from_secs(10),
        c.call(&["CLUSTER", "LINKS"]).unwrap().array().map(|a| a.len()) == Some(10),
        "CLUSTER LINKS: {:?}",
        c.cmd_str(&["CLUSTER", "LINKS"])
    );
    // nodes.conf is CLUSTER NODES plus the epochs.
    let me = cluster.node_id(port);
    assert!(c.cmd_str(&["CLUSTER", "MYID"]).contains(&me));
    assert_eq!(c.cmd_str(&["CLUSTER", "SAVECONFIG"]), "+OK\r\n");
    let info = String::from_utf8_lossy(c.call(&["INFO", "cluster"]).unwrap().bulk().unwrap()).into_owned();
    assert!(info.contains("cluster_enabled:1"));
    // Functions copy between nodes as redis-cli --cluster add-node does.
    let dump = c.call(&["FUNCTION", "DUMP"]).unwrap();
    let payload = dump.bulk().expect("a payload").to_vec();
    let mut other = cluster.client(cluster.masters()[1]);
    let mut restore = Vec::new();
    slotway_testkit::encode_command(&mut restore, &[&b"FUNCTION"[..], b"RESTORE", &payload]);
    other.send_raw(&restore).unwrap();
    assert_eq!(other.read_reply().unwrap(), b"+OK\r\n");
    // A replica redirects to its master, and serves reads after READONLY.
    let replica = cluster.replicas()[0];
    let mut r = cluster.client(replica);
    let f = Follow { seed: port, budget: Duration::from_secs(10) };
    let key = (0..)
        .map(|i| format!("r{i}"))
        .find(|k| {
            let owner = cluster.slot_owner(port, key_slot(k.as_bytes())).unwrap();
            cluster
                .cluster_nodes(replica)
                .lines()
                .any(|l| l.contains("myself") && l.split(' ').nth(3) == Some(cluster.node_id(owner).as_str()))
        })
        .unwrap();
    f.call(&["SET", &key, "v"]).unwrap();
    assert!(r.cmd_str(&["GET", &key]).starts_with("-MOVED"));
    assert!(r.cmd_str(&["SET", &key, "w"]).starts_with("-MOVED"), "writes to a replica are redirected");
    assert_eq!(r.cmd_str(&["READONLY"]), "+OK\r\n");
    wait_until!(Duration::from_secs(10), r.cmd_str(&["GET", &key]) == "$1\r\nv\r\n");
    assert!(r.cmd_str(&["SET", &key, "w"]).starts_with("-MOVED"));
}

#[test]
fn reshard_under_writes_loses_nothing() {
    require_tool!("redis-cli");
    let cluster = shards(3, 0, 5000);
    let ports = cluster.masters();
    let seed = ports[0];
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let f = Follow { seed, budget: Duration::from_secs(20) };
            let mut acked = Vec::new();
            for i in 0..200_000u32 {
                if stop.load(Ordering::Relaxed) && i % 100 == 0 {
                    break;
                }
                let key = format!("w:{i}");
                if f.call(&["SET", &key, &i.to_string()]).is_ok_and(|r| r == b"+OK\r\n") {
                    acked.push(i);
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let target = cluster.node_id(ports[2]);
    let out = cli(&[
        "--cluster",
        "reshard",
        &format!("127.0.0.1:{seed}"),
        "--cluster-from",
        "all",
        "--cluster-to",
        &target,
        "--cluster-slots",
        "1000",
        "--cluster-yes",
    ]);
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(out.ok, "reshard: {}\n{}", out.stdout, out.stderr);
    assert!(acked.len() > 100, "the writer made progress ({} writes)", acked.len());
    let f = Follow { seed, budget: Duration::from_secs(10) };
    for i in &acked {
        let got = f.call(&["GET", &format!("w:{i}")]).unwrap();
        assert_eq!(got, format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes(), "key w:{i}");
    }
    wait_until!(
        Duration::from_secs(30),
        cli(&["--cluster", "check", &format!("127.0.0.1:{seed}")]).ok,
        "cluster check after reshard"
    );
    eprintln!("reshard of 1000 slots under load: {} acknowledged writes, all present", acked.len());
}

#[test]
fn kill_9_master_fails_over_and_returns_as_replica() {
    require_tool!("redis-cli");
    let mut cluster = shards(3, 1, 1000);
    let seed = cluster.masters()[1];
    let victim = cluster.masters()[0];
    let victim_id = cluster.node_id(victim);
    let key = (0..)
        .map(|i| format!("f{i}"))
        .find(|k| cluster.slot_owner(seed, key_slot(k.as_bytes())) == Some(victim))
        .unwrap();
    let f = Follow { seed, budget: Duration::from_secs(30) };
    f.call(&["SET", &key, "before"]).unwrap();
    let mut m = cluster.client(victim);
    assert_eq!(m.cmd_str(&["WAIT", "1", "2000"]), ":1\r\n");
    cluster.kill_node(victim);
    let started = Instant::now();
    f.call(&["SET", &key, "after"]).expect("writes come back after the failover");
    let took = started.elapsed();
    eprintln!("writes to the killed master's slots resumed after {took:?} (cluster-node-timeout 1000)");
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    let ports = cluster.ports();
    wait_until!(Duration::from_secs(10), ports.iter().all(|&p| slotway_testkit::cluster::cluster_state_ok(p)));
    assert!(cluster.cluster_nodes(seed).lines().any(|l| l.starts_with(&victim_id) && l.contains("fail")));

    cluster.restart_node(victim);
    wait_until!(
        Duration::from_secs(20),
        cluster.cluster_nodes(victim).lines().any(|l| l.starts_with(&victim_id) && l.contains("myself,slave")),
        "the old master comes back as a replica"
    );
    let mut old = cluster.client(victim);
    assert!(old.cmd_str(&["SET", &key, "x"]).starts_with("-MOVED"));
    wait_until!(Duration::from_secs(20), {
        let _ = old.cmd_str(&["READONLY"]);
        old.cmd_str(&["GET", &key]) == "$5\r\nafter\r\n"
    });
}

#[test]
fn sigstopped_master_is_replaced_and_comes_back_as_replica() {
    require_tool!("redis-cli");
    let cluster = shards(3, 1, 1000);
    let seed = cluster.masters()[1];
    let victim = cluster.masters()[0];
    let victim_id = cluster.node_id(victim);
    cluster.signal(victim, "STOP");
    let ok = slotway_testkit::wait::wait_for(Duration::from_secs(15), || {
        parse_role(&cluster.cluster_nodes(seed), &victim_id).is_some_and(|l| l.contains("fail"))
            && cluster.masters().len() == 3
    });
    cluster.signal(victim, "CONT");
    assert!(ok.is_ok(), "a replica took over the stopped master's slots");
    wait_until!(
        Duration::from_secs(20),
        cluster.cluster_nodes(victim).lines().any(|l| l.starts_with(&victim_id) && l.contains("myself,slave")),
        "the stopped master rejoins as a replica"
    );
    let key = (0..)
        .map(|i| format!("s{i}"))
        .find(|k| cluster.slot_owner(seed, key_slot(k.as_bytes())) != Some(seed))
        .unwrap();
    assert!(cluster.client(victim).cmd_str(&["SET", &key, "x"]).starts_with("-MOVED"), "it accepts no writes");
}

fn parse_role(nodes: &str, id: &str) -> Option<String> {
    nodes.lines().find(|l| l.starts_with(id)).map(|l| l.split(' ').nth(2).unwrap_or("").to_string())
}

#[test]
fn cluster_failover_swaps_master_and_replica_without_loss() {
    require_tool!("redis-cli");
    let cluster = shards(3, 1, 2000);
    let seed = cluster.masters()[0];
    let f = Follow { seed, budget: Duration::from_secs(10) };
    for i in 0..300 {
        f.call(&["SET", &format!("m:{i}"), &i.to_string()]).unwrap();
    }
    let replica = cluster.replicas()[0];
    let id = cluster.node_id(replica);
    assert_eq!(cluster.client(replica).cmd_str(&["CLUSTER", "FAILOVER"]), "+OK\r\n");
    wait_until!(
        Duration::from_secs(15),
        parse_role(&cluster.cluster_nodes(seed), &id).is_some_and(|r| r.contains("master")),
        "the replica is master after CLUSTER FAILOVER"
    );
    assert_eq!(
        cluster.client(cluster.masters()[0]).cmd_str(&["CLUSTER", "FAILOVER"]),
        "-ERR You should send CLUSTER FAILOVER to a replica\r\n"
    );
    for i in 0..300 {
        let got = f.call(&["GET", &format!("m:{i}")]).unwrap();
        assert_eq!(got, format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes());
    }
}

#[test]
fn publish_reaches_subscribers_on_other_nodes() {
    require_tool!("redis-cli");
    let cluster = shards(3, 0, 5000);
    let (a, b) = (cluster.masters()[0], cluster.masters()[1]);
    let mut sub = cluster.client(b);
    let r = sub.cmd(&["SUBSCRIBE", "news"]).unwrap();
    assert!(String::from_utf8_lossy(&r).contains("subscribe"));
    sub.set_read_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(cluster.client(a).cmd_str(&["PUBLISH", "news", "hello"]), ":0\r\n", "no local subscriber");
    let msg = sub.read_reply().expect("the message crosses the bus");
    assert_eq!(msg, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
}

#[test]
fn bus_port_drops_garbage() {
    require_tool!("redis-cli");
    let cluster = shards(3, 0, 5000);
    let port = cluster.masters()[0];
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port + 10000)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET foo\r\n\x00\x01garbage").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "the connection is closed without a reply");
    assert!(slotway_testkit::cluster::cluster_state_ok(port), "and the node is unharmed");
}

/// A master cut off from every other node (each node on its own loopback
/// address, every bus link through a relay that drops it): the master
/// stops taking writes after node-timeout, before the majority promotes
/// its replica, and after the partition heals it rejoins as a replica.
#[test]
fn partitioned_master_stops_writes_before_its_replica_takes_over() {
    require_tool!("redis-cli");
    use slotway_testkit::cluster::{start_node, Node};
    use slotway_testkit::relay::Relay;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    let bin = slotway_testkit::workspace_bin("slotway-shard");
    let base = 20 + (std::process::id() % 200) as u8;
    let ips: Vec<IpAddr> = (0..6).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, base + i))).collect();
    let mut relays = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    for ip in &ips {
        let port = slotway_testkit::cluster::free_cluster_port();
        let relay = Relay::start(*ip, SocketAddr::new(*ip, port + 10000));
        let (ip_s, port_s, relay_s) = (ip.to_string(), port.to_string(), relay.port.to_string());
        let extra = [
            "--port",
            &port_s,
            "--bind",
            &ip_s,
            "127.0.0.1",
            "--cluster-announce-ip",
            &ip_s,
            "--cluster-announce-bus-port",
            &relay_s,
            "--cluster-node-timeout",
            "2000",
        ];
        let mut node = start_node(&bin, &extra);
        node.port = port;
        nodes.push(node);
        relays.push(relay);
    }
    let cluster = RedisCluster { nodes };
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    for &p in &ports {
        wait_until!(Duration::from_secs(10), RawClient::connect(p).is_ok());
    }
    let addrs: Vec<String> = ips.iter().zip(&ports).map(|(ip, p)| format!("{ip}:{p}")).collect();
    let mut create = vec!["--cluster", "create"];
    create.extend(addrs.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
    let out = cli(&create);
    assert!(out.ok, "create: {}\n{}", out.stdout, out.stderr);
    wait_until!(Duration::from_secs(20), ports.iter().all(|&p| slotway_testkit::cluster::cluster_state_ok(p)));

    let victim = ports[0];
    let victim_id = cluster.node_id(victim);
    let replica = *ports
        .iter()
        .find(|&&p| {
            parse_role(&cluster.cluster_nodes(p), &cluster.node_id(p)).is_some_and(|r| r.contains("slave"))
                && cluster
                    .cluster_nodes(p)
                    .lines()
                    .any(|l| l.contains("myself") && l.split(' ').nth(3) == Some(victim_id.as_str()))
        })
        .expect("the victim's replica");
    let key = (0..)
        .map(|i| format!("p{i}"))
        .find(|k| cluster.slot_owner(victim, key_slot(k.as_bytes())) == Some(victim))
        .unwrap();

    // The partition: nobody reaches the victim, the victim reaches nobody.
    let started = Instant::now();
    for (i, relay) in relays.iter().enumerate() {
        if i == 0 {
            ips[1..].iter().for_each(|ip| relay.cut(*ip));
        } else {
            relay.cut(ips[0]);
        }
    }
    let mut c = cluster.client(victim);
    let mut refused_at = None;
    let mut promoted_at = None;
    let mut last_ack = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(20) && (refused_at.is_none() || promoted_at.is_none()) {
        let r = c.cmd_str(&["SET", &key, "x"]);
        if r == "+OK\r\n" {
            last_ack = started.elapsed();
        } else if refused_at.is_none() {
            assert!(r.starts_with("-CLUSTERDOWN"), "{r}");
            refused_at = Some(started.elapsed());
        }
        if promoted_at.is_none()
            && parse_role(&cluster.cluster_nodes(replica), &cluster.node_id(replica))
                .is_some_and(|r| r.contains("master"))
        {
            promoted_at = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = refused_at.expect("the cut-off master stopped taking writes");
    let promoted = promoted_at.expect("the majority promoted the replica");
    eprintln!("partition: master refused writes after {refused:?} (last ack {last_ack:?}), replica promoted after {promoted:?}");
    assert!(refused < Duration::from_secs(4), "refused only after {refused:?} (node-timeout 2 s)");
    assert!(last_ack < promoted, "no write acknowledged by the old master once the new one existed");

    for r in &relays {
        r.heal();
    }
    wait_until!(
        Duration::from_secs(20),
        cluster.cluster_nodes(victim).lines().any(|l| l.starts_with(&victim_id) && l.contains("myself,slave")),
        "the old master rejoins as a replica"
    );
    wait_until!(
        Duration::from_secs(10),
        cluster.client(victim).cmd_str(&["SET", &key, "y"]).starts_with("-MOVED"),
        "its slots are served elsewhere"
    );
}

/// `redis-cli --cluster backup`: an RDB per master over the inline SYNC,
/// which `redis-check-rdb` accepts, plus `nodes.json`.
#[test]
fn cluster_backup_writes_checkable_rdbs() {
    require_tool!("redis-cli");
    require_tool!("redis-check-rdb");
    let cluster = shards(3, 0, 5000);
    let seed = cluster.masters()[0];
    let f = Follow { seed, budget: Duration::from_secs(10) };
    for i in 0..100 {
        f.call(&["SET", &format!("b:{i}"), "v"]).unwrap();
    }
    let dir = slotway_testkit::scratch_dir("cluster-backup");
    let out = cli(&["--cluster", "backup", &format!("127.0.0.1:{seed}"), &dir.to_string_lossy()]);
    assert!(out.ok, "backup: {}\n{}", out.stdout, out.stderr);
    let rdbs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .collect();
    assert_eq!(rdbs.len(), 3, "one RDB per master: {rdbs:?}");
    assert!(dir.join("nodes.json").exists());
    for rdb in rdbs {
        let check = run_bounded(
            {
                let mut c = Command::new("redis-check-rdb");
                c.arg(&rdb);
                c
            },
            None,
            Duration::from_secs(30),
        );
        assert!(check.ok, "redis-check-rdb {}: {}", rdb.display(), check.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_py_cluster_client_works() {
    require_tool!("redis-cli");
    require_tool!("python3");
    let cluster = shards(3, 1, 5000);
    let port = cluster.masters()[0];
    // Replicas are announced by gossip a ping or two after they attach.
    wait_until!(Duration::from_secs(10), {
        let s = cluster.client(port).call(&["CLUSTER", "SLOTS"]).unwrap();
        s.array().is_some_and(|a| a.iter().all(|r| r.array().is_some_and(|r| r.len() == 4)))
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/shard_cluster.py");
    slotway_testkit::run_redis_py(&[script], port, "redis-py RedisCluster over slotway-shard");
}

#[test]
fn shard_channels_stay_in_their_shard() {
    require_tool!("redis-cli");
    let cluster = shards(3, 1, 5000);
    let seed = cluster.masters()[0];
    wait_until!(Duration::from_secs(10), {
        let s = cluster.client(seed).call(&["CLUSTER", "SLOTS"]).unwrap();
        s.array().is_some_and(|a| a.iter().all(|r| r.array().is_some_and(|r| r.len() == 4)))
    });
    let slot = key_slot(b"news");
    let owner = cluster.slot_owner(seed, slot).unwrap();
    let owner_id = cluster.node_id(owner);
    let replica = *cluster
        .replicas()
        .iter()
        .find(|&&r| {
            cluster
                .cluster_nodes(r)
                .lines()
                .any(|l| l.contains("myself") && l.split(' ').nth(3) == Some(owner_id.as_str()))
        })
        .expect("the owner's replica");
    let other = *cluster.masters().iter().find(|&&m| m != owner).unwrap();
    // A replica takes shard subscriptions for its master's slots, without READONLY.
    let mut sub = cluster.client(replica);
    let r = sub.cmd(&["SSUBSCRIBE", "news"]).unwrap();
    assert!(String::from_utf8_lossy(&r).contains("ssubscribe"), "{}", String::from_utf8_lossy(&r));
    assert!(cluster.client(other).cmd_str(&["SSUBSCRIBE", "news"]).starts_with(&format!("-MOVED {slot} ")));
    sub.set_read_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(cluster.client(owner).cmd_str(&["SPUBLISH", "news", "hi"]), ":0\r\n");
    let msg = sub.read_reply().expect("the shard message reaches the replica");
    assert_eq!(msg, b"*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
}
