//! One client connection: read, parse, dispatch, reply.
//!
//! Every command parsed from one read is executed in order and its reply appended to one
//! output buffer, written with a single write when the read buffer is drained (or earlier if
//! the output grows large, or before the connection blocks). Buffers start empty and are
//! released when idle, so an idle connection costs little.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, mpsc, watch};

use super::acl::{self, Users, DEFAULT_USER};
use super::blocked::{Outcome, WaitKey};
use super::client_stream::ClientStream;
use super::clients::ClientHandle;
use super::Server;
use crate::cmd::server_cmds::{lookup_sub, sub_arity_ok, subcommands, SubSpec};
use crate::cmd::{self, flag, CmdError, CommandSpec, Kind};
use crate::protocol::{Frame, Parser};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Output written early once this much is pending.
const OUT_FLUSH_AT: usize = 1 << 20;
/// Most writes of one pipeline proposed together.
const MAX_PIPELINED_BATCH: usize = 1024;
/// Buffers larger than this are released after use.
const KEEP_BUF: usize = 64 * 1024;

/// What a command sends back.
pub enum Reply {
    None,
    One(Frame),
    Many(Vec<Frame>),
}

impl From<Frame> for Reply {
    fn from(f: Frame) -> Reply {
        Reply::One(f)
    }
}

pub fn err(msg: impl Into<String>) -> Reply {
    Reply::One(Frame::Error(msg.into()))
}

pub struct Conn {
    pub srv: Arc<Server>,
    pub handle: Arc<ClientHandle>,
    stream: ClientStream,
    msg_rx: mpsc::UnboundedReceiver<Frame>,
    shutdown: watch::Receiver<bool>,
    rbuf: BytesMut,
    out: BytesMut,
    parser: Parser,
    pub proto: u8,
    /// The ACL user this connection authenticated as; None until it authenticates (it then
    /// acts as `default`, allowed only while `default` needs no password).
    pub user: Option<String>,
    /// `User::born` of that user when this connection authenticated.
    user_born: u64,
    /// Close once the pending output is written (QUIT, protocol error, CLIENT KILL self).
    pub closing: bool,
    pub multi: Option<Vec<Vec<Bytes>>>,
    pub multi_error: bool,
    pub watched: Vec<(Bytes, u64)>,
    /// Keys applied on this node since the first WATCH (see `watched_key_touched`).
    watch_rx: Option<broadcast::Receiver<Arc<Vec<Bytes>>>>,
    pub subs: HashSet<Bytes>,
    pub psubs: HashSet<Bytes>,
    pub ssubs: HashSet<Bytes>,
    pub reply_off: bool,
    /// Asked for the cluster topology (or READONLY): gets -MOVED instead of proxying.
    pub cluster_aware: bool,
    /// READONLY: reads may be served by a replica of the shard.
    pub readonly: bool,
    /// The shard of the keys queued in the current MULTI so far.
    pub multi_shard: Option<u64>,
    /// CLIENT REPLY SKIP was just executed: skip the next command's reply.
    pub skip_armed: bool,
    skip_this: bool,
}

/// Serves one accepted connection until it closes.
pub async fn handle(srv: Arc<Server>, mut stream: ClientStream, peer: SocketAddr, local: String) {
    let Some((handle, msg_rx)) =
        srv.clients
            .register(peer.to_string(), local, srv.settings.maxclients())
    else {
        srv.stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    };
    let user = initial_user(&srv.users());
    let shutdown = srv.shutdown_receiver();
    let mut conn = Conn {
        parser: Parser::new(srv.settings.proto_max_bulk_len()),
        srv: srv.clone(),
        handle: handle.clone(),
        stream,
        msg_rx,
        shutdown,
        rbuf: BytesMut::new(),
        out: BytesMut::new(),
        proto: 2,
        cluster_aware: false,
        readonly: false,
        multi_shard: None,
        user,
        user_born: 0,
        closing: false,
        multi: None,
        multi_error: false,
        watched: Vec::new(),
        watch_rx: None,
        subs: HashSet::new(),
        psubs: HashSet::new(),
        ssubs: HashSet::new(),
        reply_off: false,
        skip_armed: false,
        skip_this: false,
    };
    let unauthenticated = conn.auth_required(&srv.users());
    conn.parser.set_unauthenticated(unauthenticated);
    if let Err(e) = conn.run().await {
        tracing::debug!(client = handle.id, error = %e, "connection closed with an error");
    }
    conn.unsubscribe_everything();
    srv.clients.unregister(handle.id);
}

/// A new (or RESET) connection is authenticated as `default` if that needs no password.
pub fn initial_user(users: &Users) -> Option<String> {
    let d = users.default_user();
    (d.nopass && d.enabled).then(|| DEFAULT_USER.to_string())
}

/// The kinds of pipelined batches (`Conn::process_input`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Batch {
    Writes,
    Reads,
}

/// The command names of a batch, for the per-command metrics.
fn cmd_names(cmds: &[Vec<Bytes>]) -> Vec<&'static str> {
    cmds.iter()
        .map(|a| {
            a.first()
                .and_then(|n| cmd::lookup(n))
                .map_or("unknown", |s| s.name)
        })
        .collect()
}

/// Commands any connection may run, authenticated or not, whatever its permissions (Redis'
/// `no-auth` flag).
fn no_auth(name: &str) -> bool {
    matches!(name, "auth" | "hello" | "quit" | "reset")
}

/// How often a client blocked on keys of a shard hosted elsewhere retries.
const REMOTE_POLL: Duration = Duration::from_millis(100);

/// A poll timer that keeps its rhythm however often the wait around it is interrupted (a
/// fresh sleep per wait would never fire on a node applying other writes all the time).
fn remote_poll() -> tokio::time::Interval {
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + REMOTE_POLL, REMOTE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll
}

/// Waits forever: the disabled branch of a select.
async fn never<T>() -> T {
    std::future::pending().await
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => never().await,
    }
}

