//! The command line: the original agent's flags (underscore spellings kept
//! as aliases, so existing cron lines keep working) plus ours.
//!
//! [`Cli`] is the raw parse; [`settings::Settings::from_cli`] validates it
//! into what the pipeline uses. Help, the man page and completions all come
//! from these definitions.

pub mod settings;

use clap::builder::PossibleValue;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "siem-agent",
    version,
    about = "Export security logs (CloudSOC, Defender for Cloud Apps, Cirrus Identity, any declared REST API) to a SIEM: CEF, LEEF, key=value, JSON or RFC 5424, over syslog, UDP, TCP, TLS, RELP, Splunk HEC, streams or files",
    long_about = None,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub export: ExportArgs,
}

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the config, the flags, the API and every destination; send no log.
    #[command(version, disable_version_flag = true)]
    Check(ExportArgs),
    /// Show each app's cursor, how far behind now it is, and the last run.
    Status(StatusArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Serve a simulated vendor API on 127.0.0.1 (for tests and trials): CloudSOC, Defender for Cloud Apps, Cirrus Identity, declared REST shapes, or Alibaba Cloud Log Service (--vendor).
    Simulate(crate::simulate::SimArgs),
}

/// Options of `siem-agent status`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// The credentials file (its directory holds the state by default), or a directory of tenant files.
    #[arg(long, default_value = "config.json", value_name = "PATH")]
    pub config: PathBuf,
    /// Where export_log.state and last_job.status live [default: the config file's directory; with --config DIR, that directory].
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Severity levels of the original agent. `all` selects every level.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "lower")]
pub enum SeverityArg {
    Critical,
    Error,
    Warning,
    Informational,
    High,
    Medium,
    Low,
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "lower")]
pub enum ElasticaApp {
    Investigate,
    Detect,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "UPPER")]
pub enum OutputKind {
    /// The local syslog daemon (/dev/log).
    Syslog,
    /// A remote or local socket (--target, --socket_type).
    Remote,
    /// Standard output or standard error (--stream).
    Stream,
    /// A file, rotated by size (--filename, --max_bytes, --backup_count).
    File,
    /// Splunk's HTTP Event Collector (--hec-url, --hec-token).
    Hec,
}

pub use crate::sink::{SocketType, StreamKind};

/// RFC 3339 in UTC (`Z` or `+00:00`), a space allowed instead of `T`.
fn parse_utc(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let t = s.trim().replacen(' ', "T", 1);
    chrono::DateTime::parse_from_rfc3339(&t)
        .ok()
        .filter(|t| t.offset().local_minus_utc() == 0)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| format!("'{s}' is not an RFC 3339 time in UTC (e.g. 2026-11-01T00:00:00Z)"))
}

/// `--query`'s terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryTerms(pub Vec<(String, String)>);

/// `key=value,key=value` with the keys Cirrus Identity knows.
fn parse_query(s: &str) -> Result<QueryTerms, String> {
    let mut out = Vec::new();
    for term in s.split(',').filter(|t| !t.trim().is_empty()) {
        let (k, v) = term
            .split_once('=')
            .ok_or_else(|| format!("'{term}' is not KEY=VALUE"))?;
        let k = k.trim();
        if !crate::source::cirrus::QUERY_KEYS.contains(&k) {
            return Err(format!(
                "'{k}' is not a query key (one of {})",
                crate::source::cirrus::QUERY_KEYS.join(", ")
            ));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err("no KEY=VALUE term".into());
    }
    Ok(QueryTerms(out))
}

fn parse_vendor(s: &str) -> Result<crate::source::Vendor, String> {
    let v = crate::source::Vendor::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a source (one of {})",
            crate::source::Vendor::names()
        )
    })?;
    Ok(v)
}

// The sink's own types, spelled for the command line here (the sink knows
// nothing of clap).
impl ValueEnum for StreamKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[StreamKind::Stdout, StreamKind::Stderr]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            StreamKind::Stdout => "STDOUT",
            StreamKind::Stderr => "STDERR",
        }))
    }
}

