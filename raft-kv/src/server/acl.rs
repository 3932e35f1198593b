//! Users and their permissions (Redis 6/7 ACL): the user model, `ACL SETUSER` rules, the
//! permission checks, the descriptions `ACL LIST`/`GETUSER` print, and the ACL log.
//!
//! Users are cluster-wide: they live in the metadata (`MetaState::users`, changed by
//! `MetaCmd::SetUser`/`DelUser`, which carry rules with passwords already hashed). Every node
//! enforces from its own view of the metadata through [`Acl::users`], which also lays this
//! node's `requirepass` over the `default` user, as Redis does (requirepass is the default
//! user's password).
//!
//! Commands are allowed by folding the user's rules in order over the command (the last rule
//! that matches it wins), which is what Redis' per-command bitmap computes; rules are kept in
//! the order given, an earlier copy of a repeated rule dropped (Redis 7.2's description).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd::category;
use crate::cmd::server_cmds::{subcommands, SubSpec};
use crate::cmd::{flag, CommandSpec};
use crate::meta::MetaView;
use crate::protocol::{matches, Frame};

pub const DEFAULT_USER: &str = "default";

const ERR_UNKNOWN: &str = "Unknown command or category name in ACL";
const ERR_HASH: &str =
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
const ERR_NO_SUCH_PASS: &str = "The password you are trying to remove from the user does not exist";
const ERR_AFTER_ALLKEYS: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const ERR_AFTER_ALLCHANNELS: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
const ERR_SYNTAX: &str = "Syntax error";

/// A key pattern and what it grants (`~p`: both, `%R~p`: read, `%W~p`: write).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPattern {
    pub pattern: String,
    pub read: bool,
    pub write: bool,
}

/// One user, as stored in the metadata. Passwords are SHA-256 hex digests, never clear text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)) / `skip-sanitize-payload` (Some(false)); shown only.
    #[serde(default)]
    pub sanitize_payload: Option<bool>,
    pub passwords: Vec<String>,
    /// The base every rule starts from: `+@all` or `-@all`.
    pub all_commands: bool,
    /// `+get`, `-@admin`, `+client|list` ... lower-case, in order, after the base.
    pub command_rules: Vec<String>,
    pub all_keys: bool,
    pub keys: Vec<KeyPattern>,
    pub all_channels: bool,
    pub channels: Vec<String>,
    /// The metadata version that created this user (0 for `default`): a user deleted and
    /// created again under the same name is another user, and connections that
    /// authenticated as the old one are closed even if a node never saw the gap.
    #[serde(default)]
    pub born: u64,
}

/// Why a command is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    /// The argument index of the key.
    Key(usize),
    /// The argument index of the channel.
    Channel(usize),
}

