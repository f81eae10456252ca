//! Human units in settings: sizes (`512KiB`, `1GiB`, `100MB`, or a plain
//! number of bytes) and durations (`250ms`, `10s`, `5m`, `2h`, `7d`, or a
//! plain number of milliseconds), with `forever` / `unlimited` for limits
//! that can be off.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// A length of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

/// A limit that may be off (`unlimited` / `forever`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit<T> {
    /// No limit.
    None,
    /// This limit.
    Some(T),
}

impl<T> Limit<T> {
    /// As an `Option`.
    pub fn get(self) -> Option<T> {
        match self {
            Limit::None => None,
            Limit::Some(v) => Some(v),
        }
    }
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("tib", 1 << 40),
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("tb", 1_000_000_000_000),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
];

const SPAN_UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

fn split_number(s: &str) -> Option<(u64, String)> {
    let s = s.trim();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let number: u64 = s[..digits].replace('_', "").parse().ok()?;
    Some((number, s[digits..].trim().to_ascii_lowercase()))
}

/// Parses a size such as `64MiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size (examples: 4096, 512KiB, 1GiB, 100MB)");
    let (n, unit) = split_number(s).ok_or_else(bad)?;
    if unit.is_empty() {
        return Ok(n);
    }
    let mult = SIZE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or_else(bad)?
        .1;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration such as `10s`.
pub fn parse_span(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (examples: 250ms, 10s, 5m, 2h, 7d)");
    let (n, unit) = split_number(s).ok_or_else(bad)?;
    if unit.is_empty() {
        return Ok(Duration::from_millis(n));
    }
    let mult = SPAN_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or_else(bad)?
        .1;
    n.checked_mul(mult)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn format_size(b: u64) -> String {
    for (unit, mult) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if b >= mult && b.is_multiple_of(mult) {
            return format!("{}{unit}", b / mult);
        }
    }
    b.to_string()
}

fn format_span(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, mult) in [
        ("d", 86_400_000u64),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= mult && ms.is_multiple_of(mult) {
            return format!("{}{unit}", ms / mult);
        }
    }
    format!("{ms}ms")
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_span(self.0))
    }
}

/// Accepts an integer or a string, and hands the string form to `parse`.
struct Human<F>(&'static str, F);

impl<'de, T, F: Fn(&str) -> Result<T, String>> Visitor<'de> for Human<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.1)(&v.to_string()).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.1)(&v.to_string()).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Human("a size such as 1GiB", |s: &str| {
            parse_size(s).map(Size)
        }))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Human("a duration such as 10s", |s: &str| {
            parse_span(s).map(Span)
        }))
    }
}

impl<'de> Deserialize<'de> for Limit<Size> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Human(
            "a size such as 10GiB, or \"unlimited\"",
            |s: &str| match s.trim() {
                "unlimited" | "-1" => Ok(Limit::None),
                s => parse_size(s).map(|b| Limit::Some(Size(b))),
            },
        ))
    }
}

impl<'de> Deserialize<'de> for Limit<Span> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Human(
            "a duration such as 7d, or \"forever\"",
            |s: &str| match s.trim() {
                "forever" | "-1" => Ok(Limit::None),
                s => parse_span(s).map(|t| Limit::Some(Span(t))),
            },
        ))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Limit<Size> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::None => s.serialize_str("unlimited"),
            Limit::Some(v) => v.serialize(s),
        }
    }
}

impl Serialize for Limit<Span> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::None => s.serialize_str("forever"),
            Limit::Some(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_spans_parse_and_print() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert!(parse_size("1 parsec").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_span("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_span("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_span("1500"), Ok(Duration::from_millis(1500)));
        assert!(parse_span("soon").is_err());
        assert_eq!(Size(1 << 30).to_string(), "1GiB");
        assert_eq!(Size(1000).to_string(), "1000");
        assert_eq!(Span(Duration::from_secs(600)).to_string(), "10m");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time:
/// `2026-11-25T10:00:00Z`, `2026-11-25T10:00:00.250+01:00`; a date alone
/// (`2026-11-25`) is its midnight UTC.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time (like 2026-11-25T10:00:00Z)");
    let num = |t: &str| -> Result<i64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    if y.to_string().len() > 4
        || !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&da)
    {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, mo, da) * 86_400_000;
    let Some(rest) = rest else { return Ok(ms) };
    // Time, then the zone: Z or ±hh:mm.
    let zone_at = rest.find(['Z', 'z', '+', '-']).ok_or_else(bad)?;
    let (time, zone) = rest.split_at(zone_at);
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let (Some(h), Some(mi), Some(se), None) = (t.next(), t.next(), t.next(), t.next()) else {
        return Err(bad());
    };
    let (h, mi, se) = (num(h)?, num(mi)?, num(se)?);
    if h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    ms += ((h * 60 + mi) * 60 + se) * 1000;
    if let Some(f) = frac {
        num(f)?;
        let digits: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
        ms += num(&digits)?;
    }
    match zone {
        "Z" | "z" => {}
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = z[1..].split_once(':').ok_or_else(bad)?;
            let (zh, zm) = (num(zh)?, num(zm)?);
            if zh > 23 || zm > 59 {
                return Err(bad());
            }
            ms -= sign * (zh * 60 + zm) * 60_000;
        }
    }
    Ok(ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod time_tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01"), Ok(0));
        assert_eq!(parse_rfc3339("2026-11-25T10:00:00Z"), Ok(1_795_600_800_000));
        assert_eq!(
            parse_rfc3339("2026-11-25T11:00:00.25+01:00"),
            Ok(1_795_600_800_250)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00-00:30"),
            Ok(951_784_200_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30",
            "2026-11-25T10:00:00",
            "2026-11-25T25:00:00Z",
            "2026-11-25T10:00Z",
            "2026-11-25T10:00:00+0100",
            "+2026-11-25",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
    }
}
