//! How a declared REST API's records look in CEF and LEEF: the
//! declaration's `"mapping"` (config.json), checked here, applied by
//! `cef.rs` and `leef.rs`.
//!
//! ```json
//! "mapping": {"vendor": "Okta", "product": "System Log",
//!   "signature": "/eventType", "name": "/displayMessage",
//!   "severity": {"field": "/severity", "map": {"DEBUG": 1, "INFO": 3, "WARN": 6, "ERROR": 8}},
//!   "keys": {"suser": "/actor/alternateId", "src": "/client/ipAddress",
//!            "act": "/eventType", "outcome": "/outcome/result", "msg": "/displayMessage"}}
//! ```
//!
//! Values are JSON pointers into the record (RFC 6901); `signature` and
//! `name` may list several, the first non-empty taken. A severity value
//! found in `map` (case aside) gives its number; a number 0 to 10 is taken
//! as it is; anything else gives `default` (5). CEF writes the mapped keys
//! under their names; LEEF under its own where it has one (`suser` as
//! `usrName`, `spt` as `srcPort`, ...). A top-level field a key took is
//! not written again as a custom key; a nested one leaves its parent
//! object in place.

use crate::event::Event;
use serde_json::{Map, Value};

/// The CEF keys a mapping may fill, and their LEEF names.
pub const KEYS: &[(&str, &str)] = &[
    ("suser", "usrName"),
    ("duser", "duser"),
    ("src", "src"),
    ("dst", "dst"),
    ("spt", "srcPort"),
    ("dpt", "dstPort"),
    ("shost", "identHostName"),
    ("dhost", "dhost"),
    ("act", "act"),
    ("msg", "msg"),
    ("outcome", "outcome"),
    ("cat", "cat"),
    ("reason", "reason"),
    ("proto", "proto"),
    ("app", "app"),
    ("request", "url"),
    ("requestClientApplication", "userAgent"),
    ("requestMethod", "requestMethod"),
    ("fname", "fname"),
    ("filePath", "filePath"),
    ("deviceExternalId", "deviceExternalId"),
    ("destinationServiceName", "resource"),
];

/// A checked mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub vendor: String,
    pub product: String,
    pub signature: Vec<String>,
    pub name: Vec<String>,
    pub severity: Option<Severity>,
    /// (CEF key, LEEF key, pointer), in the declared order.
    pub keys: Vec<(&'static str, &'static str, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Severity {
    pub field: String,
    pub map: Vec<(String, u8)>,
    pub default: u8,
}

/// The keys of a `"mapping"`.
const MAPPING_KEYS: [&str; 6] = ["vendor", "product", "signature", "name", "severity", "keys"];

fn pointer(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) if s.starts_with('/') && s.len() > 1 => Ok(s.clone()),
        _ => Err(format!(
            "{what} must be a JSON pointer such as \"/actor/alternateId\", not {v}"
        )),
    }
}

fn pointers(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|p| pointer(p, what)).collect(),
        Some(p) => Ok(vec![pointer(p, what)?]),
    }
}

fn header_text(v: Option<&Value>, what: &str, default: &str) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() && !s.chars().any(char::is_control) => {
            Ok(s.trim().to_string())
        }
        Some(other) => Err(format!("{what} must be a non-empty string, not {other}")),
    }
}

