//! `catalog:` of config.yaml: what the gateway publishes (model names and MCP tools) with each
//! entry's description, owner, docs, version and place in its lifecycle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// `catalog:`: metadata by model name and by tool name (as clients see it, prefix included).
/// An entry without metadata is published and described by nothing but its name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    #[serde(default)]
    pub models: BTreeMap<String, EntryMeta>,
    #[serde(default)]
    pub tools: BTreeMap<String, EntryMeta>,
}

/// What the catalog says about one entry; also the lifecycle fields of a `POST /admin/tools`
/// body and of a lifecycle change made at run time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntryMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who answers for it: a team, a person, an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A URL, or markdown shown as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub status: Status,
    /// The entry to use instead, of the same kind: a model name or a tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The day (`YYYY-MM-DD`, UTC) after which it is retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
    /// The day (`YYYY-MM-DD`, UTC) it was deprecated, sent in the `Deprecation` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_at: Option<String>,
}

/// Where an entry is in its lifecycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Listed and served.
    #[default]
    Published,
    /// Served, with `Deprecation`, `Sunset` and `Link` headers and a metric of who still calls.
    Deprecated,
    /// Not listed; a call is answered 410 Gone naming the successor.
    Retired,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Deprecated => "deprecated",
            Status::Retired => "retired",
        }
    }
}

/// Unix seconds at 00:00 UTC of a `YYYY-MM-DD` day.
pub fn day_start(day: &str) -> Option<u64> {
    let mut parts = day.splitn(3, '-');
    let (year, month, date) = (parts.next()?, parts.next()?, parts.next()?);
    if year.len() != 4 || month.len() != 2 || date.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(year.parse().ok()?, month, date.parse().ok()?).ok()?;
    let seconds = date.midnight().assume_utc().unix_timestamp();
    u64::try_from(seconds).ok()
}

impl EntryMeta {
    /// The problems of this entry's own fields, at `path`.
    pub fn problems(&self, path: &str, own_name: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (field, day) in [
            ("sunset", &self.sunset),
            ("deprecated_at", &self.deprecated_at),
        ] {
            if let Some(day) = day
                && day_start(day).is_none()
            {
                errors.push(ConfigError::new(
                    format!("{path}.{field}"),
                    format!("'{day}' is not a date: write YYYY-MM-DD"),
                ));
            }
        }
        if self.successor.as_deref() == Some(own_name) {
            errors.push(ConfigError::new(
                format!("{path}.successor"),
                "an entry cannot be its own successor",
            ));
        }
        if self.status == Status::Published && (self.successor.is_some() || self.sunset.is_some()) {
            errors.push(ConfigError::new(
                format!("{path}.status"),
                "successor and sunset belong to a deprecated or retired entry: set status",
            ));
        }
        for (field, text) in [
            ("description", &self.description),
            ("owner", &self.owner),
            ("docs", &self.docs),
            ("version", &self.version),
        ] {
            if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
                errors.push(ConfigError::new(
                    format!("{path}.{field}"),
                    format!("longer than {MAX_TEXT} bytes"),
                ));
            }
        }
        errors
    }
}

/// The longest metadata text: docs in markdown fit, a document does not.
pub const MAX_TEXT: usize = 64 * 1024;

pub(super) fn validate(config: &Config, errors: &mut Vec<ConfigError>) {
    let models: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    for (name, meta) in &config.catalog.models {
        let path = format!("catalog.models.{name}");
        if !models.contains(&name.as_str()) {
            let hint = super::validate::suggestion(name, models.iter().copied());
            errors.push(ConfigError::new(
                &path,
                format!("no model named '{name}' in models{hint}"),
            ));
        }
        if let Some(successor) = &meta.successor
            && !models.contains(&successor.as_str())
        {
            let hint = super::validate::suggestion(successor, models.iter().copied());
            errors.push(ConfigError::new(
                format!("{path}.successor"),
                format!("no model named '{successor}' in models{hint}"),
            ));
        }
        errors.extend(meta.problems(&path, name));
    }
    for (name, meta) in &config.catalog.tools {
        let path = format!("catalog.tools.{name}");
        if !super::valid_tool_name(name) {
            errors.push(ConfigError::new(&path, "not a valid MCP tool name"));
        }
        errors.extend(meta.problems(&path, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_as_utc_midnight_and_nonsense_is_refused() {
        assert_eq!(day_start("1970-01-02"), Some(86_400));
        assert_eq!(day_start("2027-03-01"), Some(1_803_859_200));
        for bad in [
            "2027-13-01",
            "2027-02-30",
            "27-03-01",
            "2027-3-1",
            "",
            "tomorrow",
        ] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }
}