/// SHA-256 hex of a password, as Redis stores it.
pub fn hash_password(pass: &[u8]) -> String {
    let digest = Sha256::digest(pass);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The rules with clear-text passwords replaced by their hashes (`>p` -> `#h`, `<p` -> `!h`):
/// what is proposed to the metadata, so no password is ever stored or replicated in clear.
pub fn hash_rules(rules: &[Bytes]) -> Vec<String> {
    rules
        .iter()
        .map(|r| match r.first() {
            Some(b'>') => format!("#{}", hash_password(&r[1..])),
            Some(b'<') => format!("!{}", hash_password(&r[1..])),
            _ => String::from_utf8_lossy(r).into_owned(),
        })
        .collect()
}

/// Redis' username rule.
pub fn valid_username(name: &[u8]) -> bool {
    !name.iter().any(|&c| c == b' ' || c == 0)
}

impl Default for User {
    /// A user just created: off, no passwords, no commands, keys or channels.
    fn default() -> Self {
        User {
            enabled: false,
            nopass: false,
            sanitize_payload: None,
            passwords: Vec::new(),
            all_commands: false,
            command_rules: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
            born: 0,
        }
    }
}

impl User {
    /// The built-in `default` user: `on nopass ~* &* +@all`.
    pub fn builtin_default() -> User {
        User {
            enabled: true,
            nopass: true,
            all_commands: true,
            all_keys: true,
            all_channels: true,
            ..User::default()
        }
    }

    /// Applies every rule or none; the error is Redis' `ACL SETUSER` one.
    pub fn apply_all<R: AsRef<[u8]>>(&mut self, rules: &[R]) -> Result<(), String> {
        let mut next = self.clone();
        for r in rules {
            let r = r.as_ref();
            if let Err(why) = next.apply(r) {
                return Err(format!(
                    "Error in ACL SETUSER modifier '{}': {why}",
                    String::from_utf8_lossy(r)
                ));
            }
        }
        *self = next;
        Ok(())
    }

    /// Applies one rule; the error is the reason alone.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), &'static str> {
        let lower = String::from_utf8_lossy(rule).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.all_commands = true;
                self.command_rules.clear();
            }
            "nocommands" | "-@all" => {
                self.all_commands = false;
                self.command_rules.clear();
            }
            "sanitize-payload" => self.sanitize_payload = Some(true),
            "skip-sanitize-payload" => self.sanitize_payload = Some(false),
            // Selectors are not supported: there are never any to clear.
            "clearselectors" => {}
            "reset" => {
                *self = User {
                    sanitize_payload: Some(true),
                    ..User::default()
                };
            }
            _ => return self.apply_with_argument(rule, &lower),
        }
        Ok(())
    }

    fn apply_with_argument(&mut self, rule: &[u8], lower: &str) -> Result<(), &'static str> {
        let (first, rest) = match rule.split_first() {
            Some((f, r)) => (*f, r),
            None => return Err(ERR_SYNTAX),
        };
        match first {
            b'>' | b'#' => {
                let h = if first == b'>' {
                    hash_password(rest)
                } else if valid_hash(rest) {
                    String::from_utf8_lossy(rest).into_owned()
                } else {
                    return Err(ERR_HASH);
                };
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' | b'!' => {
                let h = if first == b'<' {
                    hash_password(rest)
                } else if valid_hash(rest) {
                    String::from_utf8_lossy(rest).into_owned()
                } else {
                    return Err(ERR_HASH);
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(ERR_NO_SUCH_PASS);
                }
            }
            b'~' => self.add_key(rest, true, true)?,
            b'%' => {
                let tilde = rest.iter().position(|&c| c == b'~').ok_or(ERR_SYNTAX)?;
                let (mut read, mut write) = (false, false);
                for c in &rest[..tilde] {
                    match c {
                        b'R' | b'r' => read = true,
                        b'W' | b'w' => write = true,
                        _ => return Err(ERR_SYNTAX),
                    }
                }
                if !read && !write {
                    return Err(ERR_SYNTAX);
                }
                self.add_key(&rest[tilde + 1..], read, write)?;
            }
            b'&' => {
                if self.all_channels {
                    return Err(ERR_AFTER_ALLCHANNELS);
                }
                let p = String::from_utf8_lossy(rest).into_owned();
                if !self.channels.contains(&p) {
                    self.channels.push(p);
                }
            }
            b'+' | b'-' => {
                let body = &lower[1..];
                if let Some(cat) = body.strip_prefix('@') {
                    category::bit(cat).ok_or(ERR_UNKNOWN)?;
                } else {
                    let (cmd, sub) = match body.split_once('|') {
                        Some((c, s)) => (c, Some(s)),
                        None => (body, None),
                    };
                    let spec = crate::cmd::lookup(cmd.as_bytes()).ok_or(ERR_UNKNOWN)?;
                    if let Some(sub) = sub {
                        match subcommands(spec.name) {
                            Some(subs) => {
                                if sub.is_empty() || !subs.iter().any(|s| s.name == sub) {
                                    return Err(ERR_UNKNOWN);
                                }
                            }
                            None => match plain_container_subs(spec.name) {
                                // Containers the table runs as one command (the subcommand
                                // is the first argument): allowed or denied like the others.
                                Some(subs) => {
                                    if !subs.contains(&sub) {
                                        return Err(ERR_UNKNOWN);
                                    }
                                }
                                // A first-argument rule (`+select|0`): only allowed, never
                                // denied.
                                None if first == b'+' && !sub.is_empty() && !sub.contains('|') => {}
                                None => return Err(ERR_UNKNOWN),
                            },
                        }
                        // A subcommand rule that changes nothing is not kept: Redis
                        // describes permissions, not the rules that led to them.
                        let args = [
                            Bytes::copy_from_slice(cmd.as_bytes()),
                            Bytes::copy_from_slice(sub.as_bytes()),
                        ];
                        let sub_spec = crate::cmd::server_cmds::lookup_sub(spec.name, &args[1]);
                        if self.allows_command(spec, sub_spec, &args) == (first == b'+') {
                            return Ok(());
                        }
                    }
                }
                let rule = lower.to_string();
                self.command_rules.retain(|r| r[1..] != rule[1..]);
                self.command_rules.push(rule);
            }
            _ => return Err(ERR_SYNTAX),
        }
        Ok(())
    }

    fn add_key(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), &'static str> {
        if read && write && pattern == b"*" {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        if self.all_keys {
            return Err(ERR_AFTER_ALLKEYS);
        }
        let pattern = String::from_utf8_lossy(pattern).into_owned();
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern,
                read,
                write,
            }),
        }
        Ok(())
    }

    /// Whether every command, key and channel is allowed (no check needed).
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.command_rules.is_empty() && self.all_keys && self.all_channels
    }

    /// Whether a password opens this user (disabled users open with none).
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&hash_password(pass)))
    }

    /// Whether the rules allow the command (`sub`: its subcommand, for container commands).
    pub fn allows_command(
        &self,
        spec: &CommandSpec,
        sub: Option<&SubSpec>,
        args: &[Bytes],
    ) -> bool {
        let mut allowed = self.all_commands;
        let mut cats = None;
        for r in &self.command_rules {
            let (allow, body) = (r.starts_with('+'), &r[1..]);
            let hit = if let Some(cat) = body.strip_prefix('@') {
                let cats = *cats.get_or_insert_with(|| category::of(spec, sub));
                category::bit(cat).is_some_and(|b| cats & b != 0)
            } else if let Some((cmd, first)) = body.split_once('|') {
                cmd == spec.name
                    && args
                        .get(1)
                        .is_some_and(|a| a.eq_ignore_ascii_case(first.as_bytes()))
            } else {
                body == spec.name
            };
            if hit {
                allowed = allow;
            }
        }
        allowed
    }

    /// Whether a key pattern grants `read`/`write` access (as needed) to `key`.
    pub fn allows_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.all_keys
            || self.keys.iter().any(|p| {
                (p.read || !read)
                    && (p.write || !write)
                    && matches(p.pattern.as_bytes(), key, false)
            })
    }

    /// Whether the user may use `channel`; a PSUBSCRIBE pattern (`literal`) must be one of
    /// the user's patterns exactly, as in Redis.
    pub fn allows_channel(&self, channel: &[u8], literal: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if literal {
                    p.as_bytes() == channel
                } else {
                    matches(p.as_bytes(), channel, false)
                }
            })
    }

    /// The full check of one command: the command, then its keys, then its channels.
    pub fn check(
        &self,
        spec: &CommandSpec,
        sub: Option<&SubSpec>,
        args: &[Bytes],
    ) -> Result<(), Denied> {
        if self.unrestricted() {
            return Ok(());
        }
        if !self.allows_command(spec, sub, args) {
            return Err(Denied::Command);
        }
        // Sharded pub/sub declares its channels as keys; they are checked as channels.
        if !self.all_keys && spec.flags & flag::PUBSUB == 0 {
            let write = spec.flags & flag::WRITE != 0;
            let read = !write || !writes_only(spec.name, args);
            for (nth, i) in spec.key_indexes(args).into_iter().enumerate() {
                let (read, write) = key_access(spec.name, nth).unwrap_or((read, write));
                if let Some(k) = args.get(i) {
                    if !self.allows_key(k, read, write) {
                        return Err(Denied::Key(i));
                    }
                }
            }
        }
        if !self.all_channels {
            let (range, literal) = match spec.name {
                "subscribe" | "ssubscribe" => (1..args.len(), false),
                "psubscribe" => (1..args.len(), true),
                "publish" | "spublish" => (1..2.min(args.len()), false),
                _ => (0..0, false),
            };
            for i in range {
                if !self.allows_channel(&args[i], literal) {
                    return Err(Denied::Channel(i));
                }
            }
        }
        Ok(())
    }

    fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize_payload {
            Some(true) => f.push("sanitize-payload"),
            Some(false) => f.push("skip-sanitize-payload"),
            None => {}
        }
        f
    }

    fn keys_text(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let one = |k: &KeyPattern| match (k.read, k.write) {
            (true, true) => format!("~{}", k.pattern),
            (true, false) => format!("%R~{}", k.pattern),
            _ => format!("%W~{}", k.pattern),
        };
        self.keys.iter().map(one).collect::<Vec<_>>().join(" ")
    }

    fn channels_text(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn commands_text(&self) -> String {
        let mut s = String::from(if self.all_commands { "+@all" } else { "-@all" });
        for r in &self.command_rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// The user as `ACL LIST` prints it (after `user <name> `).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        let keys = self.keys_text();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if !self.all_channels {
            parts.push("resetchannels".into());
        }
        let channels = self.channels_text();
        if !channels.is_empty() {
            parts.push(channels);
        }
        parts.push(self.commands_text());
        parts.join(" ")
    }

    /// The `ACL GETUSER` reply (a map; RESP2 clients see it flattened).
    pub fn getuser_frame(&self) -> Frame {
        let bulk = |s: &str| Frame::bulk(s.as_bytes().to_vec());
        Frame::Map(vec![
            (
                bulk("flags"),
                Frame::Array(self.flags().into_iter().map(bulk).collect()),
            ),
            (
                bulk("passwords"),
                Frame::Array(self.passwords.iter().map(|p| bulk(p)).collect()),
            ),
            (bulk("commands"), bulk(&self.commands_text())),
            (bulk("keys"), bulk(&self.keys_text())),
            (bulk("channels"), bulk(&self.channels_text())),
            (bulk("selectors"), Frame::Array(vec![])),
        ])
    }
}

