//! The embedded CloudSOC API simulator (`siem-agent simulate`, `--demo`).
//! Stub: replaced by the real implementation.
use std::net::SocketAddr;

/// Options of `siem-agent simulate`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[arg(long, default_value_t = 5000)]
    pub events: u64,
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    #[arg(long, default_value = "demo-key")]
    pub key_id: String,
    #[arg(long, default_value = "demo-secret")]
    pub key_secret: String,
}

/// A simulator serving in the background of the current tokio runtime.
pub struct Simulator {
    pub addr: SocketAddr,
}

/// Binds 127.0.0.1:port and serves in a spawned task.
pub async fn start(_args: SimArgs) -> std::io::Result<Simulator> {
    unimplemented!("simulator")
}

pub async fn run(_args: SimArgs) -> std::io::Result<()> {
    unimplemented!("simulator")
}
