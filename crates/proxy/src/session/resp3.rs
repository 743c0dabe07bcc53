//! RESP3 toward clients that said HELLO 3, while every upstream connection
//! speaks RESP2: replies are translated here, by the reply shape each
//! command has in RESP3 (maps for HGETALL, sets for SMEMBERS, doubles for
//! scores, null as `_`), as Redis itself would have sent them.
//!
//! Only RESP3 clients pay for this: the reply is parsed into a tree and
//! written again. RESP2 clients get the upstream bytes untouched.

use bytes::{Bytes, BytesMut};
use slotway_resp::{Frame, FrameCodec};
use tokio_util::codec::Decoder;

/// The RESP3 shape of a command's reply, beyond the null change every
/// reply gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    /// A flat array of field, value pairs becomes a map.
    Map,
    Set,
    /// A bulk score becomes a double.
    Double,
    /// An array of bulk scores (or nulls) becomes doubles.
    Doubles,
    /// `member score member score` becomes `[[member, score], ...]`.
    ScorePairs,
    /// `field value field value` becomes `[[field, value], ...]`.
    Pairs,
    /// ZPOPMIN/ZPOPMAX without a count: a flat `[member, score]`.
    ScoreFlat,
}

/// The shape of `args`' reply in RESP3.
pub fn shape(name: &str, args: &[Bytes]) -> Shape {
    let has = |w: &[u8]| args.iter().skip(1).any(|a| a.eq_ignore_ascii_case(w));
    match name {
        "hgetall" => Shape::Map,
        "smembers" | "sinter" | "sunion" | "sdiff" => Shape::Set,
        "spop" if args.len() > 2 => Shape::Set,
        "zscore" | "zincrby" => Shape::Double,
        "zadd" if has(b"INCR") => Shape::Double,
        "zmscore" => Shape::Doubles,
        "zrange" | "zrangebyscore" | "zrevrange" | "zrevrangebyscore" | "zunion" | "zinter" | "zdiff"
        | "zrandmember"
            if has(b"WITHSCORES") =>
        {
            Shape::ScorePairs
        }
        "zpopmin" | "zpopmax" if args.len() > 2 => Shape::ScorePairs,
        "zpopmin" | "zpopmax" => Shape::ScoreFlat,
        "hrandfield" if has(b"WITHVALUES") => Shape::Pairs,
        _ => Shape::Plain,
    }
}

fn double(f: Frame) -> Frame {
    match f {
        Frame::Bulk(b) => match std::str::from_utf8(&b).ok().and_then(|s| s.parse::<f64>().ok()) {
            Some(d) => Frame::Double(d),
            None => Frame::Bulk(b),
        },
        other => nulls(other),
    }
}

/// RESP2's two nulls are RESP3's one.
fn nulls(f: Frame) -> Frame {
    match f {
        Frame::NullArray => Frame::Null,
        Frame::Array(items) => Frame::Array(items.into_iter().map(nulls).collect()),
        other => other,
    }
}

/// Translates one RESP2 reply to RESP3.
pub fn translate(shape: Shape, reply: Bytes) -> Bytes {
    // Errors, integers and simple strings read the same in both.
    if matches!(reply.first(), Some(b'-' | b':' | b'+')) {
        return reply;
    }
    let mut buf = BytesMut::from(&reply[..]);
    let Ok(Some(frame)) = FrameCodec::default().decode(&mut buf) else { return reply };
    let pairs = |items: Vec<Frame>| -> Vec<(Frame, Frame)> {
        let mut it = items.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        out
    };
    let out = match (shape, frame) {
        (Shape::Map, Frame::Array(items)) => {
            Frame::Map(pairs(items).into_iter().map(|(k, v)| (nulls(k), nulls(v))).collect())
        }
        (Shape::Set, Frame::Array(items)) => Frame::Set(items),
        (Shape::Double, f) => double(f),
        (Shape::Doubles, Frame::Array(items)) => Frame::Array(items.into_iter().map(double).collect()),
        (Shape::ScorePairs, Frame::Array(items)) => {
            Frame::Array(pairs(items).into_iter().map(|(m, s)| Frame::Array(vec![m, double(s)])).collect())
        }
        (Shape::Pairs, Frame::Array(items)) => {
            Frame::Array(pairs(items).into_iter().map(|(k, v)| Frame::Array(vec![k, v])).collect())
        }
        (Shape::ScoreFlat, Frame::Array(mut items)) if items.len() == 2 => {
            let s = items.pop().map(double).unwrap_or(Frame::Null);
            items.push(s);
            Frame::Array(items)
        }
        (_, f) => nulls(f),
    };
    let mut dst = BytesMut::with_capacity(reply.len() + 8);
    slotway_resp::frame::encode(&out, &mut dst);
    dst.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: Shape, s: &'static str) -> String {
        String::from_utf8(translate(shape, Bytes::from_static(s.as_bytes())).to_vec()).unwrap()
    }

    #[test]
    fn replies_take_their_resp3_shapes() {
        assert_eq!(t(Shape::Plain, "$-1\r\n"), "_\r\n");
        assert_eq!(t(Shape::Plain, "*-1\r\n"), "_\r\n");
        assert_eq!(t(Shape::Plain, "*2\r\n$1\r\na\r\n$-1\r\n"), "*2\r\n$1\r\na\r\n_\r\n");
        assert_eq!(t(Shape::Map, "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(t(Shape::Set, "*1\r\n$1\r\nm\r\n"), "~1\r\n$1\r\nm\r\n");
        assert_eq!(t(Shape::Double, "$3\r\n1.5\r\n"), ",1.5\r\n");
        assert_eq!(t(Shape::Doubles, "*2\r\n$1\r\n2\r\n$-1\r\n"), "*2\r\n,2\r\n_\r\n");
        assert_eq!(
            t(Shape::ScorePairs, "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n"
        );
        assert_eq!(t(Shape::ScoreFlat, "*2\r\n$1\r\na\r\n$1\r\n1\r\n"), "*2\r\n$1\r\na\r\n,1\r\n");
        assert_eq!(t(Shape::Map, "-ERR x\r\n"), "-ERR x\r\n");
        assert_eq!(t(Shape::Plain, ":1\r\n"), ":1\r\n");
    }

    #[test]
    fn shapes_come_from_command_and_options() {
        let a = |s: &str| s.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect::<Vec<_>>();
        assert_eq!(shape("hgetall", &a("HGETALL h")), Shape::Map);
        assert_eq!(shape("zrange", &a("ZRANGE z 0 -1")), Shape::Plain);
        assert_eq!(shape("zrange", &a("ZRANGE z 0 -1 withscores")), Shape::ScorePairs);
        assert_eq!(shape("zpopmin", &a("ZPOPMIN z")), Shape::ScoreFlat);
        assert_eq!(shape("zpopmin", &a("ZPOPMIN z 2")), Shape::ScorePairs);
        assert_eq!(shape("get", &a("GET k")), Shape::Plain);
        assert_eq!(shape("hrandfield", &a("HRANDFIELD h 2 WITHVALUES")), Shape::Pairs);
        assert_eq!(t(Shape::Pairs, "*2\r\n$1\r\nf\r\n$2\r\n12\r\n"), "*1\r\n*2\r\n$1\r\nf\r\n$2\r\n12\r\n");
    }
}
