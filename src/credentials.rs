//! Secrets kept out of config.json, and where each credential came from.
//!
//! - `<key>_file`: a secret key of config.json (`key_secret`, `token`,
//!   `apisecret`, `client_secret`, `access_key_secret`, `hec_token`), a
//!   header's value (`"headers": {"Authorization_file": PATH}`) or a
//!   declared API's auth secret (`"auth": {"bearer_file": PATH}`,
//!   `{"type": "oauth2", "client_secret_file": PATH}`, a destination's
//!   `hec_token_file`) may be given as the
//!   path of a file that holds it. The file is read at start, one trailing
//!   newline dropped; it is refused when group or others may read it
//!   (unless another user owns it and only the agent's group may read it,
//!   as a root-owned `0640 root:siem-agent` file), when it is empty, and
//!   with the key itself beside it.
//! - systemd credentials (`LoadCredential=key_secret:/etc/...`): with
//!   `$CREDENTIALS_DIRECTORY` set, a top-level secret key the config lacks
//!   is read from `<that directory>/<config name>.<key>` or
//!   `<that directory>/<key>` when there is one.
//! - Where each credential came from (config.json, a `*_file`, a systemd
//!   credential, a flag, an environment variable) is noted by config file,
//!   so that an API's refusal names it ([`whence`]).

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The top-level keys that may come from a file.
pub const FILE_KEYS: [&str; 6] = [
    "key_secret",
    "token",
    "apisecret",
    "client_secret",
    "access_key_secret",
    "hec_token",
];

/// Where each credential of each config came from, when not config.json.
fn origins() -> &'static Mutex<HashMap<(PathBuf, String), String>> {
    static O: OnceLock<Mutex<HashMap<(PathBuf, String), String>>> = OnceLock::new();
    O.get_or_init(Default::default)
}

/// Notes that `key` of the config `config` came from `origin` (`the
/// --token flag`, `$API_KEY`, `key_secret_file /run/...`).
pub fn note(config: &Path, key: &str, origin: impl Into<String>) {
    origins()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((config.to_path_buf(), key.to_string()), origin.into());
}

/// What to check, for an API's refusal of `keys` (`key_id, key_secret and
/// tenant`), with where each came from: `in config.json`, or `in config.json
/// (key_secret from $SIEM_AGENT_...)`.
pub fn whence(config: &Path, keys: &str) -> String {
    let o = origins().lock().unwrap_or_else(|e| e.into_inner());
    let mut notes = Vec::new();
    for word in keys
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
    {
        if let Some(origin) = o.get(&(config.to_path_buf(), word.to_string()))
            && !notes
                .iter()
                .any(|n: &String| n.starts_with(&format!("{word} ")))
        {
            notes.push(format!("{word} from {origin}"));
        }
    }
    let shown = config.display();
    if notes.is_empty() {
        format!("{keys} in {shown}")
    } else {
        format!("{keys} ({}; the rest in {shown})", notes.join(", "))
    }
}

/// A problem with a secret file, for a message naming the config's key.
pub type Problem = (String, String);