impl ValueEnum for SocketType {
    fn value_variants<'a>() -> &'a [Self] {
        &SocketType::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            SocketType::Udp => "Datagrams (a unix datagram socket with a path)",
            SocketType::Tcp => {
                "A byte stream, LF-framed by default (a unix stream socket with a path)"
            }
            SocketType::Tls => "TCP with TLS (RFC 5425), octet-counted by default",
            SocketType::Relp => "RELP: each message confirmed by the receiver",
            SocketType::RelpTls => "RELP over TLS",
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "lower")]
pub enum FormatArg {
    /// ArcSight Common Event Format.
    Cef,
    /// QRadar LEEF 2.0 (attribute delimiter: --leef-delimiter).
    Leef,
    /// QRadar LEEF 1.0 (tab-delimited).
    Leef1,
    /// Splunk key="value" pairs, every field, the log's time first.
    Kv,
    /// One JSON object per line, every field of the log plus "app".
    Json,
    /// Every field as RFC 5424 structured data, the message as MSG.
    Rfc5424,
}

/// The syslog header around each message.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "lower")]
pub enum SyslogFormatArg {
    /// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG.
    Rfc5424,
    /// <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG (to a local syslog socket: without HOSTNAME, as syslog(3)).
    Rfc3164,
    /// The payload alone.
    None,
}

/// A SIEM whose usual format, syslog header and port --siem selects.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "lower")]
pub enum SiemArg {
    /// --format kv --syslog-format rfc3164, port 514.
    Splunk,
    /// --format cef --syslog-format rfc3164 --tag '', port 1514.
    Arcsight,
    /// --format leef --syslog-format rfc3164 --tag '', port 514.
    Qradar,
    /// --format rfc5424 --syslog-format rfc5424, port 514.
    Generic,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "kebab-case")]
pub enum FramingArg {
    /// Each message ends with LF (what most receivers expect).
    Lf,
    /// RFC 6587 octet counting: `LEN SP MSG`.
    OctetCounted,
}

