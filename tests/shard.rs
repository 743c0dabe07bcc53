//! slotway-shard as users meet it: started as a process, driven by the real
//! `redis-cli`, by redis-py and by raw sockets.

use std::process::Command;
use std::time::Duration;

use slotway_testkit::{require_tool, RawClient, Server};

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_round_trip() {
    require_tool!("redis-cli");
    let shard = Server::shard(&[]);
    assert_eq!(redis_cli(shard.port, &["ping"]), "PONG\n");
    assert_eq!(redis_cli(shard.port, &["set", "hello", "world"]), "OK\n");
    assert_eq!(redis_cli(shard.port, &["get", "hello"]), "world\n");
    assert_eq!(redis_cli(shard.port, &["rpush", "l", "a", "b"]), "2\n");
    assert_eq!(redis_cli(shard.port, &["lrange", "l", "0", "-1"]), "a\nb\n");
    assert!(redis_cli(shard.port, &["nosuch"]).starts_with("ERR unknown command 'nosuch'"));
    // redis-cli reads commands from stdin when none are given.
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(shard.port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"set k \"two words\"\nget k\nincr n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\ntwo words\n1\n");
}

#[test]
fn redis_py_client() {
    require_tool!("python3");
    let shard = Server::shard(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/shard_client.py");
    let out = Command::new("python3").arg(script).arg(shard.port.to_string()).output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'redis'") && std::env::var_os("CI").is_none() {
        eprintln!("skipping: the python redis package is not installed");
        return;
    }
    assert!(out.status.success(), "redis-py script failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), stderr);
}

#[test]
fn inline_commands_like_telnet() {
    let shard = Server::shard(&[]);
    let mut c = shard.client();
    c.send_raw(b"PING\r\nset a \"b c\"\r\nget a\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
    assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    assert_eq!(c.read_reply().unwrap(), b"$3\r\nb c\r\n");
}

#[test]
fn pipelining_keeps_order() {
    let shard = Server::shard(&[]);
    let mut c = shard.client();
    for i in 0..10_000 {
        c.send(&["SET", &format!("k{i}"), &i.to_string()]).unwrap();
    }
    for _ in 0..10_000 {
        assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    }
    for i in (0..10_000).step_by(997) {
        assert_eq!(c.cmd_str(&["GET", &format!("k{i}")]), format!("${}\r\n{}\r\n", i.to_string().len(), i));
    }
}

#[test]
fn watch_aborts_on_touched_key() {
    let shard = Server::shard(&[]);
    let mut a = shard.client();
    let mut b = shard.client();
    assert_eq!(a.cmd_str(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(b.cmd_str(&["SET", "k", "other"]), "+OK\r\n");
    assert_eq!(a.cmd_str(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd_str(&["SET", "k", "mine"]), "+QUEUED\r\n");
    assert_eq!(a.cmd_str(&["EXEC"]), "*-1\r\n");
    assert_eq!(a.cmd_str(&["GET", "k"]), "$5\r\nother\r\n");
}

#[test]
fn blocked_clients_are_served_in_arrival_order() {
    let shard = Server::shard(&[]);
    let mut first = shard.client();
    let mut second = shard.client();
    first.send(&["BLPOP", "q", "5"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    second.send(&["BLPOP", "q", "5"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut producer = shard.client();
    assert_eq!(producer.cmd_str(&["RPUSH", "q", "one", "two"]), ":2\r\n");
    assert_eq!(first.read_reply().unwrap(), b"*2\r\n$1\r\nq\r\n$3\r\none\r\n");
    assert_eq!(second.read_reply().unwrap(), b"*2\r\n$1\r\nq\r\n$3\r\ntwo\r\n");
    let mut waiter = shard.client();
    assert_eq!(waiter.cmd_str(&["BLPOP", "q", "0.2"]), "*-1\r\n");
}

#[test]
fn pubsub_delivers_to_subscribers() {
    let shard = Server::shard(&[]);
    let mut sub = shard.client();
    assert_eq!(sub.cmd_str(&["SUBSCRIBE", "news"]), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    let mut psub = shard.client();
    assert_eq!(psub.cmd_str(&["PSUBSCRIBE", "n*"]), "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n");
    let mut publisher = shard.client();
    assert_eq!(publisher.cmd_str(&["PUBLISH", "news", "hi"]), ":2\r\n");
    assert_eq!(sub.read_reply().unwrap(), b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_eq!(psub.read_reply().unwrap(), b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert!(sub.cmd_str(&["GET", "x"]).starts_with("-ERR Can't execute 'get'"));
}

#[test]
fn expired_keys_are_reclaimed_without_reads() {
    let shard = Server::shard(&[]);
    let mut c = shard.client();
    for i in 0..500 {
        c.send(&["SET", &format!("t{i}"), "v", "PX", "50"]).unwrap();
    }
    for _ in 0..500 {
        c.read_reply().unwrap();
    }
    c.cmd(&["SET", "keep", "v"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // DBSIZE counts keys without touching them, so only the active
        // cycle can bring it down.
        if c.cmd_str(&["DBSIZE"]) == ":1\r\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "expired keys were not reclaimed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn auth_required() {
    let shard = Server::shard(&["--requirepass", "secret"]);
    let mut c = RawClient::connect(shard.port).unwrap();
    assert_eq!(c.cmd_str(&["GET", "a"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd_str(&["AUTH", "wrong"]), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd_str(&["AUTH", "secret"]), "+OK\r\n");
    assert_eq!(c.cmd_str(&["GET", "a"]), "$-1\r\n");
}
