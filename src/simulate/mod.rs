//! The embedded CloudSOC API simulator (`siem-agent simulate`, `--demo`).
use std::net::SocketAddr;

/// Options of `siem-agent simulate`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// A simulator serving in the background of the current tokio runtime.
pub struct Simulator {
    pub addr: SocketAddr,
}

/// Binds 127.0.0.1:port and serves in a spawned task.
pub async fn start(_args: SimArgs) -> std::io::Result<Simulator> {
    unimplemented!("simulator")
}
