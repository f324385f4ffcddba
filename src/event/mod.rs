//! One security log as it travels through the pipeline.
//!
//! The source turns each object of an API page into an [`Event`]; the filter,
//! the encoders and the state read it; nothing changes it. The log's fields
//! are kept exactly as the API sent them (in order), so that formats that
//! carry every field (JSON, key=value) lose nothing.

pub mod json;
pub mod pool;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The vendor API a log comes from (`"source"` in config.json).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vendor {
    /// Broadcom CloudSOC's log export API.
    #[default]
    CloudSoc,
    /// Microsoft Defender for Cloud Apps (formerly Cloud App Security).
    Mcas,
    /// Cirrus Identity's Log API.
    Cirrus,
    /// A REST API declared in config.json.
    Rest,
    /// Alibaba Cloud Log Service (a Logstore's shards).
    Sls,
}

impl Vendor {
    pub const ALL: [Vendor; 5] = [
        Vendor::CloudSoc,
        Vendor::Mcas,
        Vendor::Cirrus,
        Vendor::Rest,
        Vendor::Sls,
    ];

    /// The name config.json, `--source` and the state file use.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::CloudSoc => "cloudsoc",
            Vendor::Mcas => "mcas",
            Vendor::Cirrus => "cirrus",
            Vendor::Rest => "rest",
            Vendor::Sls => "sls",
        }
    }

    /// Parses a name (any case).
    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The names of every source, for messages.
    pub fn names() -> String {
        Vendor::ALL.map(Vendor::name).join(", ")
    }

    /// Its streams, each with its own cursor (none for a Log Service,
    /// whose shards are listed by each run).
    pub fn streams(self) -> &'static [App] {
        match self {
            Vendor::CloudSoc => &App::ALL,
            Vendor::Mcas => &[App::Alerts, App::Activities],
            Vendor::Cirrus => &[App::CirrusLogs],
            Vendor::Rest => &[App::RestLogs],
            Vendor::Sls => &[],
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stream of a vendor's API a log comes from (CloudSOC's apps,
/// Defender for Cloud Apps' data types). Each has its own cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum App {
    Investigate,
    Detect,
    /// Defender for Cloud Apps' alerts.
    Alerts,
    /// Defender for Cloud Apps' activities.
    Activities,
    /// Cirrus Identity's log entries.
    CirrusLogs,
    /// The records of a REST API declared in config.json.
    RestLogs,
    /// One shard of an Alibaba Cloud Log Service Logstore, by its id.
    SlsShard(u32),
}

impl App {
    /// CloudSOC's apps (`--elastica_app`).
    pub const ALL: [App; 2] = [App::Investigate, App::Detect];

