//! set commands.

use super::Cmd;

pub const COMMANDS: &[Cmd] = &[];
