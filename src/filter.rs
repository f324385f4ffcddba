//! Filter: which logs to export. Filters are sent to the API where that is
//! safe, and always applied again here, so that the result is right whether
//! or not the server honours them.

use crate::event::{App, Event, Known, Val};
use std::collections::BTreeSet;

/// `None` in a field means "no filter on it".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lower-case severity names.
    pub severities: Option<BTreeSet<String>>,
    /// SaaS app names (`service`), case-sensitive.
    pub services: Option<BTreeSet<String>>,
    pub object_types: Option<BTreeSet<String>>,
    pub activity_types: Option<BTreeSet<String>>,
    /// Fields that must hold exactly these values (Cirrus Identity's
    /// `--query`), each compared as text.
    pub exact: Vec<(String, String)>,
}

impl Filter {
    pub fn new(
        severities: Option<BTreeSet<String>>,
        services: Option<BTreeSet<String>>,
        object_types: Option<BTreeSet<String>>,
        activity_types: Option<BTreeSet<String>>,
    ) -> Filter {
        Filter {
            severities,
            services,
            object_types,
            activity_types,
            exact: Vec::new(),
        }
    }

    /// Whether `ev` is to be exported. A log passes a filter only when its
    /// field holds one of the listed values.
    pub fn accepts(&self, ev: &Event) -> bool {
        // A stream without severities (activities) is not filtered by them.
        if let Some(levels) = &self.severities
            && !ev.app.severities().is_empty()
        {
            match ev.severity() {
                Some(s) if levels.contains(s.as_ref()) => {}
                _ => return false,
            }
        }
        self.exact
            .iter()
            .all(|(k, v)| ev.get(k).is_some_and(|f| f.text() == v))
            && matches_field(ev, Known::Service, &self.services)
            && matches_field(ev, Known::ObjectType, &self.object_types)
            && matches_field(ev, Known::ActivityType, &self.activity_types)
    }

    /// The severity levels of `app` that pass, or `None` if all do.
    fn app_levels(&self, app: App) -> Option<Vec<&'static str>> {
        let levels = self.severities.as_ref()?;
        let of_app: Vec<&'static str> = app
            .severities()
            .iter()
            .copied()
            .filter(|l| levels.contains(*l))
            .collect();
        (of_app.len() < app.severities().len()).then_some(of_app)
    }

    /// True when no log of `app` can pass (no severity level of that app is
    /// selected): the app need not be queried at all.
    pub fn excludes_app(&self, app: App) -> bool {
        matches!(self.app_levels(app), Some(l) if l.is_empty())
    }

    /// Query parameters to narrow the request on the server. Only filters
    /// with exactly one value are sent: a server that read a multi-valued
    /// parameter differently could drop logs that the local filter would
    /// have kept, and nothing could bring them back.
    pub fn server_params(&self, app: App) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(levels) = self.app_levels(app)
            && levels.len() == 1
        {
            out.push(("severity", levels[0].to_string()));
        }
        for (name, set) in [
            ("service", &self.services),
            ("object_type", &self.object_types),
            ("activity_type", &self.activity_types),
        ] {
            if let Some(set) = set
                && set.len() == 1
            {
                out.push((name, set.iter().next().cloned().unwrap_or_default()));
            }
        }
        out
    }
}

fn matches_field(ev: &Event, field: Known, set: &Option<BTreeSet<String>>) -> bool {
    let Some(set) = set else { return true };
    match ev.known(field) {
        Some(Val::Str(s)) => set.contains(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ev(app: App, v: Value) -> Event {
        Event::from_log(app, v.as_object().unwrap().clone())
    }

    fn set(v: &[&str]) -> Option<BTreeSet<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn severity_is_case_insensitive_and_required() {
        let f = Filter::new(set(&["error", "critical"]), None, None, None);
        assert!(f.accepts(&ev(App::Investigate, json!({"severity": "Error"}))));
        assert!(!f.accepts(&ev(App::Investigate, json!({"severity": "warning"}))));
        assert!(!f.accepts(&ev(App::Investigate, json!({}))));
        assert!(!f.accepts(&ev(App::Investigate, json!({"severity": 7}))));
    }

    #[test]
    fn other_filters_are_case_sensitive() {
        let f = Filter::new(None, set(&["Yahoo Mail"]), set(&["File"]), None);
        assert!(f.accepts(&ev(
            App::Investigate,
            json!({"service": "Yahoo Mail", "object_type": "File"})
        )));
        assert!(!f.accepts(&ev(
            App::Investigate,
            json!({"service": "yahoo mail", "object_type": "File"})
        )));
        assert!(!f.accepts(&ev(App::Investigate, json!({"service": "Yahoo Mail"}))));
    }

    #[test]
    fn server_params_only_for_single_values() {
        let f = Filter::new(
            set(&["error", "critical", "warning", "high", "medium", "low"]),
            set(&["Box"]),
            set(&["File", "Folder"]),
            None,
        );
        assert_eq!(
            f.server_params(App::Investigate),
            vec![("service", "Box".to_string())]
        );
        // Every Detect level selected: no severity parameter at all.
        assert_eq!(
            f.server_params(App::Detect),
            vec![("service", "Box".to_string())]
        );
        let f = Filter::new(set(&["critical", "high"]), None, None, None);
        assert_eq!(
            f.server_params(App::Investigate),
            vec![("severity", "critical".to_string())]
        );
        assert_eq!(
            f.server_params(App::Detect),
            vec![("severity", "high".to_string())]
        );
    }

    #[test]
    fn app_without_selected_levels_is_excluded() {
        let f = Filter::new(set(&["critical"]), None, None, None);
        assert!(f.excludes_app(App::Detect));
        assert!(!f.excludes_app(App::Investigate));
        assert!(!Filter::default().excludes_app(App::Detect));
    }
}
