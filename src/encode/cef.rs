//! CEF (ArcSight): `CEF:0|Symantec|CloudSOC|VERSION|SIGNATURE|NAME|SEVERITY|EXTENSION`.
//!
//! Header fields escape `\` and `|` (the escapes the CEF specification
//! defines for the header); extension values escape `\`, `=`, LF (`\n`)
//! and CR (`\r`). Any other control character becomes a space: CEF has no
//! escape for it, receivers treat NUL as an end, VT and FF as line ends,
//! and a TAB in a value misleads the parsers that split the extension on
//! whitespace. So do the Unicode line ends NEL, U+2028 and U+2029.
//! Values are cut to ArcSight's lengths before they are escaped, so a cut
//! never splits an escape. The mapped fields are those of formats.md; every
//! other field is kept as a custom key `cloudsoc<FieldName>`.
//!
//! Cut by `--max-message-size`: SignatureID and Name get at most an eighth
//! of the limit each (the message stays whole in `msg` if it fits), the
//! extension keeps its fields in order up to the first that does not fit,
//! and ends with `siemAgentTruncated=true`.

use super::page_keys::{self, Made, PageKeys};
use super::text::{KeySet, escape_into_fast, is_ip, push_int, put, truncate_chars};
use super::{Budget, severity_number};
use crate::event::{App, Event, Known};
use std::cell::RefCell;

/// The key that flags a line cut by `--max-message-size` (custom keys
/// start with `cloudsoc`, so no log field can write it).
pub const TRUNCATED: &[u8] = b"siemAgentTruncated=true";

/// Name: at most 512 characters (CEF).
const NAME_MAX: usize = 512;
/// Long text keys (msg, suser, cs1..cs6, ...): ArcSight's 1023.
const LONG: usize = 1023;
/// Custom keys: kept whole up to this many characters.
const CUSTOM_MAX: usize = 4000;

/// The keys of the CEF dictionary a SIEM reads as the event's own (those
/// this file writes among them): no static field may take one.
pub const STANDARD_KEYS: &[&str] = &[
    "act",
    "app",
    "cat",
    "cnt",
    "cs1",
    "cs1Label",
    "cs2",
    "cs2Label",
    "cs3",
    "cs3Label",
    "cs4",
    "cs4Label",
    "cs5",
    "cs5Label",
    "cs6",
    "cs6Label",
    "cn1",
    "cn1Label",
    "cn2",
    "cn2Label",
    "cn3",
    "cn3Label",
    "deviceCustomDate1",
    "deviceCustomDate2",
    "destinationServiceName",
    "deviceExternalId",
    "deviceProcessName",
    "dhost",
    "dpt",
    "dst",
    "duser",
    "dvc",
    "dvchost",
    "end",
    "externalId",
    "fileHash",
    "filePath",
    "fname",
    "fsize",
    "in",
    "msg",
    "out",
    "outcome",
    "proto",
    "reason",
    "request",
    "requestClientApplication",
    "requestMethod",
    "rt",
    "shost",
    "smac",
    "sntdom",
    "spt",
    "src",
    "start",
    "suid",
    "suser",
    "severity",
    "type",
];

/// A mapped extension key: the log fields it takes (the first present),
/// what is written before its value (the key and `=`, after the label pair
/// for the custom string and number slots), and its limit.
struct Mapping {
    fields: &'static [Known],
    prefix: &'static str,
    max: usize,
}

const fn m(fields: &'static [Known], prefix: &'static str, max: usize) -> Mapping {
    Mapping {
        fields,
        prefix,
        max,
    }
}

/// A custom slot: `cs1Label=objectType cs1=`.
const fn labelled(fields: &'static [Known], prefix: &'static str) -> Mapping {
    m(fields, prefix, LONG)
}

/// In the order they are written (after `rt`); `src` is handled apart.
const MAPPINGS: &[Mapping] = &[
    m(&[Known::Id], "externalId=", 40),
    m(&[Known::User], "suser=", LONG),
    m(&[Known::Service], "destinationServiceName=", LONG),
    m(&[Known::ActivityType], "act=", 63),
    labelled(&[Known::ObjectType], "cs1Label=objectType cs1="),
    m(&[Known::Message], "msg=", LONG),
    labelled(&[Known::ThreatScore], "cn1Label=threatScore cn1="),
    m(&[Known::UserAgent], "requestClientApplication=", LONG),
    m(&[Known::Name], "fname=", LONG),
    m(&[Known::ObjectName], "filePath=", LONG),
    m(&[Known::ObjectUrl], "request=", LONG),
    labelled(&[Known::PolicyType], "cs2Label=policyType cs2="),
    labelled(
        &[Known::Location, Known::Locations],
        "cs3Label=location cs3=",
    ),
    labelled(&[Known::UserName], "cs4Label=userName cs4="),
    labelled(&[Known::IoiCode], "cs5Label=ioiCode cs5="),
];