    /// The name the API and the state file use (`app=Investigate`,
    /// `alerts`).
    pub fn as_str(self) -> &'static str {
        match self {
            App::Investigate => "Investigate",
            App::Detect => "Detect",
            App::Alerts => "alerts",
            App::Activities => "activities",
            App::CirrusLogs | App::RestLogs => "logs",
            App::SlsShard(id) => shard_name(id),
        }
    }

    /// The vendor whose stream it is.
    pub fn vendor(self) -> Vendor {
        match self {
            App::Investigate | App::Detect => Vendor::CloudSoc,
            App::Alerts | App::Activities => Vendor::Mcas,
            App::CirrusLogs => Vendor::Cirrus,
            App::RestLogs => Vendor::Rest,
            App::SlsShard(_) => Vendor::Sls,
        }
    }

    /// The field that holds the log's own time. Detect is queried with
    /// `created_timestamp` but stamps its incidents with
    /// `incident_start_time`.
    pub fn time_field(self) -> &'static str {
        match self {
            App::Investigate => "created_timestamp",
            App::Detect => "incident_start_time",
            App::Alerts | App::Activities | App::CirrusLogs => "timestamp",
            // Declared in config.json (`time_field`).
            App::RestLogs => "time_field",
            App::SlsShard(_) => "__time__",
        }
    }

    /// The severity levels this stream uses, lowest first (none: its logs
    /// have no severity, and `--severity` does not apply to them).
    pub fn severities(self) -> &'static [&'static str] {
        match self {
            App::Investigate => &["informational", "warning", "error", "critical"],
            App::Detect | App::Alerts => &["low", "medium", "high"],
            App::Activities | App::CirrusLogs | App::RestLogs | App::SlsShard(_) => &[],
        }
    }

    /// Whether the API pages it by position (a next-page URL to resume
    /// from), not by time: the cursor is that position.
    pub fn positional(self) -> bool {
        matches!(self, App::CirrusLogs | App::SlsShard(_))
    }

    /// Parses `investigate` / `Detect` (any case): CloudSOC's apps.
    pub fn parse(s: &str) -> Option<App> {
        App::parse_in(Vendor::CloudSoc, s)
    }

    /// Parses the name of one of `vendor`'s streams (any case).
    pub fn parse_in(vendor: Vendor, s: &str) -> Option<App> {
        if vendor == Vendor::Sls {
            let id = s.strip_prefix("shard-")?;
            // Digits only, as written (no sign, no leading zero).
            let canonical =
                id.bytes().all(|b| b.is_ascii_digit()) && (id == "0" || !id.starts_with('0'));
            return canonical
                .then(|| id.parse().ok())
                .flatten()
                .map(App::SlsShard);
        }
        vendor
            .streams()
            .iter()
            .copied()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// A shard's stream name (`shard-3`), made once per shard id and kept for
/// the process's life (a Logstore has at most a few hundred shards).
fn shard_name(id: u32) -> &'static str {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeMap<u32, &'static str>> = Mutex::new(BTreeMap::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .entry(id)
        .or_insert_with(|| Box::leak(format!("shard-{id}").into_boxed_str()))
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log, as received, with the facts the pipeline needs pulled out.
///
/// The log's fields live in its page ([`Logs`]): keys and values are
/// slices of the page's text (a string is unescaped into the page's side
/// buffer only when it holds an escape), so reading a page allocates per
/// page, not per field. An event is a cheap handle on one log of it.
#[derive(Clone)]
pub struct Event {
    pub app: App,
    /// The log's own time in UTC (see [`App::time_field`]); `None` when the
    /// field is missing or not a timestamp. Formats write it.
    pub time: Option<DateTime<Utc>>,
    /// The time on the axis the API's query filters on (see
    /// [`CURSOR_FIELDS`]): what the cursor compares. `None` when the log
    /// has neither field.
    pub cursor_time: Option<DateTime<Utc>>,
    page: Arc<Logs>,
    /// The log's fields: `page.fields[first..end]`.
    first: u32,
    end: u32,
    /// `_id` as text (a number in its canonical form), when usable.
    id: Option<Span>,
    /// Where each [`Known`] field is among the log's fields.
    known: [u32; KNOWN_COUNT],
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("app", &self.app)
            .field("id", &self.id())
            .field("time", &self.time)
            .field("fields", &self.fields().len())
            .finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.app == other.app && self.fields().iter().eq(other.fields().iter())
    }
}

impl Event {
    /// Builds an event from one log object (tests, and logs built in
    /// memory).
    pub fn from_log(app: App, fields: Map<String, Value>) -> Event {
        let text = serde_json::to_string(&fields).unwrap_or_else(|_| "{}".into());
        json::one_log(app, text).expect("serde_json writes JSON the reader takes")
    }

    /// The log's fields as serde_json reads them (tests compare a log
    /// read from a page with the same log alone).
    #[cfg(test)]
    pub fn fields_json(&self) -> Map<String, Value> {
        self.fields()
            .iter()
            .map(|(k, v)| {
                let mut t = Vec::new();
                json::write_val(v, &mut t);
                (
                    k.to_string(),
                    serde_json::from_slice(&t).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    /// `_id` as text (a number is written in decimal); `None` when the log
    /// has no usable id.
    pub fn id(&self) -> Option<&str> {
        self.id.map(|s| self.page.text(s))
    }

    /// The log's fields, in the order the API sent them.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            page: &self.page,
            fields: &self.page.fields[self.first as usize..self.end as usize],
        }
    }

    /// The distinct keys of this log's page.
    pub fn page_keys(&self) -> PageKeys<'_> {
        PageKeys { page: &self.page }
    }

    /// Asks the processor to bring this log's fields into its cache, so
    /// that a format's lookups do not wait for them one after another.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let f = &self.page.fields[self.first as usize..self.end as usize];
            let p = f.as_ptr().cast::<i8>();
            for o in (0..size_of_val(f)).step_by(64) {
                // SAFETY: a prefetch reads nothing and faults on nothing;
                // the addresses are inside the slice anyway.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        p.wrapping_add(o),
                    )
                };
            }
        }
    }

    /// A field the pipeline knows by name, found without a search.
    pub fn known(&self, k: Known) -> Option<Val<'_>> {
        match self.known[k as usize] {
            ABSENT => None,
            i => Some(self.page.val(&self.page.fields[(self.first + i) as usize])),
        }
    }

    /// A known field's value as text ([`Val::text`]), empty when the log
    /// does not have it: read without looking at its kind.
    #[inline]
    pub fn known_text(&self, k: Known) -> &str {
        match self.known[k as usize] {
            ABSENT => "",
            i => self
                .page
                .text_of(&self.page.fields[(self.first + i) as usize]),
        }
    }

    /// A field by name (a known one without a search).
    pub fn get(&self, name: &str) -> Option<Val<'_>> {
        match Known::of(name.as_bytes()) {
            Some(k) => self.known(k),
            None => self.fields().get(name),
        }
    }

    /// The key that identifies this log in the cursor: its `_id`, or, for a
    /// log without one, a stable hash of its content (`h:` and 16 hex
    /// digits), so that it is still delivered once.
    pub fn key(&self) -> Cow<'_, str> {
        match self.id() {
            Some(id) => Cow::Borrowed(id),
            None => {
                let mut text = Vec::with_capacity(512);
                json::write_compact(self.fields(), &mut text);
                Cow::Owned(format!("h:{:016x}", fnv1a64(&text)))
            }
        }
    }

    /// Takes the log's time and its id from the fields a declared REST
    /// API names (`time` worked out by the source; `id_field` a top-level
    /// field, a string or a number; none: the log is known by a hash of its
    /// content).
    pub fn set_time_and_id(&mut self, time: Option<DateTime<Utc>>, id_field: Option<&str>) {
        self.time = time;
        self.cursor_time = time;
        let page = &self.page;
        self.id = id_field.and_then(|name| {
            page.fields[self.first as usize..self.end as usize]
                .iter()
                .find(|f| page.key_text(f) == name)
                .and_then(|f| match f.kind {
                    Kind::Str if f.val.len > 0 => Some(f.val),
                    Kind::Num => Some(f.val),
                    _ => None,
                })
        });
    }

    /// The log's severity, lower-cased and trimmed, when it has one.
    /// (Defender for Cloud Apps' alerts give it as a number.)
    pub fn severity(&self) -> Option<Cow<'_, str>> {
        if self.app == App::Alerts {
            let level = match self.known(Known::SeverityValue)? {
                Val::Num(n) | Val::Str(n) => n.trim(),
                _ => return None,
            };
            return match level {
                "0" => Some(Cow::Borrowed("low")),
                "1" => Some(Cow::Borrowed("medium")),
                "2" => Some(Cow::Borrowed("high")),
                _ => None,
            };
        }
        let s = self.known(Known::Severity)?.as_str()?;
        let t = s.trim();
        if t.bytes().any(|b| b.is_ascii_uppercase()) {
            Some(Cow::Owned(t.to_ascii_lowercase()))
        } else {
            Some(Cow::Borrowed(t))
        }
    }
}

