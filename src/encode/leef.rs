//! LEEF (QRadar).
//! - 2.0: `LEEF:2.0|Symantec|CloudSOC|VERSION|EVENTID|xHH|k=v<D>k=v...`
//! - 1.0: `LEEF:1.0|Symantec|CloudSOC|VERSION|EVENTID|k=v<TAB>k=v...`
//!
//! LEEF defines no escape at all (IBM's LEEF 1.0 and 2.0 specifications),
//! and readers split the header on every `|` (syslog-ng's LEEF parser
//! would read `a\|b` as `a\` and shift every field after it). So header
//! fields (Version, EventID) are written with `|` as a space and `\` as
//! it is. In values, the delimiter, TAB (whatever the delimiter: it is the
//! default one, and QRadar may split on it), CR, LF, the other control
//! characters and the Unicode line ends (NEL, U+2028, U+2029) become a
//! space. Mapped keys (formats.md):
//! `devTime` (with `devTimeFormat`), `sev`, `usrName`, `src`, `externalId`,
//! `resource`, `cat`, `objectType`, `msg`, `threatScore`; every other field
//! keeps its own name (characters other than letters, digits, `_`, `-` and
//! `.` become `_`), renamed `cloudsoc_<name>` if it would repeat a key or
//! is one of LEEF's predefined attribute names.

use super::page_keys::{self, Made, PageKeys};
use super::text::{KeySet, escape_into_fast, is_ip, push_int, put, truncate_chars};
use super::{Budget, severity_number};
use crate::event::{App, Event, Known};
use std::cell::RefCell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// LEEF 1.0: tab-delimited, no delimiter field.
    V1,
    /// LEEF 2.0 with this attribute delimiter.
    V2(u8),
}

/// The Java date pattern of `devTime`.
pub const DEV_TIME_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSZ";

/// Parses `--leef-delimiter`: one character (`^`, `|` excepted), `\t`, or
/// its hex code `x09` / `0x5E`.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix('x'))
        .or_else(|| s.strip_prefix('X'));
    let byte = match (s, hex) {
        ("\\t" | "tab", _) => b'\t',
        (_, Some(h)) if h.len() == 2 => {
            u8::from_str_radix(h, 16).map_err(|_| format!("'{s}' is not a hex code like x09"))?
        }
        _ if s.len() == 1 => s.as_bytes()[0],
        _ => {
            return Err(format!(
                "'{s}' is not one character or a hex code like x09 or x5E"
            ));
        }
    };
    if byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'=' | b'|' | b'\\' | b'\n' | b'\r' | b' ' | b'_' | b'.' | b'-'
        )
        || byte > 0x7e
        || (byte < 0x20 && byte != b'\t')
    {
        return Err(format!(
            "'{s}' cannot delimit LEEF attributes (use a tab, ^ or another punctuation mark)"
        ));
    }
    Ok(byte)
}

/// The attribute that flags a line cut by `--max-message-size`.
pub const TRUNCATED: &str = "siemAgentTruncated";

