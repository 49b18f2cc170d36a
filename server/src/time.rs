//! ISO-8601 UTC times, the original's format, from the engine's milliseconds.

use switchboard_engine::UnixMillis;

/// `2024-05-01T12:34:56.789Z` for a Unix time in milliseconds.
///
/// ```
/// assert_eq!(switchboard_server::iso8601(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(switchboard_server::iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
/// ```
pub fn iso8601(ms: UnixMillis) -> String {
    let mut text = String::with_capacity(ISO8601_LEN);
    write_iso8601(&mut text, ms);
    text
}

/// Length of [`iso8601`]'s text for years up to 9999.
const ISO8601_LEN: usize = 24;

/// Appends [`iso8601`]'s text to `out`. Digits are written by hand: two times go into every
/// pushed message, and `format!` was a visible part of a push's CPU time.
fn write_iso8601(out: &mut String, ms: UnixMillis) {
    let days = (ms / 86_400_000) as i64;
    let in_day = ms % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        use std::fmt::Write;
        let _ = write!(out, "{year:04}");
    } else {
        push_digits(out, year as u64, 4);
    }
    out.push('-');
    push_digits(out, u64::from(month), 2);
    out.push('-');
    push_digits(out, u64::from(day), 2);
    out.push('T');
    push_digits(out, in_day / 3_600_000, 2);
    out.push(':');
    push_digits(out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_digits(out, in_day / 1000 % 60, 2);
    out.push('.');
    push_digits(out, in_day % 1000, 3);
    out.push('Z');
}

/// Appends `value`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u64.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count from
/// 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(253_402_300_800_000), "10000-01-01T00:00:00.000Z");
    }
}
