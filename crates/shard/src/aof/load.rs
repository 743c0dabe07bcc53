//! Loading the AOF at start: every file of the manifest in order (base,
//! then the incremental files), each command replayed through the normal
//! dispatch path by a client of its own.
//!
//! A file that starts with `REDIS` is an RDB image (a `.base.rdb`, or a
//! pre-7.0 AOF with an RDB preamble): it is read whole and loaded as a
//! snapshot, then whatever follows the image is replayed as commands, as
//! Redis 7.0 does for any file of the manifest. A broken image is fatal.
//!
//! The reader is strict: a file is a sequence of `*N` multibulk commands
//! (and `#` annotation lines). A file that ends inside a command (or
//! inside a MULTI with no EXEC) is truncated: for the last file, and with
//! `aof-load-truncated yes`, the tail is cut off with a warning in the
//! log, as Redis does; otherwise, and for anything that is not RESP, the
//! load fails with an error naming the file, and the server does not
//! start. A partial load is never kept silently.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use bytes::Bytes;
use slotway_resp::ReplyBuf;
use thiserror::Error;

use super::manifest::{FileEntry, Manifest};
use crate::client::Client;
use crate::command::{Ctx, Mode};
use crate::server::{unix_ms, Shared};

/// What can stop a load. The texts follow redis-server's log lines.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("Fatal error: can't open the append log file {file} for reading: {err}")]
    Open { file: String, err: std::io::Error },
    #[error("Unrecoverable error reading the append only file {file}: {err}")]
    Read { file: String, err: std::io::Error },
    #[error(
        "Unexpected end of file reading the append only file {file}. You can: \
         1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. \
         2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
    )]
    Truncated { file: String },
    #[error(
        "Bad file format reading the append only file {file}: make a backup of your AOF file, \
         then use ./redis-check-aof --fix <filename.manifest>"
    )]
    Corrupt { file: String },
    #[error("Unknown command '{name}' reading the append only file {file}")]
    UnknownCommand { file: String, name: String },
    #[error("Error reading the RDB preamble of the AOF file {file}, AOF loading aborted: {err}")]
    Rdb { file: String, err: crate::persist::rdb::RdbError },
    #[error("Fatal error: the AOF manifest {file} is invalid: {err}")]
    Manifest { file: String, err: super::manifest::ManifestError },
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The input ends inside a command; `valid` bytes hold whole commands.
    Truncated {
        valid: u64,
    },
    Corrupt,
}

/// Reads commands one at a time from an AOF file.
pub struct CommandReader<R> {
    r: R,
    /// Offset of the end of the last whole command.
    pub pos: u64,
    max_bulk: usize,
}

impl<R: BufRead> CommandReader<R> {
    pub fn new(r: R, max_bulk: usize) -> Self {
        Self::at(r, max_bulk, 0)
    }

    /// A reader whose input starts `pos` bytes into its file (after an
    /// RDB preamble), so that offsets name the file's bytes.
    pub fn at(r: R, max_bulk: usize, pos: u64) -> Self {
        CommandReader { r, pos, max_bulk }
    }

