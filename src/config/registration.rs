//! `registration.allow` of a provider read as rules: where an instance may be registered at run
//! time, networks (CIDRs) and host globs. A registered instance is sent the provider's
//! credentials, so a provider without the list takes no registrations at all.

use std::net::IpAddr;

use globset::{Glob, GlobMatcher};

/// One entry of `registration.allow`.
#[derive(Debug, Clone)]
enum Rule {
    /// An address literal in the URL inside this network.
    Network { address: IpAddr, prefix: u8 },
    /// A host name (or address, as written) matching this glob.
    Host(GlobMatcher),
}

/// The hosts one provider's instances may be registered at.
#[derive(Debug, Clone)]
pub struct Allowed {
    rules: Vec<Rule>,
    /// The list as the config wrote it, to name in a refusal.
    written: Vec<String>,
}

impl Allowed {
    /// Reads `registration.allow`; an entry that is neither a CIDR nor a glob is named.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let rules = list
            .iter()
            .map(|entry| rule(entry))
            .collect::<Result<_, _>>()?;
        Ok(Allowed {
            rules,
            written: list.to_vec(),
        })
    }

    /// Whether `host` (a URL's host, IPv6 in brackets or not) is allowed.
    pub fn admits(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let address = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| match (rule, address) {
            (Rule::Network { address, prefix }, Some(ip)) => within(ip, *address, *prefix),
            (Rule::Network { .. }, None) => false,
            (Rule::Host(glob), _) => glob.is_match(host.to_ascii_lowercase()),
        })
    }

    /// The list as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

fn rule(entry: &str) -> Result<Rule, String> {
    if let Some((address, prefix)) = entry.split_once('/') {
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{entry:?} is not a network: write a CIDR such as 10.0.0.0/8"))?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= most)
            .ok_or_else(|| format!("{entry:?}: the prefix length must be 0 to {most}"))?;
        return Ok(Rule::Network { address, prefix });
    }
    if let Ok(address) = entry.parse::<IpAddr>() {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        return Ok(Rule::Network { address, prefix });
    }
    if entry.is_empty() || entry.contains(['/', ':', '@']) {
        return Err(format!(
            "{entry:?} is not a host glob (such as *.svc.cluster.local)"
        ));
    }
    Glob::new(&entry.to_ascii_lowercase())
        .map(|glob| Rule::Host(glob.compile_matcher()))
        .map_err(|e| format!("{entry:?} is not a host glob: {e}"))
}

/// Whether `ip` is inside `network`/`prefix`; an IPv4-mapped IPv6 address is its IPv4 one.
fn within(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Allowed {
        Allowed::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn networks_and_host_globs_admit_what_they_name_and_nothing_else() {
        let rules = allowed(&["10.0.0.0/8", "127.0.0.1", "fd00::/8", "*.svc.cluster.local"]);
        for host in [
            "10.1.2.3",
            "127.0.0.1",
            "[fd00::1]",
            "vllm.ns.svc.cluster.local",
            "A.SVC.cluster.local",
        ] {
            assert!(rules.admits(host), "{host}");
        }
        for host in [
            "11.0.0.1",
            "127.0.0.2",
            "[fe80::1]",
            "evil.example",
            "svc.cluster.local.evil.example",
        ] {
            assert!(!rules.admits(host), "{host}");
        }
        // An IPv4-mapped address is its IPv4 address.
        assert!(rules.admits("[::ffff:10.0.0.9]"));
        assert!(allowed(&["0.0.0.0/0"]).admits("203.0.113.7"));
    }

    #[test]
    fn an_entry_that_is_neither_is_named() {
        for bad in ["10.0.0.0/33", "10.0.0/8", "http://x", "", "a[.b"] {
            let error = Allowed::parse(&[bad.to_string()]).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
