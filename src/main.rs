//! siem-agent's entry point: parse the command line, start the runtime,
//! call the library's mode for the subcommand (`siem_agent::app`), exit
//! with its code (0 or 1).

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use siem_agent::app;
use siem_agent::cli::{Cli, Command, one_line_error};
use siem_agent::exit_codes::ExitCode;
use siem_agent::simulate;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: two arenas (the pipeline has two busy threads) and
/// dirty pages returned within a second, so that memory stays flat.
/// (jemalloc reads `const char *malloc_conf`: the slice's first word is
/// that pointer, to a NUL-terminated string.)
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"narenas:2,dirty_decay_ms:1000\0";

fn main() -> std::process::ExitCode {
    app::install_panic_hook();
    let args = siem_agent::cli::hoist_subcommand(std::env::args_os().collect());
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::Success.into()
                }
                _ => {
                    eprintln!("siem-agent: error: {}", one_line_error(&e));
                    ExitCode::Error.into()
                }
            };
        }
    };
    let output_given = matches.value_source("output") == Some(ValueSource::CommandLine);
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("siem-agent: error: {}", one_line_error(&e));
            return ExitCode::Error.into();
        }
    };
    // Which credentials came from the environment (with --config DIR they
    // are left out, where a flag is refused).
    let export_matches = match matches.subcommand() {
        Some(("check", m)) => m,
        _ => &matches,
    };
    let from_env = [
        "token",
        "apikey",
        "apisecret",
        "sls_access_key_id",
        "sls_access_key_secret",
    ]
    .into_iter()
    .filter(|id| export_matches.value_source(id) == Some(ValueSource::EnvVariable))
    .collect();
    match &mut cli.command {
        Some(Command::Check(a)) => a.credentials_from_env = from_env,
        None => cli.export.credentials_from_env = from_env,
        _ => {}
    }
    // How long a write in flight may take to finish at exit.
    let send_timeout = match &cli.command {
        Some(Command::Check(a)) => a.send_timeout,
        _ => cli.export.send_timeout,
    };
    // The export runs on one thread: fetching, formatting and sending take
    // turns there (the state writer and blocking writes have threads of
    // their own). On this workload that costs about 10% less CPU than a
    // pool of workers, which hands every page from one core to another,
    // and exports as fast: the receiver or the API sets the pace (see
    // README, Performance). The simulator serves many clients at once.
    let mut builder = match cli.command {
        Some(Command::Simulate(_)) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("siem-agent: error: cannot start the runtime: {e}");
            return ExitCode::Error.into();
        }
    };
    // A file-size limit (ulimit -f) must be an error on the write that
    // reaches it, not SIGXFSZ killing the run mid-write: handling the
    // signal (and ignoring it) makes such writes fail with EFBIG.
    let _xfsz = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25)).ok()
    });
    let code = match cli.command {
        Some(Command::Completions { shell }) => {
            siem_agent::commands::completions(shell, &mut std::io::stdout());
            ExitCode::Success
        }
        Some(Command::Man) => match siem_agent::commands::man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::Success,
            Err(e) => {
                eprintln!("siem-agent: error: man: {e}");
                ExitCode::Error
            }
        },
        Some(Command::Status(args)) => app::status(&args),
        Some(Command::Check(args)) => runtime.block_on(app::check(args)),
        Some(Command::Simulate(args)) => match runtime.block_on(simulate::run(args)) {
            Ok(()) => ExitCode::Success,
            Err(e) => {
                eprintln!("siem-agent: error: simulator: {e}");
                ExitCode::Error
            }
        },
        None => runtime.block_on(app::agent(cli.export, output_given)),
    };
    // Do not wait for background tasks (a fetch in flight) at exit, but
    // let a write in flight on a blocking thread (a batch of a FILE
    // output, a buffer to stdout) finish, so that no record is cut; each
    // such write is bounded by --send-timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(send_timeout));
    code.into()
}
