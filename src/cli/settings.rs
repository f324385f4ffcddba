//! Raw flags to validated settings: every check of a flag's meaning (beyond
//! what clap can see) is here, with a one-line error naming the flag.

use super::{
    ElasticaApp, ExportArgs, FormatArg, FramingArg, OutputKind, SeverityArg, SiemArg, SocketType,
    SyslogFormatArg,
};
use crate::encode::{Encoder, Envelope, Format, Framing, rfc3164, rfc5424};
use crate::event::App;
use crate::filter::Filter;
use crate::secret::Secret;
use crate::sink::hec::HecOptions;
use crate::sink::tls::TlsOptions;
use crate::sink::{Output, SendRetry, Target};
pub use crate::source::http::{HttpOptions, Proxy};
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, SettingsError> {
    Err(SettingsError(msg.into()))
}

/// One output and how logs are encoded for it.
#[derive(Clone, Debug)]
pub struct Destination {
    pub output: Output,
    pub encoder: Encoder,
}

/// Cirrus Identity's credentials and endpoint from the command line.
#[derive(Clone, Debug, Default)]
pub struct CirrusKeys {
    pub apikey: Option<String>,
    pub apisecret: Option<Secret>,
    pub apiurl: Option<String>,
    pub orgurl: Option<String>,
}

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Warnings about the options, to be logged once logging is set up.
    pub notes: Vec<String>,
    pub config: PathBuf,
    /// `--token` (Defender for Cloud Apps), over config.json's.
    pub token: Option<Secret>,
    /// The ids of the credentials given by an environment variable rather
    /// than a flag (`token`, `apikey`, ...), for messages.
    pub credentials_from_env: Vec<&'static str>,
    /// `--apikey`, `--apisecret`, `--apiurl`, `--orgurl` (Cirrus), over
    /// config.json's.
    pub cirrus_keys: CirrusKeys,
    /// `--sls-*` (Log Service), over config.json's: the keys given (its
    /// `start` is config.json's alone).
    pub sls_keys: crate::source::sls::Config,
    /// Options of one source or another (`--limit`, `--until`, `--query`).
    pub source_options: crate::source::Options,
    /// `-x`: one request only, the cursor not moved.
    pub one_request: bool,
    /// `--since`: start at this time instead of the saved position.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// `--source`: the vendor API, over config.json's `"source"`.
    pub source: Option<crate::source::Vendor>,
    pub state_dir: PathBuf,
    pub apps: Vec<App>,
    pub filter: Filter,
    /// Where every log goes (several with a repeated `-t`), each with its
    /// format, syslog header, framing and size limit.
    pub destinations: Vec<Destination>,
    /// Reconnects of a stream output.
    pub send_retry: SendRetry,
    /// A lock held longer than this is reported as a hung run.
    pub stale_after: Option<Duration>,
    /// Whether `-t` was given (it cannot be combined with a `destinations`
    /// list in config.json).
    pub targets_given: bool,
    /// `--rate`; `None` when not given (see [`crate::pace::UDP_RATE`]).
    pub rate: Option<u32>,
    pub max_events: u64,
    pub start_date: Option<NaiveDate>,
    pub clear_status: bool,
    pub reset_cursor: bool,
    pub debug: bool,
    pub log_file: Option<PathBuf>,
    pub proxy: Option<Proxy>,
    pub http: HttpOptions,
    pub demo: bool,
    /// `--dry-run`: print to stdout, change no state.
    pub dry_run: bool,
    pub metrics_file: Option<PathBuf>,
    /// `--settle`: logs newer than this are left for the next run.
    pub settle: Duration,
    /// `--log-format json`.
    pub log_json: bool,
    /// `--config DIR`: the directory of tenant files (`config` is then
    /// that directory; [`Settings::for_tenant`] gives each its settings).
    pub tenants_dir: Option<PathBuf>,
    /// `--parallel`: how many tenants export at once.
    pub parallel: usize,
    /// `--parallel-streams`: how many streams of a config are read at once.
    pub parallel_streams: usize,
    /// The tenant these settings are for (`--config DIR`).
    pub tenant: Option<String>,
    /// With `--config DIR` at a terminal: the progress line the tenants
    /// share (set by the run of many).
    pub progress: Option<indicatif::ProgressBar>,
}

