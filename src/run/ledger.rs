//! The delivery discipline of one stream's export: which records a run
//! may send, which it must pass over, when a stream that goes nowhere
//! ends, and how far the cursor may move. Every source obeys it; the run
//! loop (`run/mod.rs`) only applies it.
//!
//! # Invariants
//!
//! 1. **A run never writes the same record twice.** Every record with an
//!    id that the run meets is remembered by a keyed 64-bit hash (at most
//!    [`KEYS_MAX`], about 9 MiB, however long the run; past it the oldest
//!    are forgotten: a repeat of one of those is a duplicate, never a
//!    loss) and a record met again is passed over. A record without an id
//!    (a Cirrus entry, a declared API without `id_field`) is never dropped
//!    for its content, since two identical login failures in one second
//!    are two events: a page whose whole content was met before in this run
//!    counts as nothing new (invariant 2), so that a loop of such pages
//!    ends after at most [`STALL_PAGES`] of them.
//! 2. **A stream that makes no progress ends.** The same request on the
//!    wire twice (method, URL and body, not the run's own counters), or
//!    [`STALL_PAGES`] pages in a row that bring nothing new, ends that
//!    stream with one warning naming the source and what repeated. What was
//!    delivered is committed, the other streams go on, and the run fails
//!    (logs may be missing upstream); the status says why.
//! 3. **The cursor never passes a record that is unconfirmed or may still
//!    come.** It moves over confirmed records in the order the API sent
//!    them, while that order is the time order. From the first page that
//!    runs backwards (newest first, or a record older than one handled
//!    before it), the cursor stays where it was until the run has read the
//!    whole answer; the records confirmed meanwhile are remembered by key in
//!    the state file ([`crate::state::cursor::AHEAD_MAX`] of them, past it
//!    duplicates, never loss), so that the run after one cut short (an API
//!    error, `--max-events`, a signal, a kill) skips them instead of
//!    sending them again.
//! 4. **The cursor file keeps up.** It is written (a new file renamed over
//!    the old) after each confirmation, at most every
//!    [`crate::state::writer::SPACING`], and synced to disk at most once a
//!    second and at the end of the run: a killed process repeats at most
//!    what was in flight (and what was confirmed in that spacing), a
//!    machine crash at most a second more.

use crate::event::Event;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// A 64-bit hash of `bytes` under `seed`: eight bytes at a time, each
/// multiplied in and folded, then mixed whole (MurmurHash3's finaliser),
/// so that ids differing in one character differ in about half the bits.
/// (SipHash cost a tenth of the export's CPU here, twice per record.)
fn keyed_hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// How many record keys one stream's run remembers.
pub const KEYS_MAX: usize = 450_000;

/// Pages in a row bringing nothing new that end a stream.
pub const STALL_PAGES: u32 = 3;

/// Hashes that are already hashes: used as they are.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64s are hashed here; anything else is folded in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashedSet = HashSet<u64, BuildHasherDefault<Passthrough>>;

/// A set of 64-bit keys, each with its record's second, that forgets its
/// oldest past [`KEYS_MAX`].
///
/// While the records come in time order (what nearly every API does), a
/// repeat can only be of the newest second: the keys are kept in arrival
/// order (sequential writes), and only the newest second's are hashed. The
/// first record older than the newest second (or without a time) builds
/// the hash set of every key, used from then on. (A hash set of every key
/// from the start cost a tenth of the export's CPU.)
#[derive(Default)]
struct KeySet {
    /// (second, key), oldest first.
    order: VecDeque<(i64, u64)>,
    /// Every key of `order`, once the order is broken.
    all: Option<HashedSet>,
    /// The newest second, and its keys, while in order.
    newest: i64,
    current: HashedSet,
}

