//! The cluster bus wire format between slotway-shard nodes.
//!
//! Ours, not Redis's `clusterMsg`: a frame is `SWcb`, a version (u16), a
//! message kind (u16) and the payload length (u32), all little-endian,
//! then the payload. Every message carries the sender's [`Header`]
//! (its name, epochs, role, claimed slots, replication offset, address);
//! PING/PONG/MEET add a few [`Gossip`] entries about other nodes. Frames
//! are bounded by [`MAX_PAYLOAD`]; anything that is not a well-formed frame
//! of our version is an error, and the link that sent it is dropped.

use bytes::{Buf, BufMut, BytesMut};

use crate::{NodeId, SlotSet};

pub const MAGIC: &[u8; 4] = b"SWcb";
pub const VERSION: u16 = 1;
pub const FRAME_HEADER: usize = 12;
/// Bounds one frame: a header with its slot bitmap is ~2.2 KB, gossip a
/// few hundred bytes; only PUBLISH carries user data.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// Header `mflags`: the sender (a master in a manual failover) has paused
/// its clients; its offset is final.
pub const MF_PAUSED: u8 = 1;
/// AUTH_REQUEST `mflags`: a manual failover; vote even if the master is
/// not failing.
pub const MF_FORCEACK: u8 = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsgError {
    #[error("not a cluster bus frame (bad magic)")]
    BadMagic,
    #[error("unsupported cluster bus version {0}")]
    Version(u16),
    #[error("cluster bus frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("unknown cluster bus message type {0}")]
    Kind(u16),
    #[error("truncated or malformed cluster bus message")]
    Malformed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub sender: NodeId,
    pub current_epoch: u64,
    /// The sender's configEpoch, or its master's when it is a replica.
    pub config_epoch: u64,
    pub offset: i64,
    /// The sender's role flags (`node::MASTER`/`REPLICA`/`NOFAILOVER`).
    pub flags: u16,
    pub master: Option<NodeId>,
    /// The slots the sender serves, or its master's when a replica.
    pub slots: SlotSet,
    /// The address the sender announces; empty: use the link's peer.
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub state_ok: bool,
    pub mflags: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    pub id: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub ping_sent: u64,
    pub pong_received: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Ping(Vec<Gossip>),
    Pong(Vec<Gossip>),
    Meet(Vec<Gossip>),
    /// The named node is down, by majority.
    Fail(NodeId),
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    PublishShard {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// A replica asks for a vote to replace its failed master.
    AuthRequest,
    AuthAck,
    /// The named node's slots and configEpoch are newer than the
    /// receiver's claims.
    Update {
        id: NodeId,
        config_epoch: u64,
        slots: SlotSet,
    },
    /// A replica starts a manual failover of the receiver.
    MfStart,
}

impl Body {
    fn kind(&self) -> u16 {
        match self {
            Body::Ping(_) => 0,
            Body::Pong(_) => 1,
            Body::Meet(_) => 2,
            Body::Fail(_) => 3,
            Body::Publish { .. } => 4,
            Body::PublishShard { .. } => 5,
            Body::AuthRequest => 6,
            Body::AuthAck => 7,
            Body::Update { .. } => 8,
            Body::MfStart => 9,
        }
    }

    /// The CLUSTER INFO counter name of this kind.
    pub fn stat_name(&self) -> &'static str {
        STAT_NAMES[self.kind() as usize]
    }
}

/// Indexed by kind, Redis's names for its `cluster_stats_messages_*`.
pub const STAT_NAMES: &[&str] =
    &["ping", "pong", "meet", "fail", "publish", "publishshard", "auth-req", "auth-ack", "update", "mfstart"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub header: Header,
    pub body: Body,
}

