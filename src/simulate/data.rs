//! Deterministic synthetic CloudSOC logs. Log `i` of an app is a pure
//! function of (seed, i): nothing is stored but the cumulative count of
//! Investigate logs per second, so millions of logs cost a few MB.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// splitmix64: one step of a small, good, seedable generator.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stream of numbers for one log.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, salt: u64, i: u64) -> Rng {
        Rng(mix(seed
            ^ mix(salt)
            ^ mix(i.wrapping_mul(0x2545_F491_4F6C_DD1D))))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SERVICES: &[&str] = &[
    "Box",
    "Dropbox",
    "Office 365",
    "Yahoo Mail",
    "Salesforce",
    "Google Drive",
    "Elastica",
];
const ACTIVITIES: &[&str] = &[
    "Share",
    "Upload",
    "Download",
    "Login",
    "Edit",
    "Delete",
    "Policy Violation",
    "InvalidLogin",
];
const OBJECTS: &[&str] = &[
    "File",
    "Folder",
    "User",
    "Session",
    "Group",
    "Policy Violation",
];
const SEVERITIES: &[&str] = &[
    "critical",
    "error",
    "error",
    "warning",
    "warning",
    "warning",
    "informational",
    "informational",
    "informational",
    "informational",
];
const DETECT_SEVERITIES: &[&str] = &["high", "medium", "medium", "low", "low"];
const IOI_CODES: &[&str] = &[
    "TOO_MANY_DOWNLOADS",
    "TOO_MANY_LOGIN_FAILURES",
    "ANOMALOUS_LOCATION",
    "TOO_MANY_SHARES",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Paris", "France", "48.85", "2.35"),
    ("Berlin", "Germany", "52.52", "13.40"),
    ("Austin", "United States", "30.27", "-97.74"),
    ("Tōkyō", "Japan", "35.68", "139.69"),
];

/// Hostile values, cycled through by every seventh log.
pub fn hostile(n: u64) -> Value {
    match n % 18 {
        0 => json!("pipe|in|value"),
        1 => json!("equals=sign=here"),
        2 => json!("back\\slash\\"),
        3 => json!("quote\"d \"value\""),
        4 => json!("bracket]close] and caret^"),
        5 => json!("tab\there\tand\tthere"),
        6 => json!("carriage\rreturn"),
        7 => json!("line\nfeed"),
        8 => json!("crlf\r\nsplit"),
        9 => json!("nul\u{0}byte and \u{1}\u{1b}[31mescape\u{7f}"),
        10 => json!("x\nCEF:0|Evil|Forged|1.0|1|forged event|10|msg=pwned"),
        11 => json!("y\n<13>1 2023-01-01T00:00:00Z evil forged - - - forged"),
        12 => json!("emoji 😀, RTL \u{202e}txet, combining e\u{301}, zh 中文"),
        13 => Value::String("L".repeat(10_000)),
        14 => json!(12345),
        15 => json!(["array", "where", {"a": "string"}, null, 1.5]),
        16 => json!({"nested": {"object": ["x|y", "a=b"]}}),
        _ => Value::Null,
    }
}

/// The string fields a hostile value may land in.
const HOSTILE_TARGETS: &[&str] = &[
    "message",
    "user",
    "name",
    "object_name",
    "user_name",
    "location",
    "browser",
    "object_url",
    "activity_type",
    "object_type",
];

/// The Investigate schedule: logs per second, cumulative.
pub struct Schedule {
    /// Unix second of the first second.
    pub base: i64,
    /// `cum[j]` = logs before second `base + j`; `cum.last()` = total.
    pub cum: Vec<u64>,
}

impl Schedule {
    /// `events` logs at about `per_second` a second (varying from none to
    /// twice that), the last second ending at `end` or starting at `start`.
    pub fn new(seed: u64, events: u64, per_second: u64, start: Option<i64>, end: i64) -> Schedule {
        let per_second = per_second.max(1);
        let mut cum = vec![0u64];
        let mut total = 0u64;
        let mut j = 0u64;
        while total < events {
            let n = Rng::new(seed, 7, j)
                .below(2 * per_second + 1)
                .min(events - total);
            total += n;
            cum.push(total);
            j += 1;
        }
        let seconds = cum.len() as i64 - 1;
        let base = start.unwrap_or(end - seconds);
        Schedule { base, cum }
    }

