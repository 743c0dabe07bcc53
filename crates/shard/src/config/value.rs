//! Typed directive values: parsing with Redis's validation messages, and
//! the two renderings (CONFIG GET, and redis.conf syntax for REWRITE).

use super::directives::Kind;

/// `client-output-buffer-limit` classes, in Redis's order.
pub const COBL_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i128),
    /// `maxmemory-clients` given as a percentage.
    Pct(i128),
    Enum(&'static str),
    Str(String),
    List(Vec<String>),
    Save(Vec<(i64, i64)>),
    /// (hard bytes, soft bytes, soft seconds) per class.
    Cobl([(u64, u64, u64); 3]),
}

/// Redis's `memtoll`: digits with an optional unit, in bytes.
pub fn parse_mem(s: &str) -> Option<i128> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mul: i128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    parse_int(num)?.checked_mul(mul)
}

/// `string2ll`-strict: optional minus, digits, nothing else.
pub fn parse_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 39 {
        return None;
    }
    s.parse().ok()
}

/// The bytes in redis.conf style: the largest unit that divides exactly.
pub fn human_mem(v: u128) -> String {
    const G: u128 = 1024 * 1024 * 1024;
    match v {
        0 => "0".into(),
        v if v % G == 0 => format!("{}gb", v / G),
        v if v % (1024 * 1024) == 0 => format!("{}mb", v / (1024 * 1024)),
        v if v % 1024 == 0 => format!("{}kb", v / 1024),
        v => v.to_string(),
    }
}

/// `sdscatrepr`: a double-quoted string with C escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn bounds(v: i128, min: i128, max: i128) -> Result<i128, String> {
    if v < min || v > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(v)
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [v] => Ok(v),
        _ => Err("wrong number of arguments".into()),
    }
}

/// Keyspace event classes in the order Redis prints them; `A` is all of
/// them but `m` and `n`.
const NOTIFY_CLASSES: &[u8] = b"g$lshzxetd";

fn parse_notify(s: &str) -> Result<String, String> {
    let mut set = [false; 256];
    for b in s.bytes() {
        match b {
            b'A' => NOTIFY_CLASSES.iter().for_each(|&c| set[c as usize] = true),
            b'g' | b'$' | b'l' | b's' | b'h' | b'z' | b'x' | b'e' | b'K' | b'E' | b't' | b'm' | b'd' | b'n' => {
                set[b as usize] = true
            }
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        }
    }
    let mut out = String::new();
    if NOTIFY_CLASSES.iter().all(|&c| set[c as usize]) {
        out.push('A');
    } else {
        out.extend(NOTIFY_CLASSES.iter().filter(|&&c| set[c as usize]).map(|&c| c as char));
    }
    out.extend(b"KEmn".iter().filter(|&&c| set[c as usize]).map(|&c| c as char));
    Ok(out)
}