/// Appends the CEF line for `ev` (no syslog header, no line end). Fields
/// are written whole while they fit `budget`; when one does not, the rest
/// are left out and the line ends with `siemAgentTruncated=true`.
pub fn write(ev: &Event, version: &str, out: &mut Vec<u8>, budget: &mut Budget) {
    let text = |k: Known| ev.known_text(k);
    // SignatureID: the app and its event kind.
    let (prefix, kind) = match ev.app {
        App::Investigate => ("Investigate:", text(Known::ActivityType)),
        App::Detect => ("Detect:", text(Known::IoiCode)),
        App::Alerts | App::Activities => return write_mcas(ev, version, out, budget),
        App::CirrusLogs => return write_cirrus(ev, version, out, budget),
        App::RestLogs => return write_rest(ev, version, out, budget),
        App::SlsShard(_) => return write_sls(ev, version, out, budget),
    };
    let message = text(Known::Message);
    let activity = text(Known::ActivityType);

    out.extend_from_slice(b"CEF:0|Symantec|CloudSOC|");
    write_header_field(version, out);
    out.push(b'|');
    // Under a size limit, the header's free text gets at most an eighth of
    // it each, so that the header stays whole and fields still fit.
    let share = budget.limit / 8;
    let sig_max = LONG.min(share);
    if prefix.len() + kind.len() <= sig_max {
        // Fits whole (no more characters than bytes): no copy needed.
        write_header_field(prefix, out);
        write_header_field(kind, out);
    } else {
        write_header_field(truncate_chars(&format!("{prefix}{kind}"), sig_max), out);
    }
    out.push(b'|');
    let name_max = NAME_MAX.min(share);
    if !message.is_empty() {
        write_header_field(truncate_chars(message, name_max), out);
    } else if !activity.is_empty() {
        write_header_field(truncate_chars(activity, name_max), out);
    } else {
        // The SignatureID again.
        let signature = format!("{prefix}{kind}");
        write_header_field(truncate_chars(&signature, name_max), out);
    }
    out.push(b'|');
    push_int(u64::from(severity_number(ev)), out);
    out.push(b'|');

    let mut ext = Extension {
        out,
        first: true,
        budget,
    };
    // Known fields already written, as bits.
    let mut used = 0u32;
    if let Some(t) = ev.time {
        ext.millis("rt=", t);
        used |= 1
            << (match ev.app {
                App::Detect => Known::IncidentStartTime,
                _ => Known::CreatedTimestamp,
            } as u32);
    }
    for mp in MAPPINGS {
        let Some((field, value)) = mp
            .fields
            .iter()
            .map(|&f| (f, ev.known_text(f)))
            .find(|(_, v)| !v.is_empty())
        else {
            continue;
        };
        used |= 1 << field as u32;
        let start = ext.start();
        ext.separator();
        put(ext.out, mp.prefix.as_bytes());
        ext.escaped(value, mp.max);
        ext.settle(start);
    }
    for field in [Known::Host, Known::Hosts] {
        if let Some(v) = ev.known(field).filter(|v| !v.is_empty()) {
            let t = v.text().trim();
            let key = if is_ip(t) { "src" } else { "shost" };
            let start = ext.start();
            ext.pair(key, t, LONG);
            ext.settle(start);
            used |= 1 << field as u32;
            break;
        }
    }
    // Custom keys: worked out once per page (see `page_keys`).
    let done = page_keys::with(&PAGE_KEYS, ev, &make_key, &[], |cache| {
        let Some(cache) = cache else {
            return false;
        };
        for e in ev.fields().slots() {
            if ext.budget.cut {
                break;
            }
            if used & e.known_bit != 0 || e.text.is_empty() {
                continue;
            }
            let before = ext.start();
            ext.separator();
            // The key and its `=`.
            put(ext.out, cache.key(e.key_id));
            ext.escaped(e.text, CUSTOM_MAX);
            ext.settle(before);
        }
        true
    });
    if !done {
        custom_keys_one_by_one(ev, used, &mut ext);
    }
    if ext.budget.cut {
        ext.separator();
        ext.out.extend_from_slice(TRUNCATED);
    }
}

/// A Defender for Cloud Apps log as its SIEM agent wrote it (seed 002):
/// `CEF:0|MCAS|SIEM_Agent|VERSION|<alert type>|<title>|<severity>`, then
/// `externalId`, `rt`, `start`, `end`, `msg`, `suser`,
/// `destinationServiceName`, `cn1Label=riskScore`, `cs1Label=portalURL`,
/// `cs2Label=uniqueServiceAppIds`, `cs3Label=relatedAudits`,
/// `cs4Label=policyIDs`, each only when the log has it. (JSON and
/// key=value carry every field.)
fn write_mcas(ev: &Event, version: &str, out: &mut Vec<u8>, budget: &mut Budget) {
    let c = super::mcas::Content::of(ev);
    let header = Header {
        vendor: b"MCAS|SIEM_Agent",
        signature: &c.signature,
        name: &c.name,
    };
    header.write(ev, version, budget.limit, out);
    let mut ext = Extension {
        out,
        first: true,
        budget,
    };
    let field = |ext: &mut Extension<'_>, prefix: &str, value: &str, max: usize| {
        if value.is_empty() || ext.budget.cut {
            return;
        }
        let start = ext.start();
        ext.separator();
        put(ext.out, prefix.as_bytes());
        ext.escaped(value, max);
        ext.settle(start);
    };
    field(&mut ext, "externalId=", &c.id, 40);
    if let Some(t) = ev.time {
        for key in ["rt=", "start=", "end="] {
            ext.millis(key, t);
        }
    }
    field(&mut ext, "msg=", &c.description, LONG);
    field(&mut ext, "suser=", &c.user, LONG);
    field(&mut ext, "destinationServiceName=", &c.service, LONG);
    // cn1 is a number in CEF: a score that is not one is left out.
    if c.risk_score.trim().parse::<f64>().is_ok_and(f64::is_finite) {
        field(&mut ext, "cn1Label=riskScore cn1=", c.risk_score.trim(), 40);
    }
    field(&mut ext, "cs1Label=portalURL cs1=", &c.portal_url, LONG);
    field(
        &mut ext,
        "cs2Label=uniqueServiceAppIds cs2=",
        &c.service_app_ids,
        LONG,
    );
    field(
        &mut ext,
        "cs3Label=relatedAudits cs3=",
        &c.related_audits,
        LONG,
    );
    field(&mut ext, "cs4Label=policyIDs cs4=", &c.policy_ids, LONG);
    if ext.budget.cut {
        ext.separator();
        ext.out.extend_from_slice(TRUNCATED);
    }
}