impl Settings {
    /// config.json with what the command line gives over it (`--token`,
    /// `--apikey`, ...).
    /// A `--severity` level the config's source does not have is refused
    /// here, for each config (each tenant checks its own).
    pub fn apply_to(&self, config: &mut crate::config::Config) -> Result<(), SettingsError> {
        self.filter
            .check_levels(config.source, &config.path.display().to_string())
            .map_err(|e| SettingsError(e.to_string()))?;
        use crate::source::VendorConfig;
        // Where a credential given over config.json's came from, for an
        // API's refusal; an environment variable's replacing a value of
        // config.json is said (once a run).
        let path = config.path.clone();
        let given = |id: &'static str, key: &str, flag: &str, var: &str, had: bool| {
            if self.credentials_from_env.contains(&id) {
                crate::credentials::note(&path, key, format!("${var}"));
                if had {
                    tracing::warn!(
                        "{var} (set in the environment) is used over {}'s \"{key}\"; unset it, or give {flag}, to choose",
                        path.display()
                    );
                }
            } else {
                crate::credentials::note(&path, key, format!("the {flag} flag"));
            }
        };
        match &mut config.vendor {
            VendorConfig::Mcas(m) if self.token.is_some() => {
                given(
                    "token",
                    "token",
                    "--token",
                    "SIEM_AGENT_MCAS_TOKEN",
                    m.token.is_some(),
                );
                m.token.clone_from(&self.token);
            }
            VendorConfig::Sls(c) => {
                let k = &self.sls_keys;
                for (given, into) in [
                    (&k.endpoint, &mut c.endpoint),
                    (&k.project, &mut c.project),
                    (&k.logstore, &mut c.logstore),
                    (&k.access_key_id, &mut c.access_key_id),
                    (&k.consumer_group, &mut c.consumer_group),
                ] {
                    if given.is_some() {
                        into.clone_from(given);
                    }
                }
                if k.access_key_secret.is_some() {
                    given(
                        "sls_access_key_secret",
                        "access_key_secret",
                        "--sls-access-key-secret",
                        "SLS_AK_KEY",
                        c.access_key_secret.is_some(),
                    );
                    c.access_key_secret.clone_from(&k.access_key_secret);
                }
                for (flag, name) in [
                    ("--sls-project", &c.project),
                    ("--sls-logstore", &c.logstore),
                    ("--sls-consumer-group", &c.consumer_group),
                ] {
                    if let Some(n) = name
                        && !crate::source::sls::valid_name(n)
                    {
                        return Err(SettingsError(format!(
                            "{flag} {n:?} is not a Log Service name (letters, digits, '-' and '_', 2 to 128 characters)"
                        )));
                    }
                }
            }
            VendorConfig::Cirrus(c) => {
                let k = &self.cirrus_keys;
                if k.apikey.is_some() {
                    given(
                        "apikey",
                        "apikey",
                        "--apikey",
                        "API_KEY",
                        c.apikey.is_some(),
                    );
                    c.apikey.clone_from(&k.apikey);
                }
                if k.apisecret.is_some() {
                    given(
                        "apisecret",
                        "apisecret",
                        "--apisecret",
                        "API_SECRET",
                        c.apisecret.is_some(),
                    );
                    c.apisecret.clone_from(&k.apisecret);
                }
                if k.orgurl.is_some() {
                    c.orgurl.clone_from(&k.orgurl);
                }
                if let Some(url) = &k.apiurl {
                    c.apiurl =
                        crate::source::keys::normalize_url(Path::new("--apiurl"), "apiurl", url)
                            .map_err(|e| SettingsError(e.to_string()))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The streams a run exports: CloudSOC's apps (`--elastica_app`),
    /// Defender for Cloud Apps' `data_types`.
    pub fn streams(&self, config: &crate::config::Config) -> Vec<App> {
        match config.source {
            crate::event::Vendor::CloudSoc => self.apps.clone(),
            crate::event::Vendor::Mcas => match &config.vendor {
                crate::source::VendorConfig::Mcas(m) => m.data_types.clone(),
                _ => Vec::new(),
            },
            crate::event::Vendor::Cirrus => vec![App::CirrusLogs],
            crate::event::Vendor::Rest => vec![App::RestLogs],
            // Listed by the run (the Logstore's shards).
            crate::event::Vendor::Sls => Vec::new(),
        }
    }

    pub fn from_args(mut a: ExportArgs) -> Result<Settings, SettingsError> {
        let mut notes = Vec::new();
        let apps = apps(&a.elastica_app);
        let severities = severities(&a.severity);
        let mut filter = Filter::new(
            severities,
            set(&a.app),
            set(&a.object_type),
            set(&a.activity_type),
        );
        filter.exact = a.query.clone().map(|q| q.0).unwrap_or_default();
        filter.severities_given = !a.severity.is_empty();
        let outputs = match a.output {
            OutputKind::Syslog => vec![Output::Syslog {
                socket: a.syslog_socket.clone(),
            }],
            OutputKind::Remote => {
                let targets: Vec<&str> = if a.target.is_empty() {
                    vec!["localhost"]
                } else {
                    a.target.iter().map(String::as_str).collect()
                };
                let mut outputs = Vec::with_capacity(targets.len());
                for t in targets {
                    let (socket_type, rest) = split_scheme(t).unwrap_or((a.socket_type, t));
                    outputs.push(remote(&a, rest, socket_type)?);
                }
                outputs
            }
            OutputKind::Stream => vec![Output::Stream(a.stream)],
            OutputKind::Hec => {
                if let Some(t) = &a.hec_token {
                    crate::secret::register(t);
                }
                vec![Output::Hec(HecOptions {
                    url: a.hec_url.clone(),
                    token: a.hec_token.clone().map(Secret::new),
                    ack: a.hec_ack,
                    batch: a.hec_batch as usize,
                    tls: TlsOptions {
                        ca: a.tls_ca.clone(),
                        cert: a.tls_cert.clone(),
                        key: a.tls_key.clone(),
                    },
                    allow_insecure_http: a.allow_insecure_http,
                })]
            }
            OutputKind::File => {
                let Some(path) = a.filename.clone() else {
                    return err("--output FILE needs --filename PATH");
                };
                if path.as_os_str().is_empty() || path.is_dir() {
                    return err(format!(
                        "--filename: '{}' is not a file path",
                        path.display()
                    ));
                }
                if a.max_bytes > 0 && a.backup_count == 0 {
                    notes.push(
                        "--max_bytes without --backup_count never rolls the file over (as in the original agent): add --backup_count N".into(),
                    );
                }
                vec![Output::File {
                    path,
                    max_bytes: a.max_bytes,
                    backup_count: a.backup_count,
                }]
            }
        };
        if !a.target.is_empty() && a.output != OutputKind::Remote {
            return err("--target applies to -o REMOTE");
        }
        let tls_given = a.tls_ca.is_some() || a.tls_cert.is_some();
        let tls_used = outputs.iter().any(|o| {
            matches!(
                o,
                Output::Remote {
                    socket_type: SocketType::Tls | SocketType::RelpTls,
                    ..
                } | Output::Hec(_)
            )
        });
        if tls_given && !tls_used {
            return err(
                "--tls-ca, --tls-cert and --tls-key apply to -o REMOTE --socket-type TLS or RELP-TLS",
            );
        }
        let mut destinations = Vec::with_capacity(outputs.len());
        for output in outputs {
            let encoder = encoder(&a, &output)?;
            destinations.push(Destination { output, encoder });
        }
        let tenants_dir = a.config.is_dir().then(|| a.config.clone());
        if tenants_dir.is_some() {
            shared_credentials(&mut a, &mut notes)?;
        }
        let state_dir = match &a.state_dir {
            Some(d) => d.clone(),
            None => config_dir(&a.config),
        };
        let proxy = match &a.proxy {
            None => None,
            Some(p) => {
                // The password: -p (or its variable), a file, or systemd's
                // credential `proxy_password` when a user is given.
                let password = match (&a.password, &a.password_file) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(file)) => Some(
                        crate::credentials::read_secret_file(file, false)
                            .map_err(|e| SettingsError(format!("--password-file: {e}")))?,
                    ),
                    (None, None) if a.username.is_some() => {
                        std::env::var_os("CREDENTIALS_DIRECTORY")
                            .map(|d| PathBuf::from(d).join("proxy_password"))
                            .filter(|f| f.is_file())
                            .map(|f| {
                                crate::credentials::read_secret_file(&f, true)
                                    .map_err(|e| SettingsError(format!("proxy password: {e}")))
                            })
                            .transpose()?
                    }
                    (None, None) => None,
                };
                Some(proxy(p, a.username.clone(), password)?)
            }
        };
        if let Some(day) = a.start_date
            && day > chrono::Utc::now().date_naive()
        {
            return err(format!(
                "--start-date {day} is in the future: there is nothing to export from it yet"
            ));
        }
        Ok(Settings {
            notes,
            config: a.config.clone(),
            state_dir,
            apps,
            source: a.source,
            filter,
            targets_given: !a.target.is_empty(),
            destinations,
            send_retry: SendRetry {
                retries: a.send_retries,
                base: Duration::from_millis(a.retry_delay_ms),
                timeout: Duration::from_secs(a.send_timeout),
            },
            stale_after: (a.stale_after > 0).then(|| Duration::from_secs(a.stale_after)),
            rate: a.rate,
            max_events: a.max_events,
            start_date: a.start_date,
            clear_status: a.clear_status,
            reset_cursor: a.reset_cursor,
            debug: a.debug,
            log_file: a
                .log_file
                .clone()
                .or_else(|| a.logs_directory.as_ref().map(|d| d.join("siem-agent.log"))),
            token: a.token.as_ref().map(|t| {
                crate::secret::register(t);
                Secret::new(t.clone())
            }),
            credentials_from_env: a.credentials_from_env.clone(),
            cirrus_keys: CirrusKeys {
                apikey: a.apikey.clone(),
                apisecret: a.apisecret.as_ref().map(|t| {
                    crate::secret::register(t);
                    Secret::new(t.clone())
                }),
                apiurl: a.apiurl.clone(),
                orgurl: a.orgurl.clone(),
            },
            sls_keys: crate::source::sls::Config {
                endpoint: a.sls_endpoint.clone(),
                project: a.sls_project.clone(),
                logstore: a.sls_logstore.clone(),
                access_key_id: a.sls_access_key_id.clone(),
                access_key_secret: a.sls_access_key_secret.as_ref().map(|t| {
                    crate::secret::register(t);
                    Secret::new(t.clone())
                }),
                consumer_group: a.sls_consumer_group.clone(),
                start: Default::default(),
            },
            source_options: crate::source::Options {
                cirrus: crate::source::cirrus::Options {
                    limit: a.limit,
                    until: a.until,
                    query: a.query.clone().map(|q| q.0).unwrap_or_default(),
                },
            },
            one_request: a.one_request,
            since: a.since,
            proxy,
            http: HttpOptions {
                timeout: Duration::from_secs(a.http_timeout),
                retries: a.retries,
                retry_delay: Duration::from_millis(a.retry_delay_ms),
                allow_insecure_http: a.allow_insecure_http,
                max_body: (a.max_page_mib as usize).saturating_mul(1024 * 1024),
            },
            demo: a.demo,
            dry_run: a.dry_run,
            metrics_file: a.metrics_file.clone(),
            settle: Duration::from_secs(a.settle),
            log_json: a.log_format == "json",
            tenants_dir: tenants_dir.clone(),
            // A dry run prints each tenant's logs together.
            parallel: if a.dry_run {
                1
            } else {
                usize::from(a.parallel)
            },
            // A dry run prints each stream's logs together, too.
            parallel_streams: if a.dry_run {
                1
            } else {
                usize::from(a.parallel_streams)
            },
            tenant: None,
            progress: None,
        })
    }

    /// One tenant's settings: its config file and state directory; the
    /// metrics of a run of many tenants are written once, for all.
    pub fn for_tenant(&self, tenant: &crate::tenant::Tenant) -> Settings {
        Settings {
            notes: Vec::new(),
            config: tenant.config.clone(),
            state_dir: tenant.state_dir.clone(),
            metrics_file: None,
            tenants_dir: None,
            tenant: Some(tenant.name.clone()),
            ..self.clone()
        }
    }
}

/// With `--config DIR`, the options that would give every tenant the same
/// credentials are refused: each tenant's file holds its own. The same
/// credentials from the environment (`API_KEY` is a common name, set for
/// other programs) are left out, with a note.
fn shared_credentials(a: &mut ExportArgs, notes: &mut Vec<String>) -> Result<(), SettingsError> {
    let env = a.credentials_from_env.clone();
    let mut given = Vec::new();
    for (value, flag, id, var) in [
        (&mut a.token, "--token", "token", "SIEM_AGENT_MCAS_TOKEN"),
        (&mut a.apikey, "--apikey", "apikey", "API_KEY"),
        (&mut a.apisecret, "--apisecret", "apisecret", "API_SECRET"),
        (&mut a.apiurl, "--apiurl", "apiurl", ""),
        (&mut a.orgurl, "--orgurl", "orgurl", ""),
        (
            &mut a.sls_access_key_id,
            "--sls-access-key-id",
            "sls_access_key_id",
            "SLS_AK_ID",
        ),
        (
            &mut a.sls_access_key_secret,
            "--sls-access-key-secret",
            "sls_access_key_secret",
            "SLS_AK_KEY",
        ),
    ] {
        match var {
            var if value.is_some() && env.contains(&id) => {
                *value = None;
                notes.push(format!(
                    "{var} is set in the environment; with --config DIR it is not used: each tenant's file holds its own credentials"
                ));
            }
            _ if value.is_some() => given.push(flag),
            _ => {}
        }
    }
    match given.first() {
        Some(flag) => err(format!(
            "{flag} would give every tenant of --config {} the same credentials: put each tenant's in its own file",
            a.config.display()
        )),
        None => Ok(()),
    }
}

/// The options a destination of config.json's `destinations` may set; each
/// is the command-line option of that name (`socket_type` is
/// `--socket-type`), and overrides it for that destination.
pub const DESTINATION_OPTIONS: &[&str] = &[
    "output",
    "target",
    "socket_type",
    "framing",
    "syslog_socket",
    "stream",
    "filename",
    "max_bytes",
    "backup_count",
    "format",
    "siem",
    "leef_delimiter",
    "syslog_format",
    "hostname",
    "app_name",
    "tag",
    "facility",
    "bom",
    "utc",
    "max_message_size",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "hec_url",
    "hec_token",
    "hec_sourcetype",
    "hec_source",
    "hec_index",
    "hec_ack",
    "hec_batch",
];

/// The destinations of config.json's `destinations` list: each entry is
/// the command line (`argv`) with the entry's options added after it.
pub fn config_destinations(
    entries: &[serde_json::Map<String, serde_json::Value>],
    argv: &[std::ffi::OsString],
    config: &Path,
) -> Result<Vec<Destination>, SettingsError> {
    use serde_json::Value;
    let mut all = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at =
            |msg: String| SettingsError(format!("{}: destinations[{i}]: {msg}", config.display()));
        let mut args: Vec<std::ffi::OsString> = argv.to_vec();
        for (key, value) in entry {
            if !DESTINATION_OPTIONS.contains(&key.as_str()) {
                return Err(at(format!(
                    "\"{key}\" is not a destination option ({})",
                    DESTINATION_OPTIONS.join(", ")
                )));
            }
            let flag = format!("--{}", key.replace('_', "-"));
            match value {
                Value::Null | Value::Bool(false) => {}
                Value::Bool(true) => args.push(flag.into()),
                Value::String(s) => args.extend([flag.into(), s.into()]),
                Value::Number(n) => args.extend([flag.into(), n.to_string().into()]),
                other => {
                    return Err(at(format!(
                        "\"{key}\" must be a string, number or boolean, not {other}"
                    )));
                }
            }
        }
        let cli = <super::Cli as clap::Parser>::try_parse_from(super::hoist_subcommand(args))
            .map_err(|e| at(super::one_line_error(&e)))?;
        // The export's command line, or `check`'s (the same flags).
        let mut export = match cli.command {
            None => cli.export,
            Some(super::Command::Check(a)) => a,
            Some(_) => return Err(at("not an export command line".into())),
        };
        // Only its destinations are wanted: of this config (one tenant's,
        // with --config DIR), not of the directory.
        export.config = config.to_path_buf();
        let s = Settings::from_args(export).map_err(|e| at(e.0))?;
        all.extend(s.destinations);
    }
    if all.is_empty() {
        return err(format!("{}: \"destinations\" is empty", config.display()));
    }
    Ok(all)
}

