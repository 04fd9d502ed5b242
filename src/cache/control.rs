//! What a request asks of the cache: `Cache-Control` (`no-cache`, `no-store`, `max-age=N`) and
//! Switchboard's own `x-switchboard-cache: off`.
//!
//! Unknown directives are ignored, as HTTP caches do.

use std::time::Duration;

use axum::http::HeaderMap;

/// The cache behaviour a request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// Do not serve from the cache (but store the fresh answer).
    pub skip_lookup: bool,
    /// Neither serve from nor store into the cache.
    pub skip_store: bool,
    /// Serve only entries younger than this.
    pub max_age: Option<Duration>,
}

impl Directives {
    /// Reads the request's headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut directives = Directives::default();
        let off = headers
            .get("x-switchboard-cache")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
        if off {
            directives.skip_lookup = true;
            directives.skip_store = true;
        }
        let values = headers
            .get_all("cache-control")
            .into_iter()
            .filter_map(|v| v.to_str().ok());
        for directive in values.flat_map(|v| v.split(',')).map(str::trim) {
            let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "no-cache" => directives.skip_lookup = true,
                "no-store" => {
                    directives.skip_lookup = true;
                    directives.skip_store = true;
                }
                "max-age" => {
                    if let Ok(seconds) = value.trim().trim_matches('"').parse::<u64>() {
                        directives.max_age = Some(Duration::from_secs(seconds));
                    }
                }
                _ => {}
            }
        }
        directives
    }

    /// Whether the request opts out of the cache entirely.
    pub fn bypass(&self) -> bool {
        self.skip_lookup && self.skip_store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Directives {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, HeaderValue::from_static(v));
        }
        Directives::from_headers(&headers)
    }

    #[test]
    fn reads_every_directive() {
        assert_eq!(parse(&[]), Directives::default());
        let d = parse(&[("cache-control", "no-cache")]);
        assert!(d.skip_lookup && !d.skip_store);
        assert!(parse(&[("cache-control", "No-Store")]).bypass());
        assert!(parse(&[("x-switchboard-cache", "off")]).bypass());
        let d = parse(&[("cache-control", "private, max-age=30")]);
        assert_eq!(d.max_age, Some(Duration::from_secs(30)));
        assert!(!d.skip_lookup);
        assert_eq!(parse(&[("cache-control", "max-age=soon")]).max_age, None);
    }
}
