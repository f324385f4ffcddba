//! Filter: which logs to export. Filters are sent to the API where that is
//! safe, and always applied again here, so that the result is right whether
//! or not the server honours them.

use crate::event::{App, Event, Known, Val, Vendor};
use std::collections::BTreeSet;
use thiserror::Error;

/// A filter that does not fit the source it is applied to.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FilterError {
    /// A `--severity` level the source's logs never have: the filter would
    /// drop every log that has a level, in silence.
    #[error(
        "--severity {given}: not a level of {vendor}'s logs{whose}; its levels are {levels} (or --severity all)"
    )]
    UnknownLevel {
        given: String,
        vendor: &'static str,
        /// ` (the source of <config>)`, or empty.
        whose: String,
        levels: String,
    },
    #[error(
        "--severity {given}: {vendor}'s logs{whose} have no severity levels; leave --severity out"
    )]
    NoLevels {
        given: String,
        vendor: &'static str,
        whose: String,
    },
}

/// The severity levels of `vendor`'s logs (of all its streams), in order.
pub fn vendor_levels(vendor: Vendor) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for app in vendor.streams() {
        for level in app.severities() {
            if !out.contains(level) {
                out.push(level);
            }
        }
    }
    out
}

/// `None` in a field means "no filter on it".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lower-case severity names.
    pub severities: Option<BTreeSet<String>>,
    /// Whether the severities were given (`--severity`), not the default
    /// (which names every source's usual levels).
    pub severities_given: bool,
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
            severities_given: false,
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

    /// Whether the given severity levels are levels of `vendor`'s logs:
    /// a level of another vendor's (`critical`, CloudSOC's, for Defender
    /// for Cloud Apps) would filter out every log. `config` names the file
    /// whose source it is, for the message.
    pub fn check_levels(&self, vendor: Vendor, config: &str) -> Result<(), FilterError> {
        let Some(given) = self.severities.as_ref().filter(|_| self.severities_given) else {
            return Ok(());
        };
        let levels = vendor_levels(vendor);
        let whose = if config.is_empty() {
            String::new()
        } else {
            format!(" (the source of {config})")
        };
        let list = |v: &mut dyn Iterator<Item = &String>| {
            v.map(String::as_str).collect::<Vec<_>>().join(" ")
        };
        if levels.is_empty() {
            return Err(FilterError::NoLevels {
                given: list(&mut given.iter()),
                vendor: vendor.name(),
                whose,
            });
        }
        let unknown: Vec<&String> = given
            .iter()
            .filter(|l| !levels.contains(&l.as_str()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(FilterError::UnknownLevel {
            given: list(&mut unknown.into_iter()),
            vendor: vendor.name(),
            whose,
            levels: levels.join(", "),
        })
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
    fn a_level_the_source_does_not_have_is_refused() {
        let mut f = Filter::new(set(&["critical"]), None, None, None);
        // The default (not given) is never refused.
        assert_eq!(f.check_levels(Vendor::Mcas, "c.json"), Ok(()));
        f.severities_given = true;
        assert_eq!(f.check_levels(Vendor::CloudSoc, "c.json"), Ok(()));
        let e = f.check_levels(Vendor::Mcas, "c.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--severity critical: not a level of mcas's logs (the source of c.json); its levels are low, medium, high (or --severity all)"
        );
        let f = Filter {
            severities_given: true,
            ..Filter::new(set(&["high", "error"]), None, None, None)
        };
        assert!(
            f.check_levels(Vendor::Mcas, "")
                .unwrap_err()
                .to_string()
                .starts_with("--severity error: not a level of mcas's logs; its levels")
        );
        assert!(matches!(
            f.check_levels(Vendor::Cirrus, ""),
            Err(FilterError::NoLevels { .. })
        ));
        assert_eq!(
            vendor_levels(Vendor::CloudSoc),
            [
                "informational",
                "warning",
                "error",
                "critical",
                "low",
                "medium",
                "high"
            ]
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
