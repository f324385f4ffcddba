//! `config.json`: the API credentials, as CloudSOC's console downloads them.
//!
//! This file reads what every source shares (`"source"`, the destinations,
//! HEC's URL and token, `user_id`) and hands the rest of the object to the
//! vendor named (`source::VendorConfig`), whose own file reads and checks
//! its keys. Every problem is one line naming the file and the field.
//! Secrets are registered for redaction before anything is checked.

use crate::event::Vendor;
use crate::secret::{self, Secret};
use crate::source::VendorConfig;
use crate::source::keys::{KeyError, Keys, type_name};
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: must hold a JSON object")]
    NotObject { path: PathBuf },
    #[error(
        "{path} still holds the example's placeholder values ({fields}): put in those of the API key file CloudSOC gives you"
    )]
    Placeholder { path: PathBuf, fields: String },
    /// A key's problem (missing, of the wrong type, invalid), naming the
    /// file and the key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The contents of `config.json`.
#[derive(Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The vendor API (`"source"`, default `cloudsoc`).
    pub source: Vendor,
    /// The vendor's own keys, read by its file in `source/`.
    pub vendor: VendorConfig,
    /// Optional and unused by the API; kept for the status output.
    pub user_id: Option<String>,
    /// Optional: the Splunk HEC URL and token for `-o HEC`.
    pub hec_url: Option<String>,
    pub hec_token: Option<Secret>,
    /// Optional: the HEC sourcetype of every event (over the stream's own,
    /// under `--hec-sourcetype`).
    pub hec_sourcetype: Option<String>,
    /// `"fields"`: static fields added to every event in every format
    /// (`{tenant}` in a value stands for the tenant's name).
    pub fields: Vec<(String, String)>,
    /// Optional: several destinations, each an object of output options
    /// (see `cli::settings::DESTINATION_OPTIONS`).
    pub destinations: Option<Vec<Map<String, Value>>>,
    /// Top-level keys the agent does not know (a typo, such as `tenat`),
    /// quoted: warned about, never an error.
    pub unknown: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("source", &self.source)
            .field("vendor", &self.vendor)
            .field("user_id", &self.user_id)
            .field("hec_url", &self.hec_url)
            .field("hec_token", &self.hec_token)
            .field("hec_sourcetype", &self.hec_sourcetype)
            .field("fields", &self.fields)
            .field("destinations", &self.destinations.as_ref().map(Vec::len))
            .finish()
    }
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_as(path, None)
    }

    /// Reads and checks `path` for the source `--source` names, if any.
    /// With `--source cirrus`, a file that does not exist is read as an
    /// empty one: Cirrus Identity's example client runs on its flags (or
    /// `API_KEY` and `API_SECRET`) alone, its endpoint defaulting to
    /// production, and so does the agent.
    pub fn load_as(path: &Path, source: Option<Vendor>) -> Result<Config, ConfigError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && matches!(source, Some(Vendor::Cirrus | Vendor::Sls)) =>
            {
                b"{}".to_vec()
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        Config::parse_as(path, &text, source)
    }

    /// Checks the bytes of a config file; `path` is only used in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_as(path, bytes, None)
    }

    /// [`Config::parse`] for the source `--source` names, if any: a file
    /// that names another is refused.
    pub fn parse_as(
        path: &Path,
        bytes: &[u8],
        given: Option<Vendor>,
    ) -> Result<Config, ConfigError> {
        let p = || path.to_path_buf();
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|source| ConfigError::Json { path: p(), source })?;
        let Value::Object(mut obj) = value else {
            return Err(ConfigError::NotObject { path: p() });
        };
        let source = source_of(&Keys::new(path, &obj), given)?;
        // Secrets given as `<key>_file` (or systemd credentials) in place.
        crate::credentials::resolve(path, &mut obj, &known_keys(source)).map_err(
            |(key, problem)| KeyError::Declared {
                message: format!("{}: field \"{key}\" {problem}", path.display()),
            },
        )?;
        let keys = Keys::new(path, &obj);
        // Register the secrets before anything else can print them.
        for key in crate::source::SECRET_KEYS {
            if let Some(Value::String(s)) = obj.get(key) {
                secret::register(s);
            }
        }
        // config.example.json copied and not filled in.
        let placeholders: Vec<&str> = ["user_id", "key_id", "key_secret", "tenant"]
            .into_iter()
            .filter(|f| {
                obj.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("replace-with-"))
            })
            .collect();
        if !placeholders.is_empty() {
            return Err(ConfigError::Placeholder {
                path: p(),
                fields: placeholders.join(", "),
            });
        }
        // Each source reads its own keys; another source's are unknown.
        let vendor = VendorConfig::parse(source, &keys)?;
        let user_id = match keys.get("user_id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(keys
                    .invalid(
                        "user_id",
                        format!("must be a string, not {}", type_name(other)),
                    )
                    .into());
            }
        };
        if let Some(Value::String(t)) = obj.get("hec_token") {
            secret::register(t);
        }
        let destinations = match keys.get("destinations") {
            None => None,
            Some(Value::Array(list)) => {
                let mut entries = Vec::with_capacity(list.len());
                for (i, v) in list.iter().enumerate() {
                    let Value::Object(entry) = v else {
                        return Err(keys
                            .invalid(
                                "destinations",
                                format!("entry {i} must be an object, not {}", type_name(v)),
                            )
                            .into());
                    };
                    if let Some(Value::String(t)) = entry.get("hec_token") {
                        secret::register(t);
                    }
                    entries.push(entry.clone());
                }
                Some(entries)
            }
            Some(other) => {
                return Err(keys
                    .invalid(
                        "destinations",
                        format!("must be a list of objects, not {}", type_name(other)),
                    )
                    .into());
            }
        };
        let hec_url = keys.optional_str("hec_url")?;
        let hec_token = keys.optional_str("hec_token")?.map(Secret::new);
        let hec_sourcetype = match keys.optional_nonblank("hec_sourcetype")? {
            Some(s) if s.chars().any(char::is_control) => {
                return Err(keys
                    .invalid("hec_sourcetype", "holds a control character")
                    .into());
            }
            other => other,
        };
        let fields = static_fields(&keys)?;
        let known = known_keys(source);
        let unknown: Vec<String> = obj
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| format!("{k:?}"))
            .collect();
        Ok(Config {
            unknown,
            destinations,
            hec_url,
            hec_token,
            hec_sourcetype,
            fields,
            path: path.to_path_buf(),
            source,
            vendor,
            user_id,
        })
    }

    /// `Some(mode)` when the file can be read by group or others.
    pub fn loose_permissions(&self) -> Option<u32> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&self.path).ok()?;
        let mode = meta.permissions().mode() & 0o777;
        // Readable by the agent's own group, in a file another user owns,
        // is how a service user reads a file root keeps (the package's
        // root:siem-agent 640); a file the agent owns needs no group.
        // SAFETY: getegid and geteuid have no preconditions, cannot fail.
        let (egid, euid) = unsafe { (libc::getegid(), libc::geteuid()) };
        let granted = meta.gid() == egid && meta.uid() != euid;
        let loose = mode & 0o004 != 0 || (mode & 0o040 != 0 && !granted);
        loose.then_some(mode)
    }
}

