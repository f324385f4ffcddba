//! The cursor: per app, the newest log time delivered (whole seconds, the
//! API's resolution) and the keys of the logs delivered at that second. A
//! run asks the API from that second on, inclusively, and skips those keys,
//! so logs sharing a second across page and run boundaries are neither lost
//! nor repeated.
//!
//! Logs that cannot move the cursor (no time on the query axis, or a time
//! in the future) are remembered by key in a bounded list of recent keys
//! instead, and skipped when a later run meets them again.
//!
//! Logs delivered ahead of the cursor (the API sent them out of time
//! order, and the cursor may not pass older logs still to come) are
//! remembered by key with their second, in a bounded list, until the
//! cursor passes them.
//!
//! File format (`export_log.state`):
//! `{"version":1,"cursors":{"Investigate":{"timestamp":"2023-01-01T23:23:59","ids":["a","b"],"recent":["h:..."],"ahead":[["2023-01-01T23:24:10","c"]]}}}`

use super::{StateError, write_atomic};
use crate::event::{App, Event, api_timestamp, parse_timestamp};
use crate::source::Vendor;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// A log's key as the cursor keeps it: its text inline when it is short
/// (API ids are: no allocation per log), else shared (allocated once,
/// however many cursors and steps hold it). Hashed and compared as its
/// text.
#[derive(Clone)]
pub enum Key {
    Inline { len: u8, bytes: [u8; Key::INLINE] },
    Shared(Arc<str>),
}

impl Key {
    /// The longest text kept inline (the enum stays 24 bytes).
    pub const INLINE: usize = 22;

    pub fn new(s: &str) -> Key {
        if s.len() <= Key::INLINE {
            let mut bytes = [0; Key::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Key::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Key::Shared(Arc::from(s))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // A whole `&str` was copied in: always valid.
            Key::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Key::Shared(s) => s,
        }
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // As `str` hashes: `HashSet<Key>::contains(&str)` relies on it.
        self.as_str().hash(h);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// The newest version of the file this agent writes and reads.
pub const VERSION: u64 = 1;

/// How many keys of logs that could not move the cursor are remembered
/// (the oldest are forgotten first: a forgotten one may be sent again,
/// never lost).
pub const RECENT_MAX: usize = 10_000;

/// Keys of recently delivered logs that could not move the cursor, oldest
/// first, bounded by [`RECENT_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recent {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Recent {
    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn insert(&mut self, key: &str) {
        if self.set.contains(key) {
            return;
        }
        if self.order.len() >= RECENT_MAX
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key.to_string());
        self.set.insert(key.to_string());
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.order.iter()
    }
}

/// How many keys of logs delivered ahead of the cursor are remembered
/// (the oldest handed over are forgotten first: a forgotten one may be
/// sent again, never lost).
pub const AHEAD_MAX: usize = 10_000;

/// How many ids of the cursor's second the file keeps, so that it stays
/// small enough to write after every confirmation (477 000 logs in one
/// second made a file of 5.5 MB): a run resumed inside a second of more
/// logs than this sends the others of that second again (duplicates,
/// never loss).
pub const IDS_SAVED_MAX: usize = 10_000;

/// Keys of logs delivered ahead of the cursor, with their second, in the
/// order they were delivered, bounded by [`AHEAD_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ahead {
    order: VecDeque<(DateTime<Utc>, Key)>,
    set: HashSet<Key>,
}

