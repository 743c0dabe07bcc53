//! slotway-shard as users meet it: started as a process, driven by the real
//! `redis-cli`, by redis-py and by raw sockets.

use std::process::Command;
use std::time::Duration;

use slotway_testkit::{require_tool, run_redis_py, RawClient, Server};

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
    run_redis_py(&[script], shard.port, "redis-py script");
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

#[test]
fn requirepass_with_redis_cli() {
    require_tool!("redis-cli");
    let shard = Server::shard(&["--requirepass", "s3cret"]);
    let port = shard.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli").args(["-p", &port]).args(args).output().expect("run redis-cli");
        // redis-cli reports a failed AUTH on stderr.
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    assert_eq!(cli(&["ping"]).trim_end(), "NOAUTH Authentication required.");
    assert_eq!(cli(&["-a", "s3cret", "--no-auth-warning", "ping"]), "PONG\n");
    assert_eq!(cli(&["--user", "default", "--pass", "s3cret", "--no-auth-warning", "acl", "whoami"]), "default\n");
    assert!(cli(&["-a", "wrong", "--no-auth-warning", "ping"]).contains("WRONGPASS"));
    // redis-cli -3 sends HELLO 3 AUTH default <pw>.
    let hello = cli(&["-3", "-a", "s3cret", "--no-auth-warning", "hello"]);
    assert!(hello.contains("proto 3\n"), "{hello}");
}

#[test]
fn hello_3_with_redis_py() {
    require_tool!("python3");
    let shard = Server::shard(&[]);
    let script = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=3, decode_responses=True)
assert r.ping()
assert r.set("k", "v") and r.get("k") == "v"
assert r.get("missing") is None
info = r.execute_command("HELLO", "3")
assert info["proto"] == 3 and info["version"] == "7.0.15", info
assert r.client_setname("py") and r.client_getname() == "py"
assert r.connection_pool.get_connection("x").protocol in (3, "3")
print("ok")
"#;
    run_redis_py(&["-c", script], shard.port, "redis-py RESP3");
}

#[test]
fn hello_3_raw_map_reply() {
    let shard = Server::shard(&[]);
    let mut c = shard.client();
    let r = c.cmd_str(&["HELLO", "3"]);
    assert!(
        r.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"),
        "{r}"
    );
    assert_eq!(c.cmd_str(&["GET", "nokey"]), "_\r\n");
    assert!(c.cmd_str(&["CLIENT", "INFO"]).contains(" resp=3\n"));
}

fn client_id(c: &mut RawClient) -> u64 {
    c.cmd_str(&["CLIENT", "ID"]).trim_start_matches(':').trim_end().parse().expect("id")
}

