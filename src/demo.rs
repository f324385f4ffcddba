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
    let (logstore, tenant, key_id, key_secret, token) = (
        sim.logstore.clone(),
        sim.tenant.clone(),
        sim.key_id.clone(),
        sim.key_secret.clone(),
        sim.token.clone(),
    );
    let simulator = simulate::start(sim).await?;
    let dir = tempfile::Builder::new()
        .prefix("siem-agent-demo-")
        .tempdir()?;
    let api_server = format!("http://{}/", simulator.addr);
    let config = match vendor {
        Vendor::Mcas => serde_json::json!({
            "source": "mcas",
            "api_server": api_server,
            "token": token,
            "data_types": ["alerts", "activities"],
        }),
        Vendor::Cirrus => serde_json::json!({
            "source": "cirrus",
            "apiurl": format!("{api_server}logs/v1"),
            "apikey": key_id,
            "apisecret": key_secret,
            "orgurl": "https://example.edu",
        }),
        Vendor::Sls => serde_json::json!({
            "source": "sls",
            "endpoint": format!("http://{}", simulator.addr),
            "project": tenant,
            "logstore": logstore,
            "access_key_id": key_id,
            "access_key_secret": key_secret,
            "start": "begin",
        }),
        Vendor::Rest => serde_json::json!({
            "source": "rest",
            "url": format!("{api_server}api/v1/logs"),
            "headers": {"Authorization": format!("SSWS {token}")},
            "params": {"limit": "100"},
            "since_param": "since",
            "time_field": "published",
            "id_field": "uuid",
            "next": "link",
        }),
        _ => serde_json::json!({
            "user_id": "demo",
            "api_server": api_server,
            "key_id": key_id,
            "key_secret": key_secret,
            "tenant": tenant,
        }),
    };
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