impl Settings {
    /// The destinations of a run once config.json is read: its
    /// `destinations` list when it has one (not together with `-t`), else
    /// the command line's; HEC's URL and token from it where the flags
    /// gave none.
    pub fn destinations_with(
        &self,
        config: &crate::config::Config,
    ) -> Result<Vec<Destination>, SettingsError> {
        let mut destinations = match &config.destinations {
            None => self.destinations.clone(),
            Some(_) if self.targets_given => {
                return err(format!(
                    "{}: \"destinations\" and -t cannot be combined: list every destination in one place",
                    config.path.display()
                ));
            }
            Some(list) => {
                let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
                config_destinations(list, &argv, &config.path)?
            }
        };
        // The config's static fields, `{tenant}` standing for its name
        // (its file's, without `.json`).
        let tenant = config
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extra = std::sync::Arc::new(crate::encode::Extra {
            fields: config
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{tenant}", &tenant)))
                .collect(),
            mapping: match &config.vendor {
                crate::source::VendorConfig::Rest(spec) => spec.mapping.clone(),
                _ => None,
            },
        });
        for d in &mut destinations {
            if let Output::Hec(h) = &mut d.output {
                h.url = h.url.take().or_else(|| config.hec_url.clone());
                h.token = h.token.take().or_else(|| config.hec_token.clone());
            }
            if let crate::encode::Envelope::Hec(h) = &mut d.encoder.envelope
                && h.sourcetype.is_none()
            {
                h.sourcetype.clone_from(&config.hec_sourcetype);
            }
            d.encoder.extra = extra.clone();
        }
        Ok(destinations)
    }
}

