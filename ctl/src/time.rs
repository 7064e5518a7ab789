//! Timestamps for people and for JSON: RFC 3339 in UTC, from milliseconds since the Unix
//! epoch, without a date library (the civil-from-days algorithm of Howard Hinnant).

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `--since` flag of `search` and `export` (see [`parse`]); 0 without one.
pub fn since_flag(value: Option<&str>, now_ms: i64) -> Result<i64, crate::Error> {
    match value {
        Some(s) => parse(s, now_ms).map_err(|e| crate::Error::Usage(format!("--since {e}"))),
        None => Ok(0),
    }
}

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

/// A time given on the command line: an age (`45s`, `30m`, `2h`, `7d`, before `now_ms`), a
/// date (`2026-12-01`, midnight UTC) or an RFC 3339 time in UTC (`2026-12-01T10:00:00Z`).
pub fn parse(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{t:?}: expected an age (30m, 2h, 7d) or a UTC date/time (2026-12-01, 2026-12-01T10:00:00Z)"
        )
    };
    if let Some(unit) = t.chars().last().filter(|c| "smhd".contains(*c))
        && let Ok(n) = t[..t.len() - 1].parse::<i64>()
    {
        let ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => 86_400_000,
        };
        return n
            .checked_mul(ms)
            .filter(|d| *d >= 0)
            .map(|d| now_ms - d)
            .ok_or_else(bad);
    }
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, rest)) => (d, Some(rest.trim_end_matches('Z'))),
        None => (t, None),
    };
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(time) = time {
        let mut hms = time.split(':').map(|p| p.parse::<f64>().ok());
        let (Some(Some(h)), Some(Some(mi)), sec) = (hms.next(), hms.next(), hms.next()) else {
            return Err(bad());
        };
        let sec = sec.flatten().unwrap_or(0.0);
        if !(0.0..24.0).contains(&h) || !(0.0..60.0).contains(&mi) || !(0.0..61.0).contains(&sec) {
            return Err(bad());
        }
        ms += ((h * 3600.0 + mi * 60.0 + sec) * 1000.0) as i64;
    }
    Ok(ms)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn parses_ages_dates_and_times() {
        let now = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        assert_eq!(super::parse("2h", now), Ok(now - 7_200_000));
        assert_eq!(super::parse("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(super::parse("2025-12-02", now), Ok(now));
        assert_eq!(
            super::parse("2025-12-02T01:00:00Z", now),
            Ok(now + 3_600_000)
        );
        assert_eq!(
            super::rfc3339(super::parse("2024-02-29T12:34:56Z", now).expect("t")),
            "2024-02-29T12:34:56.000Z"
        );
        for bad in [
            "",
            "x",
            "2h30",
            "-5m",
            "2025-13-01",
            "2025-12-02T25:00",
            "1-2-3-4",
        ] {
            assert!(super::parse(bad, now).is_err(), "{bad:?}");
        }
    }

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
