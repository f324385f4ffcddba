//! Reading a JSON answer whole, for the sources whose pages are small
//! (a hundred alerts, a thousand entries) and shaped each their own way:
//! bytes that are not UTF-8 replaced, values JSON cannot carry repaired
//! (counted), and the log objects of an array turned into events.

use super::SourceError;
use crate::event::json::Bail;
use crate::event::{App, Event, json};
use serde_json::Value;

/// A JSON answer, read. An empty answer (`204 No Content`, or a `200`
/// with nothing but whitespace) is `null`: a page with nothing in it.
pub struct Body {
    pub value: Value,
    /// Bytes that are not UTF-8 were replaced by U+FFFD.
    pub lossy: bool,
    /// Values JSON cannot carry (lone surrogate escapes, numbers out of
    /// range, nesting too deep) that were replaced so that the rest could
    /// be read.
    pub repaired: u64,
}

/// Reads `body` as JSON.
pub fn parse(body: Vec<u8>) -> Result<Body, SourceError> {
    let (text, lossy) = match String::from_utf8(body) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    // Caught up: the API has nothing to say, not something unreadable.
    if text.trim().is_empty() {
        return Ok(Body {
            value: Value::Null,
            lossy,
            repaired: 0,
        });
    }
    match serde_json::from_str(&text) {
        Ok(value) => Ok(Body {
            value,
            lossy,
            repaired: 0,
        }),
        Err(e) if e.is_syntax() || e.is_data() => {
            // One value JSON cannot carry must not block the export for
            // ever: it is replaced (and counted), the rest is read.
            let bad = |e: serde_json::Error| SourceError::BadPage(format!("not valid JSON ({e})"));
            let r = super::lenient::repair(text.as_bytes()).ok_or_else(|| bad(e))?;
            // Still refused once repaired: the error that remains is the
            // one to name (trailing garbage, not the surrogate repaired).
            let value = serde_json::from_slice(&r.bytes).map_err(bad)?;
            Ok(Body {
                value,
                lossy,
                repaired: r.strings + r.numbers + r.deep,
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
        // Nesting deeper than the lean reader takes: each log alone, and
        // one nested too deeply with its too-deep values as their text.
        Err(_) => {
            let mut events = Vec::with_capacity(objects.len());
            for o in objects {
                let text = serde_json::to_string(&o).unwrap_or_default();
                let event = match json::one_log(app, text) {
                    Ok(ev) => Ok(ev),
                    Err(Bail) => {
                        let text = serde_json::to_string(&o).unwrap_or_default();
                        super::lenient::repair(text.as_bytes())
                            .and_then(|r| String::from_utf8(r.bytes).ok())
                            .map_or(Err(Bail), |t| json::one_log(app, t))
                    }
                };
                events.push(event.map_err(|_| {
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
    fn an_empty_answer_is_an_empty_page() {
        for empty in ["", " \r\n\t"] {
            let b = parse(empty.as_bytes().to_vec()).unwrap();
            assert!(b.value.is_null() && b.repaired == 0);
        }
    }

    #[test]
    fn trailing_garbage_is_named_not_the_surrogate_repaired() {
        let e = parse(br#"{"data":[{"a":"\ud800"}]} garbage"#.to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("trailing characters"), "{e}");
        assert!(!e.contains("surrogate"), "{e}");
    }

    #[test]
    fn a_log_nested_too_deeply_keeps_its_deep_value_as_text() {
        for depth in [120usize, 200, 5000] {
            let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let text =
                format!(r#"{{"data":[{{"_id":"a"}},{{"_id":"deep","v":{deep}}},{{"_id":"b"}}]}}"#);
            let b = parse(text.into_bytes()).unwrap();
            let items = b.value["data"].as_array().unwrap().clone();
            let (events, malformed) = events(App::Alerts, items).unwrap();
            assert_eq!(malformed, 0);
            let ids: Vec<_> = events.iter().map(|e| e.id().unwrap().to_string()).collect();
            assert_eq!(ids, ["a", "deep", "b"], "{depth}");
        }
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
