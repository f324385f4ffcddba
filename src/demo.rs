//! `--demo`: a real export against the simulator, started in this process,
//! with the state in a temporary directory. Nothing outside that directory
//! is touched (the log file goes there too unless --log-file says
//! otherwise).

use crate::cli::{ExportArgs, OutputKind, StreamKind};
use crate::event::Vendor;
use crate::simulate::{self, SimArgs, Simulator};
use clap::Parser;

/// What the demo keeps alive for the run.
pub struct Demo {
    pub dir: tempfile::TempDir,
    pub simulator: Simulator,
}

#[derive(Parser)]
struct SimOnly {
    #[command(flatten)]
    sim: SimArgs,
}

/// Starts the simulator (as the API `--source` names) and points `args`
/// at it.
pub async fn prepare(args: &mut ExportArgs, output_given: bool) -> std::io::Result<Demo> {
    let vendor = args.source.unwrap_or_default();
    let sim_vendor = match vendor {
        Vendor::Mcas => "mcas",
        Vendor::Cirrus => "cirrus",
        Vendor::Rest => "rest",
        Vendor::CloudSoc => "cloudsoc",
        Vendor::Sls => "sls",
    };
    let sim = SimOnly::try_parse_from(["simulate", "--events", "400", "--vendor", sim_vendor])
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .sim;
    let simulator = simulate::start(sim.clone()).await?;
    let dir = tempfile::Builder::new()
        .prefix("siem-agent-demo-")
        .tempdir()?;
    let config = simulate::ready_config(&sim, simulator.addr);
    let config_path = dir.path().join("config.json");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&config_path)?;
        serde_json::to_writer_pretty(f, &config)?;
    }
    args.config = config_path;
    args.state_dir = Some(dir.path().to_path_buf());
    if args.log_file.is_none() {
        args.log_file = Some(dir.path().join("siem-agent.log"));
    }
    if !output_given {
        args.output = OutputKind::Stream;
        args.stream = StreamKind::Stdout;
    }
    Ok(Demo { dir, simulator })
}
