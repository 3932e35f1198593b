//! Named crash points for fault tests (the `failpoints` feature, on by default; build with
//! `--no-default-features` to compile them out). A point is armed by name through
//! `RAFTKV_FAILPOINTS` (comma-separated, read at start) or, with `RAFTKV_FAULT_INJECTION=1`,
//! `POST /debug/failpoint`; when the process reaches an armed point it aborts on the spot,
//! like a `kill -9` there: nothing after it is written, flushed or answered.
//!
//! Points: `log_write_before`, `log_write_after` (the Raft log batch and its fsync),
//! `apply_before_write`, `apply_after_write` (the state machine batch), `snapshot_send`,
//! `snapshot_install`, `split_apply`, `merge_commit_apply`, `migrate_promote` (the
//! metadata leader, before a migration's joint change); and two that do something else
//! instead of aborting: `snapshot_corrupt` flips a byte of a received snapshot (its checksum
//! must catch it), `log_write_error` fails the Raft log write as an fsync error would (the
//! node must fail-stop with an error to the waiting clients).

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    use parking_lot::RwLock;

    static ANY: AtomicBool = AtomicBool::new(false);

    fn names() -> &'static RwLock<Vec<String>> {
        static NAMES: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
        NAMES.get_or_init(|| {
            let from_env: Vec<String> = std::env::var("RAFTKV_FAILPOINTS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            ANY.store(!from_env.is_empty(), Ordering::Relaxed);
            RwLock::new(from_env)
        })
    }

    pub fn init() {
        let _ = names();
    }

    pub fn arm(name: &str) {
        names().write().push(name.to_string());
        ANY.store(true, Ordering::Relaxed);
    }

    pub fn is_armed(name: &str) -> bool {
        ANY.load(Ordering::Relaxed) && names().read().iter().any(|n| n == name)
    }

    pub fn hit(name: &str) {
        if ANY.load(Ordering::Relaxed) && names().read().iter().any(|n| n == name) {
            eprintln!("fail point {name} reached: aborting");
            tracing::error!(point = name, "fail point reached: aborting");
            std::process::abort();
        }
    }
}

/// Reads `RAFTKV_FAILPOINTS` (call once at start).
pub fn init() {
    #[cfg(feature = "failpoints")]
    armed::init();
}

/// Arms a point at run time. False when fail points are compiled out.
pub fn arm(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        armed::arm(name);
        true
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// Whether `name` is armed, for points that do something other than abort (corrupt data).
pub fn armed(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        let on = armed::is_armed(name);
        if on {
            tracing::error!(point = name, "fail point reached");
            eprintln!("fail point {name} reached");
        }
        on
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// Aborts the process here if `name` is armed (one relaxed load when nothing is).
#[inline]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    armed::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
