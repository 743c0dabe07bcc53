//! The one place that forks: the child process of a background save, a
//! full resync's snapshot, or an AOF rewrite.
//!
//! Why fork: a child gets a copy-on-write image of the keyspace as it was
//! at the instant of the fork, for free, while the parent goes on serving
//! and changing it. The caller forks while holding the keyspace lock, so
//! the image is consistent (no command is half-applied).
//!
//! Only the forking thread exists in the child. It must not touch anything
//! another thread may have held at the fork: no tokio, no tracing, no
//! locks other than the keyspace guard it already owns. It allocates (the
//! allocator, jemalloc, re-arms its own locks around fork), writes a file,
//! and leaves with `_exit`, skipping the parent's atexit handlers and
//! destructors.
#![allow(unsafe_code)]

use nix::unistd::{ForkResult, Pid};

/// Runs `child` in a forked process, which exits with its return value (1
/// if it panics). Returns the child's pid in the parent.
pub fn spawn(child: impl FnOnce() -> i32) -> std::io::Result<Pid> {
    // SAFETY: in the child only this thread runs; `child` is restricted
    // (see the module doc) to what is safe after a fork in a multithreaded
    // process, and the child never returns from here: it ends in `_exit`.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(child),
        Ok(ForkResult::Child) => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
            // SAFETY: `_exit` ends the process at once; it is async-signal
            // safe and takes no locks.
            unsafe { nix::libc::_exit(code) }
        }
        Err(e) => Err(e.into()),
    }
}
