//! Commands of this family (being implemented; see FEATURES.md).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
