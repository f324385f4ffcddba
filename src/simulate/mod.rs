//! The embedded vendor API simulator (`siem-agent simulate`, `--demo`):
//! CloudSOC's log export API (`cloudsoc-api.md`), Defender for Cloud Apps,
//! Cirrus Identity, REST shapes and Alibaba Cloud Log Service on 127.0.0.1,
//! with deterministic synthetic logs, hostile field values, and faults on
//! demand. Small HTTP/1.1 server of its own (GET and POST, keep-alive).

mod cirrus;
pub mod data;
mod http;
mod mcas;
mod oauth;
mod rest;
mod sls;

use data::Schedule;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;

/// The API a simulator serves.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SimVendor {
    /// CloudSOC's log export API.
    #[default]
    Cloudsoc,
    /// Microsoft Defender for Cloud Apps' alerts and activities.
    Mcas,
    /// Cirrus Identity's Log API (`/logs/v1`).
    Cirrus,
    /// REST log APIs of four shapes (`/api/v1/logs`, `/body/events`,
    /// `/token/events`, `/offset/events`) for a declared source.
    Rest,
    /// Alibaba Cloud Log Service: project `--tenant`, Logstore
    /// `--logstore`, `--shards` shards, requests signed with `--key-id`
    /// and `--key-secret`.
    Sls,
}

/// How the Cirrus simulator writes its `Link` header.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkForm {
    /// `<URL>; rel="next"` (RFC 8288).
    #[default]
    Angle,
    /// `URL; rel="next"`, as the vendor's example client reads it.
    Bare,
}

/// Options of `siem-agent simulate`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// The API to serve.
    #[arg(long, value_enum, default_value = "cloudsoc")]
    pub vendor: SimVendor,
    /// Logs arrive while a run reads. Defender for Cloud Apps: half are
    /// there at first, N more with each request; Log Service: N more with
    /// each pull.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub arrive: u64,
    /// Log Service: the Logstore's name.
    #[arg(long, default_value = "demo-logs")]
    pub logstore: String,
    /// Log Service: how many shards the Logstore starts with.
    #[arg(long, default_value_t = 2)]
    pub shards: u32,
    /// Log Service: no more logs arrive (--arrive) once N have (0: no limit).
    #[arg(long = "arrive-max", default_value_t = 0, value_name = "N")]
    pub arrive_max: u64,
    /// Log Service: split the first readwrite shard after N pulls (0: never).
    #[arg(long = "split-after", default_value_t = 0, value_name = "N")]
    pub split_after: u64,
    /// Cirrus Identity: the form of the Link header.
    #[arg(long = "link-form", value_enum, default_value = "angle")]
    pub link_form: LinkForm,
    /// Defender for Cloud Apps: the API token the simulator accepts.
    #[arg(long = "token", default_value = "demo-token")]
    pub token: String,
    /// OAuth 2.0 (a declared REST API's `/oauth2/token`, Entra ID's
    /// `/<tenant>/oauth2/v2.0/token` for Defender for Cloud Apps): the
    /// client ID the token endpoint accepts.
    #[arg(long = "client-id", default_value = "demo-client")]
    pub client_id: String,
    /// OAuth 2.0: the client secret the token endpoint accepts.
    #[arg(long = "client-secret", default_value = "demo-client-secret")]
    pub client_secret: String,
    /// OAuth 2.0: how long an access token lives, in seconds (its expires_in).
    #[arg(
        long = "token-lifetime",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub token_lifetime: u64,
    /// OAuth 2.0: refuse an access token (401) after N API requests, however
    /// young (a token revoked early; 0: never).
    #[arg(long = "token-uses", default_value_t = 0, value_name = "N")]
    pub token_uses: u64,
    /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Investigate logs to serve.
    #[arg(long, default_value_t = 5000)]
    pub events: u64,
    /// Detect logs to serve [default: a tenth of --events].
    #[arg(long = "detect-events")]
    pub detect_events: Option<u64>,
    /// Investigate logs per second, on average (seconds vary from none to twice that).
    #[arg(long = "per-second", default_value_t = 25)]
    pub per_second: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The first log's time (YYYY-MM-DDTHH:MM:SS, UTC) [default: so that the last log is ten minutes old].
    #[arg(long = "start-time")]
    pub start_time: Option<String>,
    /// Serve a log only once its inserted_timestamp has passed, as the API
    /// does with logs it indexes late.
    #[arg(long)]
    pub late: bool,
    /// Act as if the time were SECONDS later (its Date header, and what
    /// --late lets through): "the same API, a while later".
    #[arg(
        long = "clock-offset",
        default_value_t = 0,
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub clock_offset: i64,
    /// A Date header SECONDS off from the simulator's own time (a server
    /// whose clock is wrong; nothing else changes).
    #[arg(
        long = "date-offset",
        default_value_t = 0,
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub date_offset: i64,
    /// Faults for the first log requests, one per request, in order:
    /// 429[:SECONDS], 500, 502, 503, 403, slow, truncate, reset, malformed, ok.
    #[arg(long, default_value = "", value_delimiter = ',')]
    pub faults: Vec<String>,
    /// After the --faults sequence, the percentage of log requests that get a random fault.
    #[arg(long = "fault-rate", default_value_t = 0.0)]
    pub fault_rate: f64,
    /// How long a `slow` answer waits, in milliseconds.
    #[arg(long = "slow-ms", default_value_t = 5000)]
    pub slow_ms: u64,
    /// Delay every answer by this many milliseconds, as a distant API does
    /// (each connection waits on its own: many clients at once are not
    /// slowed by each other).
    #[arg(long = "latency-ms", default_value_t = 0, value_name = "N")]
    pub latency_ms: u64,
    /// Realistic values only: no hostile value in every seventh log (for benchmarks).
    #[arg(long)]
    pub plain: bool,
    /// Keep each page once made and serve it again from memory, so that the
    /// simulator costs little when a benchmark asks for the same pages again.
    #[arg(long)]
    pub cache: bool,
    /// Ignore the filter parameters (severity, service, object_type, activity_type).
    #[arg(long = "ignore-filters")]
    pub ignore_filters: bool,
    /// Also act as the HTTP proxy: requests in proxy form must carry these
    /// Proxy-Authorization credentials (USER:PASSWORD), else 407.
    #[arg(long = "proxy-auth", value_name = "USER:PASSWORD")]
    pub proxy_auth: Option<String>,
    /// CloudSOC: the tenant in the URL path; Log Service: the project (the first label of Host).
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// The key the simulator accepts: CloudSOC's key_id, Cirrus's apikey, Log Service's access_key_id.
    #[arg(long = "key-id", default_value = "demo-key")]
    pub key_id: String,
    /// The secret the simulator accepts: CloudSOC's key_secret, Cirrus's apisecret, Log Service's access_key_secret.
    #[arg(long = "key-secret", default_value = "demo-secret")]
    pub key_secret: String,
}

