//! Human-friendly quantities used in policy files: durations ("500ms", "2s",
//! "1m30s"), byte sizes ("64KiB"), link bandwidths ("1Gbit") and scaling steps
//! (`1` or `"100%"`).
//!
//! Each parser returns a short explanation of what is wrong on failure; the
//! loader wraps it with the file position and key path.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// A duration as written in a policy file; serialises back to the same compact
/// form (`"2s"`, `"500ms"`) so `policy explain` prints what a user would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// Builds a duration from whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    /// Builds a duration from whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    /// The duration in whole milliseconds (saturating).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// The underlying standard duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

const DURATION_UNITS: &[(&str, u64)] = &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

/// Parses "500ms", "2s", "5m", "1h", or a concatenation such as "1m30s".
/// Millisecond resolution; at most 30 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an empty string is not a duration".into());
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` must start with a number, as in \"500ms\", \"2s\" or \"5m\""));
        }
        let number = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("`{s}` has no unit; write \"{number}s\" or \"{number}ms\"")
            } else {
                format!("`{unit}` is not a duration unit (use ms, s, m or h)")
            });
        };
        let value: f64 = number.parse().map_err(|_| format!("`{number}` is not a number"))?;
        let ms = value * scale as f64;
        if ms.fract() != 0.0 {
            return Err(format!("`{s}` is not a whole number of milliseconds (the resolution is 1ms)"));
        }
        total_ms = total_ms.saturating_add(ms as u64);
    }
    const MAX_MS: u64 = 30 * 24 * 3_600_000;
    if total_ms > MAX_MS {
        return Err(format!("`{s}` is longer than 30 days"));
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way a user would write it: "0s", "250ms", "2s",
/// "1m30s", "1h".
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, scale) in [("h", 3_600_000u64), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= scale {
            out.push_str(&format!("{}{unit}", ms / scale));
            ms %= scale;
        }
    }
    out
}

/// A size in bytes, written as an integer or as "64KiB", "16MiB", "1GiB".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= scale && self.0 % scale == 0 {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Parses "512", "512B", "64KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of ten).
pub fn parse_byte_size(text: &str) -> Result<ByteSize, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(format!("`{s}` must start with a number, as in \"64KiB\""));
    }
    let value: u64 = number.parse().map_err(|_| format!("`{number}` is too large"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("`{other}` is not a size unit (use B, KiB, MiB, GiB, KB, MB or GB)")),
    };
    value.checked_mul(scale).map(ByteSize).ok_or_else(|| format!("`{s}` is too large"))
}

/// A link bandwidth in bits per second, for the emulated image-store link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bandwidth(pub u64);

impl Bandwidth {
    /// Bits per second.
    pub fn bits_per_sec(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [("Gbit", 1_000_000_000u64), ("Mbit", 1_000_000), ("Kbit", 1_000)] {
            if self.0 >= scale && self.0 % scale == 0 {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}bit", self.0)
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Parses "100Mbit", "1Gbit", "10Kbit", "500bit", or byte rates "125MB/s", "1GiB/s".
pub fn parse_bandwidth(text: &str) -> Result<Bandwidth, String> {
    let s = text.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{s}` must start with a number, as in \"1Gbit\""))?;
    let bits_per_unit: f64 = match unit.trim() {
        "bit" | "bit/s" | "bps" => 1.0,
        "Kbit" | "kbit" | "Kbit/s" | "kbit/s" => 1e3,
        "Mbit" | "mbit" | "Mbit/s" | "mbit/s" => 1e6,
        "Gbit" | "gbit" | "Gbit/s" | "gbit/s" => 1e9,
        "B/s" => 8.0,
        "KB/s" | "kB/s" => 8e3,
        "MB/s" => 8e6,
        "GB/s" => 8e9,
        "KiB/s" => 8.0 * 1024.0,
        "MiB/s" => 8.0 * 1024.0 * 1024.0,
        "GiB/s" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        "" => {
            return Err(format!(
                "`{s}` has no unit; write \"{number}Mbit\" or \"{number}MB/s\""
            ))
        }
        other => {
            return Err(format!(
                "`{other}` is not a bandwidth unit (use bit, Kbit, Mbit, Gbit, or B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)"
            ))
        }
    };
    let bits = value * bits_per_unit;
    if !bits.is_finite() || !(1.0..=1e13).contains(&bits) {
        return Err(format!("`{s}` is outside 1bit..10Tbit"));
    }
    Ok(Bandwidth(bits.round() as u64))
}

