//! COMMAND DOCS: Redis 7.0.15's own documentation of each command
//! ([`docs_table`](super::docs_table), generated from a real server), as a
//! small tree written out in the client's protocol.

use slotway_resp::ReplyBuf;

use super::docs_table::DOCS;

/// A documentation value, typed as Redis sends it.
pub enum D {
    /// Bulk string.
    S(&'static str),
    /// Simple string (argument flags).
    P(&'static str),
    I(i64),
    A(&'static [D]),
    Set(&'static [D]),
    M(&'static [(&'static str, D)]),
}

impl D {
    fn get(&self, key: &str) -> Option<&D> {
        match self {
            D::M(pairs) => pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn write(&self, out: &mut ReplyBuf) {
        match self {
            D::S(s) => out.bulk(s.as_bytes()),
            D::P(s) => out.simple(s.as_bytes()),
            D::I(n) => out.int(*n),
            D::A(items) => {
                out.array(items.len());
                items.iter().for_each(|d| d.write(out));
            }
            D::Set(items) => {
                out.set(items.len());
                items.iter().for_each(|d| d.write(out));
            }
            D::M(pairs) => {
                out.map(pairs.len());
                for (k, v) in pairs.iter() {
                    out.bulk(k.as_bytes());
                    v.write(out);
                }
            }
        }
    }
}

/// The docs of a command (`get`) or subcommand (`config|get`), by its
/// table name.
pub fn lookup(name: &str) -> Option<&'static D> {
    let parent = name.split('|').next().unwrap_or(name);
    let i = DOCS.binary_search_by(|(n, _)| (*n).cmp(parent)).ok()?;
    let doc = &DOCS[i].1;
    if parent.len() == name.len() {
        return Some(doc);
    }
    doc.get("subcommands")?.get(name)
}
