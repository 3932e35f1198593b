//! Endpoints for dialling a peer's `--port`: plain HTTP/2, or TLS when the node has
//! certificates (`crate::tls`). Every node-to-node client (Raft streams, snapshots, the
//! proxy, `--join`) dials through one `Dialer`, so none can skip TLS by accident.

use tonic::transport::{ClientTlsConfig, Endpoint};

#[derive(Clone, Default)]
pub struct Dialer {
    tls: Option<ClientTlsConfig>,
}

impl Dialer {
    pub fn new(tls: Option<ClientTlsConfig>) -> Dialer {
        Dialer { tls }
    }

    /// An endpoint for `addr` (`host:port`); the caller sets timeouts and connects.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad peer address {addr}: {e}"))?;
        match &self.tls {
            Some(tls) => ep
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS settings for {addr}: {e}")),
            None => Ok(ep),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_schemes() {
        let plain = Dialer::default().endpoint("127.0.0.1:5001").expect("plain");
        assert_eq!(plain.uri().scheme_str(), Some("http"));
        let tls = Dialer::new(Some(ClientTlsConfig::new()))
            .endpoint("127.0.0.1:5001")
            .expect("tls");
        assert_eq!(tls.uri().scheme_str(), Some("https"));
        assert!(Dialer::default().endpoint("not an address").is_err());
    }
}
