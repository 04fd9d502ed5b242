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
