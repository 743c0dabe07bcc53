//! The command table (interim: a handful of commands until the full Redis
//! 7.0 table lands).

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
}

pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
}

use flags::*;

static TABLE: &[CommandSpec] = &[
    CommandSpec { name: "ping", arity: -1, flags: FAST, first_key: 0, last_key: 0, step: 0 },
    CommandSpec { name: "get", arity: 2, flags: READONLY | FAST, first_key: 1, last_key: 1, step: 1 },
    CommandSpec { name: "set", arity: -3, flags: WRITE | DENYOOM, first_key: 1, last_key: 1, step: 1 },
    CommandSpec { name: "echo", arity: 2, flags: FAST, first_key: 0, last_key: 0, step: 0 },
    CommandSpec { name: "quit", arity: -1, flags: FAST | NO_AUTH, first_key: 0, last_key: 0, step: 0 },
    CommandSpec { name: "select", arity: 2, flags: FAST, first_key: 0, last_key: 0, step: 0 },
    CommandSpec { name: "del", arity: -2, flags: WRITE, first_key: 1, last_key: -1, step: 1 },
];

pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    TABLE.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

pub fn all() -> &'static [CommandSpec] {
    TABLE
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Indices of the key arguments (legacy first/last/step range only).
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 { argc as i32 + self.last_key } else { self.last_key };
        (self.first_key..=last.min(argc as i32 - 1)).step_by(self.step.max(1) as usize).map(|i| i as usize).collect()
    }
}