/// `udp://`, `tcp://`, `tls://`, `relp://`, `relp+tls://` before a target.
fn split_scheme(t: &str) -> Option<(SocketType, &str)> {
    let (scheme, rest) = t.split_once("://")?;
    let st = match scheme.to_ascii_lowercase().as_str() {
        "udp" => SocketType::Udp,
        "tcp" => SocketType::Tcp,
        "tls" => SocketType::Tls,
        "relp" => SocketType::Relp,
        "relp+tls" | "relp-tls" => SocketType::RelpTls,
        _ => return None,
    };
    Some((st, rest))
}

/// One REMOTE destination.
fn remote(a: &ExportArgs, target: &str, socket_type: SocketType) -> Result<Output, SettingsError> {
    if target.contains("://") {
        return err(format!(
            "--target: '{target}': the prefix is not one of udp://, tcp://, tls://, relp://, relp+tls://"
        ));
    }
    let target = parse_target(target, Some(preset(a.siem).port))?;
    if let (Target::Unix(_), SocketType::Tls | SocketType::Relp | SocketType::RelpTls) =
        (&target, socket_type)
    {
        return err(format!(
            "--socket-type {}: needs a HOST:PORT target, not a unix socket path",
            socket_type.name()
        ));
    }
    Ok(Output::Remote {
        target,
        socket_type,
        framing: match (a.framing, socket_type) {
            // RELP frames each message itself.
            (_, SocketType::Relp | SocketType::RelpTls) => Framing::Datagram,
            (Some(FramingArg::Lf), _) => Framing::Lf,
            (Some(FramingArg::OctetCounted), _) | (None, SocketType::Tls) => Framing::OctetCounted,
            (None, _) => Framing::Lf,
        },
        tls: TlsOptions {
            ca: a.tls_ca.clone(),
            cert: a.tls_cert.clone(),
            key: a.tls_key.clone(),
        },
    })
}

