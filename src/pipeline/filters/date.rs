//! `date`: parses a field with Joda-style patterns (or `ISO8601`, `UNIX`, `UNIX_MS`)
//! and sets `@timestamp` (or `target`) to it; on no match tags `_dateparsefailure`.
//!
//! Pattern letters: y/Y years (yy = 2000+), M months (M, MM, MMM, MMMM, English names),
//! d days, H/k hours, h hours with `a` (AM/PM), m minutes, s seconds, S fractions,
//! Z zones (`+0200`, `+02:00`, `Z`; `ZZZ` a zone id such as `Europe/Paris`), E day
//! names (skipped), quoted literals. A time without a zone in the text is in
//! `timezone`: UTC (default), a fixed offset, or an IANA zone id (chrono-tz), with
//! daylight saving; a local time that falls in a spring-forward gap fails as in Joda,
//! one in the autumn overlap takes the earlier offset.

use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::time;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

enum Format {
    Iso8601,
    Unix,
    UnixMs,
    Joda(String),
}

pub struct Date {
    source: Vec<String>,
    formats: Vec<Format>,
    target: Vec<String>,
    zone: Zone,
    tag_on_failure: Vec<String>,
}

/// The zone of times whose text carries none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(i64),
    Named(chrono_tz::Tz),
}

impl Zone {
    pub fn parse(z: &str) -> Option<Zone> {
        parse_zone(z)
            .map(Zone::Fixed)
            .or_else(|| z.parse::<chrono_tz::Tz>().ok().map(Zone::Named))
    }

    /// The instant (ms since the epoch, UTC) of a local wall-clock time in this zone.
    pub fn to_utc(self, local_ms: i64) -> Option<i64> {
        match self {
            Zone::Fixed(offset) => Some(local_ms - offset * 60_000),
            Zone::Named(tz) => {
                use chrono::TimeZone;
                let naive = chrono::DateTime::from_timestamp_millis(local_ms)?.naive_utc();
                tz.from_local_datetime(&naive)
                    .earliest()
                    .map(|dt| dt.timestamp_millis())
            }
        }
    }
}

fn parse_zone(z: &str) -> Option<i64> {
    match z {
        "UTC" | "Etc/UTC" | "GMT" | "Z" | "utc" => Some(0),
        _ if z.starts_with(['+', '-']) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return None;
            }
            Some(sign * (digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?))
        }
        _ => None,
    }
}

impl Date {
    pub fn build(s: &mut Settings) -> Result<Date, PluginError> {
        let m = s.list("match")?;
        if m.len() < 2 {
            return Err(s.error("\"match\" needs a field and at least one format".into()));
        }
        let timezone = s.string("timezone")?;
        let zone = match &timezone {
            None => Zone::Fixed(0),
            Some(z) => Zone::parse(z).ok_or_else(|| {
                s.error(format!(
                    "timezone \"{z}\" is not a zone id (such as Europe/Paris) or an offset (such as +02:00)"
                ))
            })?,
        };
        let target = s.string("target")?.unwrap_or_else(|| "@timestamp".into());
        s.string("locale")?;
        let mut tag_on_failure = s.list("tag_on_failure")?;
        if tag_on_failure.is_empty() {
            tag_on_failure.push("_dateparsefailure".into());
        }
        let formats = m[1..]
            .iter()
            .map(|f| match f.as_str() {
                "ISO8601" => Format::Iso8601,
                "UNIX" => Format::Unix,
                "UNIX_MS" => Format::UnixMs,
                other => Format::Joda(other.to_string()),
            })
            .collect();
        Ok(Date {
            source: parse_field_ref(&m[0]),
            formats,
            target: parse_field_ref(&target),
            zone,
            tag_on_failure,
        })
    }

    fn parse(&self, text: &str) -> Option<i64> {
        self.formats.iter().find_map(|f| match f {
            Format::Iso8601 => {
                if has_zone(text) {
                    time::parse_iso8601(text)
                } else {
                    // ISO8601 without a zone is local to `timezone`.
                    time::parse_iso8601(&format!("{text}Z")).and_then(|ms| self.zone.to_utc(ms))
                }
            }
            Format::Unix => text
                .trim()
                .parse::<f64>()
                .ok()
                .map(|s| (s * 1000.0).round() as i64),
            Format::UnixMs => text.trim().parse::<f64>().ok().map(|ms| ms as i64),
            Format::Joda(p) => parse_joda(text, p, self.zone),
        })
    }
}

