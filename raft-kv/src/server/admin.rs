//! Connection and server commands (`Kind::Server`), executed on the connection.

use std::io;
use std::time::Duration;

use bytes::Bytes;

use super::conn::{err, raw_error, unknown_subcommand, Conn, Reply};
use super::pubsub::SubKind;
use super::{command_info, info, REDIS_VERSION};
use crate::cmd::args::{is, parse_f64_opt, parse_i64_opt};
use crate::cmd::{CmdError, CommandSpec};
use crate::protocol::Frame;
use crate::store::now_ms;

fn bulk_str(s: &str) -> Frame {
    Frame::bulk(s.as_bytes().to_vec())
}

fn not_integer() -> Reply {
    CmdError::NotInteger.to_frame().into()
}

/// Redis' client name rule: printable ASCII without spaces.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

impl Conn {
    pub async fn server_command(
        &mut self,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
    ) -> io::Result<Reply> {
        match spec.name {
            "exec" => self.cmd_exec().await,
            _ => self.server_command_simple(spec, args).await,
        }
    }

    /// Every server command but EXEC (which runs these for the commands it queued).
    pub async fn server_command_simple(
        &mut self,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
    ) -> io::Result<Reply> {
        let reply = match spec.name {
            "ping" => self.cmd_ping(&args),
            "echo" => Frame::Bulk(args[1].clone()).into(),
            "quit" => {
                self.closing = true;
                Frame::ok().into()
            }
            "hello" => self.cmd_hello(&args),
            "auth" => self.cmd_auth(&args),
            "select" => match parse_i64_opt(&args[1]) {
                None => not_integer(),
                Some(0) => Frame::ok().into(),
                Some(_) => err("ERR DB index is out of range"),
            },
            "client" => self.cmd_client(&args),
            "command" => command_info::command(&args),
            "info" => info::info(&self.srv, &args).await,
            "config" => self.cmd_config(&args),
            "time" => {
                let us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or(0);
                Frame::Array(vec![
                    bulk_str(&(us / 1_000_000).to_string()),
                    bulk_str(&(us % 1_000_000).to_string()),
                ])
                .into()
            }
            "lastsave" => Frame::Integer(
                self.srv
                    .last_save
                    .load(std::sync::atomic::Ordering::Relaxed) as i64,
            )
            .into(),
            "save" => {
                self.mark_saved();
                Frame::ok().into()
            }
            "bgsave" => {
                if args.len() > 2 || (args.len() == 2 && !is(&args[1], "schedule")) {
                    CmdError::Syntax.to_frame().into()
                } else {
                    self.mark_saved();
                    if args.len() == 2 {
                        Frame::Simple("Background saving scheduled".into()).into()
                    } else {
                        Frame::Simple("Background saving started".into()).into()
                    }
                }
            }
            "debug" => self.cmd_debug(&args).await?,
            "shutdown" => self.cmd_shutdown(&args),
            "reset" => self.cmd_reset(),
            "wait" => match (parse_i64_opt(&args[1]), parse_i64_opt(&args[2])) {
                (None, _) => not_integer(),
                (_, None) => err("ERR timeout is not an integer or out of range"),
                (Some(_), Some(t)) if t < 0 => err("ERR timeout is negative"),
                // No replicas yet: nothing to wait for.
                (Some(_), Some(_)) => Frame::Integer(0).into(),
            },
            "swapdb" => match (parse_i64_opt(&args[1]), parse_i64_opt(&args[2])) {
                (None, _) => err("ERR invalid first DB index"),
                (_, None) => err("ERR invalid second DB index"),
                (Some(0), Some(0)) => Frame::ok().into(),
                _ => err("ERR DB index is out of range"),
            },
            "lolwut" => {
                Frame::Verbatim(Bytes::from(format!("Redis ver. {REDIS_VERSION}\n"))).into()
            }
            "role" => Frame::Array(vec![
                bulk_str("master"),
                Frame::Integer(0),
                Frame::Array(vec![]),
            ])
            .into(),
            "readonly" => self.cmd_readonly(true),
            "readwrite" => self.cmd_readonly(false),
            "cluster" => self.cmd_cluster(&args).await,
            "multi" => self.cmd_multi(),
            "exec" => err("ERR EXEC without MULTI"),
            "discard" => {
                if self.multi.is_none() {
                    err("ERR DISCARD without MULTI")
                } else {
                    self.discard_multi();
                    Frame::ok().into()
                }
            }
            "watch" => self.cmd_watch(&args[1..]).await,
            "unwatch" => {
                self.unwatch_all();
                Frame::ok().into()
            }
            "subscribe" => self.subscribe(SubKind::Channel, &args[1..]),
            "psubscribe" => self.subscribe(SubKind::Pattern, &args[1..]),
            "ssubscribe" => self.subscribe(SubKind::Shard, &args[1..]),
            "unsubscribe" => self.unsubscribe(SubKind::Channel, &args[1..]),
            "punsubscribe" => self.unsubscribe(SubKind::Pattern, &args[1..]),
            "sunsubscribe" => self.unsubscribe(SubKind::Shard, &args[1..]),
            "publish" | "spublish" => {
                self.srv
                    .stats
                    .pubsub_messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Frame::Integer(self.srv.pubsub.publish(
                    spec.name == "spublish",
                    &args[1],
                    &args[2],
                    &self.srv.settings.pubsub_output_limit(),
                ))
                .into()
            }
            "pubsub" => self.cmd_pubsub(&args),
            "acl" => self.cmd_acl(&args).await,
            other => err(format!("ERR command '{other}' is not supported")),
        };
        Ok(reply)
    }

