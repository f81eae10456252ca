//! Human units in settings: sizes (`512KiB`, `1GiB`, `100MB`, or a plain
//! number of bytes) and durations (`250ms`, `10s`, `5m`, `2h`, `7d`, or a
//! plain number of milliseconds), with `forever` / `unlimited` for limits
//! that can be off; and RFC 3339 times. Parsing is `bytesize`'s,
//! `humantime`'s and `time`'s, under thin adapters for what we accept
//! beyond them (plain numbers, `_` separators, a date alone); printing
//! stays ours, as the shortest exact form (`1GiB`, `1500ms`).

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

/// The plain number or number-and-unit in `s`, without the `_` digit
/// separators we accept and the crates do not.
fn plain(s: &str) -> String {
    s.trim().replace('_', "")
}

/// Parses a size such as `64MiB` (`bytesize`'s units; a plain number is
/// bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size (examples: 4096, 512KiB, 1GiB, 100MB)");
    let plain = plain(s);
    let bytes = plain
        .parse::<bytesize::ByteSize>()
        .map_err(|_| bad())?
        .as_u64();
    // bytesize saturates: the largest value from anything else overflowed.
    if bytes == u64::MAX && plain != u64::MAX.to_string() {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes)
}

/// Parses a duration such as `10s` (`humantime`'s units); a plain number
/// is milliseconds. At most `u64::MAX` milliseconds.
pub fn parse_span(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (examples: 250ms, 10s, 5m, 2h, 7d)");
    let too_long = || format!("{s:?} is too long");
    // Units in any case, as before: `5M` is five minutes, not humantime's months.
    let plain = plain(s).to_ascii_lowercase();
    // Whole milliseconds are counted here: humantime counts them in u64
    // nanoseconds, which ends far short of u64 milliseconds.
    let millis = plain
        .strip_suffix("ms")
        .map_or(plain.as_str(), str::trim_end);
    if !millis.is_empty() && millis.bytes().all(|b| b.is_ascii_digit()) {
        return millis.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    let span = humantime::parse_duration(&plain).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_long(),
        _ => bad(),
    })?;
    // Longer would wrap when written as Kafka's milliseconds.
    if span.as_millis() > u128::from(u64::MAX) {
        return Err(too_long());
    }
    Ok(span)
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

    #[test]
    fn spans_reach_u64_milliseconds_and_no_further() {
        // The longest span, in milliseconds with or without the unit.
        let longest = Ok(Duration::from_millis(u64::MAX));
        assert_eq!(parse_span("18446744073709551615"), longest);
        assert_eq!(parse_span("18446744073709551615ms"), longest);
        assert_eq!(
            parse_span("20000000000000 MS"),
            Ok(Duration::from_millis(20_000_000_000_000))
        );
        // Past it: refused, not wrapped into a short span when written in
        // Kafka's milliseconds (213503982336d would be 33.6 hours).
        for long in ["18446744073709552s", "213503982336d", "300000000000d"] {
            let e = parse_span(long).expect_err(long);
            assert!(e.contains("too long"), "{long}: {e}");
        }
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time:
/// `2026-11-25T10:00:00Z`, `2026-11-25T10:00:00.250+01:00`; a date alone
/// (`2026-11-25`) is its midnight UTC.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time (like 2026-11-25T10:00:00Z)");
    let full;
    let s = if s.contains(['T', 't', ' ']) {
        s
    } else {
        full = format!("{s}T00:00:00Z");
        &full
    };
    let time = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1_000_000)).map_err(|_| bad())
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