/// Reads a secret from `file`; `loose_ok` for a systemd credential (in a
/// directory only the service can read, whatever the file's mode).
pub fn read_secret_file(file: &Path, loose_ok: bool) -> Result<String, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta =
        std::fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mode = if loose_ok {
        0
    } else {
        meta.permissions().mode() & 0o777
    };
    // SAFETY: getegid and geteuid have no preconditions, cannot fail.
    let (egid, euid) = unsafe { (libc::getegid(), libc::geteuid()) };
    let granted = meta.gid() == egid && meta.uid() != euid;
    if mode & 0o004 != 0 || (mode & 0o040 != 0 && !granted) {
        return Err(format!(
            "{} is readable by {} (mode {mode:03o}): chmod 600 it (or 640 root:<the agent's group>)",
            file.display(),
            if mode & 0o004 != 0 {
                "everyone"
            } else {
                "its group"
            }
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let secret = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    if secret.trim().is_empty() {
        return Err(format!("{} is empty", file.display()));
    }
    crate::secret::register(&secret);
    Ok(secret)
}

/// Replaces the `<key>_file` entries of config.json's object `obj` (the
/// file `config`) by the secrets they name, and takes the secret keys that
/// `wanted` lists and the config lacks from systemd's credentials. The
/// error is the key and its problem.
pub fn resolve(
    config: &Path,
    obj: &mut Map<String, Value>,
    wanted: &[&str],
) -> Result<(), Problem> {
    let base = config.parent().unwrap_or(Path::new("."));
    let read = |key: &str, v: &Value| -> Result<(String, String), Problem> {
        let Value::String(p) = v else {
            return Err((key.to_string(), "must be the path of a file".into()));
        };
        let path = base.join(p.trim());
        let secret = read_secret_file(&path, false).map_err(|e| (key.to_string(), e))?;
        Ok((secret, format!("{key} {}", path.display())))
    };
    for key in FILE_KEYS {
        let file_key = format!("{key}_file");
        let Some(v) = obj.remove(&file_key) else {
            continue;
        };
        if obj.get(key).is_some_and(|v| !v.is_null()) {
            return Err((file_key, format!("and \"{key}\" are both set: keep one")));
        }
        let (secret, origin) = read(&file_key, &v)?;
        note(config, key, origin);
        obj.insert(key.to_string(), Value::String(secret));
    }
    // Nested: headers and auth.
    for section in ["headers", "auth"] {
        let Some(Value::Object(inner)) = obj.get_mut(section) else {
            continue;
        };
        let files: Vec<String> = inner
            .keys()
            .filter(|k| k.ends_with("_file") && k.len() > 5)
            .cloned()
            .collect();
        for file_key in files {
            let key = file_key[..file_key.len() - 5].to_string();
            if section == "auth" && !matches!(key.as_str(), "bearer" | "client_secret") {
                continue; // refused by the declaration's own check
            }
            let v = inner.remove(&file_key).unwrap_or(Value::Null);
            let shown = format!("{section}'s {file_key}");
            if inner.contains_key(&key) {
                return Err((
                    section.to_string(),
                    format!("has {key:?} and {file_key:?}: keep one"),
                ));
            }
            let (secret, origin) = read(&shown, &v).map_err(|(_, e)| (section.to_string(), e))?;
            note(config, &key, origin);
            inner.insert(key, Value::String(secret));
        }
    }
    // A destination's HEC token.
    if let Some(Value::Array(list)) = obj.get_mut("destinations") {
        for (i, entry) in list.iter_mut().enumerate() {
            let Some(entry) = entry.as_object_mut() else {
                continue;
            };
            let Some(v) = entry.remove("hec_token_file") else {
                continue;
            };
            if entry.contains_key("hec_token") {
                return Err((
                    "destinations".into(),
                    format!("entry {i} has \"hec_token\" and \"hec_token_file\": keep one"),
                ));
            }
            let (secret, origin) = read(&format!("destinations' entry {i} hec_token_file"), &v)
                .map_err(|(_, e)| ("destinations".to_string(), e))?;
            note(config, "hec_token", origin);
            entry.insert("hec_token".into(), Value::String(secret));
        }
    }
    // systemd's credentials, for what the config lacks.
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let dir = PathBuf::from(dir);
        let name = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for key in FILE_KEYS.iter().filter(|k| wanted.contains(k)) {
            if obj.get(*key).is_some_and(|v| !v.is_null()) {
                continue;
            }
            for file in [dir.join(format!("{name}.{key}")), dir.join(key)] {
                if file.is_file() {
                    let secret = read_secret_file(&file, true).map_err(|e| (key.to_string(), e))?;
                    note(
                        config,
                        key,
                        format!("the systemd credential {}", file.display()),
                    );
                    obj.insert(key.to_string(), Value::String(secret));
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_file_replaces_its_key_with_one_newline_dropped() {
        let dir = tempfile::tempdir().unwrap();
        secret_file(dir.path(), "ks", "s3cret-from-file\n\n", 0o600);
        secret_file(dir.path(), "hdr", "SSWS tok-from-file\n", 0o400);
        let config = dir.path().join("config.json");
        let mut obj = json!({"key_secret_file": "ks", "headers": {"Authorization_file": "hdr"}})
            .as_object()
            .unwrap()
            .clone();
        resolve(&config, &mut obj, &[]).unwrap();
        assert_eq!(obj["key_secret"], "s3cret-from-file\n");
        assert_eq!(obj["headers"]["Authorization"], "SSWS tok-from-file");
        assert!(obj.get("key_secret_file").is_none());
        let mut obj = json!({"destinations": [{"output": "HEC", "hec_token_file": "ks"}]})
            .as_object()
            .unwrap()
            .clone();
        resolve(&config, &mut obj, &[]).unwrap();
        assert_eq!(obj["destinations"][0]["hec_token"], "s3cret-from-file\n");
        assert!(
            whence(&config, "key_id, key_secret and tenant")
                .contains("key_secret from key_secret_file")
        );
    }

    #[test]
    fn a_loose_empty_missing_or_doubled_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        secret_file(dir.path(), "loose", "x-secret", 0o644);
        secret_file(dir.path(), "empty", "\n", 0o600);
        secret_file(dir.path(), "good", "x-secret", 0o600);
        let config = dir.path().join("config.json");
        for (v, want) in [
            (json!({"token_file": "loose"}), "readable by everyone"),
            (json!({"token_file": "empty"}), "is empty"),
            (json!({"token_file": "nowhere"}), "cannot read"),
            (json!({"token_file": "good", "token": "x"}), "both set"),
            (json!({"token_file": 5}), "path of a file"),
        ] {
            let mut obj = v.as_object().unwrap().clone();
            let (key, problem) = resolve(&config, &mut obj, &[]).unwrap_err();
            assert!(key.starts_with("token"), "{key}");
            assert!(problem.contains(want), "{problem}");
        }
    }
}
