//! Linearizability checker for concurrent histories of Redis string commands
//! (GET / SET / INCR / APPEND), used by the Jepsen-style consistency tests.
//!
//! Linearizability is local (Herlihy & Wing, "P-compositionality"): a history is linearizable
//! iff every key's sub-history is, so each key is checked on its own. A key is checked with the
//! Wing & Gong search as refined by Lowe ("just-in-time linearization") and used by Porcupine
//! and Knossos: the call/return events sorted by time form a doubly linked list; the search
//! repeatedly picks a pending call before the first return still in the list, applies it to the
//! sequential model and lifts it (with its return) out of the list; hitting a return means the
//! op it belongs to should already have been linearized, so the search backtracks. Every
//! (set of linearized ops, model state) pair is explored once (memoised in a cache).
//!
//! Ops with an unknown outcome (timeouts, dropped connections) have no return event: they may be
//! linearized any time after their invocation, or never. They are what makes the search
//! expensive, so besides the usual memoisation the checker (all sound, see the comments there):
//! - leaves out unknown GETs, and unknown SETs whose value no read returned on GET/SET-only keys;
//! - linearizes identical unknown ops (e.g. timed-out INCRs) in invocation order only;
//! - on GET/APPEND-only keys, tries an unknown APPEND only after the reads that cannot show it
//!   (all reads, if none does);
//! - treats a configuration as explored when one with fewer unknown ops linearized was (`Memo`);
//! - tries unknown ops only where no definite op fits, and not at all when the op that must
//!   come next needs a smaller value on a key that only grows (counters, logs).
//!
//! Workloads stay tractable with unique written values and keys that each see one kind of
//! write (registers: GET/SET, counters: GET/INCR, logs: GET/APPEND). A key mixing SET and
//! APPEND with many unknown outcomes can exhaust the budget, which is reported as
//! [`INCONCLUSIVE`], never as a violation.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// A command on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Get,
    Set(Vec<u8>),
    Incr,
    Append(Vec<u8>),
}

/// What the client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client saw a reply.
    Ok(Ret),
    /// Timeout, dropped connection, or an error that does not say whether the command ran: it
    /// may have taken effect at any time after its invocation, or never.
    Unknown,
    /// A definite error: the command certainly did not take effect.
    Fail,
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// GET.
    Value(Option<Vec<u8>>),
    /// SET.
    Okay,
    /// INCR (the new value) or APPEND (the new length).
    Int(i64),
    /// A command that ran as a no-op error, e.g. INCR on a non-integer.
    Error,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub key: Vec<u8>,
    pub kind: OpKind,
    /// Invocation time (any monotonic unit, e.g. ns since the test started).
    pub invoke: u64,
    /// Completion time; `None` when the outcome is unknown.
    pub complete: Option<u64>,
    pub outcome: Outcome,
}

/// Why a history was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: Vec<u8>,
    /// Human-readable. Starts with [`INCONCLUSIVE`] when the search budget ran out before a
    /// verdict (the history may well be linearizable).
    pub message: String,
}

/// Prefix of the message of a [`Violation`] that is not a verdict.
pub const INCONCLUSIVE: &str = "inconclusive";

/// Default bound on explored (linearized set, state) configurations per key.
pub const DEFAULT_MAX_STATES: usize = 2_000_000;

/// The search also stops when its cache and interned states hold about this many bytes,
/// whatever the state budget.
const CACHE_BYTES_LIMIT: usize = 768 << 20;

impl Violation {
    /// True when the checker gave up (budget) rather than found a violation.
    pub fn is_inconclusive(&self) -> bool {
        self.message.starts_with(INCONCLUSIVE)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}: {}", show_bytes(&self.key), self.message)
    }
}

impl std::error::Error for Violation {}

/// Checks that every key's sub-history is linearizable.
pub fn check(history: &[Op]) -> Result<(), Violation> {
    check_with_budget(history, DEFAULT_MAX_STATES)
}

/// [`check`] with an explicit bound on explored configurations per key. A definite violation
/// on any key wins over an inconclusive result on another.
pub fn check_with_budget(history: &[Op], max_states: usize) -> Result<(), Violation> {
    let mut by_key: BTreeMap<&[u8], Vec<(usize, &Op)>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(&op.key).or_default().push((i, op));
    }
    let mut inconclusive = None;
    for (key, ops) in by_key {
        if let Err(message) = check_indexed(&ops, max_states) {
            let v = Violation {
                key: key.to_vec(),
                message,
            };
            if !v.is_inconclusive() {
                return Err(v);
            }
            inconclusive.get_or_insert(v);
        }
    }
    inconclusive.map_or(Ok(()), Err)
}

/// Checks one key's sub-history (the ops' `key` fields are not looked at).
pub fn check_key(ops: &[&Op]) -> Result<(), String> {
    check_key_with_budget(ops, DEFAULT_MAX_STATES)
}

/// [`check_key`] with an explicit bound on explored configurations.
pub fn check_key_with_budget(ops: &[&Op], max_states: usize) -> Result<(), String> {
    let indexed: Vec<(usize, &Op)> = ops.iter().copied().enumerate().collect();
    check_indexed(&indexed, max_states)
}

// ---------------------------------------------------------------------------------------------
// The sequential model.

/// Parses a value as Redis' `string2ll` does (INCR's notion of an integer): optional '-', no
/// '+', no spaces, no leading zeros (except "0" itself), within i64.
pub fn parse_redis_int(b: &[u8]) -> Option<i64> {
    fn magnitude(digits: &[u8]) -> Option<u64> {
        match digits.first() {
            Some(b'1'..=b'9') => {}
            _ => return None,
        }
        digits.iter().try_fold(0u64, |acc, &d| {
            if !d.is_ascii_digit() {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }
    match b {
        b"0" => Some(0),
        [b'-', rest @ ..] => {
            let m = magnitude(rest)?;
            // -2^63 is the one magnitude that does not fit a positive i64.
            (m <= 1 << 63).then(|| (m as i64).wrapping_neg())
        }
        _ => i64::try_from(magnitude(b)?).ok(),
    }
}

/// The sequential specification: applies `kind` to `state` (None = missing key) and returns
/// the new state and the reply.
pub fn apply(state: &Option<Vec<u8>>, kind: &OpKind) -> (Option<Vec<u8>>, Ret) {
    match kind {
        OpKind::Get => (state.clone(), Ret::Value(state.clone())),
        OpKind::Set(v) => (Some(v.clone()), Ret::Okay),
        OpKind::Incr => {
            let cur = match state {
                None => Some(0),
                Some(s) => parse_redis_int(s),
            };
            match cur.and_then(|n| n.checked_add(1)) {
                Some(n) => (Some(n.to_string().into_bytes()), Ret::Int(n)),
                None => (state.clone(), Ret::Error),
            }
        }
        OpKind::Append(x) => {
            let mut v = state.clone().unwrap_or_default();
            v.extend_from_slice(x);
            let len = v.len() as i64;
            (Some(v), Ret::Int(len))
        }
    }
}

/// Index of a model state in [`States`].
type StateId = u32;

/// The state of a missing key.
const MISSING: StateId = 0;

/// Odd multiplier of the polynomial content hash: hash(s ++ x) = hash(s) * B^|x| + hash(x),
/// so an APPEND result's hash costs O(|x|).
const HASH_BASE: u64 = 0x9e37_79b9_7f4a_7c15;

fn content_hash(bytes: &[u8]) -> u64 {
    // Eight bytes per step with independent multiplies (reads of long values add up); the
    // same value as folding byte by byte.
    const P: [u64; 9] = {
        let mut p = [1u64; 9];
        let mut i = 1;
        while i < 9 {
            p[i] = p[i - 1].wrapping_mul(HASH_BASE);
            i += 1;
        }
        p
    };
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    let h = chunks.fold(0u64, |h, c| {
        c.iter()
            .enumerate()
            .fold(h.wrapping_mul(P[8]), |acc, (i, &b)| {
                acc.wrapping_add(u64::from(b).wrapping_mul(P[7 - i]))
            })
    });
    tail.iter().fold(h, |h, &b| {
        h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b))
    })
}

/// Model states, hash-consed so the search, its undo stack and the memo cache only hold
/// 4-byte ids. A SET or INCR result is stored flat, once per distinct value; an APPEND result
/// is (parent state, fragment), so a long value built by appends costs a few words per search
/// step instead of a copy. Equal ids mean equal values; the converse need not hold (two
/// append sequences spelling the same bytes get different ids), which only costs memoisation.
struct States<'a> {
    nodes: Vec<StateNode>,
    flat: HashMap<Rc<[u8]>, StateId>,
    appended: HashMap<(StateId, u32), StateId>,
    fragments: Vec<Fragment>,
    /// A read's value each appended state was found equal to: checking a child then costs a
    /// memcmp against it instead of a walk down the whole chain.
    verified: HashMap<StateId, &'a [u8]>,
    /// Rough memory held, for the search's memory bound.
    bytes: usize,
}