/// Appends the LEEF line for `ev`. Attributes are written whole while they
/// fit `budget`; when one does not, the rest are left out and the line
/// ends with `siemAgentTruncated=true`.
pub fn write(ev: &Event, version: &str, leef: Version, out: &mut Vec<u8>, budget: &mut Budget) {
    let delim = match leef {
        Version::V1 => b'\t',
        Version::V2(d) => d,
    };
    let text = |k: Known| ev.known_text(k);
    let (prefix, kind) = match ev.app {
        App::Investigate => ("Investigate:", text(Known::ActivityType)),
        App::Detect => ("Detect:", text(Known::IoiCode)),
        App::Alerts | App::Activities => return write_mcas(ev, version, leef, out, budget),
        App::CirrusLogs | App::RestLogs | App::SlsShard(_) => {
            return write_cirrus(ev, version, leef, out, budget);
        }
    };
    out.extend_from_slice(match leef {
        Version::V1 => b"LEEF:1.0|Symantec|CloudSOC|",
        Version::V2(_) => b"LEEF:2.0|Symantec|CloudSOC|",
    });
    header(version, out);
    out.push(b'|');
    // Under a size limit, EventID gets at most an eighth of it.
    if prefix.len() + kind.len() <= budget.limit / 8 {
        header(prefix, out);
        header(kind, out);
    } else {
        header(
            truncate_chars(&format!("{prefix}{kind}"), budget.limit / 8),
            out,
        );
    }
    out.push(b'|');
    delimiter_field(leef, out);

    // Custom keys: worked out once per page (see `page_keys`); the keys of
    // a line are tracked only when the page's keys may clash.
    page_keys::with(&PAGE_KEYS, ev, &make_key, &[], |cache| {
        let mut attrs = Attributes {
            out,
            delim,
            first: true,
            keys: KeySet::new(),
            track: cache.is_none(),
            budget,
        };
        // Known fields already written, as bits.
        let mut used = 0u32;
        time_and_severity(ev, None, &mut attrs);
        if ev.time.is_some() {
            used |= 1
                << (match ev.app {
                    App::Detect => Known::IncidentStartTime,
                    _ => Known::CreatedTimestamp,
                } as u32);
        }
        for (field, key) in [
            (Known::Id, "externalId"),
            (Known::User, "usrName"),
            (Known::Service, "resource"),
            (Known::ActivityType, "cat"),
            (Known::ObjectType, "objectType"),
            (Known::Message, "msg"),
            (Known::ThreatScore, "threatScore"),
        ] {
            let v = ev.known_text(field);
            if !v.is_empty() {
                let start = attrs.start();
                attrs.pair(key, v);
                attrs.settle(start);
                used |= 1 << field as u32;
            }
        }
        for field in [Known::Host, Known::Hosts] {
            if let Some(v) = ev.known(field).filter(|v| !v.is_empty()) {
                let t = v.text().trim();
                if is_ip(t) {
                    let start = attrs.start();
                    attrs.pair("src", t);
                    attrs.settle(start);
                    used |= 1 << field as u32;
                }
                break;
            }
        }
        if let Some(cache) = cache {
            for e in ev.fields().slots() {
                if used & e.known_bit != 0 || e.text.is_empty() {
                    continue;
                }
                let start = attrs.start();
                attrs.separator();
                // The key and its `=`.
                put(attrs.out, cache.key(e.key_id));
                attrs.value(e.text);
                attrs.settle(start);
            }
        } else {
            custom_keys_one_by_one(ev, used, &mut attrs);
        }
        if attrs.budget.cut {
            attrs.pair(TRUNCATED, "true");
        }
    });
}

/// The custom keys of `ev`, each made unique within the line as it is
/// written (`a b` and `a_b` both make `a_b`: the second is written
/// `cloudsoc_a_b`).
fn custom_keys_one_by_one(ev: &Event, used: u32, attrs: &mut Attributes<'_>) {
    custom_keys_with(ev, attrs, "cloudsoc_", |e| {
        e.known.is_some_and(|k| used & (1 << k as u32) != 0)
    });
}

/// Every field of `ev` but the `mapped` ones under its own name (made a
/// LEEF key), `prefix` put before a name that is predefined or already in
/// the line.
fn custom_keys_with(
    ev: &Event,
    attrs: &mut Attributes<'_>,
    prefix: &str,
    mapped: impl Fn(&crate::event::Entry<'_>) -> bool,
) {
    let mut key = String::with_capacity(64);
    for e in ev.fields().entries() {
        if mapped(&e) || e.val.is_empty() {
            continue;
        }
        key.clear();
        push_custom_key(e.key, &mut key);
        while attrs.keys.contains(attrs.out, key.as_bytes()) || is_predefined(&key) {
            key.insert_str(0, prefix);
        }
        let start = attrs.start();
        attrs.pair(&key, e.val.text());
        attrs.settle(start);
    }
}

thread_local! {
    /// The custom keys of the page being written.
    static PAGE_KEYS: RefCell<PageKeys> = RefCell::new(PageKeys::default());
}

/// A key as the line-by-line way makes it when no other key of the line
/// is the same (the mapped keys are all predefined), and `=`.
fn make_key(name: &str, out: &mut Vec<u8>) -> Made {
    let mut key = String::new();
    push_custom_key(name, &mut key);
    while is_predefined(&key) {
        key.insert_str(0, "cloudsoc_");
    }
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    Made::Compared
}

/// A field name as a LEEF key: letters, digits, `_`, `-`, `.`; others `_`.
pub fn custom_key(field: &str) -> String {
    let mut key = String::new();
    push_custom_key(field, &mut key);
    key
}

fn push_custom_key(field: &str, key: &mut String) {
    for c in field.chars() {
        key.push(
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            },
        );
    }
    if field.is_empty() {
        key.push_str("field");
    }
}

