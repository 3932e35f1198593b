//! A node that set its corrupt stores aside (`raftstore::quarantine`) asks the metadata to
//! rebuild its replicas (`MetaCmd::RebuildNode`), and holds none until that is applied: from
//! then on every group it was in has dropped it, and takes it back only as an empty learner
//! (`driver::rebuild`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::Cluster;
use super::MetaCmd;
use crate::raftstore::quarantine;
use crate::store::now_ms;

const RETRY: Duration = Duration::from_millis(500);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Runs until the metadata holds this node's rebuild `token`.
pub async fn run(c: Arc<Cluster>, data_dir: PathBuf, token: String) {
    let me = c.store.node_id();
    let mut logged: Option<(String, Instant)> = None;
    loop {
        let state = c.view.current();
        if state.rebuilds.get(&me) == Some(&token) {
            // The view that dropped this node is persisted before the marker goes: a
            // restart must never start from one that still lists it in groups it forgot.
            match super::store_cache(c.store.engine(), &state)
                .and_then(|()| quarantine::clear_marker(&data_dir))
            {
                Ok(()) => {
                    c.view.hold_replicas(false);
                    c.store
                        .raft()
                        .reconcile(state.shards.clone(), state.tombstones.clone())
                        .await;
                    tracing::info!(
                        version = state.version,
                        "every group dropped this node's lost replicas; they come back empty and catch up"
                    );
                    return;
                }
                Err(e) => tracing::error!(error = %e, "cannot end the rebuild hold; retrying"),
            }
        } else {
            let cmd = MetaCmd::RebuildNode {
                node: me,
                token: token.clone(),
                now_ms: now_ms(),
            };
            match c.propose(&cmd).await {
                Ok(0) => {}
                Ok(groups) => {
                    tracing::info!(groups, "the cluster is rebuilding this node's replicas")
                }
                Err(e) => {
                    let quiet = logged
                        .as_ref()
                        .is_some_and(|(last, at)| *last == e && at.elapsed() < LOG_EVERY);
                    if !quiet {
                        tracing::warn!(error = %e, "rebuild not registered yet; retrying");
                        logged = Some((e, Instant::now()));
                    }
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}