/// A Cirrus Identity log entry: `CEF:0|Cirrus Identity|Log
/// API|VERSION|<metrictype>:<metricsubtype>|<name>|5|`, then `rt` from
/// `timestamp`, `suser`=`user`, `src`=`clientip` (`shost` when it is not
/// an address), `destinationServiceName`=`service`, and every other field
/// as a custom key `cirrus<FieldName>`.
fn write_cirrus(ev: &Event, version: &str, out: &mut Vec<u8>, budget: &mut Budget) {
    let text = |name: &str| ev.get(name).map(|v| v.text()).unwrap_or("");
    let signature = format!("{}:{}", text("metrictype"), text("metricsubtype"));
    let fields = Declared {
        vendor: b"Cirrus Identity|Log API",
        prefix: b"cirrus",
        id: None,
        user: "user",
        ip: "clientip",
        service: "service",
        time: "timestamp",
    };
    write_declared(ev, version, &signature, &fields, out, budget);
}

/// A record of a REST API declared in config.json: `CEF:0|siem-agent|REST
/// API|VERSION|<eventType>|<message>|5|`, then `rt` from its time,
/// `externalId` from its id, and every field as a custom key
/// `rest<FieldName>` (nested objects as compact JSON).
/// A declared API's record's event class without a mapping: the first of
/// its usual fields that it has.
pub(super) fn rest_signature(ev: &Event) -> &str {
    let text = |name: &str| ev.get(name).map(|v| v.text()).unwrap_or("");
    ["eventType", "event_type", "type", "action", "category"]
        .into_iter()
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or("log")
}

/// A declared API's record's name without a mapping: its message.
pub(super) fn rest_name<'a>(ev: &'a Event, signature: &'a str) -> &'a str {
    let text = |name: &str| ev.get(name).map(|v| v.text()).unwrap_or("");
    ["message", "displayMessage", "description"]
        .into_iter()
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or(signature)
}

/// A declared API's record as its declaration's `"mapping"` says:
/// `CEF:0|VENDOR|PRODUCT|VERSION|SIGNATURE|NAME|SEVERITY|`, then `rt`,
/// `externalId`, the mapped keys in their declared order (`src` or `dst`
/// that is not an address as `shost` or `dhost`), and every field not
/// taken by one as a custom key `rest<FieldName>`.
pub fn write_mapped(
    ev: &Event,
    version: &str,
    m: &super::declared::Mapping,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    use super::declared::{Mapping, lookup};
    let signature =
        Mapping::first(ev, &m.signature).unwrap_or_else(|| rest_signature(ev).to_string());
    let name = Mapping::first(ev, &m.name).unwrap_or_else(|| rest_name(ev, &signature).to_string());
    out.extend_from_slice(b"CEF:0|");
    write_header_field(&m.vendor, out);
    out.push(b'|');
    write_header_field(&m.product, out);
    out.push(b'|');
    write_header_field(version, out);
    out.push(b'|');
    let share = budget.limit / 8;
    write_header_field(truncate_chars(&signature, LONG.min(share)), out);
    out.push(b'|');
    write_header_field(truncate_chars(&name, NAME_MAX.min(share)), out);
    out.push(b'|');
    push_int(
        u64::from(m.severity_of(ev).unwrap_or_else(|| severity_number(ev))),
        out,
    );
    out.push(b'|');
    let mut ext = Extension {
        out,
        first: true,
        budget,
    };
    if let Some(t) = ev.time {
        ext.millis("rt=", t);
    }
    if let Some(id) = ev.id() {
        let start = ext.start();
        ext.pair("externalId", id, LONG);
        ext.settle(start);
    }
    for (key, _, pointer) in &m.keys {
        if ext.budget.cut {
            break;
        }
        let Some(value) = lookup(ev, pointer) else {
            continue;
        };
        let key = match *key {
            "src" if !is_ip(value.trim()) => "shost",
            "dst" if !is_ip(value.trim()) => "dhost",
            k => k,
        };
        let start = ext.start();
        ext.pair(key, value.trim(), LONG);
        ext.settle(start);
    }
    custom_keys_with(ev, &mut ext, b"rest", |e| {
        !e.key.is_empty() && m.takes(e.key)
    });
    if ext.budget.cut {
        ext.separator();
        ext.out.extend_from_slice(TRUNCATED);
    }
}