/// Whether an ISO8601 text ends with a zone (`Z`, `+hh:mm`, `-hhmm`).
fn has_zone(text: &str) -> bool {
    let t = text.trim_end();
    if t.ends_with(['Z', 'z']) {
        return true;
    }
    // A sign in the time part (after the `T` or the space) starts an offset.
    let time_part = t.rsplit(['T', ' ']).next().unwrap_or("");
    time_part.contains(['+', '-'])
}

/// Parses `text` with a Joda pattern; the whole text must match. Times without a zone
/// in the text are in `default_zone`.
pub fn parse_joda(text: &str, pattern: &str, default_zone: Zone) -> Option<i64> {
    let p: Vec<char> = pattern.chars().collect();
    let t = text.as_bytes();
    let (mut i, mut pos) = (0usize, 0usize);
    let (mut year, mut month, mut day, mut hour, mut minute, mut second, mut millis) =
        (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut zone: Option<Zone> = None;
    let digits = |pos: &mut usize, max: usize| -> Option<i64> {
        let start = *pos;
        while *pos < t.len() && *pos - start < max && t[*pos].is_ascii_digit() {
            *pos += 1;
        }
        if *pos == start {
            return None;
        }
        std::str::from_utf8(&t[start..*pos]).ok()?.parse().ok()
    };
    while i < p.len() {
        let c = p[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < p.len() && p[j] != '\'' {
                let mut buf = [0u8; 4];
                let lit = p[j].encode_utf8(&mut buf).as_bytes();
                if !t[pos..].starts_with(lit) {
                    return None;
                }
                pos += lit.len();
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let mut n = 1;
        while i + n < p.len() && p[i + n] == c {
            n += 1;
        }
        match c {
            'y' | 'Y' => {
                let v = digits(&mut pos, if n == 2 { 2 } else { 9 })?;
                year = if n == 2 { 2000 + v } else { v };
            }
            'M' if n >= 3 => {
                let word: String = t[pos..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .map(|b| b.to_ascii_lowercase() as char)
                    .collect();
                let idx = MONTHS.iter().position(|m| word.starts_with(m))?;
                month = idx as u32 + 1;
                pos += word.len();
            }
            'M' => month = digits(&mut pos, 2)? as u32,
            'd' => day = digits(&mut pos, 2)? as u32,
            'H' | 'k' | 'h' => hour = digits(&mut pos, 2)?,
            'm' => minute = digits(&mut pos, 2)?,
            's' => second = digits(&mut pos, 2)?,
            'S' => {
                let start = pos;
                let v = digits(&mut pos, 9)?;
                let len = (pos - start) as u32;
                millis = if len >= 3 {
                    v / 10i64.pow(len - 3)
                } else {
                    v * 10i64.pow(3 - len)
                };
            }
            'a' => {
                let word: String = t[pos..]
                    .iter()
                    .take(2)
                    .map(|b| b.to_ascii_uppercase() as char)
                    .collect();
                pm = Some(match word.as_str() {
                    "AM" => false,
                    "PM" => true,
                    _ => return None,
                });
                pos += 2;
            }
            'E' => {
                while pos < t.len() && t[pos].is_ascii_alphabetic() {
                    pos += 1;
                }
            }
            'Z' if n >= 3 => {
                let start = pos;
                while pos < t.len()
                    && (t[pos].is_ascii_alphanumeric()
                        || matches!(t[pos], b'/' | b'_' | b'-' | b'+'))
                {
                    pos += 1;
                }
                zone = Some(Zone::parse(std::str::from_utf8(&t[start..pos]).ok()?)?);
            }
            'Z' => {
                if t.get(pos) == Some(&b'Z') {
                    zone = Some(Zone::Fixed(0));
                    pos += 1;
                } else {
                    let start = pos;
                    if !matches!(t.get(pos), Some(b'+' | b'-')) {
                        return None;
                    }
                    pos += 1;
                    while pos < t.len() && (t[pos].is_ascii_digit() || t[pos] == b':') {
                        pos += 1;
                    }
                    zone = Some(Zone::Fixed(parse_zone(
                        std::str::from_utf8(&t[start..pos]).ok()?,
                    )?));
                }
            }
            other => {
                for _ in 0..n {
                    let mut buf = [0u8; 4];
                    let lit = other.encode_utf8(&mut buf).as_bytes();
                    if !t[pos..].starts_with(lit) {
                        return None;
                    }
                    pos += lit.len();
                }
            }
        }
        i += n;
    }
    if pos != t.len()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    if let Some(pm) = pm {
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let days = time::days_from_civil(year, month, day);
    let local = (days * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis;
    zone.unwrap_or(default_zone).to_utc(local)
}

impl Filter for Date {
    fn apply(&self, mut event: Event) -> Outcome {
        let text = match event.get(&self.source) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Array(a)) => match a.first() {
                Some(Value::String(s)) => s.clone(),
                _ => return Outcome::Failed(event),
            },
            _ => return Outcome::Failed(event),
        };
        match self.parse(&text) {
            Some(ms) => {
                event.set(&self.target, Value::String(time::format_iso8601(ms)));
                Outcome::Done(event)
            }
            None => {
                for t in &self.tag_on_failure {
                    event.add_tag(t);
                }
                Outcome::Failed(event)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Zone = Zone::Fixed(0);

    #[test]
    fn nginx_apache_and_iso_formats() {
        let at = |s| time::parse_iso8601(s).unwrap();
        assert_eq!(
            parse_joda("22/Nov/2026:10:11:12 +0100", "dd/MMM/yyyy:HH:mm:ss Z", UTC),
            Some(at("2026-11-22T09:11:12Z"))
        );
        assert_eq!(
            parse_joda("2026/11/22 10:11:12", "yyyy/MM/dd HH:mm:ss", UTC),
            Some(at("2026-11-22T10:11:12Z"))
        );
        assert_eq!(
            parse_joda(
                "2026/11/22 10:11:12",
                "yyyy/MM/dd HH:mm:ss",
                Zone::Fixed(120)
            ),
            Some(at("2026-11-22T08:11:12Z")),
            "timezone applies"
        );
        assert_eq!(
            parse_joda(
                "2026-11-22T10:11:12.123456Z",
                "yyyy-MM-dd'T'HH:mm:ss.SSSSSSZ",
                UTC
            ),
            Some(at("2026-11-22T10:11:12.123Z"))
        );
        assert_eq!(
            parse_joda(
                "Sun, 22 Nov 2026 01:02:03 PM",
                "EEE, dd MMM yyyy hh:mm:ss a",
                UTC
            ),
            Some(at("2026-11-22T13:02:03Z"))
        );
        assert_eq!(parse_joda("22/Nov/2026", "dd/MMM/yyyy:HH", UTC), None);
        assert_eq!(parse_joda("22/Foo/2026", "dd/MMM/yyyy", UTC), None);
        assert_eq!(parse_joda("2026-11-22 trailing", "yyyy-MM-dd", UTC), None);
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let at = |s| time::parse_iso8601(s).unwrap();
        let paris = Zone::parse("Europe/Paris").unwrap();
        let f = "yyyy-MM-dd HH:mm:ss";
        assert_eq!(
            parse_joda("2026-01-15 12:00:00", f, paris),
            Some(at("2026-01-15T11:00:00Z")),
            "CET"
        );
        assert_eq!(
            parse_joda("2026-07-15 12:00:00", f, paris),
            Some(at("2026-07-15T10:00:00Z")),
            "CEST"
        );
        assert_eq!(
            parse_joda("2026-03-29 02:30:00", f, paris),
            None,
            "in the spring-forward gap"
        );
        assert_eq!(
            parse_joda("2026-10-25 02:30:00", f, paris),
            Some(at("2026-10-25T00:30:00Z")),
            "the earlier of the two in the overlap"
        );
        assert_eq!(
            parse_joda(
                "2026-07-15 12:00:00 America/New_York",
                "yyyy-MM-dd HH:mm:ss ZZZ",
                UTC
            ),
            Some(at("2026-07-15T16:00:00Z"))
        );
        assert!(Zone::parse("Mars/Olympus").is_none());
    }
}