/// `--clock-offset`, for the simulator's notion of now.
pub(crate) static CLOCK_OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The simulator's now.
static DATE_OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// What the simulator's Date header says.
pub(crate) fn sim_date() -> chrono::DateTime<chrono::Utc> {
    sim_now() + chrono::Duration::seconds(DATE_OFFSET.load(std::sync::atomic::Ordering::Relaxed))
}

pub(crate) fn sim_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        + chrono::Duration::seconds(CLOCK_OFFSET.load(std::sync::atomic::Ordering::Relaxed))
}

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Ok,
    TooMany(u64),
    Status(u16),
    Slow,
    Truncate,
    Reset,
    Malformed,
    /// Log Service: an LZ4 body that does not decompress.
    Corrupt,
    /// Log Service: `InvalidCursor`.
    InvalidCursor,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "ok" => Fault::Ok,
            "429" => Fault::TooMany(1),
            "500" | "502" | "503" | "403" => Fault::Status(s.parse().ok()?),
            "slow" => Fault::Slow,
            "truncate" => Fault::Truncate,
            "reset" => Fault::Reset,
            "malformed" => Fault::Malformed,
            "corrupt" => Fault::Corrupt,
            "invalid-cursor" => Fault::InvalidCursor,
            other => Fault::TooMany(other.strip_prefix("429:")?.parse().ok()?),
        })
    }
}

/// Counts, for tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub log_requests: AtomicU64,
    pub faults: AtomicU64,
    /// Requests received in proxy form (`GET http://host/path`).
    pub proxied: AtomicU64,
    /// OAuth 2.0 access tokens issued.
    pub tokens: AtomicU64,
}

/// The data and behaviour shared by every connection.
pub(crate) struct World {
    pub args: SimArgs,
    pub schedule: Schedule,
    pub detect_count: u64,
    pub faults: Vec<Fault>,
    pub stats: Arc<Stats>,
    pub auth: String,
    /// Pages already made (`--cache`), by request.
    pub cache: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// The Log Service's shards (`--vendor sls`).
    pub sls: Option<sls::Store>,
    /// OAuth 2.0 access tokens issued, by value.
    pub tokens: std::sync::Mutex<std::collections::HashMap<String, oauth::Issued>>,
}

