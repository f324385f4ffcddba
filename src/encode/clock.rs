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
        fn same_as_chrono(secs in -62_000_000_000i64..300_000_000_000i64) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let mut v = Vec::new();
            push_iso_seconds(t, &mut v);
            prop_assert_eq!(String::from_utf8(v).unwrap(), t.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
    }
}
