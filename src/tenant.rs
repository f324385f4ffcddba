//! Many tenants in one run: `--config DIR` makes every `*.json` file of
//! the directory one tenant, named by its file stem, with its state in a
//! directory of its own (`<state-dir>/<name>/`: cursor, lock, status).
//!
//! What is a tenant file and what is not is decided here, in one place:
//! hidden files (`.acme.json`, an editor's temporary) and examples
//! (`config.example.json`, `*.example.json`) are not tenants; a name that
//! could not be a directory name on its own (`..`, one with a space or a
//! slash) is a tenant that fails with a one-line error, so that the others
//! still run.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// One tenant: its name, its config file and its state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug, Error)]
pub enum TenantError {
    #[error("{dir}: cannot list the tenant files: {source}")]
    List { dir: String, source: std::io::Error },
    #[error("{dir}: no tenant files (*.json; hidden files and *.example.json are not tenants)")]
    Empty { dir: String },
    #[error(
        "{file}: '{name}' cannot name a tenant: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    BadName { file: String, name: String },
    #[error(
        "{dir}: the tenant's state directory is a symbolic link; refusing to follow it (replace it with the directory itself)"
    )]
    StateLink { dir: String, name: String },
    #[error("{file}: cannot read the tenant file: {source}")]
    Unreadable {
        file: String,
        name: String,
        source: std::io::Error,
    },
}

impl TenantError {
    /// The tenant an error is about, when it is about one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            TenantError::BadName { name, .. }
            | TenantError::Unreadable { name, .. }
            | TenantError::StateLink { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// The longest tenant name: it becomes a directory name and a label.
const MAX_NAME: usize = 128;

/// Whether `name` can name a tenant (and so a directory of its own).
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Whether a directory entry named `file` is a tenant file at all.
fn is_tenant_file(file: &str) -> bool {
    file.ends_with(".json")
        && !file.starts_with('.')
        && !file.ends_with(".example.json")
        && file != "config.example.json"
}

/// The tenants of `dir`, by name: each a tenant or the reason its file
/// cannot be one. `state_root` holds each tenant's state directory.
pub fn discover(
    dir: &Path,
    state_root: &Path,
) -> Result<Vec<Result<Tenant, TenantError>>, TenantError> {
    let list_error = |source| TenantError::List {
        dir: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if !is_tenant_file(&file) {
            continue;
        }
        // What the name leads to: a file is a tenant (a symbolic link to
        // one too: configs are often linked from a secrets store); a
        // directory named x.json is not; a link that leads nowhere, or
        // that cannot be followed, is a tenant that fails, never one
        // skipped without a word.
        match std::fs::metadata(entry.path()) {
            Ok(m) if !m.is_file() => continue,
            Ok(_) => files.push((file, None)),
            Err(e) => files.push((file, Some(e))),
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    if files.is_empty() {
        return Err(TenantError::Empty {
            dir: dir.display().to_string(),
        });
    }
    Ok(files
        .into_iter()
        .map(|(file, unreadable)| {
            let name = file.trim_end_matches(".json").to_string();
            let config = dir.join(&file);
            if !valid_name(&name) {
                return Err(TenantError::BadName {
                    file: config.display().to_string(),
                    name: crate::report::printable(&name).into_owned(),
                });
            }
            if let Some(source) = unreadable {
                return Err(TenantError::Unreadable {
                    file: config.display().to_string(),
                    name,
                    source,
                });
            }
            // Its state directory is the agent's own, made by the first
            // run: a link there would lead its cursor and lock elsewhere
            // (another tenant's, or anywhere a root-run agent may write).
            let state_dir = state_root.join(&name);
            if std::fs::symlink_metadata(&state_dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(TenantError::StateLink {
                    dir: state_dir.display().to_string(),
                    name,
                });
            }
            Ok(Tenant {
                state_dir,
                name,
                config,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["acme", "globex-eu", "t1", "a.b_c", "0day"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        for bad in ["", ".", "..", ".x", "-x", "a b", "a/b", "é", long.as_str()] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn discovers_json_files_in_order_and_skips_others() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "globex.json",
            "acme.json",
            ".hidden.json",
            "config.example.json",
            "x.example.json",
            "notes.txt",
            "bad name.json",
        ] {
            std::fs::write(d.path().join(f), "{}").unwrap();
        }
        std::fs::create_dir(d.path().join("dir.json")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x.json", d.path().join("lost.json")).unwrap();
        std::os::unix::fs::symlink(d.path().join("acme.json"), d.path().join("linked.json"))
            .unwrap();
        let found = discover(d.path(), Path::new("/state")).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|t| match t {
                Ok(t) => t.name.clone(),
                Err(e) => format!("error: {e}"),
            })
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(names[0], "acme");
        assert!(names[1].starts_with("error: ") && names[1].contains("bad name.json"));
        assert_eq!(names[2], "globex");
        assert_eq!(names[3], "linked");
        assert!(
            names[4].contains("lost.json: cannot read the tenant file"),
            "{}",
            names[4]
        );
        assert_eq!(found[4].as_ref().unwrap_err().tenant(), Some("lost"));
        let acme = found[0].as_ref().unwrap();
        assert_eq!(acme.state_dir, Path::new("/state/acme"));
        assert_eq!(acme.config, d.path().join("acme.json"));
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.example.json"), "{}").unwrap();
        let e = discover(d.path(), d.path()).unwrap_err();
        assert!(e.to_string().contains("no tenant files"), "{e}");
    }
}