fn write_rest(ev: &Event, version: &str, out: &mut Vec<u8>, budget: &mut Budget) {
    let signature = rest_signature(ev).to_string();
    let fields = Declared {
        vendor: b"siem-agent|REST API",
        prefix: b"rest",
        id: ev.id(),
        user: "",
        ip: "",
        service: "",
        time: "",
    };
    write_declared(ev, version, &signature, &fields, out, budget);
}

/// A Log Service log: `CEF:0|Alibaba Cloud|Log Service|VERSION|<topic or
/// logstore>|<message>|5|`, then `rt` from `__time__`, `src` (an address)
/// or `shost` from `__source__`, and every other field as a custom key
/// `sls<FieldName>`.
fn write_sls(ev: &Event, version: &str, out: &mut Vec<u8>, budget: &mut Budget) {
    let text = |name: &str| ev.get(name).map(|v| v.text()).unwrap_or("");
    let signature = sls_event_class(text("__topic__"), text("__logstore__"));
    let fields = Declared {
        vendor: b"Alibaba Cloud|Log Service",
        prefix: b"sls",
        id: None,
        user: "",
        ip: "__source__",
        service: "",
        time: "__time__",
    };
    write_declared(ev, version, signature, &fields, out, budget);
}

/// A Log Service log's event class: its topic, else its Logstore.
pub(super) fn sls_event_class<'a>(topic: &'a str, logstore: &'a str) -> &'a str {
    [topic, logstore]
        .into_iter()
        .find(|t| !t.trim().is_empty())
        .unwrap_or("log")
}

/// The header of a vendor with a mapping of its own:
/// `CEF:0|VENDOR|PRODUCT|VERSION|SIGNATURE|NAME|SEVERITY|`, SignatureID and
/// Name cut to an eighth of a size limit each.
struct Header<'a> {
    vendor: &'static [u8],
    signature: &'a str,
    name: &'a str,
}

impl Header<'_> {
    fn write(&self, ev: &Event, version: &str, limit: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(b"CEF:0|");
        out.extend_from_slice(self.vendor);
        out.push(b'|');
        write_header_field(version, out);
        out.push(b'|');
        let share = limit / 8;
        write_header_field(truncate_chars(self.signature, LONG.min(share)), out);
        out.push(b'|');
        write_header_field(truncate_chars(self.name, NAME_MAX.min(share)), out);
        out.push(b'|');
        push_int(u64::from(severity_number(ev)), out);
        out.push(b'|');
    }
}

/// What a vendor without a mapping of its own writes where.
struct Declared<'a> {
    /// `VENDOR|PRODUCT` of the header.
    vendor: &'static [u8],
    prefix: &'static [u8],
    id: Option<&'a str>,
    /// The fields for `suser`, `src`, `destinationServiceName` and `rt`
    /// (written once, not again as custom keys); empty: none.
    user: &'static str,
    ip: &'static str,
    service: &'static str,
    time: &'static str,
}

fn write_declared(
    ev: &Event,
    version: &str,
    signature: &str,
    d: &Declared<'_>,
    out: &mut Vec<u8>,
    budget: &mut Budget,
) {
    let text = |name: &str| {
        if name.is_empty() {
            ""
        } else {
            ev.get(name).map(|v| v.text()).unwrap_or("")
        }
    };
    let name = ["message", "displayMessage", "description"]
        .into_iter()
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or(signature);
    let header = Header {
        vendor: d.vendor,
        signature,
        name,
    };
    header.write(ev, version, budget.limit, out);
    let mut ext = Extension {
        out,
        first: true,
        budget,
    };
    if let Some(t) = ev.time {
        ext.millis("rt=", t);
    }
    let ip = text(d.ip).trim();
    for (key, value) in [
        ("externalId", d.id.unwrap_or("")),
        ("suser", text(d.user)),
        (if is_ip(ip) { "src" } else { "shost" }, ip),
        ("destinationServiceName", text(d.service)),
    ] {
        if !value.is_empty() && !ext.budget.cut {
            let start = ext.start();
            ext.pair(key, value, LONG);
            ext.settle(start);
        }
    }
    let mapped = [d.time, d.user, d.ip, d.service];
    custom_keys_with(ev, &mut ext, d.prefix, |e| {
        !e.key.is_empty() && mapped.contains(&e.key)
    });
    if ext.budget.cut {
        ext.separator();
        ext.out.extend_from_slice(TRUNCATED);
    }
}

thread_local! {
    /// The custom keys of the page being written.
    static PAGE_KEYS: RefCell<PageKeys> = RefCell::new(PageKeys::default());
}

/// A key's custom key and `=`. A key with no letter or digit makes none of
/// its own (its place in the log names it): the page is written key by
/// key.
fn make_key(name: &str, out: &mut Vec<u8>) -> Made {
    push_custom_key(name, 0, out);
    out.push(b'=');
    if name.bytes().any(|b| b.is_ascii_alphanumeric()) {
        Made::Compared
    } else {
        Made::Clash
    }
}

