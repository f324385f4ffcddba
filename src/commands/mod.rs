//! The subcommands besides the export: `check`, `status`, `completions`,
//! `man` (the simulator lives in `simulate`).

pub mod check;
pub mod status;

use crate::cli::Cli;
use clap::CommandFactory;

/// Writes shell completions for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "siem-agent", out);
}

/// Writes the man page (roff) to `out`.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}
