//! CLIENT PAUSE / UNPAUSE: holding other clients' commands (all of them, or
//! only writes) until a deadline.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use slotway_slots::commands::flags;

use super::super::{is, Ctx};
use crate::error::{CmdError, CmdResult};

/// Who holds writes besides CLIENT PAUSE (Redis's pause purposes): a
/// SHUTDOWN waiting for replicas and a FAILOVER. Each is released on its
/// own; CLIENT UNPAUSE does not end them.
pub const BY_SHUTDOWN: u8 = 1;
pub const BY_FAILOVER: u8 = 2;

/// How long a held session sleeps before it looks again, so a release it
/// missed (between its check and its wait) costs at most this much.
const RECHECK: Duration = Duration::from_millis(100);

/// Pause state, shared by every session. Sessions check it before running
/// each command (an atomic load while nothing is paused) and wait outside
/// the keyspace lock.
#[derive(Default)]
pub struct Pause {
    active: AtomicBool,
    /// CLIENT PAUSE: end of the pause and whether it holds every command
    /// (ALL) or only writes (WRITE). `active` changes only under this lock.
    state: Mutex<Option<(Instant, bool)>>,
    /// `BY_*` bits: the server holds writes until it releases them.
    server_holds: AtomicU8,
    resumed: tokio::sync::Notify,
}

impl Pause {
    /// A new pause extends the current one and can only make it stricter,
    /// as in Redis.
    pub fn start(&self, until: Instant, all: bool) {
        let mut st = self.state.lock();
        let (end, all) = match *st {
            Some((e, a)) if e > Instant::now() => (e.max(until), a || all),
            _ => (until, all),
        };
        *st = Some((end, all));
        self.active.store(true, Ordering::Release);
    }

    /// CLIENT UNPAUSE: ends the client pause, not the server's holds.
    pub fn stop(&self) {
        let mut st = self.state.lock();
        *st = None;
        self.active.store(self.server_holds.load(Ordering::Acquire) != 0, Ordering::Release);
        drop(st);
        self.resumed.notify_waiters();
    }

    /// Holds writes for `by` (a `BY_*` bit) until [`Pause::release_writes`].
    pub fn hold_writes(&self, by: u8) {
        let _st = self.state.lock();
        self.server_holds.fetch_or(by, Ordering::AcqRel);
        self.active.store(true, Ordering::Release);
    }

    pub fn release_writes(&self, by: u8) {
        let st = self.state.lock();
        let left = self.server_holds.fetch_and(!by, Ordering::AcqRel) & !by;
        let client = st.is_some_and(|(end, _)| end > Instant::now());
        self.active.store(left != 0 || client, Ordering::Release);
        drop(st);
        self.resumed.notify_waiters();
    }

    /// Whether a SHUTDOWN or FAILOVER holds writes.
    pub fn held_by_server(&self) -> bool {
        self.server_holds.load(Ordering::Acquire) != 0
    }

    /// Whether writes are held right now, by anyone (Redis's "clients
    /// are paused" test for what the server itself would write).
    pub fn writes_held(&self) -> bool {
        self.holds(true).is_some()
    }

    /// Until when a request must wait, or `None` to run it now;
    /// `may_write` is asked only while a pause is on.
    pub fn holds_request(&self, may_write: impl FnOnce() -> bool) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        self.holds(may_write())
    }

    /// When a command of this kind must wait until, or `None` to run now.
    /// A server hold has no end of its own: the wait is re-checked.
    pub fn holds(&self, may_write: bool) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut st = self.state.lock();
        let now = Instant::now();
        let client = match *st {
            Some((end, all)) if end > now => Some((end, all)),
            _ => {
                *st = None;
                None
            }
        };
        let server = self.server_holds.load(Ordering::Acquire) != 0;
        if client.is_none() && !server {
            self.active.store(false, Ordering::Release);
            return None;
        }
        if server && may_write {
            return Some(now + RECHECK);
        }
        client.and_then(|(end, all)| (all || may_write).then_some(end))
    }

    /// Sleeps until `until` or a release, whichever comes first.
    pub async fn wait(&self, until: Instant) {
        let resumed = self.resumed.notified();
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = resumed => {}
        }
    }
}

/// Whether a request is held by a WRITE pause: writes and the commands
/// Redis marks as possibly replicating (PUBLISH, scripts, PFCOUNT), and an
/// EXEC whose transaction holds one.
pub fn may_write(shared: &crate::server::Shared, args: &[Bytes], client: &crate::client::Client) -> bool {
    let spec = match shared.commands.find(args) {
        super::super::Lookup::Found(r) => r.spec,
        _ => return false,
    };
    if spec.has(flags::WRITE)
        || matches!(spec.name, "publish" | "spublish" | "eval" | "evalsha" | "fcall" | "pfcount" | "script|load")
    {
        return true;
    }
    spec.name == "exec" && client.multi.as_ref().is_some_and(|q| q.iter().any(|a| may_write(shared, a, client)))
}

pub(super) fn pause(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ms = super::super::parse_i64(&args[2])
        .map_err(|_| CmdError::err("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("ERR timeout is negative"));
    }
    let all = match args.len() {
        3 => true,
        4 if is(&args[3], "all") => true,
        4 if is(&args[3], "write") => false,
        4 => return Err(CmdError::err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        _ => return Err(crate::command::subcommand_syntax(args)),
    };
    let until = Instant::now() + Duration::from_millis(ms as u64);
    ctx.shared.pause.start(until, all);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn pause_validation_and_state() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT PAUSE x"), "-ERR timeout is not an integer or out of range\r\n");
        assert_eq!(t.cmd("CLIENT PAUSE -1"), "-ERR timeout is negative\r\n");
        assert_eq!(t.cmd("CLIENT PAUSE 10 FOO"), "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n");
        assert_eq!(
            t.cmd("client pause 10 all x"),
            "-ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.\r\n"
        );
        assert_eq!(t.cmd("CLIENT PAUSE 100000 WRITE"), "+OK\r\n");
        assert!(t.shared.pause.holds(true).is_some());
        assert!(t.shared.pause.holds(false).is_none());
        assert_eq!(t.cmd("CLIENT UNPAUSE"), "+OK\r\n");
        assert!(t.shared.pause.holds(true).is_none());
    }

    #[test]
    fn server_holds_outlast_client_unpause() {
        use super::{BY_FAILOVER, BY_SHUTDOWN};
        let mut t = TestServer::new();
        t.shared.pause.hold_writes(BY_SHUTDOWN);
        t.shared.pause.hold_writes(BY_FAILOVER);
        assert_eq!(t.cmd("CLIENT UNPAUSE"), "+OK\r\n");
        assert!(t.shared.pause.holds(true).is_some());
        assert!(t.shared.pause.holds(false).is_none(), "reads run");
        t.shared.pause.release_writes(BY_SHUTDOWN);
        assert!(t.shared.pause.writes_held(), "the failover still holds");
        t.shared.pause.release_writes(BY_FAILOVER);
        assert!(!t.shared.pause.writes_held());
    }
}
