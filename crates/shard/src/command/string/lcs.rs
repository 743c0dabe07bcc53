//! LCS: the longest common subsequence of two strings, by the classic
//! dynamic-programming table, with Redis's backtracking order so that IDX
//! reports the same matches.

use bytes::Bytes;

use crate::command::{is, parse_i64, Ctx};
use crate::error::{CmdError, CmdResult};

/// One run of consecutive matching bytes: inclusive ranges in A and B.
struct Match {
    a: (usize, usize),
    b: (usize, usize),
}

pub(super) fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let max = ctx.config.proto_max_bulk_len;
    let db = ctx.db();
    // Copied out so the reply can be written without holding the keyspace.
    let a = db.get_str(&args[1], now).map(|v| v.map(|s| s.to_vec()).unwrap_or_default());
    let b = db.get_str(&args[2], now).map(|v| v.map(|s| s.to_vec()).unwrap_or_default());
    let (Ok(a), Ok(b)) = (a, b) else {
        return Err(CmdError::err("ERR The specified keys must contain string values"));
    };

    let (mut idx, mut len, mut withlen, mut minlen) = (false, false, false, 0i64);
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        if is(opt, "idx") {
            idx = true;
        } else if is(opt, "len") {
            len = true;
        } else if is(opt, "withmatchlen") {
            withlen = true;
        } else if is(opt, "minmatchlen") && i + 1 < args.len() {
            minlen = parse_i64(&args[i + 1])?.max(0);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if idx && len {
        return Err(CmdError::err("ERR If you want both the length and indexes, please just use IDX."));
    }

    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1).checked_mul(blen as u64 + 1).and_then(|c| c.checked_mul(4));
    if cells.is_none_or(|c| c > max.max(0) as u64) {
        return Err(CmdError::err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    // table[i * (blen + 1) + j]: LCS length of a[..i] and b[..j].
    let w = blen + 1;
    let mut table = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen] as usize;

    // Walk back from the end: a diagonal step on equal bytes, otherwise
    // towards the larger neighbour (B first on ties), as Redis does.
    let mut common = vec![0u8; total];
    let mut matches = Vec::new();
    let mut run: Option<Match> = None;
    let (mut i, mut j, mut k) = (alen, blen, total);
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            // The walk makes exactly `total` diagonal steps; saturating
            // and `get_mut` only keep that an invariant, not a panic.
            k = k.saturating_sub(1);
            if let Some(c) = common.get_mut(k) {
                *c = a[i - 1];
            }
            match &mut run {
                Some(m) => {
                    m.a.0 = i - 1;
                    m.b.0 = j - 1;
                }
                None => run = Some(Match { a: (i - 1, i - 1), b: (j - 1, j - 1) }),
            }
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            matches.extend(run.take());
        }
    }
    matches.extend(run.take());

    let out = &mut *ctx.out;
    if !idx {
        if len {
            out.int(total as i64);
        } else {
            out.bulk(&common);
        }
        return Ok(());
    }
    let kept: Vec<&Match> = matches.iter().filter(|m| (m.a.1 - m.a.0 + 1) as i64 >= minlen).collect();
    out.map(2);
    out.bulk(b"matches");
    out.array(kept.len());
    for m in kept {
        out.array(if withlen { 3 } else { 2 });
        for (s, e) in [m.a, m.b] {
            out.array(2);
            out.int(s as i64);
            out.int(e as i64);
        }
        if withlen {
            out.int((m.a.1 - m.a.0 + 1) as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::command::string::tests::put_list;
    use crate::test_util::TestServer;

    #[test]
    fn lcs() {
        let mut t = TestServer::new();
        t.cmd("MSET a ohmytext b mynewtext");
        assert_eq!(t.cmd("LCS a b"), "$6\r\nmytext\r\n");
        assert_eq!(t.cmd("LCS a b LEN"), ":6\r\n");
        assert_eq!(t.cmd("LCS a nokey"), "$0\r\n\r\n");
        assert_eq!(
            t.cmd("LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN"),
            "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            t.cmd("LCS a b IDX"),
            "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(t.cmd("LCS a b IDX LEN"), "-ERR If you want both the length and indexes, please just use IDX.\r\n");
        assert_eq!(t.cmd("LCS a b MINMATCHLEN"), "-ERR syntax error\r\n");
        put_list(&mut t, "l");
        assert_eq!(t.cmd("LCS a l"), "-ERR The specified keys must contain string values\r\n");
    }

    #[test]
    fn resp3_map() {
        let mut t = TestServer::new();
        t.client.proto = slotway_resp::reply::Proto::Resp3;
        t.cmd("MSET a ohmytext b mynewtext");
        assert_eq!(
            t.cmd("LCS a b IDX WITHMATCHLEN MINMATCHLEN 3"),
            "%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(t.cmd("MGET nokey"), "*1\r\n_\r\n");
        assert_eq!(t.cmd("BITFIELD x OVERFLOW FAIL INCRBY u2 0 4"), "*1\r\n_\r\n");
        assert_eq!(t.cmd("INCRBYFLOAT f 1.5"), "$3\r\n1.5\r\n");
    }

    #[test]
    fn table_bounded_by_proto_max_bulk_len() {
        let config = crate::config::Config { proto_max_bulk_len: 1 << 20, ..Default::default() };
        let mut t = TestServer::with_config(config);
        t.cmd(&format!("MSET x {} y {} z {}", "a".repeat(1000), "b".repeat(1000), "a".repeat(500)));
        assert_eq!(
            t.cmd("LCS x y"),
            "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n"
        );
        assert_eq!(t.cmd("LCS x y BOGUS"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("LCS z z LEN"), ":500\r\n");
    }
}