/// A field's value, borrowed from its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    /// A number, as serde_json writes it (`87`, `1.5`, `1e+30` as
    /// `1e30`).
    Num(&'a str),
    /// A string, unescaped.
    Str(&'a str),
    /// An array or an object, as compact JSON (serde_json's form, keys in
    /// the API's order).
    Nested(&'a str),
}

impl<'a> Val<'a> {
    /// The string, when the value is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text for the line formats: strings as they are,
    /// numbers and booleans as JSON writes them, null as empty, arrays
    /// and objects as compact JSON.
    #[inline]
    pub fn text(self) -> &'a str {
        if let Val::Str(s) = self {
            return s;
        }
        match self {
            Val::Str(s) | Val::Num(s) | Val::Nested(s) => s,
            Val::Null => "",
            Val::Bool(true) => "true",
            Val::Bool(false) => "false",
        }
    }

    /// Null or the empty string: formats leave such fields out.
    pub fn is_empty(self) -> bool {
        matches!(self, Val::Null | Val::Str(""))
    }
}

/// A log's fields, in the API's order.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    page: &'a Logs,
    fields: &'a [Field],
}

impl<'a> Fields<'a> {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A field by name (a search: prefer [`Event::get`]).
    pub fn get(&self, name: &str) -> Option<Val<'a>> {
        self.fields
            .iter()
            .find(|f| self.page.key_text(f) == name)
            .map(|f| self.page.val(f))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Val<'a>)> + 'a {
        let page = self.page;
        self.fields
            .iter()
            .map(move |f| (page.key_text(f), page.val(f)))
    }

