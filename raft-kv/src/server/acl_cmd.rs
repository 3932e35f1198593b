//! The ACL command. Reads answer from this node's users ([`super::acl`]); SETUSER and
//! DELUSER are metadata commands proposed through the metadata group, answered once this
//! node's view of the metadata has them, so a following command here sees the change.

use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;

use super::acl::{self, hash_rules, valid_username, User, DEFAULT_USER};
use super::conn::{err, unknown_subcommand, Conn, Reply};
use crate::cmd::args::{is, parse_i64_opt};
use crate::cmd::category;
use crate::cmd::server_cmds::{lookup_sub, sub_arity_ok, subcommands};
use crate::cmd::CmdError;
use crate::meta::{MetaCmd, MetaState};
use crate::protocol::Frame;

/// How long SETUSER/DELUSER wait for this node's view to show the applied change (a node
/// outside the metadata group learns it from its peers within a second or two).
const VIEW_WAIT: Duration = Duration::from_secs(5);

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes().to_vec())
}

/// A metadata refusal as a Redis error (codes such as TRYAGAIN kept).
fn meta_error(e: String) -> Reply {
    let coded = e
        .split(' ')
        .next()
        .is_some_and(|w| w.len() > 2 && w.chars().all(|c| c.is_ascii_uppercase()));
    if coded {
        err(e)
    } else {
        err(format!("ERR {e}"))
    }
}

/// Hex of `bits` random bits, rounded up to whole hex digits (as Redis' GENPASS).
pub fn genpass(bits: usize) -> String {
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    rand::thread_rng().fill_bytes(&mut raw);
    let mut out: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    out.truncate(chars);
    out
}

impl Conn {
    pub async fn cmd_acl(&mut self, args: &[Bytes]) -> Reply {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match sub.as_str() {
            "whoami" => bulk(self.acting_user()).into(),
            "users" => {
                let users = self.srv.users();
                Frame::Array(users.names().into_iter().map(bulk).collect()).into()
            }
            "list" => {
                let users = self.srv.users();
                Frame::Array(
                    users
                        .names()
                        .into_iter()
                        .filter_map(|n| {
                            users
                                .get(n)
                                .map(|u| bulk(&format!("user {n} {}", u.describe())))
                        })
                        .collect(),
                )
                .into()
            }
            "getuser" => {
                let name = String::from_utf8_lossy(&args[2]);
                match self.srv.users().get(&name) {
                    Some(u) => u.getuser_frame().into(),
                    None => Frame::Null.into(),
                }
            }
            "setuser" => self.acl_setuser(args).await,
            "deluser" => self.acl_deluser(args).await,
            "cat" => acl_cat(args),
            "genpass" => {
                let bits = match args.get(2) {
                    None => 256,
                    Some(a) => match parse_i64_opt(a) {
                        Some(b) if (1..=4096).contains(&b) => b as usize,
                        _ => return err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
                    },
                };
                bulk(&genpass(bits)).into()
            }
            "dryrun" => self.acl_dryrun(args),
            "log" => match args.get(2) {
                None => self.srv.acl.log_frame(10).into(),
                Some(a) if is(a, "reset") && args.len() == 3 => {
                    self.srv.acl.log_reset();
                    Frame::ok().into()
                }
                Some(a) if args.len() == 3 => match parse_i64_opt(a) {
                    Some(n) if n >= 0 => self.srv.acl.log_frame(n as usize).into(),
                    Some(_) => err("ERR value is out of range, must be positive"),
                    None => CmdError::NotInteger.to_frame().into(),
                },
                Some(_) => CmdError::Syntax.to_frame().into(),
            },
            "save" | "load" => err(NO_ACL_FILE),
            "help" => {
                Frame::Array(HELP.iter().map(|l| Frame::Simple(l.to_string())).collect()).into()
            }
            _ => unknown_subcommand("acl", &args[1]),
        }
    }

    async fn acl_setuser(&mut self, args: &[Bytes]) -> Reply {
        if !valid_username(&args[2]) {
            return err("ERR Usernames can't contain spaces or null characters");
        }
        let name = String::from_utf8_lossy(&args[2]).into_owned();
        let rules = &args[3..];
        // Checked here for Redis' exact error (naming the modifier as typed); the metadata
        // applies the hashed rules the same way, all or nothing.
        let mut user = stored_user(&self.srv.meta.current(), &name);
        if let Err(e) = user.apply_all(rules) {
            return err(format!("ERR {e}"));
        }
        let cmd = MetaCmd::SetUser {
            name,
            rules: hash_rules(rules),
            id: rand::random::<u64>().max(1),
        };
        match self.srv.cluster.propose(&cmd).await {
            Ok(version) => {
                self.wait_for_view(|s| s.version >= version).await;
                Frame::ok().into()
            }
            Err(e) => meta_error(e),
        }
    }

