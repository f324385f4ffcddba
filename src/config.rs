//! `config.json`: the API credentials, as CloudSOC's console downloads them.
//!
//! Every problem is one line naming the file and the field. The key secret
//! is held as a [`Secret`] from the moment it is read.

use crate::event::{App, Vendor};
use crate::secret::{self, Secret};
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
    #[error("{path}: field \"{field}\" is missing")]
    Missing { path: PathBuf, field: &'static str },
    #[error(
        "{path} still holds the example's placeholder values ({fields}): put in those of the API key file CloudSOC gives you"
    )]
    Placeholder { path: PathBuf, fields: String },
    /// A declared REST API's error, naming the file and the key.
    #[error("{message}")]
    Declared { message: String },
    #[error("{path}: field \"{field}\" {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

/// The contents of `config.json`.
#[derive(Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The vendor API (`"source"`, default `cloudsoc`).
    pub source: Vendor,
    /// Defender for Cloud Apps: the API token (or `--token`).
    pub token: Option<Secret>,
    /// Defender for Cloud Apps: `"data_types"` (default alerts).
    pub data_types: Vec<App>,
    /// Cirrus Identity: the API key and secret (or `--apikey`,
    /// `--apisecret`, `API_KEY`, `API_SECRET`) and the organisation's URL
    /// (`orgurl`, `--orgurl`; optional: a key that serves one organization
    /// needs none). Its endpoint is `api_server`, from
    /// `"apiurl"` (default [`CIRRUS_API`]).
    pub apikey: Option<String>,
    pub apisecret: Option<Secret>,
    pub orgurl: Option<String>,
    /// A declared REST API (`"source": "rest"`).
    pub rest: Option<crate::source::rest::Spec>,
    /// Optional and unused by the API; kept for the status output.
    pub user_id: Option<String>,
    /// The API's base URL, always ending in `/`.
    pub api_server: String,
    pub key_id: String,
    pub key_secret: Secret,
    pub tenant: String,
    /// Optional: the Splunk HEC URL and token for `-o HEC`.
    pub hec_url: Option<String>,
    pub hec_token: Option<Secret>,
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
            .field("token", &self.token)
            .field("data_types", &self.data_types)
            .field("user_id", &self.user_id)
            .field("api_server", &self.api_server)
            .field("key_id", &self.key_id)
            .field("key_secret", &self.key_secret)
            .field("tenant", &self.tenant)
            .field("hec_url", &self.hec_url)
            .field("hec_token", &self.hec_token)
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
                if e.kind() == std::io::ErrorKind::NotFound && source == Some(Vendor::Cirrus) =>
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
        let Value::Object(obj) = value else {
            return Err(ConfigError::NotObject { path: p() });
        };
        let source = source_of(path, &obj, given)?;
        // Register the secrets before anything else can print them.
        for key in ["key_secret", "token", "apisecret"] {
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
        let cloudsoc = source == Vendor::CloudSoc;
        // Each source reads its own keys; another source's are unknown.
        let own = |field: &'static str| -> Result<String, ConfigError> {
            if cloudsoc {
                required_str(path, &obj, field)
            } else {
                Ok(String::new())
            }
        };
        let key_secret = Secret::new(own("key_secret")?);
        let key_id = own("key_id")?;
        let tenant = own("tenant")?;
        let (token, data_types) = if source == Vendor::Mcas {
            let token = match obj.get("token") {
                None | Some(Value::Null) => None,
                Some(_) => Some(Secret::new(required_str(path, &obj, "token")?)),
            };
            (token, mcas_data_types(path, &obj)?)
        } else {
            (None, Vec::new())
        };
        if cloudsoc && (tenant.contains(['/', '?', '#']) || tenant.trim() != tenant) {
            return Err(ConfigError::Invalid {
                path: p(),
                field: "tenant",
                problem: "must be a bare name (no '/', '?', '#' or surrounding spaces)".into(),
            });
        }
        let rest = if source == Vendor::Rest {
            Some(
                crate::source::rest::Spec::parse(path, &obj)
                    .map_err(|message| ConfigError::Declared { message })?,
            )
            .inspect(|spec| {
                spec.params
                    .iter()
                    .for_each(|(k, v)| secret::register_param(k, v))
            })
        } else {
            None
        };
        let api_server = if let Some(spec) = &rest {
            spec.url.to_string()
        } else if source == Vendor::Cirrus {
            match obj.get("apiurl") {
                None | Some(Value::Null) => CIRRUS_API.to_string(),
                Some(_) => normalize_url(path, "apiurl", &required_str(path, &obj, "apiurl")?)?,
            }
        } else {
            normalize_server(path, &required_str(path, &obj, "api_server")?)?
        };
        let (apikey, apisecret, orgurl) = if source == Vendor::Cirrus {
            let opt = |field: &'static str| match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(_) => required_str(path, &obj, field).map(Some),
            };
            (
                opt("apikey")?,
                opt("apisecret")?.map(Secret::new),
                opt("orgurl")?,
            )
        } else {
            (None, None, None)
        };
        let user_id = match obj.get("user_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    path: p(),
                    field: "user_id",
                    problem: format!("must be a string, not {}", type_name(other)),
                });
            }
        };
        if cloudsoc {
            secret::register(&basic_credentials(&key_id, &key_secret));
        }
        let optional = |field: &'static str| -> Result<Option<String>, ConfigError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ConfigError::Invalid {
                    path: p(),
                    field,
                    problem: format!("must be a string, not {}", type_name(other)),
                }),
            }
        };
        if let Some(Value::String(t)) = obj.get("hec_token") {
            secret::register(t);
        }
        let destinations = match obj.get("destinations") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => {
                let mut entries = Vec::with_capacity(list.len());
                for (i, v) in list.iter().enumerate() {
                    let Value::Object(entry) = v else {
                        return Err(ConfigError::Invalid {
                            path: p(),
                            field: "destinations",
                            problem: format!("entry {i} must be an object, not {}", type_name(v)),
                        });
                    };
                    if let Some(Value::String(t)) = entry.get("hec_token") {
                        secret::register(t);
                    }
                    entries.push(entry.clone());
                }
                Some(entries)
            }
            Some(other) => {
                return Err(ConfigError::Invalid {
                    path: p(),
                    field: "destinations",
                    problem: format!("must be a list of objects, not {}", type_name(other)),
                });
            }
        };
        let hec_url = optional("hec_url")?;
        let hec_token = optional("hec_token")?.map(Secret::new);
        let unknown: Vec<String> = obj
            .keys()
            .filter(|k| !known_keys(source).contains(&k.as_str()))
            .map(|k| format!("{k:?}"))
            .collect();
        Ok(Config {
            unknown,
            destinations,
            hec_url,
            hec_token,
            path: path.to_path_buf(),
            source,
            token,
            data_types,
            apikey,
            apisecret,
            orgurl,
            rest,
            user_id,
            api_server,
            key_id,
            key_secret,
            tenant,
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

/// Cirrus Identity's production endpoint (its example client's default).
pub const CIRRUS_API: &str = "https://apigw.cirrusidentity.com/logs/v1";

/// The top-level keys of a config for `source`.
pub fn known_keys(source: Vendor) -> Vec<&'static str> {
    let mut keys = vec![
        "source",
        "api_server",
        "user_id",
        "hec_url",
        "hec_token",
        "destinations",
    ];
    match source {
        Vendor::CloudSoc => keys.extend(["key_id", "key_secret", "tenant"]),
        Vendor::Mcas => keys.extend(["token", "data_types"]),
        Vendor::Cirrus => {
            keys.retain(|k| *k != "api_server");
            keys.extend(["apikey", "apisecret", "apiurl", "orgurl"]);
        }
        Vendor::Rest => {
            keys.retain(|k| *k != "api_server");
            keys.extend(crate::source::rest::Spec::KEYS);
        }
    }
    keys
}

/// Defender for Cloud Apps' `"data_types"`: a list of `alerts` and
/// `activities` (default: alerts, the seed agent's).
fn mcas_data_types(path: &Path, obj: &Map<String, Value>) -> Result<Vec<App>, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        field: "data_types",
        problem,
    };
    let list = match obj.get("data_types") {
        None | Some(Value::Null) => return Ok(vec![App::Alerts]),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(invalid(format!(
                "must be a list such as [\"alerts\", \"activities\"], not {}",
                type_name(other)
            )));
        }
    };
    let mut out = Vec::new();
    for v in list {
        let app = v
            .as_str()
            .and_then(|s| App::parse_in(Vendor::Mcas, s.trim()))
            .ok_or_else(|| {
                invalid(format!(
                    "holds {v}: each must be \"alerts\" or \"activities\""
                ))
            })?;
        if !out.contains(&app) {
            out.push(app);
        }
    }
    if out.is_empty() {
        return Err(invalid("is empty: name alerts, activities or both".into()));
    }
    out.sort();
    Ok(out)
}