    /// Each field's value, what it is, and its key's number, without its
    /// key's text (see [`Slot`]).
    pub fn slots(&self) -> impl Iterator<Item = Slot<'a>> + 'a {
        let page = self.page;
        self.fields.iter().map(move |f| Slot {
            text: page.text_of(f),
            known_bit: match f.known {
                NOT_KNOWN => 0,
                k => 1 << k,
            },
            key_id: f.key_id,
        })
    }

    /// The fields as [`Entry`]s.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + 'a {
        let page = self.page;
        self.fields.iter().map(move |f| Entry {
            key: page.key_text(f),
            val: page.val(f),
            known: Known::ALL.get(usize::from(f.known)).copied(),
            key_id: f.key_id,
        })
    }
}

/// A field of a log, with what its page knows of its key.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub key: &'a str,
    pub val: Val<'a>,
    /// The [`Known`] field it is, if any.
    pub known: Option<Known>,
    /// The page-wide number of its key: see [`Event::page_keys`].
    pub key_id: u32,
}

/// A field as a format that knows its page's keys by number sees it.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    /// Its value as text ([`Val::text`]; empty for null and "").
    pub text: &'a str,
    /// `1 << k` when it is the [`Known`] field `k`, else 0.
    pub known_bit: u32,
    /// The page-wide number of its key: see [`Event::page_keys`].
    pub key_id: u32,
}

/// The distinct keys of a page, numbered: the same number in every log of
/// the page that has the key.
#[derive(Clone, Copy)]
pub struct PageKeys<'a> {
    page: &'a Logs,
}

impl<'a> PageKeys<'a> {
    /// A number that no other page read by this process has.
    pub fn serial(&self) -> u64 {
        self.page.serial
    }

    pub fn len(&self) -> usize {
        self.page.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.page.keys.is_empty()
    }

    /// The key numbered `id`.
    pub fn get(&self, id: u32) -> &'a str {
        self.page.text(self.page.keys[id as usize])
    }
}

/// The fields the pipeline reads by name. Each log records where they are
/// while it is read, so that formats and filters find them without a
/// search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Known {
    Id,
    CreatedTimestamp,
    InsertedTimestamp,
    IncidentStartTime,
    Severity,
    Message,
    ActivityType,
    IoiCode,
    User,
    Service,
    ObjectType,
    ThreatScore,
    UserAgent,
    Name,
    ObjectName,
    ObjectUrl,
    PolicyType,
    Location,
    Locations,
    UserName,
    Host,
    Hosts,
    /// Defender for Cloud Apps' time (epoch milliseconds).
    Timestamp,
    /// Defender for Cloud Apps' severity (0 low, 1 medium, 2 high).
    SeverityValue,
}