    fn mark_saved(&self) {
        self.srv
            .last_save
            .store(now_ms() / 1000, std::sync::atomic::Ordering::Relaxed);
    }

    fn cmd_ping(&self, args: &[Bytes]) -> Reply {
        if args.len() > 2 {
            return CmdError::WrongArity("ping".into()).to_frame().into();
        }
        if self.proto == 2 && self.sub_count() > 0 {
            return Frame::Array(vec![
                bulk_str("pong"),
                Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
            ])
            .into();
        }
        match args.get(1) {
            Some(m) => Frame::Bulk(m.clone()).into(),
            None => Frame::Simple("PONG".into()).into(),
        }
    }

    /// AUTH / HELLO AUTH (`via`): on success the connection acts as `user`; a failure is
    /// recorded in the ACL log.
    fn authenticate(&mut self, user: &[u8], pass: &[u8], via: &str) -> bool {
        let name = String::from_utf8_lossy(user).into_owned();
        if self
            .srv
            .users()
            .get(&name)
            .is_some_and(|u| u.password_ok(pass))
        {
            self.set_user(Some(name));
            return true;
        }
        let context = if self.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        self.srv.acl.log(
            "auth",
            context,
            via.to_string(),
            name,
            self.handle.describe(std::time::Instant::now()),
        );
        false
    }