impl Ahead {
    pub fn contains(&self, key: &str) -> bool {
        !self.set.is_empty() && self.set.contains(key)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Remembers a log delivered at `t` (whole seconds).
    pub fn insert(&mut self, t: DateTime<Utc>, key: &Key) {
        if self.set.contains(key.as_str()) {
            return;
        }
        if self.order.len() >= AHEAD_MAX
            && let Some((_, old)) = self.order.pop_front()
        {
            self.set.remove(old.as_str());
        }
        self.order.push_back((t.trunc_subsecs(0), key.clone()));
        self.set.insert(key.clone());
    }

    /// Forgets the logs older than `t`: the cursor covers them by time.
    fn forget_before(&mut self, t: DateTime<Utc>) {
        self.keep(|at| at >= t);
    }

    /// Keeps only the logs whose second `keep` takes.
    fn keep(&mut self, keep: impl Fn(DateTime<Utc>) -> bool) {
        if self.order.iter().any(|(at, _)| !keep(*at)) {
            self.order.retain(|(at, _)| keep(*at));
            self.set = self.order.iter().map(|(_, k)| k.clone()).collect();
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The newest second delivered; `None` before the first log.
    pub timestamp: Option<DateTime<Utc>>,
    /// Keys of the logs delivered at `timestamp`.
    /// A hash set (looked up for every log); written sorted.
    pub ids: HashSet<Key>,
    /// Keys of delivered logs that could not move the cursor.
    pub recent: Recent,
    /// Keys of logs delivered ahead of `timestamp`, out of time order.
    pub ahead: Ahead,
    /// For an API that pages by position (a next-page URL): where the
    /// next run resumes, a page's URL and how many logs of that page were
    /// delivered already.
    pub position: Option<String>,
    pub skip: u64,
}

/// What handling one log does to the cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Move over the log at this time.
    Advance(DateTime<Utc>, Key),
    /// Remember its key (it has no usable time).
    Remember(String),
    /// A log delivered out of time order, at this time: the cursor stays,
    /// the log is remembered by key until the cursor passes it.
    Ahead(DateTime<Utc>, Key),
    /// The API's position moves to `skip` logs into the page at a URL
    /// (past a log of that page, or 0 into the next page); with the log's
    /// time, for the lag `status` shows.
    Position(Arc<str>, u64, Option<DateTime<Utc>>),
}

impl Cursor {
    /// A cursor that starts at `t` with nothing delivered yet.
    pub fn starting_at(t: DateTime<Utc>) -> Cursor {
        Cursor {
            timestamp: Some(t.trunc_subsecs(0)),
            ids: HashSet::new(),
            recent: Recent::default(),
            ahead: Ahead::default(),
            position: None,
            skip: 0,
        }
    }

    /// The same position, keeping `other`'s recent keys and the keys it
    /// delivered ahead (a restart at a date must not forget them).
    pub fn with_recent(mut self, other: &Cursor) -> Cursor {
        self.recent = other.recent.clone();
        self.ahead = other.ahead.clone();
        self.forget_passed();
        self
    }

    /// True when a log with this time and key was delivered: behind the
    /// cursor, or remembered by key.
    pub fn delivered(&self, time: Option<DateTime<Utc>>, key: &str) -> bool {
        time.is_some_and(|t| self.has_passed(t, key))
            || self.ahead.contains(key)
            || self.recent.contains(key)
    }

    /// Remembers a log delivered out of time order at `t`: into the ids if
    /// it is of the cursor's second, ahead if later; nothing if the cursor
    /// has passed it.
    pub fn note_ahead(&mut self, t: DateTime<Utc>, key: &Key) {
        let t = t.trunc_subsecs(0);
        match self.timestamp {
            Some(ts) if t < ts => {}
            Some(ts) if t == ts => {
                self.ids.insert(key.clone());
            }
            _ => self.ahead.insert(t, key),
        }
    }

    /// The whole answer from the cursor on was read, and every log of it
    /// delivered: the cursor moves to the newest log remembered ahead, if
    /// one is newer than it, but never past `limit` (logs held back for
    /// `--settle`, or a clock: what is later stays remembered ahead).
    pub fn catch_up(&mut self, limit: DateTime<Utc>) {
        let Some(newest) = self
            .ahead
            .order
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t <= limit)
            .max()
        else {
            return;
        };
        if self.timestamp.is_some_and(|ts| newest < ts) {
            self.forget_passed();
            return;
        }
        if self.timestamp != Some(newest) {
            self.timestamp = Some(newest);
            self.ids.clear();
        }
        for (t, k) in &self.ahead.order {
            if *t == newest {
                self.ids.insert(k.clone());
            }
        }
        self.ahead.keep(|t| t > newest);
    }

    /// Forgets the keys ahead that the cursor now covers by time.
    fn forget_passed(&mut self) {
        if let Some(ts) = self.timestamp
            && !self.ahead.is_empty()
        {
            self.ahead.forget_before(ts);
        }
    }

    /// Applies one [`Step`].
    pub fn apply(&mut self, step: &Step) {
        match step {
            Step::Advance(t, key) => self.advance_shared(*t, key),
            Step::Remember(key) => self.recent.insert(key),
            Step::Ahead(t, key) => self.note_ahead(*t, key),
            Step::Position(p, skip, t) => self.move_to(p, *skip, *t),
        }
    }

    /// Applies `steps` in order: the same as [`Cursor::apply`] on each,
    /// but only the keys of the newest second are hashed.
    pub fn apply_all<'s>(&mut self, steps: impl Iterator<Item = &'s Step> + Clone) {
        let newest = steps
            .clone()
            .filter_map(|s| match s {
                Step::Advance(t, _) => Some(t.trunc_subsecs(0)),
                _ => None,
            })
            .max();
        if let Some(t) = newest {
            if self.timestamp.is_none_or(|ts| t > ts) {
                self.timestamp = Some(t);
                self.ids.clear();
                self.forget_passed();
            }
            if self.timestamp == Some(t) {
                for s in steps.clone() {
                    if let Step::Advance(at, key) = s
                        && at.trunc_subsecs(0) == t
                    {
                        self.ids.insert(key.clone());
                    }
                }
            }
        }
        let mut last_position = None;
        let mut newest = None;
        for s in steps {
            match s {
                Step::Remember(key) => self.recent.insert(key),
                Step::Ahead(t, key) => self.note_ahead(*t, key),
                Step::Position(p, skip, t) => {
                    last_position = Some((p, *skip));
                    newest = newest.max(*t);
                }
                Step::Advance(..) => {}
            }
        }
        // Only the last position counts (one copy of its URL).
        if let Some((p, skip)) = last_position {
            self.move_to(p, skip, newest);
        }
    }