    /// The next command, `Ok(None)` at a clean end of input.
    pub fn next_command(&mut self) -> Result<Option<Vec<Bytes>>, ParseError> {
        let mut read = 0u64;
        let mut line = Vec::new();
        let n = loop {
            line.clear();
            let got = self.line(&mut line, &mut read)?;
            if got == 0 {
                return if read == 0 { Ok(None) } else { Err(self.truncated()) };
            }
            if line.first() == Some(&b'#') {
                // An annotation (timestamp): part of the stream, not a command.
                self.pos += read;
                read = 0;
                continue;
            }
            break header(&line, b'*').ok_or(ParseError::Corrupt)?;
        };
        if n == 0 {
            return Err(ParseError::Corrupt);
        }
        let mut args = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            line.clear();
            if self.line(&mut line, &mut read)? == 0 {
                return Err(self.truncated());
            }
            let len = header(&line, b'$').ok_or(ParseError::Corrupt)?;
            if len > self.max_bulk {
                return Err(ParseError::Corrupt);
            }
            let mut data = vec![0u8; len + 2];
            match self.r.read_exact(&mut data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(self.truncated()),
                Err(_) => return Err(ParseError::Corrupt),
            }
            if &data[len..] != b"\r\n" {
                return Err(ParseError::Corrupt);
            }
            read += data.len() as u64;
            data.truncate(len);
            args.push(Bytes::from(data));
        }
        self.pos += read;
        Ok(Some(args))
    }

    fn truncated(&self) -> ParseError {
        ParseError::Truncated { valid: self.pos }
    }

    /// One header line (at most 64 bytes) into `line`; the count of bytes
    /// consumed, 0 at end of input. A line without its `\n` at the end of
    /// input is a truncation.
    fn line(&mut self, line: &mut Vec<u8>, read: &mut u64) -> Result<usize, ParseError> {
        let n = (&mut self.r).take(64).read_until(b'\n', line).map_err(|_| ParseError::Corrupt)?;
        *read += n as u64;
        if n > 0 && line.last() != Some(&b'\n') {
            return Err(if n == 64 { ParseError::Corrupt } else { self.truncated() });
        }
        Ok(n)
    }
}

/// `*12\r\n` or `$5\r\n`: the number after the marker.
fn header(line: &[u8], marker: u8) -> Option<usize> {
    let body = line.strip_prefix(&[marker])?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(body).ok()?.parse::<usize>().ok()
}

/// Every command of an in-memory AOF (tests, small files).
pub fn parse_all(data: &[u8]) -> Result<Vec<Vec<Bytes>>, ParseError> {
    let mut r = CommandReader::new(data, usize::MAX);
    let mut out = Vec::new();
    while let Some(cmd) = r.next_command()? {
        out.push(cmd);
    }
    Ok(out)
}

/// What a load did, for the log.
#[derive(Debug, Default)]
pub struct Loaded {
    pub commands: u64,
    pub files: usize,
}

/// Replays every file of `manifest` from `dir` into the keyspace.
pub fn load(shared: &Shared, dir: &Path, manifest: &Manifest, truncated_ok: bool) -> Result<Loaded, LoadError> {
    let files: Vec<&FileEntry> = manifest.load_order().collect();
    let mut loaded = Loaded::default();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let handle = shared.new_client(addr, addr);
    let id = handle.id;
    let mut client = Client::new(handle, true);
    let result = (|| {
        for (i, f) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            loaded.commands += load_file(shared, &mut client, dir, f, last && truncated_ok)?;
            loaded.files += 1;
        }
        Ok(loaded)
    })();
    shared.clients.lock().remove(&id);
    result
}

fn load_file(
    shared: &Shared,
    client: &mut Client,
    dir: &Path,
    f: &FileEntry,
    may_truncate: bool,
) -> Result<u64, LoadError> {
    let path = dir.join(&f.name);
    let file = File::open(&path).map_err(|err| LoadError::Open { file: f.name.clone(), err })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Ok(0);
    }
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().map_err(|err| LoadError::Read { file: f.name.clone(), err })?;
    let max_bulk = shared.config.load().proto_max_bulk_len.max(0) as usize;
    if !head.starts_with(b"REDIS") {
        return replay(shared, client, &path, f, CommandReader::new(reader, max_bulk), may_truncate);
    }
    drop(reader);
    let data = std::fs::read(&path).map_err(|err| LoadError::Read { file: f.name.clone(), err })?;
    let loaded = {
        let mut store = shared.store.lock();
        crate::persist::snapshot::load_into(&mut store, &data, unix_ms())
            .map_err(|err| LoadError::Rdb { file: f.name.clone(), err })?
    };
    tracing::info!("Loaded the RDB part of the AOF file {}: {} keys, {} expired", f.name, loaded.keys, loaded.expired);
    let tail = data.get(loaded.len..).unwrap_or_default();
    replay(shared, client, &path, f, CommandReader::at(tail, max_bulk, loaded.len as u64), may_truncate)
}