/// The export's flags (the default command).
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// The vendor API to pull: cloudsoc, mcas, cirrus, rest or sls [default: config.json's "source", else cloudsoc]. With cirrus or sls, a run needs no config file: the flags (or their environment variables) are enough.
    #[arg(long, value_name = "NAME", value_parser = parse_vendor, help_heading = "Source")]
    pub source: Option<crate::source::Vendor>,

    /// Defender for Cloud Apps: the API token, over config.json's "token" (or set SIEM_AGENT_MCAS_TOKEN, which keeps it out of `ps`).
    #[arg(
        long,
        env = "SIEM_AGENT_MCAS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Source"
    )]
    pub token: Option<String>,

    /// Cirrus Identity: the API key, over config.json's "apikey" (or set API_KEY).
    #[arg(
        long,
        env = "API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Cirrus Identity"
    )]
    pub apikey: Option<String>,

    /// Cirrus Identity: the API secret, over config.json's "apisecret" (or set API_SECRET, which keeps it out of `ps`).
    #[arg(
        long,
        env = "API_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Cirrus Identity"
    )]
    pub apisecret: Option<String>,

    /// Log Service: the endpoint (cn-hangzhou.log.aliyuncs.com; https:// unless given), over config.json's "endpoint" (or set SLS_ENDPOINT).
    #[arg(
        long = "sls-endpoint",
        env = "SLS_ENDPOINT",
        value_name = "HOST",
        help_heading = "Log Service"
    )]
    pub sls_endpoint: Option<String>,

    /// Log Service: the project, over config.json's "project" (or set SLS_PROJECT).
    #[arg(
        long = "sls-project",
        env = "SLS_PROJECT",
        value_name = "NAME",
        help_heading = "Log Service"
    )]
    pub sls_project: Option<String>,

    /// Log Service: the Logstore, over config.json's "logstore" (or set SLS_LOGSTORE).
    #[arg(
        long = "sls-logstore",
        env = "SLS_LOGSTORE",
        value_name = "NAME",
        help_heading = "Log Service"
    )]
    pub sls_logstore: Option<String>,

    /// Log Service: the AccessKey ID, over config.json's "access_key_id" (or set SLS_AK_ID).
    #[arg(
        long = "sls-access-key-id",
        env = "SLS_AK_ID",
        hide_env_values = true,
        value_name = "ID",
        help_heading = "Log Service"
    )]
    pub sls_access_key_id: Option<String>,

    /// Log Service: the AccessKey secret, over config.json's "access_key_secret" (or set SLS_AK_KEY, which keeps it out of `ps`).
    #[arg(
        long = "sls-access-key-secret",
        env = "SLS_AK_KEY",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Log Service"
    )]
    pub sls_access_key_secret: Option<String>,

    /// Log Service: the consumer group to share the shards in, over config.json's "consumer_group" (or set SLS_CG).
    #[arg(
        long = "sls-consumer-group",
        env = "SLS_CG",
        value_name = "NAME",
        help_heading = "Log Service"
    )]
    pub sls_consumer_group: Option<String>,

    /// Cirrus Identity: the endpoint, over config.json's "apiurl" [default: https://apigw.cirrusidentity.com/logs/v1].
    #[arg(long, value_name = "URL", help_heading = "Cirrus Identity")]
    pub apiurl: Option<String>,

    /// Cirrus Identity: your organisation's URL (orgUrl), over config.json's "orgurl"; not needed with a key that serves one organization.
    #[arg(long, value_name = "URL", help_heading = "Cirrus Identity")]
    pub orgurl: Option<String>,

    /// Cirrus Identity: entries per request (at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Cirrus Identity")]
    pub limit: u32,

    /// Cirrus Identity: start at this time (RFC 3339 UTC, e.g. 2026-11-01T00:00:00Z; a space may replace the T) instead of at the saved position.
    #[arg(long, value_name = "TIME", value_parser = parse_utc, help_heading = "Cirrus Identity")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,

    /// Cirrus Identity: entries up to this time only (RFC 3339 UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_utc, help_heading = "Cirrus Identity")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,

    /// Cirrus Identity: exact matches KEY=VALUE,... among tenant, service, metrictype, metricsubtype, clientip, correlationid, user (sent to the API and applied again here).
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = parse_query, help_heading = "Cirrus Identity")]
    pub query: Option<QueryTerms>,

    /// Cirrus Identity: one request only; the saved position is not moved.
    #[arg(short = 'x', help_heading = "Cirrus Identity")]
    pub one_request: bool,

    /// Proxy for the API, as URL or HOST:PORT (e.g. http://10.0.0.1:3128).
    #[arg(long, value_name = "URL_OR_HOST:PORT", help_heading = "Source")]
    pub proxy: Option<String>,

    /// Proxy user name.
    #[arg(short = 'u', long, requires = "proxy", help_heading = "Source")]
    pub username: Option<String>,

    /// Proxy password (or set SIEM_AGENT_PROXY_PASSWORD, which keeps it out of `ps`).
    #[arg(
        short = 'p',
        long,
        env = "SIEM_AGENT_PROXY_PASSWORD",
        hide_env_values = true,
        requires = "username",
        help_heading = "Source"
    )]
    pub password: Option<String>,

    /// Proxy password from a file (mode 600, or 640 root:<the agent's group>; one trailing newline dropped), instead of --password.
    #[arg(
        long = "password-file",
        value_name = "PATH",
        env = "SIEM_AGENT_PROXY_PASSWORD_FILE",
        requires = "username",
        conflicts_with = "password",
        help_heading = "Source"
    )]
    pub password_file: Option<PathBuf>,

    /// Severity levels to export [default: error critical warning, and every Detect level].
    #[arg(long, num_args = 1.., ignore_case = true, value_name = "LEVEL", help_heading = "Filters")]
    pub severity: Vec<SeverityArg>,

    /// SaaS app names to export (case-sensitive; quote names with spaces). `Elastica`: the History page logs.
    #[arg(long, num_args = 1.., value_name = "NAME", help_heading = "Filters")]
    pub app: Vec<String>,

    /// Object types to export (case-sensitive).
    #[arg(long = "object-type", visible_alias = "object_type", num_args = 1.., value_name = "TYPE", help_heading = "Filters")]
    pub object_type: Vec<String>,

    /// Activity types to export (case-sensitive).
    #[arg(long = "activity-type", visible_alias = "activity_type", num_args = 1.., value_name = "TYPE", help_heading = "Filters")]
    pub activity_type: Vec<String>,

    /// CloudSOC apps to export from [default: both].
    #[arg(long = "elastica-app", visible_alias = "elastica_app", num_args = 1.., ignore_case = true, value_name = "APP", help_heading = "Filters")]
    pub elastica_app: Vec<ElasticaApp>,

    /// Clear the status of the last run (last_job.status), then run.
    #[arg(short = 'c', help_heading = "State")]
    pub clear_status: bool,

    /// Reset the cursor (export_log.state) and the status, then run from the earliest log the API keeps.
    #[arg(short = 'r', help_heading = "State")]
    pub reset_cursor: bool,

    /// Start from this day (YYYY-MM-DD, UTC), overriding the saved cursor.
    #[arg(long = "start-date", visible_alias = "start_date", value_name = "YYYY-MM-DD", value_parser = parse_date, help_heading = "State")]
    pub start_date: Option<chrono::NaiveDate>,

    /// Write debug lines to the log file (--log-file).
    #[arg(short = 'd', long = "debug", help_heading = "Logging")]
    pub debug: bool,

    /// The agent's log file [default: /var/log/siem-agent.log, else in the state directory].
    #[arg(long = "log-file", value_name = "PATH", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,

    /// The directory of the agent's log file (siem-agent.log in it): the Defender for Cloud Apps agent's flag.
    #[arg(
        long = "logs-directory",
        visible_alias = "logsDirectory",
        value_name = "DIR",
        conflicts_with = "log_file",
        help_heading = "Logging"
    )]
    pub logs_directory: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// Events written per second (0 = as fast as the output takes; the
    /// default, but 10000 over UDP, which has no flow control).
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub rate: Option<u32>,

    /// Where to write the logs.
    #[arg(
        short = 'o',
        long,
        ignore_case = true,
        default_value = "SYSLOG",
        help_heading = "Output"
    )]
    pub output: OutputKind,

    /// With -o STREAM: which stream.
    #[arg(
        short = 's',
        long,
        ignore_case = true,
        default_value = "STDERR",
        help_heading = "Output"
    )]
    pub stream: StreamKind,

    /// With -o REMOTE: HOST[:PORT], [IPv6]:PORT, or the path of a unix socket [default: localhost:514, or the --siem preset's port]. Repeat it to send every log to several destinations; a prefix udp://, tcp://, tls://, relp:// or relp+tls:// gives a destination its own --socket-type.
    #[arg(short = 't', long, value_name = "HOST:PORT|PATH", action = ArgAction::Append, help_heading = "Output")]
    pub target: Vec<String>,

    /// With -o REMOTE: the socket type (with a unix socket path: datagram or stream).
    #[arg(
        long = "socket-type",
        visible_alias = "socket_type",
        ignore_case = true,
        default_value = "UDP",
        help_heading = "Output"
    )]
    pub socket_type: SocketType,

    /// With -o REMOTE over TCP or TLS: how messages are delimited [default: lf for TCP, octet-counted for TLS].
    #[arg(long, help_heading = "Output")]
    pub framing: Option<FramingArg>,

    /// With TLS: CA certificates (PEM) to trust instead of the system's.
    #[arg(long = "tls-ca", value_name = "FILE", help_heading = "Output")]
    pub tls_ca: Option<PathBuf>,

    /// With TLS: a client certificate chain (PEM) to present, with --tls-key.
    #[arg(
        long = "tls-cert",
        value_name = "FILE",
        requires = "tls_key",
        help_heading = "Output"
    )]
    pub tls_cert: Option<PathBuf>,

    /// With TLS: the client certificate's private key (PEM).
    #[arg(
        long = "tls-key",
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "Output"
    )]
    pub tls_key: Option<PathBuf>,

    /// With -o HEC: the collector's URL, e.g. https://splunk.example:8088 [default: hec_url in config.json].
    #[arg(long = "hec-url", value_name = "URL", help_heading = "Output")]
    pub hec_url: Option<String>,

    /// With -o HEC: the HEC token (or set SIEM_AGENT_HEC_TOKEN, or hec_token in config.json).
    #[arg(
        long = "hec-token",
        env = "SIEM_AGENT_HEC_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Output"
    )]
    pub hec_token: Option<String>,

    /// With -o HEC: the events' sourcetype, over config.json's "hec_sourcetype" [default: each stream's own, such as symantec:cloudsoc:investigate].
    #[arg(long = "hec-sourcetype", value_name = "NAME", help_heading = "Output")]
    pub hec_sourcetype: Option<String>,

    /// With -o HEC: the events' source.
    #[arg(
        long = "hec-source",
        default_value = "siem-agent",
        value_name = "NAME",
        help_heading = "Output"
    )]
    pub hec_source: String,

    /// With -o HEC: the index [default: the token's].
    #[arg(long = "hec-index", value_name = "NAME", help_heading = "Output")]
    pub hec_index: Option<String>,

    /// With -o HEC: wait for indexer acknowledgement of every batch before the cursor moves.
    #[arg(long = "hec-ack", help_heading = "Output")]
    pub hec_ack: bool,

    /// With -o HEC: events per request.
    #[arg(long = "hec-batch", default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000), help_heading = "Output")]
    pub hec_batch: u64,

    /// Reconnects to a stream output that failed, with backoff, before the run gives up.
    #[arg(long = "send-retries", default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100), help_heading = "Output")]
    pub send_retries: u32,

    /// Seconds one write or flush to an output may take before the connection counts as lost (reconnect, resend, give up after --send-retries).
    #[arg(long = "send-timeout", default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Output")]
    pub send_timeout: u64,

    /// With -o SYSLOG: the local syslog socket.
    #[arg(
        long = "syslog-socket",
        default_value = "/dev/log",
        value_name = "PATH",
        help_heading = "Output"
    )]
    pub syslog_socket: PathBuf,

    /// With -o FILE: the file to write.
    #[arg(short = 'f', long, value_name = "PATH", help_heading = "Output")]
    pub filename: Option<PathBuf>,

    /// With -o FILE: roll the file over before it reaches N bytes (0 = never).
    #[arg(
        long = "max-bytes",
        visible_alias = "max_bytes",
        default_value_t = 0,
        value_name = "N",
        help_heading = "Output"
    )]
    pub max_bytes: u64,

    /// With -o FILE: how many rolled-over files to keep (0 = never roll over; at most 10000).
    #[arg(
        long = "backup-count",
        visible_alias = "backup_count",
        default_value_t = 0,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=10_000),
        help_heading = "Output"
    )]
    pub backup_count: u32,

    /// Set format, syslog header and port as this SIEM expects (explicit flags win).
    #[arg(long, ignore_case = true, help_heading = "Format")]
    pub siem: Option<SiemArg>,

    /// Payload format [default: cef, or the --siem preset's].
    #[arg(long, ignore_case = true, help_heading = "Format")]
    pub format: Option<FormatArg>,

    /// LEEF 2.0 attribute delimiter: one character, or its hex code (x09 = tab, x5E = ^).
    #[arg(long = "leef-delimiter", default_value = "x09", value_name = "CHAR|xHH", value_parser = crate::encode::leef::parse_delimiter, help_heading = "Format")]
    pub leef_delimiter: u8,

    /// With --format kv: write `SEPkey=value` pairs, the form of the Log Service seed program (`--kv-separator '||'`), instead of Splunk's `key="value"`.
    #[arg(long = "kv-separator", value_name = "SEP", value_parser = parse_kv_separator, help_heading = "Format")]
    pub kv_separator: Option<([u8; 4], u8)>,

    /// Syslog header [default: rfc5424 to a network target, the local syslog(3) form to a unix socket, none to STREAM and FILE; or the --siem preset's].
    #[arg(long = "syslog-format", ignore_case = true, help_heading = "Format")]
    pub syslog_format: Option<SyslogFormatArg>,

    /// HOSTNAME in the syslog header [default: this machine's name].
    #[arg(long, value_name = "NAME", help_heading = "Format")]
    pub hostname: Option<String>,

    /// APP-NAME (RFC 5424) or TAG (RFC 3164) [default: siem-agent]; '' leaves it out.
    #[arg(
        long = "app-name",
        visible_alias = "tag",
        value_name = "NAME",
        help_heading = "Format"
    )]
    pub app_name: Option<String>,

    /// Syslog facility: a name (user, daemon, local0 ... local7, ...) or 0-23.
    #[arg(long, default_value = "user", value_name = "NAME|N", value_parser = crate::encode::parse_facility, help_heading = "Format")]
    pub facility: u8,

    /// Start RFC 5424 MSG with the UTF-8 byte order mark.
    #[arg(long, help_heading = "Format")]
    pub bom: bool,

    /// RFC 3164 timestamps in UTC instead of local time.
    #[arg(long, help_heading = "Format")]
    pub utc: bool,

    /// Cut longer messages on a field boundary and flag them (0 = no limit) [default: 2048 for UDP, 8096 for TCP and local sockets, none for STREAM and FILE].
    #[arg(
        long = "max-message-size",
        value_name = "BYTES",
        help_heading = "Format"
    )]
    pub max_message_size: Option<usize>,

    /// The credentials file; or a directory of them, one tenant per *.json file (named by the file's stem, its state in <state-dir>/<name>/).
    #[arg(
        long,
        default_value = "config.json",
        value_name = "PATH",
        help_heading = "Files"
    )]
    pub config: PathBuf,

    /// Where export_log.state, export_log.lock and last_job.status live [default: the config file's directory; with --config DIR, that directory].
    #[arg(long = "state-dir", value_name = "DIR", help_heading = "Files")]
    pub state_dir: Option<PathBuf>,

    /// With --config DIR: how many tenants export at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Files")]
    pub parallel: u16,

    /// A run that finds the lock held by a run started more than this many seconds ago warns that it may be hung and exits 1 (0 = never).
    #[arg(
        long = "stale-after",
        default_value_t = 3600,
        value_name = "SECONDS",
        help_heading = "Files"
    )]
    pub stale_after: u64,

    /// Leave logs newer than this many seconds for the next run: the API may still be indexing logs of that time, and a cursor past them would skip them (0 = no wait).
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400), help_heading = "Source")]
    pub settle: u64,

    /// Stop the run after N events (0 = until caught up).
    #[arg(
        long = "max-events",
        default_value_t = 0,
        value_name = "N",
        help_heading = "Source"
    )]
    pub max_events: u64,

    /// How many streams of a config (CloudSOC's apps, Defender's data types) are read at once, each with its own cursor; 1 reads them one after another.
    #[arg(long = "parallel-streams", default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Source")]
    pub parallel_streams: u16,

    /// Seconds to wait for the API to connect or answer.
    #[arg(long = "http-timeout", default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Source")]
    pub http_timeout: u64,

    /// Retries of a failed API request (429, 5xx, timeouts, resets) before the run gives up.
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100), help_heading = "Source")]
    pub retries: u32,

    /// First retry delay in milliseconds (doubles each retry, with jitter).
    #[arg(
        long = "retry-delay-ms",
        default_value_t = 1000,
        value_name = "MS",
        hide = true
    )]
    pub retry_delay_ms: u64,

    /// The largest API answer read, in MiB once decompressed (a page of 1000 logs is rarely over 10); a larger one ends the run with an error.
    #[arg(long = "max-page-mib", default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096), help_heading = "Source")]
    pub max_page_mib: u64,

    /// Allow an http:// api_server that is not a loopback address.
    #[arg(long = "allow-insecure-http", help_heading = "Source")]
    pub allow_insecure_http: bool,

    /// Run a real export against a built-in simulated API (state in a temporary directory; output to stdout unless -o is given).
    #[arg(long)]
    pub demo: bool,

    /// The log file's line format.
    #[arg(long = "log-format", default_value = "text", value_parser = ["text", "json"], help_heading = "Logging")]
    pub log_format: String,

    /// After each run, write Prometheus text-format metrics here (for node_exporter's textfile collector).
    #[arg(long = "metrics-file", value_name = "PATH", help_heading = "Logging")]
    pub metrics_file: Option<PathBuf>,

    /// Fetch, filter and format as usual, but print to stdout: no output is opened, no cursor moves, no status is written.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// The ids of the credentials (`token`, `apikey`, `apisecret`) that
    /// came from the environment, not the command line (set by main).
    #[arg(skip)]
    pub credentials_from_env: Vec<&'static str>,
}