#[test]
fn client_kill_closes_another_connection() {
    let shard = Server::shard(&[]);
    let mut victim = shard.client();
    let mut killer = shard.client();
    assert_eq!(victim.cmd_str(&["CLIENT", "SETNAME", "victim"]), "+OK\r\n");
    let id = client_id(&mut victim);
    let list = killer.cmd_str(&["CLIENT", "LIST"]);
    assert!(list.contains(&format!("id={id} ")) && list.contains("name=victim"), "{list}");
    assert_eq!(killer.cmd_str(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1\r\n");
    assert!(victim.read_to_close().is_empty());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!killer.cmd_str(&["CLIENT", "LIST"]).contains("name=victim"));
    // The old form, by address.
    let mut second = shard.client();
    let line = second.cmd_str(&["CLIENT", "INFO"]);
    let addr = line.split(' ').find_map(|kv| kv.strip_prefix("addr=")).expect("addr").to_string();
    assert_eq!(killer.cmd_str(&["CLIENT", "KILL", &addr]), "+OK\r\n");
    assert!(second.read_to_close().is_empty());
}

#[test]
fn client_pause_delays_other_connections() {
    let shard = Server::shard(&[]);
    let mut admin = shard.client();
    let mut other = shard.client();
    assert_eq!(admin.cmd_str(&["CLIENT", "PAUSE", "400", "WRITE"]), "+OK\r\n");
    let t = std::time::Instant::now();
    assert_eq!(other.cmd_str(&["GET", "k"]), "$-1\r\n");
    assert!(t.elapsed() < Duration::from_millis(300), "reads run during a WRITE pause");
    assert_eq!(other.cmd_str(&["SET", "k", "v"]), "+OK\r\n");
    assert!(t.elapsed() >= Duration::from_millis(350), "write ran after {:?}", t.elapsed());
    // ALL holds every command, reads too.
    assert_eq!(admin.cmd_str(&["CLIENT", "PAUSE", "300", "ALL"]), "+OK\r\n");
    let t = std::time::Instant::now();
    assert_eq!(other.cmd_str(&["PING"]), "+PONG\r\n");
    assert!(t.elapsed() >= Duration::from_millis(250), "PING ran after {:?}", t.elapsed());
    // UNPAUSE (not a write) releases a held writer at once.
    assert_eq!(admin.cmd_str(&["CLIENT", "PAUSE", "10000", "WRITE"]), "+OK\r\n");
    let t = std::time::Instant::now();
    other.send(&["SET", "k", "w"]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.cmd_str(&["CLIENT", "UNPAUSE"]), "+OK\r\n");
    assert_eq!(other.read_reply().unwrap(), b"+OK\r\n");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// Needs BLPOP from the list family.
#[test]
fn client_unblock_wakes_blocked_client() {
    let shard = Server::shard(&[]);
    let mut blocked = shard.client();
    let id = client_id(&mut blocked);
    blocked.send(&["BLPOP", "q", "0"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut admin = shard.client();
    assert!(admin.cmd_str(&["CLIENT", "LIST", "ID", &id.to_string()]).contains(" flags=b "));
    assert_eq!(admin.cmd_str(&["CLIENT", "UNBLOCK", &id.to_string()]), ":1\r\n");
    assert_eq!(blocked.read_reply().unwrap(), b"*-1\r\n");
    blocked.send(&["BLPOP", "q", "0"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(admin.cmd_str(&["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]), ":1\r\n");
    assert_eq!(blocked.read_reply().unwrap(), b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(admin.cmd_str(&["CLIENT", "UNBLOCK", &id.to_string()]), ":0\r\n");
}

#[test]
fn monitor_streams_commands() {
    let shard = Server::shard(&[]);
    let mut mon = shard.client();
    assert_eq!(mon.cmd_str(&["MONITOR"]), "+OK\r\n");
    let mut c = shard.client();
    c.cmd(&["SET", "k", "a \"b\""]).unwrap();
    c.cmd(&["AUTH", "default", "pw"]).unwrap();
    c.cmd(&["CLIENT", "LIST"]).unwrap();
    c.cmd(&["SELECT", "2"]).unwrap();
    let lines: Vec<String> = (0..3).map(|_| String::from_utf8_lossy(&mon.read_reply().unwrap()).into_owned()).collect();
    assert!(lines[0].starts_with('+') && lines[0].contains(" [0 127.0.0.1:"), "{}", lines[0]);
    assert!(lines[0].ends_with("] \"SET\" \"k\" \"a \\\"b\\\"\"\r\n"), "{}", lines[0]);
    assert!(lines[1].ends_with("\"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"), "{}", lines[1]);
    // CLIENT LIST is an admin command, never shown; SELECT shows the new db.
    assert!(lines[2].contains(" [2 127.0.0.1:") && lines[2].ends_with("\"SELECT\" \"2\"\r\n"), "{}", lines[2]);
}

#[test]
fn shutdown_stops_the_server() {
    let mut shard = Server::shard(&[]);
    let mut c = shard.client();
    c.send(&["SHUTDOWN", "NOSAVE"]).unwrap();
    assert!(c.read_to_close().is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while shard.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "server still running after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_reply_off_and_skip_over_a_socket() {
    let shard = Server::shard(&[]);
    let mut c = shard.client();
    c.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
    c.send(&["PING"]).unwrap();
    c.send(&["ECHO", "hidden"]).unwrap();
    c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
    c.send(&["CLIENT", "REPLY", "ON"]).unwrap();
    assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
    c.send(&["ECHO", "skipped"]).unwrap();
    assert_eq!(c.cmd_str(&["ECHO", "shown"]), "$5\r\nshown\r\n");
    // Another connection sees what this one ran last, and its db.
    assert_eq!(c.cmd_str(&["SELECT", "3"]), "+OK\r\n");
    let mut other = shard.client();
    let id = client_id(&mut c);
    let line = other.cmd_str(&["CLIENT", "LIST", "ID", &id.to_string()]);
    assert!(line.contains(" db=3 ") && line.contains(" cmd=client|id "), "{line}");
}
