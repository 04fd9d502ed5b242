//! `mcp.tools` entries and `mcp.openapi` operations at run time: an HTTP call built from a tool
//! call's arguments, and the service's answer turned into a tool result (JSON as
//! `structuredContent` plus text).
//!
//! Every failure the caller can fix or should know of (bad arguments, a service down or answering
//! non-2xx) is an `isError` result, not a protocol error, so the caller reads why.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value};

use super::openapi_call::Placement;
use super::schema::Schema;
use crate::config::openapi::{Operation, Place};
use crate::config::{HttpToolConfig, OpenApiConfig, placeholders};

/// Everything but RFC 3986's unreserved characters is encoded: a value can never add a path
/// segment, a query parameter or a fragment.
pub(super) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Largest service answer read; the rest would not fit a model's context anyway.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Header values shorter than this are not redacted from answers: they are not secrets, and
/// replacing them would garble ordinary text.
const MIN_SECRET: usize = 8;

/// One HTTP endpoint served as a tool.
pub struct HttpTool {
    pub tool: Tool,
    input: Schema,
    output: Option<Schema>,
    method: reqwest::Method,
    url: String,
    placeholders: Vec<String>,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    secrets: Vec<String>,
    /// Where the arguments the URL does not take go.
    shape: Shape,
    /// What its entry says of it for the catalog (an OpenAPI operation's is empty: the
    /// `catalog:` section describes those).
    pub meta: crate::config::EntryMeta,
}

enum Shape {
    /// `mcp.tools`: the query of a GET, the JSON body of any other method.
    Template,
    /// An OpenAPI operation: each where its parameter or request body says.
    Operation(Placement),
}

impl HttpTool {
    /// Builds a tool from its validated config entry.
    pub fn new(config: &HttpToolConfig) -> Result<HttpTool, String> {
        let at = |what: &str| format!("mcp.tools {:?}: {what}", config.name);
        let input = Schema::compile(&config.input_schema).map_err(|e| at(&e))?;
        let output = match &config.output_schema {
            Some(schema) => Some(Schema::compile(schema).map_err(|e| at(&e))?),
            None => None,
        };
        let method = reqwest::Method::from_bytes(config.http.method.as_bytes())
            .map_err(|e| at(&e.to_string()))?;
        let headers = header_map(&config.http.headers).map_err(|e| at(&e))?;
        let placeholders = placeholders(&config.http.url)
            .ok_or_else(|| at("unbalanced braces in http.url"))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(HttpTool {
            tool: describe(config),
            input,
            output,
            method,
            url: config.http.url.clone(),
            placeholders,
            headers,
            timeout: config.http.timeout.0,
            secrets: secrets_of(&config.http.headers),
            shape: Shape::Template,
            meta: config.meta(),
        })
    }

    /// Whether it is an operation of an `mcp.openapi` service.
    pub fn is_operation(&self) -> bool {
        matches!(self.shape, Shape::Operation(_))
    }

