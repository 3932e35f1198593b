//! COMMAND and its subcommands, built from the command table.

use bytes::Bytes;

use super::conn::{err, unknown_subcommand, Reply};
use crate::cmd::args::is;
use crate::cmd::category::{self, Categories};
use crate::cmd::server_cmds::{lookup_sub, subcommands, SubSpec};
use crate::cmd::{flag, specs, CommandSpec, Kind};
use crate::protocol::{matches, Frame};

fn simple(s: &str) -> Frame {
    Frame::Simple(s.to_string())
}

fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes().to_vec())
}

fn flag_names(flags: u32) -> Vec<Frame> {
    flag::NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| simple(n))
        .collect()
}

fn categories(cats: Categories) -> Vec<Frame> {
    category::names(cats)
        .map(|n| simple(&format!("@{n}")))
        .collect()
}

fn sub_entry(container: &CommandSpec, s: &SubSpec) -> Frame {
    Frame::Array(vec![
        bulk(&format!("{}|{}", container.name, s.name)),
        Frame::Integer(s.arity as i64),
        Frame::Set(flag_names(s.flags)),
        Frame::Integer(0),
        Frame::Integer(0),
        Frame::Integer(0),
        Frame::Set(categories(category::of(container, Some(s)))),
        Frame::Set(vec![]),
        Frame::Set(vec![]),
        Frame::Set(vec![]),
    ])
}

/// One `COMMAND INFO` entry: name, arity, flags, first key, last key, step, ACL categories,
/// tips, key specs, subcommands.
pub fn entry(spec: &CommandSpec) -> Frame {
    let subs: Vec<Frame> = subcommands(spec.name)
        .map(|list| list.iter().map(|s| sub_entry(spec, s)).collect())
        .unwrap_or_default();
    let (first, last, step) = if spec.key_finder.is_some() && spec.first_key == 0 {
        (0, 0, 0)
    } else {
        (spec.first_key, spec.last_key, spec.step)
    };
    Frame::Array(vec![
        bulk(spec.name),
        Frame::Integer(spec.arity as i64),
        Frame::Set(flag_names(spec.flags)),
        Frame::Integer(first as i64),
        Frame::Integer(last as i64),
        Frame::Integer(step as i64),
        Frame::Set(categories(category::of(spec, None))),
        Frame::Set(vec![]),
        Frame::Set(vec![]),
        Frame::Set(subs),
    ])
}

fn sorted_specs() -> Vec<&'static CommandSpec> {
    let mut v: Vec<_> = specs().collect();
    v.sort_by_key(|s| s.name);
    v
}

fn group_of(spec: &CommandSpec) -> &'static str {
    match spec.kind {
        Kind::Server => {
            if spec.flags & flag::PUBSUB != 0 {
                "pubsub"
            } else if matches!(
                spec.name,
                "multi" | "exec" | "discard" | "watch" | "unwatch"
            ) {
                "transactions"
            } else if matches!(
                spec.name,
                "ping" | "echo" | "quit" | "hello" | "auth" | "select" | "client" | "reset"
            ) {
                "connection"
            } else {
                "server"
            }
        }
        _ => "generic",
    }
}

fn docs_entry(spec: &CommandSpec) -> Frame {
    Frame::Map(vec![
        (bulk("summary"), bulk("")),
        (bulk("since"), bulk("1.0.0")),
        (bulk("group"), bulk(group_of(spec))),
    ])
}

fn has_keys(spec: &CommandSpec) -> bool {
    spec.key_finder.is_some() || spec.first_key > 0
}