/// How many [`Known`] fields there are.
pub const KNOWN_COUNT: usize = 24;
const _: () = assert!(KNOWN_COUNT <= 32, "Slot::known_bit is a u32");

/// A known field absent from a log.
const ABSENT: u32 = u32::MAX;

impl Known {
    /// Every known field, in `repr` order.
    pub const ALL: [Known; KNOWN_COUNT] = [
        Known::Id,
        Known::CreatedTimestamp,
        Known::InsertedTimestamp,
        Known::IncidentStartTime,
        Known::Severity,
        Known::Message,
        Known::ActivityType,
        Known::IoiCode,
        Known::User,
        Known::Service,
        Known::ObjectType,
        Known::ThreatScore,
        Known::UserAgent,
        Known::Name,
        Known::ObjectName,
        Known::ObjectUrl,
        Known::PolicyType,
        Known::Location,
        Known::Locations,
        Known::UserName,
        Known::Host,
        Known::Hosts,
        Known::Timestamp,
        Known::SeverityValue,
    ];

    /// The field's name in the log.
    pub const fn name(self) -> &'static str {
        match self {
            Known::Id => "_id",
            Known::CreatedTimestamp => "created_timestamp",
            Known::InsertedTimestamp => "inserted_timestamp",
            Known::IncidentStartTime => "incident_start_time",
            Known::Severity => "severity",
            Known::Message => "message",
            Known::ActivityType => "activity_type",
            Known::IoiCode => "ioi_code",
            Known::User => "user",
            Known::Service => "service",
            Known::ObjectType => "object_type",
            Known::ThreatScore => "threat_score",
            Known::UserAgent => "user-agent",
            Known::Name => "name",
            Known::ObjectName => "object_name",
            Known::ObjectUrl => "object_url",
            Known::PolicyType => "policy_type",
            Known::Location => "location",
            Known::Locations => "locations",
            Known::UserName => "user_name",
            Known::Host => "host",
            Known::Hosts => "hosts",
            Known::Timestamp => "timestamp",
            Known::SeverityValue => "severityValue",
        }
    }

    /// The known field of that name, if it is one.
    pub fn of(name: &[u8]) -> Option<Known> {
        // Length and first byte rule out all but one or two names.
        let k = match (name.len(), name.first()?) {
            (3, b'_') => Known::Id,
            (17, b'c') => Known::CreatedTimestamp,
            (18, b'i') => Known::InsertedTimestamp,
            (19, b'i') => Known::IncidentStartTime,
            (8, b's') => Known::Severity,
            (7, b'm') => Known::Message,
            (13, b'a') => Known::ActivityType,
            (8, b'i') => Known::IoiCode,
            (4, b'u') => Known::User,
            (7, b's') => Known::Service,
            (11, b'o') if name[7] == b'n' => Known::ObjectName,
            (11, b'o') => Known::ObjectType,
            (12, b't') => Known::ThreatScore,
            (10, b'u') => Known::UserAgent,
            (4, b'n') => Known::Name,
            (10, b'o') => Known::ObjectUrl,
            (11, b'p') => Known::PolicyType,
            (8, b'l') => Known::Location,
            (9, b'l') => Known::Locations,
            (9, b'u') => Known::UserName,
            (4, b'h') => Known::Host,
            (5, b'h') => Known::Hosts,
            (9, b't') => Known::Timestamp,
            (13, b's') => Known::SeverityValue,
            _ => return None,
        };
        (k.name().as_bytes() == name).then_some(k)
    }
}

/// A slice of a page: of its text, or (high bit set) of its side buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// In [`Span::start`]: the span is in [`Logs::extra`].
const EXTRA: u32 = 1 << 31;

/// The kind of a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    True,
    False,
    Num,
    Str,
    Nested,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    /// Its value (its key is its key number's: [`Logs::keys`]).
    val: Span,
    kind: Kind,
    /// The [`Known`] field this is, or [`NOT_KNOWN`].
    known: u8,
    /// The page-wide number of its key ([`Logs::keys`]).
    key_id: u32,
}

