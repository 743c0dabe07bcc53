//! OBJECT ENCODING / IDLETIME / REFCOUNT / FREQ / HELP.

use bytes::Bytes;

use crate::command::{help, is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::Value;

const HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// Redis shares one object for small integers and reports this refcount
/// for it.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Integers below this are shared objects in Redis.
const SHARED_INTEGERS: i64 = 10000;

pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        help(ctx, "OBJECT", HELP);
        return Ok(());
    }
    let now = ctx.now;
    let lfu = ctx.config.maxmemory_policy.contains("lfu");
    let (db, out) = ctx.split();
    let access = db.access;
    // Looking at a key must not count as an access to it.
    let Some(entry) = db.get_notouch(&args[2], now) else {
        out.null();
        return Ok(());
    };
    if is(sub, "encoding") {
        out.bulk(entry.value.encoding().as_bytes());
    } else if is(sub, "idletime") {
        if lfu {
            return Err(CmdError::err(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        out.int(i64::try_from(entry.idle_secs()).unwrap_or(i64::MAX));
    } else if is(sub, "refcount") {
        out.int(refcount(&entry.value));
    } else if is(sub, "freq") {
        if lfu {
            out.int(entry.lfu_counter(access) as i64);
            return Ok(());
        }
        return Err(CmdError::err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    } else {
        return Err(CmdError::UnknownSubcommand(String::from_utf8_lossy(sub).into_owned(), "OBJECT".into()));
    }
    Ok(())
}

fn refcount(v: &Value) -> i64 {
    match v {
        Value::Str(s) if v.encoding() == "int" => match slotway_resp::request::parse_int(s) {
            Some(n) if (0..SHARED_INTEGERS).contains(&n) => SHARED_REFCOUNT,
            _ => 1,
        },
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn object_subcommands() {
        let mut t = TestServer::new();
        t.cmd("SET small 12");
        t.cmd("SET big 123456");
        t.cmd("SET s hello");
        assert_eq!(t.cmd("OBJECT ENCODING small"), "$3\r\nint\r\n");
        assert_eq!(t.cmd("OBJECT ENCODING s"), "$6\r\nembstr\r\n");
        assert_eq!(t.cmd("OBJECT REFCOUNT small"), ":2147483647\r\n");
        assert_eq!(t.cmd("OBJECT REFCOUNT big"), ":1\r\n");
        assert_eq!(t.cmd("OBJECT IDLETIME s"), ":0\r\n");
        assert_eq!(t.cmd("OBJECT ENCODING nokey"), "$-1\r\n");
        assert_eq!(t.cmd("OBJECT FREQ nokey"), "$-1\r\n");
        assert!(t.cmd("OBJECT FREQ s").starts_with("-ERR An LFU maxmemory policy is not selected"));
        assert!(t.cmd("OBJECT HELP").starts_with("*15\r\n+OBJECT <subcommand>"));
    }

    #[test]
    fn idletime_counts_from_last_access() {
        let mut t = TestServer::new();
        t.cmd("SET s v");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while t.cmd("OBJECT IDLETIME s") == ":0\r\n" {
            assert!(std::time::Instant::now() < deadline, "idle time never grew");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Neither OBJECT nor the NOTOUCH lookups reset it; a read does.
        for cmd in ["OBJECT ENCODING s", "TYPE s", "EXISTS s", "TTL s", "PTTL s", "EXPIRETIME s"] {
            t.cmd(cmd);
            assert_ne!(t.cmd("OBJECT IDLETIME s"), ":0\r\n", "{cmd} touched the key");
        }
        t.cmd("GET s");
        assert_eq!(t.cmd("OBJECT IDLETIME s"), ":0\r\n");
        t.cmd("SET t v");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while t.cmd("OBJECT IDLETIME t") == ":0\r\n" {
            assert!(std::time::Instant::now() < deadline, "idle time never grew");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        t.cmd("TOUCH t");
        assert_eq!(t.cmd("OBJECT IDLETIME t"), ":0\r\n");
    }

    #[test]
    fn resp3_nulls() {
        let mut t = TestServer::new();
        t.client.proto = slotway_resp::Proto::Resp3;
        assert_eq!(t.cmd("OBJECT ENCODING nokey"), "_\r\n");
        assert_eq!(t.cmd("RANDOMKEY"), "_\r\n");
        t.cmd("SET a 1");
        assert_eq!(t.cmd("SORT nokey BY nosort"), "*0\r\n");
        let v = crate::store::Value::List([b"1"[..].into()].into_iter().collect());
        t.shared.store.lock().dbs[0].insert(b"l", crate::store::Entry::new(v));
        assert_eq!(t.cmd("SORT l GET nokey_* GET #"), "*2\r\n_\r\n$1\r\n1\r\n");
    }
}