/// COMMAND [subcommand ...].
pub fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Frame::Array(sorted_specs().into_iter().map(entry).collect()).into();
    }
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    match sub.as_str() {
        "count" => Frame::Integer(specs().count() as i64).into(),
        "info" => {
            if args.len() == 2 {
                return Frame::Array(sorted_specs().into_iter().map(entry).collect()).into();
            }
            Frame::Array(
                args[2..]
                    .iter()
                    .map(|n| match crate::cmd::lookup(n) {
                        Some(s) => entry(s),
                        None => Frame::Null,
                    })
                    .collect(),
            )
            .into()
        }
        "docs" => {
            let list: Vec<&CommandSpec> = if args.len() == 2 {
                sorted_specs()
            } else {
                args[2..]
                    .iter()
                    .filter_map(|n| crate::cmd::lookup(n))
                    .collect()
            };
            Frame::Map(
                list.into_iter()
                    .map(|s| (bulk(s.name), docs_entry(s)))
                    .collect(),
            )
            .into()
        }
        "getkeys" | "getkeysandflags" => {
            let Some(spec) = crate::cmd::lookup(&args[2]) else {
                return err("ERR Invalid command specified");
            };
            if !has_keys(spec) {
                return err("ERR The command has no key arguments");
            }
            let cmd_args = &args[2..];
            if !spec.arity_ok(cmd_args.len()) {
                return err("ERR Invalid number of arguments specified for command");
            }
            let keys = spec.key_indexes(cmd_args);
            if keys.is_empty() {
                return err("ERR Invalid arguments specified for command");
            }
            let with_flags = sub == "getkeysandflags";
            let key_flags = if spec.flags & flag::WRITE != 0 {
                vec![simple("RW")]
            } else {
                vec![simple("RO")]
            };
            Frame::Array(
                keys.into_iter()
                    .filter_map(|i| cmd_args.get(i))
                    .map(|k| {
                        if with_flags {
                            Frame::Array(vec![
                                Frame::Bulk(k.clone()),
                                Frame::Set(key_flags.clone()),
                            ])
                        } else {
                            Frame::Bulk(k.clone())
                        }
                    })
                    .collect(),
            )
            .into()
        }
        "list" => {
            let mut names: Vec<String> = Vec::new();
            for s in sorted_specs() {
                names.push(s.name.to_string());
                if let Some(subs) = subcommands(s.name) {
                    names.extend(subs.iter().map(|x| format!("{}|{}", s.name, x.name)));
                }
            }
            if args.len() == 2 {
                return Frame::Array(names.iter().map(|n| bulk(n)).collect()).into();
            }
            if args.len() != 5 || !is(&args[2], "filterby") {
                return crate::cmd::CmdError::Syntax.to_frame().into();
            }
            let value = &args[4];
            let keep: Box<dyn Fn(&str) -> bool> = if is(&args[3], "pattern") {
                Box::new(move |n: &str| matches(value, n.as_bytes(), true))
            } else if is(&args[3], "aclcat") {
                let cat = category::bit(&String::from_utf8_lossy(value)).unwrap_or(0);
                Box::new(move |n: &str| {
                    let (top, sub) = match n.split_once('|') {
                        Some((t, s)) => (t, Some(s)),
                        None => (n, None),
                    };
                    crate::cmd::lookup(top.as_bytes()).is_some_and(|spec| {
                        let sub = sub.and_then(|s| lookup_sub(spec.name, s.as_bytes()));
                        category::of(spec, sub) & cat != 0
                    })
                })
            } else if is(&args[3], "module") {
                Box::new(|_: &str| false)
            } else {
                return crate::cmd::CmdError::Syntax.to_frame().into();
            };
            Frame::Array(names.iter().filter(|n| keep(n)).map(|n| bulk(n)).collect()).into()
        }
        "help" => Frame::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about the specified commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full command.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| simple(l))
            .collect(),
        )
        .into(),
        _ => unknown_subcommand("command", &args[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::args as b;

    fn one(r: Reply) -> Frame {
        match r {
            Reply::One(f) => f,
            _ => panic!("one reply expected"),
        }
    }

    #[test]
    fn info_and_getkeys() {
        let f = one(command(&b(&["command", "info", "get", "nosuch"])));
        let Frame::Array(items) = f else {
            panic!("array expected")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Frame::Null);
        let Frame::Array(get) = &items[0] else {
            panic!("entry expected")
        };
        assert_eq!(get[0], bulk("get"));
        assert_eq!(get[1], Frame::Integer(2));
        assert_eq!(get[2], Frame::Set(vec![simple("readonly"), simple("fast")]));
        assert_eq!(
            one(command(&b(&["command", "getkeys", "set", "a", "b"]))),
            Frame::Array(vec![bulk("a")])
        );
        assert_eq!(
            one(command(&b(&["command", "getkeys", "get"]))),
            Frame::Error("ERR Invalid number of arguments specified for command".into())
        );
        assert_eq!(
            one(command(&b(&["command", "getkeys", "ping", "x"]))),
            Frame::Error("ERR The command has no key arguments".into())
        );
        assert_eq!(
            one(command(&b(&["command", "getkeys", "foo", "a"]))),
            Frame::Error("ERR Invalid command specified".into())
        );
        let Frame::Integer(n) = one(command(&b(&["command", "count"]))) else {
            panic!("integer expected")
        };
        assert!(n >= 39);
        let Frame::Array(l) = one(command(&b(&[
            "command",
            "list",
            "filterby",
            "pattern",
            "client|s*",
        ]))) else {
            panic!("array expected")
        };
        assert_eq!(l, vec![bulk("client|setinfo"), bulk("client|setname")]);
    }
}
