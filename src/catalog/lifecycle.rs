//! What an entry's lifecycle tells a caller: the `Deprecation` (RFC 9745), `Sunset` (RFC 8594)
//! and `Link` headers of a deprecated entry, and the words that name a successor.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::Kind;
use crate::config::{EntryMeta, day_start};

/// What a path segment keeps as written: the unreserved characters and `:`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

/// The catalog path of an entry (`/v1/catalog/model:gpt-5`), for `Link` headers and pages.
pub fn catalog_path(kind: Kind, name: &str) -> String {
    let id = super::entry_id(kind, name);
    format!("/v1/catalog/{}", utf8_percent_encode(&id, SEGMENT))
}

/// The headers a deprecated entry's answers carry. `since` is the Unix time it was deprecated.
pub fn headers(kind: Kind, meta: &EntryMeta, since: u64) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(3);
    let deprecation = HeaderName::from_static("deprecation");
    if let Ok(value) = HeaderValue::from_str(&format!("@{since}")) {
        headers.push((deprecation, value));
    }
    if let Some(sunset) = meta.sunset.as_deref().and_then(day_start) {
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(sunset));
        if let Ok(value) = HeaderValue::from_str(&date) {
            headers.push((HeaderName::from_static("sunset"), value));
        }
    }
    if let Some(successor) = &meta.successor {
        let link = format!(
            "<{}>; rel=\"successor-version\"",
            catalog_path(kind, successor)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.push((http::header::LINK, value));
        }
    }
    // RFC 9745's own relation: where to read about the deprecation.
    if let Some(docs) = meta.docs.as_deref().filter(|d| is_url(d))
        && let Ok(value) = HeaderValue::from_str(&format!("<{docs}>; rel=\"deprecation\""))
    {
        headers.push((http::header::LINK, value));
    }
    headers
}

fn is_url(text: &str) -> bool {
    (text.starts_with("https://") || text.starts_with("http://"))
        && !text.contains(|c: char| c.is_whitespace() || c == '>' || c == '<')
}

/// The sentence a refused call of a retired entry gets: what to use instead.
pub fn retired_message(kind: Kind, name: &str, meta: &EntryMeta) -> String {
    let what = match kind {
        Kind::Model => "model",
        Kind::Tool => "tool",
    };
    let when = meta
        .sunset
        .as_deref()
        .map(|day| format!(" on {day}"))
        .unwrap_or_default();
    match &meta.successor {
        Some(successor) => {
            format!("The {what} '{name}' was retired{when}; use '{successor}' instead.")
        }
        None => format!("The {what} '{name}' was retired{when} and has no successor."),
    }
}

/// The words a deprecated tool's description ends with in `tools/list`.
pub fn deprecated_suffix(meta: &EntryMeta) -> String {
    let mut words = String::from(" (Deprecated");
    if let Some(successor) = &meta.successor {
        words.push_str(&format!("; use {successor} instead"));
    }
    if let Some(sunset) = &meta.sunset {
        words.push_str(&format!("; sunset {sunset}"));
    }
    words.push(')');
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Status;

    fn deprecated() -> EntryMeta {
        EntryMeta {
            status: Status::Deprecated,
            successor: Some("gpt 5/turbo".into()),
            sunset: Some("2027-03-01".into()),
            docs: Some("https://docs.example/migrate".into()),
            ..EntryMeta::default()
        }
    }

    #[test]
    fn a_deprecated_entry_carries_rfc_9745_and_8594_headers() {
        let headers = headers(Kind::Model, &deprecated(), 1_800_000_000);
        let find = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(find("deprecation"), ["@1800000000"]);
        assert_eq!(find("sunset"), ["Mon, 01 Mar 2027 00:00:00 GMT"]);
        assert_eq!(
            find("link"),
            [
                "</v1/catalog/model:gpt%205%2Fturbo>; rel=\"successor-version\"",
                "<https://docs.example/migrate>; rel=\"deprecation\""
            ]
        );
    }

    #[test]
    fn a_retired_entry_names_its_successor() {
        let meta = deprecated();
        assert_eq!(
            retired_message(Kind::Tool, "old", &meta),
            "The tool 'old' was retired on 2027-03-01; use 'gpt 5/turbo' instead."
        );
        assert_eq!(
            deprecated_suffix(&meta),
            " (Deprecated; use gpt 5/turbo instead; sunset 2027-03-01)"
        );
    }
}