/// Whether `key` is one of LEEF's [`PREDEFINED`] names.
fn is_predefined(key: &str) -> bool {
    static SORTED: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    SORTED
        .get_or_init(|| {
            let mut v = PREDEFINED.to_vec();
            v.sort_unstable();
            v
        })
        .binary_search(&key)
        .is_ok()
}

/// Appends a header field: LEEF has no escapes, so `|` and control
/// characters become a space, `\` is written as it is.
fn header(s: &str, out: &mut Vec<u8>) {
    escape_into_fast(s, out, b"|", |b| match b {
        b'|' | 0..=0x1f | 0x7f => Some(b" "),
        _ => None,
    });
}

/// LEEF's predefined attribute names (QRadar reads them whatever the
/// event); a log field of that name is written as `cloudsoc_<name>`, so
/// that no field can pass for one.
pub const PREDEFINED: &[&str] = &[
    "cat",
    "devTime",
    "devTimeFormat",
    "proto",
    "sev",
    "src",
    "dst",
    "srcPort",
    "dstPort",
    "srcPreNAT",
    "dstPreNAT",
    "srcPostNAT",
    "dstPostNAT",
    "usrName",
    "srcMAC",
    "dstMAC",
    "srcPreNATPort",
    "dstPreNATPort",
    "srcPostNATPort",
    "dstPostNATPort",
    "identSrc",
    "identHostName",
    "identNetBios",
    "identGrpName",
    "identMAC",
    "vSrc",
    "vSrcName",
    "accountName",
    "srcBytes",
    "dstBytes",
    "srcPackets",
    "dstPackets",
    "totalPackets",
    "role",
    "realm",
    "policy",
    "resource",
    "url",
    "groupID",
    "domain",
    "isLoginEvent",
    "isLogoutEvent",
    "identSecondlp",
    "calLanguage",
    "AttributeLimits",
    "calCountryOrRegion",
    "externalId",
    "msg",
    "objectType",
    "threatScore",
    TRUNCATED,
];

/// A Defender for Cloud Apps log: `LEEF:2.0|MCAS|SIEM_Agent|VERSION|<alert
/// type>|`, then `devTime`, `sev`, and the seed agent's fields under LEEF's
/// names where it has them (`externalId`, `msg`, `usrName`, `resource`)
/// and the CEF labels' names otherwise (`riskScore`, `portalURL`,
/// `uniqueServiceAppIds`, `relatedAudits`, `policyIDs`), each only when
/// the log has it; `title` carries the title.
fn write_mcas(ev: &Event, version: &str, leef: Version, out: &mut Vec<u8>, budget: &mut Budget) {
    let c = super::mcas::Content::of(ev);
    let delim = match leef {
        Version::V1 => b'\t',
        Version::V2(d) => d,
    };
    start_line(
        leef,
        "MCAS|SIEM_Agent",
        version,
        &c.signature,
        budget.limit,
        out,
    );
    let mut attrs = Attributes {
        out,
        delim,
        first: true,
        keys: KeySet::new(),
        track: false,
        budget,
    };
    time_and_severity(ev, None, &mut attrs);
    for (key, value) in [
        ("externalId", &c.id),
        ("title", &c.name),
        ("msg", &c.description),
        ("usrName", &c.user),
        ("resource", &c.service),
        ("riskScore", &c.risk_score),
        ("portalURL", &c.portal_url),
        ("uniqueServiceAppIds", &c.service_app_ids),
        ("relatedAudits", &c.related_audits),
        ("policyIDs", &c.policy_ids),
    ] {
        if value.is_empty() || attrs.budget.cut {
            continue;
        }
        let start = attrs.start();
        attrs.pair(key, value);
        attrs.settle(start);
    }
    if attrs.budget.cut {
        attrs.pair(TRUNCATED, "true");
    }
}