fn parse_kv_separator(s: &str) -> Result<([u8; 4], u8), String> {
    crate::encode::kv::parse_separator(s)
}

/// Moves a subcommand named after global options to the front, so that
/// `siem-agent --config X status` reads as `siem-agent status --config X`
/// (clap takes options of a subcommand only after its name). Option values
/// are skipped as such; anything unclear is left as it is.
pub fn hoist_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
    let find = |tok: &str| {
        cmd.get_arguments().find(|a| {
            if let Some(long) = tok.strip_prefix("--") {
                a.get_long() == Some(long)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&long))
            } else {
                let mut c = tok.chars().skip(1);
                matches!((c.next(), c.next()), (Some(ch), None) if a.get_short() == Some(ch))
            }
        })
    };
    let mut i = 1;
    while i < args.len() {
        let Some(tok) = args[i].to_str() else {
            return args;
        };
        if tok == "--" {
            return args;
        }
        if let Some(opt) = tok.strip_prefix('-').filter(|o| !o.is_empty()) {
            let _ = opt;
            let takes =
                !tok.contains('=') && find(tok).is_some_and(|a| a.get_action().takes_values());
            let many = find(tok)
                .and_then(|a| a.get_num_args())
                .is_some_and(|n| n.max_values() > 1);
            if many {
                return args; // its values run up to the next option: unclear
            }
            i += if takes { 2 } else { 1 };
            continue;
        }
        if i > 1 && names.contains(&tok) {
            let sub = args.remove(i);
            args.insert(1, sub);
        }
        return args;
    }
    args
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date in the form YYYY-MM-DD"))
}

