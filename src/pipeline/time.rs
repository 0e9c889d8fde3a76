//! Timestamps for events: ISO-8601 in and out, and Joda-style formatting for
//! `%{+YYYY.MM.dd}` (the subset Logstash configurations use: y/Y years, M months
//! (MM, MMM, MMMM), d days, H hours, m minutes, s seconds, S fractions, Z zones, quoted
//! literals), always in UTC as Logstash's sprintf does.

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (y, m) = if m <= 2 {
        (y - 1, m as i64 + 9)
    } else {
        (y, m as i64 - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn parts(ms: i64) -> Parts {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: rem / 3_600_000,
        minute: rem / 60_000 % 60,
        second: rem / 1000 % 60,
        millis: rem % 1000,
    }
}

pub fn format_iso8601(ms: i64) -> String {
    thread_local! {
        // Events of one batch share their arrival time: format it once.
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != ms {
            let p = parts(ms);
            *last = (
                ms,
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
                ),
            );
        }
        last.1.clone()
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM]` (UTC when no zone).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let frac = &s[start..end];
        millis = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
        pos = end;
    }
    let offset_min = match &s[pos..] {
        "" | "Z" | "z" => 0,
        z if z.starts_with(['+', '-']) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + millis) - offset_min * 60_000)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats `ms` (UTC) with a Joda-style pattern.
pub fn format_joda(ms: i64, pattern: &str) -> String {
    let p = parts(ms);
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let pad = |v: i64, w: usize| format!("{v:0w$}");
        match c {
            'y' | 'Y' | 'x' => out.push_str(&if n == 2 {
                pad(p.year.rem_euclid(100), 2)
            } else {
                pad(p.year, n)
            }),
            'M' => match n {
                1 | 2 => out.push_str(&pad(p.month as i64, n)),
                3 => out.push_str(&MONTHS[p.month as usize - 1][..3]),
                _ => out.push_str(MONTHS[p.month as usize - 1]),
            },
            'd' => out.push_str(&pad(p.day as i64, n)),
            'H' => out.push_str(&pad(p.hour, n)),
            'm' => out.push_str(&pad(p.minute, n)),
            's' => out.push_str(&pad(p.second, n)),
            'S' => out.push_str(&format!("{:03}", p.millis)[..n.min(3)]),
            'Z' => out.push_str(if n == 1 {
                "+0000"
            } else if n == 2 {
                "+00:00"
            } else {
                "UTC"
            }),
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trips_and_accepts_zones() {
        let ms = parse_iso8601("2026-11-22T10:11:12.345Z").unwrap();
        assert_eq!(format_iso8601(ms), "2026-11-22T10:11:12.345Z");
        assert_eq!(parse_iso8601("2026-11-22T12:11:12.345+02:00"), Some(ms));
        assert_eq!(parse_iso8601("2026-11-22T05:11:12.345-0500"), Some(ms));
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
        for days in [-800_000i64, -1, 0, 59, 365, 20_000, 800_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn joda_patterns_logstash_users_write() {
        let ms = parse_iso8601("2026-03-05T07:08:09.045Z").unwrap();
        assert_eq!(format_joda(ms, "YYYY.MM.dd"), "2026.03.05");
        assert_eq!(
            format_joda(ms, "yyyy-MM-dd'T'HH:mm:ss.SSSZ"),
            "2026-03-05T07:08:09.045+0000"
        );
        assert_eq!(
            format_joda(ms, "dd/MMM/yyyy:HH:mm:ss Z"),
            "05/Mar/2026:07:08:09 +0000"
        );
        assert_eq!(format_joda(ms, "yy.M.d"), "26.3.5");
        assert_eq!(format_joda(ms, "MMMM"), "March");
    }
}
