//! Parsing, validation and rewriting of redis.conf text.

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    let mut c = Config::default();
    c.apply_str(text).map(|_| c)
}

#[test]
fn defaults_match_redis() {
    let c = Config::default();
    assert_eq!(c.port, 6379);
    assert_eq!(c.bind, vec!["*", "-::*"]);
    assert_eq!(c.pubsub_limit, (32 << 20, 8 << 20, 60));
    assert_eq!(c.string("save"), "3600 1 300 100 60 10000");
    assert_eq!(
        c.string("client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(c.proto_max_bulk_len, 512 << 20);
    assert_eq!(c.loglevel, "notice");
    assert!(!c.cluster_enabled);
}

#[test]
fn typed_values() {
    let c = load("port 7000\nmaxmemory 100mb\ncluster-enabled yes\ncluster-node-timeout 15000\nhz 1000\nbind 127.0.0.1 ::1\nslave-read-only no\nnotify-keyspace-events KEA\nmaxmemory-policy ALLKEYS-LRU\n").unwrap();
    assert_eq!(c.port, 7000);
    assert_eq!(c.maxmemory, 100 << 20);
    assert!(c.cluster_enabled);
    assert_eq!(c.cluster_node_timeout, 15000);
    assert_eq!(c.hz, 500);
    assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
    assert!(!c.flag("replica-read-only"));
    assert_eq!(c.notify_keyspace_events, "AKE");
    assert_eq!(c.maxmemory_policy, "allkeys-lru");
}

#[test]
fn save_lines_accumulate_and_reset() {
    assert_eq!(load("save 900 1\nsave 300 10\n").unwrap().save, vec![(900, 1), (300, 10)]);
    assert_eq!(load("save \"\"\n").unwrap().save, vec![]);
    assert_eq!(load("save 900 1 300 10\nsave \"\"\n").unwrap().save, vec![]);
}

#[test]
fn bad_lines_are_refused_like_redis() {
    let cases = [
        ("# c\nport 1\n\nprotected-mode maybe\n", 4, "argument must be 'yes' or 'no'"),
        ("foo bar", 1, "Bad directive or wrong number of arguments"),
        ("port", 1, "wrong number of arguments"),
        ("port abc", 1, "argument couldn't be parsed into an integer"),
        ("port 70000", 1, "argument must be between 0 and 65535 inclusive"),
        ("maxmemory x", 1, "argument must be a memory value"),
        ("save 900", 1, "Invalid save parameters"),
        ("port \"abc", 1, "Unbalanced quotes in configuration line"),
        ("appendfsync foo", 1, "argument(s) must be one of the following: everysec, always, no"),
        ("client-output-buffer-limit foo 1 2 3", 1, "Invalid client class specified in buffer limit configuration."),
    ];
    for (text, line, reason) in cases {
        let e = load(text).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (line, reason), "{text}");
    }
    let e = load("port abc").unwrap_err();
    assert_eq!(
        e.to_string(),
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file (string), at line 1\n>>> 'port abc'\nargument couldn't be parsed into an integer"
    );
}

#[test]
fn command_line_continues_the_line_numbers() {
    let args: Vec<String> = ["--port", "17099", "--hz", "5", "--protected-mode", "maybe"].map(String::from).into();
    match Config::from_args(&args) {
        Err(LoadError::Line(e)) => {
            assert_eq!(e.line, 4);
            assert_eq!(e.text, "protected-mode \"maybe\"");
        }
        other => panic!("{other:?}"),
    }
    let ok: Vec<String> = ["--port", "7001", "--save", "", "--bind", "127.0.0.1", "::1"].map(String::from).into();
    let c = Config::from_args(&ok).unwrap();
    assert_eq!((c.port, c.save.len(), c.bind.len()), (7001, 0, 2));
}

#[test]
fn set_value_validates() {
    let mut c = Config::default();
    let i = find(b"maxmemory").unwrap();
    assert_eq!(c.set_value(i, "abc").unwrap_err(), "argument must be a memory value");
    c.set_value(i, "1gb").unwrap();
    c.refresh();
    assert_eq!(c.maxmemory, 1 << 30);
    let i = find(b"client-output-buffer-limit").unwrap();
    c.set_value(i, "normal 1mb 2mb 3").unwrap();
    c.refresh();
    assert_eq!(c.normal_limit, (1 << 20, 2 << 20, 3));
    assert_eq!(c.pubsub_limit, (32 << 20, 8 << 20, 60));
    let i = find(b"bind").unwrap();
    assert_eq!(c.set_value(i, "1.2.3.4.5").unwrap_err(), "Failed to bind to specified addresses.");
}

#[test]
fn rewrite_keeps_comments_and_order() {
    let old = "# My tutorial conf\nport 17006\n\n# persistence\ndbfilename dump7.rdb\nsave 900 1\nsave 300 10\nmaxmemory 100mb\nhash-max-ziplist-entries 256\nclient-output-buffer-limit pubsub 32mb 8mb 60\nrename-command FLUSHALL \"\"\n# end\n";
    let mut c = load(old).unwrap();
    for (k, v) in [("maxmemory", "200mb"), ("save", ""), ("hash-max-listpack-entries", "100"), ("timeout", "5")] {
        c.set_value(find(k.as_bytes()).unwrap(), v).unwrap();
    }
    c.set_value(find(b"client-output-buffer-limit").unwrap(), "normal 1mb 2mb 3 replica 10 20 30").unwrap();
    c.refresh();
    let new = rewrite::rewrite_text(&c, old);
    let lines: Vec<&str> = new.lines().collect();
    assert_eq!(
        &lines[..12],
        &[
            "# My tutorial conf",
            "port 17006",
            "",
            "# persistence",
            "dbfilename \"dump7.rdb\"",
            "save \"\"",
            "",
            "maxmemory 200mb",
            "hash-max-listpack-entries 100",
            "client-output-buffer-limit normal 1mb 2mb 3",
            "rename-command FLUSHALL \"\"",
            "# end",
        ]
    );
    assert_eq!(lines[12], "");
    assert_eq!(lines[13], "# Generated by CONFIG REWRITE");
    assert!(lines.contains(&"timeout 5"));
    assert!(lines.contains(&"client-output-buffer-limit replica 10 20 30"));
    assert!(lines.iter().any(|l| l.starts_with("dir \"")));
    // A second rewrite is stable and keeps a single marker.
    let again = rewrite::rewrite_text(&load(&new).unwrap(), &new);
    assert_eq!(again.matches("# Generated by CONFIG REWRITE").count(), 1);
}

#[test]
fn include_and_rename_command() {
    let dir = std::env::temp_dir().join(format!("slotway-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inc = dir.join("common.conf");
    std::fs::write(&inc, "maxmemory 1gb\ntimeout 30\n").unwrap();
    let c = load(&format!("include {}\ntimeout 5\nrename-command FLUSHALL \"\"\n", inc.display())).unwrap();
    assert_eq!((c.maxmemory, c.timeout), (1 << 30, 5));
    assert_eq!(c.renames, vec![("FLUSHALL".to_string(), String::new())]);
    // An error inside the included file is reported at its own line.
    std::fs::write(&inc, "# x\nhz abc\n").unwrap();
    let e = load(&format!("include {}\n", inc.display())).unwrap_err();
    assert_eq!((e.line, e.text.as_str()), (2, "hz abc"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memory_units_and_rendering() {
    use value::{human_mem, parse_mem};
    assert_eq!(parse_mem("1k"), Some(1000));
    assert_eq!(parse_mem("1KB"), Some(1024));
    assert_eq!(parse_mem("2mb"), Some(2 << 20));
    assert_eq!(parse_mem("3G"), Some(3_000_000_000));
    assert_eq!(parse_mem("1.5mb"), None);
    assert_eq!(parse_mem("mb"), None);
    assert_eq!(human_mem(100 << 20), "100mb");
    assert_eq!(human_mem(1 << 30), "1gb");
    assert_eq!(human_mem(1000), "1000");
    assert_eq!(value::quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
}
