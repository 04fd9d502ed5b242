//! A relay with nothing but the gateway's HTTP stack: axum serving, hyper-util's pooled client
//! forwarding, the body streamed both ways. What it adds is the floor under Switchboard's own work.
//!
//! Usage: axum-floor LISTEN UPSTREAM [LISTEN UPSTREAM ...], e.g.
//! `axum-floor 127.0.0.1:18086 http://127.0.0.1:18081 127.0.0.1:18087 http://127.0.0.1:18082`

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, Body>,
    base: String,
}

async fn relay(State(up): State<Upstream>, mut request: Request) -> Response {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", up.base).parse::<Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    *request.uri_mut() = uri;
    match up.client.request(request).await {
        Ok(answer) => answer.map(Body::new),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() % 2 != 0 {
        eprintln!("usage: axum-floor LISTEN UPSTREAM [LISTEN UPSTREAM ...]");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let mut servers = Vec::new();
        for pair in args.chunks(2) {
            let upstream = Upstream {
                client: client.clone(),
                base: pair[1].trim_end_matches('/').to_owned(),
            };
            let app = Router::new().fallback(relay).with_state(upstream);
            let listener = tokio::net::TcpListener::bind(&pair[0])
                .await?
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            servers.push(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ));
        }
        for server in servers {
            server.await??;
        }
        Ok(())
    })
}
