//! The process exit codes: 0 for success (or another instance holding the
//! lock), 1 for any error. Cron and systemd only need to tell those apart.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The run finished, or another instance holds the lock.
    Success,
    /// Anything went wrong; one line on stderr says what.
    Error,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        match code {
            ExitCode::Success => std::process::ExitCode::SUCCESS,
            ExitCode::Error => std::process::ExitCode::FAILURE,
        }
    }
}
