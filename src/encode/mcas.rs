//! What the line formats write of a Defender for Cloud Apps alert or
//! activity: the fields its SIEM agent wrote (seed 002), pulled out of the
//! log once, for CEF and LEEF to write in their own rules.
//!
//! Alert fields (all optional): `_id`, `timestamp` (epoch ms), `title`,
//! `description`, `severityValue`, `entities` (`[{"type", "label",
//! "id"}]`), `policyRule` (`[{"id", "label"}]`), `threatScore`, `URL`,
//! `audits` (or `relatedAudits`). An entry of the wrong shape is passed
//! over, never an error.

use crate::event::{Event, Val};
use serde_json::Value;

/// The content of one MCAS log, as the seed's agent wrote it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Content {
    /// The alert type (`alertType`, an activity's event type), else the
    /// title.
    pub signature: String,
    /// The title, else the description, else the signature.
    pub name: String,
    pub id: String,
    pub description: String,
    /// The first user entity's label.
    pub user: String,
    /// The first service entity's label.
    pub service: String,
    /// `threatScore`.
    pub risk_score: String,
    /// `URL`: the alert in the portal.
    pub portal_url: String,
    /// The service entities' ids, comma-separated.
    pub service_app_ids: String,
    /// The related audits (activities), comma-separated.
    pub related_audits: String,
    /// The policies' ids (`policyRule`), comma-separated.
    pub policy_ids: String,
}

impl Content {
    pub fn of(ev: &Event) -> Content {
        let text = |name: &str| match ev.get(name) {
            Some(Val::Nested(_)) | None => String::new(),
            Some(v) => v.text().to_string(),
        };
        let first = |names: &[&str]| {
            names
                .iter()
                .map(|n| text(n))
                .find(|t| !t.trim().is_empty())
                .unwrap_or_default()
        };
        let mut c = Content {
            id: text("_id"),
            description: text("description"),
            risk_score: text("threatScore"),
            portal_url: text("URL"),
            ..Content::default()
        };
        let title = text("title");
        c.signature = first(&["alertType", "eventTypeValue", "eventType"]);
        if c.signature.is_empty() {
            c.signature.clone_from(&title);
        }
        c.name = if !title.trim().is_empty() {
            title
        } else if !c.description.trim().is_empty() {
            c.description.clone()
        } else {
            c.signature.clone()
        };
        let mut service_ids = Vec::new();
        for e in list(ev, "entities") {
            let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
            let label = scalar(e.get("label"));
            match kind {
                "user" if c.user.is_empty() => c.user = label,
                "service" => {
                    if c.service.is_empty() {
                        c.service = label;
                    }
                    let id = scalar(e.get("id"));
                    if !id.is_empty() {
                        service_ids.push(id);
                    }
                }
                _ => {}
            }
        }
        c.service_app_ids = service_ids.join(",");
        // Activities name their user and app in fields of their own.
        if c.user.is_empty()
            && let Some(Val::Nested(user)) = ev.get("user")
            && let Ok(Value::Object(u)) = serde_json::from_str::<Value>(user)
        {
            c.user = scalar(u.get("userName"));
        }
        if c.service.is_empty() {
            c.service = text("appName");
        }
        let audits = if ev.get("relatedAudits").is_some() {
            "relatedAudits"
        } else {
            "audits"
        };
        c.related_audits = joined(ev, audits, None);
        c.policy_ids = joined(ev, "policyRule", Some("id"));
        c
    }
}

/// The elements of an array field (nothing when it is not one).
fn list(ev: &Event, name: &str) -> Vec<Value> {
    match ev.get(name) {
        Some(Val::Nested(json)) => match serde_json::from_str(json) {
            Ok(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// An array's elements (or each element's `member`) comma-separated; a
/// field that is a single value is that value.
fn joined(ev: &Event, name: &str, member: Option<&str>) -> String {
    match ev.get(name) {
        None | Some(Val::Null) => String::new(),
        Some(Val::Nested(_)) => list(ev, name)
            .iter()
            .map(|v| match member {
                Some(m) => scalar(v.get(m)),
                None => scalar(Some(v)),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        Some(v) => v.text().to_string(),
    }
}

/// A scalar as text (strings as they are, numbers and booleans as JSON
/// writes them); empty for null, arrays, objects and absence.
fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::App;
    use serde_json::json;

    #[test]
    fn the_seed_agents_fields_are_pulled_out() {
        let ev = Event::from_log(
            App::Alerts,
            json!({
                "_id": "596a7e360c204203a335a3fb",
                "timestamp": 1500151350531i64,
                "title": "myPolicy",
                "alertType": "ALERT_CABINET_EVENT_MATCH_AUDIT",
                "description": "Activity policy 'myPolicy' was triggered",
                "severityValue": 0,
                "entities": [
                    {"type": "account", "label": "x", "id": 1},
                    {"type": "user", "label": "admin@box-contoso.com", "id": "u1"},
                    {"type": "user", "label": "second@contoso.com"},
                    {"type": "service", "label": "Box", "id": "APPID_BOX"},
                    {"type": "service", "label": "Dropbox", "id": 11627},
                    "not an object"
                ],
                "policyRule": [{"id": "59f0ab82f797fa0681e9b1c7", "label": "p"}, {"label": "no id"}],
                "audits": ["1500151288183_acc891bf"],
                "URL": "https://portal.example/#/alerts/596a7e360c204203a335a3fb",
                "threatScore": 42
            })
            .as_object()
            .unwrap()
            .clone(),
        );
        let c = Content::of(&ev);
        assert_eq!(c.signature, "ALERT_CABINET_EVENT_MATCH_AUDIT");
        assert_eq!(c.name, "myPolicy");
        assert_eq!(c.id, "596a7e360c204203a335a3fb");
        assert_eq!(c.user, "admin@box-contoso.com");
        assert_eq!(c.service, "Box");
        assert_eq!(c.service_app_ids, "APPID_BOX,11627");
        assert_eq!(c.policy_ids, "59f0ab82f797fa0681e9b1c7");
        assert_eq!(c.related_audits, "1500151288183_acc891bf");
        assert_eq!(c.risk_score, "42");
        assert!(c.portal_url.ends_with("/alerts/596a7e360c204203a335a3fb"));
    }

    #[test]
    fn missing_and_misshapen_fields_give_empty_values() {
        let ev = Event::from_log(
            App::Alerts,
            json!({"title": {"x": 1}, "entities": "users", "policyRule": 7, "description": "d"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let c = Content::of(&ev);
        assert_eq!(c.signature, "");
        assert_eq!(c.name, "d");
        assert_eq!(c.user, "");
        assert_eq!(c.policy_ids, "7");
        assert_eq!(
            Content::of(&Event::from_log(App::Alerts, Default::default())),
            Content::default()
        );
    }
}
