//! Splitting an inline request line into arguments with the quoting rules
//! of Redis's `sdssplitargs`: `"..."` with C-like escapes (`\n`, `\xHH`...),
//! `'...'` with only `\'`, and a closing quote that must be followed by a
//! space or the end of the line.

use bytes::Bytes;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `None` when quotes are unbalanced.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut dq, mut sq) = (false, false);
        loop {
            let c = line.get(i).copied();
            if dq {
                match c? {
                    b'\\' if i + 3 < line.len() && line[i + 1] == b'x' => match (hex(line[i + 2]), hex(line[i + 3])) {
                        (Some(h), Some(l)) => {
                            cur.push(h * 16 + l);
                            i += 3;
                        }
                        _ => cur.push(b'\\'),
                    },
                    b'\\' if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    b'"' => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return None;
                        }
                        dq = false;
                        i += 1;
                        break;
                    }
                    other => cur.push(other),
                }
            } else if sq {
                match c? {
                    b'\\' if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    b'\'' => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return None;
                        }
                        sq = false;
                        i += 1;
                        break;
                    }
                    other => cur.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if is_space(b) => break,
                    Some(b'"') => dq = true,
                    Some(b'\'') => sq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        debug_assert!(!dq && !sq);
        args.push(Bytes::from(cur));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(split("set a b").unwrap(), ["set", "a", "b"]);
        assert_eq!(split("  set   \"a b\"  'c d' ").unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split(r#"set k "\x41\n\"q\"""#).unwrap(), ["set", "k", "A\n\"q\""]);
        assert_eq!(split(r"set k 'it\'s'").unwrap(), ["set", "k", "it's"]);
        assert_eq!(split(r#"set k "\xZZ""#).unwrap(), ["set", "k", "\\xZZ"]);
        assert_eq!(split("a\"b c\"").unwrap(), ["ab c"]);
        assert_eq!(split("\"\"").unwrap(), [""]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("set \"a").is_none());
        assert!(split("set \"a\"b").is_none());
        assert!(split("set 'a").is_none());
        assert!(split("set 'a'b").is_none());
    }
}