/// A Cirrus Identity log entry: `LEEF:2.0|Cirrus Identity|Log
/// API|VERSION|<metrictype>:<metricsubtype>|`, then `devTime`, `sev`,
/// `usrName`=`user`, `src`=`clientip` (when an address),
/// `resource`=`service`, and every other field under its own name.
fn write_cirrus(ev: &Event, version: &str, leef: Version, out: &mut Vec<u8>, budget: &mut Budget) {
    let text = |name: &str| ev.get(name).map(|v| v.text()).unwrap_or("");
    let delim = match leef {
        Version::V1 => b'\t',
        Version::V2(d) => d,
    };
    let rest = ev.app == App::RestLogs;
    let sls = matches!(ev.app, App::SlsShard(_));
    let signature = if sls {
        super::cef::sls_event_class(text("__topic__"), text("__logstore__")).to_string()
    } else if rest {
        ["eventType", "event_type", "type", "action", "category"]
            .into_iter()
            .map(text)
            .find(|t| !t.is_empty())
            .unwrap_or("log")
            .to_string()
    } else {
        format!("{}:{}", text("metrictype"), text("metricsubtype"))
    };
    let vendor = if sls {
        "Alibaba Cloud|Log Service"
    } else if rest {
        "siem-agent|REST API"
    } else {
        "Cirrus Identity|Log API"
    };
    start_line(leef, vendor, version, &signature, budget.limit, out);
    let mut attrs = Attributes {
        out,
        delim,
        first: true,
        keys: KeySet::new(),
        track: true,
        budget,
    };
    time_and_severity(ev, None, &mut attrs);
    let (ip_field, mut mapped) = if sls {
        ("__source__", vec!["__time__"])
    } else {
        ("clientip", vec!["timestamp", "user", "service"])
    };
    let ip = text(ip_field).trim();
    let (user, service) = if sls {
        ("", "")
    } else {
        (text("user"), text("service"))
    };
    for (key, value) in [
        ("usrName", user),
        ("src", if is_ip(ip) { ip } else { "" }),
        ("resource", service),
    ] {
        if !value.is_empty() && !attrs.budget.cut {
            let start = attrs.start();
            attrs.pair(key, value);
            attrs.settle(start);
            if key == "src" {
                mapped.push(ip_field);
            }
        }
    }
    let prefix = if sls {
        "sls_"
    } else if rest {
        "rest_"
    } else {
        "cirrus_"
    };
    custom_keys_with(ev, &mut attrs, prefix, |e| mapped.contains(&e.key));
    if attrs.budget.cut {
        attrs.pair(TRUNCATED, "true");
    }
}

