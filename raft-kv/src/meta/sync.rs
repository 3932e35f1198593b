//! Follows the node's metadata view: each newer version is persisted, becomes the routing
//! layout, and decides which replicas this node holds (the runtime creates and removes
//! them). The cache is written before replicas are created, so after a crash the node starts
//! with at least the replicas it had begun to create (and removes any it no longer holds).

use std::sync::Arc;

use super::{MetaMachine, MetaState, MetaView, META_GROUP};
use crate::routing::ShardSpec;
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

/// Creates this node's metadata replica when the metadata lists it (a learner being added:
/// it starts empty and gets a snapshot), removes it once the metadata no longer does.
async fn follow_meta(view: &Arc<MetaView>, store: &Store, state: &MetaState) {
    let me = store.node_id();
    let listed = state.meta_replicas.contains(&me) || state.meta_learners.contains(&me);
    let hosted = store.raft().hosts(META_GROUP);
    if listed && !hosted {
        let machine = match MetaMachine::load(store.engine(), state.clone(), view.clone()) {
            Ok(m) => m.await_snapshot(),
            Err(e) => {
                tracing::error!(error = %e, "cannot create the metadata replica");
                return;
            }
        };
        let spec = ShardSpec {
            id: META_GROUP,
            first_slot: 0,
            last_slot: 0,
            epoch: 0,
            replicas: state.meta_replicas.clone(),
            learners: state.meta_learners.clone(),
            conf_ver: 0,
            // The group's voters as the metadata knows them, never this node: it learns the
            // real configuration from the leader's snapshot.
            bootstrap: state
                .meta_replicas
                .iter()
                .copied()
                .filter(|n| *n != me)
                .collect(),
        };
        store.raft().host_meta(Some((spec, machine))).await;
    } else if !listed && hosted {
        tracing::info!("this node no longer replicates the metadata");
        store.raft().host_meta(None).await;
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
                    if !view.replicas_held() {
                        store
                            .raft()
                            .reconcile(state.shards.clone(), state.tombstones.clone())
                            .await;
                        follow_meta(&view, &store, &state).await;
                    }
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
            Err(_) if view.replicas_held() => {}
            Err(_) => {
                let state = view.current();
                store
                    .raft()
                    .reconcile(state.shards.clone(), state.tombstones.clone())
                    .await;
                follow_meta(&view, &store, &state).await;
            }
        }
    }
}