const _: () = assert!(
    size_of::<Field>() == 16,
    "a page holds about 27 000 of them"
);

/// In [`Field::known`]: not a known field.
const NOT_KNOWN: u8 = u8::MAX;

/// The logs of one page: the page's text, the unescaped strings, and every
/// log's fields one after the other.
pub struct Logs {
    /// This page's number among the pages read by this process.
    serial: u64,
    /// The page's distinct keys: a field's `key_id` is its place here.
    keys: Vec<Span>,
    text: String,
    extra: String,
    fields: Vec<Field>,
}

impl Drop for Logs {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.text).into_bytes();
        pool::give(text, std::mem::take(&mut self.fields));
    }
}

impl Logs {
    #[inline]
    fn text(&self, s: Span) -> &str {
        let (text, start) = if s.start & EXTRA == 0 {
            (&self.text, s.start as usize)
        } else {
            (&self.extra, (s.start & !EXTRA) as usize)
        };
        let end = start + s.len as usize;
        // Spans are cut by the reader at ASCII bytes (quotes and JSON's
        // punctuation) or at the ends of what it wrote, so they are
        // character boundaries; checked in debug builds, and the bounds
        // always (a slice of bytes, then read as the text it is part of).
        debug_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
        let bytes = &text.as_bytes()[start..end];
        // SAFETY: `bytes` lies between two character boundaries of a str.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// A value's text, whatever its kind: the reader gives every value a
    /// span of its text (a literal's own, null an empty one), so that
    /// this is [`Val::text`] without a branch on the kind.
    #[inline]
    fn text_of(&self, f: &Field) -> &str {
        self.text(f.val)
    }

    /// A field's key (the same text for every field with its key number).
    #[inline]
    fn key_text(&self, f: &Field) -> &str {
        self.text(self.keys[f.key_id as usize])
    }

    #[inline]
    fn val(&self, f: &Field) -> Val<'_> {
        // Strings first, with a branch the processor predicts: most
        // values are strings, and a jump table per field cost more.
        if f.kind == Kind::Str {
            return Val::Str(self.text(f.val));
        }
        match f.kind {
            Kind::Null => Val::Null,
            Kind::True => Val::Bool(true),
            Kind::False => Val::Bool(false),
            Kind::Num => Val::Num(self.text(f.val)),
            Kind::Str => Val::Str(self.text(f.val)),
            Kind::Nested => Val::Nested(self.text(f.val)),
        }
    }
}

/// The fields a log's cursor time is read from, in order of preference.
/// The API selects logs by `created_timestamp` (its only time filter), so
/// the cursor must follow that axis, never another clock of the log such as
/// Detect's `incident_start_time` (an incident is created after it
/// starts). A log without it falls back to `inserted_timestamp`, which is
/// never earlier.
pub const CURSOR_FIELDS: [&str; 2] = ["created_timestamp", "inserted_timestamp"];

/// A time given as epoch milliseconds (a number, or digits in a string),
/// or, leniently, as a timestamp in text.
pub fn parse_epoch_ms(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(ms) = t.parse::<f64>()
        && ms.is_finite()
        && ms.abs() < 1e17
    {
        return DateTime::from_timestamp_millis(ms as i64);
    }
    parse_timestamp(t)
}