/// A simulator serving in the background of the current tokio runtime.
pub struct Simulator {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

fn world(args: SimArgs) -> std::io::Result<World> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let faults = args
        .faults
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| Fault::parse(f).ok_or_else(|| bad(format!("--faults: unknown fault {f:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let start = match &args.start_time {
        None => None,
        Some(s) => Some(
            crate::event::parse_timestamp(s)
                .ok_or_else(|| bad(format!("--start-time: {s:?} is not YYYY-MM-DDTHH:MM:SS")))?
                .timestamp(),
        ),
    };
    CLOCK_OFFSET.store(args.clock_offset, std::sync::atomic::Ordering::Relaxed);
    DATE_OFFSET.store(args.date_offset, std::sync::atomic::Ordering::Relaxed);
    let end = chrono::Utc::now().timestamp() - 600;
    let schedule = Schedule::new(args.seed, args.events, args.per_second, start, end);
    let detect_count = args.detect_events.unwrap_or(args.events / 10);
    let auth = format!(
        "Basic {}",
        crate::source::http::base64(format!("{}:{}", args.key_id, args.key_secret).as_bytes())
    );
    let sls = (args.vendor == SimVendor::Sls).then(|| {
        sls::Store::new(
            &args,
            Schedule::new(args.seed, args.events, args.per_second, start, end),
        )
    });
    Ok(World {
        sls,
        args,
        schedule,
        detect_count,
        faults,
        stats: Arc::new(Stats::default()),
        auth,
        cache: Default::default(),
        tokens: Default::default(),
    })
}

/// A config.json that reads the simulator `args` serves at `addr`: its
/// URL and the credentials it accepts, in the vendor's keys.
pub fn ready_config(args: &SimArgs, addr: SocketAddr) -> serde_json::Value {
    use serde_json::json;
    let api_server = format!("http://{addr}/");
    match args.vendor {
        SimVendor::Mcas => json!({
            "source": "mcas",
            "api_server": api_server,
            "token": args.token,
            "data_types": ["alerts", "activities"],
        }),
        SimVendor::Cirrus => json!({
            "source": "cirrus",
            "apiurl": format!("{api_server}logs/v1"),
            "apikey": args.key_id,
            "apisecret": args.key_secret,
            "orgurl": "https://example.edu",
        }),
        SimVendor::Sls => json!({
            "source": "sls",
            "endpoint": format!("http://{addr}"),
            "project": args.tenant,
            "logstore": args.logstore,
            "access_key_id": args.key_id,
            "access_key_secret": args.key_secret,
            "start": "begin",
        }),
        SimVendor::Rest => json!({
            "source": "rest",
            "url": format!("{api_server}api/v1/logs"),
            "headers": {"Authorization": format!("SSWS {}", args.token)},
            "params": {"limit": "100"},
            "since_param": "since",
            "time_field": "published",
            "id_field": "uuid",
            "next": "link",
        }),
        SimVendor::Cloudsoc => json!({
            "user_id": "demo",
            "api_server": api_server,
            "key_id": args.key_id,
            "key_secret": args.key_secret,
            "tenant": args.tenant,
        }),
    }
}

/// Binds 127.0.0.1:port and serves in a spawned task.
pub async fn start(args: SimArgs) -> std::io::Result<Simulator> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let world = Arc::new(world(args)?);
    let addr = listener.local_addr()?;
    let stats = world.stats.clone();
    tokio::spawn(http::serve(listener, world));
    Ok(Simulator { addr, stats })
}

/// `siem-agent simulate`: prints `listening on http://127.0.0.1:PORT` once
/// the port is bound, then serves until the process is stopped.
pub async fn run(args: SimArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let config = ready_config(&args, listener.local_addr()?);
    let world = Arc::new(world(args)?);
    let addr = listener.local_addr()?;
    {
        // The readiness line first (scripts wait for it), then a config
        // that reads this simulator, in one write: a reader that stops
        // after the first line costs nothing.
        use std::io::Write;
        let text = format!(
            "listening on http://{addr}\n\
             A config.json for it (save it, chmod 600 config.json, then: siem-agent --config config.json --dry-run):\n{}\n",
            serde_json::to_string_pretty(&config).unwrap_or_default()
        );
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    http::serve(listener, world).await;
    Ok(())
}

impl Simulator {
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }
}