impl Mapping {
    /// Checks a `"mapping"` object: the problem, for a message naming the
    /// key, when it does not fit.
    pub fn parse(obj: &Map<String, Value>) -> Result<Mapping, String> {
        if let Some(k) = obj.keys().find(|k| !MAPPING_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "has the unknown key {k:?} (it takes {})",
                MAPPING_KEYS.join(", ")
            ));
        }
        let severity = match obj.get("severity") {
            None | Some(Value::Null) => None,
            Some(Value::Object(s)) => {
                let field = pointer(
                    s.get("field").unwrap_or(&Value::Null),
                    "\"severity\"'s \"field\"",
                )?;
                let level = |v: &Value, what: &str| -> Result<u8, String> {
                    v.as_u64()
                        .filter(|n| *n <= 10)
                        .map(|n| n as u8)
                        .ok_or_else(|| format!("{what} must be a number from 0 to 10, not {v}"))
                };
                let mut map = Vec::new();
                match s.get("map") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(m)) => {
                        for (k, v) in m {
                            map.push((k.clone(), level(v, &format!("\"severity\" {k:?}"))?));
                        }
                    }
                    Some(other) => {
                        return Err(format!(
                            "\"severity\"'s \"map\" must be an object such as {{\"WARN\": 6}}, not {other}"
                        ));
                    }
                }
                let default = match s.get("default") {
                    None | Some(Value::Null) => 5,
                    Some(v) => level(v, "\"severity\"'s \"default\"")?,
                };
                Some(Severity {
                    field,
                    map,
                    default,
                })
            }
            Some(other) => {
                return Err(format!(
                    "\"severity\" must be an object {{\"field\": \"/pointer\", \"map\": {{...}}}}, not {other}"
                ));
            }
        };
        let mut keys = Vec::new();
        match obj.get("keys") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Some((cef, leef)) = KEYS.iter().find(|(c, _)| c == k) else {
                        return Err(format!(
                            "\"keys\" has {k:?}, which is not one it fills ({})",
                            KEYS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                        ));
                    };
                    keys.push((*cef, *leef, pointer(v, &format!("\"keys\" {k:?}"))?));
                }
            }
            Some(other) => {
                return Err(format!(
                    "\"keys\" must be an object such as {{\"suser\": \"/actor/alternateId\"}}, not {other}"
                ));
            }
        }
        Ok(Mapping {
            vendor: header_text(obj.get("vendor"), "\"vendor\"", "siem-agent")?,
            product: header_text(obj.get("product"), "\"product\"", "REST API")?,
            signature: pointers(obj.get("signature"), "\"signature\"")?,
            name: pointers(obj.get("name"), "\"name\"")?,
            severity,
            keys,
        })
    }

    /// The severity of `ev` (0 to 10), if the mapping says how.
    pub fn severity_of(&self, ev: &Event) -> Option<u8> {
        let s = self.severity.as_ref()?;
        let v = lookup(ev, &s.field);
        let v = v.as_deref().map(str::trim).unwrap_or("");
        Some(
            s.map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(v))
                .map(|(_, n)| *n)
                .or_else(|| v.parse::<u8>().ok().filter(|n| *n <= 10))
                .unwrap_or(s.default),
        )
    }

    /// The first non-empty value of `pointers` in `ev`.
    pub fn first(ev: &Event, pointers: &[String]) -> Option<String> {
        pointers
            .iter()
            .filter_map(|p| lookup(ev, p))
            .find(|v| !v.trim().is_empty())
    }

    /// Whether a top-level field, `name`, is written by a mapped key (so
    /// not again as a custom key).
    pub fn takes(&self, name: &str) -> bool {
        self.keys.iter().any(|(_, _, p)| top_level(p) == Some(name))
    }
}

/// `pointer`'s top-level field when it names one (`/displayMessage`).
fn top_level(pointer: &str) -> Option<&str> {
    let rest = pointer.strip_prefix('/')?;
    (!rest.contains('/')).then_some(rest)
}

/// A JSON pointer's value in `ev` as text (a string as it is, a number or
/// a boolean as JSON writes it, an object or array as compact JSON); `None`
/// when nothing is there or it is null.
pub fn lookup(ev: &Event, pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix('/')?;
    let (head, tail) = match rest.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let head = head.replace("~1", "/").replace("~0", "~");
    let val = ev.get(&head)?;
    let Some(tail) = tail else {
        return (!val.is_empty()).then(|| val.text().to_string());
    };
    // Deeper: the field's JSON, parsed.
    let parsed: Value = serde_json::from_str(val.text()).ok()?;
    match parsed.pointer(&format!("/{tail}"))? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use serde_json::json;

    fn okta() -> Mapping {
        Mapping::parse(
            json!({"vendor": "Okta", "product": "System Log", "signature": "/eventType",
                   "name": ["/displayMessage", "/eventType"],
                   "severity": {"field": "/severity", "map": {"INFO": 3, "WARN": 6}},
                   "keys": {"suser": "/actor/alternateId", "src": "/client/ipAddress",
                            "outcome": "/outcome/result", "msg": "/displayMessage"}})
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn pointers_reach_into_nested_objects() {
        let m = okta();
        let ev = Event::from_log(
            App::RestLogs,
            json!({"eventType": "user.session.start", "severity": "warn",
                   "actor": {"alternateId": "a@b.c", "n": 3}, "client": {"ipAddress": null},
                   "displayMessage": ""})
            .as_object()
            .unwrap()
            .clone(),
        );
        assert_eq!(lookup(&ev, "/actor/alternateId").as_deref(), Some("a@b.c"));
        assert_eq!(lookup(&ev, "/actor/n").as_deref(), Some("3"));
        assert_eq!(lookup(&ev, "/client/ipAddress"), None);
        assert_eq!(lookup(&ev, "/missing/x"), None);
        assert_eq!(m.severity_of(&ev), Some(6));
        assert_eq!(
            Mapping::first(&ev, &m.name).as_deref(),
            Some("user.session.start")
        );
        assert!(m.takes("displayMessage") && !m.takes("actor"));
    }

    #[test]
    fn a_bad_mapping_names_what_is_wrong() {
        let e = |v: Value| Mapping::parse(v.as_object().unwrap()).unwrap_err();
        assert!(e(json!({"keys": {"user": "/a"}})).contains("\"user\""));
        assert!(e(json!({"keys": {"suser": "actor"}})).contains("JSON pointer"));
        assert!(e(json!({"severity": {"field": "/s", "map": {"X": 11}}})).contains("0 to 10"));
        assert!(e(json!({"vendor": "a\nb"})).contains("vendor"));
        assert!(e(json!({"vendr": "x"})).contains("\"vendr\""));
    }
}