/// The `"source"` of a config (`cloudsoc` when absent).
fn source_of(
    path: &Path,
    obj: &Map<String, Value>,
    given: Option<Vendor>,
) -> Result<Vendor, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        field: "source",
        problem,
    };
    let vendor = match obj.get("source") {
        None | Some(Value::Null) => given.unwrap_or_default(),
        Some(Value::String(s)) => Vendor::parse(s)
            .ok_or_else(|| invalid(format!("is {s:?}, not one of {}", Vendor::names())))?,
        Some(other) => {
            return Err(invalid(format!(
                "must be a string, not {}",
                type_name(other)
            )));
        }
    };
    if let Some(g) = given
        && g != vendor
    {
        return Err(invalid(format!(
            "is {:?}, but --source {} was given: one config file is for one source",
            vendor.name(),
            g.name()
        )));
    }
    Ok(vendor)
}

/// The value of the `Authorization: Basic` header's credentials, base64.
pub fn basic_credentials(key_id: &str, key_secret: &Secret) -> String {
    base64(format!("{key_id}:{}", key_secret.expose()).as_bytes())
}

fn required_str(
    path: &Path,
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<String, ConfigError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ConfigError::Missing {
            path: path.to_path_buf(),
            field,
        }),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            problem: "is empty".into(),
        }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            problem: format!("must be a string, not {}", type_name(other)),
        }),
    }
}