impl Conn {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            self.process_input().await?;
            self.flush().await?;
            if self.closing || self.handle.is_killed() || *self.shutdown.borrow() {
                return Ok(());
            }
            self.release_idle_buffers();
            let idle_deadline = self.idle_deadline();
            let room = self.read_room();
            tokio::select! {
                _ = self.handle.kill_signal.notified() => {}
                _ = self.shutdown.changed() => {}
                msg = self.msg_rx.recv() => {
                    if let Some(m) = msg {
                        self.push_message(m);
                        let mut n = 0;
                        while n < 1024 {
                            match self.msg_rx.try_recv() {
                                Ok(m) => self.push_message(m),
                                Err(_) => break,
                            }
                            n += 1;
                        }
                    }
                }
                n = self.stream.read_into(&mut self.rbuf, room) => {
                    if !self.count_read(n?) {
                        return Ok(());
                    }
                }
                _ = sleep_until_opt(idle_deadline) => {
                    tracing::debug!(client = self.handle.id, "closing idle client");
                    return Ok(());
                }
            }
        }
    }

    /// How much room the next read wants: what the parser still needs for the argument
    /// it is in (up to 64 MiB), at least one chunk.
    fn read_room(&self) -> usize {
        self.parser
            .wanted(self.rbuf.len())
            .clamp(READ_CHUNK, 64 << 20)
    }

    /// Counts a read of `n` bytes; `false` at end of stream.
    fn count_read(&mut self, n: usize) -> bool {
        self.srv
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        n > 0
    }

    fn idle_deadline(&self) -> Option<tokio::time::Instant> {
        let secs = self.srv.settings.timeout_secs();
        if secs == 0 || self.sub_count() > 0 {
            return None;
        }
        let last = *self.handle.last_active.lock();
        Some(tokio::time::Instant::from_std(
            last + Duration::from_secs(secs),
        ))
    }

    fn release_idle_buffers(&mut self) {
        if self.rbuf.is_empty() && !self.parser.in_progress() {
            // Drops this connection's claim on the read allocation (parsed arguments may
            // still share it until they are dropped).
            self.rbuf = BytesMut::new();
        }
        if self.out.is_empty() && self.out.capacity() > KEEP_BUF {
            self.out = BytesMut::new();
        }
    }

    fn push_message(&mut self, m: Frame) {
        let before = self.out.len();
        m.encode(&mut self.out, self.proto);
        let size = self.out.len() - before;
        // The publisher's estimate and the encoded size differ; never underflow.
        let _ = self
            .handle
            .pending_out
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(size))
            });
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        // A client that stopped reading must not pin this task once it is killed (its
        // output limit, CLIENT KILL): the write gives way to the kill.
        if self.handle.is_killed() {
            return Err(io::Error::other("client killed"));
        }
        // The `normal` class of client-output-buffer-limit (a subscriber's pushes are held to
        // the `pubsub` class where they are queued): over the hard limit the client is
        // closed, and over the soft one it must take the output within the soft seconds.
        let limit = (self.sub_count() == 0).then(|| self.srv.settings.normal_output_limit());
        let pending = self.out.len() as u64;
        if limit.is_some_and(|l| l.hard > 0 && pending > l.hard) {
            return Err(self.output_limit_reached("hard", pending));
        }
        let soft_deadline = limit
            .filter(|l| l.soft > 0 && l.soft_secs > 0 && pending > l.soft)
            .map(|l| tokio::time::Instant::now() + Duration::from_secs(l.soft_secs));
        tokio::select! {
            r = self.stream.write_all(&self.out) => r?,
            _ = self.handle.kill_write.notified() => {
                return Err(io::Error::other("client killed"));
            }
            _ = sleep_until_opt(soft_deadline) => {
                return Err(self.output_limit_reached("soft", pending));
            }
        }
        self.srv
            .stats
            .net_output_bytes
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.out.clear();
        Ok(())
    }

    /// Closes this client for its output buffer (Redis: "scheduled to be closed ASAP for
    /// overcoming of output buffer limits"); the output is dropped, not sent.
    fn output_limit_reached(&mut self, which: &str, pending: u64) -> io::Error {
        tracing::warn!(
            client = self.handle.id,
            addr = %self.handle.addr,
            pending,
            limit = which,
            "closing client that reached the normal output buffer limit"
        );
        self.out.clear();
        self.closing = true;
        self.handle.kill();
        io::Error::other("output buffer limit reached")
    }

    async fn process_input(&mut self) -> io::Result<()> {
        // Consecutive plain writes of a pipeline are proposed together (one group-commit
        // round for all of them), consecutive plain reads wait on their read barriers
        // together (one round, not one per read), and both are answered in order; anything
        // else first waits for the batch before it.
        let mut batch: Vec<Vec<Bytes>> = Vec::new();
        let mut kind = Batch::Writes;
        while !self.closing {
            let args = match self.parser.next(&mut self.rbuf) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    self.run_batch(kind, &mut batch).await;
                    tracing::debug!(client = self.handle.id, error = %e.text(), "protocol error");
                    self.out.extend_from_slice(&e.reply());
                    self.srv.stats.error_replies.fetch_add(1, Ordering::Relaxed);
                    self.closing = true;
                    break;
                }
            };
            if let Some(k) = self.batch_kind(&args) {
                if k != kind {
                    self.run_batch(kind, &mut batch).await;
                    kind = k;
                }
                batch.push(args);
                if batch.len() >= MAX_PIPELINED_BATCH {
                    self.run_batch(kind, &mut batch).await;
                }
                continue;
            }
            self.run_batch(kind, &mut batch).await;
            self.execute(args).await?;
            if self.out.len() >= OUT_FLUSH_AT {
                self.flush().await?;
            }
            if self.handle.is_killed() {
                self.closing = true;
            }
        }
        self.run_batch(kind, &mut batch).await;
        let limit = self.srv.settings.query_buffer_limit();
        if limit > 0 && self.rbuf.len() > limit {
            tracing::warn!(
                client = self.handle.id,
                addr = %self.handle.addr,
                "closing client that reached max query buffer length"
            );
            self.closing = true;
        }
        self.handle.fields.lock().qbuf = self.rbuf.len();
        Ok(())
    }

    /// Whether a command needs nothing from the connection, so it can join a pipelined
    /// batch of its kind: a data command with keys, allowed, not blocking, not redirected,
    /// outside MULTI and pub/sub. (Reads of one pipeline are concurrent operations for
    /// linearizability: none is answered before all were sent.)
    fn batch_kind(&self, args: &[Bytes]) -> Option<Batch> {
        if self.multi.is_some()
            || self.reply_off
            || self.skip_this
            || self.skip_armed
            || (self.proto == 2 && self.sub_count() > 0)
        {
            return None;
        }
        let spec = args.first().and_then(|n| cmd::lookup(n))?;
        let kind = match spec.kind {
            Kind::Write(_) => Batch::Writes,
            // Keyspace-wide reads answer cluster-aware clients for this node's shards only
            // (`dispatch`).
            Kind::Read(_) if !crate::routing::plan::is_keyspace_wide(spec.name) => Batch::Reads,
            _ => return None,
        };
        // Subcommands have their own arity and ACL rules (`dispatch`).
        if subcommands(spec.name).is_some() {
            return None;
        }
        let users = self.srv.users();
        if self.auth_required(&users) {
            return None;
        }
        // A denied command is answered (and logged) by `dispatch`.
        let plain = users
            .get(self.acting_user())
            .is_some_and(|u| u.born == self.user_born && u.check(spec, None, args).is_ok())
            && spec.flags & flag::BLOCKING == 0
            && spec.arity_ok(args.len())
            // A redirected command is answered by `dispatch`.
            && self.redirect(spec, args).is_none();
        plain.then_some(kind)
    }

    /// Runs a batch (see `process_input`) and appends the replies in order: writes are
    /// proposed concurrently in order, reads run concurrently (their barriers share rounds).
    async fn run_batch(&mut self, kind: Batch, batch: &mut Vec<Vec<Bytes>>) {
        if batch.is_empty() {
            return;
        }
        let store = self.srv.store.clone();
        let cmds = std::mem::take(batch);
        self.account_batch(&cmds);
        let names = cmd_names(&cmds);
        let started = Instant::now();
        let replies = match kind {
            Batch::Writes => propose_in_order(&store, cmds).await,
            Batch::Reads => {
                let futs: Vec<_> = cmds.into_iter().map(|args| store.execute(args)).collect();
                crate::store::join_in_order(futs).await
            }
        };
        let took = started.elapsed();
        for (r, name) in replies.iter().zip(names) {
            self.observe(name, r.is_error(), took);
            self.emit(r);
        }
    }

    /// Counts a batch's commands and records the last as the client's last command.
    fn account_batch(&self, cmds: &[Vec<Bytes>]) {
        self.srv
            .stats
            .commands_processed
            .fetch_add(cmds.len() as u64, Ordering::Relaxed);
        *self.handle.last_active.lock() = Instant::now();
        if let Some(name) = cmds
            .last()
            .and_then(|a| a.first())
            .and_then(|n| cmd::lookup(n))
        {
            self.handle.fields.lock().last_cmd = name.name.to_string();
        }
    }

    /// Counts a command in the metrics and logs it if slower than `--slow-request-ms`.
    fn observe(&self, name: &str, error: bool, took: Duration) {
        self.srv
            .metrics
            .observe_command(name, error, Some(took.as_secs_f64()));
        if self.srv.slow_request.is_some_and(|t| took >= t) {
            tracing::warn!(
                cmd = name,
                micros = took.as_micros() as u64,
                client = self.handle.id,
                addr = %self.handle.addr,
                "slow request"
            );
        }
    }

    fn emit(&mut self, f: &Frame) {
        if f.is_error() {
            self.srv.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        }
        f.encode(&mut self.out, self.proto);
    }

    async fn execute(&mut self, args: Vec<Bytes>) -> io::Result<()> {
        self.srv
            .stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        *self.handle.last_active.lock() = Instant::now();
        let skip = std::mem::take(&mut self.skip_this);
        let name = args
            .first()
            .and_then(|n| cmd::lookup(n))
            .map_or("unknown", |s| s.name);
        let started = Instant::now();
        let reply = self.dispatch(args).await?;
        let error = match &reply {
            Reply::One(f) => f.is_error(),
            Reply::Many(fs) => fs.iter().any(Frame::is_error),
            Reply::None => false,
        };
        // Blocking commands wait by design: their time is not request latency.
        if !matches!(
            name,
            "blpop"
                | "brpop"
                | "blmove"
                | "brpoplpush"
                | "blmpop"
                | "bzpopmin"
                | "bzpopmax"
                | "bzmpop"
                | "xread"
                | "xreadgroup"
                | "subscribe"
                | "psubscribe"
                | "ssubscribe"
                | "wait"
                | "waitaof"
        ) {
            self.observe(name, error, started.elapsed());
        } else {
            self.srv.metrics.observe_command(name, error, None);
        }
        if !skip && !self.reply_off {
            match reply {
                Reply::None => {}
                Reply::One(f) => self.emit(&f),
                Reply::Many(fs) => {
                    for f in &fs {
                        self.emit(f);
                    }
                }
            }
        }
        if std::mem::take(&mut self.skip_armed) {
            self.skip_this = true;
        }
        Ok(())
    }

    pub fn sub_count(&self) -> usize {
        self.subs.len() + self.psubs.len() + self.ssubs.len()
    }

    fn flag_multi_error(&mut self) {
        if self.multi.is_some() {
            self.multi_error = true;
        }
    }

    /// The user whose permissions apply to this connection.
    pub fn acting_user(&self) -> &str {
        self.user.as_deref().unwrap_or(DEFAULT_USER)
    }

    /// Redis' `authRequired`: not authenticated, and `default` needs a password or is off.
    pub fn auth_required(&self, users: &Users) -> bool {
        let d = users.default_user();
        self.user.is_none() && (!d.nopass || !d.enabled)
    }

    /// Sets the connection's user (CLIENT LIST shows it).
    pub fn set_user(&mut self, user: Option<String>) {
        self.handle.fields.lock().user = user.as_deref().unwrap_or(DEFAULT_USER).to_string();
        let users = self.srv.users();
        self.user_born = user
            .as_deref()
            .and_then(|n| users.get(n))
            .map_or(0, |u| u.born);
        self.user = user;
        let unauthenticated = self.auth_required(&users);
        self.parser.set_unauthenticated(unauthenticated);
    }

    /// The ACL check of one command, before it runs or is queued: the NOPERM reply (logged
    /// in the ACL log) if the user may not run it.
    fn acl_denied(
        &mut self,
        users: &Users,
        spec: &CommandSpec,
        sub: Option<&SubSpec>,
        fullname: &str,
        args: &[Bytes],
    ) -> Option<Reply> {
        let Some(user) = users
            .get(self.acting_user())
            .filter(|u| u.born == self.user_born)
        else {
            // The user was deleted (perhaps created again since): Redis disconnects its
            // clients.
            self.closing = true;
            return Some(Reply::None);
        };
        if no_auth(spec.name) {
            return None;
        }
        let denied = user.check(spec, sub, args).err()?;
        let (reason, object) = acl::log_reason(&denied, fullname, args);
        let context = if self.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        self.srv.acl.log(
            reason,
            context,
            object,
            self.acting_user().to_string(),
            self.handle.describe(Instant::now()),
        );
        Some(err(acl::noperm(&denied, fullname)))
    }

    /// Checks and runs one command; the whole of Redis' `processCommand` order: lookup,
    /// arity, authentication, pub/sub context, MULTI queueing, execution.
    async fn dispatch(&mut self, args: Vec<Bytes>) -> io::Result<Reply> {
        let Some(spec) = args.first().and_then(|n| cmd::lookup(n)) else {
            self.flag_multi_error();
            return Ok(Reply::One(unknown_command(&args)));
        };
        self.handle.fields.lock().last_cmd = spec.name.to_string();
        if !spec.arity_ok(args.len()) {
            self.flag_multi_error();
            return Ok(CmdError::WrongArity(spec.name.into()).to_frame().into());
        }
        let mut fullname = spec.name.to_string();
        let mut flags = spec.flags;
        let mut sub_spec = None;
        if subcommands(spec.name).is_some() && args.len() >= 2 {
            match lookup_sub(spec.name, &args[1]) {
                None => {
                    self.flag_multi_error();
                    return Ok(unknown_subcommand(spec.name, &args[1]));
                }
                Some(sub) => {
                    sub_spec = Some(sub);
                    fullname = format!("{}|{}", spec.name, sub.name);
                    flags = sub.flags;
                    if !sub_arity_ok(sub, args.len()) {
                        self.flag_multi_error();
                        return Ok(CmdError::WrongArity(fullname).to_frame().into());
                    }
                }
            }
            self.handle.fields.lock().last_cmd = fullname.clone();
        } else if let Some(name) = acl::plain_sub_name(spec.name, &args) {
            fullname = name;
        }
        let users = self.srv.users();
        if self.auth_required(&users) && !no_auth(spec.name) {
            self.flag_multi_error();
            return Ok(err("NOAUTH Authentication required."));
        }
        if let Some(denied) = self.acl_denied(&users, spec, sub_spec, &fullname, &args) {
            self.flag_multi_error();
            return Ok(denied);
        }
        if self.proto == 2
            && self.sub_count() > 0
            && !matches!(
                spec.name,
                "ping"
                    | "subscribe"
                    | "ssubscribe"
                    | "unsubscribe"
                    | "sunsubscribe"
                    | "psubscribe"
                    | "punsubscribe"
                    | "quit"
                    | "reset"
            )
        {
            return Ok(err(format!(
                "ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )));
        }
        if self.multi.is_some()
            && !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            if flags & flag::NO_MULTI != 0 {
                self.multi_error = true;
                return Ok(err("ERR Command not allowed inside a transaction"));
            }
            // Redis Cluster refuses, at queue time, a command whose keys are in another
            // shard than the transaction's first keys; EXEC then aborts.
            if !matches!(spec.kind, Kind::Server) {
                let layout = self.srv.store.layout();
                for k in spec.keys(&args) {
                    let shard = layout.shard_of_slot(crate::storage::slot::key_slot(k)).id;
                    match self.multi_shard {
                        Some(s) if s != shard => {
                            self.multi_error = true;
                            return Ok(Frame::Error(crate::routing::CROSSSLOT.into()).into());
                        }
                        _ => self.multi_shard = Some(shard),
                    }
                }
            }
            let Some(queue) = self.multi.as_mut() else {
                return Ok(err("ERR EXEC without MULTI"));
            };
            queue.push(args);
            let n = queue.len() as i64;
            self.handle.fields.lock().multi = n;
            return Ok(Frame::Simple("QUEUED".into()).into());
        }
        if let Some(moved) = self.redirect(spec, &args) {
            let how = if matches!(&moved, Frame::Error(e) if e.starts_with("MOVED")) {
                "moved"
            } else {
                "crossslot"
            };
            self.srv.store.count_route(how);
            return Ok(moved.into());
        }
        match spec.kind {
            Kind::Server => self.server_command(spec, args).await,
            _ if spec.flags & flag::BLOCKING != 0 => self.blocking(spec, args).await,
            _ => {
                if self.is_cluster_aware() && crate::routing::plan::is_keyspace_wide(spec.name) {
                    let mine = super::cluster::advertised_shards(&self.srv);
                    return Ok(self.srv.store.execute_on(args, &mine).await.into());
                }
                Ok(self.srv.store.execute(args).await.into())
            }
        }
    }

    // ---- transactions ----

    pub fn cmd_multi(&mut self) -> Reply {
        if self.multi.is_some() {
            return err("ERR MULTI calls can not be nested");
        }
        self.multi = Some(Vec::new());
        self.multi_error = false;
        self.multi_shard = None;
        self.handle.fields.lock().multi = 0;
        Frame::ok().into()
    }

    pub fn discard_multi(&mut self) {
        self.multi = None;
        self.multi_error = false;
        self.unwatch_all();
        self.handle.fields.lock().multi = -1;
    }

    pub async fn cmd_watch(&mut self, keys: &[Bytes]) -> Reply {
        if self.multi.is_some() {
            return err("ERR WATCH inside MULTI is not allowed");
        }
        let fresh: Vec<Bytes> = keys
            .iter()
            .filter(|k| !self.watched.iter().any(|(w, _)| w == *k))
            .cloned()
            .collect();
        let mut unique: Vec<Bytes> = Vec::with_capacity(fresh.len());
        for k in fresh {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        if self.watch_rx.is_none() {
            // Subscribe before reading revisions, so no change in between goes unseen.
            self.watch_rx = Some(self.srv.store.subscribe_touched());
        }
        match self.srv.store.key_revs(&unique).await {
            Ok(revs) => {
                self.watched.extend(unique.into_iter().zip(revs));
                Frame::ok().into()
            }
            Err(e) => e.into(),
        }
    }

    /// EXEC: the data commands go to the state machine as one atomic op (with the WATCH
    /// revisions to check); connection/server commands queued in the transaction run here
    /// afterwards, in order, and their replies are put back in place.
    /// Forgets every watched key (UNWATCH, DISCARD, EXEC).
    pub fn unwatch_all(&mut self) {
        self.watched.clear();
        self.watch_rx = None;
    }

    /// Whether a watched key was touched since WATCH by anything applied on this node, after
    /// a read barrier so every write committed before EXEC has been applied here. This sees
    /// what revisions can't (a key created and deleted again); the revision check at apply
    /// time covers writes racing with the EXEC itself. A lagging subscription counts as
    /// touched.
    async fn watched_key_touched(
        &self,
        rx: Option<broadcast::Receiver<Arc<Vec<Bytes>>>>,
        watched: &[(Bytes, u64)],
    ) -> bool {
        let Some(mut rx) = rx else {
            return false;
        };
        if watched.is_empty() {
            return false;
        }
        let keys: Vec<Bytes> = watched.iter().map(|(k, _)| k.clone()).collect();
        if self.srv.store.read_barrier_keys(&keys).await.is_err() {
            // Without the barrier the check could miss writes; the apply-time check remains.
            return false;
        }
        loop {
            match rx.try_recv() {
                Ok(keys) => {
                    if keys.iter().any(|k| watched.iter().any(|(w, _)| w == k)) {
                        return true;
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return false,
                Err(broadcast::error::TryRecvError::Lagged(_)) => return true,
                Err(broadcast::error::TryRecvError::Closed) => return false,
            }
        }
    }

    pub async fn cmd_exec(&mut self) -> io::Result<Reply> {
        let Some(queued) = self.multi.take() else {
            return Ok(err("ERR EXEC without MULTI"));
        };
        let had_error = std::mem::take(&mut self.multi_error);
        let watched = std::mem::take(&mut self.watched);
        let watch_rx = self.watch_rx.take();
        self.handle.fields.lock().multi = -1;
        if had_error {
            return Ok(err(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let is_server = |args: &Vec<Bytes>| {
            args.first()
                .and_then(|n| cmd::lookup(n))
                .is_some_and(|s| matches!(s.kind, Kind::Server))
        };
        if self.watched_key_touched(watch_rx, &watched).await {
            return Ok(Frame::NullArray.into());
        }
        // Permissions are checked again now, as Redis does: a command no longer allowed
        // is not run and answers in its place.
        let denied = self.exec_denials(&queued);
        let runs = |i: usize| denied[i].is_none();
        let data: Vec<Vec<Bytes>> = queued
            .iter()
            .enumerate()
            .filter(|(i, a)| runs(*i) && !is_server(a))
            .map(|(_, a)| a.clone())
            .collect();
        let mut data_replies = Vec::new();
        if !data.is_empty() || !watched.is_empty() {
            match self.srv.store.exec_multi(watched, data).await {
                Frame::Array(v) => data_replies = v,
                Frame::NullArray => return Ok(Frame::NullArray.into()),
                other => return Ok(other.into()),
            }
        }
        let mut data_replies = data_replies.into_iter();
        let mut out = Vec::with_capacity(queued.len());
        for (args, denied) in queued.into_iter().zip(denied) {
            if let Some(e) = denied {
                out.push(e);
            } else if is_server(&args) {
                let Some(spec) = args.first().and_then(|n| cmd::lookup(n)) else {
                    continue;
                };
                match self.server_command_simple(spec, args).await? {
                    Reply::None => {}
                    Reply::One(f) => out.push(f),
                    Reply::Many(fs) => out.extend(fs),
                }
            } else {
                out.push(
                    data_replies
                        .next()
                        .unwrap_or_else(|| Frame::Error("ERR missing reply".into())),
                );
            }
        }
        Ok(Frame::Array(out).into())
    }

    /// For each queued command, the error if the user may no longer run it (logged).
    fn exec_denials(&self, queued: &[Vec<Bytes>]) -> Vec<Option<Frame>> {
        let users = self.srv.users();
        let user = users
            .get(self.acting_user())
            .filter(|u| u.born == self.user_born);
        queued
            .iter()
            .map(|args| {
                let spec = args.first().and_then(|n| cmd::lookup(n))?;
                if no_auth(spec.name) {
                    return None;
                }
                let sub = subcommands(spec.name)
                    .and(args.get(1))
                    .and_then(|s| lookup_sub(spec.name, s));
                let denied = match user {
                    Some(u) => u.check(spec, sub, args).err()?,
                    None => acl::Denied::Command,
                };
                let fullname = match sub {
                    Some(s) => format!("{}|{}", spec.name, s.name),
                    None => acl::plain_sub_name(spec.name, args)
                        .unwrap_or_else(|| spec.name.to_string()),
                };
                let (reason, object) = acl::log_reason(&denied, &fullname, args);
                self.srv.acl.log(
                    reason,
                    "multi",
                    object,
                    self.acting_user().to_string(),
                    self.handle.describe(Instant::now()),
                );
                Some(Frame::Error(acl::exec_noperm(&denied)))
            })
            .collect()
    }

    // ---- blocking commands ----

    /// A blocking command: one attempt; if it found nothing, wait for one of its keys to be
    /// touched and retry, until the timeout. Commands that take elements wait in the keys'
    /// FIFO queues (`blocked_fifo`); XREAD, which takes nothing, retries on every touch.
    async fn blocking(
        &mut self,
        spec: &'static CommandSpec,
        mut args: Vec<Bytes>,
    ) -> io::Result<Reply> {
        let timeout = match blocking_timeout(spec.name, &args) {
            Ok(t) => t,
            Err(e) => return Ok(e.to_frame().into()),
        };
        let Some(timeout) = timeout else {
            // XREAD without BLOCK: an ordinary command.
            return Ok(self.srv.store.execute(args).await.into());
        };
        if spec.name == "xread" || spec.name == "xreadgroup" {
            self.resolve_dollar_ids(&mut args).await;
        }
        if let Some((positions, group)) = fifo_keys(spec.name, &args) {
            return self
                .blocked_fifo(spec.name, args, positions, group, timeout)
                .await;
        }
        let keys: Vec<Bytes> = spec.keys(&args).into_iter().cloned().collect();
        // Forget any stale CLIENT UNBLOCK aimed at an earlier wait.
        self.handle.unblock_with_error();
        let mut touched = self.srv.store.subscribe_touched();
        let first = self.srv.store.execute(args.clone()).await;
        if !matches!(first, Frame::Null | Frame::NullArray) {
            return Ok(first.into());
        }
        self.flush().await?;
        self.handle.fields.lock().blocked = true;
        let deadline = (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout);
        let remote = !self.remote_keys(&keys).is_empty();
        let mut poll = remote_poll();
        let result = loop {
            let woken = async {
                tokio::select! {
                    t = touched.recv() => match t {
                        Ok(changed) => Some(changed.iter().any(|k| keys.contains(k))),
                        Err(broadcast::error::RecvError::Lagged(_)) => Some(true),
                        Err(broadcast::error::RecvError::Closed) => None,
                    },
                    // Writes applied on other nodes are not seen here: poll.
                    _ = poll.tick(), if remote => Some(true),
                }
            };
            match self.block_wait(deadline, &first, woken).await? {
                Ok(true) => {
                    let r = self.srv.store.execute(args.clone()).await;
                    if !matches!(r, Frame::Null | Frame::NullArray) {
                        break Reply::One(r);
                    }
                }
                Ok(false) => {}
                Err(reply) => break reply,
            }
        };
        self.handle.fields.lock().blocked = false;
        Ok(result)
    }

    /// A blocking command that takes elements: it queues on its keys (`args[positions]`)
    /// behind the clients already blocked there and is served in that order (see
    /// `server::blocked`). Retries run the command on the one key whose turn it is.
    async fn blocked_fifo(
        &mut self,
        name: &'static str,
        args: Vec<Bytes>,
        positions: Vec<usize>,
        group: Option<Bytes>,
        timeout: Duration,
    ) -> io::Result<Reply> {
        let null = if matches!(name, "blmove" | "brpoplpush") {
            Frame::Null
        } else {
            Frame::NullArray
        };
        let mut keys: Vec<WaitKey> = Vec::new();
        let mut pos: Vec<usize> = Vec::new();
        for p in positions {
            let k = WaitKey {
                key: args[p].clone(),
                group: group.clone(),
            };
            if !keys.contains(&k) {
                keys.push(k);
                pos.push(p);
            }
        }
        self.handle.unblock_with_error();
        let wait_keys: Vec<Bytes> = keys.iter().map(|k| k.key.clone()).collect();
        let remote = self.remote_keys(&wait_keys);
        let srv = self.srv.clone();
        let mut poll = remote_poll();
        // Earlier replies go out first: a client slow to read them must not hold a turn.
        self.flush().await?;
        let waiter = self.srv.blocked.register(keys);
        // Whether the command ran once: until then any reply but null is its first reply
        // (an error included), as when the first attempt runs right away.
        let mut tried = false;
        if let Some(a) = waiter.first_attempt() {
            let run = if a.keys.len() == pos.len() {
                args.clone()
            } else {
                let keep: Vec<usize> = a.keys.iter().map(|&i| pos[i]).collect();
                args_with_keys(name, &args, &pos, &keep)
            };
            let r = self.srv.store.execute(run).await;
            if !matches!(r, Frame::Null | Frame::NullArray) {
                waiter.finish(a, Outcome::Served);
                return Ok(r.into());
            }
            waiter.finish(a, Outcome::Empty);
            tried = true;
        }
        self.handle.fields.lock().blocked = true;
        let deadline = (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout);
        let result = 'wait: loop {
            while let Some(a) = waiter.next_attempt() {
                let p = pos[a.keys[0]];
                let r = self
                    .srv
                    .store
                    .execute(args_with_keys(name, &args, &pos, &[p]))
                    .await;
                let (outcome, reply) = if tried {
                    self.judge_retry(name, &args[p], r).await
                } else if matches!(r, Frame::Null | Frame::NullArray) {
                    (Outcome::Empty, r)
                } else {
                    (Outcome::Served, r)
                };
                tried = true;
                waiter.finish(a, outcome);
                if outcome == Outcome::Served {
                    break 'wait Reply::One(reply);
                }
            }
            let woken = async {
                tokio::select! {
                    _ = waiter.notified() => {}
                    // Keys of shards hosted elsewhere: their writes are not applied here, so
                    // their queues are woken by polling.
                    _ = poll.tick(), if !remote.is_empty() => {
                        srv.blocked.touch(&remote);
                    }
                }
                Some(true)
            };
            if let Err(reply) = self.block_wait(deadline, &null, woken).await? {
                break reply;
            }
        };
        drop(waiter);
        self.handle.fields.lock().blocked = false;
        Ok(result)
    }

    /// What a retry on `key` means, as Redis serves a client when its key is ready: nothing
    /// (empty), not this client's type (skipped: it stays blocked), or its reply.
    async fn judge_retry(&self, name: &str, key: &Bytes, r: Frame) -> (Outcome, Frame) {
        if matches!(r, Frame::Null | Frame::NullArray) {
            return (Outcome::Empty, r);
        }
        let Frame::Error(msg) = &r else {
            return (Outcome::Served, r);
        };
        // Routed (the key's shard may live on another node) and behind a read barrier.
        let key_type = || async {
            match self
                .srv
                .store
                .execute(vec![Bytes::from_static(b"TYPE"), key.clone()])
                .await
            {
                Frame::Simple(t) => t,
                _ => String::new(),
            }
        };
        if name == "xreadgroup" {
            let gone = "UNBLOCKED the stream key no longer exists";
            if msg.starts_with("WRONGTYPE") {
                return (Outcome::Served, Frame::Error(gone.into()));
            }
            if msg.starts_with("NOGROUP") {
                let msg = if key_type().await == "stream" {
                    "NOGROUP the consumer group this client was blocked on no longer exists"
                } else {
                    gone
                };
                return (Outcome::Served, Frame::Error(msg.into()));
            }
            return (Outcome::Served, r);
        }
        if msg.starts_with("WRONGTYPE") {
            let want = if name.starts_with("bz") {
                "zset"
            } else {
                "list"
            };
            if key_type().await != want {
                return (Outcome::Skip, r);
            }
        }
        (Outcome::Served, r)
    }

    /// Waits for `woken` (Some(retry?), or None to give up with `null`), the timeout, CLIENT
    /// KILL / UNBLOCK, shutdown or the client closing. `Err` carries the final reply.
    async fn block_wait(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        null: &Frame,
        woken: impl std::future::Future<Output = Option<bool>>,
    ) -> io::Result<Result<bool, Reply>> {
        let room = self.read_room();
        tokio::select! {
            w = woken => Ok(w.ok_or_else(|| Reply::One(null.clone()))),
            _ = sleep_until_opt(deadline) => Ok(Err(Reply::One(null.clone()))),
            _ = self.handle.kill_signal.notified() => {
                if self.handle.is_killed() {
                    self.closing = true;
                    return Ok(Err(Reply::None));
                }
                if self.handle.take_unblock() {
                    return Ok(Err(self.unblocked_reply(null)));
                }
                Ok(Ok(false))
            }
            _ = self.shutdown.changed() => {
                self.closing = true;
                Ok(Err(Reply::None))
            }
            n = self.stream.read_into(&mut self.rbuf, room) => {
                // Keep reading so a closed connection is noticed (the client must not
                // consume data it will never receive); later commands wait in the buffer.
                if !self.count_read(n?) {
                    self.closing = true;
                    return Ok(Err(Reply::None));
                }
                Ok(Ok(false))
            }
        }
    }

    /// Keys whose shard has no replica on this node (its applies are not seen here).
    fn remote_keys(&self, keys: &[Bytes]) -> Vec<Bytes> {
        let store = &self.srv.store;
        keys.iter()
            .filter(|k| !store.hosts(&store.shard_of_key(k)))
            .cloned()
            .collect()
    }

    fn unblocked_reply(&self, null: &Frame) -> Reply {
        if self.handle.unblock_with_error() {
            err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            Reply::One(null.clone())
        }
    }

    /// XREAD's `$` means "entries added after now": pin it to the stream's current last id so
    /// retries don't move the goalpost.
    async fn resolve_dollar_ids(&self, args: &mut [Bytes]) {
        let Some(streams) = args.iter().position(|a| a.eq_ignore_ascii_case(b"streams")) else {
            return;
        };
        let rest = args.len() - streams - 1;
        if rest == 0 || !rest.is_multiple_of(2) {
            return;
        }
        let n = rest / 2;
        for i in 0..n {
            let key_idx = streams + 1 + i;
            let id_idx = streams + 1 + n + i;
            if args[id_idx].as_ref() != b"$" {
                continue;
            }
            // Routed and behind a read barrier: the stream may live on another node.
            let last = self
                .srv
                .store
                .execute(vec![
                    Bytes::from_static(b"XREVRANGE"),
                    args[key_idx].clone(),
                    Bytes::from_static(b"+"),
                    Bytes::from_static(b"-"),
                    Bytes::from_static(b"COUNT"),
                    Bytes::from_static(b"1"),
                ])
                .await;
            let id = match last {
                Frame::Array(entries) => match entries.first() {
                    Some(Frame::Array(entry)) => match entry.first() {
                        Some(Frame::Bulk(id)) => id.clone(),
                        _ => Bytes::from_static(b"0-0"),
                    },
                    _ => Bytes::from_static(b"0-0"),
                },
                _ => continue,
            };
            args[id_idx] = id;
        }
    }
}

/// Proposes every command without waiting for the previous reply. Each proposal is sent on
/// its future's first poll, and the futures are first polled in order (the runtime's inbox is
/// FIFO and its send permits are handed out fairly), so the ops are applied in pipeline order.
/// Commands for shards hosted elsewhere go through the proxy, whose requests may overtake
/// each other, so a pipeline with any of those runs one command at a time.
async fn propose_in_order(store: &crate::store::Store, cmds: Vec<Vec<Bytes>>) -> Vec<Frame> {
    if cmds.iter().all(|c| store.is_local(c)) {
        let futs: Vec<_> = cmds.into_iter().map(|args| store.execute(args)).collect();
        return crate::store::join_in_order(futs).await;
    }
    let mut out = Vec::with_capacity(cmds.len());
    for args in cmds {
        out.push(store.execute(args).await);
    }
    out
}

/// The timeout of a blocking command (`None`: XREAD without BLOCK, which doesn't block).
fn blocking_timeout(name: &str, args: &[Bytes]) -> Result<Option<Duration>, CmdError> {
    if name == "xread" || name == "xreadgroup" {
        return Ok(crate::cmd::stream::xread_block_ms(args)?.map(Duration::from_millis));
    }
    let idx = if name == "blmpop" || name == "bzmpop" {
        1
    } else {
        args.len() - 1
    };
    let raw = args.get(idx).ok_or(CmdError::Timeout)?;
    parse_timeout_secs(raw).map(Some)
}

/// The keys a blocking command takes elements from (positions in `args`), with the group
/// for XREADGROUP; None for XREAD (takes nothing), XREADGROUP with a history id (never
/// blocks) and malformed key lists (left to the command's own error).
fn fifo_keys(name: &str, args: &[Bytes]) -> Option<(Vec<usize>, Option<Bytes>)> {
    let n = args.len();
    match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" if n >= 3 => Some(((1..n - 1).collect(), None)),
        "blmove" | "brpoplpush" if n >= 3 => Some((vec![1], None)),
        "blmpop" | "bzmpop" => {
            let numkeys = crate::cmd::args::parse_i64_opt(args.get(2)?)?;
            // The keys, then at least LEFT|RIGHT / MIN|MAX.
            if numkeys <= 0 || (numkeys as u64).saturating_add(3) >= n as u64 {
                return None;
            }
            Some(((3..3 + numkeys as usize).collect(), None))
        }
        "xreadgroup" => {
            let keys = crate::cmd::stream::xread_keys(args);
            let first = *keys.first()?;
            let streams = first - 1;
            let group = (1..streams)
                .find(|&i| args[i].eq_ignore_ascii_case(b"group"))
                .and_then(|i| args.get(i + 1))?
                .clone();
            let ids = &args[first + keys.len()..];
            if ids.iter().any(|id| id.as_ref() != b">") {
                return None;
            }
            Some((keys, Some(group)))
        }
        _ => None,
    }
}

/// `args` with only the keys at positions `keep` (a subset of `positions`, in order).
fn args_with_keys(name: &str, args: &[Bytes], positions: &[usize], keep: &[usize]) -> Vec<Bytes> {
    match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let mut out = vec![args[0].clone()];
            out.extend(keep.iter().map(|&p| args[p].clone()));
            out.push(args[args.len() - 1].clone());
            out
        }
        "blmpop" | "bzmpop" => {
            let numkeys = crate::cmd::args::parse_i64_opt(&args[2])
                .unwrap_or(0)
                .max(0) as usize;
            let mut out = vec![
                args[0].clone(),
                args[1].clone(),
                Bytes::from(keep.len().to_string()),
            ];
            out.extend(keep.iter().map(|&p| args[p].clone()));
            out.extend(args[(3 + numkeys).min(args.len())..].iter().cloned());
            out
        }
        "xreadgroup" => {
            let first = positions.first().copied().unwrap_or(args.len());
            let n = crate::cmd::stream::xread_keys(args).len();
            let mut out = args[..first].to_vec();
            out.extend(keep.iter().map(|&p| args[p].clone()));
            out.extend(keep.iter().map(|&p| args[p + n].clone()));
            out
        }
        _ => args.to_vec(),
    }
}

/// Redis' `getTimeoutFromObjectOrReply` in seconds: a float, rounded up to milliseconds.
pub fn parse_timeout_secs(raw: &[u8]) -> Result<Duration, CmdError> {
    let secs = crate::cmd::args::parse_f64_opt(raw).ok_or(CmdError::Timeout)?;
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        return Err(CmdError::err("timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok(Duration::from_millis(ms.ceil() as u64))
}

/// Truncates at the first NUL, like C's `%s`.
fn c_str(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// An error line from raw bytes, CR/LF replaced by spaces.
pub fn raw_error(msg: &[u8]) -> Frame {
    let mut out = Vec::with_capacity(msg.len() + 3);
    out.push(b'-');
    out.extend(
        msg.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.extend_from_slice(b"\r\n");
    Frame::Raw(Bytes::from(out))
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' ` exactly as Redis 7.0.
pub fn unknown_command(args: &[Bytes]) -> Frame {
    let name: &[u8] = args.first().map(|n| c_str(n)).unwrap_or_default();
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(128)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut list: Vec<u8> = Vec::new();
    for a in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let a = c_str(a);
        list.push(b'\'');
        list.extend_from_slice(&a[..a.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    msg.extend_from_slice(&list);
    raw_error(&msg)
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub fn unknown_subcommand(container: &str, sub: &[u8]) -> Reply {
    let sub = c_str(sub);
    let mut msg = b"ERR unknown subcommand '".to_vec();
    msg.extend_from_slice(&sub[..sub.len().min(128)]);
    msg.extend_from_slice(format!("'. Try {} HELP.", container.to_uppercase()).as_bytes());
    Reply::One(raw_error(&msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::args as b;

    #[test]
    fn unknown_command_text_matches_redis() {
        assert_eq!(
            unknown_command(&b(&["foo", "bar", "baz"])).to_bytes(2),
            Bytes::from_static(
                b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n"
            )
        );
        assert_eq!(
            unknown_command(&b(&["FOO"])).to_bytes(2),
            Bytes::from_static(b"-ERR unknown command 'FOO', with args beginning with: \r\n")
        );
        let long = "x".repeat(200);
        let got = unknown_command(&b(&["f", &long, "y"])).to_bytes(2);
        let expected = format!(
            "-ERR unknown command 'f', with args beginning with: '{}' \r\n",
            "x".repeat(128)
        );
        assert_eq!(got, Bytes::from(expected));
        assert_eq!(
            unknown_command(&b(&["a\r\nb"])).to_bytes(2),
            Bytes::from_static(b"-ERR unknown command 'a  b', with args beginning with: \r\n")
        );
    }

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout_secs(b"0"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout_secs(b"0.0001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_timeout_secs(b"1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout_secs(b"abc"), Err(CmdError::Timeout));
        assert_eq!(
            parse_timeout_secs(b"-1"),
            Err(CmdError::err("timeout is negative"))
        );
        assert_eq!(
            parse_timeout_secs(b"inf"),
            Err(CmdError::err("timeout is out of range"))
        );
        assert_eq!(
            blocking_timeout("blmpop", &b(&["blmpop", "2", "1", "k", "LEFT"])),
            Ok(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            blocking_timeout("xread", &b(&["xread", "COUNT", "1", "STREAMS", "s", "0"])),
            Ok(None)
        );
        assert_eq!(
            blocking_timeout("xread", &b(&["xread", "BLOCK", "10", "STREAMS", "s", "0"])),
            Ok(Some(Duration::from_millis(10)))
        );
        assert_eq!(
            blocking_timeout("xread", &b(&["xread", "BLOCK", "-1", "STREAMS", "s", "0"])),
            Err(CmdError::err("timeout is negative"))
        );
    }

    #[test]
    fn fifo_keys_and_single_key_retries() {
        let a = b(&["BLPOP", "k1", "k2", "0"]);
        assert_eq!(fifo_keys("blpop", &a), Some((vec![1, 2], None)));
        assert_eq!(
            args_with_keys("blpop", &a, &[1, 2], &[2]),
            b(&["BLPOP", "k2", "0"])
        );
        let a = b(&["BLMOVE", "s", "d", "LEFT", "RIGHT", "0"]);
        assert_eq!(fifo_keys("blmove", &a), Some((vec![1], None)));
        assert_eq!(args_with_keys("blmove", &a, &[1], &[1]), a);
        let a = b(&["BZMPOP", "0", "2", "a", "b", "MIN", "COUNT", "2"]);
        assert_eq!(fifo_keys("bzmpop", &a), Some((vec![3, 4], None)));
        assert_eq!(
            args_with_keys("bzmpop", &a, &[3, 4], &[4]),
            b(&["BZMPOP", "0", "1", "b", "MIN", "COUNT", "2"])
        );
        // Malformed numkeys: left to the command's error.
        assert_eq!(
            fifo_keys("blmpop", &b(&["BLMPOP", "0", "2", "a", "b"])),
            None
        );
        assert_eq!(
            fifo_keys("blmpop", &b(&["BLMPOP", "0", "x", "a", "LEFT"])),
            None
        );
        let a = b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s1",
            "s2",
            ">",
            ">",
        ]);
        assert_eq!(
            fifo_keys("xreadgroup", &a),
            Some((vec![7, 8], Some(Bytes::from_static(b"g"))))
        );
        assert_eq!(
            args_with_keys("xreadgroup", &a, &[7, 8], &[8]),
            b(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "s2",
                ">"
            ])
        );
        // A history id never blocks; XREAD takes nothing.
        let a = b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            "0",
        ]);
        assert_eq!(fifo_keys("xreadgroup", &a), None);
        let a = b(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        assert_eq!(fifo_keys("xread", &a), None);
    }

    #[test]
    fn unknown_subcommand_text() {
        let Reply::One(f) = unknown_subcommand("client", b"foo") else {
            panic!("one reply expected")
        };
        assert_eq!(
            f.to_bytes(2),
            Bytes::from_static(b"-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n")
        );
    }
}
