//! `last_job.status`: the run in progress, or how the last one ended.
//! Written at the start and at the end of a run; `-c` removes it.

use super::{StateError, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

/// Counts for one app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Logs written to the output.
    pub exported: u64,
    /// Logs that the filters left out.
    pub filtered: u64,
    /// Logs the cursor had already passed (delivered by an earlier run).
    pub skipped: u64,
    /// API pages read.
    pub pages: u64,
    /// Logs newer than the settle window, left for the next run.
    #[serde(default)]
    pub held: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub state: RunState,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started: String,
    pub ended: Option<String>,
    pub apps: BTreeMap<String, Counts>,
    /// The error that ended a failed run (secrets removed).
    pub error: Option<String>,
}

impl Status {
    pub fn running(started: String) -> Status {
        Status {
            version: VERSION,
            state: RunState::Running,
            pid: std::process::id(),
            started,
            ended: None,
            apps: BTreeMap::new(),
            error: None,
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        // The error may quote a server that echoed a secret: redacted here,
        // whoever built it, before JSON escapes it out of reach.
        let mut shown = self.clone();
        shown.error = shown.error.map(|e| crate::secret::redact(&e));
        let mut bytes = serde_json::to_vec_pretty(&shown).unwrap_or_default();
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }

    /// Reads the file; `None` when it does not exist or cannot be parsed
    /// (the status is information only: it never decides what is sent).
    pub fn load(path: &Path) -> Option<Status> {
        // Never through a symbolic link (see `StateDir::open`).
        if super::is_link(path) {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let mut status: Status = serde_json::from_slice(&bytes).ok()?;
        // Written by another version, or before a secret was registered:
        // redacted again with this process's secrets.
        status.error = status.error.map(|e| crate::secret::redact(&e));
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last_job.status");
        let mut s = Status::running("2026-01-01T00:00:00Z".into());
        s.apps.entry("Investigate".into()).or_default().exported = 3;
        s.save(&path).unwrap();
        assert_eq!(Status::load(&path), Some(s));
        std::fs::write(&path, "junk").unwrap();
        assert_eq!(Status::load(&path), None);
    }
}
