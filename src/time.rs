//! Time: the clock, the creation time of a new manifest, and the one way
//! times are written for people. Names no other module.

/// The latest time airlock writes or accepts, 9999-12-31T23:59:59Z. RFC
/// 3339, in which every report and record writes times, has four-digit
/// years: a later time has no form there.
pub const MAX_TIME: u64 = 253_402_300_799;

/// Seconds since the Unix epoch, from the system clock. Verification always
/// uses this: nothing in the environment can move an expiry check.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The creation time written into a new manifest: `SOURCE_DATE_EPOCH` when
/// set (reproducible exports, as in reproducible-builds.org), else [`now`].
#[must_use]
pub fn creation_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()).unwrap_or_else(now)
}

/// Seconds since the epoch as an RFC 3339 UTC time. A decoded manifest
/// holds no time after [`MAX_TIME`], the last one RFC 3339 can write; a later
/// one (from elsewhere) is written as a count of seconds rather than panic.
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    if secs > MAX_TIME {
        return format!("{secs} seconds after 1970-01-01T00:00:00Z");
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_has_a_text_and_none_panics() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(MAX_TIME), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_TIME + 1), "253402300800 seconds after 1970-01-01T00:00:00Z");
        assert!(rfc3339(u64::MAX).starts_with("18446744073709551615 seconds"));
    }
}
