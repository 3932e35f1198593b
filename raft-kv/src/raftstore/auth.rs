//! The cluster secret: when configured (`--cluster-secret-file` or `RAFTKV_CLUSTER_SECRET`),
//! every node-to-node gRPC request (Raft streams, snapshots, proxied commands) and the admin
//! HTTP routes must carry it, so a process that can reach `--port` but does not know the
//! secret can neither inject Raft messages nor run commands. Health, readiness and metrics
//! stay open for probes and scrapers.

use std::sync::Arc;

use tonic::{Request, Status};

/// gRPC metadata key carrying the secret.
pub const GRPC_HEADER: &str = "x-raftkv-secret";

#[derive(Clone, Default)]
pub struct ClusterSecret(Option<Arc<str>>);

impl ClusterSecret {
    pub fn new(secret: Option<String>) -> ClusterSecret {
        ClusterSecret(secret.filter(|s| !s.is_empty()).map(Arc::from))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Adds the secret to an outgoing request.
    pub fn attach<T>(&self, req: &mut Request<T>) {
        if let Some(s) = &self.0 {
            if let Ok(v) = s.parse() {
                req.metadata_mut().insert(GRPC_HEADER, v);
            }
        }
    }

    /// Accepts an incoming request that carries the secret (or any, if none is set).
    pub fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let given = req
            .metadata()
            .get(GRPC_HEADER)
            .and_then(|v| v.to_str().ok());
        if self.matches(given) {
            Ok(())
        } else {
            Err(Status::unauthenticated("missing or wrong cluster secret"))
        }
    }

    /// Whether `given` is the secret (always true when none is set). Compares in constant
    /// time for equal lengths, so the secret cannot be guessed byte by byte from timings.
    pub fn matches(&self, given: Option<&str>) -> bool {
        let Some(want) = &self.0 else {
            return true;
        };
        let Some(given) = given else {
            return false;
        };
        let (a, b) = (want.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_the_secret_only_when_one_is_set() {
        let open = ClusterSecret::new(None);
        assert!(open.check(&Request::new(())).is_ok());
        assert!(!ClusterSecret::new(Some(String::new())).is_set());
        let s = ClusterSecret::new(Some("s3cret".into()));
        assert!(s.check(&Request::new(())).is_err());
        let mut req = Request::new(());
        s.attach(&mut req);
        assert!(s.check(&req).is_ok());
        let mut wrong = Request::new(());
        ClusterSecret::new(Some("other!".into())).attach(&mut wrong);
        assert_eq!(
            s.check(&wrong).map_err(|e| e.code()),
            Err(tonic::Code::Unauthenticated)
        );
        assert!(!s.matches(Some("s3cre")));
    }
}