impl KeySet {
    /// Adds `k` of a record at `second`; false when it was there already.
    fn insert(&mut self, second: Option<i64>, k: u64) -> bool {
        let at = second.unwrap_or(i64::MIN);
        if self.all.is_none() {
            if self.order.is_empty() || at > self.newest {
                if self.current.capacity() > 4096 {
                    self.current = HashedSet::default();
                } else {
                    self.current.clear();
                }
                self.newest = at;
            } else if at < self.newest || second.is_none() {
                let mut all = HashedSet::default();
                all.reserve(self.order.len() + 1);
                all.extend(self.order.iter().map(|&(_, k)| k));
                self.all = Some(all);
                self.current = HashedSet::default();
            }
        }
        let fresh = match &mut self.all {
            Some(all) => all.insert(k),
            None => self.current.insert(k),
        };
        if !fresh {
            return false;
        }
        if self.order.len() >= KEYS_MAX
            && let Some((_, old)) = self.order.pop_front()
            && let Some(all) = &mut self.all
        {
            all.remove(&old);
        }
        self.order.push_back((at, k));
        true
    }
}

/// What the run knows of one stream's records and pages, for invariants 1
/// and 2.
pub struct Ledger {
    /// Keys of the records with an id met so far (sent or passed over).
    met: KeySet,
    /// The content of each page met so far.
    pages: HashedSet,
    /// Pages in a row that brought nothing new.
    idle: u32,
    /// Records of the current page new to this run.
    fresh: u64,
    /// The hash of each record of the current page, in order.
    hashes: Vec<u64>,
    /// The current page's content was met before: none of it is new.
    repeat: bool,
    /// Random per run: a record cannot be made to collide on purpose.
    seed: u64,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger::new()
    }
}

/// What a page is to the run.
#[derive(Debug, PartialEq, Eq)]
pub enum PageIs {
    /// Not seen before in this run.
    New,
    /// The same content as a page met before: nothing of it is new.
    Repeated,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger {
            met: KeySet::default(),
            pages: HashedSet::default(),
            idle: 0,
            fresh: 0,
            hashes: Vec::new(),
            repeat: false,
            seed: RandomState::new().build_hasher().finish(),
        }
    }

    /// Starts a page: whether its content was met before. (An empty page
    /// ends the stream before it gets here.) Each record is hashed once,
    /// here, by its key (its id, or a hash of its content).
    pub fn begin_page(&mut self, events: &[Event]) -> PageIs {
        self.fresh = 0;
        self.hashes.clear();
        let mut page = keyed_hash(self.seed, &(events.len() as u64).to_le_bytes());
        for ev in events {
            let h = keyed_hash(self.seed, ev.key().as_bytes());
            self.hashes.push(h);
            page = (page ^ h)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(23);
        }
        self.repeat = !self.pages.insert(page);
        if self.repeat {
            PageIs::Repeated
        } else {
            PageIs::New
        }
    }

    /// The record at `index` of the page, which has an id, is met (with
    /// its time, if it has one): true the first time in this run (it
    /// counts as something new), false for a repeat (pass it over).
    pub fn meet(&mut self, index: usize, time: Option<chrono::DateTime<chrono::Utc>>) -> bool {
        let h = self.hashes.get(index).copied().unwrap_or_default();
        let fresh = self.met.insert(time.map(|t| t.timestamp()), h);
        self.fresh += u64::from(fresh);
        fresh
    }

    /// A record without an id: new, unless its page was met before
    /// (it is still sent: two identical events are two).
    pub fn meet_unkeyed(&mut self) {
        self.fresh += u64::from(!self.repeat);
    }

    /// Ends a page: `Some(reason)` when the stream must end for lack of
    /// progress (invariant 2).
    pub fn end_page(&mut self) -> Option<String> {
        if self.fresh > 0 {
            self.idle = 0;
            return None;
        }
        self.idle += 1;
        (self.idle >= STALL_PAGES).then(|| {
            format!(
                "{STALL_PAGES} pages in a row brought nothing new (the API keeps answering records this run already met)"
            )
        })
    }
}

