//! Durability: every acknowledged write survives `kill -9` and a restart on the same directory.

mod common;

use common::{resp, TestServer};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let mut srv = TestServer::start_in(&dir, &[]);

    let mut raw = srv.raw();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        input.extend(resp(&[
            b"SET",
            format!("key:{i}").as_bytes(),
            format!("value:{i}").as_bytes(),
        ]));
        expected.extend_from_slice(b"+OK\r\n");
    }
    // A binary key and an overwritten key.
    input.extend(resp(&[b"SET", b"\x00bin\xff", b"\r\n"]));
    input.extend(resp(&[b"SET", b"key:0", b"overwritten"]));
    expected.extend_from_slice(b"+OK\r\n+OK\r\n");
    assert_eq!(raw.roundtrip(&input, &expected), expected);
    drop(raw);

    srv.restart();

    let mut raw = srv.raw();
    let expected = b"$11\r\noverwritten\r\n";
    assert_eq!(
        raw.roundtrip(&resp(&[b"GET", b"key:0"]), expected),
        expected
    );
    for i in 1..300 {
        let v = format!("value:{i}");
        let expected = format!("${}\r\n{v}\r\n", v.len());
        assert_eq!(
            raw.roundtrip(
                &resp(&[b"GET", format!("key:{i}").as_bytes()]),
                expected.as_bytes()
            ),
            expected.as_bytes()
        );
    }
    let expected = b"$2\r\n\r\n\r\n";
    assert_eq!(
        raw.roundtrip(&resp(&[b"GET", b"\x00bin\xff"]), expected),
        expected
    );
    // And the restarted node takes writes.
    assert_eq!(
        raw.roundtrip(b"SET after restart\r\n", b"+OK\r\n"),
        b"+OK\r\n"
    );
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A full disk stops the node (fail-stop: it never acknowledges a write it could not make
/// durable, and never retries an fsync); once there is room again it restarts with every
/// acknowledged write.
#[test]
fn a_full_disk_stops_the_node_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("mkdir");
    if !mount_tmpfs(&dir, "48m") {
        eprintln!("skipped: mounting a small tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    }
    let _mount = Mount(dir.clone());
    let mut srv = TestServer::start_in(&dir, &[]);
    let mut raw = srv.raw();
    let value = vec![b'v'; 64 * 1024];
    let mut acked = Vec::new();
    let mut failed = false;
    for i in 0..2000 {
        let key = format!("key:{i}");
        raw.send(&resp(&[b"SET", key.as_bytes(), &value]));
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| raw.read_reply()));
        match got {
            Ok(r) if r == b"+OK\r\n" => acked.push(key),
            _ => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "48 MiB took 2000 x 64 KiB without an error");
    assert!(
        acked.len() > 10,
        "only {} writes before the disk filled",
        acked.len()
    );
    let status = srv.wait_exit(std::time::Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "a node with a full disk kept running ({status:?})"
    );

    // Room again: every acknowledged write is there.
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(&dir)
        .status()
        .expect("remount");
    assert!(remount.success());
    srv.restart();
    let mut raw = srv.raw();
    for key in &acked {
        let got = raw.call(&resp(&[b"STRLEN", key.as_bytes()]));
        assert_eq!(got, b":65536\r\n", "{key} after the restart");
    }
    assert_eq!(raw.call(b"SET after full\r\n"), b"+OK\r\n");
}