struct StateNode {
    len: usize,
    hash: u64,
    repr: Repr,
}

enum Repr {
    Missing,
    Flat(Rc<[u8]>),
    Append { parent: StateId, fragment: u32 },
}

struct Fragment {
    bytes: Vec<u8>,
    hash: u64,
    /// HASH_BASE^len.
    shift: u64,
}

impl<'a> States<'a> {
    fn new() -> States<'a> {
        States {
            nodes: vec![StateNode {
                len: 0,
                hash: 0,
                repr: Repr::Missing,
            }],
            flat: HashMap::new(),
            appended: HashMap::new(),
            fragments: Vec::new(),
            verified: HashMap::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, node: StateNode) -> StateId {
        // More than 4G states is far past any budget; saturate rather than wrap.
        let id = StateId::try_from(self.nodes.len()).unwrap_or(StateId::MAX);
        self.nodes.push(node);
        self.bytes += 96;
        id
    }

    fn flat(&mut self, v: &[u8]) -> StateId {
        if let Some(&id) = self.flat.get(v) {
            return id;
        }
        let bytes: Rc<[u8]> = Rc::from(v);
        let id = self.push(StateNode {
            len: v.len(),
            hash: content_hash(v),
            repr: Repr::Flat(Rc::clone(&bytes)),
        });
        self.bytes += v.len();
        self.flat.insert(bytes, id);
        id
    }

    fn fragment(&mut self, x: &[u8]) -> u32 {
        self.fragments.push(Fragment {
            bytes: x.to_vec(),
            hash: content_hash(x),
            shift: x.iter().fold(1u64, |acc, _| acc.wrapping_mul(HASH_BASE)),
        });
        u32::try_from(self.fragments.len() - 1).unwrap_or(u32::MAX)
    }

    fn append(&mut self, parent: StateId, fragment: u32) -> StateId {
        if let Some(&id) = self.appended.get(&(parent, fragment)) {
            return id;
        }
        let (p, f) = (
            &self.nodes[parent as usize],
            &self.fragments[fragment as usize],
        );
        let node = StateNode {
            len: p.len + f.bytes.len(),
            hash: p.hash.wrapping_mul(f.shift).wrapping_add(f.hash),
            repr: Repr::Append { parent, fragment },
        };
        let id = self.push(node);
        self.appended.insert((parent, fragment), id);
        id
    }

    /// Whether state `s` holds exactly `v` (whose content hash is `hash`).
    fn holds(&mut self, s: StateId, v: Option<&'a [u8]>, hash: u64) -> bool {
        let Some(v) = v else {
            return s == MISSING;
        };
        let node = &self.nodes[s as usize];
        if s == MISSING || node.len != v.len() || node.hash != hash {
            return false;
        }
        // Equal hashes almost surely mean equal bytes, but a verdict must not rest on that.
        let (mut at, mut end) = (s, v.len());
        let equal = loop {
            if let Some(seen) = self.verified.get(&at) {
                break **seen == v[..end];
            }
            match &self.nodes[at as usize].repr {
                Repr::Missing => break end == 0,
                Repr::Flat(b) => break **b == v[..end],
                Repr::Append { parent, fragment } => {
                    let f = &self.fragments[*fragment as usize].bytes;
                    if v[end - f.len()..end] != f[..] {
                        break false;
                    }
                    end -= f.len();
                    at = *parent;
                }
            }
        };
        if equal && matches!(self.nodes[s as usize].repr, Repr::Append { .. }) {
            self.verified.insert(s, v);
            self.bytes += 48;
        }
        equal
    }

    fn value(&self, mut s: StateId) -> Option<Vec<u8>> {
        if s == MISSING {
            return None;
        }
        let mut parts = Vec::new();
        loop {
            match &self.nodes[s as usize].repr {
                Repr::Missing => break,
                Repr::Flat(b) => {
                    parts.push(&b[..]);
                    break;
                }
                Repr::Append { parent, fragment } => {
                    parts.push(&self.fragments[*fragment as usize].bytes[..]);
                    s = *parent;
                }
            }
        }
        Some(parts.into_iter().rev().flatten().copied().collect())
    }

    /// INCR's view of the state: the integer it holds (0 when missing), or None.
    fn int(&self, s: StateId) -> Option<i64> {
        const LONGEST: usize = "-9223372036854775808".len();
        if s == MISSING {
            return Some(0);
        }
        if self.nodes[s as usize].len > LONGEST {
            return None;
        }
        parse_redis_int(&self.value(s)?)
    }
}

/// An op as the search sees it.
enum Kind {
    /// With the content hash of the value read, if any.
    Get(u64),
    Set(StateId),
    Incr,
    Append(u32),
}