    async fn acl_deluser(&mut self, args: &[Bytes]) -> Reply {
        let names: Vec<String> = args[2..]
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        if names.iter().any(|n| n == DEFAULT_USER) {
            return err("ERR The 'default' user cannot be removed");
        }
        match self
            .srv
            .cluster
            .propose(&MetaCmd::DelUser {
                names: names.clone(),
            })
            .await
        {
            Ok(deleted) => {
                self.wait_for_view(|s| names.iter().all(|n| !s.users.contains_key(n)))
                    .await;
                // Their connections here close now (elsewhere when each node sees the change).
                for c in self.srv.clients.all() {
                    if names.contains(&c.fields.lock().user) {
                        if c.id == self.handle.id {
                            self.closing = true;
                        } else {
                            c.kill();
                        }
                    }
                }
                Frame::Integer(deleted as i64).into()
            }
            Err(e) => meta_error(e),
        }
    }

    /// Waits (bounded) until this node's metadata view satisfies `done`.
    async fn wait_for_view(&self, done: impl Fn(&MetaState) -> bool) {
        let mut rx = self.srv.meta.subscribe();
        let waited = tokio::time::timeout(VIEW_WAIT, rx.wait_for(|s| done(s))).await;
        if waited.is_err() {
            tracing::warn!("an ACL change was applied but this node has not seen it yet");
        }
    }

    fn acl_dryrun(&self, args: &[Bytes]) -> Reply {
        let name = String::from_utf8_lossy(&args[2]);
        let users = self.srv.users();
        let Some(user) = users.get(&name) else {
            return err(format!("ERR User '{name}' not found"));
        };
        let cmd_args = &args[3..];
        let Some(spec) = crate::cmd::lookup(&cmd_args[0]) else {
            return err(format!(
                "ERR Command '{}' not found",
                String::from_utf8_lossy(&cmd_args[0])
            ));
        };
        let mut fullname = spec.name.to_string();
        let mut sub = None;
        if subcommands(spec.name).is_some() && cmd_args.len() >= 2 {
            if let Some(s) = lookup_sub(spec.name, &cmd_args[1]) {
                if !sub_arity_ok(s, cmd_args.len()) {
                    fullname = format!("{}|{}", spec.name, s.name);
                    return CmdError::WrongArity(fullname).to_frame().into();
                }
                fullname = format!("{}|{}", spec.name, s.name);
                sub = Some(s);
            }
        } else if let Some(name) = acl::plain_sub_name(spec.name, cmd_args) {
            fullname = name;
        }
        if !spec.arity_ok(cmd_args.len()) {
            return CmdError::WrongArity(spec.name.into()).to_frame().into();
        }
        match user.check(spec, sub, cmd_args) {
            Ok(()) => Frame::ok().into(),
            Err(d) => bulk(&acl::dryrun_text(&d, &fullname, cmd_args)).into(),
        }
    }
}

/// The user `name` as stored in the metadata (what SETUSER changes): `default` without the
/// node's requirepass laid over it.
fn stored_user(state: &MetaState, name: &str) -> User {
    match state.users.get(name) {
        Some(u) => u.clone(),
        None if name == DEFAULT_USER => User::builtin_default(),
        None => User::default(),
    }
}

fn acl_cat(args: &[Bytes]) -> Reply {
    match args.get(2) {
        None => Frame::Array(category::NAMES.iter().map(|n| bulk(n)).collect()).into(),
        Some(c) if args.len() == 3 => {
            let name = String::from_utf8_lossy(c);
            match category::bit(&name) {
                Some(b) => {
                    Frame::Array(category::commands_in(b).iter().map(|n| bulk(n)).collect()).into()
                }
                None => err(format!("ERR Unknown category '{name}'")),
            }
        }
        Some(_) => CmdError::Syntax.to_frame().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genpass_lengths() {
        assert_eq!(genpass(256).len(), 64);
        assert_eq!(genpass(5).len(), 2);
        assert_eq!(genpass(1).len(), 1);
        assert!(genpass(4096).chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(genpass(128), genpass(128));
    }

    #[test]
    fn cat_lists_categories_and_commands() {
        let b = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect()
        };
        let Reply::One(Frame::Array(all)) = acl_cat(&b(&["acl", "cat"])) else {
            panic!("array expected")
        };
        assert_eq!(all.len(), 21);
        assert_eq!(all[0], bulk("keyspace"));
        let Reply::One(Frame::Array(tx)) = acl_cat(&b(&["acl", "cat", "transaction"])) else {
            panic!("array expected")
        };
        assert_eq!(
            tx,
            ["discard", "exec", "multi", "unwatch", "watch"].map(bulk)
        );
        let Reply::One(e) = acl_cat(&b(&["acl", "cat", "nosuch"])) else {
            panic!("one reply expected")
        };
        assert_eq!(e, Frame::Error("ERR Unknown category 'nosuch'".into()));
    }
}
