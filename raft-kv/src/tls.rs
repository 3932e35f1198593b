//! TLS for every connection a node makes or takes, when certificates are given
//! (`--tls-cert-file`, `--tls-key-file`, `--tls-ca-cert-file`, all three or none):
//!
//! - the Redis port speaks TLS only (as a Redis with `port 0`, `tls-port N`); client
//!   certificates are required, optional or not asked for as `--tls-auth-clients` says
//!   (Redis' `tls-auth-clients`, default `yes`);
//! - `--port` (admin API, metrics and the node-to-node gRPC) speaks TLS only; client
//!   certificates are verified when presented but not required, so probes and scrapers need
//!   only the CA. Peers are authorised by the cluster secret, not by their certificate;
//! - a node dialling a peer verifies the peer's certificate against the CA (for the address
//!   it dials: an IP SAN for IP addresses) and presents its own.
//!
//! One crypto provider, ring: tonic's `tls-ring` uses it for the dialling side.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A client that has not finished its handshake by then is dropped (a peer that opens a
/// connection and sends nothing must not hold a task forever).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Redis' `tls-auth-clients`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthClients {
    /// A client must present a certificate signed by the CA.
    Yes,
    /// Client certificates are not asked for.
    No,
    /// A certificate, if presented, must be signed by the CA.
    Optional,
}

/// The certificate files of `Config`.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub auth_clients: AuthClients,
}

/// What a node needs to take and make TLS connections.
#[derive(Clone)]
pub struct Tls {
    /// For the Redis port (client certificates per `--tls-auth-clients`).
    pub redis: TlsAcceptor,
    /// For `--port` (client certificates checked when presented).
    pub node: TlsAcceptor,
    /// For dialling peers.
    pub dial: ClientTlsConfig,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

fn certs(pem: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not a PEM certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate (expected PEM \"BEGIN CERTIFICATE\")",
            path.display()
        ));
    }
    Ok(certs)
}

/// The CA certificates of `--tls-ca-cert-file` as a root store.
fn roots(pem: &[u8], path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in certs(pem, path, "--tls-ca-cert-file")? {
        roots
            .add(c)
            .map_err(|e| format!("--tls-ca-cert-file {}: {e}", path.display()))?;
    }
    Ok(roots)
}

impl Tls {
    /// Loads and checks the files; any problem is a startup error naming the file.
    pub fn load(files: &TlsFiles) -> Result<Tls, String> {
        let cert_pem = read(&files.cert, "--tls-cert-file")?;
        let key_pem = read(&files.key, "--tls-key-file")?;
        let ca_pem = read(&files.ca, "--tls-ca-cert-file")?;
        let chain = certs(&cert_pem, &files.cert, "--tls-cert-file")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            format!(
                "--tls-key-file {}: not a PEM private key: {e}",
                files.key.display()
            )
        })?;
        let roots = Arc::new(roots(&ca_pem, &files.ca)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let acceptor = |auth: AuthClients, alpn: &[&[u8]]| -> Result<TlsAcceptor, String> {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?;
            let builder = match auth {
                AuthClients::No => builder.with_no_client_auth(),
                AuthClients::Yes | AuthClients::Optional => {
                    let v = WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    );
                    let v = if auth == AuthClients::Optional {
                        v.allow_unauthenticated()
                    } else {
                        v
                    };
                    builder.with_client_cert_verifier(
                        v.build().map_err(|e| format!("--tls-ca-cert-file: {e}"))?,
                    )
                }
            };
            let mut cfg = builder
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|e| {
                    format!(
                        "--tls-cert-file {} / --tls-key-file {}: {e}",
                        files.cert.display(),
                        files.key.display()
                    )
                })?;
            cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(TlsAcceptor::from(Arc::new(cfg)))
        };
        Ok(Tls {
            // RESP has no ALPN name.
            redis: acceptor(files.auth_clients, &[])?,
            // gRPC needs HTTP/2 by ALPN; HTTP/1.1 serves curl and scrapers.
            node: acceptor(AuthClients::Optional, &[b"h2", b"http/1.1"])?,
            dial: ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .identity(Identity::from_pem(cert_pem, key_pem)),
        })
    }
}

/// A client configuration that trusts the CAs in `ca` (for `raft-kv ctl`).
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = roots(&read(ca, "--tls-ca-cert-file")?, ca)?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Completes the server side of a handshake, bounded by `HANDSHAKE_TIMEOUT`.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

/// `--port` over TLS, for `axum::serve`: handshakes run in their own tasks, so one slow
/// client does not hold up the others' accepts.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed on the admin port");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(s) = accept(&acceptor, stream, peer).await {
                        let _ = tx.send((s, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let files = |cert: &Path, key: &Path, ca: &Path| TlsFiles {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
            auth_clients: AuthClients::Yes,
        };
        let missing = dir.path().join("missing.pem");
        let err = Tls::load(&files(&missing, &junk, &junk))
            .err()
            .expect("refused");
        assert!(
            err.contains("--tls-cert-file") && err.contains("missing.pem"),
            "{err}"
        );
        let err = Tls::load(&files(&junk, &junk, &junk))
            .err()
            .expect("refused");
        assert!(err.contains("no certificate"), "{err}");
    }
}