/// How many instances one scaling step adds or removes: a fixed count, or a
/// percentage of the instances the service has (rounded up, at least one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Exactly this many instances.
    Count(u32),
    /// This percentage of the current instance count, rounded up, at least 1.
    Percent(u32),
}

impl Step {
    /// The number of instances this step means when the service has `current`.
    pub fn instances(self, current: u32) -> u32 {
        match self {
            Step::Count(n) => n,
            Step::Percent(p) => {
                let n = (u64::from(current) * u64::from(p)).div_ceil(100);
                u32::try_from(n).unwrap_or(u32::MAX).max(1)
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Count(n) => write!(f, "{n}"),
            Step::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Step::Count(n) => s.serialize_u32(*n),
            Step::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

/// Parses the string form of a step: "100%", "50%".
pub fn parse_step_percent(text: &str) -> Result<Step, String> {
    let s = text.trim();
    let Some(number) = s.strip_suffix('%') else {
        return Err(format!("`{s}` is not a percentage; write a count such as 1, or a percentage such as \"100%\""));
    };
    let p: u32 = number.trim().parse().map_err(|_| format!("`{s}` is not a whole percentage such as \"100%\""))?;
    if p == 0 || p > 1000 {
        return Err(format!("`{s}` must be between 1% and 1000%"));
    }
    Ok(Step::Percent(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        for (text, ms) in [
            ("500ms", 500),
            ("2s", 2_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("0s", 0),
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_millis() as u64, ms, "{text}");
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("2").unwrap_err().contains("no unit"));
        assert!(parse_duration("2 sec").unwrap_err().contains("`sec` is not a duration unit"));
        assert!(parse_duration("s").unwrap_err().contains("must start with a number"));
        assert!(parse_duration("0.1ms").unwrap_err().contains("whole number"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999h").unwrap_err().contains("30 days"));
        assert!(parse_duration("1..2s").unwrap_err().contains("not a number"));
    }

    #[test]
    fn sizes_and_bandwidths() {
        assert_eq!(parse_byte_size("64KiB").unwrap().bytes(), 65_536);
        assert_eq!(parse_byte_size("100").unwrap().bytes(), 100);
        assert_eq!(parse_byte_size("16MiB").unwrap().to_string(), "16MiB");
        assert!(parse_byte_size("12XB").is_err());
        assert!(parse_byte_size("99999999999GiB").is_err());
        assert_eq!(parse_bandwidth("1Gbit").unwrap().bits_per_sec(), 1_000_000_000);
        assert_eq!(parse_bandwidth("125MB/s").unwrap().bits_per_sec(), 1_000_000_000);
        assert_eq!(parse_bandwidth("100Mbit").unwrap().to_string(), "100Mbit");
        assert!(parse_bandwidth("fast").is_err());
        assert!(parse_bandwidth("10").unwrap_err().contains("no unit"));
    }

    #[test]
    fn steps() {
        assert_eq!(Step::Count(2).instances(10), 2);
        assert_eq!(Step::Percent(100).instances(3), 3);
        assert_eq!(Step::Percent(50).instances(3), 2);
        assert_eq!(Step::Percent(10).instances(0), 1);
        assert_eq!(parse_step_percent("100%").unwrap(), Step::Percent(100));
        assert!(parse_step_percent("0%").is_err());
        assert!(parse_step_percent("abc").is_err());
    }
}