    /// The API's position moves to `skip` logs into the page at
    /// `position`; the newest time seen to `newest` if later.
    fn move_to(&mut self, position: &str, skip: u64, newest: Option<DateTime<Utc>>) {
        if self.position.as_deref() != Some(position) {
            self.position = Some(position.to_string());
        }
        self.skip = skip;
        if let Some(t) = newest.map(|t| t.trunc_subsecs(0))
            && self.timestamp.is_none_or(|ts| t > ts)
        {
            self.timestamp = Some(t);
            self.ids.clear();
            self.forget_passed();
        }
    }

    /// True when a log with this time and key is at or behind the cursor:
    /// older than its second, or in its second and already delivered.
    pub fn has_passed(&self, time: DateTime<Utc>, key: &str) -> bool {
        let t = time.trunc_subsecs(0);
        match self.timestamp {
            None => false,
            Some(ts) => t < ts || (t == ts && self.ids.contains(key)),
        }
    }

    /// Records that the log with this time and key was handled.
    pub fn advance(&mut self, time: DateTime<Utc>, key: &str) {
        self.advance_shared(time, &Key::new(key));
    }

    /// [`Cursor::advance`] with a key already shared.
    pub fn advance_shared(&mut self, time: DateTime<Utc>, key: &Key) {
        let t = time.trunc_subsecs(0);
        match self.timestamp {
            Some(ts) if t < ts => {}
            Some(ts) if t == ts => {
                self.ids.insert(key.clone());
            }
            _ => {
                self.timestamp = Some(t);
                self.ids.clear();
                self.ids.insert(key.clone());
                self.forget_passed();
            }
        }
    }

    /// [`Cursor::advance_shared`], unless the log is the cursor's already
    /// (in its second, with its key): then nothing changes, and false.
    pub fn advance_new(&mut self, time: DateTime<Utc>, key: &Key) -> bool {
        let t = time.trunc_subsecs(0);
        match self.timestamp {
            Some(ts) if t < ts => true,
            Some(ts) if t == ts => self.ids.insert(key.clone()),
            _ => {
                self.timestamp = Some(t);
                self.ids.clear();
                self.ids.insert(key.clone());
                self.forget_passed();
                true
            }
        }
    }

    /// Like [`Cursor::advance`] for an event; events without a time cannot
    /// move the cursor and are remembered instead.
    pub fn advance_over(&mut self, ev: &Event) {
        match ev.cursor_time {
            Some(t) => self.advance(t, &ev.key()),
            None => self.recent.insert(&ev.key()),
        }
    }

