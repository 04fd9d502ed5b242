//! A session's resources: the context store's documents (`context://{namespace}/{key}`) and the
//! upstream servers', listed, read and subscribed to within the caller's globs.

use rmcp::model::{
    CacheScope, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ResultType,
};
// Subscriptions: 2026-07-28 replaces them with `subscriptions/listen`; 2025 clients use them.
#[allow(deprecated)]
use rmcp::model::{SubscribeRequestParams, UnsubscribeRequestParams};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::servers::original_uri;
use super::session::{
    PAGE, Session, TEMPLATES_TTL_MS, fresh_hints, lock, modern, not_found, parse_uri, session_id,
    uri,
};
use crate::auth::Caller;
use crate::context::ContextError;

impl Session {
    pub(super) async fn list_resources_checked(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let cursor = request.and_then(|r| r.cursor);
        let after = match &cursor {
            None => None,
            Some(text) => Some(parse_uri(text).ok_or_else(|| {
                ErrorData::invalid_params(format!("invalid cursor {text:?}"), None)
            })?),
        };
        let after = after.as_ref().map(|(ns, key)| (ns.as_str(), key.as_str()));
        let (entries, more) = self
            .shared
            .context
            .list(None, after, PAGE, |ns| caller.may_use_context(ns))
            .await
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let next = more
            .then(|| entries.last().map(|e| uri(&e.namespace, &e.key)))
            .flatten();
        // The upstream servers' resources come whole on the first page; the store's pages go on.
        let mut resources = match cursor {
            None => {
                let holder = self.holder(&caller, &context);
                let allowed = |uri: &str| caller.may_use_resource(uri);
                let servers = &self.shared.servers;
                servers.resources((&holder, &context.peer), allowed).await
            }
            Some(_) => Vec::new(),
        };
        resources.extend(entries.iter().map(|entry| {
            Resource::new(
                uri(&entry.namespace, &entry.key),
                format!("{}/{}", entry.namespace, entry.key),
            )
            .with_mime_type("application/json")
            .with_size(entry.size as u64)
        }));
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        (result.ttl_ms, result.cache_scope) = fresh_hints(&context, &caller);
        Ok(result)
    }

    pub(super) async fn templates_checked(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let template = ResourceTemplate::new("context://{namespace}/{key}", "context")
            .with_title("Shared context document")
            .with_description("A JSON document of the context store, by namespace and key.")
            .with_mime_type("application/json");
        let holder = self.holder(&caller, &context);
        let allowed = |uri: &str| caller.may_use_resource(uri);
        let servers = &self.shared.servers;
        let upstream = servers
            .resource_templates((&holder, &context.peer), allowed)
            .await;
        let only_ours = upstream.is_empty();
        let templates = std::iter::once(template).chain(upstream).collect();
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        if modern(&context) {
            // The gateway's template is the same for every key, for the life of the process;
            // an upstream server's may change at any moment.
            (result.ttl_ms, result.cache_scope) = match only_ours {
                true => (Some(TEMPLATES_TTL_MS), Some(CacheScope::Public)),
                false => fresh_hints(&context, &caller),
            };
        }
        Ok(result)
    }

    pub(super) async fn unsubscribe_checked(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&context)?;
        if !request.uri.starts_with("context://") {
            let holder = self.holder(&caller, &context);
            let servers = &self.shared.servers;
            let ended = servers.subscribe((&holder, &context.peer), &request.uri, false);
            return ended.await.unwrap_or(Ok(()));
        }
        lock(&self.subscribed).remove(&request.uri);
        if let (Some(sessions), Some(id)) = (&self.shared.sessions, session_id(&context.extensions))
        {
            sessions
                .unsubscribe(&id, &request.uri)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        }
        Ok(())
    }

    pub(super) async fn read_resource_checked(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        if !request.uri.starts_with("context://") {
            return self.read_upstream(&caller, request, context).await;
        }
        let (namespace, key) = self.document_of(&caller, &request.uri)?;
        match self.shared.context.get(&namespace, &key).await {
            Ok(document) => {
                let contents = ResourceContents::TextResourceContents {
                    uri: request.uri,
                    mime_type: Some("application/json".to_owned()),
                    text: document.json.to_string(),
                    meta: None,
                };
                let mut result = ReadResourceResult::new(vec![contents]);
                (result.ttl_ms, result.cache_scope) = fresh_hints(&context, &caller);
                Ok(result.into())
            }
            Err(ContextError::NotFound { .. }) => Err(not_found(&request.uri)),
            Err(unavailable @ ContextError::Unavailable(_)) => {
                Err(ErrorData::internal_error(unavailable.to_string(), None))
            }
            Err(other) => Err(ErrorData::invalid_params(other.to_string(), None)),
        }
    }

    /// A resource of an upstream server, if the caller's `resources:` globs allow its URI.
    async fn read_upstream(
        &self,
        caller: &Caller,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        if !caller.may_use_resource(&original_uri(&uri)) {
            return Err(not_found(&uri));
        }
        let holder = self.holder(caller, &context);
        let servers = &self.shared.servers;
        let read = servers
            .read_resource((&holder, &context.peer), request)
            .await;
        let mut read = read.unwrap_or_else(|| Err(not_found(&uri)))?;
        // As for a tool's result: 2026-07-28 clients require `resultType`.
        if let ReadResourceResponse::Complete(result) = &mut read {
            result.result_type.get_or_insert(ResultType::COMPLETE);
        }
        Ok(read)
    }

    pub(super) async fn subscribe_checked(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&context)?;
        if !request.uri.starts_with("context://") {
            if !caller.may_use_resource(&original_uri(&request.uri)) {
                return Err(not_found(&request.uri));
            }
            let holder = self.holder(&caller, &context);
            let servers = &self.shared.servers;
            let done = servers.subscribe((&holder, &context.peer), &request.uri, true);
            return done.await.unwrap_or_else(|| Err(not_found(&request.uri)));
        }
        let (namespace, key) = self.document_of(&caller, &request.uri)?;
        let uri = uri(&namespace, &key);
        lock(&self.subscribed).insert(uri.clone());
        // The session's event stream may be held by another replica: it reads them from Redis.
        if let (Some(sessions), Some(id)) = (&self.shared.sessions, session_id(&context.extensions))
        {
            sessions
                .subscribe(&id, &uri)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        }
        Ok(())
    }
}