/// One step of the model, checked against the observed reply (`None` = unknown reply):
/// the new state, or `None` when the op cannot produce that reply in state `s`. Mirrors
/// [`apply`] on interned states.
fn step<'a>(
    states: &mut States<'a>,
    s: StateId,
    kind: &Kind,
    seen: Option<&'a Ret>,
) -> Option<StateId> {
    match kind {
        Kind::Get(hash) => match seen {
            None => Some(s),
            Some(Ret::Value(v)) => states.holds(s, v.as_deref(), *hash).then_some(s),
            Some(_) => None,
        },
        Kind::Set(v) => matches!(seen, None | Some(Ret::Okay)).then_some(*v),
        Kind::Incr => {
            let Some(n) = states.int(s).and_then(|n| n.checked_add(1)) else {
                return matches!(seen, None | Some(Ret::Error)).then_some(s);
            };
            if seen.is_some_and(|r| *r != Ret::Int(n)) {
                return None;
            }
            Some(states.flat(n.to_string().as_bytes()))
        }
        Kind::Append(f) => {
            let len = states.nodes[s as usize].len + states.fragments[*f as usize].bytes.len();
            match seen {
                None => {}
                Some(Ret::Int(r)) if i64::try_from(len).ok() == Some(*r) => {}
                Some(_) => return None,
            }
            Some(states.append(s, *f))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-key preparation.

struct Prepared<'a> {
    /// (index in the caller's history, op).
    src: Vec<(usize, &'a Op)>,
    kind: Vec<Kind>,
    /// The observed reply of definite ops; `None` for unknown ones.
    ret: Vec<Option<&'a Ret>>,
    /// For an unknown op: the previous unknown op (by invocation) with the same command.
    /// Such ops are interchangeable, so the search linearizes them in invocation order only.
    prev_twin: Vec<Option<usize>>,
    /// An unknown op may only be linearized once every read shorter than this has been.
    read_floor: Vec<usize>,
    /// Set when every op on the key only ever grows its value.
    growth: Option<Growth>,
    /// Unknown GETs and unobserved unknown SETs, left out of the search.
    dropped: usize,
    /// Ops `0..definite` have a known reply, the rest an unknown one.
    definite: usize,
}

fn prepare<'a>(ops: &[(usize, &'a Op)], states: &mut States<'a>) -> Prepared<'a> {
    let live: Vec<(usize, &Op)> = ops
        .iter()
        .copied()
        .filter(|(_, op)| op.outcome != Outcome::Fail)
        .collect();
    // On a key that only sees GET and SET, an unknown SET whose value no GET returned can be
    // left out: wherever it was linearized, no read saw it before the next SET overwrote it,
    // so the history without it is linearizable too. (APPEND or INCR could observe it.)
    let register_only = live
        .iter()
        .all(|(_, op)| matches!(op.kind, OpKind::Get | OpKind::Set(_)));
    let reads = || {
        live.iter().filter_map(|(_, op)| match &op.outcome {
            Outcome::Ok(Ret::Value(Some(v))) => Some(v.as_slice()),
            _ => None,
        })
    };
    // Only registers need the set (hashing every read of a long log would cost).
    let observed: HashSet<&[u8]> = if register_only {
        reads().collect()
    } else {
        HashSet::new()
    };
    let longest_read: &[u8] = reads().max_by_key(|v| v.len()).unwrap_or_default();
    let before = live.len();
    let mut kept: Vec<(usize, &Op)> = live
        .into_iter()
        .filter(|(_, op)| {
            if op.outcome != Outcome::Unknown {
                return true;
            }
            match &op.kind {
                // No effect and an unconstrained reply.
                OpKind::Get => false,
                OpKind::Set(v) if register_only => observed.contains(v.as_slice()),
                _ => true,
            }
        })
        .collect();
    let dropped = before - kept.len();
    // Definite ops first, each group by invocation: the search's linearized set is then a
    // run of ones, a short window and zeros over the definite ops (see `compact`).
    kept.sort_by_key(|(_, op)| (op.outcome == Outcome::Unknown, op.invoke));

    // On a key that only sees GET and APPEND, values only grow. If the history is
    // linearizable every read is a prefix of the longest one, L (if it is not, pruning is
    // harmless). An unknown APPEND of x linearized on state S is followed by reads of
    // S ++ x ++ ..., a prefix of L, so x ends in L at |S| + |x|, no earlier than its first
    // occurrence in L ends; reads shorter than that come before it. With x nowhere in L no
    // read comes after it at all. This pins a timed-out APPEND between the reads that do
    // not show it and those that do.
    let append_only = kept
        .iter()
        .all(|(_, op)| matches!(op.kind, OpKind::Get | OpKind::Append(_)));
    let read_floor = kept
        .iter()
        .map(|(_, op)| match &op.kind {
            OpKind::Append(x) if append_only && op.outcome == Outcome::Unknown => {
                if x.is_empty() {
                    0
                } else {
                    longest_read
                        .windows(x.len())
                        .position(|w| w == x.as_slice())
                        .map_or(usize::MAX, |at| at + x.len())
                }
            }
            _ => 0,
        })
        .collect();

    let mut last_unknown: HashMap<&OpKind, usize> = HashMap::new();
    let mut prev_twin = Vec::with_capacity(kept.len());
    for (i, (_, op)) in kept.iter().enumerate() {
        if op.outcome == Outcome::Unknown {
            prev_twin.push(last_unknown.insert(&op.kind, i));
        } else {
            prev_twin.push(None);
        }
    }
    let mut fragments: HashMap<&[u8], u32> = HashMap::new();
    Prepared {
        kind: kept
            .iter()
            .map(|(_, op)| match &op.kind {
                OpKind::Get => Kind::Get(match &op.outcome {
                    Outcome::Ok(Ret::Value(Some(v))) => content_hash(v),
                    _ => 0,
                }),
                OpKind::Set(v) => Kind::Set(states.flat(v)),
                OpKind::Incr => Kind::Incr,
                OpKind::Append(x) => {
                    Kind::Append(*fragments.entry(x).or_insert_with(|| states.fragment(x)))
                }
            })
            .collect(),
        ret: kept
            .iter()
            .map(|(_, op)| match &op.outcome {
                Outcome::Ok(r) => Some(r),
                _ => None,
            })
            .collect(),
        prev_twin,
        read_floor,
        growth: if kept
            .iter()
            .all(|(_, op)| matches!(op.kind, OpKind::Get | OpKind::Incr))
        {
            Some(Growth::Counter)
        } else if append_only {
            Some(Growth::Log)
        } else {
            None
        },
        definite: kept
            .iter()
            .take_while(|(_, op)| op.outcome != Outcome::Unknown)
            .count(),
        src: kept,
        dropped,
    }
}

/// Keys whose value only grows: a counter (GET/INCR) only counts up, a log (GET/APPEND) only
/// gets longer. An op needing a smaller value than the current one can then never be
/// linearized again, whatever is applied first.
#[derive(Clone, Copy)]
enum Growth {
    Counter,
    Log,
}

/// Whether op `r` can no longer be linearized from state `s` on a key that only grows.
fn out_of_reach(p: &Prepared, states: &States, s: StateId, r: usize) -> bool {
    let Some(growth) = p.growth else {
        return false;
    };
    let len = states.nodes[s as usize].len;
    match (growth, &p.kind[r], p.ret[r]) {
        (_, Kind::Get(_), Some(Ret::Value(None))) => s != MISSING,
        (Growth::Counter, Kind::Get(_), Some(Ret::Value(Some(v)))) => {
            match (states.int(s), parse_redis_int(v)) {
                (Some(cur), Some(want)) => cur > want,
                // A counter only ever holds integers.
                (_, None) => true,
                (None, Some(_)) => false,
            }
        }
        (Growth::Counter, Kind::Incr, Some(Ret::Int(want))) => {
            states.int(s).is_some_and(|cur| cur >= *want)
        }
        (Growth::Log, Kind::Get(_), Some(Ret::Value(Some(v)))) => len > v.len(),
        (Growth::Log, Kind::Append(f), Some(Ret::Int(want))) => {
            let grown = len + states.fragments[*f as usize].bytes.len();
            i64::try_from(grown).map_or(true, |g| g > *want)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The search.

const NIL: usize = usize::MAX;

/// A call or return event in the doubly linked list; node 0 is the head sentinel.
struct Node {
    prev: usize,
    next: usize,
    op: usize,
    is_call: bool,
    /// For a call: its return node (NIL for unknown ops, which have none).
    ret: usize,
}

fn build_list(p: &Prepared) -> Vec<Node> {
    // (time, is_return, op): at equal times calls sort first, so ops that touch are treated as
    // concurrent, the permissive reading of coarse timestamps.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * p.src.len());
    for (i, (_, op)) in p.src.iter().enumerate() {
        events.push((op.invoke, false, i));
        if p.ret[i].is_some() {
            let end = op.complete.unwrap_or(u64::MAX).max(op.invoke);
            events.push((end, true, i));
        }
    }
    events.sort_unstable();

    let mut nodes = Vec::with_capacity(events.len() + 1);
    nodes.push(Node {
        prev: NIL,
        next: NIL,
        op: NIL,
        is_call: false,
        ret: NIL,
    });
    let mut call_node = vec![NIL; p.src.len()];
    for (k, &(_, is_return, op)) in events.iter().enumerate() {
        let idx = k + 1;
        nodes[idx - 1].next = idx;
        nodes.push(Node {
            prev: idx - 1,
            next: NIL,
            op,
            is_call: !is_return,
            ret: NIL,
        });
        if is_return {
            nodes[call_node[op]].ret = idx;
        } else {
            call_node[op] = idx;
        }
    }
    nodes
}

fn unlink(nodes: &mut [Node], i: usize) {
    let (prev, next) = (nodes[i].prev, nodes[i].next);
    nodes[prev].next = next;
    if next != NIL {
        nodes[next].prev = prev;
    }
}

/// Undoes `unlink(i)`; valid because lifts and unlifts nest (stack order).
fn relink(nodes: &mut [Node], i: usize) {
    let (prev, next) = (nodes[i].prev, nodes[i].next);
    nodes[prev].next = i;
    if next != NIL {
        nodes[next].prev = i;
    }
}

fn lift(nodes: &mut [Node], call: usize) {
    unlink(nodes, call);
    if nodes[call].ret != NIL {
        unlink(nodes, nodes[call].ret);
    }
}

fn unlift(nodes: &mut [Node], call: usize) {
    if nodes[call].ret != NIL {
        relink(nodes, nodes[call].ret);
    }
    relink(nodes, call);
}

struct Frame {
    node: usize,
    /// The state before this op was applied.
    state: StateId,
    unknown_phase: bool,
}

/// Where the search got furthest, for the error message.
struct Best {
    depth: usize,
    /// The op whose return event stopped the search.
    blocked: Option<usize>,
    state: StateId,
    recent: Vec<usize>,
    pending: Vec<usize>,
}

enum Failure {
    NotLinearizable(Option<Best>),
    Budget(usize, Option<Best>),
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The linearized set as stored in the cache: the index of the first definite-op word that is
/// not all ones, the definite words from there up to the last nonzero one, then the
/// unknown-op words. Ops are ordered by invocation, so the window is about as wide as the
/// concurrency, and an entry costs a few words instead of one bit per op.
fn compact(bits: &[u64], definite_words: usize, out: &mut Vec<u64>) {
    let def = &bits[..definite_words];
    let start = def.iter().position(|&w| w != u64::MAX).unwrap_or(def.len());
    let end = def
        .iter()
        .rposition(|&w| w != 0)
        .map_or(start, |e| (e + 1).max(start));
    out.clear();
    out.push(start as u64);
    out.extend_from_slice(&def[start..end]);
    out.extend_from_slice(&bits[definite_words..]);
}

/// Hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// A cache entry: (compacted linearized set, state).
type Explored = (Box<[u64]>, StateId);

/// Most slots hold one entry, kept without a Vec allocation.
enum Slot {
    One(Explored),
    Many(Vec<Explored>),
}

/// The memo cache of explored (linearized set, state) pairs.
///
/// Unknown ops may stay unlinearized forever, so a configuration dominates any other with the
/// same state, the same definite ops and more unknown ops linearized: whatever completes the
/// latter completes the former (leave those unknown ops out, or for an interchangeable twin,
/// linearize the earlier one in its place). If the former failed, so does the latter. The
/// hash therefore covers the definite ops and the state only, and a lookup looks for an
/// explored entry whose unknown ops are a subset. Without this, every unknown op linearized
/// and then overwritten would double the rest of the search.
struct Memo {
    map: HashMap<u64, Slot, BuildHasherDefault<PassThrough>>,
    /// Trailing words of a key that hold the unknown ops' bits.
    unknown_words: usize,
}

impl Memo {
    /// Records the configuration; false if it (or one dominating it) had been explored.
    fn insert(&mut self, hash: u64, key: &[u64], state: StateId) -> bool {
        let split = key.len() - self.unknown_words;
        let same = |e: &Explored| {
            e.1 == state
                && e.0.len() == key.len()
                && e.0[..split] == key[..split]
                && e.0[split..]
                    .iter()
                    .zip(&key[split..])
                    .all(|(old, new)| old & !new == 0)
        };
        match self.map.entry(hash) {
            Entry::Vacant(v) => {
                v.insert(Slot::One((key.into(), state)));
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                Slot::One(e) if same(e) => return false,
                Slot::Many(v) if v.iter().any(same) => return false,
                Slot::Many(v) => v.push((key.into(), state)),
                Slot::One(_) => {
                    let first = std::mem::replace(o.get_mut(), Slot::Many(Vec::new()));
                    if let Slot::One(e) = first {
                        o.insert(Slot::Many(vec![e, (key.into(), state)]));
                    }
                }
            },
        }
        true
    }
}

fn search<'a>(p: &Prepared<'a>, states: &mut States<'a>, max_states: usize) -> Result<(), Failure> {
    let n = p.src.len();
    let mut nodes = build_list(p);
    // Definite ops' bits, then unknown ops' bits from a fresh word.
    let definite_words = p.definite.div_ceil(64);
    let bit: Vec<usize> = (0..n)
        .map(|i| {
            if i < p.definite {
                i
            } else {
                definite_words * 64 + i - p.definite
            }
        })
        .collect();
    let words = definite_words + (n - p.definite).div_ceil(64);
    // Zobrist hashing keeps the set's hash current in O(1) per lift.
    // Unknown ops are left out of the hash: see `Memo`.
    let zobrist: Vec<u64> = (0..n)
        .map(|i| {
            if i < p.definite {
                splitmix(i as u64)
            } else {
                0
            }
        })
        .collect();
    let has_unknown = p.definite < n;

    let mut linearized = vec![0u64; words];
    let mut key = Vec::new();
    let mut bits_hash = 0u64;
    let mut state = MISSING;
    let mut stack: Vec<Frame> = Vec::new();
    let mut memo = Memo {
        map: HashMap::default(),
        unknown_words: words - definite_words,
    };
    let mut explored = 0usize;
    let mut cache_bytes = 0usize;
    let mut remaining = p.definite;
    // Reads not linearized yet, by length, for `read_floor` (tracked only if some op has one).
    let floors = p.read_floor.iter().any(|&f| f > 0);
    let read_len = |op: usize| match p.ret[op] {
        Some(Ret::Value(v)) if floors => Some(v.as_ref().map_or(0, Vec::len)),
        _ => None,
    };
    let mut unread: BTreeSet<(usize, usize)> = (0..n)
        .filter_map(|op| read_len(op).map(|len| (len, op)))
        .collect();
    let mut best: Option<Best> = None;
    let is_set = |bits: &[u64], i: usize| bits[bit[i] / 64] & (1 << (bit[i] % 64)) != 0;
    let flip = |bits: &mut [u64], i: usize| bits[bit[i] / 64] ^= 1 << (bit[i] % 64);

    let mut entry = nodes[0].next;
    // Candidates before the first return are tried definite ops first, unknown ops second:
    // an unknown op can always be put off, so it is only worth trying when nothing else fits.
    let mut unknown_phase = false;
    loop {
        if remaining == 0 {
            return Ok(());
        }
        if entry == NIL || !nodes[entry].is_call {
            // Unknown ops are worth trying only if they could still make room for the op
            // that must come next (runs of timed-out INCRs overshooting a counter otherwise
            // make the search quadratic).
            if !unknown_phase
                && has_unknown
                && (entry == NIL || !out_of_reach(p, states, state, nodes[entry].op))
            {
                unknown_phase = true;
                entry = nodes[0].next;
                continue;
            }
            // Dead end: the op of this return cannot be linearized before it returned.
            if best.as_ref().is_none_or(|b| stack.len() > b.depth) {
                best = Some(capture(p, &nodes, &stack, state, entry));
            }
            let Some(frame) = stack.pop() else {
                return Err(Failure::NotLinearizable(best));
            };
            let op = nodes[frame.node].op;
            flip(&mut linearized, op);
            bits_hash ^= zobrist[op];
            if p.ret[op].is_some() {
                remaining += 1;
            }
            if let Some(len) = read_len(op) {
                unread.insert((len, op));
            }
            state = frame.state;
            unlift(&mut nodes, frame.node);
            entry = nodes[frame.node].next;
            unknown_phase = frame.unknown_phase;
            continue;
        }

        let op = nodes[entry].op;
        let definite = p.ret[op].is_some();
        let eligible = if unknown_phase {
            !definite
                && p.prev_twin[op].is_none_or(|t| is_set(&linearized, t))
                && unread
                    .first()
                    .is_none_or(|&(shortest, _)| shortest >= p.read_floor[op])
        } else {
            definite
        };
        if eligible {
            if let Some(new_state) = step(states, state, &p.kind[op], p.ret[op]) {
                flip(&mut linearized, op);
                compact(&linearized, definite_words, &mut key);
                let h = bits_hash ^ zobrist[op];
                if memo.insert(h ^ splitmix(u64::from(new_state)), &key, new_state) {
                    explored += 1;
                    // Entry: map slot, boxed key and allocator overhead.
                    cache_bytes += 8 * key.len() + 64;
                    if explored > max_states || cache_bytes + states.bytes > CACHE_BYTES_LIMIT {
                        return Err(Failure::Budget(explored, best));
                    }
                    stack.push(Frame {
                        node: entry,
                        state: std::mem::replace(&mut state, new_state),
                        unknown_phase,
                    });
                    bits_hash = h;
                    if p.ret[op].is_some() {
                        remaining -= 1;
                    }
                    if let Some(len) = read_len(op) {
                        unread.remove(&(len, op));
                    }
                    lift(&mut nodes, entry);
                    entry = nodes[0].next;
                    unknown_phase = false;
                    continue;
                }
                flip(&mut linearized, op);
            }
        }
        entry = nodes[entry].next;
    }
}

fn capture(p: &Prepared, nodes: &[Node], stack: &[Frame], state: StateId, at: usize) -> Best {
    const SHOW: usize = 8;
    // Definite ops first: timed-out ops pile up at the front of the list.
    let (mut pending, mut unknown) = (Vec::new(), Vec::new());
    let mut i = nodes[0].next;
    while i != NIL && i != at && pending.len() < 2 * SHOW {
        if nodes[i].is_call {
            let op = nodes[i].op;
            if p.ret[op].is_some() {
                pending.push(op);
            } else if unknown.len() < SHOW / 2 {
                unknown.push(op);
            }
        }
        i = nodes[i].next;
    }
    pending.extend(unknown);
    Best {
        depth: stack.len(),
        blocked: (at != NIL).then(|| nodes[at].op),
        state,
        recent: stack
            .iter()
            .rev()
            .take(SHOW)
            .rev()
            .map(|f| nodes[f.node].op)
            .collect(),
        pending,
    }
}

fn check_indexed(ops: &[(usize, &Op)], max_states: usize) -> Result<(), String> {
    let mut states = States::new();
    let p = prepare(ops, &mut states);
    match search(&p, &mut states, max_states) {
        Ok(()) => Ok(()),
        Err(Failure::NotLinearizable(best)) => Err(format!(
            "not linearizable ({} ops considered, {} unknown-outcome ops left out as \
             unobservable).{}",
            p.src.len(),
            p.dropped,
            describe(&p, &states, best.as_ref())
        )),
        Err(Failure::Budget(explored, best)) => Err(format!(
            "{INCONCLUSIVE}: search budget exhausted after {explored} states ({} ops; limits: \
             {max_states} states, {} MiB of cache); deepest point reached:{}",
            p.src.len(),
            CACHE_BYTES_LIMIT >> 20,
            describe(&p, &states, best.as_ref())
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn describe(p: &Prepared, states: &States, best: Option<&Best>) -> String {
    let Some(b) = best else {
        return String::new();
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "\n  linearized {} ops, reaching state {}",
        b.depth,
        show_value(states.value(b.state).as_deref())
    );
    if let Some(op) = b.blocked {
        let _ = write!(
            s,
            "; then no pending op could be applied and this one had already returned:\n    {}",
            show_op(p, op)
        );
    }
    if !b.recent.is_empty() {
        s.push_str("\n  last linearized ops (oldest first):");
        for &op in &b.recent {
            let _ = write!(s, "\n    {}", show_op(p, op));
        }
    }
    if !b.pending.is_empty() {
        s.push_str("\n  other ops pending at that point:");
        for &op in &b.pending {
            let _ = write!(s, "\n    {}", show_op(p, op));
        }
    }
    s
}

fn show_op(p: &Prepared, i: usize) -> String {
    let (idx, op) = p.src[i];
    let cmd = match &op.kind {
        OpKind::Get => "GET".to_string(),
        OpKind::Set(v) => format!("SET {}", show_bytes(v)),
        OpKind::Incr => "INCR".to_string(),
        OpKind::Append(x) => format!("APPEND {}", show_bytes(x)),
    };
    let ret = match &op.outcome {
        Outcome::Ok(Ret::Value(v)) => show_value(v.as_deref()),
        Outcome::Ok(Ret::Okay) => "OK".to_string(),
        Outcome::Ok(Ret::Int(n)) => n.to_string(),
        Outcome::Ok(Ret::Error) => "ERR".to_string(),
        Outcome::Unknown => "?".to_string(),
        Outcome::Fail => "FAIL".to_string(),
    };
    let end = op
        .complete
        .filter(|_| p.ret[i].is_some())
        .map_or("?".to_string(), |t| t.to_string());
    format!(
        "op #{idx} client {} {cmd} -> {ret}  [{}, {end}]",
        op.client, op.invoke
    )
}

fn show_value(v: Option<&[u8]>) -> String {
    v.map_or("nil".to_string(), show_bytes)
}

fn show_bytes(b: &[u8]) -> String {
    const MAX: usize = 48;
    if b.len() <= MAX {
        format!("\"{}\"", b.escape_ascii())
    } else {
        format!("\"{}...\" ({} bytes)", b[..MAX].escape_ascii(), b.len())
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const K: &[u8] = b"k";

    fn op(client: usize, kind: OpKind, invoke: u64, complete: u64, ret: Ret) -> Op {
        Op {
            client,
            key: K.to_vec(),
            kind,
            invoke,
            complete: Some(complete),
            outcome: Outcome::Ok(ret),
        }
    }
    fn unknown(client: usize, kind: OpKind, invoke: u64) -> Op {
        Op {
            client,
            key: K.to_vec(),
            kind,
            invoke,
            complete: None,
            outcome: Outcome::Unknown,
        }
    }
    fn set(c: usize, v: &str, t0: u64, t1: u64) -> Op {
        op(c, OpKind::Set(v.into()), t0, t1, Ret::Okay)
    }
    fn get(c: usize, v: Option<&str>, t0: u64, t1: u64) -> Op {
        op(c, OpKind::Get, t0, t1, Ret::Value(v.map(Into::into)))
    }
    fn incr(c: usize, r: i64, t0: u64, t1: u64) -> Op {
        op(c, OpKind::Incr, t0, t1, Ret::Int(r))
    }
    fn append(c: usize, x: &str, len: i64, t0: u64, t1: u64) -> Op {
        op(c, OpKind::Append(x.into()), t0, t1, Ret::Int(len))
    }
    fn ok(h: &[Op]) -> bool {
        check(h).is_ok()
    }

    /// splitmix64: std-only deterministic randomness for the generated histories.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(1);
            splitmix(self.0)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    #[test]
    fn redis_integer_parsing_follows_string2ll() {
        assert_eq!(parse_redis_int(b"0"), Some(0));
        assert_eq!(parse_redis_int(b"42"), Some(42));
        assert_eq!(parse_redis_int(b"-7"), Some(-7));
        assert_eq!(parse_redis_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_redis_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"1.5",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_redis_int(bad), None, "{:?}", bad.escape_ascii());
        }
    }

    #[test]
    fn content_hash_composes_like_concatenation() {
        let bytes: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        let slow = |b: &[u8]| {
            b.iter().fold(0u64, |h, &x| {
                h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(x))
            })
        };
        for len in 0..bytes.len() {
            assert_eq!(content_hash(&bytes[..len]), slow(&bytes[..len]), "{len}");
        }
        let mut states = States::new();
        let a = states.flat(&bytes[..13]);
        let f = states.fragment(&bytes[13..]);
        let ab = states.append(a, f);
        assert_eq!(states.nodes[ab as usize].hash, content_hash(&bytes));
        assert!(states.holds(ab, Some(&bytes), content_hash(&bytes)));
        assert_eq!(states.value(ab), Some(bytes.clone()));
    }

    #[test]
    fn model_incr_and_append_semantics() {
        assert_eq!(
            apply(&None, &OpKind::Incr),
            (Some(b"1".to_vec()), Ret::Int(1))
        );
        let s = Some(b"-1".to_vec());
        assert_eq!(apply(&s, &OpKind::Incr), (Some(b"0".to_vec()), Ret::Int(0)));
        let s = Some(b"x".to_vec());
        assert_eq!(apply(&s, &OpKind::Incr), (s.clone(), Ret::Error));
        let s = Some(i64::MAX.to_string().into_bytes());
        assert_eq!(apply(&s, &OpKind::Incr), (s.clone(), Ret::Error));
        let s = Some(b"ab".to_vec());
        assert_eq!(
            apply(&s, &OpKind::Append(b"cd".to_vec())),
            (Some(b"abcd".to_vec()), Ret::Int(4))
        );
        assert_eq!(
            apply(&None, &OpKind::Append(b"".to_vec())),
            (Some(Vec::new()), Ret::Int(0))
        );
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(ok(&[]));
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            get(0, None, 0, 1),
            set(0, "a", 2, 3),
            get(1, Some("a"), 4, 5),
            append(0, "b", 2, 6, 7),
            get(1, Some("ab"), 8, 9),
            set(1, "41", 10, 11),
            incr(0, 42, 12, 13),
            get(0, Some("42"), 14, 15),
        ];
        assert!(ok(&h));
    }

    #[test]
    fn concurrent_overlapping_writes_are_ok_in_either_order() {
        for (first, second) in [("a", "b"), ("b", "a")] {
            let h = [
                set(0, "a", 0, 10),
                set(1, "b", 1, 11),
                get(2, Some(second), 20, 21),
                get(2, Some(second), 22, 23),
            ];
            assert!(ok(&h), "final {second}");
            // A read concurrent with both writes may see the first one to land.
            let h = [
                set(0, "a", 0, 10),
                set(1, "b", 1, 11),
                get(2, Some(first), 2, 12),
                get(2, Some(second), 20, 21),
            ];
            assert!(ok(&h), "{first} then {second}");
        }
    }

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        let h = [
            set(0, "old", 0, 1),
            set(0, "new", 2, 3),
            get(1, Some("old"), 4, 5),
        ];
        let err = check(&h).unwrap_err();
        assert!(!err.is_inconclusive());
        assert_eq!(err.key, K);
        assert!(err.message.contains("op #2"), "{err}");
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        let h = [set(0, "a", 0, 1), get(1, Some("zzz"), 0, 5)];
        assert!(!ok(&h));
        let h = [get(1, Some("zzz"), 0, 5)];
        assert!(!ok(&h));
    }

    #[test]
    fn lost_increment_is_rejected() {
        let h = [incr(0, 1, 0, 1), incr(1, 1, 2, 3)];
        assert!(!ok(&h));
    }

    #[test]
    fn overlapping_increments_returning_1_and_2_are_ok() {
        assert!(ok(&[incr(0, 2, 0, 10), incr(1, 1, 1, 11)]));
        assert!(ok(&[incr(0, 1, 0, 10), incr(1, 2, 1, 11)]));
        // But two increments can't both see the same value even when concurrent.
        assert!(!ok(&[incr(0, 1, 0, 10), incr(1, 1, 1, 11)]));
    }

    #[test]
    fn incr_on_a_non_integer_is_an_error_and_a_no_op() {
        let h = [
            set(0, "x", 0, 1),
            op(0, OpKind::Incr, 2, 3, Ret::Error),
            get(0, Some("x"), 4, 5),
        ];
        assert!(ok(&h));
        let h = [set(0, "x", 0, 1), incr(0, 1, 2, 3)];
        assert!(!ok(&h));
        let h = [set(0, "5", 0, 1), op(0, OpKind::Incr, 2, 3, Ret::Error)];
        assert!(!ok(&h));
    }

    #[test]
    fn unknown_set_that_is_later_read_is_ok() {
        let h = [
            set(0, "a", 0, 1),
            unknown(1, OpKind::Set(b"b".to_vec()), 2),
            get(0, Some("a"), 10, 11),
            get(0, Some("b"), 20, 21),
            get(2, Some("b"), 30, 31),
        ];
        assert!(ok(&h));
    }

    #[test]
    fn unknown_set_that_is_never_read_is_ok() {
        let h = [
            set(0, "a", 0, 1),
            unknown(1, OpKind::Set(b"b".to_vec()), 2),
            get(0, Some("a"), 10, 11),
            get(0, Some("a"), 20, 21),
        ];
        assert!(ok(&h));
        // Same with APPEND on the key, where unobserved unknown SETs are not dropped up front.
        let h = [
            set(0, "a", 0, 1),
            unknown(1, OpKind::Set(b"b".to_vec()), 2),
            append(0, "c", 2, 10, 11),
            get(0, Some("ac"), 20, 21),
        ];
        assert!(ok(&h));
    }

    #[test]
    fn unknown_set_observed_then_unobserved_is_rejected() {
        let h = [
            set(0, "old", 0, 1),
            unknown(1, OpKind::Set(b"x".to_vec()), 2),
            get(0, Some("x"), 10, 11),
            get(0, Some("old"), 20, 21),
            get(0, Some("x"), 30, 31),
        ];
        assert!(!ok(&h));
    }

    #[test]
    fn unknown_op_cannot_take_effect_before_its_invocation() {
        let h = [
            set(0, "a", 0, 1),
            get(0, Some("b"), 2, 3),
            unknown(1, OpKind::Set(b"b".to_vec()), 10),
        ];
        assert!(!ok(&h));
    }

    #[test]
    fn failed_ops_are_ignored() {
        let h = [
            set(0, "a", 0, 1),
            Op {
                client: 1,
                key: K.to_vec(),
                kind: OpKind::Set(b"b".to_vec()),
                invoke: 2,
                complete: Some(3),
                outcome: Outcome::Fail,
            },
            get(0, Some("a"), 10, 11),
        ];
        assert!(ok(&h));
        let mut h = h.to_vec();
        h[2] = get(0, Some("b"), 10, 11);
        assert!(!ok(&h));
    }

    #[test]
    fn append_lengths_are_checked() {
        let h = [
            append(0, "ab", 2, 0, 1),
            append(1, "cde", 5, 2, 3),
            get(0, Some("abcde"), 4, 5),
        ];
        assert!(ok(&h));
        // Concurrent appends: the lengths say which went first.
        let h = [
            append(0, "ab", 5, 0, 10),
            append(1, "cde", 3, 1, 11),
            get(0, Some("cdeab"), 12, 13),
        ];
        assert!(ok(&h));
        let h = [
            append(0, "ab", 5, 0, 10),
            append(1, "cde", 3, 1, 11),
            get(0, Some("abcde"), 12, 13),
        ];
        assert!(!ok(&h));
        let h = [append(0, "ab", 2, 0, 1), append(1, "cde", 3, 2, 3)];
        assert!(!ok(&h));
    }

    #[test]
    fn unknown_append_and_incr_may_or_may_not_take_effect() {
        let took = [
            append(0, "a", 1, 0, 1),
            unknown(1, OpKind::Append(b"b".to_vec()), 2),
            append(0, "c", 3, 10, 11),
        ];
        assert!(ok(&took));
        let skipped = [
            append(0, "a", 1, 0, 1),
            unknown(1, OpKind::Append(b"b".to_vec()), 2),
            append(0, "c", 2, 10, 11),
            get(0, Some("ac"), 12, 13),
        ];
        assert!(ok(&skipped));
        let h = [
            incr(0, 1, 0, 1),
            unknown(1, OpKind::Incr, 2),
            unknown(2, OpKind::Incr, 2),
            incr(0, 4, 10, 11),
        ];
        assert!(ok(&h));
        let h = [
            incr(0, 1, 0, 1),
            unknown(1, OpKind::Incr, 2),
            unknown(2, OpKind::Incr, 2),
            incr(0, 5, 10, 11),
        ];
        assert!(!ok(&h));
    }

    #[test]
    fn many_pending_unknown_increments_do_not_explode() {
        // 60 timed-out INCRs; reads then see every count from 1 to 60. Without treating
        // identical unknown ops as interchangeable this would be C(60, k) states per read.
        let mut h: Vec<Op> = (0..60).map(|c| unknown(c, OpKind::Incr, 0)).collect();
        for n in 1..=60u64 {
            h.push(get(100, Some(&n.to_string()), 10 * n, 10 * n + 1));
        }
        let t = Instant::now();
        assert!(ok(&h));
        // A count going backwards is still caught.
        h.push(get(100, Some("59"), 10_000, 10_001));
        assert!(!ok(&h));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn keys_are_checked_independently_and_the_violating_key_is_named() {
        let mut h = vec![set(0, "a", 0, 1), get(1, Some("a"), 2, 3)];
        let mut other = set(0, "x", 0, 1);
        other.key = b"other".to_vec();
        h.push(other);
        let mut bad = get(1, Some("y"), 2, 3);
        bad.key = b"other".to_vec();
        h.push(bad);
        let err = check(&h).unwrap_err();
        assert_eq!(err.key, b"other");
        assert!(err.to_string().contains("\"other\""), "{err}");
        // check_key ignores the key field.
        let refs: Vec<&Op> = h[..2].iter().collect();
        assert!(check_key(&refs).is_ok());
    }

    #[test]
    fn budget_exhaustion_is_reported_as_inconclusive() {
        // 16 concurrent appends of distinct lengths that all return "unknown", then a read
        // nothing can explain: refuting it means trying every subset and order.
        let mut h: Vec<Op> = (0..16)
            .map(|c| unknown(c, OpKind::Append(vec![b'a'; c + 1]), 1))
            .collect();
        h.push(set(99, "", 0, 1));
        h.push(get(99, Some("impossible"), 100, 101));
        let err = check_with_budget(&h, 1000).unwrap_err();
        assert!(err.is_inconclusive(), "{err}");
        assert!(err.message.contains("search budget exhausted"), "{err}");
    }

    #[test]
    fn violation_message_names_the_blocked_op_and_state() {
        let h = [
            set(0, "a", 0, 1),
            set(1, "b", 2, 3),
            get(2, Some("a"), 4, 5),
        ];
        let msg = check_key(&h.iter().collect::<Vec<_>>()).unwrap_err();
        assert!(msg.starts_with("not linearizable"), "{msg}");
        assert!(msg.contains("op #2 client 2 GET -> \"a\""), "{msg}");
        assert!(msg.contains("reaching state \"b\""), "{msg}");
    }

    /// Which commands a generated key sees: the checker prunes differently for each.
    #[derive(Clone, Copy, Debug)]
    enum Profile {
        Mixed,
        Register,
        Counter,
        AppendOnly,
        /// GET/APPEND with unique fragments only, as a real test writes them.
        UniqueAppends,
    }
    const PROFILES: [Profile; 5] = [
        Profile::Mixed,
        Profile::Register,
        Profile::Counter,
        Profile::AppendOnly,
        Profile::UniqueAppends,
    ];

    fn random_kind(rng: &mut Rng, serial: &mut u64, profile: Profile) -> OpKind {
        *serial += 1;
        let reading = rng.chance(40);
        match profile {
            Profile::Mixed => {}
            _ if reading => return OpKind::Get,
            Profile::Register if rng.chance(30) => {
                return OpKind::Set(format!("v{}", rng.below(3)).into_bytes())
            }
            Profile::Register => return OpKind::Set(format!("v{serial}").into_bytes()),
            Profile::Counter => return OpKind::Incr,
            // Short fragments also occur inside other values, defeating the substring test.
            Profile::AppendOnly if rng.chance(30) => {
                return OpKind::Append(format!("{}", rng.below(3)).into_bytes())
            }
            Profile::AppendOnly | Profile::UniqueAppends => {
                return OpKind::Append(format!("a{serial},").into_bytes())
            }
        }
        match rng.below(10) {
            0..=3 => OpKind::Get,
            4 | 5 => {
                // Sometimes a small integer so INCR succeeds, sometimes a repeated value.
                let v = match rng.below(3) {
                    0 => rng.below(5).to_string(),
                    1 => format!("v{}", rng.below(3)),
                    _ => format!("v{serial}"),
                };
                OpKind::Set(v.into_bytes())
            }
            6 | 7 => OpKind::Incr,
            _ => OpKind::Append(format!("{}", rng.below(100)).into_bytes()),
        }
    }

    /// A random sequential history run against the model, then with timestamps widened around
    /// each op's linearization point (so the real-time order of that linearization is kept),
    /// with some ops made unknown, and some unknown or failed ops that never took effect.
    fn random_valid_history(
        rng: &mut Rng,
        len: usize,
        width: u64,
        keys: usize,
        profile: Profile,
    ) -> Vec<Op> {
        let mut states: Vec<Option<Vec<u8>>> = vec![None; keys];
        let mut serial = 0;
        let mut h = Vec::new();
        for i in 0..len as u64 {
            let point = 1000 * (i + 1);
            let key = rng.below(keys as u64) as usize;
            let kind = random_kind(rng, &mut serial, profile);
            let mut invoke = point - rng.below(width + 1).min(point);
            let client = rng.below(8) as usize;
            if rng.chance(5) {
                // Never took effect.
                let fail = rng.chance(50);
                h.push(Op {
                    client,
                    key: vec![b'k', b'0' + key as u8],
                    kind,
                    invoke,
                    complete: fail.then_some(point + 1),
                    outcome: if fail {
                        Outcome::Fail
                    } else {
                        Outcome::Unknown
                    },
                });
                continue;
            }
            let (next, ret) = apply(&states[key], &kind);
            states[key] = next;
            let is_unknown = rng.chance(8);
            if is_unknown {
                // A timed-out op may take effect long after it was sent.
                invoke = point - rng.below(8 * width + 1).min(point);
            }
            h.push(Op {
                client,
                key: vec![b'k', b'0' + key as u8],
                kind,
                invoke,
                complete: (!is_unknown).then(|| point + rng.below(width + 1)),
                outcome: if is_unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok(ret)
                },
            });
        }
        // The checker must not depend on input order.
        for i in (1..h.len()).rev() {
            h.swap(i, rng.below(i as u64 + 1) as usize);
        }
        h
    }

    #[test]
    fn randomized_valid_histories_are_accepted() {
        let mut rng = Rng(7);
        for round in 0..800 {
            let len = 1 + rng.below(80) as usize;
            let width = [0, 500, 2000, 6000][round % 4];
            let keys = 1 + round % 3;
            let profile = PROFILES[(round / 4) % PROFILES.len()];
            let h = random_valid_history(&mut rng, len, width, keys, profile);
            if let Err(e) = check(&h) {
                panic!("round {round} ({profile:?}): valid history rejected: {e}\n{h:#?}");
            }
        }
    }

    #[test]
    fn randomized_histories_with_a_corrupted_read_are_rejected() {
        let mut rng = Rng(11);
        let mut tested = 0;
        for round in 0..400 {
            let len = 1 + rng.below(60) as usize;
            let profile = PROFILES[round % PROFILES.len()];
            let mut h = random_valid_history(&mut rng, len, 3000, 1, profile);
            let reads: Vec<usize> = (0..h.len())
                .filter(|&i| matches!(h[i].outcome, Outcome::Ok(Ret::Value(_))))
                .collect();
            if reads.is_empty() {
                continue;
            }
            let i = reads[rng.below(reads.len() as u64) as usize];
            h[i].outcome = Outcome::Ok(Ret::Value(Some(b"never written".to_vec())));
            let err = check(&h).expect_err(&format!("round {round} ({profile:?}): accepted"));
            assert!(!err.is_inconclusive(), "round {round} ({profile:?}): {err}");
            tested += 1;
        }
        assert!(tested > 250, "{tested}");
    }

    /// `clients` clients each running ops back to back on one key; every op takes effect at a
    /// random instant inside its [invoke, complete] window. `unknown_pct` percent time out:
    /// the client moves on after 2000 time units, and the op takes effect up to 3000 units
    /// after its invocation, or (half of them) never.
    fn simulated_history(
        rng: &mut Rng,
        ops: usize,
        clients: usize,
        profile: Profile,
        unknown_pct: u64,
    ) -> Vec<Op> {
        let mut now = vec![0u64; clients];
        // (linearization point or None, timed out, op)
        let mut timed: Vec<(Option<u64>, bool, Op)> = Vec::new();
        let mut serial = 0;
        for _ in 0..ops {
            let c = rng.below(clients as u64) as usize;
            let invoke = now[c] + rng.below(20);
            let complete = invoke + 1 + rng.below(100);
            let kind = random_kind(rng, &mut serial, profile);
            let unknown = rng.chance(unknown_pct);
            let point = if !unknown {
                Some(invoke + rng.below(complete - invoke + 1))
            } else if rng.chance(50) {
                Some(invoke + rng.below(3000))
            } else {
                None
            };
            now[c] = if unknown { invoke + 2000 } else { complete };
            timed.push((
                point,
                unknown,
                Op {
                    client: c,
                    key: K.to_vec(),
                    kind,
                    invoke,
                    complete: (!unknown).then_some(complete),
                    outcome: Outcome::Unknown,
                },
            ));
        }
        // Apply in linearization order.
        timed.sort_by_key(|(p, _, _)| p.unwrap_or(u64::MAX));
        let mut state = None;
        timed
            .into_iter()
            .map(|(point, unknown, mut op)| {
                if point.is_some() {
                    let (next, ret) = apply(&state, &op.kind);
                    state = next;
                    if !unknown {
                        op.outcome = Outcome::Ok(ret);
                    }
                }
                op
            })
            .collect()
    }

    fn simulated_concurrent_history(rng: &mut Rng, ops: usize, clients: usize) -> Vec<Op> {
        simulated_history(rng, ops, clients, Profile::Mixed, 1)
    }

    #[test]
    fn long_histories_with_timeouts_check_quickly() {
        // Per key kind, as a Jepsen-style test produces them: 20000 ops, 6 clients, 2% timed
        // out (half of which never take effect). Mixed SET/APPEND keys are not covered: with
        // many timeouts they can exhaust the budget (see the module doc). Unoptimised builds
        // (cargo test) check a shorter history.
        let (ops, bound) = if cfg!(debug_assertions) {
            (5_000, Duration::from_secs(10))
        } else {
            (20_000, Duration::from_secs(3))
        };
        for (i, profile) in [Profile::Register, Profile::Counter, Profile::UniqueAppends]
            .into_iter()
            .enumerate()
        {
            let mut rng = Rng(100 + i as u64);
            let h = simulated_history(&mut rng, ops, 6, profile, 2);
            let t = Instant::now();
            let res = check(&h);
            let took = t.elapsed();
            assert!(res.is_ok(), "{profile:?}: {}", res.unwrap_err());
            eprintln!("{profile:?}: {ops} ops with timeouts checked in {took:?}");
            assert!(took < bound, "{profile:?}: {took:?}");
        }
    }

    #[test]
    fn large_concurrent_history_checks_quickly() {
        let mut rng = Rng(3);
        let h = simulated_concurrent_history(&mut rng, 2000, 8);
        let t = Instant::now();
        let res = check(&h);
        let took = t.elapsed();
        assert!(res.is_ok(), "{}", res.unwrap_err());
        eprintln!("2000 ops, 8 clients: checked in {took:?}");
        // Unoptimised builds (cargo test) get more slack.
        let bound = if cfg!(debug_assertions) { 5_000 } else { 1_000 };
        assert!(took < Duration::from_millis(bound), "{took:?}");
    }

    #[test]
    fn large_concurrent_history_with_a_stale_read_is_rejected() {
        let mut rng = Rng(5);
        let mut h = simulated_concurrent_history(&mut rng, 2000, 8);
        // A read in the middle returns the value of a SET that completed long before it and
        // was overwritten since: find one whose value differs from its real read.
        let mut sets_done: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut target = None;
        let mut by_invoke: Vec<usize> = (0..h.len()).collect();
        by_invoke.sort_by_key(|&i| h[i].invoke);
        for &i in &by_invoke {
            match (&h[i].kind, &h[i].outcome, h[i].complete) {
                (OpKind::Set(v), Outcome::Ok(_), Some(end)) => sets_done.push((end, v.clone())),
                (OpKind::Get, Outcome::Ok(Ret::Value(seen)), _) if i > 1000 => {
                    // A SET that finished well before this read and has a unique value.
                    if let Some((_, v)) = sets_done.iter().rev().find(|(end, v)| {
                        *end + 5000 < h[i].invoke
                            && v.starts_with(b"v")
                            && v.len() > 2
                            && seen.as_deref() != Some(v.as_slice())
                    }) {
                        target = Some((i, v.clone()));
                        break;
                    }
                }
                _ => {}
            }
        }
        let (i, v) = target.expect("a read to corrupt");
        h[i].outcome = Outcome::Ok(Ret::Value(Some(v)));
        let t = Instant::now();
        let err = check(&h).expect_err("stale read accepted");
        assert!(!err.is_inconclusive(), "{err}");
        eprintln!("2000-op stale read rejected in {:?}", t.elapsed());
    }
}
