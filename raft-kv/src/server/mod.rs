//! The Redis-protocol server: listener, connections, and connection-level commands.

use crate::config::Config;

/// Runs the node until it is told to stop.
pub fn run(_config: Config) -> Result<(), String> {
    Err("server not implemented yet".into())
}