/// FNV-1a, 64 bits: small, and stable across versions and machines.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Parses the API's timestamps: `YYYY-MM-DDTHH:MM:SS` (UTC, no offset) as
/// documented, and, leniently, a space instead of `T`, fractional seconds,
/// and a `Z` or numeric offset.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    // The documented form, read directly (chrono's parsers are general and
    // slow, and every log has a timestamp or two).
    if let Some(t) = parse_plain(s.as_bytes()) {
        return Some(t);
    }
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%d %H:%M:%S%.fZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SS` exactly, or `None` (also for what a general
/// parser should decide: leap seconds, other forms).
fn parse_plain(b: &[u8]) -> Option<DateTime<Utc>> {
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
    ] = *b
    else {
        return None;
    };
    let n = |hi: u8, lo: u8| -> Option<u32> {
        (hi.is_ascii_digit() && lo.is_ascii_digit())
            .then(|| u32::from(hi - b'0') * 10 + u32::from(lo - b'0'))
    };
    let year = n(y0, y1)? * 100 + n(y2, y3)?;
    let date = NaiveDate::from_ymd_opt(year as i32, n(m0, m1)?, n(d0, d1)?)?;
    let time = NaiveTime::from_hms_opt(n(h0, h1)?, n(i0, i1)?, n(s0, s1)?)?;
    Some(date.and_time(time).and_utc())
}

/// Formats a time the way the API's `created_timestamp` parameter takes it.
pub fn api_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn investigate_log_yields_id_and_time() {
        let ev = Event::from_log(
            App::Investigate,
            obj(json!({"_id": "AX1", "created_timestamp": "2023-01-01T23:23:59"})),
        );
        assert_eq!(ev.id(), Some("AX1"));
        assert_eq!(api_timestamp(ev.time.unwrap()), "2023-01-01T23:23:59");
    }

    #[test]
    fn detect_uses_incident_start_time() {
        let ev = Event::from_log(
            App::Detect,
            obj(
                json!({"_id": 42, "created_timestamp": "2020-01-01T00:00:00",
                       "incident_start_time": "2023-01-02T23:23:59"}),
            ),
        );
        assert_eq!(ev.id(), Some("42"));
        assert_eq!(api_timestamp(ev.time.unwrap()), "2023-01-02T23:23:59");
        // The cursor follows the axis the API filters on.
        assert_eq!(
            api_timestamp(ev.cursor_time.unwrap()),
            "2020-01-01T00:00:00"
        );
        let ev = Event::from_log(
            App::Detect,
            obj(
                json!({"_id": 1, "incident_start_time": "2023-01-02T23:23:59",
                       "inserted_timestamp": "2023-01-02T23:25:00"}),
            ),
        );
        assert_eq!(
            api_timestamp(ev.cursor_time.unwrap()),
            "2023-01-02T23:25:00"
        );
        let ev = Event::from_log(
            App::Detect,
            obj(json!({"_id": 1, "incident_start_time": "2023-01-02T23:23:59"})),
        );
        assert_eq!(ev.cursor_time, None);
    }

    #[test]
    fn bad_or_missing_fields_give_none() {
        let ev = Event::from_log(
            App::Investigate,
            obj(json!({"_id": ["x"], "created_timestamp": 12})),
        );
        assert_eq!(ev.id(), None);
        assert_eq!(ev.time, None);
        let ev = Event::from_log(App::Investigate, obj(json!({"_id": ""})));
        assert_eq!(ev.id(), None);
    }

    #[test]
    fn timestamps_parse_leniently() {
        for s in [
            "2023-01-01T23:23:59",
            "2023-01-01 23:23:59",
            "2023-01-01T23:23:59.250",
            "2023-01-01T23:23:59Z",
            "2023-01-01T23:23:59+00:00",
            "2023-01-02T00:23:59+01:00",
        ] {
            let t = parse_timestamp(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(api_timestamp(t), "2023-01-01T23:23:59", "{s}");
        }
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2023-13-01T00:00:00").is_none());
    }

    #[test]
    fn key_is_the_id_or_a_stable_content_hash() {
        let a = Event::from_log(App::Investigate, obj(json!({"_id": "X"})));
        assert_eq!(a.key(), "X");
        let b = Event::from_log(App::Investigate, obj(json!({"message": "m"})));
        let c = Event::from_log(App::Investigate, obj(json!({"message": "m"})));
        let d = Event::from_log(App::Investigate, obj(json!({"message": "n"})));
        assert!(b.key().starts_with("h:"));
        assert_eq!(b.key(), c.key());
        assert_ne!(b.key(), d.key());
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn app_parse_any_case() {
        assert_eq!(App::parse("investigate"), Some(App::Investigate));
        assert_eq!(App::parse("DETECT"), Some(App::Detect));
        assert_eq!(App::parse("other"), None);
    }
}
