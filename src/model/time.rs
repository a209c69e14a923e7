//! Wall-clock instants of recorded traffic.
//!
//! Captures carry timestamps in a dozen textual forms; everything is turned
//! into one [`Timestamp`] (microseconds since the Unix epoch, UTC) at the
//! reader, so later stages never parse dates. The hot access-log path parses
//! its fixed formats by hand (a general date parser costs more than the rest
//! of the line); the odd formats go through chrono.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in recorded time: microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// From fractional seconds since the epoch (Caddy's `ts`, nginx `$msec`).
    /// `None` for NaN, infinities and values outside ±10,000 years.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() || secs.abs() > 3.2e11 {
            return None;
        }
        Some(Timestamp((secs * 1e6).round() as i64))
    }

    pub fn from_civil(date: CivilDate, secs_of_day: u32, micros: u32, offset_secs: i32) -> Self {
        let days = days_from_civil(date.year, date.month, date.day);
        let secs = days * 86_400 + i64::from(secs_of_day) - i64::from(offset_secs);
        Timestamp(secs * 1_000_000 + i64::from(micros))
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(d.as_micros().min(i64::MAX as u128) as i64),
        )
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_micros().min(i64::MAX as u128) as i64),
        )
    }

    /// RFC 3339 in UTC with microseconds only when they are non-zero.
    pub fn to_rfc3339(self) -> String {
        let secs = self.unix_secs();
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
        if micros == 0 {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
        }
    }

    /// Parses RFC 3339 / ISO 8601 date-times as found in HAR, ALB, ELB and
    /// JSON logs: `2023-04-26T12:22:55.463821Z`, `...+02:00`, a space instead
    /// of `T`, and a missing zone (taken as UTC).
    pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
        let b = s.trim().as_bytes();
        if b.len() < 19 {
            return None;
        }
        let date = parse_ymd(&b[..10])?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let sod = parse_hms(&b[11..19])?;
        let mut rest = &b[19..];
        let mut micros = 0u32;
        if let Some((&b'.' | &b',', frac)) = rest.split_first() {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            micros = frac_to_micros(&frac[..n]);
            rest = &frac[n..];
        }
        let offset = match rest {
            [] | [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), tz @ ..] => {
                let sign = if *sign == b'-' { -1 } else { 1 };
                let (h, m) = match tz {
                    [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                        (two_digits(*h1, *h2)?, two_digits(*m1, *m2)?)
                    }
                    [h1, h2] => (two_digits(*h1, *h2)?, 0),
                    _ => return None,
                };
                sign * (h as i32 * 3600 + m as i32 * 60)
            }
            _ => return None,
        };
        Some(Timestamp::from_civil(date, sod, micros, offset))
    }

    /// Parses the Common Log Format time `10/Oct/2000:13:55:36 -0700`
    /// (the text between the brackets).
    pub fn parse_clf(s: &[u8]) -> Option<Timestamp> {
        // dd/Mon/yyyy:hh:mm:ss +zzzz
        if s.len() < 20 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' {
            return None;
        }
        let day = two_digits(s[0], s[1])?;
        let month = month_from_abbrev(&s[3..6])?;
        let year = four_digits(&s[7..11])?;
        let sod = parse_hms(&s[12..20])?;
        let mut rest = &s[20..];
        let mut micros = 0;
        if let Some((&b'.', frac)) = rest.split_first() {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            micros = frac_to_micros(&frac[..n]);
            rest = &frac[n..];
        }
        let offset = match rest {
            [] => 0,
            [b' ', sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
                let sign = if *sign == b'-' { -1 } else { 1 };
                sign * (two_digits(*h1, *h2)? as i32 * 3600 + two_digits(*m1, *m2)? as i32 * 60)
            }
            _ => return None,
        };
        let date = CivilDate::new(year, month, day)?;
        Some(Timestamp::from_civil(date, sod, micros, offset))
    }

    /// [`Timestamp::parse_clf`], remembering the last day seen: a log's
    /// lines share their date, so only the time of day is parsed again.
    pub fn parse_clf_cached(s: &[u8], cache: &mut ClfDay) -> Option<Timestamp> {
        // dd/Mon/yyyy:hh:mm:ss +zzzz
        if s.len() == 26 && s[11] == b':' && s[20] == b' ' {
            let (day, zone) = (&s[..11], &s[20..]);
            if let Some((d, z, base)) = &cache.0
                && d == day
                && z == zone
            {
                let sod = parse_hms(&s[12..20])?;
                return Some(Timestamp(base + i64::from(sod) * 1_000_000));
            }
            let t = Timestamp::parse_clf(s)?;
            let sod = parse_hms(&s[12..20])?;
            let mut d = [0u8; 11];
            d.copy_from_slice(day);
            let mut z = [0u8; 6];
            z.copy_from_slice(zone);
            cache.0 = Some((d, z, t.0 - i64::from(sod) * 1_000_000));
            return Some(t);
        }
        Timestamp::parse_clf(s)
    }

    /// W3C / CloudFront: separate `2018-08-28` and `18:24:25` (or
    /// `18:24:25.123`) fields, always UTC.
    pub fn parse_w3c(date: &str, time: &str) -> Option<Timestamp> {
        let d = parse_ymd(date.as_bytes())?;
        let t = time.as_bytes();
        if t.len() < 8 {
            return None;
        }
        let sod = parse_hms(&t[..8])?;
        let micros = match &t[8..] {
            [] => 0,
            [b'.', frac @ ..] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => {
                frac_to_micros(frac)
            }
            _ => return None,
        };
        Some(Timestamp::from_civil(d, sod, micros, 0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_iso8601(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

/// The last CLF day parsed: its text, its zone and its midnight.
#[derive(Clone, Debug, Default)]
pub struct ClfDay(Option<([u8; 11], [u8; 6], i64)>);

/// A validated proleptic Gregorian calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilDate {
    year: i32,
    month: u32,
    day: u32,
}

impl CivilDate {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month)
            .contains(&day)
            .then_some(CivilDate { year, month, day })
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    if a.is_ascii_digit() && b.is_ascii_digit() {
        Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    } else {
        None
    }
}

fn four_digits(s: &[u8]) -> Option<i32> {
    let hi = two_digits(s[0], s[1])?;
    let lo = two_digits(s[2], s[3])?;
    Some((hi * 100 + lo) as i32)
}

fn parse_ymd(s: &[u8]) -> Option<CivilDate> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    CivilDate::new(
        four_digits(&s[..4])?,
        two_digits(s[5], s[6])?,
        two_digits(s[8], s[9])?,
    )
}

/// `hh:mm:ss` → seconds of the day (a leap second 60 is folded into 59).
fn parse_hms(s: &[u8]) -> Option<u32> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (
        two_digits(s[0], s[1])?,
        two_digits(s[3], s[4])?,
        two_digits(s[6], s[7])?,
    );
    (h < 24 && m < 60 && sec <= 60).then_some(h * 3600 + m * 60 + sec.min(59))
}

