//! Test harness: start a gateway from YAML on 127.0.0.1, and fake upstreams to put behind it.

pub mod fake;
pub mod fake_anthropic;
pub mod fake_azure;
pub mod fake_bedrock;
pub mod fake_cohere;
pub mod fake_dns;
pub mod fake_gemini;
pub mod fake_mistral;
pub mod fake_openai;
pub mod nginx;
pub mod openai_answer;
pub mod openai_responses;
pub mod process;
pub mod redis;
pub mod replicas;

use std::net::SocketAddr;

use switchboard::{Config, Gateway};
use tokio::sync::oneshot;

/// A gateway serving on a loopback port until dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// `state.data_dir`, removed when the gateway is dropped.
    pub data_dir: std::path::PathBuf,
    /// The config file of a gateway started with [`TestGateway::start_reloadable`].
    pub config_file: Option<std::path::PathBuf>,
}

impl TestGateway {
    /// Starts a gateway from config text; `{up}` in the text is not special, callers format it in.
    pub async fn start(yaml: &str) -> TestGateway {
        let data_dir = temp_dir();
        let yaml = with_state(yaml, &data_dir);
        let config =
            Config::parse(&yaml, &|name| std::env::var(name).ok()).expect("test config is valid");
        let gateway = Gateway::new(&config).expect("gateway builds");
        TestGateway::serve(gateway, data_dir, None).await
    }

    /// Starts a gateway from a config file holding `yaml`, which it reloads on `SIGHUP`, on a
    /// change to the file and on `POST /admin/reload`; [`write_config`](Self::write_config)
    /// changes the file.
    pub async fn start_reloadable(yaml: &str) -> TestGateway {
        let data_dir = temp_dir();
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        let text = with_state(yaml, &data_dir);
        std::fs::write(&file, &text).unwrap();
        let (config, text) = Config::load_with_text(&file).expect("test config is valid");
        let gateway = Gateway::reloadable(&config, file.clone(), &text).expect("gateway builds");
        TestGateway::serve(gateway, data_dir, Some(file)).await
    }

    /// Replaces the config file's text with `yaml` (and the same `state` as before).
    pub fn write_config(&self, yaml: &str) {
        let file = self.config_file.as_ref().expect("a reloadable gateway");
        std::fs::write(file, with_state(yaml, &self.data_dir)).unwrap();
    }

    async fn serve(
        gateway: Gateway,
        data_dir: std::path::PathBuf,
        config_file: Option<std::path::PathBuf>,
    ) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        TestGateway {
            addr,
            stop: Some(stop),
            serving: Some(serving),
            data_dir,
            config_file,
        }
    }

    /// Shuts down and waits until the gateway has let go of everything, its files included.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .expect("gateway task")
                .expect("gateway served");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(dir) = self.config_file.as_ref().and_then(|f| f.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `yaml` with `state.data_dir` set to `data_dir` unless it says where its state is.
fn with_state(yaml: &str, data_dir: &std::path::Path) -> String {
    if yaml.contains("\nstate:") || yaml.starts_with("state:") {
        yaml.to_owned()
    } else {
        format!(
            "{yaml}\nstate: {{ data_dir: {:?} }}\n",
            data_dir.display().to_string()
        )
    }
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("switchboard-test-{}-{n}", std::process::id()))
}

/// Serves a fake upstream on a loopback port until the test ends; returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Serves a fake upstream over TLS with the given PEM certificate chain and PKCS#8 key.
pub async fn serve_tls(app: axum::Router, cert_pem: &[u8], key_pem: &[u8]) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem).expect("key PEM");
    // ring, as the gateway uses it (see `upstream::install_tls_provider`).
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key match");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = tcp.local_addr().expect("local addr");
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// TCP connections that finished a TLS handshake; a failed handshake is dropped, not served.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The row of `key` in the usage report at `url` (an `/admin/usage`), read with `admin`.
pub async fn key_usage(url: String, admin: &str, key: &str) -> serde_json::Value {
    let response = client().get(url).bearer_auth(admin).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

/// The venv's Python with the client packages (`SWITCHBOARD_PYTHON`, else `.venv`).
pub fn python() -> std::path::PathBuf {
    std::env::var_os("SWITCHBOARD_PYTHON").map_or_else(
        || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python")),
        std::path::PathBuf::from,
    )
}

/// Polls until `check` holds; panics with `what` after 10 s.
pub async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The Prometheus text a gateway's `/metrics` (at `url`) answers.
pub async fn metrics(url: String) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// An HTTP client for tests.
pub fn client() -> reqwest::Client {
    // reqwest is built without a crypto provider of its own; the gateway installs ring when it
    // builds its clients, but a test may need a client before any gateway exists.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// The text a stream's chunks spell out (the first choice's).
pub fn text_of(chunks: &[serde_json::Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The finish reasons a stream's chunks carry, in order (the first choice's).
pub fn finish_reasons(chunks: &[serde_json::Value]) -> Vec<&str> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect()
}
