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
    push_padded(year as u32, 4, out);
    out.push(b'-');
    push_padded(t.month(), 2, out);
    out.push(b'-');
    push_padded(t.day(), 2, out);
    out.push(b'T');
    push_padded(t.hour(), 2, out);
    out.push(b':');
    push_padded(t.minute(), 2, out);
    out.push(b':');
    push_padded(t.second(), 2, out);
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
