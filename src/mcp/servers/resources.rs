//! Upstream servers' resources: listed and their templates merged on the client's own upstream
//! sessions, a URI read or subscribed to at the server that serves it.
//!
//! A URI goes to the server that listed it last, else to one whose template it matches, else to
//! each server with resources in configured order until one has it (a `resource_link` in a tool
//! result names URIs no list holds). URIs reach the client as the servers wrote them; where two
//! servers list one URI, the first configured keeps it and the others' copies are offered under
//! an alias that leads back to them (`aliases`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};
// Subscriptions: 2026-07-28 replaces them with `subscriptions/listen`; session-era servers
// speak them.
#[allow(deprecated)]
use rmcp::model::{
    ReadResourceRequestParams, ReadResourceResponse, Resource, ResourceTemplate,
    ServerNotification, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::{ErrorData, Peer, RoleServer};
use tokio::sync::mpsc;

use super::{Era, Holder, Live, McpServers, Server, aliases, lock};

/// Updates waiting for a client's listen stream; a server that sends faster waits.
const UPDATES: usize = 64;

/// One server's `subscriptions/listen` for the URIs `named` holds (as the server names them),
/// its updates passed to `updates` under the client's names until the stream or receiver ends.
async fn listen_at(
    server: Arc<Server>,
    live: Live,
    named: HashMap<String, String>,
    updates: mpsc::Sender<String>,
) {
    let name = &server.config.name;
    let mut filter = SubscriptionFilter::new();
    filter.resource_subscriptions = Some(named.keys().cloned().collect());
    let listening = tokio::time::timeout(server.config.timeout.0, live.peer.listen(filter));
    let mut subscription = match listening.await {
        Ok(Ok(subscription)) => subscription,
        Ok(Err(error)) => {
            tracing::warn!(server = %name, %error, "no resource subscriptions upstream");
            return;
        }
        Err(_) => {
            tracing::warn!(server = %name, "no answer to subscriptions/listen");
            return;
        }
    };
    loop {
        tokio::select! {
            () = updates.closed() => return,
            next = subscription.next() => match next {
                Ok(Some(ServerNotification::ResourceUpdatedNotification(updated))) => {
                    let uri = updated.params.uri;
                    let uri = named.get(&uri).cloned().unwrap_or(uri);
                    if updates.send(uri).await.is_err() {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            },
        }
    }
}

/// The most URIs remembered with the server that listed them.
const REMEMBERED: usize = 100_000;

/// Which server listed each URI last.
#[derive(Default)]
pub struct Owners(Mutex<HashMap<String, String>>);

impl Owners {
    fn listed(&self, server: &str, resources: &[Resource]) {
        let mut owners = lock(&self.0);
        if owners.len() + resources.len() > REMEMBERED {
            owners.clear();
        }
        for resource in resources {
            owners.insert(resource.uri.clone(), server.to_owned());
        }
    }

    fn of(&self, uri: &str) -> Option<String> {
        lock(&self.0).get(uri).cloned()
    }
}

/// A server's resource templates: as listed (for routing a completion) and as globs a URI may
/// match (`{var}` matches anything), for routing a read.
pub struct Templates {
    listed: Vec<String>,
    globs: GlobSet,
}

impl Templates {
    pub fn new(templates: &[ResourceTemplate]) -> Templates {
        Templates {
            listed: templates.iter().map(|t| t.uri_template.clone()).collect(),
            globs: template_globs(templates),
        }
    }

    fn matches(&self, uri: &str) -> bool {
        self.globs.is_match(uri)
    }

    /// Whether the server lists the template `uri_template`.
    pub fn offers(&self, uri_template: &str) -> bool {
        self.listed.iter().any(|t| t == uri_template)
    }
}

fn template_globs(templates: &[ResourceTemplate]) -> GlobSet {
    let mut globs = GlobSetBuilder::new();
    for template in templates {
        let mut pattern = String::new();
        let mut rest = template.uri_template.as_str();
        while let Some(open) = rest.find('{') {
            pattern.push_str(&globset::escape(&rest[..open]));
            pattern.push('*');
            rest = rest[open..]
                .find('}')
                .map_or("", |close| &rest[open + close + 1..]);
        }
        pattern.push_str(&globset::escape(rest));
        if let Ok(glob) = Glob::new(&pattern) {
            globs.add(glob);
        }
    }
    globs.build().unwrap_or_else(|_| GlobSet::empty())
}

/// A client: whose upstream sessions a request uses, and where what they hear goes.
type Client<'a> = (&'a Holder, &'a Peer<RoleServer>);

impl McpServers {
    /// Every resource the servers list to `holder`'s sessions that `allowed` lets through, a
    /// URI once (the first configured server's). A server that fails to list offers none.
    pub async fn resources(
        &self,
        client: Client<'_>,
        allowed: impl Fn(&str) -> bool,
    ) -> Vec<Resource> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for (server, live) in self.with_resources(client.0.era()) {
            let Ok(upstream) = server.session(&live, client, &self.client).await else {
                continue;
            };
            let listed = server
                .within_call_timeout(upstream.peer.list_all_resources())
                .await;
            let Ok(listed) = server.answered(client.0, listed, "a resource list") else {
                continue;
            };
            // A URI an earlier server listed stays that server's; this one's copy gets an alias.
            let (first, shadowed): (Vec<Resource>, Vec<Resource>) =
                listed.into_iter().partition(|r| seen.insert(r.uri.clone()));
            self.resource_owners.listed(&server.config.name, &first);
            let shadowed = shadowed.into_iter().map(|mut resource| {
                resource.uri = aliases::alias(&server.config.name, &resource.uri);
                resource
            });
            let offered = first.into_iter().chain(shadowed);
            all.extend(offered.filter(|r| allowed(&aliases::original(&r.uri))));
        }
        all
    }

    /// The servers' resource templates that `allowed` lets through, as they list them to
    /// `holder`'s sessions, a template once.
    pub async fn resource_templates(
        &self,
        client: Client<'_>,
        allowed: impl Fn(&str) -> bool,
    ) -> Vec<ResourceTemplate> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for (server, live) in self.with_resources(client.0.era()) {
            let Ok(upstream) = server.session(&live, client, &self.client).await else {
                continue;
            };
            let listed = server
                .within_call_timeout(upstream.peer.list_all_resource_templates())
                .await;
            if let Ok(listed) = server.answered(client.0, listed, "a template list") {
                let shown = listed.into_iter().filter(|t| allowed(&t.uri_template));
                all.extend(shown.filter(|t| seen.insert(t.uri_template.clone())));
            }
        }
        all
    }

    /// Reads `request.uri` at the server that has it; `None` when no server has resources.
    pub async fn read_resource(
        &self,
        client: Client<'_>,
        request: ReadResourceRequestParams,
    ) -> Option<Result<ReadResourceResponse, ErrorData>> {
        let (route, original) = self.route_of(client.0.era(), &request.uri);
        let asked = request.uri.clone();
        let mut request = request;
        request.uri.clone_from(&original);
        let mut refused = None;
        for (server, live) in route {
            let Ok(upstream) = server.session(&live, client, &self.client).await else {
                refused = Some(server.unavailable_error());
                continue;
            };
            let read = Box::pin(
                server.within_call_timeout(upstream.peer.read_resource_once(request.clone())),
            );
            match server.answered(client.0, read.await, "a resource") {
                Ok(mut read) => {
                    if let ReadResourceResponse::Complete(result) = &mut read {
                        aliases::rename(&mut result.contents, &original, &asked);
                    }
                    return Some(Ok(read));
                }
                Err(error) => refused = Some(error),
            }
        }
        refused.map(Err)
    }

    /// Subscribes `holder` to `uri` (or ends that) at the server that has it; its updates
    /// reach the client through its session. `None` when no server has resources.
    #[allow(deprecated)]
    pub async fn subscribe(
        &self,
        client: Client<'_>,
        uri: &str,
        on: bool,
    ) -> Option<Result<(), ErrorData>> {
        let (route, original) = self.route_of(client.0.era(), uri);
        let mut refused = None;
        for (server, live) in route {
            let Ok(upstream) = server.session(&live, client, &self.client).await else {
                refused = Some(server.unavailable_error());
                continue;
            };
            // Its updates name the server's own URI: the client hears of the one it used.
            upstream.tap.rename_updates(&original, uri, on);
            let uri = original.as_str();
            let done = if on {
                let asked = upstream.peer.subscribe(SubscribeRequestParams::new(uri));
                server.within_call_timeout(asked).await
            } else {
                let asked = upstream
                    .peer
                    .unsubscribe(UnsubscribeRequestParams::new(uri));
                server.within_call_timeout(asked).await
            };
            match server.answered(client.0, done, "a subscription") {
                Ok(()) => return Some(Ok(())),
                Err(error) => refused = Some(error),
            }
        }
        refused.map(Err)
    }

    /// Updates of `uris` from the servers' 2026-07-28 faces, each URI asked of the server that
    /// would serve it, as they come; every upstream `subscriptions/listen` ends when the
    /// receiver is dropped. A session-era face has no such stream: its URIs are not heard.
    pub fn listen_updates(&self, uris: Vec<String>) -> mpsc::Receiver<String> {
        let (updates, heard) = mpsc::channel(UPDATES);
        // Each server's URIs, as the server names them, and what the client called each.
        let mut by_server: Vec<(Arc<Server>, Live, HashMap<String, String>)> = Vec::new();
        for uri in uris {
            let (route, original) = self.route_of(Era::Stateless, &uri);
            let Some((server, live)) = route.into_iter().next() else {
                continue;
            };
            if !live.stateless {
                continue;
            }
            match by_server.iter_mut().find(|(s, ..)| Arc::ptr_eq(s, &server)) {
                Some((.., mine)) => {
                    mine.insert(original, uri);
                }
                None => by_server.push((server, live, HashMap::from([(original, uri)]))),
            }
        }
        for (server, live, named) in by_server {
            tokio::spawn(listen_at(server, live, named, updates.clone()));
        }
        heard
    }

    /// The servers to ask for `uri` and the URI to ask them for: an alias's one server and its
    /// own URI, or [`resource_route`](Self::resource_route) and `uri` itself.
    fn route_of(&self, era: Era, uri: &str) -> (Vec<(Arc<Server>, Live)>, String) {
        match aliases::unalias(uri) {
            Some((name, original)) => {
                let all = self.all();
                let server = all.iter().find(|s| s.config.name == name);
                let up = server.and_then(|s| Some((s.clone(), s.live_for(era)?)));
                (up.into_iter().collect(), original)
            }
            None => (self.resource_route(era, uri), uri.to_owned()),
        }
    }

    /// The servers up that offer resources, in configured order.
    fn with_resources(&self, era: Era) -> Vec<(Arc<Server>, Live)> {
        let all = self.all();
        let up = all
            .iter()
            .filter_map(|s| Some((s.clone(), s.live_for(era)?)));
        up.filter(|(_, live)| live.resources.is_some()).collect()
    }

    /// The servers to ask for `uri`, most likely first: the one that listed it, those whose
    /// templates match it, then every other server with resources.
    fn resource_route(&self, era: Era, uri: &str) -> Vec<(Arc<Server>, Live)> {
        let mut servers = self.with_resources(era);
        let owner = self.resource_owners.of(uri);
        servers.sort_by_key(|(server, live)| {
            let listed = owner.as_deref() == Some(server.config.name.as_str());
            let matched = live.resources.as_ref().is_some_and(|t| t.matches(uri));
            (!listed, !matched)
        });
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_matches_the_template_it_was_made_from() {
        let templates = [
            ResourceTemplate::new("file:///{+path}", "files"),
            ResourceTemplate::new("mem://notes/{id}?v={v}", "notes"),
        ];
        let globs = template_globs(&templates);
        assert!(globs.is_match("file:///srv/a/b.txt"));
        assert!(globs.is_match("mem://notes/7?v=2"));
        assert!(!globs.is_match("mem://other/7"));
        assert!(!globs.is_match("https://example.com"));
    }
}
