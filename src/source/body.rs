//! Reading a JSON answer whole, for the sources whose pages are small
//! (a hundred alerts, a thousand entries) and shaped each their own way:
//! bytes that are not UTF-8 replaced, values JSON cannot carry repaired
//! (counted), and the log objects of an array turned into events.

use super::SourceError;
use crate::event::{App, Event, json};
use serde_json::Value;

/// A JSON answer, read.
pub struct Body {
    pub value: Value,
    /// Bytes that are not UTF-8 were replaced by U+FFFD.
    pub lossy: bool,
    /// Values JSON cannot carry (lone surrogate escapes, numbers out of
    /// range) that were replaced so that the rest could be read.
    pub repaired: u64,
}

/// Reads `body` as JSON.
pub fn parse(body: Vec<u8>) -> Result<Body, SourceError> {
    let (text, lossy) = match String::from_utf8(body) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    match serde_json::from_str(&text) {
        Ok(value) => Ok(Body {
            value,
            lossy,
            repaired: 0,
        }),
        Err(e) if e.is_syntax() || e.is_data() => {
            // One value JSON cannot carry must not block the export for
            // ever: it is replaced (and counted), the rest is read.
            let bad = || SourceError::BadPage(format!("not valid JSON ({e})"));
            let r = super::lenient::repair(text.as_bytes()).ok_or_else(bad)?;
            let value = serde_json::from_slice(&r.bytes).map_err(|_| bad())?;
            Ok(Body {
                value,
                lossy,
                repaired: r.strings + r.numbers,
            })
        }
        Err(e) => Err(SourceError::BadPage(format!("not valid JSON ({e})"))),
    }
}

/// The log objects among `items` as events of `app`, in order, and how
/// many items were not objects (skipped).
pub fn events(app: App, items: Vec<Value>) -> Result<(Vec<Event>, u64), SourceError> {
    let total = items.len();
    let objects: Vec<Value> = items.into_iter().filter(Value::is_object).collect();
    let malformed = (total - objects.len()) as u64;
    let text = serde_json::to_string(&objects).unwrap_or_else(|_| "[]".into());
    match json::log_array(app, text) {
        Ok(events) => Ok((events, malformed)),
        // Nesting deeper than the lean reader takes: each log alone.
        Err(_) => {
            let mut events = Vec::with_capacity(objects.len());
            for o in objects {
                let text = serde_json::to_string(&o).unwrap_or_default();
                events.push(json::one_log(app, text).map_err(|_| {
                    SourceError::BadPage("a log is nested too deeply to be read".into())
                })?);
            }
            Ok((events, malformed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_and_repaired() {
        let b = parse(br#"{"data":[{"a":1}]}"#.to_vec()).unwrap();
        assert_eq!(b.value["data"][0]["a"], 1);
        assert!(!b.lossy && b.repaired == 0);
        let b = parse(b"{\"data\":[{\"a\":\"\\ud800x\"}]}".to_vec()).unwrap();
        assert_eq!(b.repaired, 1);
        assert_eq!(b.value["data"][0]["a"], "\u{fffd}x");
        let b = parse(b"[{\"a\":\"\xff\"}]".to_vec()).unwrap();
        assert!(b.lossy);
        assert!(matches!(
            parse(b"{\"data\":".to_vec()),
            Err(SourceError::BadPage(_))
        ));
    }

    #[test]
    fn objects_become_events_and_the_rest_is_counted() {
        let items = serde_json::from_str::<Vec<Value>>(
            r#"[{"_id":"a","timestamp":1500000000123},7,"x",{"_id":"b","nested":{"k":[1,2]}}]"#,
        )
        .unwrap();
        let (events, malformed) = events(App::Alerts, items).unwrap();
        assert_eq!(malformed, 2);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id(), Some("a"));
        assert_eq!(
            events[0].time.unwrap().timestamp_millis(),
            1_500_000_000_123
        );
        assert_eq!(events[1].id(), Some("b"));
    }
}
