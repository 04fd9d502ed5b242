//! The units config.yaml writes as strings: durations (`250ms`, `10m`), sizes (`256MiB`), and
//! secrets, which must never reach a log line.
//!
//! Each is a newtype with its own `Deserialize`, so a bad value fails at its YAML path.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A duration written as `250ms`, `2s`, `10m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(Span)
            .map_err(|e| {
                de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); write e.g. 250ms, 2s, 10m"
                ))
            })
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
        assert!(serde_json::from_str::<Size>("\"lots\"").is_err());
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
