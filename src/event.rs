//! One security log as it travels through the pipeline.
//!
//! The source turns each object of an API page into an [`Event`]; the filter,
//! the encoders and the state read it; nothing changes it. The log's fields
//! are kept exactly as the API sent them (in order), so that formats that
//! carry every field (JSON, key=value) lose nothing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::fmt;

/// The CloudSOC app a log comes from. Each has its own cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum App {
    Investigate,
    Detect,
}

impl App {
    pub const ALL: [App; 2] = [App::Investigate, App::Detect];

    /// The name the API and the state file use (`app=Investigate`).
    pub fn as_str(self) -> &'static str {
        match self {
            App::Investigate => "Investigate",
            App::Detect => "Detect",
        }
    }

    /// The field that holds the log's own time. Detect is queried with
    /// `created_timestamp` but stamps its incidents with
    /// `incident_start_time`.
    pub fn time_field(self) -> &'static str {
        match self {
            App::Investigate => "created_timestamp",
            App::Detect => "incident_start_time",
        }
    }

    /// The severity levels this app uses, lowest first.
    pub fn severities(self) -> &'static [&'static str] {
        match self {
            App::Investigate => &["informational", "warning", "error", "critical"],
            App::Detect => &["low", "medium", "high"],
        }
    }

    /// Parses `investigate` / `Detect` (any case).
    pub fn parse(s: &str) -> Option<App> {
        App::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log, as received, with the two facts the pipeline needs pulled out.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub app: App,
    /// `_id` as text (a number is written in decimal); `None` when the log
    /// has no usable id.
    pub id: Option<String>,
    /// The log's own time in UTC (see [`App::time_field`]); `None` when the
    /// field is missing or not a timestamp. Formats write it.
    pub time: Option<DateTime<Utc>>,
    /// The time on the axis the API's query filters on (see
    /// [`cursor_time_of`]): what the cursor compares. `None` when the log
    /// has neither field.
    pub cursor_time: Option<DateTime<Utc>>,
    /// Every field of the log, in the order the API sent them.
    pub fields: Map<String, Value>,
}

impl Event {
    /// Builds an event from one log object of an API page.
    pub fn from_log(app: App, fields: Map<String, Value>) -> Event {
        let id = fields.get("_id").and_then(value_as_id);
        let time = fields
            .get(app.time_field())
            .and_then(Value::as_str)
            .and_then(parse_timestamp);
        // Investigate's own time is its created_timestamp: parsed once.
        let cursor_time = if app.time_field() == CURSOR_FIELDS[0] && time.is_some() {
            time
        } else {
            cursor_time_of(&fields)
        };
        Event {
            app,
            id,
            time,
            cursor_time,
            fields,
        }
    }

    /// The key that identifies this log in the cursor: its `_id`, or, for a
    /// log without one, a stable hash of its content (`h:` and 16 hex
    /// digits), so that it is still delivered once.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => {
                let text = serde_json::to_vec(&self.fields).unwrap_or_default();
                format!("h:{:016x}", fnv1a64(&text))
            }
        }
    }

    /// A field as text, when it is a string or a number or a boolean.
    pub fn str_field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The log's severity, lower-cased, when it has one.
    pub fn severity(&self) -> Option<String> {
        self.fields
            .get("severity")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
    }
}

/// The fields a log's cursor time is read from, in order of preference.
/// The API selects logs by `created_timestamp` (its only time filter), so
/// the cursor must follow that axis, never another clock of the log such as
/// Detect's `incident_start_time` (an incident is created after it
/// starts). A log without it falls back to `inserted_timestamp`, which is
/// never earlier.
pub const CURSOR_FIELDS: [&str; 2] = ["created_timestamp", "inserted_timestamp"];

/// The log's time on the API's query axis (see [`CURSOR_FIELDS`]).
pub fn cursor_time_of(fields: &Map<String, Value>) -> Option<DateTime<Utc>> {
    CURSOR_FIELDS.iter().find_map(|f| {
        fields
            .get(*f)
            .and_then(Value::as_str)
            .and_then(parse_timestamp)
    })
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

fn value_as_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses the API's timestamps: `YYYY-MM-DDTHH:MM:SS` (UTC, no offset) as
/// documented, and, leniently, a space instead of `T`, fractional seconds,
/// and a `Z` or numeric offset.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
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
        assert_eq!(ev.id.as_deref(), Some("AX1"));
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
        assert_eq!(ev.id.as_deref(), Some("42"));
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
        assert_eq!(ev.id, None);
        assert_eq!(ev.time, None);
        let ev = Event::from_log(App::Investigate, obj(json!({"_id": ""})));
        assert_eq!(ev.id, None);
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