    fn cmd_auth(&mut self, args: &[Bytes]) -> Reply {
        if args.len() > 3 {
            return CmdError::Syntax.to_frame().into();
        }
        if args.len() == 2 && self.srv.users().default_user().nopass {
            return err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        let (user, pass): (&[u8], &[u8]) = if args.len() == 3 {
            (&args[1], &args[2])
        } else {
            (b"default", &args[1])
        };
        if self.authenticate(user, pass, "AUTH") {
            Frame::ok().into()
        } else {
            err("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    fn cmd_hello(&mut self, args: &[Bytes]) -> Reply {
        let mut ver = None;
        let mut i = 1;
        if args.len() >= 2 {
            match parse_i64_opt(&args[1]) {
                None => return err("ERR Protocol version is not an integer or out of range"),
                Some(v) if !(2..=3).contains(&v) => {
                    return err("NOPROTO unsupported protocol version")
                }
                Some(v) => ver = Some(v as u8),
            }
            i = 2;
        }
        let mut auth: Option<(Bytes, Bytes)> = None;
        let mut name: Option<Bytes> = None;
        while i < args.len() {
            let more = args.len() - 1 - i;
            if is(&args[i], "auth") && more >= 2 {
                auth = Some((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            } else if is(&args[i], "setname") && more >= 1 {
                if !valid_client_name(&args[i + 1]) {
                    return err(BAD_NAME);
                }
                name = Some(args[i + 1].clone());
                i += 2;
            } else {
                let mut msg = b"ERR Syntax error in HELLO option '".to_vec();
                msg.extend_from_slice(&args[i]);
                msg.push(b'\'');
                return Reply::One(raw_error(&msg));
            }
        }
        if let Some((user, pass)) = auth {
            if !self.authenticate(&user, &pass, "HELLO") {
                return err("WRONGPASS invalid username-password pair or user is disabled.");
            }
        }
        if self.auth_required(&self.srv.users()) {
            return err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        if let Some(n) = name {
            self.handle.fields.lock().name = (!n.is_empty()).then_some(n);
        }
        if let Some(v) = ver {
            self.proto = v;
            self.handle.fields.lock().resp = v;
        }
        Frame::Map(vec![
            (bulk_str("server"), bulk_str("redis")),
            (bulk_str("version"), bulk_str(REDIS_VERSION)),
            (bulk_str("proto"), Frame::Integer(self.proto as i64)),
            (bulk_str("id"), Frame::Integer(self.handle.id as i64)),
            (bulk_str("mode"), bulk_str("standalone")),
            (bulk_str("role"), bulk_str("master")),
            (bulk_str("modules"), Frame::Array(vec![])),
        ])
        .into()
    }

    fn cmd_reset(&mut self) -> Reply {
        self.discard_multi();
        self.unsubscribe_everything();
        self.proto = 2;
        self.reply_off = false;
        // RESET also does READWRITE.
        self.readonly = false;
        self.cluster_aware = false;
        self.skip_armed = false;
        let user = super::conn::initial_user(&self.srv.users());
        self.set_user(user);
        {
            let mut f = self.handle.fields.lock();
            f.name = None;
            f.resp = 2;
        }
        Frame::Simple("RESET".into()).into()
    }

    fn cmd_shutdown(&mut self, args: &[Bytes]) -> Reply {
        let mut abort = false;
        for a in &args[1..] {
            if is(a, "abort") {
                abort = true;
            } else if !(is(a, "nosave") || is(a, "save") || is(a, "now") || is(a, "force")) {
                return CmdError::Syntax.to_frame().into();
            }
        }
        if abort {
            return err("ERR No shutdown in progress.");
        }
        tracing::info!(client = self.handle.id, "SHUTDOWN requested by a client");
        self.srv.request_shutdown();
        // Like Redis, the connection just closes: no reply.
        self.closing = true;
        Reply::None
    }

    async fn cmd_debug(&mut self, args: &[Bytes]) -> io::Result<Reply> {
        let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
        Ok(match sub.as_str() {
            "sleep" if args.len() == 3 => match parse_f64_opt(&args[2]) {
                Some(secs) if secs >= 0.0 && secs.is_finite() => {
                    self.flush().await?;
                    tokio::time::sleep(Duration::from_secs_f64(secs.min(3600.0))).await;
                    Frame::ok().into()
                }
                _ => CmdError::NotFloat.to_frame().into(),
            },
            "jmap"
            | "set-active-expire"
            | "quicklist-packed-threshold"
            | "change-repl-id"
            | "reload"
            | "stringmatch-len"
            | "replybuffer"
            | "set-skip-checksum-validation"
            | "dict-resizing" => Frame::ok().into(),
            "log" => {
                tracing::info!(message = %String::from_utf8_lossy(args.get(2).map(|a| a.as_ref()).unwrap_or(b"")), "DEBUG LOG");
                Frame::ok().into()
            }
            "help" => Frame::Array(
                [
                    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "SLEEP <seconds>",
                    "    Stop the connection for <seconds> (only this client waits).",
                    "JMAP | RELOAD | SET-ACTIVE-EXPIRE <0|1>",
                    "    Accepted for compatibility; no effect.",
                    "HELP",
                    "    Print this help.",
                ]
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect(),
            )
            .into(),
            _ => {
                let mut msg = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
                msg.extend_from_slice(&args[1]);
                msg.extend_from_slice(b"'. Try DEBUG HELP.");
                Reply::One(raw_error(&msg))
            }
        })
    }

    // ---- CLIENT ----

    fn cmd_client(&mut self, args: &[Bytes]) -> Reply {
        let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
        match sub.as_str() {
            "id" => Frame::Integer(self.handle.id as i64).into(),
            "getname" => Frame::bulk_or_null(self.handle.fields.lock().name.clone()).into(),
            "setname" => {
                if !valid_client_name(&args[2]) {
                    return err(BAD_NAME);
                }
                let n = args[2].clone();
                self.handle.fields.lock().name = (!n.is_empty()).then_some(n);
                Frame::ok().into()
            }
            "setinfo" => {
                let v = args[3].clone();
                if is(&args[2], "lib-name") {
                    if !valid_client_name(&v) {
                        return err(
                            "ERR lib-name cannot contain spaces, newlines or special characters.",
                        );
                    }
                    self.handle.fields.lock().lib_name = Some(v);
                } else if is(&args[2], "lib-ver") {
                    if !valid_client_name(&v) {
                        return err(
                            "ERR lib-ver cannot contain spaces, newlines or special characters.",
                        );
                    }
                    self.handle.fields.lock().lib_ver = Some(v);
                } else {
                    let mut msg = b"ERR Unrecognized option '".to_vec();
                    msg.extend_from_slice(&args[2]);
                    msg.push(b'\'');
                    return Reply::One(raw_error(&msg));
                }
                Frame::ok().into()
            }
            "info" => {
                let line = self.handle.describe(std::time::Instant::now());
                Frame::Verbatim(Bytes::from(line + "\n")).into()
            }
            "list" => self.client_list(args),
            "kill" => self.client_kill(args),
            "reply" => {
                if is(&args[2], "on") {
                    self.reply_off = false;
                    Frame::ok().into()
                } else if is(&args[2], "off") {
                    self.reply_off = true;
                    Reply::None
                } else if is(&args[2], "skip") {
                    if !self.reply_off {
                        self.skip_armed = true;
                    }
                    Reply::None
                } else {
                    CmdError::Syntax.to_frame().into()
                }
            }
            "no-evict" | "no-touch" => {
                if is(&args[2], "on") || is(&args[2], "off") {
                    Frame::ok().into()
                } else {
                    CmdError::Syntax.to_frame().into()
                }
            }
            "pause" => {
                match parse_i64_opt(&args[2]) {
                    Some(t) if t >= 0 => {}
                    _ => return err("ERR timeout is not an integer or out of range"),
                }
                if args.len() > 4
                    || (args.len() == 4 && !(is(&args[3], "write") || is(&args[3], "all")))
                {
                    return CmdError::Syntax.to_frame().into();
                }
                Frame::ok().into()
            }
            "unpause" => Frame::ok().into(),
            "unblock" => {
                let Some(id) = parse_i64_opt(&args[2]) else {
                    return not_integer();
                };
                let with_error = match args.get(3) {
                    None => false,
                    Some(a) if is(a, "timeout") => false,
                    Some(a) if is(a, "error") => true,
                    Some(_) => return err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
                };
                if args.len() > 4 {
                    return CmdError::Syntax.to_frame().into();
                }
                let done = id > 0
                    && self
                        .srv
                        .clients
                        .get(id as u64)
                        .is_some_and(|c| c.request_unblock(with_error));
                Frame::Integer(done as i64).into()
            }
            "getredir" => Frame::Integer(-1).into(),
            "trackinginfo" => Frame::Map(vec![
                (bulk_str("flags"), Frame::Set(vec![bulk_str("off")])),
                (bulk_str("redirect"), Frame::Integer(-1)),
                (bulk_str("prefixes"), Frame::Array(vec![])),
            ])
            .into(),
            "tracking" | "caching" => {
                err("ERR client-side caching (CLIENT TRACKING) is not supported")
            }
            "help" => Frame::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GETNAME",
                    "SETNAME <name>",
                    "ID",
                    "INFO",
                    "LIST [TYPE normal|pubsub] [ID <id> ...]",
                    "KILL <ip:port> | KILL <option> <value> [...]",
                    "REPLY ON|OFF|SKIP",
                    "SETINFO LIB-NAME|LIB-VER <value>",
                    "UNBLOCK <id> [TIMEOUT|ERROR]",
                    "NO-EVICT ON|OFF",
                    "NO-TOUCH ON|OFF",
                    "PAUSE <ms> [WRITE|ALL]",
                    "UNPAUSE",
                    "HELP",
                ]
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect(),
            )
            .into(),
            _ => unknown_subcommand("client", &args[1]),
        }
    }

    fn client_list(&self, args: &[Bytes]) -> Reply {
        let mut type_filter: Option<String> = None;
        let mut ids: Option<Vec<u64>> = None;
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "type") && i + 1 < args.len() {
                let t = String::from_utf8_lossy(&args[i + 1]).to_lowercase();
                if !matches!(
                    t.as_str(),
                    "normal" | "master" | "replica" | "slave" | "pubsub"
                ) {
                    let mut msg = b"ERR Unknown client type '".to_vec();
                    msg.extend_from_slice(&args[i + 1]);
                    msg.push(b'\'');
                    return Reply::One(raw_error(&msg));
                }
                type_filter = Some(t);
                i += 2;
            } else if is(&args[i], "id") && i + 1 < args.len() {
                let mut v = Vec::new();
                i += 1;
                while i < args.len() {
                    match parse_i64_opt(&args[i]) {
                        Some(id) if id > 0 => v.push(id as u64),
                        _ => return err("ERR Invalid client ID"),
                    }
                    i += 1;
                }
                ids = Some(v);
            } else {
                return CmdError::Syntax.to_frame().into();
            }
        }
        let now = std::time::Instant::now();
        let mut out = String::new();
        for c in self.srv.clients.all() {
            if let Some(ids) = &ids {
                if !ids.contains(&c.id) {
                    continue;
                }
            }
            if type_filter.as_ref().is_some_and(|t| !c.is_type(t)) {
                continue;
            }
            out.push_str(&c.describe(now));
            out.push('\n');
        }
        Frame::Verbatim(Bytes::from(out)).into()
    }

    fn client_kill(&mut self, args: &[Bytes]) -> Reply {
        let clients = self.srv.clients.all();
        if args.len() == 3 {
            // Old form: CLIENT KILL addr:port.
            let Some(target) = clients
                .iter()
                .find(|c| c.addr.as_bytes() == args[2].as_ref())
            else {
                return err("ERR No such client");
            };
            if target.id == self.handle.id {
                self.closing = true;
            } else {
                target.kill();
            }
            return Frame::ok().into();
        }
        if !args.len().is_multiple_of(2) {
            return CmdError::Syntax.to_frame().into();
        }
        let mut id: Option<u64> = None;
        let mut addr: Option<&[u8]> = None;
        let mut laddr: Option<&[u8]> = None;
        let mut ctype: Option<String> = None;
        let mut maxage: Option<u64> = None;
        let mut user: Option<String> = None;
        let mut skipme = true;
        for pair in args[2..].chunks(2) {
            let (opt, val) = (&pair[0], &pair[1]);
            if is(opt, "id") {
                match parse_i64_opt(val) {
                    Some(v) if v > 0 => id = Some(v as u64),
                    _ => return err("ERR client-id should be greater than 0"),
                }
            } else if is(opt, "addr") {
                addr = Some(&val[..]);
            } else if is(opt, "laddr") {
                laddr = Some(&val[..]);
            } else if is(opt, "type") {
                let t = String::from_utf8_lossy(val).to_lowercase();
                if !matches!(
                    t.as_str(),
                    "normal" | "master" | "replica" | "slave" | "pubsub"
                ) {
                    let mut msg = b"ERR Unknown client type '".to_vec();
                    msg.extend_from_slice(val);
                    msg.push(b'\'');
                    return Reply::One(raw_error(&msg));
                }
                ctype = Some(t);
            } else if is(opt, "user") {
                let name = String::from_utf8_lossy(val).into_owned();
                if self.srv.users().get(&name).is_none() {
                    let mut msg = b"ERR No such user '".to_vec();
                    msg.extend_from_slice(val);
                    msg.push(b'\'');
                    return Reply::One(raw_error(&msg));
                }
                user = Some(name);
            } else if is(opt, "skipme") {
                if is(val, "yes") {
                    skipme = true;
                } else if is(val, "no") {
                    skipme = false;
                } else {
                    return CmdError::Syntax.to_frame().into();
                }
            } else if is(opt, "maxage") {
                match parse_i64_opt(val) {
                    Some(v) if v >= 0 => maxage = Some(v as u64),
                    _ => return CmdError::Syntax.to_frame().into(),
                }
            } else {
                return CmdError::Syntax.to_frame().into();
            }
        }
        let now = std::time::Instant::now();
        let mut killed = 0;
        for c in clients {
            if id.is_some_and(|id| c.id != id)
                || addr.is_some_and(|a| c.addr.as_bytes() != a)
                || laddr.is_some_and(|a| c.laddr.as_bytes() != a)
                || maxage.is_some_and(|m| now.duration_since(c.created).as_secs() < m)
            {
                continue;
            }
            if ctype.as_ref().is_some_and(|t| !c.is_type(t)) {
                continue;
            }
            if user.as_ref().is_some_and(|u| c.fields.lock().user != *u) {
                continue;
            }
            if c.id == self.handle.id {
                if skipme {
                    continue;
                }
                self.closing = true;
            } else {
                c.kill();
            }
            killed += 1;
        }
        Frame::Integer(killed).into()
    }

    // ---- CONFIG ----

    fn cmd_config(&mut self, args: &[Bytes]) -> Reply {
        let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
        match sub.as_str() {
            "get" => {
                let pats: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
                self.srv.settings.config_get(&pats).into()
            }
            "set" => {
                if !args.len().is_multiple_of(2) {
                    return CmdError::Syntax.to_frame().into();
                }
                let pairs: Vec<(&[u8], &[u8])> = args[2..]
                    .chunks(2)
                    .map(|p| (p[0].as_ref(), p[1].as_ref()))
                    .collect();
                match self.srv.settings.config_set(&pairs) {
                    Ok(()) => {
                        // requirepass may have changed: the default user's password.
                        self.srv.acl.requirepass_changed();
                        Frame::ok().into()
                    }
                    Err(e) => err(e),
                }
            }
            "resetstat" => {
                self.srv.stats.reset();
                Frame::ok().into()
            }
            "rewrite" => err("ERR The server is running without a config file"),
            "help" => Frame::Array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                    "REWRITE",
                    "    Rewrite the configuration file.",
                    "HELP",
                    "    Print this help.",
                ]
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect(),
            )
            .into(),
            _ => unknown_subcommand("config", &args[1]),
        }
    }

