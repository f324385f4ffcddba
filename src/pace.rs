//! Pace: `--rate N` as a steady pace. Event `i` is due at `start + i/N`;
//! the writer waits only when it is at least [`MIN_WAIT`] ahead (timers
//! are not finer than that), so at high rates events leave in slices of a
//! millisecond, never in bursts of a second's worth. After a stall (a slow
//! page, a slow receiver) the schedule restarts from now instead of
//! catching up in a burst.
//!
//! Pure: the caller passes the time in.

use std::time::{Duration, Instant};

/// The shortest wait worth asking a timer for.
pub const MIN_WAIT: Duration = Duration::from_millis(1);

/// How far behind schedule the writer may fall before the schedule is
/// restarted rather than caught up.
pub const MAX_LAG: Duration = Duration::from_millis(50);

/// The pace over UDP when `--rate` is not given. UDP has no flow control:
/// sent at full speed, a burst overflows the receiver's socket buffer
/// (rsyslog with Debian's defaults lost half of 220 messages of 2 KiB),
/// and nothing tells the sender. At this pace rsyslog keeps up.
pub const UDP_RATE: u32 = 10_000;

#[derive(Clone, Debug)]
pub struct Pacer {
    /// Events per second; 0 = no pacing.
    rate: u32,
    start: Option<Instant>,
    /// Events since `start`.
    sent: u64,
}

impl Pacer {
    pub fn new(rate: u32) -> Pacer {
        Pacer {
            rate,
            start: None,
            sent: 0,
        }
    }

    /// Whether events are paced at all (else the clock need not be read).
    pub fn is_pacing(&self) -> bool {
        self.rate > 0
    }

    /// Called before writing one event at time `now`: how long to wait
    /// first, if at all. Counts the event.
    pub fn before_event(&mut self, now: Instant) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let start = *self.start.get_or_insert(now);
        let due = start + self.offset(self.sent);
        self.sent += 1;
        if due > now {
            let wait = due - now;
            return (wait >= MIN_WAIT).then_some(wait);
        }
        if now - due > MAX_LAG {
            // Fell behind: restart the schedule here.
            self.start = Some(now);
            self.sent = 1;
        }
        None
    }

    fn offset(&self, n: u64) -> Duration {
        Duration::from_nanos((u128::from(n) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a writer that takes no time and waits exactly as told;
    /// returns when each event left.
    fn simulate(rate: u32, events: u64) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut now = t0;
        let mut p = Pacer::new(rate);
        (0..events)
            .map(|_| {
                if let Some(w) = p.before_event(now) {
                    now += w;
                }
                now - t0
            })
            .collect()
    }

    #[test]
    fn zero_rate_never_waits() {
        assert!(simulate(0, 1000).iter().all(|d| d.is_zero()));
    }

    #[test]
    fn rates_are_accurate_and_steady() {
        for rate in [1u32, 10, 100, 1000, 10_000, 100_000] {
            let n = u64::from(rate.min(20_000)) * 2;
            let times = simulate(rate, n + 1);
            let expected = Duration::from_secs_f64(n as f64 / f64::from(rate));
            let got = times[n as usize];
            let err = got.abs_diff(expected);
            assert!(err <= MIN_WAIT, "rate {rate}: {got:?} vs {expected:?}");
            // No second holds more than rate events (+ one timer slice).
            let slice = (u64::from(rate) / 1000).max(1);
            for w in times.windows((rate as usize + slice as usize + 1).min(times.len())) {
                if w.len() as u64 == u64::from(rate) + slice + 1 {
                    assert!(
                        w[w.len() - 1] - w[0] >= Duration::from_millis(999),
                        "rate {rate}: burst"
                    );
                }
            }
        }
    }

    #[test]
    fn a_stall_does_not_cause_a_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100);
        assert_eq!(p.before_event(t0), None);
        // The writer stalls for 5 s; the next events must not all go at once.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(p.before_event(later), None);
        let w = p
            .before_event(later)
            .expect("second event after a stall waits");
        assert_eq!(w, Duration::from_millis(10));
    }
}
