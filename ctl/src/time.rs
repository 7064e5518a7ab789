//! Timestamps for people and for JSON: RFC 3339 in UTC, from milliseconds since the Unix
//! epoch, without a date library (the civil-from-days algorithm of Howard Hinnant).

/// `2026-01-02T03:04:05.678Z`.
pub fn rfc3339(unix_ms: i64) -> String {
    let (date, secs, ms) = split(unix_ms);
    format!(
        "{date}T{:02}:{:02}:{:02}.{ms:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `2026-01-02 03:04:05` (UTC), for the human view.
pub fn short(unix_ms: i64) -> String {
    let (date, secs, _) = split(unix_ms);
    format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn split(unix_ms: i64) -> (String, i64, i64) {
    let days = unix_ms.div_euclid(86_400_000);
    let rest = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (format!("{y:04}-{m:02}-{d:02}"), rest / 1000, rest % 1000)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(short(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