/// A declared API's record as its declaration's `"mapping"` says:
/// `LEEF:V|VENDOR|PRODUCT|VERSION|SIGNATURE|`, then `devTime`, `sev` (the
/// mapped severity, at least 1), `externalId`, the mapped keys under
/// their LEEF names (`usrName`, `src`, ...; a `src` or `dst` that is not an
/// address as `identHostName` or `dhost`), and every field not taken by
/// one as `rest_<name>`.
pub fn write_mapped(
    ev: &Event,
    version: &str,
    leef: Version,
    m: &super::declared::Mapping,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    use super::declared::{Mapping, lookup};
    let delim = match leef {
        Version::V1 => b'\t',
        Version::V2(d) => d,
    };
    let signature = Mapping::first(ev, &m.signature)
        .unwrap_or_else(|| super::cef::rest_signature(ev).to_string());
    let clean = |s: &str| s.replace(|c: char| c == '|' || c.is_control(), " ");
    let vendor = format!("{}|{}", clean(&m.vendor), clean(&m.product));
    start_line(leef, &vendor, version, &signature, budget.limit, out);
    let mut attrs = Attributes {
        out,
        delim,
        first: true,
        keys: KeySet::new(),
        track: true,
        budget,
    };
    time_and_severity(ev, m.severity_of(ev).map(|s| s.max(1)), &mut attrs);
    if let Some(id) = ev.id() {
        let start = attrs.start();
        attrs.pair("externalId", id);
        attrs.settle(start);
    }
    for (cef_key, key, pointer) in &m.keys {
        if attrs.budget.cut {
            break;
        }
        let Some(value) = lookup(ev, pointer) else {
            continue;
        };
        let key = match *cef_key {
            "src" if !is_ip(value.trim()) => "identHostName",
            "dst" if !is_ip(value.trim()) => "dhost",
            _ => key,
        };
        let start = attrs.start();
        attrs.pair(key, value.trim());
        attrs.settle(start);
    }
    custom_keys_with(ev, &mut attrs, "rest_", |e| {
        !e.key.is_empty() && m.takes(e.key)
    });
    if attrs.budget.cut {
        attrs.pair(TRUNCATED, "true");
    }
}

/// `LEEF:V|VENDOR|PRODUCT|VERSION|EVENTID|` and, in LEEF 2.0, the
/// delimiter field; EventID gets at most an eighth of a size limit.
fn start_line(
    leef: Version,
    vendor: &str,
    version: &str,
    event_id: &str,
    limit: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(match leef {
        Version::V1 => b"LEEF:1.0|",
        Version::V2(_) => b"LEEF:2.0|",
    });
    out.extend_from_slice(vendor.as_bytes());
    out.push(b'|');
    header(version, out);
    out.push(b'|');
    header(truncate_chars(event_id, limit / 8), out);
    out.push(b'|');
    delimiter_field(leef, out);
}

/// LEEF 2.0's delimiter field, `xHH|` (none in LEEF 1.0).
fn delimiter_field(leef: Version, out: &mut Vec<u8>) {
    if let Version::V2(d) = leef {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.extend_from_slice(&[
            b'x',
            HEX[usize::from(d >> 4)],
            HEX[usize::from(d & 15)],
            b'|',
        ]);
    }
}

/// `devTime` (with its format) when the log has a time, and `sev`
/// (`severity`, else the log's own).
fn time_and_severity(ev: &Event, severity: Option<u8>, attrs: &mut Attributes<'_>) {
    if let Some(t) = ev.time {
        let start = attrs.start();
        attrs.pair_with("devTime", |out| {
            super::clock::push_iso_seconds(t, out);
            out.push(b'.');
            super::clock::push_padded(t.timestamp_subsec_millis() % 1000, 3, out);
            out.extend_from_slice(b"+0000");
        });
        attrs.pair("devTimeFormat", DEV_TIME_FORMAT);
        attrs.settle(start);
    }
    let start = attrs.start();
    let sev = severity.unwrap_or_else(|| severity_number(ev));
    attrs.pair_with("sev", |out| push_int(u64::from(sev), out));
    attrs.settle(start);
}

struct Attributes<'a> {
    out: &'a mut Vec<u8>,
    delim: u8,
    first: bool,
    keys: KeySet,
    /// Whether `keys` is kept (see `write`).
    track: bool,
    budget: &'a mut Budget,
}