/// Turns a clap error into the line the agent prints (without the usage
/// block and the "try --help" hint); a suggestion of a similar argument
/// follows on a line of its own, and only when it is close to what was
/// typed (clap's own measure offers `--max_bytes` for `--x`).
pub fn one_line_error(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    let mut tips: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        if line.starts_with("siem-agent ") && !parts.is_empty() {
            continue; // usage continuation lines
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        match line.strip_prefix("tip: ") {
            Some(tip) => tips.push(tip.to_string()),
            None => parts.push(line.to_string()),
        }
    }
    let mut out = parts.join(" ");
    out.push_str(" (see --help)");
    let typed = quoted(&out).unwrap_or_default();
    for tip in tips {
        if let Some(s) = tip
            .strip_prefix("a similar argument exists: ")
            .and_then(quoted)
            && !close(&typed, &s)
        {
            continue;
        }
        out.push_str("\n  tip: ");
        out.push_str(&tip);
    }
    out
}

/// The first `'...'` of a text.
fn quoted(text: &str) -> Option<String> {
    let start = text.find('\'')? + 1;
    let end = start + text[start..].find('\'')?;
    Some(text[start..end].to_string())
}

/// Whether `suggested` is a likely meaning of the option `typed`: at most
/// one edit away (two from six characters), `_` and `-` alike.
fn close(typed: &str, suggested: &str) -> bool {
    let norm = |s: &str| {
        s.trim_start_matches('-')
            .to_ascii_lowercase()
            .replace('_', "-")
    };
    let (t, s) = (norm(typed), norm(suggested));
    let limit = if t.chars().count() >= 6 { 2 } else { 1 };
    !t.is_empty() && crate::config::edit_distance(&t, &s) <= limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn original_spellings_parse() {
        let cli = Cli::try_parse_from([
            "siem-agent",
            "--proxy",
            "http://10.0.0.1:3128",
            "-u",
            "user",
            "-p",
            "pw",
            "--severity",
            "error",
            "critical",
            "--app",
            "Dropbox",
            "Yahoo Mail",
            "--object_type",
            "User",
            "Session",
            "--activity_type",
            "Create",
            "--elastica_app",
            "Investigate",
            "-d",
            "--rate",
            "5000",
            "--start_date",
            "2020-12-20",
            "--socket_type",
            "tcp",
            "-o",
            "remote",
            "--max_bytes",
            "10",
            "--backup_count",
            "2",
        ])
        .unwrap();
        let a = cli.export;
        assert_eq!(a.severity, vec![SeverityArg::Error, SeverityArg::Critical]);
        assert_eq!(a.app, vec!["Dropbox", "Yahoo Mail"]);
        assert_eq!(a.object_type, vec!["User", "Session"]);
        assert_eq!(a.elastica_app, vec![ElasticaApp::Investigate]);
        assert_eq!(a.output, OutputKind::Remote);
        assert_eq!(a.socket_type, SocketType::Tcp);
        assert_eq!(a.rate, Some(5000));
        assert!(a.debug);
        assert_eq!(a.max_bytes, 10);
    }

    #[test]
    fn a_subcommand_after_global_options_is_moved_first() {
        let v = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            hoist_subcommand(v(&["siem-agent", "--config", "x.json", "status", "--json"])),
            v(&["siem-agent", "status", "--config", "x.json", "--json"])
        );
        assert_eq!(
            hoist_subcommand(v(&["siem-agent", "-d", "--state-dir=/s", "check"])),
            v(&["siem-agent", "check", "-d", "--state-dir=/s"])
        );
        // A value that happens to be a subcommand's name stays a value.
        assert_eq!(
            hoist_subcommand(v(&["siem-agent", "--config", "status"])),
            v(&["siem-agent", "--config", "status"])
        );
        let cli = Cli::try_parse_from(hoist_subcommand(v(&[
            "siem-agent",
            "--config",
            "x.json",
            "status",
        ])))
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Status(s)) if s.config == std::path::Path::new("x.json"))
        );
    }

    #[test]
    fn kebab_spellings_parse() {
        let cli = Cli::try_parse_from([
            "siem-agent",
            "--object-type",
            "File",
            "--start-date",
            "2024-02-29",
        ])
        .unwrap();
        assert_eq!(cli.export.object_type, vec!["File"]);
    }

    #[test]
    fn errors_are_one_line_and_name_the_flag() {
        let err = Cli::try_parse_from(["siem-agent", "-o", "PRINTER"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(!line.contains('\n'));
        assert!(line.contains("--output"), "{line}");
        assert!(line.contains("SYSLOG"), "{line}");
        let err = Cli::try_parse_from(["siem-agent", "--start_date", "2020-02-30"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(
            line.contains("YYYY-MM-DD") && line.contains("--start-date"),
            "{line}"
        );
        let err = Cli::try_parse_from(["siem-agent", "--bogus"]).unwrap_err();
        assert!(one_line_error(&err).contains("--bogus"));
    }

    #[test]
    fn a_close_suggestion_goes_on_its_own_line_a_far_one_nowhere() {
        let err = Cli::try_parse_from(["siem-agent", "--severty", "all"]).unwrap_err();
        let text = one_line_error(&err);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("'--severty'") && lines[0].ends_with("(see --help)"),
            "{text}"
        );
        assert_eq!(lines[1], "  tip: a similar argument exists: '--severity'");
        let err = Cli::try_parse_from(["siem-agent", "--x"]).unwrap_err();
        let text = one_line_error(&err);
        assert!(
            !text.contains('\n') && !text.contains("max_bytes"),
            "{text}"
        );
    }
}
