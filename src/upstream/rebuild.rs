//! The upstreams of a reloaded config: what carries over from the running ones.
//!
//! A provider whose entry did not change is kept whole, so its instances keep their breakers,
//! requests in flight, latency averages and run-time registrations, and its rate-limit holds
//! stay. A changed provider is built anew; the instances registered at run time that its new
//! `registration.allow` still admits move over with the time they had left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use switchboard_providers::Endpoint;

use super::instances::Origin;
use super::{Backend, Upstream, UpstreamError};
use crate::config::ProviderConfig;

/// Every upstream of `configs`, reusing those of `running` whose entry is unchanged.
pub fn rebuild_all(
    configs: &BTreeMap<String, ProviderConfig>,
    running: &BTreeMap<String, Arc<Upstream>>,
) -> Result<BTreeMap<String, Arc<Upstream>>, UpstreamError> {
    configs
        .iter()
        .map(|(name, config)| {
            let upstream = match running.get(name) {
                Some(old) if old.config == *config => old.clone(),
                old => {
                    let new = Arc::new(Upstream::new(name, config)?);
                    if let Some(old) = old {
                        carry_registrations(old, &new);
                    }
                    new
                }
            };
            Ok((name.clone(), upstream))
        })
        .collect()
}

/// Whether `upstream` is one of `running`, kept by [`rebuild_all`] rather than built anew.
pub fn kept(upstream: &Arc<Upstream>, running: &BTreeMap<String, Arc<Upstream>>) -> bool {
    running
        .get(&upstream.name)
        .is_some_and(|old| Arc::ptr_eq(old, upstream))
}

/// Registers in `new` the run-time instances of `old` its rules admit, with their own URL and
/// the new endpoint's credentials.
fn carry_registrations(old: &Upstream, new: &Upstream) {
    let Backend::Http(http) = &new.backend else {
        return;
    };
    let now = Instant::now();
    for instance in old.instances.all().iter() {
        let Origin::Registered { expires } = instance.origin() else {
            continue;
        };
        let admitted = instance
            .url()
            .parse::<http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|uri| http.admits(&new.name, &uri));
        match admitted {
            Ok(()) if expires > now => {
                let endpoint = Endpoint {
                    base_url: instance.url().to_owned(),
                    ..http.endpoint.clone()
                };
                new.instances
                    .register(endpoint, expires - now, instance.owner());
            }
            Ok(()) => {}
            Err(why) => tracing::warn!(
                provider = %new.name,
                url = %instance.shown_url(),
                %why,
                "a registered instance the reloaded config no longer admits was dropped"
            ),
        }
    }
}
