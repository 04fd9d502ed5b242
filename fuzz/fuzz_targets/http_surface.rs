//! The HTTP surface in-process: MCP JSON-RPC messages of both eras at `/mcp`, the context REST
//! API's path segments, query and precondition headers, the model and admin endpoints, with
//! arbitrary methods, paths, headers and bodies. Every answer must be well-formed: a status, and
//! for an error a JSON body in OpenAI's shape or JSON-RPC's.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower_service::Service;

#[derive(Arbitrary, Debug)]
enum Route {
    Mcp,
    Context(String, String),
    Chat,
    Embeddings,
    AdminTools,
    AdminUpstreams,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

#[derive(Arbitrary, Debug)]
struct Call {
    method: Method,
    route: Route,
    query: Option<String>,
    key: u8,
    headers: Vec<(u8, String)>,
    body: Vec<u8>,
}

const HEADERS: [&str; 8] = [
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "if-match",
    "if-none-match",
    "accept",
    "content-type",
];

const KEYS: [&str; 3] = ["sk-fuzz", "sk-admin", "sk-wrong"];

struct Served {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

static SERVED: LazyLock<Served> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("switchboard-fuzz-{}", std::process::id()));
    let yaml = format!(
        r#"
server: {{ admin_key: sk-admin, max_body: 64KiB }}
providers:
  demo: {{ kind: mock, latency: {{ first_token: 0ms, per_chunk: 0ms }} }}
keys:
  - {{ name: fuzz, key: sk-fuzz, limits: {{ tokens_per_day: 100000000, context_documents: 50, context_bytes: 64KiB }} }}
state: {{ data_dir: {:?} }}
"#,
        dir.display().to_string()
    );
    let config = switchboard::Config::parse(&yaml, &|_| None).expect("the fuzz config is valid");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let router = runtime.block_on(async {
        switchboard::Gateway::new(&config)
            .expect("the gateway builds")
            .into_router()
    });
    Served { runtime, router }
});

fn request(call: &Call) -> Option<http::Request<Body>> {
    let path = match &call.route {
        Route::Mcp => "/mcp".to_owned(),
        Route::Context(namespace, key) => format!("/v1/context/{namespace}/{key}"),
        Route::Chat => "/v1/chat/completions".to_owned(),
        Route::Embeddings => "/v1/embeddings".to_owned(),
        Route::AdminTools => "/admin/tools".to_owned(),
        Route::AdminUpstreams => "/admin/upstreams".to_owned(),
        Route::Raw(path) => path.clone(),
    };
    let uri = match &call.query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let method = match call.method {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
    };
    let mut builder = http::Request::builder().method(method).uri(uri).header(
        "authorization",
        format!("Bearer {}", KEYS[usize::from(call.key) % KEYS.len()]),
    );
    for (name, value) in call.headers.iter().take(8) {
        builder = builder.header(HEADERS[usize::from(*name) % HEADERS.len()], value.as_str());
    }
    builder.body(Body::from(call.body.clone())).ok()
}

fuzz_target!(|call: Call| {
    let Some(request) = request(&call) else {
        return;
    };
    let served = &*SERVED;
    served.runtime.block_on(async {
        let response = served
            .router
            .clone()
            .call(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let streamed = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        // A session's event stream never ends by itself.
        if streamed {
            return;
        }
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        if status.is_client_error() || status.is_server_error() {
            let json: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{status}: {body:?}"));
            assert!(
                json.get("error").is_some() || json.get("jsonrpc").is_some(),
                "{status}: {json}"
            );
        }
    });
});
