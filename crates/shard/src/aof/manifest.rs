//! The AOF manifest (Redis 7.0's multi-part layout): which files make up
//! the append-only log, in load order.
//!
//! `<appendfilename>.manifest` in `appenddirname` holds one line per file,
//! `file <name> seq <n> type <b|h|i>`: at most one base (`b`, a snapshot,
//! `<name>.<seq>.base.aof` in command format or `.base.rdb`), history files
//! (`h`, left over from a rewrite and only waiting to be deleted), and the
//! incremental files (`i`, `<name>.<seq>.incr.aof`) in seq order, the last
//! one being the file writes go to. It is replaced atomically (temp file,
//! fsync, rename, fsync of the directory).

use std::io::Write;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Base,
    History,
    Incr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileEntry>,
    pub history: Vec<FileEntry>,
    pub incrs: Vec<FileEntry>,
}

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("Invalid AOF manifest file format at line {0}")]
    Format(usize),
    #[error("Found duplicate base file information in the AOF manifest")]
    DuplicateBase,
    #[error("Found a non-monotonic sequence number in the AOF manifest")]
    Sequence,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_words(line).ok_or(ManifestError::Format(i + 1))?;
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                let [k, v] = pair else { return Err(ManifestError::Format(i + 1)) };
                match k.as_str() {
                    "file" => name = Some(v.clone()),
                    "seq" => seq = v.parse::<u64>().ok(),
                    "type" => {
                        kind = match v.as_str() {
                            "b" => Some(Kind::Base),
                            "h" => Some(Kind::History),
                            "i" => Some(Kind::Incr),
                            _ => None,
                        }
                    }
                    // Later versions may add keys; they are not ours to judge.
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(ManifestError::Format(i + 1));
            };
            let e = FileEntry { name, seq, kind };
            match kind {
                Kind::Base if m.base.is_some() => return Err(ManifestError::DuplicateBase),
                Kind::Base => m.base = Some(e),
                Kind::History => m.history.push(e),
                Kind::Incr => {
                    if m.incrs.last().is_some_and(|l| l.seq >= seq) {
                        return Err(ManifestError::Sequence);
                    }
                    m.incrs.push(e)
                }
            }
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let all = self.base.iter().chain(&self.history).chain(&self.incrs);
        for e in all {
            let kind = match e.kind {
                Kind::Base => 'b',
                Kind::History => 'h',
                Kind::Incr => 'i',
            };
            s.push_str(&format!("file {} seq {} type {kind}\n", quote(&e.name), e.seq));
        }
        s
    }

    /// The files to load, in order: the base, then every incremental file.
    pub fn load_order(&self) -> impl Iterator<Item = &FileEntry> {
        self.base.iter().chain(&self.incrs)
    }

    pub fn last_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |e| e.seq)
    }

    /// Writes the manifest to `dir/name` atomically.
    pub fn persist(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        let tmp = dir.join(format!("temp-{name}"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Words separated by spaces; a word may be in double quotes (a file name
/// with spaces), with `\"` and `\\` escapes.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { return Some(words) };
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => w.push(chars.next()?),
                    c => w.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
}

fn quote(name: &str) -> String {
    if name.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_redis_layout() {
        let text = "file appendonly.aof.2.base.aof seq 2 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type h\n\
                    file appendonly.aof.3.incr.aof seq 3 type i\n\
                    file appendonly.aof.4.incr.aof seq 4 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().seq, 2);
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.last_incr_seq(), 4);
        assert_eq!(m.render(), text);
        let order: Vec<_> = m.load_order().map(|e| e.name.as_str()).collect();
        assert_eq!(order, ["appendonly.aof.2.base.aof", "appendonly.aof.3.incr.aof", "appendonly.aof.4.incr.aof"]);
    }

    #[test]
    fn refuses_bad_lines() {
        assert!(matches!(Manifest::parse("file x seq 1\n"), Err(ManifestError::Format(1))));
        assert!(matches!(Manifest::parse("file x seq 1 type z\n"), Err(ManifestError::Format(1))));
        assert!(matches!(
            Manifest::parse("file a seq 1 type b\nfile b seq 2 type b\n"),
            Err(ManifestError::DuplicateBase)
        ));
        assert!(matches!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n"), Err(ManifestError::Sequence)));
    }

    #[test]
    fn quoted_names_round_trip() {
        let m = Manifest {
            base: Some(FileEntry { name: "my aof.1.base.aof".into(), seq: 1, kind: Kind::Base }),
            ..Manifest::default()
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
    }
}