impl Config {
    /// The warning about keys of the file the agent does not know, each
    /// with the known key it is likely a misspelling of (`"tenat" (did you
    /// mean "tenant"?)`), or the known keys when none is close.
    pub fn unknown_keys_warning(&self) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        let known = known_keys(self.source);
        let mut guessed = false;
        let each: Vec<String> = self
            .unknown
            .iter()
            .map(|quoted| {
                let raw = quoted.trim_matches('"');
                let shown = crate::report::printable(quoted).into_owned();
                match did_you_mean(raw, &known) {
                    Some(k) => {
                        guessed = true;
                        format!("{shown} (did you mean \"{k}\"?)")
                    }
                    None => shown,
                }
            })
            .collect();
        let mut line = format!(
            "{}: unknown key {} ignored",
            self.path.display(),
            each.join(", ")
        );
        if !guessed {
            line.push_str(&format!(" (known: {})", known.join(", ")));
        }
        Some(line)
    }
}

/// The known key closest to `key` (case aside), if it is a likely
/// misspelling: at most one edit for short keys, two from 6 characters,
/// or the same letters with `-` for `_`.
pub fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase().replace('-', "_");
    let limit = if key.chars().count() >= 6 { 2 } else { 1 };
    known
        .iter()
        .map(|k| (edit_distance(&key, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (an insertion, deletion, substitution or swap of
/// neighbours each count one).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The keys every source shares.
const SHARED_KEYS: [&str; 7] = [
    "source",
    "user_id",
    "hec_url",
    "hec_token",
    "hec_sourcetype",
    "fields",
    "destinations",
];

/// `"fields"`: an object of names (a letter, then letters, digits or `_`,
/// at most 32: a key in every format) and values (strings, numbers or
/// booleans). A name the formats write themselves is refused.
fn static_fields(keys: &Keys) -> Result<Vec<(String, String)>, KeyError> {
    let obj = match keys.get("fields") {
        None => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(keys.invalid(
                "fields",
                format!(
                    "must be an object such as {{\"env\": \"prod\"}}, not {}",
                    type_name(other)
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        let good = name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !good {
            return Err(keys.invalid(
                "fields",
                format!("has the name {name:?}: a letter, then letters, digits or _, at most 32"),
            ));
        }
        if crate::encode::fields::is_reserved(name) {
            return Err(keys.invalid(
                "fields",
                format!("has the name {name:?}, which the formats write themselves: choose another (such as siem_{name})"),
            ));
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(keys.invalid(
                    "fields",
                    format!(
                        "{name:?} must be a string, a number or a boolean, not {}",
                        type_name(other)
                    ),
                ));
            }
        };
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// The top-level keys of a config for `source`: the shared ones and the
/// vendor's.
pub fn known_keys(source: Vendor) -> Vec<&'static str> {
    let mut keys = SHARED_KEYS.to_vec();
    keys.extend_from_slice(VendorConfig::keys(source));
    keys
}

/// The `"source"` of a config (`cloudsoc` when absent).
fn source_of(keys: &Keys, given: Option<Vendor>) -> Result<Vendor, KeyError> {
    let vendor = match keys.get("source") {
        None => given.unwrap_or_default(),
        Some(Value::String(s)) => Vendor::parse(s).ok_or_else(|| {
            keys.invalid(
                "source",
                format!("is {s:?}, not one of {}", Vendor::names()),
            )
        })?,
        Some(other) => {
            return Err(keys.invalid(
                "source",
                format!("must be a string, not {}", type_name(other)),
            ));
        }
    };
    if let Some(g) = given
        && g != vendor
    {
        return Err(keys.invalid(
            "source",
            format!(
                "is {:?}, but --source {} was given: one config file is for one source",
                vendor.name(),
                g.name()
            ),
        ));
    }
    Ok(vendor)
}

#[cfg(test)]
mod suggestion_tests {
    use super::*;

    #[test]
    fn a_misspelt_key_names_the_likely_one() {
        let known = known_keys(Vendor::CloudSoc);
        assert_eq!(did_you_mean("tenat", &known), Some("tenant"));
        assert_eq!(did_you_mean("key-secret", &known), Some("key_secret"));
        assert_eq!(did_you_mean("keysecret", &known), Some("key_secret"));
        assert_eq!(did_you_mean("Api_Sever", &known), Some("api_server"));
        assert_eq!(did_you_mean("pagination", &known), None);
        assert_eq!(did_you_mean("x", &known), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_readable_by_the_agent_s_own_group_only_is_not_loose() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"api_server":"https://x.example/","key_id":"k","key_secret":"s","tenant":"t"}"#,
        )
        .unwrap();
        let mode = |m| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o600);
        assert_eq!(Config::load(&p).unwrap().loose_permissions(), None);
        // The agent's own file, readable by its group: loose.
        mode(0o640);
        assert_eq!(Config::load(&p).unwrap().loose_permissions(), Some(0o640));
        mode(0o604);
        assert_eq!(Config::load(&p).unwrap().loose_permissions(), Some(0o604));
        // As root, which can give the file away: another user's file that
        // the agent reads through its own group is not loose; through
        // another group it is.
        // SAFETY: no preconditions.
        let (egid, euid) = unsafe { (libc::getegid(), libc::geteuid()) };
        if euid == 0 && egid != 1 {
            mode(0o640);
            std::os::unix::fs::chown(&p, Some(1), Some(egid)).unwrap();
            assert_eq!(Config::load(&p).unwrap().loose_permissions(), None);
            std::os::unix::fs::chown(&p, Some(1), Some(1)).unwrap();
            assert_eq!(Config::load(&p).unwrap().loose_permissions(), Some(0o640));
        }
    }

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.json"), s.as_bytes())
    }

    const GOOD: &str = r#"{"user_id":"u1","api_server":"https://api-vip.elastica.net","key_id":"kid","key_secret":"very-secret-value","tenant":"acme"}"#;

    #[test]
    fn good_config_parses_and_normalizes() {
        let c = parse(GOOD).unwrap();
        let VendorConfig::CloudSoc(cs) = &c.vendor else {
            panic!("{c:?}")
        };
        assert_eq!(cs.api_server, "https://api-vip.elastica.net/");
        assert_eq!(cs.tenant, "acme");
        assert_eq!(c.user_id.as_deref(), Some("u1"));
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"api_server":"https://x/","key_id":"k","tenant":"t"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: field \"key_secret\" is missing"
        );
        let e = parse(r#"{"api_server":"https://x/","key_id":5,"key_secret":"abc","tenant":"t"}"#)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: field \"key_id\" must be a string, not a number"
        );
        let e = parse(r#"{"api_server":"ftp://x/","key_id":"k","key_secret":"abc","tenant":"t"}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config.json: field \"api_server\" must start with https://")
        );
        let e = parse("[1]").unwrap_err();
        assert_eq!(e.to_string(), "config.json: must hold a JSON object");
        let e = parse("{").unwrap_err();
        assert!(
            e.to_string().starts_with("config.json: not valid JSON: "),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn cirrus_runs_without_a_config_file_and_without_orgurl() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.json");
        let c = Config::load_as(&missing, Some(Vendor::Cirrus)).unwrap();
        assert_eq!(c.source, Vendor::Cirrus);
        assert_eq!(
            c.vendor.api_url(),
            "https://apigw.cirrusidentity.com/logs/v1"
        );
        assert!(
            matches!(&c.vendor, VendorConfig::Cirrus(k) if k.apikey.is_none() && k.orgurl.is_none())
        );
        // Only for Cirrus, and only a file that is not there.
        for given in [None, Some(Vendor::Mcas), Some(Vendor::Rest)] {
            assert!(matches!(
                Config::load_as(&missing, given),
                Err(ConfigError::Read { .. })
            ));
        }
        let c = Config::parse(
            Path::new("c.json"),
            br#"{"source": "cirrus", "apikey": "k", "apisecret": "s"}"#,
        )
        .unwrap();
        assert!(matches!(&c.vendor, VendorConfig::Cirrus(k) if k.orgurl.is_none()));
    }

    #[test]
    fn the_source_key_chooses_the_vendor() {
        assert_eq!(parse(GOOD).unwrap().source, Vendor::CloudSoc);
        let with = |src: &str| GOOD.replacen('{', &format!("{{\"source\":{src},"), 1);
        assert_eq!(
            parse(&with("\"CloudSOC\"")).unwrap().source,
            Vendor::CloudSoc
        );
        assert_eq!(parse(&with("null")).unwrap().source, Vendor::CloudSoc);
        assert!(parse(&with("\"cloudsoc\"")).unwrap().unknown.is_empty());
        assert_eq!(
            parse(&with("\"okta\"")).unwrap_err().to_string(),
            "config.json: field \"source\" is \"okta\", not one of cloudsoc, mcas, cirrus, rest, sls"
        );
        let as_ = |s: &str, v| Config::parse_as(Path::new("config.json"), s.as_bytes(), Some(v));
        assert_eq!(
            as_(GOOD, Vendor::CloudSoc).unwrap().source,
            Vendor::CloudSoc
        );
        assert_eq!(
            as_(&with("\"cloudsoc\""), Vendor::Mcas)
                .unwrap_err()
                .to_string(),
            "config.json: field \"source\" is \"cloudsoc\", but --source mcas was given: one config file is for one source"
        );
        assert_eq!(
            parse(&with("3")).unwrap_err().to_string(),
            "config.json: field \"source\" must be a string, not a number"
        );
    }

    #[test]
    fn numeric_user_id_is_accepted() {
        let c = parse(r#"{"user_id":7,"api_server":"https://x/","key_id":"k","key_secret":"abc","tenant":"t"}"#).unwrap();
        assert_eq!(c.user_id.as_deref(), Some("7"));
    }
}