impl Msg {
    /// Appends the whole frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_slice(MAGIC);
        out.put_u16_le(VERSION);
        out.put_u16_le(self.body.kind());
        out.put_u32_le(0);
        let h = &self.header;
        out.put_slice(h.sender.as_bytes());
        out.put_u64_le(h.current_epoch);
        out.put_u64_le(h.config_epoch);
        out.put_i64_le(h.offset);
        out.put_u16_le(h.flags);
        put_opt_id(out, h.master.as_ref());
        let mut bits = Vec::with_capacity(2048);
        h.slots.to_bytes(&mut bits);
        out.put_slice(&bits);
        put_str(out, h.ip.as_bytes());
        out.put_u16_le(h.port);
        out.put_u16_le(h.cport);
        out.put_u8(h.state_ok as u8);
        out.put_u8(h.mflags);
        match &self.body {
            Body::Ping(g) | Body::Pong(g) | Body::Meet(g) => {
                out.put_u16_le(g.len() as u16);
                for e in g {
                    out.put_slice(e.id.as_bytes());
                    put_str(out, e.ip.as_bytes());
                    out.put_u16_le(e.port);
                    out.put_u16_le(e.cport);
                    out.put_u16_le(e.flags);
                    out.put_u64_le(e.ping_sent);
                    out.put_u64_le(e.pong_received);
                }
            }
            Body::Fail(id) => out.put_slice(id.as_bytes()),
            Body::Publish { channel, message } | Body::PublishShard { channel, message } => {
                out.put_u32_le(channel.len() as u32);
                out.put_slice(channel);
                out.put_u32_le(message.len() as u32);
                out.put_slice(message);
            }
            Body::AuthRequest | Body::AuthAck | Body::MfStart => {}
            Body::Update { id, config_epoch, slots } => {
                out.put_slice(id.as_bytes());
                out.put_u64_le(*config_epoch);
                let mut bits = Vec::with_capacity(2048);
                slots.to_bytes(&mut bits);
                out.put_slice(&bits);
            }
        }
        let len = (out.len() - start - FRAME_HEADER) as u32;
        out[start + 8..start + 12].copy_from_slice(&len.to_le_bytes());
    }

    /// One frame from the front of `buf`: `Ok(None)` until it is complete,
    /// then the message and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Msg, usize)>, MsgError> {
        if buf.len() < FRAME_HEADER {
            // Garbage is refused as early as its first bytes show it.
            if !MAGIC.starts_with(&buf[..buf.len().min(4)]) {
                return Err(MsgError::BadMagic);
            }
            return Ok(None);
        }
        if &buf[..4] != MAGIC {
            return Err(MsgError::BadMagic);
        }
        let version = u16::from_le_bytes([buf[4], buf[5]]);
        if version != VERSION {
            return Err(MsgError::Version(version));
        }
        let kind = u16::from_le_bytes([buf[6], buf[7]]);
        let len = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(MsgError::TooLarge(len));
        }
        if buf.len() < FRAME_HEADER + len {
            return Ok(None);
        }
        let mut r = &buf[FRAME_HEADER..FRAME_HEADER + len];
        let msg = parse(kind, &mut r)?;
        if !r.is_empty() {
            return Err(MsgError::Malformed);
        }
        Ok(Some((msg, FRAME_HEADER + len)))
    }
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    let s = &s[..s.len().min(u16::MAX as usize)];
    out.put_u16_le(s.len() as u16);
    out.put_slice(s);
}

fn put_opt_id(out: &mut BytesMut, id: Option<&NodeId>) {
    match id {
        Some(id) => {
            out.put_u8(1);
            out.put_slice(id.as_bytes());
        }
        None => out.put_u8(0),
    }
}

fn need(r: &[u8], n: usize) -> Result<(), MsgError> {
    if r.len() < n {
        Err(MsgError::Malformed)
    } else {
        Ok(())
    }
}

fn id(r: &mut &[u8]) -> Result<NodeId, MsgError> {
    need(r, 40)?;
    let id = NodeId::parse(&r[..40]).ok_or(MsgError::Malformed)?;
    r.advance(40);
    Ok(id)
}

fn u8_(r: &mut &[u8]) -> Result<u8, MsgError> {
    need(r, 1)?;
    Ok(r.get_u8())
}

fn u16_(r: &mut &[u8]) -> Result<u16, MsgError> {
    need(r, 2)?;
    Ok(r.get_u16_le())
}

fn u32_(r: &mut &[u8]) -> Result<u32, MsgError> {
    need(r, 4)?;
    Ok(r.get_u32_le())
}

fn u64_(r: &mut &[u8]) -> Result<u64, MsgError> {
    need(r, 8)?;
    Ok(r.get_u64_le())
}

fn bytes_(r: &mut &[u8], n: usize) -> Result<Vec<u8>, MsgError> {
    need(r, n)?;
    let v = r[..n].to_vec();
    r.advance(n);
    Ok(v)
}

fn string(r: &mut &[u8]) -> Result<String, MsgError> {
    let n = u16_(r)? as usize;
    String::from_utf8(bytes_(r, n)?).map_err(|_| MsgError::Malformed)
}

fn slots(r: &mut &[u8]) -> Result<SlotSet, MsgError> {
    need(r, 2048)?;
    let s = SlotSet::from_bytes(&r[..2048]).ok_or(MsgError::Malformed)?;
    r.advance(2048);
    Ok(s)
}