    pub fn total(&self) -> u64 {
        *self.cum.last().unwrap_or(&0)
    }

    pub fn seconds(&self) -> i64 {
        self.cum.len() as i64 - 1
    }

    /// The Unix second of log `i`.
    pub fn second_of(&self, i: u64) -> i64 {
        // The last j with cum[j] <= i.
        let j = self.cum.partition_point(|&c| c <= i) - 1;
        self.base + j as i64
    }

    /// The index of the first log at or after Unix second `t`.
    pub fn first_at_or_after(&self, t: i64) -> u64 {
        let j = (t - self.base).clamp(0, self.seconds());
        self.cum[j as usize]
    }
}

fn ts(second: i64) -> String {
    DateTime::<Utc>::from_timestamp(second, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Investigate log `i` (every seventh with hostile values).
pub fn investigate(seed: u64, schedule: &Schedule, i: u64) -> Map<String, Value> {
    investigate_with(seed, schedule, i, true)
}

/// Investigate log `i`; with `hostile`, every seventh holds hostile values.
pub fn investigate_with(
    seed: u64,
    schedule: &Schedule,
    i: u64,
    hostile: bool,
) -> Map<String, Value> {
    let mut r = Rng::new(seed, 1, i);
    let second = schedule.second_of(i);
    let (city, country, lat, lon) = *r.pick(CITIES);
    let user = format!("user{}@acme.com", r.below(50));
    let by = user.clone();
    let activity = *r.pick(ACTIVITIES);
    let object = *r.pick(OBJECTS);
    let file = format!("report-{}.xlsx", r.below(1000));
    let latency = r.below(120) as i64;
    let mut log = json!({
        "_id": format!("inv-{i:010}"),
        "created_timestamp": ts(second),
        "inserted_timestamp": ts(second + latency),
        "_latency": latency,
        "severity": *r.pick(SEVERITIES),
        "service": *r.pick(SERVICES),
        "user": user,
        "user_name": format!("User {}", r.below(50)),
        "_domain": "acme.com",
        "activity_type": activity,
        "object_type": object,
        "name": file,
        "object_name": format!("/Finance/{file}"),
        "object_url": format!("https://files.example.com/f/{}", r.below(100_000)),
        "message": format!("{activity}: {file} by {by}"),
        "source": "API",
        "host": format!("203.0.113.{}", r.below(255)),
        "location": format!("{city} ({country})"),
        "city": city,
        "country": country,
        "latitude": lat,
        "longitude": lon,
        "browser": "Chrome",
        "device": "Windows 10",
        "user-agent": "Mozilla/5.0",
        "transaction_id": format!("t-{}", r.next_u64() % 1_000_000),
        "policy_type": "DLP",
    });
    let obj = log.as_object_mut().expect("object");
    if hostile && i % 7 == 3 {
        add_hostile(obj, &mut r, i / 7);
    }
    std::mem::take(obj)
}

/// Detect log `i` of `count`, spread over the Investigate span.
pub fn detect(seed: u64, schedule: &Schedule, count: u64, i: u64) -> Map<String, Value> {
    detect_with(seed, schedule, count, i, true)
}

/// Detect log `i`; with `hostile`, every seventh holds hostile values.
pub fn detect_with(
    seed: u64,
    schedule: &Schedule,
    count: u64,
    i: u64,
    hostile: bool,
) -> Map<String, Value> {
    let mut r = Rng::new(seed, 2, i);
    let second = detect_second(schedule, count, i);
    let (city, country, _, _) = *r.pick(CITIES);
    let mut log = json!({
        "_id": format!("det-{i:08}"),
        "from_detect": 1,
        // An incident is created when it is detected, after it started
        // (up to an hour before); the API selects incidents by creation.
        "created_timestamp": ts(second),
        "incident_start_time": ts(second - r.below(3600) as i64),
        "inserted_timestamp": ts(second + 60),
        "updated_timestamp": ts(second + 360),
        "severity": *r.pick(DETECT_SEVERITIES),
        "threat_score": r.below(100),
        "ioi_code": *r.pick(IOI_CODES),
        "message": "Anomalous activity",
        "user": format!("user{}@acme.com", r.below(50)),
        "user_name": format!("User {}", r.below(50)),
        "service": *r.pick(SERVICES),
        "object_type": *r.pick(OBJECTS),
        "activity_type": *r.pick(ACTIVITIES),
        "hosts": format!("198.51.100.{}", r.below(255)),
        "locations": format!("{city} ({country})"),
        "browsers": ["Chrome", "Firefox"],
        "devices": ["Windows 10"],
    });
    let obj = log.as_object_mut().expect("object");
    if hostile && i % 7 == 3 {
        add_hostile(obj, &mut r, i / 7 + 5);
    }
    std::mem::take(obj)
}

/// The Unix second at which Detect log `i` was created (its
/// `created_timestamp`, what the API filters on): evenly spread over the
/// schedule. Its `incident_start_time` is earlier.
pub fn detect_second(schedule: &Schedule, count: u64, i: u64) -> i64 {
    let span = schedule.seconds().max(1) as u128;
    schedule.base + (i as u128 * span / count.max(1) as u128) as i64
}

/// The epoch millisecond of Defender for Cloud Apps log `i`: every log of
/// a second shares one millisecond of it (ties across pages).
pub fn mcas_ms(seed: u64, schedule: &Schedule, i: u64) -> i64 {
    let second = schedule.second_of(i);
    second * 1000 + (mix(seed ^ second as u64) % 1000) as i64
}

const MCAS_SERVICES: &[(&str, &str)] = &[
    ("Box", "APPID_BOX"),
    ("Salesforce", "APPID_SALESFORCE"),
    ("Office 365", "APPID_O365"),
    ("Microsoft Exchange Online", "APPID_OUTLOOK"),
    ("Google", "APPID_33626"),
];

/// Defender for Cloud Apps alert (or, with `activity`, activity) `i`, at
/// [`mcas_ms`]; with `hostile`, every seventh holds hostile values.
pub fn mcas(
    seed: u64,
    schedule: &Schedule,
    i: u64,
    activity: bool,
    hostile: bool,
) -> Map<String, Value> {
    let mut r = Rng::new(seed, if activity { 4 } else { 3 }, i);
    let ms = mcas_ms(seed, schedule, i);
    let id = format!(
        "{:024x}",
        u128::from(mix(seed ^ mix(i))) << 32 | u128::from(i as u32)
    );
    let user = format!("user{}@contoso.com", r.below(50));
    let (service, app_id) = *r.pick(MCAS_SERVICES);
    let mut log = if activity {
        json!({
            "_id": id,
            "timestamp": ms,
            "eventTypeValue": *r.pick(&["EVENT_CATEGORY_LOGIN", "EVENT_CATEGORY_DOWNLOAD_FILE", "EVENT_CATEGORY_SHARE_FILE"]),
            "description": format!("{user} used {service}"),
            "user": {"userName": user},
            "appName": service,
            "ipAddress": format!("198.51.100.{}", r.below(255)),
        })
    } else {
        let policy = format!("policy-{}", r.below(5));
        json!({
            "_id": id,
            "timestamp": ms,
            "title": policy,
            "alertType": "ALERT_CABINET_EVENT_MATCH_AUDIT",
            "description": format!("Activity policy '{policy}' was triggered by '{user}'"),
            "severityValue": r.below(3),
            "statusValue": 0,
            "entities": [
                {"type": "user", "label": user, "id": format!("u{}", r.below(50))},
                {"type": "service", "label": service, "id": app_id},
            ],
            "policyRule": [{"id": format!("{:024x}", r.next_u64()), "label": policy}],
            "audits": [format!("{}_{:08x}", ms - 60_000, r.next_u64() as u32)],
            "URL": format!("https://contoso.portal.cloudappsecurity.com/#/alerts/{id}"),
            "threatScore": r.below(100),
        })
    };
    let obj = log.as_object_mut().expect("object");
    if hostile && i % 7 == 3 {
        hostile_in(
            obj,
            &mut r,
            &["title", "description", "alertType", "URL"],
            i / 7,
        );
    }
    std::mem::take(obj)
}

/// Cirrus Identity log entry `i`, at its second of the schedule; with
/// `hostile`, every seventh holds hostile values.
pub fn cirrus(seed: u64, schedule: &Schedule, i: u64, hostile: bool) -> Map<String, Value> {
    let mut r = Rng::new(seed, 5, i);
    let second = schedule.second_of(i);
    let ms = r.below(1000);
    let time = DateTime::<Utc>::from_timestamp(second, ms as u32 * 1_000_000)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let (kind, sub) = *r.pick(&[
        ("auth", "login"),
        ("auth", "logout"),
        ("auth", "mfa"),
        ("proxy", "attribute-release"),
    ]);
    let mut log = json!({
        "timestamp": time,
        "tenant": "demo",
        "service": *r.pick(&["https://sp.example.edu/shibboleth", "https://canvas.example.edu", "google.com"]),
        "metrictype": kind,
        "metricsubtype": sub,
        "clientip": format!("192.0.2.{}", r.below(255)),
        "correlationid": format!("{:016x}-{i}", r.next_u64()),
        "user": format!("student{}@example.edu", r.below(80)),
    });
    let obj = log.as_object_mut().expect("object");
    if hostile && i % 7 == 3 {
        hostile_in(
            obj,
            &mut r,
            &["user", "service", "metricsubtype", "clientip"],
            i / 7,
        );
    }
    std::mem::take(obj)
}

/// Hostile value `n` in one of `fields`, and another in `comment`.
pub fn hostile_in(obj: &mut Map<String, Value>, r: &mut Rng, fields: &[&str], n: u64) {
    let field = *r.pick(fields);
    obj.insert(field.to_string(), hostile(n));
    obj.insert("comment".into(), hostile(n + 7));
}

fn add_hostile(obj: &mut Map<String, Value>, r: &mut Rng, n: u64) {
    let field = *r.pick(HOSTILE_TARGETS);
    let value = hostile(n);
    if field == "message" && n % 18 == 17 {
        obj.remove("message");
    } else {
        obj.insert(field.to_string(), value);
    }
    // A second hostile value in a field the agent does not map.
    obj.insert("comment".into(), hostile(n + 7));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_covers_every_log_in_order() {
        let s = Schedule::new(1, 5000, 300, None, 1_700_000_000);
        assert_eq!(s.total(), 5000);
        let mut last = i64::MIN;
        let mut max_in_second = 0;
        let mut run = 0;
        for i in 0..5000 {
            let t = s.second_of(i);
            assert!(t >= last);
            run = if t == last { run + 1 } else { 1 };
            max_in_second = max_in_second.max(run);
            last = t;
        }
        assert!(last < 1_700_000_000);
        assert!(max_in_second > 300, "{max_in_second}");
        let mid = s.second_of(2500);
        let first = s.first_at_or_after(mid);
        assert_eq!(s.second_of(first), mid);
        assert!(first == 0 || s.second_of(first - 1) < mid);
    }

    #[test]
    fn logs_are_deterministic_and_some_are_hostile() {
        let s = Schedule::new(9, 100, 25, None, 1_700_000_000);
        assert_eq!(investigate(9, &s, 10), investigate(9, &s, 10));
        assert_ne!(investigate(9, &s, 10), investigate(8, &s, 10));
        let hostile = (0..100)
            .filter(|&i| investigate(9, &s, i).contains_key("comment"))
            .count();
        assert!(hostile >= 14);
        assert!((0..100).all(|i| !investigate_with(9, &s, i, false).contains_key("comment")));
        for i in 0..20 {
            let d = detect(9, &s, 20, i);
            assert!(d["incident_start_time"].as_str() <= d["created_timestamp"].as_str());
            assert!(d["_id"].is_string());
        }
    }
}
