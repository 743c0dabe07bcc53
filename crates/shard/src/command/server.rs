//! server commands.

use super::Cmd;

pub const COMMANDS: &[Cmd] = &[];
