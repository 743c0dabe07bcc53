//! Glob-style pattern matching with Redis's rules (`stringmatchlen`).

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

pub fn matches(p: &[u8], s: &[u8], nocase: bool) -> bool {
    // Recursion depth is bounded by the number of `*` in the pattern, which
    // is bounded by the request size; consecutive stars are collapsed first.
    let (mut pi, mut si) = (0, 0);
    while pi < p.len() {
        match p[pi] {
            b'*' => {
                while pi + 1 < p.len() && p[pi + 1] == b'*' {
                    pi += 1;
                }
                if pi + 1 == p.len() {
                    return true;
                }
                return (si..=s.len()).any(|start| matches(&p[pi + 1..], &s[start..], nocase));
            }
            b'?' => {
                if si >= s.len() {
                    return false;
                }
                si += 1;
            }
            b'[' => {
                if si >= s.len() {
                    return false;
                }
                pi += 1;
                let not = p.get(pi) == Some(&b'^');
                if not {
                    pi += 1;
                }
                let mut hit = false;
                loop {
                    match p.get(pi) {
                        None => {
                            // An unterminated class: Redis stops at the end.
                            pi -= 1;
                            break;
                        }
                        Some(b']') => break,
                        Some(b'\\') if pi + 1 < p.len() => {
                            pi += 1;
                            hit |= eq(p[pi], s[si], nocase);
                        }
                        Some(&lo) if p.get(pi + 1) == Some(&b'-') && pi + 2 < p.len() => {
                            let hi = p[pi + 2];
                            let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                            let c = s[si];
                            hit |= if nocase {
                                let c = c.to_ascii_lowercase();
                                c >= lo.to_ascii_lowercase() && c <= hi.to_ascii_lowercase()
                            } else {
                                c >= lo && c <= hi
                            };
                            pi += 2;
                        }
                        Some(&c) => hit |= eq(c, s[si], nocase),
                    }
                    pi += 1;
                }
                if hit == not {
                    return false;
                }
                si += 1;
            }
            b'\\' if pi + 1 < p.len() => {
                pi += 1;
                if si >= s.len() || !eq(p[pi], s[si], nocase) {
                    return false;
                }
                si += 1;
            }
            c => {
                if si >= s.len() || !eq(c, s[si], nocase) {
                    return false;
                }
                si += 1;
            }
        }
        pi += 1;
    }
    si == s.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("user:*:name", "user:12:name"));
        assert!(!m("user:*:name", "user:12:nam"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(m("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaab"));
    }
}