/// The users a node enforces: the metadata's, with `default` always present and this node's
/// `requirepass` laid over it.
pub struct Users {
    version: u64,
    generation: u64,
    map: HashMap<String, Arc<User>>,
}

impl Users {
    pub fn build(stored: &BTreeMap<String, User>, requirepass: Option<&str>) -> Users {
        let mut map: HashMap<String, Arc<User>> = stored
            .iter()
            .map(|(n, u)| (n.clone(), Arc::new(u.clone())))
            .collect();
        let mut default = stored
            .get(DEFAULT_USER)
            .cloned()
            .unwrap_or_else(User::builtin_default);
        if let Some(p) = requirepass {
            // As `CONFIG SET requirepass`: the default user needs that password.
            let h = hash_password(p.as_bytes());
            default.nopass = false;
            if !default.passwords.contains(&h) {
                default.passwords.push(h);
            }
        }
        map.insert(DEFAULT_USER.to_string(), Arc::new(default));
        Users {
            version: 0,
            generation: 0,
            map,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<User>> {
        self.map.get(name)
    }

    pub fn default_user(&self) -> &User {
        match self.map.get(DEFAULT_USER) {
            Some(u) => u,
            None => unreachable_default(),
        }
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.map.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// `Users::build` always inserts `default`; this keeps `default_user` total without a panic.
fn unreachable_default() -> &'static User {
    static D: std::sync::OnceLock<User> = std::sync::OnceLock::new();
    D.get_or_init(User::builtin_default)
}

/// Entries the ACL log keeps (Redis' `acllog-max-len` default).
const LOG_MAX: usize = 128;
/// A denial like a recent one (same reason, context, object, user) is counted in it.
const LOG_GROUP: Duration = Duration::from_secs(60);

struct LogEntry {
    count: u64,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    updated: Instant,
    client_info: String,
}

/// Subcommands of Redis container commands that the command table runs as one command.
fn plain_container_subs(cmd: &str) -> Option<&'static [&'static str]> {
    match cmd {
        "xgroup" => Some(&[
            "create",
            "createconsumer",
            "delconsumer",
            "destroy",
            "setid",
            "help",
        ]),
        "xinfo" => Some(&["consumers", "groups", "stream", "help"]),
        "object" => Some(&["encoding", "freq", "help", "idletime", "refcount"]),
        _ => None,
    }
}

/// `container|sub`, the name Redis uses in denials and logs, for a subcommand of a
/// container the table runs as one command (None otherwise).
pub fn plain_sub_name(name: &str, args: &[Bytes]) -> Option<String> {
    // Looked up first: this runs for every command a client sends.
    let subs = plain_container_subs(name)?;
    let arg = args.get(1)?;
    let sub = subs
        .iter()
        .find(|s| s.as_bytes().eq_ignore_ascii_case(arg))?;
    Some(format!("{name}|{sub}"))
}

/// One node's ACL state: the cached users and the log of denials.
#[derive(Default)]
pub struct Acl {
    cache: RwLock<Option<Arc<Users>>>,
    /// Bumped when `requirepass` changes (the metadata version covers the rest).
    generation: AtomicU64,
    log: Mutex<VecDeque<LogEntry>>,
}

/// The access the `nth` key of a write command needs (read, write) where its keys differ,
/// after Redis' key specs: ACCESS needs read, INSERT/DELETE/UPDATE write. A `*STORE`
/// destination is only written, its sources only read; a move's source is read and
/// written, its destination only written.
fn key_access(name: &str, nth: usize) -> Option<(bool, bool)> {
    let first = nth == 0;
    Some(match name {
        "sinterstore" | "sunionstore" | "sdiffstore" | "zinterstore" | "zunionstore"
        | "zdiffstore" | "zrangestore" | "bitop" | "geosearchstore" => (!first, first),
        "copy" => (first, !first),
        "smove" | "lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "rename" | "renamenx" => {
            (first, true)
        }
        // The destination is read too (merged into).
        "pfmerge" => (true, first),
        _ => return None,
    })
}

/// Write commands whose keys Redis' key specs mark write-only (no ACCESS flag: they return
/// and move no stored data), so `%W~` suffices. Every other write command's keys need read
/// access too (GETSET, INCR, pops hand stored data back), except where `key_access` says.
fn writes_only(name: &str, args: &[Bytes]) -> bool {
    match name {
        // SET ... GET returns the old value.
        "set" => !args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")),
        "setex" | "psetex" | "setnx" | "mset" | "msetnx" | "append" | "setrange" | "del"
        | "unlink" | "expire" | "pexpire" | "expireat" | "pexpireat" | "persist" | "lpush"
        | "rpush" | "lpushx" | "rpushx" | "linsert" | "lset" | "lrem" | "ltrim" | "sadd"
        | "srem" | "hset" | "hmset" | "hsetnx" | "hdel" | "zadd" | "zrem" | "zremrangebyscore"
        | "zremrangebyrank" | "zremrangebylex" | "xadd" | "xdel" | "xtrim" | "pfadd" => true,
        _ => false,
    }
}

impl Acl {
    /// The users as of the node's current metadata and `requirepass`.
    pub fn users(&self, meta: &MetaView, requirepass: impl Fn() -> Option<String>) -> Arc<Users> {
        let state = meta.current();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(u) = self.cache.read().as_ref() {
            if u.version == state.version && u.generation == generation {
                return u.clone();
            }
        }
        let mut users = Users::build(&state.users, requirepass().as_deref());
        users.version = state.version;
        users.generation = generation;
        let users = Arc::new(users);
        *self.cache.write() = Some(users.clone());
        users
    }

