//! Wall-clock time in the units the gateway stores and reports: Unix seconds (and milliseconds).
//! Lives at the bottom of the layer table so quotas, instances and answers share one clock.

/// Unix seconds now (0 if the system clock is set before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix milliseconds now, for what replicas compare with each other (a cached answer's age).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now as RFC 3339 in UTC to the millisecond (`2026-12-06T15:14:26.123Z`), for log lines a
/// person and a log pipeline both read.
pub fn rfc3339_now() -> String {
    let millis = unix_millis();
    format!("{}.{:03}Z", seconds_of(millis / 1000), millis % 1000)
}

/// Unix seconds as RFC 3339 in UTC to the second (`2026-12-06T15:14:26Z`), for pages.
pub fn rfc3339(seconds: u64) -> String {
    format!("{}Z", seconds_of(seconds))
}

/// `2026-12-06T15:14:26`: a moment's date and time to the second, in UTC.
fn seconds_of(seconds: u64) -> String {
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok());
    match at {
        Some(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        None => "1970-01-01T00:00:00".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_utc_to_the_millisecond() {
        let now = super::rfc3339_now();
        assert_eq!(now.len(), 24, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
