//! What ends a run, by the stage it came from: the metrics name its kind
//! ([`AppError::kind`]), and a reader that went away is told from a
//! failure ([`AppError::reader_gone`]).

use crate::cli::settings::SettingsError;
use crate::config::ConfigError;
use crate::event::App;
use crate::run::RunError;
use crate::sink::SinkError;
use crate::source::SourceError;
use crate::state::StateError;
use crate::tenant::TenantError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// What ended a stream's export, and with it the run.
    #[error("{app}")]
    Stream {
        app: App,
        #[source]
        source: RunError,
    },
    /// What ended the run outside any one stream (a signal before the
    /// first request, streams that made no progress).
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("output {what}")]
    Open {
        what: String,
        #[source]
        source: SinkError,
    },
    #[error("closing the output")]
    Close(#[source] SinkError),
    /// A run refused before it began (why).
    #[error("{0}")]
    Refused(String),
    /// A panic in a tenant's task (its message, redacted).
    #[error("internal error (please report): {0}")]
    Internal(String),
}

impl AppError {
    /// The kind of error, for the metrics (`error="source"`).
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Config(_) | AppError::Tenant(_) => "config",
            AppError::State(_) => "state",
            AppError::Source(_) => "source",
            AppError::Stream { source, .. } | AppError::Run(source) => match source {
                RunError::Source(_) | RunError::Stalled(_) => "source",
                RunError::Sink(_) => "output",
                RunError::State(_) => "state",
                RunError::Interrupted(_) => "signal",
            },
            AppError::Open { .. } | AppError::Close(_) => "output",
            AppError::Settings(_) | AppError::Refused(_) | AppError::Internal(_) => "other",
        }
    }

    /// Whether the run ended because the reader of its STREAM output went
    /// away (`| head`).
    pub fn reader_gone(&self) -> bool {
        let sink = match self {
            AppError::Stream {
                source: RunError::Sink(e),
                ..
            }
            | AppError::Run(RunError::Sink(e))
            | AppError::Open { source: e, .. }
            | AppError::Close(e) => e,
            _ => return false,
        };
        matches!(sink, SinkError::ReaderGone { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Interrupted;

    fn gone() -> SinkError {
        SinkError::ReaderGone {
            target: "stdout".into(),
        }
    }

    #[test]
    fn each_error_has_the_kind_of_its_stage() {
        let stream = |source| AppError::Stream {
            app: App::Investigate,
            source,
        };
        assert_eq!(stream(RunError::Sink(gone())).kind(), "output");
        assert_eq!(
            stream(RunError::Interrupted(Interrupted("SIGTERM"))).kind(),
            "signal"
        );
        assert_eq!(AppError::Run(RunError::Stalled(vec![])).kind(), "source");
        assert_eq!(AppError::Close(gone()).kind(), "output");
        assert_eq!(AppError::Refused("x".into()).kind(), "other");
        assert_eq!(AppError::Internal("x".into()).kind(), "other");
    }

    #[test]
    fn a_reader_gone_is_told_wherever_it_ended_the_run() {
        let stream = AppError::Stream {
            app: App::Detect,
            source: RunError::Sink(gone()),
        };
        assert!(stream.reader_gone());
        assert!(AppError::Run(RunError::Sink(gone())).reader_gone());
        assert!(AppError::Close(gone()).reader_gone());
        assert!(!AppError::Run(RunError::Stalled(vec![])).reader_gone());
        assert!(!AppError::Refused("x".into()).reader_gone());
    }

    #[test]
    fn a_streams_error_names_the_stream_first() {
        let e = AppError::Stream {
            app: App::Detect,
            source: RunError::Sink(gone()),
        };
        let line = crate::report::one_line(&e);
        assert!(line.starts_with("Detect: "), "{line}");
    }
}