/// Parses a `--target` (see [`Target::parse_with_port`]).
pub fn parse_target(s: &str, default_port: Option<u16>) -> Result<Target, SettingsError> {
    Target::parse_with_port(s, default_port).ok_or_else(|| {
        SettingsError(format!(
            "--target: '{s}' is neither HOST:PORT, [IPv6]:PORT nor a unix socket path (/path/to/socket)"
        ))
    })
}

/// What a `--siem` preset sets (each flag given explicitly wins).
pub struct Preset {
    pub format: FormatArg,
    /// The syslog header on network targets.
    pub syslog_format: SyslogFormatArg,
    pub port: u16,
    /// TAG / APP-NAME; `""` leaves TAG out of RFC 3164 headers (the header
    /// the CEF and LEEF guides show: `<PRI>Mmm dd hh:mm:ss HOST CEF:0|...`).
    pub app_name: &'static str,
}

/// The preset of `siem` (`None`: the defaults without a preset).
pub fn preset(siem: Option<SiemArg>) -> Preset {
    use SyslogFormatArg::{Rfc3164, Rfc5424};
    let (format, syslog_format, port, app_name) = match siem {
        None => (FormatArg::Cef, Rfc5424, 514, APP_NAME),
        Some(SiemArg::Splunk) => (FormatArg::Kv, Rfc3164, 514, APP_NAME),
        Some(SiemArg::Arcsight) => (FormatArg::Cef, Rfc3164, 1514, ""),
        Some(SiemArg::Qradar) => (FormatArg::Leef, Rfc3164, 514, ""),
        Some(SiemArg::Generic) => (FormatArg::Rfc5424, Rfc5424, 514, APP_NAME),
    };
    Preset {
        format,
        syslog_format,
        port,
        app_name,
    }
}

/// The APP-NAME and TAG the agent writes by default.
pub const APP_NAME: &str = "siem-agent";

/// The smallest `--max-message-size` (what RFC 5424 receivers must take).
pub const MIN_MESSAGE_SIZE: usize = 480;

