//! A node whose stores are found corrupt sets them aside and rebuilds its replicas from its
//! peers, instead of serving, or replaying, state with a hole in it.
//!
//! Order matters for safety. The `REBUILD` marker is written (synced) before the stores
//! move, and it stays until the metadata has dropped this node from every group it was in
//! (`meta::rebuild`). While it exists the node creates no replica: an empty replica that
//! came back as a voter could vote for a candidate missing entries it had acknowledged
//! (amnesia), losing committed writes. Each group takes the node back only through a
//! membership change: out, then in again as an empty learner that gets a snapshot.
//!
//! The corrupt stores are kept in `quarantine-<unix seconds>/` for inspection; deleting
//! that directory is safe once the rebuild is done.

use std::io::Write as _;
use std::path::Path;

const MARKER: &str = "REBUILD";
/// The stores a rebuild starts over: the state machine and the Raft log.
const STORES: [&str; 2] = ["kv", "raft"];

/// Why a store could not be opened; `corrupt` when its content failed a check (checksum,
/// decoding, a hole in a log), as opposed to an I/O error or a bad setting.
#[derive(Debug)]
pub struct StoreError {
    pub corrupt: bool,
    pub text: String,
}

impl StoreError {
    /// Classifies an error text: RocksDB reports `Corruption: ...`, this crate's decoders
    /// `corrupt ...`.
    pub fn from_text(text: String) -> StoreError {
        let corrupt = text.contains("Corruption") || text.contains("corrupt ");
        StoreError { corrupt, text }
    }

    pub fn corrupt(text: String) -> StoreError {
        StoreError {
            corrupt: true,
            text,
        }
    }
}

/// A data directory being rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Names this loss in the metadata (`MetaCmd::RebuildNode`).
    pub token: String,
    /// The corrupt stores are out of the way.
    pub moved: bool,
    pub reason: String,
}

impl Marker {
    fn encode(&self) -> String {
        format!(
            "token={}\nmoved={}\nreason={}\n",
            self.token,
            u8::from(self.moved),
            self.reason.replace('\n', " ")
        )
    }