/// The custom keys of `ev`, each made unique within the line as it is
/// written (`a_b` and `a-b` both make `cloudsocAB`: the second is written
/// `cloudsocAB2`).
fn custom_keys_one_by_one(ev: &Event, used: u32, ext: &mut Extension<'_>) {
    custom_keys_with(ev, ext, b"cloudsoc", |e| {
        e.known.is_some_and(|k| used & (1 << k as u32) != 0)
    });
}

/// Every field of `ev` but the `mapped` ones as a custom key `prefix` +
/// its name in CamelCase, each made unique within the line.
fn custom_keys_with(
    ev: &Event,
    ext: &mut Extension<'_>,
    prefix: &[u8],
    mapped: impl Fn(&crate::event::Entry<'_>) -> bool,
) {
    // Custom keys are written straight into the output; the ones written
    // so far serve to spot a collision (`a_b` and `a-b`).
    let mut written = KeySet::new();
    for (i, e) in ev.fields().entries().enumerate() {
        if ext.budget.cut {
            break; // nothing more is kept (and `written` may be stale)
        }
        if mapped(&e) || e.val.is_empty() {
            continue;
        }
        let before = ext.start();
        ext.separator();
        let start = ext.out.len();
        push_custom_key_of(prefix, e.key, i, ext.out);
        let base_end = ext.out.len();
        let mut n = 2;
        while written.contains(ext.out, &ext.out[start..]) {
            ext.out.truncate(base_end);
            push_int(n, ext.out);
            n += 1;
        }
        written.insert(ext.out, start, ext.out.len());
        ext.value(e.val.text(), CUSTOM_MAX);
        ext.settle(before);
    }
}

/// `cloudsoc` and the field name in CamelCase, ASCII letters and digits
/// only: `_domain` -> `cloudsocDomain`, `user-agent` -> `cloudsocUserAgent`;
/// `cloudsocField<index>` when nothing of the name is left.
pub fn custom_key(field: &str, index: usize) -> String {
    let mut out = Vec::new();
    push_custom_key(field, index, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn push_custom_key(field: &str, index: usize, out: &mut Vec<u8>) {
    push_custom_key_of(b"cloudsoc", field, index, out);
}

/// [`push_custom_key`] with a vendor's prefix (`cirrus`).
fn push_custom_key_of(prefix: &[u8], field: &str, index: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    let start = out.len();
    // Each run of letters and digits, its first letter upper-cased.
    for run in field
        .as_bytes()
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|r| !r.is_empty())
    {
        out.push(run[0].to_ascii_uppercase());
        out.extend_from_slice(&run[1..]);
    }
    if out.len() == start {
        out.extend_from_slice(b"Field");
        push_int(index as u64, out);
    }
}

/// Escapes a header field: `\\` and `|` escaped, control characters as
/// spaces (CEF's rules; LEEF's header follows them too).
pub fn write_header_field(s: &str, out: &mut Vec<u8>) {
    escape_into_fast(s, out, b"\\|", |b| match b {
        b'\\' => Some(b"\\\\"),
        b'|' => Some(b"\\|"),
        0..=0x1f | 0x7f => Some(b" "),
        _ => None,
    });
}

struct Extension<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    budget: &'a mut Budget,
}

impl Extension<'_> {
    /// Where the next field starts (to undo it), and whether it is first.
    fn start(&self) -> (usize, bool) {
        (self.out.len(), self.first)
    }

    /// Undoes the field begun at `start` if it went past the budget.
    fn settle(&mut self, (at, first): (usize, bool)) {
        if !self.budget.fits(self.out, at) {
            self.first = first;
        }
    }

    /// `key` (with its `=`) and `t` in epoch milliseconds.
    fn millis(&mut self, key: &str, t: chrono::DateTime<chrono::Utc>) {
        let start = self.start();
        self.separator();
        put(self.out, key.as_bytes());
        super::clock::push_epoch_millis(t, self.out);
        self.settle(start);
    }

    fn pair(&mut self, key: &str, value: &str, max: usize) {
        self.separator();
        put(self.out, key.as_bytes());
        self.value(value, max);
    }

    /// The space before a key (none before the first).
    fn separator(&mut self) {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
    }

    /// `=` and the escaped value, cut to `max` characters.
    fn value(&mut self, value: &str, max: usize) {
        self.out.push(b'=');
        self.escaped(value, max);
    }

    /// The escaped value, cut to `max` characters.
    fn escaped(&mut self, value: &str, max: usize) {
        escape_value(truncate_chars(value, max), self.out);
    }
}