/// Builds the encoder from the format flags, for `output`.
fn encoder(a: &ExportArgs, output: &Output) -> Result<Encoder, SettingsError> {
    let preset = preset(a.siem);
    // HEC's natural payload is the log's JSON object.
    let default_format = if matches!(output, Output::Hec(_)) && a.siem.is_none() {
        FormatArg::Json
    } else {
        preset.format
    };
    let format = match a.format.unwrap_or(default_format) {
        FormatArg::Cef => Format::Cef,
        FormatArg::Leef => Format::Leef {
            delimiter: a.leef_delimiter,
        },
        FormatArg::Leef1 => Format::Leef1,
        FormatArg::Kv => match a.kv_separator {
            Some((sep, len)) => Format::KvSeparated { sep, len },
            None => Format::Kv,
        },
        FormatArg::Json => Format::Json,
        FormatArg::Rfc5424 => Format::Rfc5424,
    };
    if a.kv_separator.is_some() && !matches!(format, Format::KvSeparated { .. }) {
        return err("--kv-separator applies to --format kv only".to_string());
    }
    // Local syslog sockets (SYSLOG, REMOTE to a path) get what syslog(3)
    // writes unless asked otherwise; the daemon adds host and time.
    let local = matches!(
        output,
        Output::Syslog { .. }
            | Output::Remote {
                target: Target::Unix(_),
                ..
            }
    );
    let network = matches!(
        output,
        Output::Remote {
            target: Target::Inet { .. },
            ..
        }
    );
    let syslog_format = match a.syslog_format {
        Some(f) => f,
        None if local => SyslogFormatArg::Rfc3164,
        None if network => preset.syslog_format,
        // STREAM and FILE: the payload alone, but the rfc5424 format is a
        // whole syslog message.
        None if format == Format::Rfc5424 => SyslogFormatArg::Rfc5424,
        None => SyslogFormatArg::None,
    };
    let app_name = match &a.app_name {
        Some(n) => n.clone(),
        None => preset.app_name.to_string(),
    };
    if let Some(bad) = app_name
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '[' | ']' | ':'))
    {
        return err(format!(
            "--app-name: {bad:?} cannot be in a syslog APP-NAME or TAG (printable ASCII without [ ] :)"
        ));
    }
    let max_name = if syslog_format == SyslogFormatArg::Rfc3164 {
        rfc3164::MAX_TAG
    } else {
        48
    };
    if app_name.len() > max_name {
        return err(format!(
            "--app-name: '{app_name}' is longer than the {max_name} characters {} allows",
            if max_name == 48 {
                "RFC 5424"
            } else {
                "RFC 3164's TAG"
            }
        ));
    }
    let hostname = match &a.hostname {
        Some(h) if h.is_empty() || h.len() > 255 || !h.chars().all(|c| c.is_ascii_graphic()) => {
            return err(format!(
                "--hostname: '{h}' is not 1 to 255 printable ASCII characters without spaces"
            ));
        }
        Some(h) => h.clone(),
        None => hostname(),
    };
    let pid = std::process::id();
    if matches!(output, Output::Hec(_)) {
        return Ok(Encoder {
            format,
            envelope: Envelope::Hec(crate::encode::hec::Header {
                host: hostname,
                source: a.hec_source.clone(),
                sourcetype: a.hec_sourcetype.clone(),
                index: a.hec_index.clone(),
            }),
            framing: Framing::Lf,
            version: env!("CARGO_PKG_VERSION").into(),
            max_message_size: None,
            extra: Default::default(),
        });
    }
    let envelope = match syslog_format {
        SyslogFormatArg::None => Envelope::None,
        SyslogFormatArg::Rfc5424 => Envelope::Rfc5424(rfc5424::Header {
            facility: a.facility,
            hostname,
            app_name,
            procid: pid.to_string(),
            bom: a.bom,
        }),
        SyslogFormatArg::Rfc3164 if local => {
            Envelope::Rfc3164(rfc3164::Header::local(a.facility, &app_name, pid))
        }
        SyslogFormatArg::Rfc3164 => Envelope::Rfc3164(rfc3164::Header {
            facility: a.facility,
            hostname: Some(hostname),
            tag: app_name,
            pid,
            time: if a.utc {
                rfc3164::TimeSource::EventUtc
            } else {
                rfc3164::TimeSource::EventLocal
            },
        }),
    };
    let (framing, default_max) = match output {
        Output::Syslog { .. } => (Framing::Datagram, Some(8096)),
        Output::Remote {
            target,
            socket_type,
            framing,
            ..
        } => match (socket_type, target) {
            (SocketType::Udp, Target::Inet { .. }) => (Framing::Datagram, Some(2048)),
            (SocketType::Udp, Target::Unix(_)) => (Framing::Datagram, Some(8096)),
            (SocketType::Tcp | SocketType::Tls | SocketType::Relp | SocketType::RelpTls, _) => {
                (*framing, Some(8096))
            }
        },
        Output::Stream(_) | Output::File { .. } | Output::Hec(_) => (Framing::Lf, None),
    };
    let max_message_size = match a.max_message_size {
        Some(0) => None,
        Some(n) if n < MIN_MESSAGE_SIZE => {
            return err(format!(
                "--max-message-size: {n} is below {MIN_MESSAGE_SIZE}, the size every syslog receiver must take (0 = no limit)"
            ));
        }
        Some(n) => Some(n),
        None => default_max,
    };
    Ok(Encoder {
        format,
        envelope,
        framing,
        version: env!("CARGO_PKG_VERSION").into(),
        max_message_size,
        extra: Default::default(),
    })
}

/// The machine's host name, as the kernel has it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "-".into())
}