/// Parses the words after a directive name. `prev` is the current value,
/// which `client-output-buffer-limit` updates class by class.
pub fn parse(kind: Kind, name: &str, args: &[String], prev: &Val) -> Result<Val, String> {
    Ok(match kind {
        Kind::Bool => match one(args)?.to_ascii_lowercase().as_str() {
            "yes" => Val::Bool(true),
            "no" => Val::Bool(false),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            // string2ll: anything outside a signed 64-bit integer is junk.
            let v = parse_int(one(args)?)
                .filter(|v| i64::try_from(*v).is_ok())
                .ok_or("argument couldn't be parsed into an integer")?;
            let v = bounds(v, min, max)?;
            // Redis clamps hz instead of refusing it.
            Val::Int(if name == "hz" { v.min(500) } else { v })
        }
        Kind::Mem { min, max } => {
            let v = parse_mem(one(args)?).filter(|&v| v >= 0).ok_or("argument must be a memory value")?;
            Val::Int(bounds(v, min, max)?)
        }
        Kind::MemPct => {
            let s = one(args)?;
            let err = || "argument must be a memory or percent value".to_string();
            match s.strip_suffix('%') {
                Some(p) => Val::Pct(parse_int(p).filter(|&v| v >= 0).ok_or_else(err)?),
                None => Val::Int(parse_mem(s).filter(|&v| v >= 0).ok_or_else(err)?),
            }
        }
        Kind::Octal => {
            let s = one(args)?;
            let v = i128::from_str_radix(s, 8)
                .ok()
                .filter(|v| (0..=0o777).contains(v) && !s.starts_with(['-', '+']))
                .ok_or("argument couldn't be parsed as an octal number")?;
            Val::Int(v)
        }
        Kind::Enum(names) => {
            let s = one(args)?;
            match names.iter().find(|n| n.eq_ignore_ascii_case(s)) {
                Some(n) => Val::Enum(n),
                None => return Err(format!("argument(s) must be one of the following: {}", names.join(", "))),
            }
        }
        Kind::Str => {
            let v = one(args)?;
            if v.contains('/') {
                match name {
                    "dbfilename" | "appendfilename" => return Err(format!("{name} can't be a path, just a filename")),
                    "appenddirname" => return Err("appenddirname can't be a path, just a dirname".into()),
                    _ => {}
                }
            }
            Val::Str(v.to_string())
        }
        Kind::Save => {
            if args.len() == 1 && args[0].is_empty() {
                return Ok(Val::Save(Vec::new()));
            }
            if args.is_empty() || !args.len().is_multiple_of(2) {
                return Err("Invalid save parameters".into());
            }
            let mut rules = Vec::with_capacity(args.len() / 2);
            for pair in args.chunks(2) {
                let n = |s: &str| s.parse::<i64>().ok().filter(|&v| v >= 0);
                match (n(&pair[0]), n(&pair[1])) {
                    (Some(secs), Some(changes)) => rules.push((secs, changes)),
                    _ => return Err("Invalid save parameters".into()),
                }
            }
            Val::Save(rules)
        }
        Kind::Bind => {
            if args.is_empty() || args.len() > 16 {
                return Err(if args.is_empty() {
                    "wrong number of arguments"
                } else {
                    "Too many bind addresses specified."
                }
                .into());
            }
            Val::List(args.to_vec())
        }
        Kind::Cobl => {
            if args.is_empty() || !args.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut limits = match prev {
                Val::Cobl(l) => *l,
                _ => [(0, 0, 0); 3],
            };
            for group in args.chunks(4) {
                let class = match group[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
                };
                let mem = |s: &str| parse_mem(s).and_then(|v| u64::try_from(v).ok());
                let secs = parse_int(&group[3]).and_then(|v| u64::try_from(v).ok());
                match (mem(&group[1]), mem(&group[2]), secs) {
                    (Some(h), Some(s), Some(t)) => limits[class] = (h, s, t),
                    _ => {
                        return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into())
                    }
                }
            }
            Val::Cobl(limits)
        }
        Kind::Notify => Val::Str(parse_notify(one(args)?)?),
        Kind::Percentiles => {
            let mut out = Vec::with_capacity(args.len());
            for a in args.iter().filter(|a| !a.is_empty()) {
                let v: f64 = a.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&v) {
                    return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
                }
                out.push(format!("{v}"));
            }
            Val::List(out)
        }
        Kind::OomValues => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::with_capacity(3);
            for a in args {
                let v = parse_int(a)
                    .filter(|v| (-2000..=2000).contains(v))
                    .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
                out.push(v.to_string());
            }
            Val::List(out)
        }
        Kind::Replicaof => match args {
            [a, b] if a.eq_ignore_ascii_case("no") && b.eq_ignore_ascii_case("one") => Val::List(Vec::new()),
            [host, port] => {
                parse_int(port).filter(|p| (0..=65535).contains(p)).ok_or("Invalid master port")?;
                Val::List(vec![host.clone(), port.clone()])
            }
            [empty] if empty.is_empty() => Val::List(Vec::new()),
            _ => return Err("wrong number of arguments".into()),
        },
    })
}

/// CONFIG SET gives multi-word values as one string.
pub fn split_set_value(kind: Kind, value: &str) -> Vec<String> {
    match kind {
        Kind::Save | Kind::Bind | Kind::Cobl | Kind::Percentiles | Kind::OomValues | Kind::Replicaof => {
            let words: Vec<String> = value.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
            if words.is_empty() {
                vec![String::new()]
            } else {
                words
            }
        }
        _ => vec![value.to_string()],
    }
}

/// The value as CONFIG GET shows it.
pub fn show(v: &Val) -> String {
    match v {
        Val::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Val::Int(i) => i.to_string(),
        Val::Pct(p) => format!("{p}%"),
        Val::Enum(e) => (*e).into(),
        Val::Str(s) => s.clone(),
        Val::List(l) => l.join(" "),
        Val::Save(rules) => rules.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" "),
        Val::Cobl(l) => {
            COBL_CLASSES.iter().zip(l).map(|(c, (h, s, t))| format!("{c} {h} {s} {t}")).collect::<Vec<_>>().join(" ")
        }
    }
}

/// The value as redis.conf lines (without the name) for CONFIG REWRITE;
/// `defaults` decides which `client-output-buffer-limit` classes to write.
pub fn conf_lines(kind: Kind, v: &Val, default: &Val) -> Vec<String> {
    match (kind, v) {
        (Kind::Mem { .. }, Val::Int(i)) | (Kind::MemPct, Val::Int(i)) => vec![human_mem((*i).max(0) as u128)],
        (Kind::Octal, Val::Int(i)) => vec![format!("{i:o}")],
        (Kind::Str | Kind::Notify, Val::Str(s)) => vec![quote(s)],
        (Kind::Save, Val::Save(r)) if r.is_empty() => vec!["\"\"".into()],
        (Kind::Replicaof, Val::List(l)) if l.is_empty() => Vec::new(),
        (Kind::Cobl, Val::Cobl(l)) => {
            let def = match default {
                Val::Cobl(d) => *d,
                _ => [(0, 0, 0); 3],
            };
            let names = ["normal", "replica", "pubsub"];
            (0..3)
                .filter(|&i| l[i] != def[i])
                .map(|i| {
                    let (h, s, t) = l[i];
                    format!("{} {} {} {t}", names[i], human_mem(h as u128), human_mem(s as u128))
                })
                .collect()
        }
        _ => vec![show(v)],
    }
}