    /// Builds the tool of one operation of a loaded `mcp.openapi` entry.
    pub fn of_operation(
        service: &OpenApiConfig,
        operation: &Operation,
    ) -> Result<HttpTool, String> {
        let name = format!("{}{}", service.tool_prefix(), operation.id);
        let at = |what: &str| format!("mcp.openapi {:?}: {what}", service.name);
        let input = Schema::compile(&operation.input_schema).map_err(|e| at(&e))?;
        let method = reqwest::Method::from_bytes(operation.method.as_bytes())
            .map_err(|e| at(&e.to_string()))?;
        let schema = match &operation.input_schema {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let mut tool = Tool::new_with_raw(
            name,
            operation.description.clone().map(Into::into),
            Arc::new(schema),
        );
        if let Some(title) = &operation.title {
            tool = tool.with_title(title.clone());
        }
        // What HTTP says of the method is all the gateway knows of what the call does.
        let safe = matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
        tool = tool.with_annotations(ToolAnnotations::from_raw(
            None,
            Some(safe),
            Some(method == reqwest::Method::DELETE),
            Some(safe || matches!(method, reqwest::Method::PUT | reqwest::Method::DELETE)),
            Some(true),
        ));
        let url = format!("{}{}", service.base().trim_end_matches('/'), operation.path);
        Ok(HttpTool {
            tool,
            input,
            output: None,
            method,
            url,
            placeholders: operation
                .params
                .iter()
                .filter(|p| p.place == Place::Path)
                .map(|p| p.name.clone())
                .collect(),
            headers: header_map(&service.headers).map_err(|e| at(&e))?,
            timeout: service.timeout.0,
            secrets: secrets_of(&service.headers),
            shape: Shape::Operation(Placement::new(operation)),
            meta: crate::config::EntryMeta::default(),
        })
    }

    /// Runs one call: validate, send, and report the answer.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        mut arguments: JsonObject,
    ) -> CallToolResult {
        self.input.fill_defaults(&mut arguments);
        if let Err(problems) = self.input.check(&arguments) {
            return failure(format!(
                "Invalid arguments for {}:\n{problems}",
                self.tool.name
            ));
        }
        let request = match self.request(client, arguments) {
            Ok(request) => request,
            Err(message) => return failure(message),
        };
        match request.send().await {
            Err(error) => failure(self.scrub(self.unreachable(&error))),
            Ok(response) => self.answer(response).await,
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            format!(
                "The service behind {} did not answer within {:?}.",
                self.tool.name, self.timeout
            )
        } else {
            format!(
                "The service behind {} could not be reached: {error}",
                self.tool.name
            )
        }
    }