/// The default state directory of a config path: the directory a config
/// file lives in; a directory of tenant files itself (each tenant's state
/// then goes in a directory of its own inside it).
pub fn config_dir(config: &Path) -> PathBuf {
    if config.is_dir() {
        return config.to_path_buf();
    }
    match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn apps(raw: &[ElasticaApp]) -> Vec<App> {
    if raw.is_empty() {
        return App::ALL.to_vec();
    }
    App::ALL
        .into_iter()
        .filter(|app| {
            raw.iter().any(|r| {
                matches!(
                    (r, app),
                    (ElasticaApp::Investigate, App::Investigate)
                        | (ElasticaApp::Detect, App::Detect)
                )
            })
        })
        .collect()
}

/// `None` = every level. The default is the original's (error, critical,
/// warning) plus every Detect level, since Detect has none of those three.
fn severities(raw: &[SeverityArg]) -> Option<BTreeSet<String>> {
    if raw.contains(&SeverityArg::All) {
        return None;
    }
    let names: Vec<&str> = if raw.is_empty() {
        vec!["error", "critical", "warning", "high", "medium", "low"]
    } else {
        raw.iter()
            .map(|s| match s {
                SeverityArg::Critical => "critical",
                SeverityArg::Error => "error",
                SeverityArg::Warning => "warning",
                SeverityArg::Informational => "informational",
                SeverityArg::High => "high",
                SeverityArg::Medium => "medium",
                SeverityArg::Low => "low",
                SeverityArg::All => unreachable!(),
            })
            .collect()
    };
    Some(names.into_iter().map(String::from).collect())
}

fn set(values: &[String]) -> Option<BTreeSet<String>> {
    (!values.is_empty()).then(|| values.iter().cloned().collect())
}

fn proxy(
    raw: &str,
    username: Option<String>,
    password: Option<String>,
) -> Result<Proxy, SettingsError> {
    // Registered before parsing: no message may show it.
    let shown = crate::secret::strip_userinfo(raw);
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| {
        SettingsError(format!(
            "--proxy: '{}' is not a URL or HOST:PORT ({e})",
            crate::secret::redact(&shown)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") || url.host_str().is_none()
    {
        return err(format!(
            "--proxy: '{}' must be http://HOST:PORT, https://HOST:PORT or HOST:PORT",
            crate::secret::redact(&shown)
        ));
    }
    // Credentials in the URL are taken out of it, so that the URL can be
    // printed; -u/-p win over them.
    let url_user = (!url.username().is_empty()).then(|| url.username().to_string());
    let url_pass = url.password().map(str::to_string);
    if let Some(p) = &url_pass {
        crate::secret::register(p);
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let username = username.or(url_user);
    let password = password.or(url_pass).map(Secret::new);
    if password.is_some() && username.is_none() {
        return err("--password needs --username");
    }
    Ok(Proxy {
        url: url.to_string(),
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<Settings, SettingsError> {
        let mut v = vec!["siem-agent"];
        v.extend_from_slice(args);
        Settings::from_args(Cli::try_parse_from(v).unwrap().export)
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.apps, vec![App::Investigate, App::Detect]);
        assert_eq!(
            s.destinations[0].output,
            Output::Syslog {
                socket: PathBuf::from("/dev/log")
            }
        );
        assert_eq!(s.state_dir, PathBuf::from("."));
        assert_eq!(s.destinations[0].encoder.format, Format::Cef);
        assert_eq!(s.destinations[0].encoder.max_message_size, Some(8096));
        assert!(
            matches!(&s.destinations[0].encoder.envelope, Envelope::Rfc3164(h) if h.hostname.is_none() && h.tag == "siem-agent")
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("localhost:514", None).unwrap(),
            Target::Inet {
                host: "localhost".into(),
                port: 514
            }
        );
        assert_eq!(
            parse_target("[::1]:6514", None).unwrap(),
            Target::Inet {
                host: "::1".into(),
                port: 6514
            }
        );
        assert_eq!(
            parse_target("/dev/log", None).unwrap(),
            Target::Unix("/dev/log".into())
        );
        for bad in [
            "localhost",
            "host:0",
            "host:99999",
            "::1:514",
            ":514",
            "[::1]514",
        ] {
            let e = parse_target(bad, None).unwrap_err().to_string();
            assert!(e.starts_with("--target:"), "{bad}: {e}");
        }
    }

    #[test]
    fn file_output_needs_a_filename() {
        let e = settings(&["-o", "FILE"]).unwrap_err();
        assert_eq!(e.to_string(), "--output FILE needs --filename PATH");
    }

    #[test]
    fn state_dir_defaults_to_config_dir() {
        let s = settings(&["--config", "/etc/siem-agent/config.json"]).unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/etc/siem-agent"));
    }

    #[test]
    fn proxy_credentials_leave_the_url() {
        let s = settings(&["--proxy", "http://bob:pr0xy-pass@10.0.0.1:3128"]).unwrap();
        let p = s.proxy.unwrap();
        assert_eq!(p.url, "http://10.0.0.1:3128/");
        assert_eq!(p.username.as_deref(), Some("bob"));
        assert_eq!(p.password.unwrap().expose(), "pr0xy-pass");
        let s = settings(&["--proxy", "10.0.0.1:3128", "-u", "al", "-p", "pw-123"]).unwrap();
        let p = s.proxy.unwrap();
        assert_eq!(p.url, "http://10.0.0.1:3128/");
        assert_eq!(p.username.as_deref(), Some("al"));
    }

    #[test]
    fn severity_all_means_no_filter() {
        let s = settings(&["--severity", "all"]).unwrap();
        assert!(s.filter.severities.is_none());
        let s = settings(&["--severity", "HIGH"]).unwrap();
        assert_eq!(
            s.filter.severities.unwrap().into_iter().collect::<Vec<_>>(),
            vec!["high"]
        );
    }

    fn enc(args: &[&str]) -> Encoder {
        settings(args).unwrap().destinations.remove(0).encoder
    }

    fn remote(args: &[&str]) -> Settings {
        let mut v = vec!["-o", "REMOTE"];
        v.extend_from_slice(args);
        settings(&v).unwrap()
    }

    #[test]
    fn presets_set_format_header_and_port() {
        let s = remote(&["--siem", "arcsight", "-t", "siem.example"]);
        assert_eq!(s.destinations[0].encoder.format, Format::Cef);
        assert!(
            matches!(&s.destinations[0].encoder.envelope, Envelope::Rfc3164(h) if h.tag.is_empty() && h.hostname.is_some())
        );
        assert!(matches!(
            &s.destinations[0].output,
            Output::Remote {
                target: Target::Inet { port: 1514, .. },
                ..
            }
        ));
        let s = remote(&["--siem", "qradar"]);
        assert_eq!(
            s.destinations[0].encoder.format,
            Format::Leef { delimiter: b'\t' }
        );
        assert!(
            matches!(&s.destinations[0].output, Output::Remote { target: Target::Inet { host, port: 514 }, .. } if host == "localhost")
        );
        let s = remote(&["--siem", "splunk"]);
        assert_eq!(s.destinations[0].encoder.format, Format::Kv);
        assert!(
            matches!(&s.destinations[0].encoder.envelope, Envelope::Rfc3164(h) if h.tag == "siem-agent")
        );
        let s = remote(&["--siem", "generic", "--socket-type", "tcp"]);
        assert_eq!(s.destinations[0].encoder.format, Format::Rfc5424);
        assert!(matches!(
            &s.destinations[0].encoder.envelope,
            Envelope::Rfc5424(_)
        ));
        assert_eq!(s.destinations[0].encoder.max_message_size, Some(8096));
    }

    #[test]
    fn explicit_flags_win_over_presets() {
        let s = remote(&[
            "--siem",
            "arcsight",
            "--format",
            "json",
            "--syslog-format",
            "rfc5424",
            "--tag",
            "exp",
            "-t",
            "h:9000",
        ]);
        assert_eq!(s.destinations[0].encoder.format, Format::Json);
        assert!(
            matches!(&s.destinations[0].encoder.envelope, Envelope::Rfc5424(h) if h.app_name == "exp")
        );
        assert!(matches!(
            &s.destinations[0].output,
            Output::Remote {
                target: Target::Inet { port: 9000, .. },
                ..
            }
        ));
        let e = enc(&[
            "--siem",
            "qradar",
            "--leef-delimiter",
            "^",
            "--format",
            "leef",
        ]);
        assert_eq!(e.format, Format::Leef { delimiter: b'^' });
    }

    #[test]
    fn envelope_defaults_follow_the_output() {
        // Network: RFC 5424; local socket: syslog(3); STREAM/FILE: none.
        assert!(matches!(
            remote(&[]).destinations.remove(0).encoder.envelope,
            Envelope::Rfc5424(_)
        ));
        assert_eq!(
            remote(&[]).destinations.remove(0).encoder.max_message_size,
            Some(2048)
        );
        assert!(
            matches!(&remote(&["-t", "/run/log.sock"]).destinations[0].encoder.envelope, Envelope::Rfc3164(h) if h.hostname.is_none())
        );
        let e = enc(&["-o", "STREAM"]);
        assert_eq!((e.envelope, e.max_message_size), (Envelope::None, None));
        // The rfc5424 format is a whole syslog message, even in a file.
        assert!(matches!(
            enc(&["-o", "STREAM", "--format", "rfc5424"]).envelope,
            Envelope::Rfc5424(_)
        ));
        // Explicit: any output.
        assert!(
            matches!(enc(&["-o", "STREAM", "--syslog-format", "rfc3164", "--utc"]).envelope,
            Envelope::Rfc3164(h) if h.hostname.is_some() && h.time == rfc3164::TimeSource::EventUtc)
        );
        assert_eq!(enc(&["--syslog-format", "none"]).envelope, Envelope::None);
    }

    #[test]
    fn header_options_apply_and_are_checked() {
        let s = remote(&[
            "--hostname",
            "collector-9",
            "--app-name",
            "exp",
            "--facility",
            "local4",
            "--bom",
        ]);
        assert_eq!(
            s.destinations[0].encoder.envelope,
            Envelope::Rfc5424(rfc5424::Header {
                facility: 20,
                hostname: "collector-9".into(),
                app_name: "exp".into(),
                procid: std::process::id().to_string(),
                bom: true,
            })
        );
        assert!(
            matches!(enc(&["--facility", "23"]).envelope, Envelope::Rfc3164(h) if h.facility == 23)
        );
        for (args, needle) in [
            (&["--hostname", "a b"][..], "--hostname"),
            (&["--hostname", ""][..], "--hostname"),
            (&["--app-name", "a:b"][..], "--app-name"),
            (&["--tag", &"t".repeat(33)][..], "32"),
            (&["-o", "REMOTE", "--app-name", &"t".repeat(49)][..], "48"),
            (&["--max-message-size", "100"][..], "--max-message-size"),
        ] {
            let e = settings(args).unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{args:?}: {e}");
        }
        assert_eq!(enc(&["--max-message-size", "0"]).max_message_size, None);
        assert_eq!(
            enc(&["-o", "STREAM", "--max-message-size", "600"]).max_message_size,
            Some(600)
        );
        let err = Cli::try_parse_from(["siem-agent", "--facility", "24"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--facility"), "{err}");
        let err = Cli::try_parse_from(["siem-agent", "--leef-delimiter", "ab"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--leef-delimiter"), "{err}");
    }

    #[test]
    fn targets_take_the_default_port() {
        assert_eq!(
            parse_target("siem", Some(1514)).unwrap(),
            Target::Inet {
                host: "siem".into(),
                port: 1514
            }
        );
        assert_eq!(
            parse_target("[::1]", Some(514)).unwrap(),
            Target::Inet {
                host: "::1".into(),
                port: 514
            }
        );
        assert!(parse_target("siem", None).is_err());
        assert!(parse_target("::1", Some(514)).is_err());
    }
}