    fn from_json(app: &str, v: &Value) -> Result<Cursor, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("cursors.{app} is not an object"))?;
        let timestamp = match obj.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                parse_timestamp(s)
                    .ok_or_else(|| format!("cursors.{app}.timestamp {s:?} is not a timestamp"))?
                    .trunc_subsecs(0),
            ),
            Some(_) => return Err(format!("cursors.{app}.timestamp is not a string")),
        };
        let ids = match obj.get("ids") {
            None | Some(Value::Null) => HashSet::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(Key::new)
                        .ok_or_else(|| format!("cursors.{app}.ids holds a non-string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("cursors.{app}.ids is not an array")),
        };
        if timestamp.is_none() && !ids.is_empty() {
            return Err(format!("cursors.{app} has ids but no timestamp"));
        }
        let mut recent = Recent::default();
        match obj.get("recent") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for i in a {
                    let key = i
                        .as_str()
                        .ok_or_else(|| format!("cursors.{app}.recent holds a non-string"))?;
                    recent.insert(key);
                }
            }
            Some(_) => return Err(format!("cursors.{app}.recent is not an array")),
        }
        let mut ahead = Ahead::default();
        match obj.get("ahead") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                let bad = || format!("cursors.{app}.ahead holds something other than [time, key]");
                for i in a {
                    let pair = i.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                    let (Some(t), Some(key)) = (pair[0].as_str(), pair[1].as_str()) else {
                        return Err(bad());
                    };
                    let t = parse_timestamp(t).ok_or_else(|| {
                        format!("cursors.{app}.ahead holds {t:?}, not a timestamp")
                    })?;
                    ahead.insert(t, &Key::new(key));
                }
            }
            Some(_) => return Err(format!("cursors.{app}.ahead is not an array")),
        }
        let position = match obj.get("position") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => return Err(format!("cursors.{app}.position is not a URL")),
        };
        let skip = match obj.get("skip") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("cursors.{app}.skip is not a count"))?,
        };
        let mut c = Cursor {
            timestamp,
            ids,
            recent,
            ahead,
            position,
            skip,
        };
        c.forget_passed();
        Ok(c)
    }
}

/// The whole `export_log.state` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorFile {
    /// The vendor API whose positions these are (`"source"`; a file
    /// without one is CloudSOC's, as every file before it was).
    pub source: Vendor,
    pub cursors: BTreeMap<App, Cursor>,
}

impl CursorFile {
    /// Reads the file; a missing file is an empty state (first run).
    /// Anything unreadable is an error: falling back to the beginning would
    /// flood the SIEM with every log the API keeps.
    pub fn load(path: &Path) -> Result<CursorFile, StateError> {
        CursorFile::load_for(path, Vendor::CloudSoc)
    }

    /// [`CursorFile::load`] for a run of `source`: a missing file is an
    /// empty state of that source; a file of another source is refused
    /// (its positions mean nothing to this one's API).
    pub fn load_for(path: &Path, source: Vendor) -> Result<CursorFile, StateError> {
        let file = CursorFile::load_any(path, source)?;
        if file.source != source {
            return Err(StateError::OtherSource {
                path: path.to_path_buf(),
                file: file.source,
                run: source,
            });
        }
        Ok(file)
    }