fn frac_to_micros(digits: &[u8]) -> u32 {
    let mut v = 0u32;
    for i in 0..6 {
        v = v * 10 + digits.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    v
}

fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    MONTHS
        .iter()
        .position(|x| **x == lower)
        .map(|i| i as u32 + 1)
}

/// The longest duration a file may hold, in milliseconds: about 31,700
/// years, the span of any two timestamps a capture can carry. Past it a
/// value is a mistake (and `Duration` cannot hold 1e30 s).
pub const MAX_MS: f64 = 1e15;

/// Milliseconds from a file as a duration: a number from 0 to [`MAX_MS`].
pub fn millis(ms: f64) -> Option<Duration> {
    (ms.is_finite() && (0.0..=MAX_MS).contains(&ms)).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// Serde helpers for `Duration` fields written as milliseconds.
pub mod as_millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(round3(d.as_secs_f64() * 1000.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        millis(ms).ok_or_else(|| {
            serde::de::Error::custom("a duration must be a number of milliseconds from 0 to 1e15")
        })
    }
}

/// Rounds to three decimals so that model files stay short and diffable.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_with_offset() {
        let t = Timestamp::parse_clf(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_rfc3339(), "2000-10-10T20:55:36Z");
        let t = Timestamp::parse_clf(b"22/Jan/2019:03:56:14 +0330").unwrap();
        assert_eq!(t.to_rfc3339(), "2019-01-22T00:26:14Z");
    }

    #[test]
    fn cached_days_agree() {
        let mut c = ClfDay::default();
        for s in [
            &b"10/Oct/2000:13:55:36 -0700"[..],
            b"10/Oct/2000:13:55:37 -0700",
            b"10/Oct/2000:23:59:59 +0100",
            b"11/Oct/2000:00:00:00 -0700",
        ] {
            assert_eq!(
                Timestamp::parse_clf_cached(s, &mut c),
                Timestamp::parse_clf(s)
            );
        }
        assert!(Timestamp::parse_clf_cached(b"11/Oct/2000:25:00:00 -0700", &mut c).is_none());
    }

    #[test]
    fn clf_rejects_garbage() {
        assert!(Timestamp::parse_clf(b"32/Oct/2000:13:55:36 -0700").is_none());
        assert!(Timestamp::parse_clf(b"10/Foo/2000:13:55:36 -0700").is_none());
        assert!(Timestamp::parse_clf(b"10/Oct/2000:25:55:36 -0700").is_none());
        assert!(Timestamp::parse_clf(b"10/Oct/2000").is_none());
    }

    #[test]
    fn iso_forms() {
        let a = Timestamp::parse_iso8601("2023-04-26T12:22:55.463821Z").unwrap();
        assert_eq!(a.to_rfc3339(), "2023-04-26T12:22:55.463821Z");
        let b = Timestamp::parse_iso8601("2023-04-26T14:22:55.463821+02:00").unwrap();
        assert_eq!(a, b);
        let c = Timestamp::parse_iso8601("2023-04-26 12:22:55").unwrap();
        assert_eq!(c.to_rfc3339(), "2023-04-26T12:22:55Z");
        assert!(Timestamp::parse_iso8601("2023-02-30T00:00:00Z").is_none());
        assert!(Timestamp::parse_iso8601("yesterday").is_none());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y as i32, m, d), days);
        }
    }

    #[test]
    fn w3c_fields() {
        let t = Timestamp::parse_w3c("2018-08-28", "18:24:25.5").unwrap();
        assert_eq!(t.to_rfc3339(), "2018-08-28T18:24:25.500000Z");
    }
}
