//! The agent's own log: a file (default /var/log/siem-agent.log, rotated at
//! 10 MB with 5 backups) that gets run summaries, warnings and errors, and
//! with `-d` the debug lines too; warnings and errors also go to stderr.
//! Every line passes through [`crate::secret::redact`] on its way out.

use crate::secret::redact;
use crate::sink::file::RotatingFile;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

pub const DEFAULT_LOG_FILE: &str = "/var/log/siem-agent.log";
pub const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const LOG_BACKUPS: u32 = 5;
const LOG_NAME: &str = "siem-agent.log";

/// Where the log went.
#[derive(Debug)]
pub struct LogSetup {
    pub path: Option<PathBuf>,
    /// Why the default path was not used, when it was not.
    pub fallback: Option<String>,
}

/// Installs the global subscriber. Never fails: without a writable log
/// file, lines still reach stderr.
pub fn init(requested: Option<&Path>, state_dir: &Path, debug: bool, json: bool) -> LogSetup {
    let (file, path, fallback) = open_log(requested, state_dir);
    let file_level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    // Only the agent's own lines: the HTTP stack's debug output is noise.
    let ours = Targets::new().with_target("siem_agent", LevelFilter::TRACE);
    let file_layer = file.map(|f| {
        let writer = RedactingFile(Arc::new(Mutex::new(f)));
        if json {
            JsonLayer(writer)
                .with_filter(file_level)
                .with_filter(ours.clone())
                .boxed()
        } else {
            TextLayer(writer)
                .with_filter(file_level)
                .with_filter(ours.clone())
                .boxed()
        }
    });
    // Run by hand with -d: the debug lines show on the terminal too.
    let stderr_level = if debug && std::io::IsTerminal::is_terminal(&io::stderr()) {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let stderr_layer = StderrLayer.with_filter(stderr_level).with_filter(ours);
    let _ = tracing_subscriber::registry()
        .with(TenantLayer)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogSetup { path, fallback }
}

fn open_log(
    requested: Option<&Path>,
    state_dir: &Path,
) -> (Option<RotatingFile>, Option<PathBuf>, Option<String>) {
    let primary = requested
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_FILE));
    match RotatingFile::open(&primary, LOG_MAX_BYTES, LOG_BACKUPS) {
        Ok(f) => (Some(f), Some(primary), None),
        Err(e) => {
            let alt = state_dir.join(LOG_NAME);
            let why = format!(
                "cannot write the log file {} ({e}); logging to {}",
                primary.display(),
                alt.display()
            );
            match RotatingFile::open(&alt, LOG_MAX_BYTES, LOG_BACKUPS) {
                Ok(f) => (Some(f), Some(alt), Some(why)),
                Err(e2) => (
                    None,
                    None,
                    Some(format!(
                        "cannot write the log file {} ({e}) nor {} ({e2}); logging to stderr only",
                        primary.display(),
                        alt.display()
                    )),
                ),
            }
        }
    }
}

/// The log file, shared by the layers: each line is redacted and
/// written whole, then flushed (a crash must not eat the last lines).
#[derive(Clone)]
struct RedactingFile(Arc<Mutex<RotatingFile>>);

impl Write for RedactingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // One record per line: a value holding a line break or a terminal
        // escape is written escaped, so it cannot forge a line.
        let text = String::from_utf8_lossy(buf);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let mut line = crate::report::printable(&redact(body)).into_owned();
        line.push('\n');
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Locked while written: another run opening the log never takes
        // this line for one cut short.
        f.locked(|f| f.write_record(line.as_bytes()).and_then(|()| f.flush()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// `--log-format json`: one object per line,
/// `{"time":"2026-11-23T10:00:00.123Z","level":"INFO","message":"..."}`.
struct JsonLayer(RedactingFile);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut v = MessageVisitor(String::new());
        event.record(&mut v);
        let mut line = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": event.metadata().level().as_str(),
            // Redacted before it is escaped as JSON: an echoed secret's
            // escapes would otherwise be escaped again, out of reach.
            "message": redact(&v.0),
        });
        if let Some(t) = tenant_of(event, &ctx) {
            line["tenant"] = t.0.into();
        }
        // serde_json leaves C1 controls and U+2028/9 raw: escape them too
        // (valid JSON escapes, only ever inside strings).
        let mut text = String::new();
        for c in line.to_string().chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                text.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                text.push(c);
            }
        }
        text.push('\n');
        let mut f = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = redact(&text);
        let _ = f.locked(|f| f.write_record(text.as_bytes()).and_then(|()| f.flush()));
    }
}

/// The log file's text lines: `2026-11-23T10:00:00.123456Z  INFO message`,
/// with `tenant acme: ` before the message of a tenant's lines.
struct TextLayer(RedactingFile);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TextLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let message = line_of(event, &ctx);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let level = event.metadata().level().as_str();
        let mut w = self.0.clone();
        // The writer redacts, escapes and writes the line whole.
        let _ = w.write_all(format!("{time} {level:>5} {message}\n").as_bytes());
    }
}

/// The span a tenant's work runs in (`--config DIR`): every line logged
/// inside it names the tenant. It is an ERROR-level span so that no
/// layer's level filter hides it from that layer.
pub fn tenant_span(name: &str) -> tracing::Span {
    tracing::error_span!("tenant", tenant = name)
}

/// A tenant's name, kept in its span's extensions.
#[derive(Clone)]
struct TenantName(String);

/// Records the `tenant` field of a tenant span where the other layers
/// find it.
struct TenantLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TenantLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "tenant" {
            return;
        }
        let mut v = FieldVisitor("tenant", None);
        attrs.record(&mut v);
        if let (Some(name), Some(span)) = (v.1, ctx.span(id)) {
            span.extensions_mut().insert(TenantName(name));
        }
    }
}

/// The tenant whose span `event` happened in, if any.
fn tenant_of<S: Subscriber + for<'a> LookupSpan<'a>>(
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> Option<TenantName> {
    ctx.event_scope(event)?
        .find_map(|span| span.extensions().get::<TenantName>().cloned())
}

/// An event's message, after `tenant <name>: ` when it happened in a
/// tenant's work.
fn line_of<S: Subscriber + for<'a> LookupSpan<'a>>(
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> String {
    let mut v = MessageVisitor(String::new());
    if let Some(t) = tenant_of(event, ctx) {
        v.0 = format!("tenant {}: ", t.0);
    }
    event.record(&mut v);
    v.0
}

/// One field's value, as text.
struct FieldVisitor(&'static str, Option<String>);

impl tracing::field::Visit for FieldVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == self.0 {
            self.1 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.0 {
            self.1 = Some(format!("{value:?}"));
        }
    }
}

/// Warnings and errors on stderr as `siem-agent: error: ...`, one line each.
struct StderrLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StderrLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let message = line_of(event, &ctx);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            _ => "debug",
        };
        let line = crate::report::printable(&redact(&message)).into_owned();
        let _ = writeln!(io::stderr().lock(), "siem-agent: {level}: {line}");
    }
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}