fn parse(kind: u16, r: &mut &[u8]) -> Result<Msg, MsgError> {
    if kind > 9 {
        return Err(MsgError::Kind(kind));
    }
    let sender = id(r)?;
    let current_epoch = u64_(r)?;
    let config_epoch = u64_(r)?;
    let offset = u64_(r)? as i64;
    let flags = u16_(r)?;
    let master = match u8_(r)? {
        0 => None,
        1 => Some(id(r)?),
        _ => return Err(MsgError::Malformed),
    };
    let slots_ = slots(r)?;
    let ip = string(r)?;
    let port = u16_(r)?;
    let cport = u16_(r)?;
    let state_ok = u8_(r)? != 0;
    let mflags = u8_(r)?;
    let header = Header {
        sender,
        current_epoch,
        config_epoch,
        offset,
        flags,
        master,
        slots: slots_,
        ip,
        port,
        cport,
        state_ok,
        mflags,
    };
    let body = match kind {
        0..=2 => {
            let n = u16_(r)? as usize;
            let mut g = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                g.push(Gossip {
                    id: id(r)?,
                    ip: string(r)?,
                    port: u16_(r)?,
                    cport: u16_(r)?,
                    flags: u16_(r)?,
                    ping_sent: u64_(r)?,
                    pong_received: u64_(r)?,
                });
            }
            match kind {
                0 => Body::Ping(g),
                1 => Body::Pong(g),
                _ => Body::Meet(g),
            }
        }
        3 => Body::Fail(id(r)?),
        4 | 5 => {
            let n = u32_(r)? as usize;
            let channel = bytes_(r, n)?;
            let n = u32_(r)? as usize;
            let message = bytes_(r, n)?;
            if kind == 4 {
                Body::Publish { channel, message }
            } else {
                Body::PublishShard { channel, message }
            }
        }
        6 => Body::AuthRequest,
        7 => Body::AuthAck,
        8 => Body::Update { id: id(r)?, config_epoch: u64_(r)?, slots: slots(r)? },
        _ => Body::MfStart,
    };
    Ok(Msg { header, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        let mut slots = SlotSet::default();
        (0..5461).for_each(|s| slots.insert(s));
        Header {
            sender: NodeId::random(),
            current_epoch: 7,
            config_epoch: 3,
            offset: 12345,
            flags: crate::node::MASTER,
            master: None,
            slots,
            ip: "127.0.0.1".into(),
            port: 7000,
            cport: 17000,
            state_ok: true,
            mflags: 0,
        }
    }

    fn round_trip(body: Body) {
        let msg = Msg { header: header(), body };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        // Every strict prefix is incomplete, never an error.
        for cut in 0..buf.len() {
            assert_eq!(Msg::decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        let (back, used) = Msg::decode(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(back, msg);
    }

    #[test]
    fn every_kind_round_trips() {
        let g = Gossip {
            id: NodeId::random(),
            ip: "127.0.0.2".into(),
            port: 7001,
            cport: 17001,
            flags: crate::node::PFAIL,
            ping_sent: 1,
            pong_received: 2,
        };
        round_trip(Body::Ping(vec![g.clone(), g.clone()]));
        round_trip(Body::Pong(vec![]));
        round_trip(Body::Meet(vec![g]));
        round_trip(Body::Fail(NodeId::random()));
        round_trip(Body::Publish { channel: b"ch".to_vec(), message: b"hello".to_vec() });
        round_trip(Body::PublishShard { channel: b"s".to_vec(), message: vec![0; 100] });
        round_trip(Body::AuthRequest);
        round_trip(Body::AuthAck);
        round_trip(Body::MfStart);
        round_trip(Body::Update { id: NodeId::random(), config_epoch: 9, slots: SlotSet::default() });
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Msg::decode(b"GET foo\r\n"), Err(MsgError::BadMagic));
        assert_eq!(Msg::decode(b"X"), Err(MsgError::BadMagic));
        assert_eq!(Msg::decode(b"SWcb\x02\x00\x00\x00\x00\x00\x00\x00"), Err(MsgError::Version(2)));
        assert_eq!(Msg::decode(b"SWcb\x01\x00\x00\x00\xff\xff\xff\xff"), Err(MsgError::TooLarge(u32::MAX as usize)));
        assert_eq!(Msg::decode(b"SWcb\x01\x00\x63\x00\x00\x00\x00\x00"), Err(MsgError::Kind(0x63)));
        // A frame whose payload is short of its own fields.
        assert_eq!(Msg::decode(b"SWcb\x01\x00\x00\x00\x01\x00\x00\x00x"), Err(MsgError::Malformed));
    }
}