    /// The HTTP request: placeholders filled, the other arguments as query parameters of a GET
    /// or as the JSON body of any other method.
    fn request(
        &self,
        client: &reqwest::Client,
        mut arguments: JsonObject,
    ) -> Result<reqwest::RequestBuilder, String> {
        let mut url = self.url.clone();
        for name in &self.placeholders {
            let value = arguments.remove(name).ok_or_else(|| {
                format!(
                    "Invalid arguments for {}:\nargument '{name}' is required to build the URL",
                    self.tool.name
                )
            })?;
            let text = scalar_text(&value);
            // Encoded or not, `.` and `..` are path navigation to a URL parser: `/weather/..`
            // would reach the service's `/`.
            let marker = format!("{{{name}}}");
            let in_path = match (url.find('?'), url.find(&marker)) {
                (Some(query), Some(at)) => at < query,
                _ => true,
            };
            if in_path && matches!(text.as_str(), "." | "..") {
                return Err(format!(
                    "Invalid arguments for {}:\nargument '{name}' may not be {text:?}: it is a segment of the URL's path",
                    self.tool.name
                ));
            }
            url = url.replace(
                &format!("{{{name}}}"),
                &utf8_percent_encode(&text, COMPONENT).to_string(),
            );
        }
        let mut url = reqwest::Url::parse(&url)
            .map_err(|e| format!("The URL of {} is invalid: {e}", self.tool.name))?;
        let mut builder;
        if let Shape::Operation(placement) = &self.shape {
            builder = placement.request(client, self.method.clone(), url, arguments)?;
        } else if self.method == reqwest::Method::GET {
            if !arguments.is_empty() {
                let mut query = url.query_pairs_mut();
                for (name, value) in &arguments {
                    query.append_pair(name, &scalar_text(value));
                }
            }
            builder = client.get(url);
        } else {
            builder = client.request(self.method.clone(), url);
            if !(arguments.is_empty() && self.method == reqwest::Method::DELETE) {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(Value::Object(arguments).to_string());
            }
        }
        // The service sees the tool call's span as its parent.
        let mut trace = reqwest::header::HeaderMap::new();
        crate::telemetry::traces::inject(&mut trace);
        Ok(builder
            .headers(self.headers.clone())
            .headers(trace)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout))
    }

    async fn answer(&self, response: reqwest::Response) -> CallToolResult {
        let status = response.status();
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let (body, whole) = match read_capped(response).await {
            Ok(read) => read,
            Err(error) => return failure(self.scrub(self.unreachable(&error))),
        };
        let text = String::from_utf8_lossy(&body);
        if status.is_success() && !whole {
            // Cut short, JSON would turn into text and text would pass for the whole answer.
            return failure(format!(
                "The service behind {} answered more than {} MiB, which is not passed on.",
                self.tool.name,
                MAX_ANSWER / (1024 * 1024)
            ));
        }
        if !status.is_success() {
            return failure(self.scrub(format!(
                "The service behind {} answered HTTP {}: {}",
                self.tool.name,
                status.as_u16(),
                text.trim()
            )));
        }
        let parsed = if json || self.output.is_some() {
            serde_json::from_slice::<Value>(&body).ok()
        } else {
            None
        };
        match parsed {
            Some(value) => self.structured(value),
            None => {
                CallToolResult::success(vec![ContentBlock::text(self.scrub(text.into_owned()))])
            }
        }
    }

    /// A JSON answer: an object is the structured content itself; anything else is wrapped as
    /// `{"result": ...}`, because MCP's structured content is always an object.
    fn structured(&self, value: Value) -> CallToolResult {
        let mut structured = match value {
            Value::Object(map) => Value::Object(map),
            other => Value::Object(Map::from_iter([("result".to_owned(), other)])),
        };
        // A service may echo the tool's headers anywhere in its answer.
        self.scrub_value(&mut structured);
        if let Some(output) = &self.output
            && let Err(problems) = output.check_value(&structured, "field")
        {
            return failure(format!(
                "The service behind {} answered outside its output_schema:\n{problems}",
                self.tool.name
            ));
        }
        let text = structured.to_string();
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(structured);
        result
    }

    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "<redacted>");
            }
        }
        text
    }

    /// [`scrub`](Self::scrub) on every string of a JSON answer, keys included.
    fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.scrub(std::mem::take(text)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                let scrubbed: Map<String, Value> = std::mem::take(map)
                    .into_iter()
                    .map(|(key, mut v)| {
                        self.scrub_value(&mut v);
                        (self.scrub(key), v)
                    })
                    .collect();
                *map = scrubbed;
            }
            _ => {}
        }
    }
}

/// The tool as clients see it in `tools/list`.
fn describe(config: &HttpToolConfig) -> Tool {
    let input = match &config.input_schema {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut tool = Tool::new_with_raw(
        config.name.clone(),
        config.description.clone().map(Into::into),
        Arc::new(input),
    );
    if let Some(Value::Object(output)) = &config.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(output.clone()));
    }
    if let Some(title) = &config.title {
        tool = tool.with_title(title.clone());
    }
    let a = config.annotations;
    if a.read_only.is_some()
        || a.destructive.is_some()
        || a.idempotent.is_some()
        || a.open_world.is_some()
    {
        tool = tool.with_annotations(ToolAnnotations::from_raw(
            None,
            a.read_only,
            a.destructive,
            a.idempotent,
            a.open_world,
        ));
    }
    tool
}

fn header_map(
    headers: &std::collections::BTreeMap<String, crate::config::Secret>,
) -> Result<reqwest::header::HeaderMap, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let mut value =
            reqwest::header::HeaderValue::from_str(value.expose()).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The header values long enough to be secrets, redacted from whatever the service answers.
fn secrets_of(headers: &std::collections::BTreeMap<String, crate::config::Secret>) -> Vec<String> {
    headers
        .values()
        .map(|v| v.expose().to_owned())
        .filter(|v| v.len() >= MIN_SECRET)
        .collect()
}

