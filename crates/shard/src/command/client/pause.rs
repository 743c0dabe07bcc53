//! CLIENT PAUSE / UNPAUSE: holding other clients' commands (all of them, or
//! only writes) until a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use slotway_slots::commands::flags;

use super::super::{is, Ctx};
use crate::error::{CmdError, CmdResult};

/// CLIENT PAUSE state, shared by every session. Sessions check it before
/// running each command (an atomic load while nothing is paused) and wait
/// outside the keyspace lock.
#[derive(Default)]
pub struct Pause {
    active: AtomicBool,
    /// End of the pause and whether it holds every command (ALL) or only
    /// writes (WRITE).
    state: Mutex<Option<(Instant, bool)>>,
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

    pub fn stop(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Release);
        self.resumed.notify_waiters();
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
    pub fn holds(&self, may_write: bool) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut st = self.state.lock();
        match *st {
            Some((end, all)) if end > Instant::now() => (all || may_write).then_some(end),
            _ => {
                *st = None;
                self.active.store(false, Ordering::Release);
                None
            }
        }
    }

    /// Sleeps until `until` or an UNPAUSE, whichever comes first.
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
}