    pub fn requirepass_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a denial: reason `command`, `key`, `channel` or `auth`.
    pub fn log(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
    ) {
        let now = Instant::now();
        let mut log = self.log.lock();
        let similar = log.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now.duration_since(e.updated) < LOG_GROUP
        });
        let entry = match similar.and_then(|i| log.remove(i)) {
            Some(mut e) => {
                e.count += 1;
                e.updated = now;
                e.client_info = client_info;
                e
            }
            None => LogEntry {
                count: 1,
                reason,
                context,
                object,
                username,
                updated: now,
                client_info,
            },
        };
        log.push_front(entry);
        log.truncate(LOG_MAX);
    }

    pub fn log_reset(&self) {
        self.log.lock().clear();
    }

    /// `ACL LOG [count]`: newest first.
    pub fn log_frame(&self, count: usize) -> Frame {
        let bulk = |s: &str| Frame::bulk(s.as_bytes().to_vec());
        let now = Instant::now();
        Frame::Array(
            self.log
                .lock()
                .iter()
                .take(count)
                .map(|e| {
                    let age = now.duration_since(e.updated).as_millis() as f64 / 1000.0;
                    Frame::Map(vec![
                        (bulk("count"), Frame::Integer(e.count as i64)),
                        (bulk("reason"), bulk(e.reason)),
                        (bulk("context"), bulk(e.context)),
                        (bulk("object"), bulk(&e.object)),
                        (bulk("username"), bulk(&e.username)),
                        (bulk("age-seconds"), Frame::Double(age)),
                        (bulk("client-info"), bulk(&e.client_info)),
                    ])
                })
                .collect(),
        )
    }
}

