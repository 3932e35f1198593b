use clap::Parser;

use raft_kv::config::Config;

fn main() {
    // `raft-kv ctl ...` administers a running cluster; anything else runs a node.
    if std::env::args().nth(1).as_deref() == Some("ctl") {
        let args = raft_kv::ctl::CtlArgs::parse_from(std::env::args().skip(1));
        if let Err(e) = raft_kv::ctl::run(args) {
            eprintln!("raft-kv ctl: {e}");
            std::process::exit(1);
        }
        return;
    }
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    raft_kv::failpoint::init();
    if let Err(e) = raft_kv::server::run(config) {
        eprintln!("raft-kv: {e}");
        std::process::exit(1);
    }
}