/// Requests made for one stream, by what went on the wire (invariant 2).
#[derive(Default)]
pub struct Requests {
    seen: HashSet<String>,
}

impl Requests {
    /// Notes a request; false when the same was made before.
    pub fn first_time(&mut self, wire: String) -> bool {
        self.seen.insert(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_met_once_and_the_oldest_are_forgotten_past_the_budget() {
        let mut l = Ledger::new();
        l.hashes = vec![keyed_hash(l.seed, b"a"), keyed_hash(l.seed, b"b")];
        assert!(l.meet(0, None));
        assert!(!l.meet(0, None));
        assert!(l.meet(1, None));
        for ordered in [true, false] {
            let mut s = KeySet::default();
            for k in 0..(KEYS_MAX as u64 + 10) {
                let second = if ordered {
                    k as i64 / 7
                } else {
                    -(k as i64 % 5)
                };
                assert!(s.insert(Some(second), k));
            }
            assert_eq!(s.order.len(), KEYS_MAX);
            assert_eq!(s.all.is_some(), !ordered);
            if let Some(all) = &s.all {
                assert_eq!(all.len(), KEYS_MAX);
                // The first ten were forgotten; the rest are known.
                assert!(s.insert(Some(0), 3));
                assert!(!s.insert(Some(0), KEYS_MAX as u64 + 9));
            }
        }
    }

    #[test]
    fn in_order_a_repeat_of_the_newest_second_is_known_and_an_older_one_too() {
        let mut s = KeySet::default();
        assert!(s.insert(Some(10), 1));
        assert!(s.insert(Some(10), 2));
        assert!(!s.insert(Some(10), 1));
        assert!(s.insert(Some(11), 3));
        assert!(s.all.is_none());
        // Back in time: every key is known from here on.
        assert!(!s.insert(Some(10), 2));
        assert!(s.all.is_some());
        assert!(!s.insert(Some(11), 3));
        assert!(s.insert(Some(9), 4));
        assert!(!s.insert(None, 4));
    }

    #[test]
    fn pages_with_nothing_new_end_the_stream_after_three() {
        let mut l = Ledger::new();
        l.hashes = vec![keyed_hash(l.seed, b"a"), keyed_hash(l.seed, b"b")];
        l.fresh = 0;
        assert!(l.meet(0, None));
        assert_eq!(l.end_page(), None);
        for round in 1..=STALL_PAGES {
            l.fresh = 0;
            assert!(!l.meet(0, None));
            let end = l.end_page();
            assert_eq!(end.is_some(), round == STALL_PAGES, "round {round}");
        }
        // Something new in between starts the count again.
        let mut l = Ledger::new();
        l.hashes = vec![keyed_hash(l.seed, b"a"), keyed_hash(l.seed, b"b")];
        for (i, key) in [0, 0, 1, 1, 1, 1].into_iter().enumerate() {
            l.fresh = 0;
            l.meet(key, None);
            assert_eq!(l.end_page().is_some(), i == 5, "page {i}");
        }
    }

    proptest::proptest! {
        /// Keys that differ hash apart (no collision among thousands of
        /// near-identical ids), and the same key under the same seed alike.
        #[test]
        fn near_identical_ids_hash_apart(seed: u64, prefix in "[a-f0-9]{0,30}") {
            let mut seen = HashSet::new();
            for i in 0..2000u32 {
                let key = format!("{prefix}{i:x}");
                proptest::prop_assert!(seen.insert(keyed_hash(seed, key.as_bytes())), "{key}");
                proptest::prop_assert_eq!(keyed_hash(seed, key.as_bytes()), keyed_hash(seed, key.as_bytes()));
            }
        }
    }

    #[test]
    fn the_same_request_twice_is_noticed() {
        let mut r = Requests::default();
        assert!(r.first_time("GET http://x/p0".into()));
        assert!(r.first_time("GET http://x/p1".into()));
        assert!(!r.first_time("GET http://x/p0".into()));
    }
}