/// Redis' NOPERM error of a top-level denial.
pub fn noperm(denied: &Denied, fullname: &str) -> String {
    match denied {
        Denied::Command => {
            format!("NOPERM this user has no permissions to run the '{fullname}' command")
        }
        Denied::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    }
}

/// Redis' error for a queued command the user lost the right to run before EXEC.
pub fn exec_noperm(denied: &Denied) -> String {
    let reason = match denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")
}

/// `ACL DRYRUN`'s description of a denial.
pub fn dryrun_text(denied: &Denied, fullname: &str, args: &[Bytes]) -> String {
    let arg = |i: &usize| String::from_utf8_lossy(&args[*i]).into_owned();
    match denied {
        Denied::Command => format!("This user has no permissions to run the '{fullname}' command"),
        Denied::Key(i) => format!(
            "This user has no permissions to access the '{}' key",
            arg(i)
        ),
        Denied::Channel(i) => format!(
            "This user has no permissions to access the '{}' channel",
            arg(i)
        ),
    }
}

/// The ACL log's reason and object of a denial.
pub fn log_reason(denied: &Denied, fullname: &str, args: &[Bytes]) -> (&'static str, String) {
    let arg = |i: &usize| String::from_utf8_lossy(&args[*i]).into_owned();
    match denied {
        Denied::Command => ("command", fullname.to_string()),
        Denied::Key(i) => ("key", arg(i)),
        Denied::Channel(i) => ("channel", arg(i)),
    }
}

