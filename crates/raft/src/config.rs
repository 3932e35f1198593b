//! Node configuration.

use crate::errors::{Error, Result};

/// How read-only requests are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// ReadIndex: the leader confirms its leadership with a heartbeat round for every
    /// (batch of) read(s). Safe regardless of clocks.
    #[default]
    Safe,
    /// LeaseRead: the leader serves reads locally while its lease is valid. The lease is
    /// `election_tick - lease_drift_ticks` ticks from the moment the leader *sent* the
    /// heartbeat last acknowledged by a quorum. Requires `check_quorum`. Relies on bounded
    /// clock drift between nodes' tick rates. Falls back to ReadIndex when the lease expired.
    LeaseBased,
}

/// Configuration of a raft node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Id of this node; must be non-zero.
    pub id: u64,
    /// Ticks without hearing from a leader after which a follower campaigns. The actual
    /// timeout is randomized in `[min_election_tick, max_election_tick)`.
    pub election_tick: usize,
    /// Ticks between leader heartbeats. Must be smaller than `election_tick`.
    pub heartbeat_tick: usize,
    /// Applied index to restart from (entries up to it are not handed out again).
    pub applied: u64,
    /// Maximum bytes of entries per append message (at least one entry is always sent).
    /// `u64::MAX` means no limit; 0 means one entry per message.
    pub max_size_per_msg: u64,
    /// Maximum number of in-flight append messages per follower while replicating.
    pub max_inflight_msgs: usize,
    /// Leader steps down when it has not heard from a quorum within an election timeout.
    /// Followers also ignore vote requests while they heard from a leader recently.
    pub check_quorum: bool,
    /// Run a PreVote phase before campaigning (avoids disrupting a healthy leader).
    pub pre_vote: bool,
    /// Minimum randomized election timeout; 0 means `election_tick`.
    pub min_election_tick: usize,
    /// Maximum (exclusive) randomized election timeout; 0 means `2 * election_tick`.
    pub max_election_tick: usize,
    /// How reads are served.
    pub read_only_option: ReadOnlyOption,
    /// Clock-drift bound (in ticks) subtracted from the election timeout for the lease.
    pub lease_drift_ticks: usize,
    /// Maximum total payload bytes of uncommitted entries the leader accepts; proposals
    /// beyond are dropped. `u64::MAX` = no limit.
    pub max_uncommitted_size: u64,
    /// A commit index advanced by an acknowledgement is not broadcast at once: the next
    /// appends carry it, or the next tick sends it (entries forwarded by a follower, and
    /// read responses, still carry it at once). Under load that saves a message per
    /// follower per commit; followers apply up to a tick later when writes stop.
    pub skip_bcast_commit: bool,
    /// Election priority, carried in vote requests (`Message::priority`). Informational
    /// for now: it does not influence voting. Use `transfer_leader` for placement.
    pub priority: u64,
    /// Seed of the node's PRNG used for randomized election timeouts. 0 = derive from id.
    pub seed: u64,
    /// Maximum bytes of committed entries returned in one `Ready`. `u64::MAX` = no limit.
    pub max_committed_size_per_ready: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            election_tick: 10,
            heartbeat_tick: 2,
            applied: 0,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            min_election_tick: 0,
            max_election_tick: 0,
            read_only_option: ReadOnlyOption::Safe,
            lease_drift_ticks: 1,
            max_uncommitted_size: u64::MAX,
            skip_bcast_commit: false,
            priority: 0,
            seed: 0,
            max_committed_size_per_ready: u64::MAX,
        }
    }
}

impl Config {
    /// A default config for the given node id.
    pub fn new(id: u64) -> Self {
        Config {
            id,
            ..Default::default()
        }
    }

    /// Effective minimum election timeout.
    pub fn min_election_tick(&self) -> usize {
        if self.min_election_tick == 0 {
            self.election_tick
        } else {
            self.min_election_tick
        }
    }

    /// Effective maximum (exclusive) election timeout.
    pub fn max_election_tick(&self) -> usize {
        if self.max_election_tick == 0 {
            2 * self.election_tick
        } else {
            self.max_election_tick
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: &str| Err(Error::ConfigInvalid(s.to_string()));
        if self.id == 0 {
            return bad("invalid node id 0");
        }
        if self.heartbeat_tick == 0 {
            return bad("heartbeat tick must be greater than 0");
        }
        if self.election_tick <= self.heartbeat_tick {
            return bad("election tick must be greater than heartbeat tick");
        }
        if self.min_election_tick() < self.election_tick {
            return bad("min election tick must not be less than election tick");
        }
        if self.min_election_tick() >= self.max_election_tick() {
            return bad("min election tick must be less than max election tick");
        }
        if self.max_inflight_msgs == 0 {
            return bad("max inflight messages must be greater than 0");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return bad("read_only_option LeaseBased requires check_quorum");
        }
        if self.lease_drift_ticks >= self.election_tick {
            return bad("lease drift must be less than election tick");
        }
        Ok(())
    }
}
