//! Follows the node's metadata view: each newer version is persisted, becomes the routing
//! layout, and decides which replicas this node holds (the runtime creates and removes
//! them). The cache is written before replicas are created, so after a crash the node starts
//! with at least the replicas it had begun to create (and removes any it no longer holds).

use std::sync::Arc;

use super::MetaView;
use crate::store::Store;

/// Opens links to nodes that joined since this node started.
fn connect_new_nodes(store: &Store, state: &super::MetaState) {
    for n in &state.nodes {
        if n.id == store.node_id() || n.state == super::NodeState::Removed {
            continue;
        }
        if let Some(t) = &store.raft().transport {
            t.add_peer(n.id, &n.addr);
        }
        if let Some(p) = store.proxy() {
            if let Err(e) = p.add_peer(n.id, &n.addr) {
                tracing::warn!(node = %n.name, error = %e, "cannot connect to a joined node");
            }
        }
    }
}

const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn run(view: Arc<MetaView>, store: Arc<Store>) {
    let mut rx = view.subscribe();
    let mut seen = 0;
    loop {
        let state = rx.borrow_and_update().clone();
        if state.version != seen {
            seen = state.version;
            match state.layout() {
                Ok(layout) => {
                    if let Err(e) = super::store_cache(store.engine(), &state) {
                        tracing::error!(error = %e, "cannot persist metadata");
                    }
                    store.set_layout(layout);
                    connect_new_nodes(&store, &state);
                    store
                        .raft()
                        .reconcile(state.shards.clone(), state.tombstones.clone())
                        .await;
                    tracing::debug!(version = state.version, "metadata applied");
                }
                Err(e) => {
                    tracing::error!(version = state.version, error = %e, "metadata has an invalid layout; ignored")
                }
            }
        }
        // Also every few seconds: a replica whose creation was deferred (its slots were
        // still owned by a local group that had not applied a split) is retried.
        match tokio::time::timeout(RECONCILE_EVERY, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                let state = view.current();
                store
                    .raft()
                    .reconcile(state.shards.clone(), state.tombstones.clone())
                    .await;
            }
        }
    }
}
