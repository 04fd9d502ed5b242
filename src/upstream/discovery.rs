//! DNS discovery: every `refresh`, a provider's `discovery.dns` name is resolved and each of its
//! A/AAAA records becomes an instance (the provider's endpoint at that address and port).
//!
//! One task per discovering provider, spawned by `Gateway::serve` and aborted when serving ends.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use switchboard_providers::Endpoint;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::instances::Origin;
use super::{Backend, Upstream};
use crate::config::{DiscoveryConfig, ProviderConfig};

/// A provider whose discovery cannot start.
#[derive(Debug, thiserror::Error)]
#[error("providers.{provider}.discovery: {message}")]
pub struct DiscoveryError {
    provider: String,
    message: String,
}

/// One provider's discovery, ready to run.
pub struct Discovery {
    upstream: Arc<Upstream>,
    /// The provider's endpoint; each address replaces its host and port.
    template: Endpoint,
    name: Name,
    port: u16,
    refresh: Duration,
    resolver: TokioResolver,
}

/// The provider's endpoint with the host and port of its base URL replaced; `None` when the base
/// URL has no host to replace.
pub fn instance_endpoint(template: &Endpoint, address: IpAddr, port: u16) -> Option<Endpoint> {
    let mut url = reqwest::Url::parse(&template.base_url).ok()?;
    url.set_ip_host(address).ok()?;
    url.set_port(Some(port)).ok()?;
    Some(Endpoint {
        base_url: url.as_str().trim_end_matches('/').to_owned(),
        ..template.clone()
    })
}

/// The discovery of every provider that configures one.
pub fn build_all(
    configs: &BTreeMap<String, ProviderConfig>,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
) -> Result<Vec<Discovery>, DiscoveryError> {
    configs
        .iter()
        .filter_map(|(name, config)| {
            let discovery = config.http()?.discovery?;
            let upstream = upstreams.get(name)?;
            Some(
                Discovery::new(upstream.clone(), &discovery).map_err(|message| DiscoveryError {
                    provider: name.clone(),
                    message,
                }),
            )
        })
        .collect()
}

/// Starts every discovery; each resolves at once, then every `refresh`. The tasks are by
/// provider name, so a reload that replaces a provider stops its discovery.
pub fn spawn_all(discoveries: Vec<Discovery>) -> BTreeMap<String, JoinHandle<()>> {
    discoveries
        .into_iter()
        .map(|discovery| {
            let name = discovery.upstream.name.clone();
            (name, tokio::spawn(discovery.run()))
        })
        .collect()
}

impl Discovery {
    fn new(upstream: Arc<Upstream>, config: &DiscoveryConfig) -> Result<Self, String> {
        let Backend::Http(http) = &upstream.backend else {
            return Err("only a provider reached over HTTP has instances to discover".into());
        };
        let target = config.target().map_err(|e| format!("dns: {e}"))?;
        let name = Name::from_ascii(&target.host).map_err(|e| format!("dns: {e}"))?;
        Ok(Discovery {
            template: http.endpoint.clone(),
            upstream,
            name,
            port: target.port,
            refresh: config.refresh.0,
            resolver: resolver(config).map_err(|e| format!("cannot set up DNS: {e}"))?,
        })
    }

    async fn run(self) {
        let mut ticks = tokio::time::interval(self.refresh);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.refresh_once().await;
        }
    }

    async fn refresh_once(&self) {
        let provider = &self.upstream.name;
        match self.resolve().await {
            Ok(addresses) => {
                let endpoints: Vec<Endpoint> = addresses
                    .into_iter()
                    .filter_map(|ip| instance_endpoint(&self.template, ip, self.port))
                    .collect();
                let before: Vec<String> = self
                    .upstream
                    .instances
                    .all()
                    .iter()
                    .filter(|i| i.origin() == Origin::Dns)
                    .map(|i| i.url().to_owned())
                    .collect();
                if !before.iter().eq(endpoints.iter().map(|e| &e.base_url)) {
                    tracing::info!(provider, name = %self.name, instances = endpoints.len(), "DNS discovery changed the instances");
                }
                self.upstream.instances.set_discovered(endpoints);
            }
            // A failed lookup says nothing about the instances: dropping them on a resolver hiccup
            // would turn a DNS outage into a provider outage, so the last answer stands.
            Err(error) => {
                tracing::warn!(provider, name = %self.name, %error, "DNS discovery failed; keeping the previous instances");
            }
        }
    }

    /// The name's A and AAAA addresses, deduplicated; an empty list when the name has none
    /// (NXDOMAIN or no records), an error when the resolver could not get an answer.
    async fn resolve(&self) -> Result<Vec<IpAddr>, NetError> {
        let (v4, v6) = tokio::join!(
            self.resolver.lookup(self.name.clone(), RecordType::A),
            self.resolver.lookup(self.name.clone(), RecordType::AAAA),
        );
        let mut addresses = addresses(v4)?;
        addresses.extend(self::addresses(v6)?);
        addresses.sort();
        addresses.dedup();
        Ok(addresses)
    }
}

/// The addresses of one lookup; no records is an answer, not an error.
fn addresses(
    lookup: Result<hickory_resolver::lookup::Lookup, NetError>,
) -> Result<Vec<IpAddr>, NetError> {
    match lookup {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// A resolver asking `nameserver`, or the system's configured servers (`/etc/resolv.conf`).
fn resolver(config: &DiscoveryConfig) -> Result<TokioResolver, NetError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match config.nameserver {
        Some(server) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = server.port();
                    c
                })
                .collect();
            let name_server = NameServerConfig::new(server.ip(), true, connections);
            let mut builder = Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                provider,
            );
            // An explicit server is the only source of truth: /etc/hosts must not shadow it.
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
        None => Resolver::builder(provider)?,
    };
    // `refresh` is the cadence: a cached answer would hide a change until its TTL ran out.
    let options = builder.options_mut();
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn template(url: &str) -> Endpoint {
        Endpoint {
            base_url: url.into(),
            api_key: Some("sk-kept".into()),
            ..Endpoint::default()
        }
    }

    #[test]
    fn an_address_replaces_host_and_port_and_keeps_scheme_path_and_key() {
        let v4 = instance_endpoint(
            &template("http://llm.internal:8000/v1"),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
            9000,
        )
        .unwrap();
        assert_eq!(v4.base_url, "http://10.0.0.7:9000/v1");
        assert_eq!(v4.api_key.as_deref(), Some("sk-kept"));

        let v6 = instance_endpoint(
            &template("http://llm.internal/v1"),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            8080,
        )
        .unwrap();
        assert_eq!(v6.base_url, "http://[fd00::1]:8080/v1");

        let https = instance_endpoint(
            &template("https://gw.example.com/openai/deployments/x"),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            8443,
        )
        .unwrap();
        assert_eq!(
            https.base_url,
            "https://192.0.2.1:8443/openai/deployments/x"
        );

        let bare = instance_endpoint(&template("http://svc"), IpAddr::V4(Ipv4Addr::LOCALHOST), 81)
            .unwrap();
        assert_eq!(bare.base_url, "http://127.0.0.1:81", "no trailing slash");
    }
}
