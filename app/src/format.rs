//! Values as the pages write them: counts, ages, times, durations and
//! query strings. One form of each for every page, and for the server's
//! own text, so a figure never reads two ways.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The UTC day of a timestamp with its weekday (`Mon 23 Nov`), for charts
/// spanning several days.
pub fn format_day(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let (_, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    format!("{weekday} {d} {month}")
}

/// Percent-encodes a query value (everything but unreserved characters), so
/// a filter typed by an operator survives the round trip through a link.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Renders an age in milliseconds the way an operator reads it at a glance
/// ("4 s ago", "12 min ago"), since exact timestamps are in the JSON API.
pub fn format_age(age_ms: i64) -> String {
    let secs = age_ms.max(0) / 1000;
    if secs < 60 {
        format!("{secs} s ago")
    } else if secs < 3600 {
        format!("{} min ago", secs / 60)
    } else if secs < 86_400 {
        format!("{} h ago", secs / 3600)
    } else {
        format!("{} d ago", secs / 86_400)
    }
}

/// A timestamp (ms since the epoch) as `2026-11-23 10:34:05 UTC`: one
/// unambiguous form for every page, whatever the viewer's time zone.
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The ISO 8601 form of a timestamp, for `<time datetime=…>`.
pub fn iso_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Minutes and seconds of a UTC timestamp (`10:34`), for chart labels.
pub fn format_clock(ms: i64) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", rem / 3600, (rem % 3600) / 60)
}

/// A duration in milliseconds, short (`850 ms`, `4.2 s`, `3 min 5 s`).
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A count with thousands separators (`1,000,000`): queue sizes are read
/// at a glance, and seven digits in a row are not.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A count with its noun, singular for one (`1 job`, `2 jobs`,
/// `1,234 failed jobs`).
pub fn counted(n: u64, one: &str, many: &str) -> String {
    let noun = if n == 1 { one } else { many };
    format!("{} {noun}", format_count(n))
}

/// Bytes as `12.3 MB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic
/// Gregorian calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A window length as policies are written: `1 min`, `10 s`, `1 h`, `1 d`,
/// or milliseconds when it is not a whole number of seconds.
pub fn format_window(ms: i64) -> String {
    let ms = ms.max(0);
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| ms >= *unit && ms % unit == 0)
        .map(|(unit, name)| format!("{} {name}", ms / unit))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// How long until a moment, coarse like the ages elsewhere (`in 45 s`,
/// `in 4 min`, `in 2 h`): an operator wants to know whether to wait for a
/// block to end or to lift it.
pub(crate) fn format_in(ms: i64) -> String {
    until(ms, "ending now")
}

/// How long until a run is due (`in 45 s`, `due now`): a schedule's next
/// run, which the page script keeps current like the ages.
pub(crate) fn format_due(ms: i64) -> String {
    until(ms, "due now")
}

fn until(ms: i64, now: &str) -> String {
    let secs = ms / 1000;
    if ms <= 0 {
        now.into()
    } else if secs < 60 {
        format!("in {} s", secs.max(1))
    } else if secs < 3600 {
        format!("in {} min", secs / 60)
    } else if secs < 86_400 {
        format!("in {} h", secs / 3600)
    } else {
        format!("in {} d", secs / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(-5), "0 s ago");
        assert_eq!(format_age(4_999), "4 s ago");
        assert_eq!(format_age(125_000), "2 min ago");
        assert_eq!(format_age(7_200_000), "2 h ago");
        assert_eq!(format_age(3 * 86_400_000), "3 d ago");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 UTC");
        // 2026-11-23T10:34:05Z
        assert_eq!(
            format_timestamp(1_795_430_045_000),
            "2026-11-23 10:34:05 UTC"
        );
        assert_eq!(iso_timestamp(1_795_430_045_000), "2026-11-23T10:34:05Z");
        // 2024-02-29 (a leap day) at noon
        assert_eq!(
            format_timestamp(1_709_208_000_000),
            "2024-02-29 12:00:00 UTC"
        );
        assert_eq!(format_clock(1_795_430_045_000), "10:34");
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(1_000_000), "1,000,000");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 * 1024 * 1024 / 2), "1.5 MB");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(4_200), "4.2 s");
        assert_eq!(format_duration(185_000), "3 min 5 s");
    }

    #[test]
    fn windows_read_like_policies() {
        assert_eq!(format_window(60_000), "1 min");
        assert_eq!(format_window(10_000), "10 s");
        assert_eq!(format_window(90_000), "90 s");
        assert_eq!(format_window(3_600_000), "1 h");
        assert_eq!(format_window(86_400_000), "1 d");
        assert_eq!(format_window(1_500), "1500 ms");
        assert_eq!(format_window(0), "0 ms");
    }

    #[test]
    fn block_ends_read_as_a_wait() {
        assert_eq!(format_in(-5), "ending now");
        assert_eq!(format_in(400), "in 1 s");
        assert_eq!(format_in(45_000), "in 45 s");
        assert_eq!(format_in(4 * 60_000 + 30_000), "in 4 min");
        assert_eq!(format_in(2 * 3_600_000), "in 2 h");
        assert_eq!(format_in(3 * 86_400_000), "in 3 d");
        assert_eq!(format_due(0), "due now");
        assert_eq!(format_due(45_000), "in 45 s");
    }
}