/// An extension value, escaped: `\\`, `=`, LF and CR escaped, every other
/// control character a space.
#[inline]
pub(super) fn escape_value(value: &str, out: &mut Vec<u8>) {
    escape_into_fast(value, out, b"\\=", |b| match b {
        b'\\' => Some(b"\\\\"),
        b'=' => Some(b"\\="),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        0..=0x1f | 0x7f => Some(b" "),
        _ => None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::text::{is_unicode_line_break, is_unsafe_control};
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};
    use std::collections::BTreeMap;

    fn is_empty(v: &Value) -> bool {
        matches!(v, Value::Null) || matches!(v, Value::String(s) if s.is_empty())
    }

    fn value_text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    fn line(app: App, v: Value) -> String {
        let ev = Event::from_log(app, v.as_object().unwrap().clone());
        let mut out = Vec::new();
        write(&ev, "1.0", &mut out, &mut Budget::unlimited());
        String::from_utf8(out).unwrap()
    }

    /// An independent reader of CEF, from the rules: the header is split on
    /// unescaped pipes; the extension on spaces that precede `key=`.
    fn parse(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
        let mut header = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars().peekable();
        while header.len() < 7 {
            let c = chars.next().expect("7 header fields");
            match c {
                '\\' => cur.push(chars.next().expect("escaped char")),
                '|' => header.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        let rest: String = chars.collect();
        let mut ext = BTreeMap::new();
        // Split on " key=" where key is alphanumeric and '=' unescaped.
        let bytes: Vec<char> = rest.chars().collect();
        let mut starts = vec![];
        let mut i = 0;
        while i < bytes.len() {
            if i == 0 || bytes[i - 1] == ' ' {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                if j > i && j < bytes.len() && bytes[j] == '=' {
                    starts.push((i, j));
                }
            }
            if bytes[i] == '\\' {
                i += 1;
            }
            i += 1;
        }
        for (n, &(ks, eq)) in starts.iter().enumerate() {
            let end = starts
                .get(n + 1)
                .map(|&(s, _)| s - 1)
                .unwrap_or(bytes.len());
            let key: String = bytes[ks..eq].iter().collect();
            let mut val = String::new();
            let mut k = eq + 1;
            while k < end {
                if bytes[k] == '\\' && k + 1 < end {
                    val.push(match bytes[k + 1] {
                        'n' => '\n',
                        'r' => '\r',
                        c => c,
                    });
                    k += 2;
                } else {
                    val.push(bytes[k]);
                    k += 1;
                }
            }
            assert!(
                ext.insert(key.clone(), val).is_none(),
                "key {key} twice in {line}"
            );
        }
        (header, ext)
    }

    #[test]
    fn the_sample_investigate_log() {
        let l = line(
            App::Investigate,
            json!({"_id": "AXk3b9f2", "created_timestamp": "2023-01-01T23:23:59",
                "inserted_timestamp": "2023-01-01T23:24:41", "_latency": 42,
                "severity": "informational", "service": "Box", "user": "jdoe@acme.com",
                "user_name": "John Doe", "_domain": "acme.com", "activity_type": "Share",
                "object_type": "File", "name": "Q4.xlsx", "object_name": "/Finance/Q4.xlsx",
                "object_url": "https://app.box.com/f/1", "message": "User shared Q4.xlsx",
                "source": "API", "host": "203.0.113.7", "location": "Paris (France)",
                "city": "Paris", "country": "France", "latitude": "48.85",
                "longitude": "2.35", "browser": "Chrome", "device": "Windows 10",
                "user-agent": "Mozilla/5.0", "transaction_id": "t-1", "policy_type": "DLP"}),
        );
        assert_eq!(
            l,
            "CEF:0|Symantec|CloudSOC|1.0|Investigate:Share|User shared Q4.xlsx|3|rt=1672615439000 \
             externalId=AXk3b9f2 suser=jdoe@acme.com destinationServiceName=Box act=Share \
             cs1Label=objectType cs1=File msg=User shared Q4.xlsx requestClientApplication=Mozilla/5.0 \
             fname=Q4.xlsx filePath=/Finance/Q4.xlsx request=https://app.box.com/f/1 \
             cs2Label=policyType cs2=DLP cs3Label=location cs3=Paris (France) cs4Label=userName \
             cs4=John Doe src=203.0.113.7 cloudsocInsertedTimestamp=2023-01-01T23:24:41 cloudsocLatency=42 \
             cloudsocSeverity=informational cloudsocDomain=acme.com cloudsocSource=API cloudsocCity=Paris \
             cloudsocCountry=France cloudsocLatitude=48.85 cloudsocLongitude=2.35 cloudsocBrowser=Chrome \
             cloudsocDevice=Windows 10 cloudsocTransactionId=t-1"
        );
    }

    #[test]
    fn the_sample_detect_log() {
        let l = line(
            App::Detect,
            json!({"_id": "5f1c0a", "from_detect": 1, "incident_start_time": "2023-01-02T23:23:59",
                "severity": "high", "threat_score": 87, "ioi_code": "TOO_MANY_DOWNLOADS",
                "message": "Anomalous download volume", "user": "jdoe@acme.com",
                "service": "Office 365", "hosts": "198.51.100.4", "browsers": ["Chrome"]}),
        );
        assert_eq!(
            l,
            "CEF:0|Symantec|CloudSOC|1.0|Detect:TOO_MANY_DOWNLOADS|Anomalous download volume|9|rt=1672701839000 \
             externalId=5f1c0a suser=jdoe@acme.com destinationServiceName=Office 365 msg=Anomalous download volume \
             cn1Label=threatScore cn1=87 cs5Label=ioiCode cs5=TOO_MANY_DOWNLOADS src=198.51.100.4 \
             cloudsocFromDetect=1 cloudsocSeverity=high cloudsocBrowsers=[\"Chrome\"]"
        );
    }

    #[test]
    fn escaping_follows_the_reference_example() {
        // formats.md: CEF:0|Ven\|dor|Prod\\uct|1.0|100|a=b\|c|7|cs1=k\=v msg=a\=b\\c\nd
        let mut out = Vec::new();
        write_header_field("a=b|c", &mut out);
        assert_eq!(out, b"a=b\\|c");
        let mut out = Vec::new();
        let mut budget = Budget::unlimited();
        let mut e = Extension {
            out: &mut out,
            first: true,
            budget: &mut budget,
        };
        e.pair("cs1", "k=v", LONG);
        e.pair("msg", "a=b\\c\nd", LONG);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cs1=k\\=v msg=a\\=b\\\\c\\nd"
        );
    }

    #[test]
    fn tabs_and_other_line_ends_become_spaces() {
        let v = "a\tb\u{b}c\u{c}d\u{85}e\u{2028}f\u{2029}g\r\nh";
        let l = line(
            App::Investigate,
            json!({"activity_type": v, "message": v, "other": v}),
        );
        let (h, e) = parse(&l);
        assert_eq!(h[4], "Investigate:a b c d e f g  h");
        assert_eq!(h[5], "a b c d e f g  h");
        assert_eq!(e["msg"], "a b c d e f g\r\nh");
        assert_eq!(e["cloudsocOther"], "a b c d e f g\r\nh");
        assert!(l.contains(" msg=a b c d e f g\\r\\nh "), "{l}");
    }

    #[test]
    fn severities_src_and_limits() {
        let l = line(
            App::Investigate,
            json!({"severity": "Critical", "host": "mail.example.com", "_id": "x".repeat(50), "activity_type": "a".repeat(70)}),
        );
        let (h, e) = parse(&l);
        assert_eq!(h[6], "10");
        assert_eq!(e["shost"], "mail.example.com");
        assert!(!e.contains_key("src"));
        assert_eq!(e["externalId"], "x".repeat(40));
        assert_eq!(e["act"], "a".repeat(63));
        for (s, n) in [
            ("warning", "5"),
            ("error", "7"),
            ("low", "3"),
            ("medium", "6"),
            ("weird", "5"),
        ] {
            assert_eq!(
                parse(&line(App::Investigate, json!({"severity": s}))).0[6],
                n
            );
        }
        assert_eq!(
            parse(&line(App::Investigate, json!({"host": "2001:db8::1"}))).1["src"],
            "2001:db8::1"
        );
    }

    #[test]
    fn a_cut_never_splits_an_escape_or_a_character() {
        let v = format!("{}\\", "é".repeat(39));
        let (_, e) = parse(&line(App::Investigate, json!({"_id": v})));
        assert_eq!(e["externalId"], format!("{}\\", "é".repeat(39)));
        let v = format!("{}=", "é".repeat(40));
        let (_, e) = parse(&line(App::Investigate, json!({"_id": v})));
        assert_eq!(e["externalId"], "é".repeat(40));
    }

    #[test]
    fn missing_fields_and_odd_types() {
        let l = line(App::Investigate, json!({}));
        assert_eq!(
            l,
            "CEF:0|Symantec|CloudSOC|1.0|Investigate:|Investigate:|5|"
        );
        let (h, e) = parse(&line(
            App::Detect,
            json!({"message": null, "user": 12, "object_type": ["a", "b"], "": "x", "é": "y"}),
        ));
        assert_eq!(h[4], "Detect:");
        assert_eq!(e["suser"], "12");
        assert_eq!(e["cs1"], "[\"a\",\"b\"]");
        assert_eq!(e["cloudsocField3"], "x");
        assert_eq!(e["cloudsocField4"], "y");
    }

    #[test]
    fn a_page_writes_the_custom_keys_a_log_alone_would() {
        // A page whose logs share keys (custom keys worked out once); one
        // with a key that has no letter or digit, and one with two keys
        // that make the same custom key (both written key by key).
        let one = r#"[{"_domain":"a","x-y":1,"z":null},{"x-y":2,"_domain":"b","w":"u"}]"#;
        let odd = r#"[{"_domain":"a","__":1},{"x":2}]"#;
        let two = r#"[{"q":1},{"a_b":"1","a-b":"2"}]"#;
        for page in [one, odd, two] {
            let events = crate::event::json::log_array(App::Investigate, page.into()).unwrap();
            for ev in &events {
                let fields = ev.fields_json();
                let alone = line(App::Investigate, Value::Object(fields));
                let mut out = Vec::new();
                write(ev, "1.0", &mut out, &mut Budget::unlimited());
                assert_eq!(String::from_utf8(out).unwrap(), alone);
            }
        }
        let events = crate::event::json::log_array(App::Investigate, two.into()).unwrap();
        let mut out = Vec::new();
        write(&events[1], "1.0", &mut out, &mut Budget::unlimited());
        let (_, e) = parse(&String::from_utf8(out).unwrap());
        assert_eq!(
            (e["cloudsocAB"].as_str(), e["cloudsocAB2"].as_str()),
            ("1", "2")
        );
    }

    #[test]
    fn custom_keys() {
        assert_eq!(custom_key("_domain", 0), "cloudsocDomain");
        assert_eq!(
            custom_key("inserted_timestamp", 0),
            "cloudsocInsertedTimestamp"
        );
        assert_eq!(custom_key("a--b", 0), "cloudsocAB");
        assert_eq!(custom_key("__", 7), "cloudsocField7");
        let (_, e) = parse(&line(App::Investigate, json!({"a_b": "1", "a-b": "2"})));
        assert_eq!(
            (e["cloudsocAB"].as_str(), e["cloudsocAB2"].as_str()),
            ("1", "2")
        );
    }

    /// The length of the header: through the 7th unescaped pipe.
    fn header_len(line: &str) -> usize {
        let (mut pipes, mut escaped) = (0, false);
        for (i, b) in line.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'|' => {
                    pipes += 1;
                    if pipes == 7 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        }
        line.len()
    }

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[|=\\\\\"\\]^\t\r\n\u{0}\u{1}\u{b}\u{c}\u{7f}\u{85}\u{2028}\u{2029} a-zé😀]{0,40}",
            Just("x\nCEF:0|Evil|Forged|1|1|forged|10|msg=pwned".to_string()),
            ".{1000,1100}",
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => hostile().prop_map(Value::String),
            1 => Just(Value::Null),
            1 => any::<i64>().prop_map(Value::from),
            1 => prop::collection::vec(hostile().prop_map(Value::String), 0..3).prop_map(Value::Array),
            1 => prop::collection::btree_map("[a-z]{1,4}", hostile().prop_map(Value::String), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    const KNOWN: &[&str] = &[
        "_id",
        "user",
        "message",
        "activity_type",
        "service",
        "object_type",
        "ioi_code",
        "severity",
        "host",
        "created_timestamp",
        "policy_type",
    ];

    proptest! {
        #[test]
        fn any_log_is_one_well_formed_line(
            known in prop::collection::btree_map(prop::sample::select(KNOWN), arb_value(), 0..10),
            other in prop::collection::btree_map(".{0,10}", arb_value(), 0..5),
            detect in any::<bool>(),
        ) {
            let mut fields = Map::new();
            for (k, v) in other { fields.insert(k, v); }
            for (k, v) in &known { fields.insert(k.to_string(), v.clone()); }
            let app = if detect { App::Detect } else { App::Investigate };
            let l = line(app, Value::Object(fields.clone()));
            prop_assert!(!l.contains(['\n', '\r', '\0', '\t', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}']), "{}", l);
            let (h, e) = parse(&l);
            prop_assert_eq!(h.len(), 7);
            prop_assert!(h[6].parse::<u8>().unwrap() <= 10);
            // The mapped text fields come back as sent, up to the limit and
            // the documented replacement of control characters.
            let expect = |name: &str, max: usize| -> Option<String> {
                let v = fields.get(name)?;
                if is_empty(v) { return None; }
                let t = value_text(v);
                let blank = |c: char| c == '\t' || is_unicode_line_break(c) || (is_unsafe_control(c) && c != '\n' && c != '\r');
                Some(truncate_chars(&t, max).chars().map(|c| if blank(c) { ' ' } else { c }).collect())
            };
            prop_assert_eq!(e.get("msg").cloned(), expect("message", LONG));
            prop_assert_eq!(e.get("suser").cloned(), expect("user", LONG));
            prop_assert_eq!(e.get("externalId").cloned(), expect("_id", 40));
            if app == App::Investigate {
                prop_assert_eq!(e.get("act").cloned(), expect("activity_type", 63));
            }
        }

        #[test]
        fn a_cut_line_keeps_whole_fields_and_says_so(
            other in prop::collection::btree_map("[a-z]{1,8}", hostile(), 1..12),
            message in hostile(),
            limit in 80usize..900,
        ) {
            let mut fields = Map::new();
            fields.insert("message".into(), Value::String(message));
            for (k, v) in other { fields.insert(k, Value::String(v)); }
            let ev = Event::from_log(App::Investigate, fields);
            let (mut full, mut cut) = (Vec::new(), Vec::new());
            write(&ev, "1.0", &mut full, &mut Budget::unlimited());
            let mut budget = Budget { limit, cut: false };
            write(&ev, "1.0", &mut cut, &mut budget);
            let (full, cut) = (String::from_utf8(full).unwrap(), String::from_utf8(cut).unwrap());
            if full.len() <= limit {
                // The encoder keeps such a line whole (it cuts only lines
                // that are too long).
            } else if !budget.cut {
                // Only the header's name was shortened; every field is whole.
                prop_assert!(cut.len() <= limit);
                prop_assert_eq!(parse(&cut).1, parse(&full).1);
            } else {
                let (h_full, e_full) = parse(&full);
                let (h_cut, mut e_cut) = parse(&cut);
                // Under a limit, signature and name may be shortened.
                prop_assert_eq!(&h_cut[..4], &h_full[..4]);
                prop_assert!(h_full[4].starts_with(&h_cut[4]) && h_full[5].starts_with(&h_cut[5]));
                prop_assert_eq!(&h_cut[6], &h_full[6]);
                prop_assert_eq!(e_cut.remove("siemAgentTruncated"), Some("true".to_string()));
                let header_end = header_len(&full);
                prop_assert!(cut.len() <= limit.max(header_end) + TRUNCATED.len() + 1, "{} > {}", cut.len(), limit);
                for (k, v) in &e_cut {
                    prop_assert_eq!(Some(v), e_full.get(k), "{}", k);
                }
            }
        }
    }
}
