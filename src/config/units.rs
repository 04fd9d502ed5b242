//! The units config.yaml writes as strings: durations (`250ms`, `10m`), sizes (`256MiB`), and
//! secrets, which must never reach a log line.
//!
//! Each is a newtype with its own `Deserialize`, so a bad value fails at its YAML path.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written as `250ms`, `2s`, `10m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(d).map_err(|_| de::Error::custom(DURATION_HINT))? {
            Raw::Text(text) => parse_duration(&text).map(Span).map_err(de::Error::custom),
            Raw::Number(n) => Err(de::Error::custom(format!(
                "{n} has no unit; write a duration like {n}s or {n}m"
            ))),
        }
    }
}

const DURATION_HINT: &str = "expected a duration like 250ms, 2s, 10m or 1h";

/// The units a duration may be written in: humantime's, less months and years, which no timeout
/// or TTL means and which `M` (for `m`) would silently become.
const DURATION_UNITS: &[&str] = &[
    "ns", "nsec", "us", "usec", "ms", "msec", "millis", "s", "sec", "secs", "second", "seconds",
    "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days",
    "w", "week", "weeks",
];

/// Parses a duration as config.yaml, `?ttl=` and the MCP tools write it: `250ms`, `2s`,
/// `1h30m`. Units are case-exact; an unknown one is an error that suggests the one meant.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ' '))
            .unwrap_or(rest.len());
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        if digits == 0 || unit.is_empty() {
            break;
        }
        if !DURATION_UNITS.contains(&unit) {
            let lower = unit.to_ascii_lowercase();
            let hint = if DURATION_UNITS.contains(&lower.as_str()) {
                format!(" (did you mean `{lower}`? units are case-sensitive)")
            } else {
                String::new()
            };
            return Err(format!(
                "invalid duration {text:?}: unknown unit `{unit}`{hint}; {DURATION_HINT}"
            ));
        }
        rest = after[unit_len..].trim_start();
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| format!("invalid duration {text:?} ({e}); {DURATION_HINT}"))
}

impl Serialize for Span {
    /// As config.yaml would write it (`1m 30s`), for the running config's report.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

/// A size in bytes written as `64KiB`, `256MiB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Size(n)),
            Raw::Text(text) => text
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.as_u64()))
                .map_err(|e| {
                    de::Error::custom(format!(
                        "invalid size {text:?} ({e}); write e.g. 64KiB, 32MiB"
                    ))
                }),
        }
    }
}

/// A credential: printed as `<redacted>` by `Debug`, read only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty, as `${VAR:-}` gives when the variable is unset.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for Secret {
    /// Masked: the running config is shown, its secrets never are.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde's own message would quote the value, and the value is a secret.
        String::deserialize(d)
            .map(Secret)
            .map_err(|_| de::Error::custom("must be a string (quote it in YAML)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_sizes() {
        let span: Span = serde_json::from_str("\"250ms\"").unwrap();
        assert_eq!(span.0, Duration::from_millis(250));
        let size: Size = serde_json::from_str("\"32MiB\"").unwrap();
        assert_eq!(size.0, 32 * 1024 * 1024);
        let size: Size = serde_json::from_str("1024").unwrap();
        assert_eq!(size.0, 1024);
        assert!(serde_json::from_str::<Span>("\"soon\"").is_err());
        let span: Span = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(span.0, Duration::from_secs(5400));
        assert!(serde_json::from_str::<Size>("\"lots\"").is_err());
    }

    #[test]
    fn duration_units_are_case_exact_and_months_are_refused() {
        let error = parse_duration("10M").unwrap_err();
        assert!(error.contains("did you mean `m`"), "{error}");
        let error = parse_duration("2S").unwrap_err();
        assert!(error.contains("did you mean `s`"), "{error}");
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("3months").is_err());
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration(" 2 s "), Ok(Duration::from_secs(2)));
        let error = serde_json::from_str::<Span>("10").unwrap_err().to_string();
        assert!(
            error.contains("no unit") && error.contains("10m"),
            "{error}"
        );
        let error = serde_json::from_str::<Span>("[1]").unwrap_err().to_string();
        assert!(error.contains("a duration like"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::from("sk-very-secret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let err = serde_json::from_str::<Secret>("12345678")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("12345678"), "{err}");
    }
}
