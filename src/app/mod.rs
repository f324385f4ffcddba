//! The command line's modes as library code: `main` parses the flags and
//! calls one of these, so that what a run does (the lock, the config, its
//! streams, tenants, signals, the report) is reachable by library tests.
//!
//! - [`agent`]: the export command, one config or a directory of tenants;
//! - [`export`]: one config's run;
//! - [`tenants`]: a directory of tenants, each in its own task;
//! - [`check`]: `siem-agent check`;
//! - [`signals`] and [`panic`]: how a run is stopped, and what a panic does;
//! - [`report`]: what a run tells when it ends;
//! - [`error`]: what ends a run, by stage.

pub mod agent;
pub mod check;
pub mod error;
pub mod export;
pub mod panic;
pub mod report;
pub mod signals;
pub mod tenants;

pub use agent::agent;
pub use check::check;
pub use error::AppError;
pub use panic::install_panic_hook;

use crate::cli::StatusArgs;
use crate::exit_codes::ExitCode;
use crate::report::one_line;

/// How an export that did not fail ended.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Another run holds the lock.
    Locked,
    /// A tenant of many that a signal stopped before it began.
    NotStarted(&'static str),
}

/// `siem-agent status`: the last run and each stream's cursor, as text or
/// JSON, on stdout.
pub fn status(args: &StatusArgs) -> ExitCode {
    match crate::commands::status::report(args, chrono::Utc::now()) {
        Ok(r) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                print!("{}", crate::commands::status::text(&r));
            }
            // For cron and monitoring: 1 when a config cannot be read or
            // the last run failed.
            if crate::commands::status::unhealthy(&r) {
                ExitCode::Error
            } else {
                ExitCode::Success
            }
        }
        Err(e) => {
            eprintln!("siem-agent: error: {}", one_line(&e));
            ExitCode::Error
        }
    }
}