impl Attributes<'_> {
    /// Where the next attribute starts (to undo it): output length, key
    /// count, and whether it is first.
    fn start(&self) -> (usize, usize, bool) {
        (self.out.len(), self.keys.len(), self.first)
    }

    /// Undoes the attributes begun at `start` if they went past the budget.
    fn settle(&mut self, (at, keys, first): (usize, usize, bool)) {
        if !self.budget.fits(self.out, at) {
            self.keys.truncate(keys);
            self.first = first;
        }
    }

    /// The delimiter before an attribute (none before the first).
    fn separator(&mut self) {
        if !self.first {
            self.out.push(self.delim);
        }
        self.first = false;
    }

    /// The delimiter, `key=` (tracked when the line's keys are).
    fn key(&mut self, key: &str) {
        self.separator();
        let start = self.out.len();
        put(self.out, key.as_bytes());
        if self.track {
            self.keys.insert(self.out, start, self.out.len());
        }
        self.out.push(b'=');
    }

    fn pair(&mut self, key: &str, value: &str) {
        self.key(key);
        self.value(value);
    }

    /// An attribute whose value `write` writes in ASCII; the delimiter
    /// and control characters in it become spaces, as in any value.
    fn pair_with(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(key);
        let start = self.out.len();
        write(self.out);
        let delim = self.delim;
        for b in &mut self.out[start..] {
            if *b == delim || *b < 0x20 || *b == 0x7f {
                *b = b' ';
            }
        }
    }

    /// A value, escaped.
    fn value(&mut self, value: &str) {
        escape_value(value, self.delim, self.out);
    }
}