    // ---- Pub/Sub ----

    fn subs_mut(&mut self, kind: SubKind) -> &mut std::collections::HashSet<Bytes> {
        match kind {
            SubKind::Channel => &mut self.subs,
            SubKind::Pattern => &mut self.psubs,
            SubKind::Shard => &mut self.ssubs,
        }
    }

    /// The count Redis reports after (un)subscribing: channels + patterns, or shard channels.
    fn sub_reply_count(&self, kind: SubKind) -> i64 {
        match kind {
            SubKind::Shard => self.ssubs.len() as i64,
            _ => (self.subs.len() + self.psubs.len()) as i64,
        }
    }

    fn sync_sub_fields(&self) {
        let mut f = self.handle.fields.lock();
        f.sub = self.subs.len();
        f.psub = self.psubs.len();
        f.ssub = self.ssubs.len();
    }

    fn subscribe(&mut self, kind: SubKind, names: &[Bytes]) -> Reply {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if self.subs_mut(kind).insert(name.clone()) {
                self.srv.pubsub.subscribe(kind, name, &self.handle);
            }
            out.push(Frame::Push(vec![
                bulk_str(kind.subscribe_word()),
                Frame::Bulk(name.clone()),
                Frame::Integer(self.sub_reply_count(kind)),
            ]));
        }
        self.sync_sub_fields();
        Reply::Many(out)
    }

    fn unsubscribe(&mut self, kind: SubKind, names: &[Bytes]) -> Reply {
        let names: Vec<Bytes> = if names.is_empty() {
            self.subs_mut(kind).iter().cloned().collect()
        } else {
            names.to_vec()
        };
        let mut out = Vec::with_capacity(names.len().max(1));
        if names.is_empty() {
            out.push(Frame::Push(vec![
                bulk_str(kind.unsubscribe_word()),
                Frame::Null,
                Frame::Integer(self.sub_reply_count(kind)),
            ]));
        }
        for name in names {
            if self.subs_mut(kind).remove(&name) {
                self.srv.pubsub.unsubscribe(kind, &name, self.handle.id);
            }
            out.push(Frame::Push(vec![
                bulk_str(kind.unsubscribe_word()),
                Frame::Bulk(name),
                Frame::Integer(self.sub_reply_count(kind)),
            ]));
        }
        self.sync_sub_fields();
        Reply::Many(out)
    }

    /// Drops every subscription (RESET, disconnect).
    pub fn unsubscribe_everything(&mut self) {
        for (kind, set) in [
            (SubKind::Channel, std::mem::take(&mut self.subs)),
            (SubKind::Pattern, std::mem::take(&mut self.psubs)),
            (SubKind::Shard, std::mem::take(&mut self.ssubs)),
        ] {
            for name in set {
                self.srv.pubsub.unsubscribe(kind, &name, self.handle.id);
            }
        }
        self.sync_sub_fields();
    }

    fn cmd_pubsub(&self, args: &[Bytes]) -> Reply {
        let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
        let wrong = || {
            let mut msg = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
            msg.extend_from_slice(&args[1]);
            msg.extend_from_slice(b"'. Try PUBSUB HELP.");
            Reply::One(raw_error(&msg))
        };
        match sub.as_str() {
            "channels" | "shardchannels" => {
                if args.len() > 3 {
                    return wrong();
                }
                let list = self
                    .srv
                    .pubsub
                    .channels(sub == "shardchannels", args.get(2).map(|p| p.as_ref()));
                Frame::Array(list.into_iter().map(Frame::Bulk).collect()).into()
            }
            "numsub" | "shardnumsub" => {
                let mut out = Vec::new();
                for ch in &args[2..] {
                    out.push(Frame::Bulk(ch.clone()));
                    out.push(Frame::Integer(
                        self.srv.pubsub.numsub(sub == "shardnumsub", ch),
                    ));
                }
                Frame::Array(out).into()
            }
            "numpat" => Frame::Integer(self.srv.pubsub.numpat()).into(),
            "help" => Frame::Array(
                [
                    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "CHANNELS [<pattern>]",
                    "NUMPAT",
                    "NUMSUB [<channel> ...]",
                    "SHARDCHANNELS [<pattern>]",
                    "SHARDNUMSUB [<shardchannel> ...]",
                    "HELP",
                ]
                .iter()
                .map(|l| Frame::Simple((*l).into()))
                .collect(),
            )
            .into(),
            _ => unknown_subcommand("pubsub", &args[1]),
        }
    }
}
