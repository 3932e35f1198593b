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
