//! Following what other replicas register: tools and instances registered through any replica
//! applied here, checked against this replica's rules first.

use std::sync::Arc;

use crate::api::{self, Current};
use crate::upstream;

/// Applies the tools and instances registered through other replicas, for as long as the
/// gateway runs.
pub(super) async fn follow(current: Current, registrations: Arc<api::Registrations>) {
    // The registry lives as long as the process; routes are read anew, a reload replaces them.
    let registry = current.load().tool_registry.clone();
    let tools = registrations.tools.follow(
        |entry| match crate::mcp::read_shared(&entry.body) {
            Ok((tool, owner)) => {
                let owner = owner.as_deref();
                if let Err(error) = registry.register(&tool, entry.remaining, owner) {
                    tracing::warn!(tool = %entry.name, ?error, "a shared tool registration was refused here");
                }
            }
            Err(error) => tracing::warn!(tool = %entry.name, %error, "an unreadable shared tool registration"),
        },
        |name| {
            registry.remove(name);
        },
    );
    let instances = registrations.instances.follow(
        |entry| {
            let Some((provider, url)) = entry.name.split_once(' ') else {
                return;
            };
            let state = current.load();
            if let Some(upstream) = state.routes.upstreams().get(provider)
                && let upstream::Backend::Http(http) = &upstream.backend
            {
                // Another replica checked it against the same rules; a config changed since, or
                // a write to Redis by anyone else, must not send this one's credentials there.
                let allowed = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| e.to_string());
                if let Err(why) = allowed.and_then(|uri| http.admits(provider, &uri)) {
                    tracing::warn!(%provider, %url, %why, "a shared registration was refused here");
                    return;
                }
                let endpoint = switchboard_providers::Endpoint {
                    base_url: url.to_owned(),
                    ..http.endpoint.clone()
                };
                // The body names the key that registered it (empty: the admin key).
                let owner = Some(entry.body.as_str()).filter(|o| !o.is_empty());
                upstream
                    .instances
                    .register(endpoint, entry.remaining, owner);
            }
        },
        |name| {
            let state = current.load();
            if let Some((provider, url)) = name.split_once(' ')
                && let Some(upstream) = state.routes.upstreams().get(provider)
            {
                upstream.instances.unregister(url);
            }
        },
    );
    tokio::join!(tools, instances);
}
