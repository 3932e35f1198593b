use clap::Parser;

use raft_kv::config::Config;

fn main() {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if let Err(e) = raft_kv::server::run(config) {
        eprintln!("raft-kv: {e}");
        std::process::exit(1);
    }
}