/// An argument as it goes into a URL: strings as they are, everything else as JSON.
pub(super) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The answer's first [`MAX_ANSWER`] bytes, and whether that was all of it.
async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// The longest failure message: one that quotes a huge argument or answer would fill a
/// client's context (and exceed the Python SDK's 1 MiB event limit) with no more sense.
const MAX_FAILURE: usize = 4096;

/// An `isError` result with one text block, cut at [`MAX_FAILURE`] bytes.
pub fn failure(mut message: String) -> CallToolResult {
    if message.len() > MAX_FAILURE {
        let end = message.floor_char_boundary(MAX_FAILURE);
        let cut = message.len() - end;
        message.truncate(end);
        message.push_str(&format!("… ({cut} more bytes not shown)"));
    }
    CallToolResult::error(vec![ContentBlock::text(message)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn tool(yaml_tool: &str) -> HttpTool {
        let config =
            Config::parse(&format!("mcp:\n  tools:\n    - {yaml_tool}\n"), &|_| None).unwrap();
        HttpTool::new(&config.mcp.tools[0]).unwrap()
    }

    fn arguments(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn long_failures_are_cut_on_a_character_boundary() {
        let result = failure("é".repeat(MAX_FAILURE));
        let text = serde_json::to_value(&result).unwrap()["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.len() < MAX_FAILURE + 64, "{}", text.len());
        assert!(text.ends_with("more bytes not shown)"), "{text}");
        let short = failure("short".to_owned());
        assert_eq!(
            serde_json::to_value(&short).unwrap()["content"][0]["text"],
            "short"
        );
    }

    #[test]
    fn placeholders_are_percent_encoded_and_the_rest_becomes_query_or_body() {
        crate::upstream::install_tls_provider();
        let client = reqwest::Client::new();
        let get = tool(
            "{ name: w, input_schema: { type: object, properties: { city: { type: string }, days: { type: integer } } }, http: { method: GET, url: 'http://h/w/{city}' } }",
        );
        let args = arguments(serde_json::json!({"city": "a/b?c=d#e é", "days": 3}));
        let request = get.request(&client, args).unwrap().build().unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://h/w/a%2Fb%3Fc%3Dd%23e%20%C3%A9?days=3"
        );
        assert!(request.body().is_none());
        let post = tool(
            "{ name: p, input_schema: { type: object, properties: { id: { type: integer }, note: { type: string } } }, http: { url: 'http://h/o/{id}', headers: { x-key: secret-value-1 } } }",
        );
        let args = arguments(serde_json::json!({"id": 7, "note": "hi"}));
        let request = post.request(&client, args).unwrap().build().unwrap();
        assert_eq!(request.url().as_str(), "http://h/o/7");
        assert_eq!(request.method(), reqwest::Method::POST);
        assert_eq!(request.headers()["x-key"], "secret-value-1");
        let body = request.body().unwrap().as_bytes().unwrap();
        assert_eq!(body, br#"{"note":"hi"}"#);
        assert_eq!(post.scrub("echo secret-value-1".into()), "echo <redacted>");
    }

    #[test]
    fn non_object_answers_are_wrapped_and_checked_against_the_output_schema() {
        let checked = tool(
            "{ name: c, input_schema: { type: object }, output_schema: { type: object, properties: { t: { type: number } }, required: [t] }, http: { url: 'http://h/' } }",
        );
        let ok = checked.structured(serde_json::json!({"t": 1.5}));
        assert_eq!(ok.is_error, Some(false));
        let wrong = checked.structured(serde_json::json!([1]));
        assert_eq!(wrong.is_error, Some(true));
        let plain = tool("{ name: d, input_schema: { type: object }, http: { url: 'http://h/' } }");
        let wrapped = plain.structured(serde_json::json!([1, 2]));
        assert_eq!(
            wrapped.structured_content,
            Some(serde_json::json!({"result": [1, 2]}))
        );
    }
}