fn normalize_server(path: &Path, raw: &str) -> Result<String, ConfigError> {
    let mut out = normalize_url(path, "api_server", raw)?;
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// An http(s) URL without query, fragment or credentials.
pub fn normalize_url(path: &Path, field: &'static str, raw: &str) -> Result<String, ConfigError> {
    let s = raw.trim();
    // Messages show the URL without credentials.
    let shown = crate::secret::strip_userinfo(s);
    let invalid = |problem: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        field,
        problem,
    };
    let url =
        reqwest::Url::parse(s).map_err(|e| invalid(format!("is not a URL ({e}): {shown:?}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(format!("must start with https:// ({shown:?})")));
    }
    if url.host_str().is_none() {
        return Err(invalid(format!("has no host ({shown:?})")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "must be a plain base URL such as https://api-vip.elastica.net/, without query or credentials ({shown:?})"
        )));
    }
    Ok(url.to_string())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Standard base64 with padding (RFC 4648), for the Basic header.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
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
        assert_eq!(c.api_server, "https://api-vip.elastica.net/");
        assert_eq!(c.tenant, "acme");
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
        assert_eq!(c.api_server, CIRRUS_API);
        assert!(c.apikey.is_none() && c.orgurl.is_none());
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
        assert!(c.orgurl.is_none());
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
            "config.json: field \"source\" is \"okta\", not one of cloudsoc, mcas, cirrus, rest"
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

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
