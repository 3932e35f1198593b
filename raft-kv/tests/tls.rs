//! TLS end to end: certificates from a test CA (rcgen), real clients (redis-py over `ssl`,
//! `redis-cli --tls`, Python's HTTPS client) and real node processes talking to each other
//! over TLS.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::cluster::Cluster;
use common::{run_redis_py, TestServer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files of one test PKI, in a temp dir.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    node_cert: PathBuf,
    node_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate from another CA (must be refused).
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-sign CA");
    (params, key, cert.pem())
}

fn leaf(issuer: &Issuer<'_, KeyPair>, names: &[&str], cn: &str) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| -> PathBuf {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        let (ca_params, ca_key, ca_pem) = ca("raftkv test CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let (node_cert, node_key) = leaf(&issuer, &["127.0.0.1", "localhost"], "raftkv node");
        let (client_cert, client_key) = leaf(&issuer, &["client"], "raftkv client");
        let (rogue_params, rogue_ca_key, _) = ca("rogue CA");
        let rogue = Issuer::new(rogue_params, rogue_ca_key);
        let (rogue_cert, rogue_key) = leaf(&rogue, &["client"], "rogue client");
        Pki {
            ca: write("ca.pem", &ca_pem),
            node_cert: write("node.pem", &node_cert),
            node_key: write("node.key", &node_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            rogue_cert: write("rogue.pem", &rogue_cert),
            rogue_key: write("rogue.key", &rogue_key),
            _dir: dir,
        }
    }

    fn flags(&self, auth_clients: &str) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--tls-cert-file".into(),
            p(&self.node_cert),
            "--tls-key-file".into(),
            p(&self.node_key),
            "--tls-ca-cert-file".into(),
            p(&self.ca),
            "--tls-auth-clients".into(),
            auth_clients.into(),
        ]
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The Python helpers the scripts below share: a TLS redis-py client and an HTTPS GET.
fn py_prelude(pki: &Pki) -> String {
    format!(
        r#"
import redis, ssl, time, urllib.request, socket
CA = {ca:?}
def client(port, cert=None, key=None):
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=CA,
                       ssl_certfile=cert, ssl_keyfile=key, socket_timeout=10)
def retry(f, secs=30):
    end = time.time() + secs
    while True:
        try:
            return f()
        except Exception as e:
            if time.time() > end:
                raise
            time.sleep(0.2)
def https_get(port, path):
    ctx = ssl.create_default_context(cafile=CA)
    with urllib.request.urlopen("https://127.0.0.1:%d%s" % (port, path), context=ctx, timeout=10) as r:
        return r.status, r.read().decode()
"#,
        ca = pki.ca.display().to_string()
    )
}

#[test]
fn a_tls_cluster_serves_clients_and_its_peers_over_tls() {
    let pki = Pki::new();
    let mut flags = pki.flags("optional");
    flags.extend(["--initial-shards".into(), "3".into()]);
    let c = Cluster::start(3, &strs(&flags));
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.redis_port).collect();
    let http: Vec<u16> = c.nodes.iter().map(|n| n.http_port).collect();
    let script = format!(
        r#"{prelude}
ports = {ports:?}
http = {http:?}
# Writes through node 1 reach shards led by the others: the proxy and Raft run over TLS.
a = client(ports[0])
for i in range(60):
    retry(lambda: a.set("k%d" % i, "v%d" % i))
for p in ports:
    b = client(p)
    for i in range(60):
        got = retry(lambda: b.get("k%d" % i))
        assert got == b"v%d" % i, (p, i, got)
# The admin port speaks HTTPS, verified against the CA.
status, body = https_get(http[1], "/status")
assert status == 200 and "groups" in body, body
# Plain TCP gets no service on either port.
for port in (ports[0], http[0]):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    try:
        data = s.recv(100)
    except (ConnectionResetError, socket.timeout):
        data = b""
    assert b"PONG" not in data, data
    s.close()
# A client that does not trust the node's CA is refused by the client itself.
try:
    redis.Redis(host="127.0.0.1", port=ports[0], ssl=True, ssl_cert_reqs="required",
                ssl_ca_certs={rogue:?}, socket_timeout=5).ping()
    raise SystemExit("a client with the wrong CA connected")
except redis.exceptions.ConnectionError:
    pass
print("ok")
"#,
        prelude = py_prelude(&pki),
        rogue = pki.rogue_cert.display().to_string(),
    );
    run_redis_py(&script);

    // `raft-kv ctl` over HTTPS.
    let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["ctl", "--addr", &format!("127.0.0.1:{}", http[0])])
        .arg("--tls-ca-cert-file")
        .arg(&pki.ca)
        .arg("nodes")
        .stdin(Stdio::null())
        .output()
        .expect("run raft-kv ctl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"n3\""),
        "ctl over TLS: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA it speaks plain HTTP to a TLS port: an error, not a hang.
    let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["ctl", "--addr", &format!("127.0.0.1:{}", http[0]), "nodes"])
        .stdin(Stdio::null())
        .output()
        .expect("run raft-kv ctl");
    assert!(!out.status.success());

    // redis-cli, built with TLS on Debian.
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&pki.ca)
        .args(["-p", &ports[2].to_string(), "GET", "k7"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "v7",
            "redis-cli --tls: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("note: redis-cli not installed; skipping its part"),
    }
}

#[test]
fn tls_auth_clients_yes_requires_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let s = TestServer::start_with(&strs(&pki.flags("yes")));
    let script = format!(
        r#"{prelude}
port = {port}
def refused(c):
    try:
        c.ping()
        return False
    except (redis.exceptions.ConnectionError, ssl.SSLError, OSError):
        return True
assert refused(client(port)), "a client without a certificate was served"
assert refused(client(port, {rogue:?}, {rogue_key:?})), "a certificate from another CA was accepted"
good = client(port, {cert:?}, {key:?})
assert retry(lambda: good.set("a", "1")) is True
assert good.get("a") == b"1"
# A big value crosses many TLS records both ways.
big = b"x" * (3 << 20)
good.set("big", big)
assert good.get("big") == big
# Pipelines keep their order over TLS.
p = good.pipeline(transaction=False)
for i in range(1000):
    p.incr("n")
assert p.execute() == list(range(1, 1001))
print("ok")
"#,
        prelude = py_prelude(&pki),
        port = s.port,
        rogue = pki.rogue_cert.display().to_string(),
        rogue_key = pki.rogue_key.display().to_string(),
        cert = pki.client_cert.display().to_string(),
        key = pki.client_key.display().to_string(),
    );
    run_redis_py(&script);
}

/// Runs the binary with `args`; its exit status and stderr (it must exit on its own).
fn start_expecting_refusal(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--port", &common::free_port().to_string()])
        .args(["--redis-port", &common::free_port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run raft-kv");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_tls_settings_stop_the_node_at_start_with_a_clear_message() {
    let pki = Pki::new();
    let cert = pki.node_cert.display().to_string();
    let (ok, err) = start_expecting_refusal(&["--tls-cert-file", &cert]);
    assert!(!ok && err.contains("--tls-key-file"), "{err}");
    // The key of another certificate.
    let mut flags = pki.flags("yes");
    flags[3] = pki.client_key.display().to_string();
    let (ok, err) = start_expecting_refusal(&strs(&flags));
    assert!(!ok && err.contains("--tls-cert-file"), "{err}");
    // A CA file that holds no certificate.
    let mut flags = pki.flags("yes");
    flags[5] = pki.node_key.display().to_string();
    let (ok, err) = start_expecting_refusal(&strs(&flags));
    assert!(!ok && err.contains("--tls-ca-cert-file"), "{err}");
}
