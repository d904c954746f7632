//! Wall-clock time and its two text forms, with no date crate: stored
//! records and the API speak Unix seconds or milliseconds, RFC 3339 and
//! the HTTP `Date` form.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The UTC calendar fields of Unix seconds: (year, month, day, hour,
/// minute, second, weekday with Monday = 0), by Howard Hinnant's
/// civil-from-days, so no date crate is needed for two timestamp formats.
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64, usize) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 3).rem_euclid(7) as usize;
    (year, month, day, rem / 3600, (rem % 3600) / 60, rem % 60, weekday)
}

/// RFC 3339 UTC text of Unix seconds.
pub fn rfc3339(unix_s: f64) -> String {
    let secs = unix_s.floor() as i64;
    let millis = ((unix_s - secs as f64) * 1000.0) as i64;
    let (year, month, day, h, m, s, _) = civil(secs);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// The HTTP `Date` form (IMF-fixdate) of Unix seconds.
pub fn http_date(unix_s: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s, weekday) = civil(unix_s as i64);
    format!(
        "{}, {day:02} {} {year:04} {h:02}:{m:02}:{s:02} GMT",
        DAYS[weekday],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400.5), "2000-02-29T00:00:00.500Z");
        assert_eq!(rfc3339(1_795_000_000.0), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn http_date_matches_known_instants() {
        // RFC 9110's example and a leap day.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