/// An attribute's value: the delimiter and every control character a
/// space (LEEF has no escapes).
pub(super) fn escape_value(value: &str, delim: u8, out: &mut Vec<u8>) {
    escape_into_fast(value, out, &[delim], |b| {
        (b == delim || b < 0x20 || b == 0x7f).then_some(&b" "[..])
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::text::{is_unicode_line_break, is_unsafe_control};
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};
    use std::collections::BTreeMap;

    fn line(app: App, v: Value, leef: Version) -> String {
        let ev = Event::from_log(app, v.as_object().unwrap().clone());
        let mut out = Vec::new();
        write(&ev, "1.0", leef, &mut out, &mut Budget::unlimited());
        String::from_utf8(out).unwrap()
    }

    /// An independent LEEF reader, as the specification (no escapes) and
    /// syslog-ng's parser read it: header fields split on every pipe (5
    /// after `LEEF:1.0`, 6 after `LEEF:2.0` with the delimiter field), then
    /// attributes split on the delimiter, each at its first `=`.
    fn parse(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
        let v2 = line.starts_with("LEEF:2.0|");
        let n = if v2 { 6 } else { 5 };
        let mut header = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while header.len() < n {
            match chars.next().expect("header") {
                '|' => header.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        let rest: String = chars.collect();
        let delim = if v2 {
            let code = &header[5];
            char::from(u8::from_str_radix(&code[1..], 16).unwrap())
        } else {
            '\t'
        };
        let mut attrs = BTreeMap::new();
        for part in rest.split(delim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').expect("k=v");
            assert!(
                attrs.insert(k.to_string(), v.to_string()).is_none(),
                "{k} twice in {line}"
            );
        }
        (header, attrs)
    }

    #[test]
    fn a_page_writes_the_keys_a_log_alone_would() {
        // Logs sharing keys (keys worked out once per page); a field named
        // like a predefined attribute, and one named like its renamed
        // form; two keys that make the same key (written key by key).
        let one = r#"[{"_domain":"a","x y":1,"z":null},{"x y":2,"_domain":"b","w":"u"}]"#;
        let predefined = r#"[{"msg":"a","src":"b"},{"cloudsoc_msg":"c","msg":"d"}]"#;
        let two = r#"[{"q":1},{"a_b":"1","a b":"2"}]"#;
        for page in [one, predefined, two] {
            let events = crate::event::json::log_array(App::Investigate, page.into()).unwrap();
            for ev in &events {
                for leef in [Version::V1, Version::V2(b'^')] {
                    let fields = ev.fields_json();
                    let alone = line(App::Investigate, Value::Object(fields), leef);
                    let mut out = Vec::new();
                    write(ev, "1.0", leef, &mut out, &mut Budget::unlimited());
                    assert_eq!(String::from_utf8(out).unwrap(), alone);
                }
            }
        }
        let events = crate::event::json::log_array(App::Investigate, predefined.into()).unwrap();
        let mut out = Vec::new();
        write(
            &events[1],
            "1.0",
            Version::V1,
            &mut out,
            &mut Budget::unlimited(),
        );
        let (_, a) = parse(&String::from_utf8(out).unwrap());
        assert_eq!(a["cloudsoc_msg"], "c");
        assert_eq!(a["cloudsoc_cloudsoc_msg"], "d");
    }

    #[test]
    fn the_sample_investigate_log_in_leef2() {
        let l = line(
            App::Investigate,
            json!({"_id": "AXk3b9f2", "created_timestamp": "2023-01-01T23:23:59", "severity": "informational",
                   "service": "Box", "user": "jdoe@acme.com", "activity_type": "Share", "object_type": "File",
                   "message": "User shared Q4.xlsx", "host": "203.0.113.7", "_domain": "acme.com", "latitude": "48.85"}),
            Version::V2(b'\t'),
        );
        assert_eq!(
            l,
            "LEEF:2.0|Symantec|CloudSOC|1.0|Investigate:Share|x09|devTime=2023-01-01T23:23:59.000+0000\t\
             devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ\tsev=3\texternalId=AXk3b9f2\tusrName=jdoe@acme.com\t\
             resource=Box\tcat=Share\tobjectType=File\tmsg=User shared Q4.xlsx\tsrc=203.0.113.7\t\
             severity=informational\t_domain=acme.com\tlatitude=48.85"
        );
    }

    #[test]
    fn leef1_and_caret_delimiter() {
        let l = line(
            App::Detect,
            json!({"_id": "d1", "threat_score": 87, "severity": "high", "hosts": "mail.example"}),
            Version::V1,
        );
        assert_eq!(
            l,
            "LEEF:1.0|Symantec|CloudSOC|1.0|Detect:|sev=9\texternalId=d1\tthreatScore=87\tseverity=high\thosts=mail.example"
        );
        let l = line(
            App::Investigate,
            json!({"message": "a^b\tc"}),
            Version::V2(b'^'),
        );
        assert!(l.ends_with("|x5E|sev=5^msg=a b c"), "{l}");
    }

    #[test]
    fn header_fields_take_no_escapes() {
        let l = line(
            App::Investigate,
            json!({"activity_type": "pipe|in|value\\", "message": "m"}),
            Version::V2(b'\t'),
        );
        assert!(
            l.starts_with("LEEF:2.0|Symantec|CloudSOC|1.0|Investigate:pipe in value\\|x09|sev=5\t"),
            "{l}"
        );
        let (h, a) = parse(&l);
        assert_eq!(h[4], "Investigate:pipe in value\\");
        assert_eq!(a["cat"], "pipe|in|value\\");
        assert_eq!(a["msg"], "m");
        let l = line(
            App::Detect,
            json!({"ioi_code": "a\tb\u{2028}c\nd"}),
            Version::V1,
        );
        assert_eq!(parse(&l).0[4], "Detect:a b c d");
    }

    #[test]
    fn no_tab_or_line_end_in_a_value_whatever_the_delimiter() {
        let v = "a\tb\u{b}c\u{c}d\u{85}e\u{2028}f\u{2029}g\r\nh";
        for leef in [Version::V1, Version::V2(b'\t'), Version::V2(b'^')] {
            let (_, a) = parse(&line(App::Investigate, json!({ "message": v }), leef));
            assert_eq!(a["msg"], "a b c d e f g  h", "{leef:?}");
        }
    }

    #[test]
    fn a_field_cannot_forge_a_mapped_key() {
        let (_, a) = parse(&line(
            App::Investigate,
            json!({"severity": "low", "sev": "10", "devTime": "x"}),
            Version::V2(b'\t'),
        ));
        assert_eq!(a["sev"], "3");
        assert_eq!(a["cloudsoc_sev"], "10");
        assert_eq!(a["cloudsoc_devTime"], "x");
        assert!(!a.contains_key("devTime"));
        let (_, a) = parse(&line(
            App::Investigate,
            json!({"host": "not-an-ip", "src": "6.6.6.6"}),
            Version::V1,
        ));
        assert_eq!(a.get("src"), None);
        assert_eq!(a["cloudsoc_src"], "6.6.6.6");
    }

    #[test]
    fn delimiters_parse() {
        assert_eq!(parse_delimiter("x09"), Ok(b'\t'));
        assert_eq!(parse_delimiter("0x5E"), Ok(b'^'));
        assert_eq!(parse_delimiter("^"), Ok(b'^'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        for bad in ["a", "=", "|", "xZZ", "ab", "", " "] {
            assert!(parse_delimiter(bad).is_err(), "{bad}");
        }
    }

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[|=\\\\\"\\]^\t\r\n\u{0}\u{b}\u{c}\u{85}\u{2028}\u{2029} a-zé]{0,30}"
        ]
    }

    proptest! {
        #[test]
        fn any_log_is_one_line_whose_attributes_read_back(
            message in hostile(), user in hostile(), activity in hostile(),
            other in prop::collection::btree_map(".{0,8}", hostile(), 0..6),
            caret in any::<bool>(), v1 in any::<bool>(),
        ) {
            let mut fields = Map::new();
            for (k, v) in other { fields.insert(k, Value::String(v)); }
            fields.insert("message".into(), Value::String(message.clone()));
            fields.insert("user".into(), Value::String(user.clone()));
            fields.insert("activity_type".into(), Value::String(activity.clone()));
            let leef = if v1 { Version::V1 } else { Version::V2(if caret { b'^' } else { b'\t' }) };
            let delim = if let Version::V2(d) = leef { d as char } else { '\t' };
            let l = line(App::Investigate, Value::Object(fields), leef);
            prop_assert!(!l.contains(['\n', '\r', '\0', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}']), "{}", l);
            let (h, a) = parse(&l);
            let blank = |c: char| c == '\t' || is_unsafe_control(c) || is_unicode_line_break(c);
            let clean = |s: &str| -> String { s.chars().map(|c| if c == delim || blank(c) { ' ' } else { c }).collect() };
            let header_clean: String = activity.chars().map(|c| if c == '|' || blank(c) { ' ' } else { c }).collect();
            prop_assert_eq!(&h[4], &format!("Investigate:{header_clean}"));
            prop_assert_eq!(a.get("cat").cloned(), (!activity.is_empty()).then(|| clean(&activity)));
            prop_assert_eq!(a.get("msg").cloned(), (!message.is_empty()).then(|| clean(&message)));
            prop_assert_eq!(a.get("usrName").cloned(), (!user.is_empty()).then(|| clean(&user)));
            prop_assert_eq!(a.get("sev").map(String::as_str), Some("5"));
        }

        #[test]
        fn a_cut_line_keeps_whole_attributes_and_says_so(
            other in prop::collection::btree_map("[a-z]{1,8}", hostile(), 1..12),
            limit in 120usize..900,
        ) {
            let mut fields = Map::new();
            for (k, v) in other { fields.insert(k, Value::String(v)); }
            let ev = Event::from_log(App::Investigate, fields);
            let (mut full, mut cut) = (Vec::new(), Vec::new());
            write(&ev, "1.0", Version::V2(b'^'), &mut full, &mut Budget::unlimited());
            let mut budget = Budget { limit, cut: false };
            write(&ev, "1.0", Version::V2(b'^'), &mut cut, &mut budget);
            let (full, cut) = (String::from_utf8(full).unwrap(), String::from_utf8(cut).unwrap());
            if full.len() <= limit {
                // The encoder keeps such a line whole (it cuts only lines
                // that are too long).
            } else {
                prop_assert!(cut.len() <= limit + TRUNCATED.len() + 6);
                let (_, a_full) = parse(&full);
                let (_, mut a_cut) = parse(&cut);
                prop_assert_eq!(a_cut.remove(TRUNCATED), Some("true".to_string()));
                for (k, v) in &a_cut {
                    prop_assert_eq!(Some(v), a_full.get(k), "{}", k);
                }
            }
        }
    }
}
