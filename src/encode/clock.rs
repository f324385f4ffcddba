//! Times written digit by digit: a log's time is formatted for every log,
//! and chrono's `format` parses its pattern each time it is called.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Appends `n` in decimal, at least `width` digits (zero-padded).
pub fn push_padded(n: u32, width: usize, out: &mut Vec<u8>) {
    super::text::push_padded(u64::from(n), width, out);
}

/// Appends `YYYY-MM-DDTHH:MM:SS` (years 0 to 9999; others as chrono
/// writes them).
pub fn push_iso_seconds(t: DateTime<Utc>, out: &mut Vec<u8>) {
    thread_local! {
        /// The last second written, and its text: the logs of a page
        /// mostly share their second with the one before.
        static LAST: std::cell::Cell<(i64, [u8; 19])> = const { std::cell::Cell::new((i64::MIN, [0; 19])) };
    }
    let secs = t.timestamp();
    let (last, text) = LAST.get();
    if last == secs {
        out.extend_from_slice(&text);
        return;
    }
    let year = t.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00";
    let digits = |b: &mut [u8], n: u32| {
        let mut v = n;
        for d in b.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut b[0..4], year as u32);
    digits(&mut b[5..7], t.month());
    digits(&mut b[8..10], t.day());
    digits(&mut b[11..13], t.hour());
    digits(&mut b[14..16], t.minute());
    digits(&mut b[17..19], t.second());
    out.extend_from_slice(&b);
    LAST.set((secs, b));
}

/// Appends `t` as milliseconds since the Unix epoch, in decimal.
pub fn push_epoch_millis(t: DateTime<Utc>, out: &mut Vec<u8>) {
    thread_local! {
        /// The last value written, and its text (see `push_iso_seconds`).
        static LAST: std::cell::Cell<(i64, u8, [u8; 20])> = const { std::cell::Cell::new((i64::MIN, 0, [0; 20])) };
    }
    let ms = t.timestamp_millis();
    let (last, n, text) = LAST.get();
    if last == ms {
        out.extend_from_slice(&text[..usize::from(n)]);
        return;
    }
    let start = out.len();
    if ms < 0 {
        out.push(b'-');
    }
    super::text::push_int(ms.unsigned_abs(), out);
    let written = &out[start..];
    let mut text = [0; 20];
    text[..written.len()].copy_from_slice(written);
    LAST.set((ms, written.len() as u8, text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn padding() {
        let s = |n, w| {
            let mut v = Vec::new();
            push_padded(n, w, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(s(7, 2), "07");
        assert_eq!(s(0, 3), "000");
        assert_eq!(s(2026, 4), "2026");
        assert_eq!(s(123456, 3), "123456");
        assert_eq!(s(u32::MAX, 1), "4294967295");
    }

    proptest! {
        #[test]
        fn epoch_millis_are_the_decimal_number(ms in prop::collection::vec(-62_000_000_000_000i64..300_000_000_000_000i64, 1..4)) {
            // Twice each: the second time from the cache.
            for m in ms.iter().flat_map(|&m| [m, m]) {
                let t = DateTime::from_timestamp_millis(m).unwrap();
                let mut v = b"x".to_vec();
                push_epoch_millis(t, &mut v);
                prop_assert_eq!(String::from_utf8(v).unwrap(), format!("x{m}"));
            }
        }

        #[test]
        fn same_as_chrono_twice(secs in -62_000_000_000i64..300_000_000_000i64, other in -62_000_000_000i64..300_000_000_000i64) {
            for s in [secs, secs, other, secs] {
                let t = DateTime::from_timestamp(s, 0).unwrap();
                let mut v = Vec::new();
                push_iso_seconds(t, &mut v);
                prop_assert_eq!(String::from_utf8(v).unwrap(), t.format("%Y-%m-%dT%H:%M:%S").to_string());
            }
        }

        #[test]
        fn same_as_chrono(secs in -62_000_000_000i64..300_000_000_000i64) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let mut v = Vec::new();
            push_iso_seconds(t, &mut v);
            prop_assert_eq!(String::from_utf8(v).unwrap(), t.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
    }
}