/// Replays the commands `commands` reads from the file `f`.
fn replay<R: BufRead>(
    shared: &Shared,
    client: &mut Client,
    path: &Path,
    f: &FileEntry,
    mut commands: CommandReader<R>,
    may_truncate: bool,
) -> Result<u64, LoadError> {
    let config = shared.config.load_full();
    let mut store = shared.store.lock();
    let mut out = ReplyBuf::new(client.proto);
    let mut count = 0u64;
    // Where the open MULTI started: a file ending inside it is truncated
    // there, so a half transaction is never applied.
    let mut multi_at = None;
    loop {
        let before = commands.pos;
        let args = match commands.next_command() {
            Ok(Some(args)) => args,
            Ok(None) => match multi_at {
                None => break,
                Some(at) => {
                    drop(store);
                    return truncate_tail(path, f, at, may_truncate).map(|()| count);
                }
            },
            Err(ParseError::Truncated { valid }) => {
                drop(store);
                return truncate_tail(path, f, multi_at.unwrap_or(valid), may_truncate).map(|()| count);
            }
            Err(ParseError::Corrupt) => return Err(LoadError::Corrupt { file: f.name.clone() }),
        };
        if shared.commands.get(&args[0]).is_none() {
            let name = String::from_utf8_lossy(&args[0]).into_owned();
            return Err(LoadError::UnknownCommand { file: f.name.clone(), name });
        }
        if args[0].eq_ignore_ascii_case(b"multi") {
            multi_at = Some(before);
        } else if args[0].eq_ignore_ascii_case(b"exec") {
            multi_at = None;
        }
        let mut ctx = Ctx::new(&mut store, shared, &config, &mut *client, &mut out, unix_ms(), Mode::Exec);
        crate::dispatch::execute(&mut ctx, &args);
        out.buf.clear();
        count += 1;
    }
    Ok(count)
}

/// A truncated tail: cut it off (last file, `aof-load-truncated yes`) or
/// refuse.
fn truncate_tail(path: &Path, f: &FileEntry, valid: u64, allowed: bool) -> Result<(), LoadError> {
    if !allowed {
        return Err(LoadError::Truncated { file: f.name.clone() });
    }
    tracing::warn!("!!! Warning: short read while loading the AOF file {}!!!", f.name);
    tracing::warn!("!!! Truncating the AOF {} at offset {valid} !!!", f.name);
    let cut = std::fs::OpenOptions::new().write(true).open(path).and_then(|file| file.set_len(valid));
    if let Err(err) = cut {
        tracing::warn!("Error truncating the AOF file {}: {err}", f.name);
        return Err(LoadError::Truncated { file: f.name.clone() });
    }
    tracing::warn!("AOF {} loaded anyway because aof-load-truncated is enabled", f.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands_and_annotations() {
        let data = b"#TS:123\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n";
        let cmds = parse_all(data).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1], vec![Bytes::from("SET"), Bytes::from("a"), Bytes::new()]);
    }

    #[test]
    fn truncation_points_at_the_last_whole_command() {
        let whole = b"*1\r\n$4\r\nPING\r\n";
        for cut in 1..whole.len() {
            let mut data = whole.to_vec();
            data.extend_from_slice(&whole[..cut]);
            assert_eq!(parse_all(&data), Err(ParseError::Truncated { valid: whole.len() as u64 }), "cut {cut}");
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        for bad in [&b"SET a b\r\n"[..], b"*1\r\n+OK\r\n", b"*1\r\n$2\r\nabc\r\n", b"*x\r\n", b"*0\r\n"] {
            assert_eq!(parse_all(bad), Err(ParseError::Corrupt), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