    fn decode(text: &str) -> Option<Marker> {
        let mut token = None;
        let mut moved = None;
        let mut reason = String::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("token=") {
                token = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("moved=") {
                moved = Some(v == "1");
            } else if let Some(v) = line.strip_prefix("reason=") {
                reason = v.to_string();
            }
        }
        Some(Marker {
            token: token.filter(|t| !t.is_empty())?,
            moved: moved?,
            reason,
        })
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// The marker of a directory being rebuilt, if any.
pub fn load_marker(dir: &Path) -> Result<Option<Marker>, String> {
    let path = dir.join(MARKER);
    match std::fs::read_to_string(&path) {
        Ok(text) => Marker::decode(&text).map(Some).ok_or_else(|| {
            format!(
                "{} is unreadable; remove it only if no rebuild is under way",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("cannot read", &path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

/// Writes the marker atomically and durably (a temporary file renamed over it).
fn write_marker(dir: &Path, m: &Marker) -> Result<(), String> {
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
    f.write_all(m.encode().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, dir.join(MARKER)).map_err(|e| io("cannot rename", &tmp, e))?;
    sync_dir(dir)
}

/// Removes the marker: every group has dropped this node, so it may hold replicas again.
pub fn clear_marker(dir: &Path) -> Result<(), String> {
    let path = dir.join(MARKER);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", &path, e)),
    }
}

fn new_token() -> String {
    (0..16)
        .map(|_| char::from_digit(u32::from(rand::random::<u8>() % 16), 16).unwrap_or('0'))
        .collect()
}

/// Marks `dir` for a rebuild (corruption found at run time): the next start sets the
/// stores aside. A mark already there is kept.
pub fn mark(dir: &Path, reason: &str) -> Result<(), String> {
    if load_marker(dir)?.is_some() {
        return Ok(());
    }
    write_marker(
        dir,
        &Marker {
            token: new_token(),
            moved: false,
            reason: reason.to_string(),
        },
    )
}

/// Marks `dir` for a rebuild and moves its stores into `quarantine-<secs>/`; returns the
/// rebuild's token (a rebuild already marked keeps its token: it is not registered yet).
pub fn set_aside(dir: &Path, reason: &str) -> Result<String, String> {
    let mut marker = match load_marker(dir)? {
        Some(m) => Marker { moved: false, ..m },
        None => Marker {
            token: new_token(),
            moved: false,
            reason: reason.to_string(),
        },
    };
    write_marker(dir, &marker)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = dir.join(format!("quarantine-{secs}"));
    let mut n = 0;
    while aside.exists() {
        n += 1;
        aside = dir.join(format!("quarantine-{secs}-{n}"));
    }
    std::fs::create_dir_all(&aside).map_err(|e| io("cannot create", &aside, e))?;
    for store in STORES {
        let from = dir.join(store);
        if from.exists() {
            std::fs::rename(&from, aside.join(store)).map_err(|e| io("cannot move", &from, e))?;
        }
    }
    sync_dir(&aside)?;
    sync_dir(dir)?;
    marker.moved = true;
    write_marker(dir, &marker)?;
    tracing::error!(
        kept = %aside.display(),
        reason = %marker.reason,
        "this node's stores were set aside as corrupt; its replicas will be rebuilt from its peers"
    );
    Ok(marker.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_what_failed() {
        assert!(StoreError::from_text("Corruption: block checksum mismatch".into()).corrupt);
        assert!(StoreError::from_text("corrupt raft log entry in group 3: x".into()).corrupt);
        assert!(!StoreError::from_text("IO error: No space left on device".into()).corrupt);
        assert!(!StoreError::from_text("Invalid argument: bad option".into()).corrupt);
    }

    #[test]
    fn stores_are_set_aside_once_and_the_marker_survives_until_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        for s in STORES {
            std::fs::create_dir_all(dir.path().join(s)).expect("mkdir");
            std::fs::write(dir.path().join(s).join("CURRENT"), s).expect("write");
        }
        std::fs::write(dir.path().join("IDENTITY"), "node_id=n1\n").expect("identity");
        assert_eq!(load_marker(dir.path()), Ok(None));
        let token = set_aside(dir.path(), "Corruption: bad\nblock").expect("set aside");
        assert_eq!(token.len(), 16);
        let m = load_marker(dir.path()).expect("load").expect("marker");
        assert!(m.moved);
        assert_eq!(m.reason, "Corruption: bad block");
        // The stores moved, the identity stayed.
        assert!(!dir.path().join("kv").exists() && !dir.path().join("raft").exists());
        assert!(dir.path().join("IDENTITY").exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("quarantine-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].path().join("raft/CURRENT").exists());
        // Corrupt again before the rebuild is registered: the same token, the new stores
        // set aside too.
        std::fs::create_dir_all(dir.path().join("kv")).expect("new kv");
        assert_eq!(set_aside(dir.path(), "other").as_ref(), Ok(&token));
        assert!(!dir.path().join("kv").exists());
        clear_marker(dir.path()).expect("clear");
        assert_eq!(load_marker(dir.path()), Ok(None));
        clear_marker(dir.path()).expect("clearing twice is fine");
    }

    #[test]
    fn a_move_cut_short_is_finished_with_the_same_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("raft")).expect("mkdir");
        let m = Marker {
            token: "abc".into(),
            moved: false,
            reason: "r".into(),
        };
        write_marker(dir.path(), &m).expect("marker");
        mark(dir.path(), "again").expect("mark");
        assert_eq!(load_marker(dir.path()), Ok(Some(m)), "a mark is kept");
        assert_eq!(set_aside(dir.path(), "ignored"), Ok("abc".to_string()));
        assert!(!dir.path().join("raft").exists());
        let m = load_marker(dir.path()).expect("load").expect("marker");
        assert!(m.moved && m.reason == "r");
        std::fs::write(dir.path().join(MARKER), "garbage").expect("write");
        assert!(load_marker(dir.path()).is_err());
    }
}