/// On every metadata change, disconnects the clients Redis would have: those whose user was
/// deleted, and subscribers to a channel or pattern their user may no longer use (the change
/// may have come from any node).
pub async fn reap_clients(srv: Arc<super::Server>) {
    let mut rx = srv.meta.subscribe();
    let mut seen = srv.meta.current().users.clone();
    while rx.changed().await.is_ok() {
        // Most metadata changes are about shards: nothing to do unless the users changed.
        let now = rx.borrow_and_update().users.clone();
        if now == seen {
            continue;
        }
        seen = now;
        let users = srv.users();
        for c in srv.clients.all() {
            let user = c.fields.lock().user.clone();
            if users.get(&user).is_none() {
                tracing::info!(client = c.id, user = %user, "closing a client of a deleted user");
                c.kill();
            }
        }
        for (kind, name, c) in srv.pubsub.subscriptions() {
            let user = c.fields.lock().user.clone();
            let literal = kind == super::pubsub::SubKind::Pattern;
            if users
                .get(&user)
                .is_some_and(|u| !u.allows_channel(&name, literal))
            {
                tracing::info!(client = c.id, user = %user, "closing a subscriber that lost access to its channel");
                c.kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::lookup;
    use crate::cmd::server_cmds::lookup_sub;

    use crate::testutil::args as b;

    fn user(rules: &[&str]) -> User {
        let mut u = User::default();
        u.apply_all(&b(rules)).expect("valid rules");
        u
    }

    fn check(u: &User, args: &[&str]) -> Result<(), Denied> {
        let args = b(args);
        let spec = lookup(&args[0]).expect("known command");
        let sub = args.get(1).and_then(|s| lookup_sub(spec.name, s));
        u.check(spec, sub, &args)
    }

    const P1: &str = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a";

    #[test]
    fn hashes_like_redis() {
        assert_eq!(hash_password(b"p1"), P1);
        assert_eq!(
            hash_rules(&b(&[">p1", "<p1", "~k"])),
            vec![format!("#{P1}"), format!("!{P1}"), "~k".into()]
        );
    }

    #[test]
    fn descriptions_match_redis() {
        assert_eq!(User::builtin_default().describe(), "on nopass ~* &* +@all");
        assert_eq!(User::default().describe(), "off resetchannels -@all");
        let alice = user(&["on", ">p1", "~k*", "&ch*", "+get", "+set", "+client|list"]);
        assert_eq!(
            alice.describe(),
            format!("on #{P1} ~k* resetchannels &ch* -@all +get +set +client|list")
        );
        assert_eq!(
            user(&["%R~r*", "%W~w*", "%RW~b*"]).describe(),
            "off %R~r* %W~w* ~b* resetchannels -@all"
        );
        assert_eq!(
            user(&["%R~a", "%W~a", "%R~b", "~b"]).describe(),
            "off ~a ~b resetchannels -@all"
        );
        assert_eq!(
            user(&["reset"]).describe(),
            "off sanitize-payload resetchannels -@all"
        );
        assert_eq!(
            user(&[">x", "nopass"]).describe(),
            "off nopass resetchannels -@all"
        );
        // A repeated rule moves to the end; +@all / -@all start over.
        assert_eq!(
            user(&["+get", "+set", "-get"]).describe(),
            "off resetchannels -@all +set -get"
        );
        assert_eq!(
            user(&["+get", "allcommands", "-debug"]).describe(),
            "off resetchannels +@all -debug"
        );
        assert_eq!(user(&["allkeys", "allchannels"]).keys_text(), "~*");
        assert_eq!(user(&["&*"]).describe(), "off &* -@all");
        assert_eq!(
            user(&["+select|0"]).describe(),
            "off resetchannels -@all +select|0"
        );
    }

    #[test]
    fn every_modifier_and_error() {
        let mut u = User::default();
        let err = |u: &mut User, r: &str| u.apply_all(&[r]).expect_err(r);
        assert_eq!(
            err(&mut u, "bogus"),
            "Error in ACL SETUSER modifier 'bogus': Syntax error"
        );
        assert_eq!(
            err(&mut u, "+nosuch"),
            "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        assert_eq!(
            err(&mut u, "+@nosuch"),
            "Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL"
        );
        err(&mut u, "+client|nosuch");
        err(&mut u, "-get|x");
        err(&mut u, "%X~a");
        err(&mut u, "%R");
        err(&mut u, "");
        assert!(err(&mut u, "#abc").ends_with(ERR_HASH));
        assert!(err(&mut u, &format!("#{}", P1.to_uppercase())).ends_with(ERR_HASH));
        assert!(err(&mut u, "<nope").ends_with(ERR_NO_SUCH_PASS));
        assert!(err(&mut u, &format!("!{P1}")).ends_with(ERR_NO_SUCH_PASS));
        let mut all = user(&["allkeys", "allchannels"]);
        assert!(err(&mut all, "~foo").ends_with(ERR_AFTER_ALLKEYS));
        assert!(err(&mut all, "&foo").ends_with(ERR_AFTER_ALLCHANNELS));
        // All or nothing: a bad rule leaves the user as it was.
        let before = u.clone();
        assert!(u.apply_all(&["on", "bogus"]).is_err());
        assert_eq!(u, before);

        let mut u = user(&["ON", ">a", &format!("#{P1}")]);
        assert!(u.enabled && !u.nopass);
        assert_eq!(u.passwords, vec![hash_password(b"a"), P1.to_string()]);
        assert!(u.password_ok(b"a") && u.password_ok(b"p1") && !u.password_ok(b"b"));
        u.apply_all(&["<a", &format!("!{P1}")]).expect("removable");
        assert!(u.passwords.is_empty() && !u.password_ok(b"a"));
        u.apply_all(&["nopass"]).expect("nopass");
        assert!(u.password_ok(b"anything"));
        u.apply_all(&["resetpass"]).expect("resetpass");
        assert!(!u.nopass && !u.password_ok(b""));
        u.apply_all(&["off", "nopass"]).expect("off");
        assert!(!u.password_ok(b""), "a disabled user never authenticates");
        u.apply_all(&[
            "~a",
            "resetkeys",
            "&c",
            "resetchannels",
            "skip-sanitize-payload",
        ])
        .expect("resets");
        assert!(u.keys.is_empty() && u.channels.is_empty());
        assert_eq!(u.flags(), ["off", "nopass", "skip-sanitize-payload"]);
        u.apply_all(&["clearselectors", "nocommands", "+@all"])
            .expect("commands");
        assert!(u.all_commands && u.command_rules.is_empty());
    }

    #[test]
    fn command_category_and_key_checks() {
        let u = user(&[
            "on",
            "nopass",
            "+@string",
            "-set",
            "+client|list",
            "~k*",
            "%R~r*",
        ]);
        assert_eq!(check(&u, &["get", "k1"]), Ok(()));
        assert_eq!(check(&u, &["GET", "zz"]), Err(Denied::Key(1)));
        assert_eq!(check(&u, &["set", "k1", "v"]), Err(Denied::Command));
        assert_eq!(check(&u, &["hget", "k1", "f"]), Err(Denied::Command));
        assert_eq!(check(&u, &["client", "list"]), Ok(()));
        assert_eq!(check(&u, &["client", "kill", "x"]), Err(Denied::Command));
        // %R~ grants reads only.
        assert_eq!(check(&u, &["get", "r1"]), Ok(()));
        assert_eq!(check(&u, &["append", "r1", "x"]), Err(Denied::Key(1)));
        assert_eq!(check(&u, &["append", "k1", "x"]), Ok(()));
        assert_eq!(check(&u, &["mget", "k1", "r2", "x"]), Err(Denied::Key(3)));
        // %W~ grants writes that hand no stored data back, as Redis 7 decides.
        let w = user(&["on", "nopass", "+@all", "%W~s*", "~m*"]);
        assert_eq!(check(&w, &["set", "s1", "v"]), Ok(()));
        assert_eq!(check(&w, &["set", "s1", "v", "EX", "9"]), Ok(()));
        assert_eq!(check(&w, &["del", "s1"]), Ok(()));
        assert_eq!(check(&w, &["lpush", "s1", "x"]), Ok(()));
        for denied in [
            &["set", "s1", "v", "get"][..],
            &["getdel", "s1"],
            &["getset", "s1", "v"],
            &["incr", "s9"],
            &["lpop", "s1"],
            &["lmove", "slist", "m2", "left", "left"],
            &["sunionstore", "m1", "sset"],
            &["get", "s1"],
        ] {
            assert!(check(&w, denied).is_err(), "{denied:?} allowed with %W~");
        }
        // Sources of *STORE and COPY are only read, destinations only written; a move's
        // source is read and written, its destination written (Redis' key specs).
        let rw = user(&["on", "nopass", "+@all", "%R~r*", "%W~w*", "~b*"]);
        for allowed in [
            &["sinterstore", "w1", "r1", "r2"][..],
            &["zunionstore", "w1", "2", "r1", "r2"],
            &["zrangestore", "w1", "r1", "0", "-1"],
            &["bitop", "and", "w1", "r1", "r2"],
            &["copy", "r1", "w1"],
            &["smove", "b1", "w1", "m"],
            &["lmove", "b1", "w1", "left", "right"],
            &["rename", "b1", "w1"],
            &["pfmerge", "b1", "r1"],
        ] {
            assert_eq!(check(&rw, allowed), Ok(()), "{allowed:?}");
        }
        for (denied, key) in [
            (&["sinterstore", "r1", "r2"][..], 1),
            (&["sunionstore", "w1", "w2"], 2),
            (&["copy", "w1", "w2"], 1),
            (&["smove", "r1", "w1", "m"], 1),
            (&["rename", "w1", "b1"], 1),
            (&["pfmerge", "w1", "r1"], 1),
        ] {
            assert_eq!(check(&rw, denied), Err(Denied::Key(key)), "{denied:?}");
        }
        // Subcommands of XGROUP, XINFO and OBJECT are rules of their own, denied too.
        let sub = user(&[
            "on",
            "nopass",
            "~*",
            "+@all",
            "-xgroup|destroy",
            "-object|freq",
        ]);
        assert_eq!(check(&sub, &["xgroup", "create", "s", "g", "$"]), Ok(()));
        assert_eq!(
            check(&sub, &["XGROUP", "DESTROY", "s", "g"]),
            Err(Denied::Command)
        );
        assert_eq!(check(&sub, &["object", "encoding", "k"]), Ok(()));
        assert_eq!(check(&sub, &["object", "freq", "k"]), Err(Denied::Command));
        let mut bad = User::default();
        assert!(bad.apply_all(&b(&["-xgroup|nosuch"])).is_err());
        assert!(bad.apply_all(&b(&["+xinfo|stream|x"])).is_err());
        assert!(bad.apply_all(&b(&["-get|x"])).is_err());

        let admin = user(&["+@all", "-@dangerous", "+flushdb", "allkeys"]);
        assert_eq!(check(&admin, &["flushdb"]), Ok(()));
        assert_eq!(check(&admin, &["flushall"]), Err(Denied::Command));
        assert_eq!(check(&admin, &["keys", "*"]), Err(Denied::Command));
        assert_eq!(check(&admin, &["config", "get", "x"]), Err(Denied::Command));
        assert_eq!(check(&admin, &["hset", "h", "f", "v"]), Ok(()));
        let first_arg = user(&["+select|0"]);
        assert_eq!(check(&first_arg, &["select", "0"]), Ok(()));
        assert_eq!(check(&first_arg, &["select", "1"]), Err(Denied::Command));
        // A glob with a class and an escape, as Redis' stringmatch.
        let glob = user(&["+get", "~user:[0-9]*", "~a\\*"]);
        assert_eq!(check(&glob, &["get", "user:7x"]), Ok(()));
        assert_eq!(check(&glob, &["get", "user:x"]), Err(Denied::Key(1)));
        assert_eq!(check(&glob, &["get", "a*"]), Ok(()));
        assert_eq!(check(&glob, &["get", "ab"]), Err(Denied::Key(1)));
    }

    #[test]
    fn channel_checks() {
        let u = user(&["+@all", "allkeys", "&news.*"]);
        assert_eq!(check(&u, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(
            check(&u, &["publish", "sport", "m"]),
            Err(Denied::Channel(1))
        );
        assert_eq!(
            check(&u, &["subscribe", "news.x", "sport"]),
            Err(Denied::Channel(2))
        );
        assert_eq!(check(&u, &["psubscribe", "news.*"]), Ok(()));
        assert_eq!(
            check(&u, &["psubscribe", "news.a*"]),
            Err(Denied::Channel(1))
        );
        assert_eq!(check(&u, &["spublish", "news.b", "m"]), Ok(()));
        assert_eq!(check(&u, &["unsubscribe", "sport"]), Ok(()));
    }

    #[test]
    fn requirepass_is_the_default_password() {
        let users = Users::build(&BTreeMap::new(), None);
        assert!(users.default_user().nopass);
        let users = Users::build(&BTreeMap::new(), Some("pw"));
        let d = users.default_user();
        assert!(!d.nopass && d.password_ok(b"pw") && !d.password_ok(b"x"));
        let mut stored = BTreeMap::new();
        stored.insert("default".to_string(), user(&["on", ">other", "+@all"]));
        stored.insert("bob".to_string(), User::default());
        let users = Users::build(&stored, Some("pw"));
        let d = users.default_user();
        assert!(d.password_ok(b"pw") && d.password_ok(b"other"));
        assert_eq!(users.names(), ["bob", "default"]);
    }

    #[test]
    fn getuser_shape() {
        let f = user(&["on", ">p1", "~k*", "+get"]).getuser_frame();
        let Frame::Map(fields) = f else {
            panic!("map expected")
        };
        let names: Vec<Frame> = fields.iter().map(|(k, _)| k.clone()).collect();
        let bulk = |s: &str| Frame::bulk(s.as_bytes().to_vec());
        assert_eq!(
            names,
            [
                "flags",
                "passwords",
                "commands",
                "keys",
                "channels",
                "selectors"
            ]
            .map(bulk)
        );
        assert_eq!(fields[0].1, Frame::Array(vec![bulk("on")]));
        assert_eq!(fields[1].1, Frame::Array(vec![bulk(P1)]));
        assert_eq!(fields[2].1, bulk("-@all +get"));
        assert_eq!(fields[3].1, bulk("~k*"));
        assert_eq!(fields[4].1, bulk(""));
    }

    #[test]
    fn log_groups_similar_denials() {
        let acl = Acl::default();
        acl.log(
            "command",
            "toplevel",
            "get".into(),
            "u".into(),
            "id=1".into(),
        );
        acl.log("key", "toplevel", "k".into(), "u".into(), "id=1".into());
        acl.log(
            "command",
            "toplevel",
            "get".into(),
            "u".into(),
            "id=2".into(),
        );
        let Frame::Array(entries) = acl.log_frame(10) else {
            panic!("array expected")
        };
        assert_eq!(entries.len(), 2);
        let Frame::Map(first) = &entries[0] else {
            panic!("map expected")
        };
        assert_eq!(first[0].1, Frame::Integer(2));
        let Frame::Array(one) = acl.log_frame(1) else {
            panic!("array expected")
        };
        assert_eq!(one.len(), 1);
        acl.log_reset();
        assert_eq!(acl.log_frame(10), Frame::Array(vec![]));
    }
}