    /// The file whatever its source (a missing file: an empty state of
    /// `source`).
    pub fn load_any(path: &Path, source: Vendor) -> Result<CursorFile, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CursorFile {
                    source,
                    ..CursorFile::default()
                });
            }
            // Unreadable is not corrupt: -r would re-export 180 days.
            Err(e) => {
                return Err(StateError::Unreadable {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        match CursorFile::parse(&bytes) {
            Ok(f) => Ok(f),
            Err(reason) => {
                // Cut by a power loss between two syncs: the version
                // before it, if whole, loses nothing (some logs may be
                // sent again).
                let twin = super::writer::twin(path);
                if std::fs::symlink_metadata(&twin).is_ok_and(|m| m.is_file())
                    && let Ok(b) = std::fs::read(&twin)
                    && let Ok(f) = CursorFile::parse(&b)
                {
                    tracing::warn!(
                        "{} {reason}; using the version before it ({}): some logs may be sent again",
                        path.display(),
                        twin.display()
                    );
                    return Ok(f);
                }
                Err(StateError::Corrupt {
                    path: path.to_path_buf(),
                    reason,
                })
            }
        }
    }

    fn parse(bytes: &[u8]) -> Result<CursorFile, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("is not valid JSON ({e})"))?;
        let obj = v.as_object().ok_or("is not a JSON object")?;
        match obj.get("version").and_then(Value::as_u64) {
            Some(v) if v > VERSION => {
                return Err(format!(
                    "was written by a newer siem-agent (state version {v}; this one reads up to {VERSION})"
                ));
            }
            Some(_) => {}
            None => return Err("has no \"version\" number".into()),
        }
        let source = match obj.get("source") {
            None => Vendor::CloudSoc,
            Some(Value::String(s)) => {
                Vendor::parse(s).ok_or_else(|| format!("names an unknown source {s:?}"))?
            }
            Some(_) => return Err("\"source\" is not a string".into()),
        };
        let mut cursors = BTreeMap::new();
        let empty = Map::new();
        let raw = match obj.get("cursors") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err("\"cursors\" is not an object".into()),
        };
        for (name, c) in raw {
            let Some(app) = App::parse_in(source, name) else {
                return Err(format!("names an unknown app {name:?} (source {source})"));
            };
            cursors.insert(app, Cursor::from_json(name, c)?);
        }
        Ok(CursorFile { source, cursors })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(std::iter::empty())
    }

    /// The file's bytes, with `replace`'s cursors in place of the saved
    /// ones of their apps. Written without building a JSON tree: a run does
    /// this each time its outputs confirm a batch.
    pub fn to_bytes_with<'a>(
        &self,
        replace: impl IntoIterator<Item = (App, &'a Cursor)>,
    ) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct FileView<'a> {
            version: u64,
            source: &'static str,
            cursors: BTreeMap<&'static str, CursorView<'a>>,
        }
        #[derive(serde::Serialize)]
        struct CursorView<'a> {
            timestamp: Option<String>,
            #[serde(serialize_with = "strs")]
            ids: &'a HashSet<Key>,
            #[serde(skip_serializing_if = "VecDeque::is_empty")]
            recent: &'a VecDeque<String>,
            #[serde(skip_serializing_if = "VecDeque::is_empty", serialize_with = "pairs")]
            ahead: &'a VecDeque<(DateTime<Utc>, Key)>,
            #[serde(skip_serializing_if = "Option::is_none")]
            position: Option<&'a str>,
            #[serde(skip_serializing_if = "is_zero")]
            skip: u64,
        }
        fn is_zero(n: &u64) -> bool {
            *n == 0
        }
        fn strs<S: serde::Serializer>(ids: &&HashSet<Key>, s: S) -> Result<S::Ok, S::Error> {
            // Sorted: the same cursor always makes the same file. At most
            // IDS_SAVED_MAX (the first in order): past them, a run resumed
            // inside that second sends its other logs again.
            let mut sorted: Vec<&str> = ids.iter().map(Key::as_str).collect();
            if sorted.len() > IDS_SAVED_MAX {
                sorted.select_nth_unstable(IDS_SAVED_MAX);
                sorted.truncate(IDS_SAVED_MAX);
            }
            sorted.sort_unstable();
            s.collect_seq(sorted)
        }
        fn pairs<S: serde::Serializer>(
            ahead: &&VecDeque<(DateTime<Utc>, Key)>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(ahead.iter().map(|(t, k)| (api_timestamp(*t), k.as_str())))
        }
        fn view(c: &Cursor) -> CursorView<'_> {
            CursorView {
                timestamp: c.timestamp.map(api_timestamp),
                ids: &c.ids,
                recent: &c.recent.order,
                ahead: &c.ahead.order,
                position: c.position.as_deref(),
                skip: c.skip,
            }
        }
        let mut cursors: BTreeMap<&'static str, CursorView> = self
            .cursors
            .iter()
            .map(|(app, c)| (app.as_str(), view(c)))
            .collect();
        for (app, c) in replace {
            cursors.insert(app.as_str(), view(c));
        }
        let mut out = serde_json::to_vec(&FileView {
            version: VERSION,
            source: self.source.name(),
            cursors,
        })
        .unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        write_atomic(path, &self.to_bytes())
    }

    pub fn cursor(&self, app: App) -> Cursor {
        self.cursors.get(&app).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    const _: () = assert!(size_of::<Key>() == 24);

    proptest::proptest! {
        /// A key is its text, inline or shared, found by its text.
        #[test]
        fn a_key_is_its_text(a in "\\PC{0,30}", b in "[ab]{20,24}") {
            for s in [&a, &b] {
                let k = Key::new(s);
                proptest::prop_assert_eq!(k.as_str(), s.as_str());
                proptest::prop_assert_eq!(matches!(k, Key::Inline { .. }), s.len() <= Key::INLINE);
                let set: HashSet<Key> = [k.clone()].into_iter().collect();
                proptest::prop_assert!(set.contains(s.as_str()));
            }
            proptest::prop_assert_eq!(Key::new(&a) == Key::new(&b), a == b);
        }

        /// A batch moves the cursor exactly as its steps one by one do.
        #[test]
        fn a_batch_of_steps_is_the_same_as_each_in_turn(
            start in proptest::option::of(0i64..6),
            steps in proptest::collection::vec((0i64..6, 0u32..999, 0u8..8, 0u8..5), 0..40),
        ) {
            let base = t("2023-01-01T00:00:00");
            let mut one = match start {
                Some(s) => Cursor::starting_at(base + chrono::Duration::seconds(s)),
                None => Cursor::default(),
            };
            one.advance(base + chrono::Duration::seconds(3), "k1");
            let mut all = one.clone();
            let steps: Vec<Step> = steps
                .iter()
                .map(|&(sec, ms, key, kind)| match kind {
                    0 => Step::Remember(format!("r{key}")),
                    _ => Step::Advance(
                        base + chrono::Duration::seconds(sec) + chrono::Duration::milliseconds(i64::from(ms)),
                        Key::new(&format!("k{key}")),
                    ),
                })
                .collect();
            for s in &steps {
                one.apply(s);
            }
            all.apply_all(steps.iter());
            proptest::prop_assert_eq!(one, all);
        }
    }

    #[test]
    fn same_second_logs_are_tracked_by_key() {
        let mut c = Cursor::default();
        assert!(!c.has_passed(t("2023-01-01T00:00:05"), "a"));
        c.advance(t("2023-01-01T00:00:05"), "a");
        c.advance(t("2023-01-01T00:00:05"), "b");
        assert!(c.has_passed(t("2023-01-01T00:00:05"), "a"));
        assert!(c.has_passed(t("2023-01-01T00:00:05.900"), "b"));
        assert!(!c.has_passed(t("2023-01-01T00:00:05"), "c"));
        assert!(c.has_passed(t("2023-01-01T00:00:04"), "z"));
        c.advance(t("2023-01-01T00:00:06"), "c");
        assert_eq!(c.ids.len(), 1);
        assert!(c.has_passed(t("2023-01-01T00:00:05"), "c"));
        // An older log never moves it back.
        c.advance(t("2023-01-01T00:00:01"), "old");
        assert_eq!(c.timestamp, Some(t("2023-01-01T00:00:06")));
    }

    #[test]
    fn recent_keys_are_bounded_oldest_first_and_saved() {
        let mut c = Cursor::default();
        for i in 0..RECENT_MAX + 5 {
            c.apply(&Step::Remember(format!("k{i}")));
        }
        c.apply(&Step::Remember("k9".into()));
        assert_eq!(c.recent.len(), RECENT_MAX);
        assert!(!c.recent.contains("k4") && c.recent.contains("k5"));
        let mut f = CursorFile::default();
        f.cursors.insert(App::Detect, c.clone());
        let back = CursorFile::parse(&f.to_bytes()).unwrap();
        assert_eq!(back.cursor(App::Detect), c);
        assert!(
            CursorFile::parse(br#"{"version":1,"cursors":{"Detect":{"recent":[1]}}}"#).is_err()
        );
    }

    #[test]
    fn logs_delivered_ahead_are_kept_until_the_cursor_passes_them() {
        let mut c = Cursor::starting_at(t("2023-01-01T00:00:05"));
        c.apply(&Step::Ahead(t("2023-01-01T00:00:09.500"), Key::new("d9")));
        c.apply(&Step::Ahead(t("2023-01-01T00:00:07"), Key::new("d7")));
        c.apply(&Step::Ahead(t("2023-01-01T00:00:05"), Key::new("d5")));
        c.apply(&Step::Ahead(t("2023-01-01T00:00:01"), Key::new("d1")));
        assert_eq!(c.timestamp, Some(t("2023-01-01T00:00:05")));
        assert_eq!(c.ahead.len(), 2);
        assert!(c.delivered(Some(t("2023-01-01T00:00:09")), "d9"));
        assert!(c.delivered(Some(t("2023-01-01T00:00:05")), "d5"));
        assert!(c.delivered(None, "d7"));
        assert!(!c.delivered(Some(t("2023-01-01T00:00:08")), "x"));
        let mut f = CursorFile::default();
        f.cursors.insert(App::Investigate, c.clone());
        let bytes = f.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""ahead":[["2023-01-01T00:00:09","d9"],["2023-01-01T00:00:07","d7"]]"#),
            "{text}"
        );
        assert_eq!(
            CursorFile::parse(&bytes).unwrap().cursor(App::Investigate),
            c
        );
        let mut read = c.clone();
        read.catch_up(t("2030-01-01T00:00:00"));
        assert_eq!(read.timestamp, Some(t("2023-01-01T00:00:09")));
        assert!(read.ahead.is_empty() && read.ids.contains("d9") && read.ids.len() == 1);
        // Never past the limit: what is later stays ahead.
        let mut held = c.clone();
        held.catch_up(t("2023-01-01T00:00:08"));
        assert_eq!(held.timestamp, Some(t("2023-01-01T00:00:07")));
        assert!(held.ahead.contains("d9") && held.ahead.len() == 1);
        // The cursor passes one: it is forgotten, the later one kept.
        c.advance(t("2023-01-01T00:00:08"), "e");
        assert_eq!(c.ahead.len(), 1);
        assert!(c.delivered(None, "d9") && !c.ahead.contains("d7"));
        for bad in [
            r#"{"version":1,"cursors":{"Detect":{"ahead":[1]}}}"#,
            r#"{"version":1,"cursors":{"Detect":{"ahead":[["soon","k"]]}}}"#,
            r#"{"version":1,"cursors":{"Detect":{"ahead":{}}}}"#,
        ] {
            let e = CursorFile::parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains("cursors.Detect.ahead"), "{e}");
        }
    }

    #[test]
    fn the_file_keeps_at_most_ids_saved_max_ids_of_a_second() {
        let mut c = Cursor::default();
        for i in 0..IDS_SAVED_MAX + 50 {
            c.advance(t("2023-01-01T00:00:05"), &format!("k{i:06}"));
        }
        let mut f = CursorFile::default();
        f.cursors.insert(App::Investigate, c);
        let back = CursorFile::parse(&f.to_bytes()).unwrap();
        let ids = &back.cursor(App::Investigate).ids;
        assert_eq!(ids.len(), IDS_SAVED_MAX);
        // The first in order: the same cursor makes the same file.
        assert!(
            ids.contains("k000000") && !ids.contains(format!("k{:06}", IDS_SAVED_MAX).as_str())
        );
        assert_eq!(f.to_bytes(), f.to_bytes());
    }

    #[test]
    fn ahead_is_bounded_oldest_first() {
        let mut c = Cursor::starting_at(t("2023-01-01T00:00:00"));
        for i in 0..AHEAD_MAX + 3 {
            c.apply(&Step::Ahead(
                t("2023-01-01T00:00:09"),
                Key::new(&format!("k{i}")),
            ));
        }
        assert_eq!(c.ahead.len(), AHEAD_MAX);
        assert!(!c.ahead.contains("k2") && c.ahead.contains("k3"));
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export_log.state");
        assert_eq!(CursorFile::load(&path).unwrap(), CursorFile::default());
        let mut f = CursorFile::default();
        let mut c = Cursor::default();
        c.advance(t("2023-01-01T23:23:59"), "x\"y");
        c.advance(t("2023-01-01T23:23:59"), "z");
        f.cursors.insert(App::Investigate, c.clone());
        f.save(&path).unwrap();
        let back = CursorFile::load(&path).unwrap();
        assert_eq!(back.cursor(App::Investigate), c);
        assert_eq!(back.cursor(App::Detect), Cursor::default());
    }

    #[test]
    fn the_file_records_its_source_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export_log.state");
        // A first run's empty state is the run's source.
        assert_eq!(
            CursorFile::load_for(&path, Vendor::Mcas).unwrap().source,
            Vendor::Mcas
        );
        let mut f = CursorFile::default();
        let mut c = Cursor::default();
        c.advance(t("2023-01-01T23:23:59"), "a");
        f.cursors.insert(App::Investigate, c);
        f.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"version":1,"source":"cloudsoc","cursors":{"#),
            "{text}"
        );
        assert_eq!(CursorFile::load_for(&path, Vendor::CloudSoc).unwrap(), f);
        let e = CursorFile::load_for(&path, Vendor::Cirrus)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("export_log.state: holds the cursor of source cloudsoc, not of cirrus; nothing was sent. Give each source its own --state-dir"),
            "{e}"
        );
        // A file written before the source was recorded is CloudSOC's.
        std::fs::write(
            &path,
            r#"{"version":1,"cursors":{"Detect":{"timestamp":"2023-01-01T23:23:59","ids":["b"]}}}"#,
        )
        .unwrap();
        assert!(CursorFile::load_for(&path, Vendor::CloudSoc).is_ok());
        assert!(CursorFile::load_for(&path, Vendor::Mcas).is_err());
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        for (bytes, reason) in [
            (
                &b"{\"version\":1,\"source\":\"okta\"}"[..],
                "unknown source \"okta\"",
            ),
            (
                b"{\"version\":1,\"source\":7}",
                "\"source\" is not a string",
            ),
            (&b"{not json"[..], "is not valid JSON"),
            (b"[]", "is not a JSON object"),
            (b"{}", "has no \"version\""),
            (b"{\"version\":99}", "newer siem-agent"),
            (b"{\"version\":1,\"cursors\":{\"Other\":{}}}", "unknown app"),
            (
                b"{\"version\":1,\"cursors\":{\"Detect\":{\"timestamp\":\"soon\"}}}",
                "cursors.Detect.timestamp",
            ),
            (
                b"{\"version\":1,\"cursors\":{\"Detect\":{\"timestamp\":null,\"ids\":[\"a\"]}}}",
                "ids but no timestamp",
            ),
            (b"\xff\xfe", "is not valid JSON"),
        ] {
            let e = CursorFile::parse(bytes).unwrap_err();
            assert!(e.contains(reason), "{e} should contain {reason}");
        }
    }

    #[test]
    fn a_cut_file_falls_back_to_the_version_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export_log.state");
        let mut f = CursorFile::default();
        let mut c = Cursor::default();
        c.advance(t("2023-01-01T23:23:59"), "a");
        f.cursors.insert(App::Investigate, c);
        std::fs::write(super::super::writer::twin(&path), f.to_bytes()).unwrap();
        std::fs::write(&path, &f.to_bytes()[..20]).unwrap();
        assert_eq!(CursorFile::load(&path).unwrap(), f);
        // Without a whole twin, the cut file is an error.
        std::fs::write(super::super::writer::twin(&path), "{").unwrap();
        assert!(CursorFile::load(&path).is_err());
    }

    #[test]
    fn an_unreadable_file_advises_the_permission_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in its place cannot be read as a file, even by root.
        let path = dir.path().join("export_log.state");
        std::fs::create_dir(&path).unwrap();
        let msg = CursorFile::load(&path).unwrap_err().to_string();
        assert!(msg.contains("export_log.state"), "{msg}");
        assert!(
            msg.contains("owner or permissions") && !msg.contains("-r"),
            "{msg}"
        );
    }

    #[test]
    fn corrupt_error_names_the_file_and_the_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export_log.state");
        std::fs::write(&path, "garbage").unwrap();
        let msg = CursorFile::load(&path).unwrap_err().to_string();
        assert!(msg.contains("export_log.state"));
        assert!(msg.contains("-r") && msg.contains("--start_date"));
        assert!(!msg.contains('\n'));
    }
}
