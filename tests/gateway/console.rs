//! The web console in a real browser: Debian's Chromium, headless, driven by Selenium from
//! `tests/python/test_console_browser.py` against a gateway and a failing fake upstream. The
//! screenshots of every page land in `target/console-screenshots/` (docs/console.md shows them).

use crate::common::TestGateway;
use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::python::run_script_env;

const ADMIN: &str = "sk-console-admin-7f3a";
const DEV: &str = "sk-console-dev-91c2";
const OTHER: &str = "sk-console-other-44d8";

#[tokio::test]
async fn the_console_in_chromium_shows_live_usage_breakers_subscriptions_and_streams() {
    let flaky = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  demo: {{ kind: mock, latency: {{ per_chunk: 5ms }} }}
  flaky: {{ kind: openai, base_url: "{}", api_key: "{KEY}", breaker: {{ failures: 3, window: 1m, cooldown: 10m }} }}
models:
  - {{ name: fast, targets: [ {{ provider: demo, model: mock-fast }} ] }}
  - {{ name: premium, targets: [ {{ provider: demo, model: mock-premium }} ] }}
  - {{ name: broken, targets: [ {{ provider: flaky, model: error-500 }} ], retry: {{ attempts: 1 }} }}
keys:
  - {{ name: dev, key: {DEV}, models: ["fast"], tools: ["context_*"], limits: {{ requests_per_minute: 600, tokens_per_day: 1000000 }} }}
  - {{ name: other, key: {OTHER} }}
catalog:
  models:
    fast: {{ description: Quick answers from the built-in model, owner: platform, version: "1", docs: "https://docs.example/fast" }}
    premium: {{ description: The careful model, owner: research }}
"#,
        flaky.base_url()
    ))
    .await;
    let screenshots = format!("{}/target/console-screenshots", env!("CARGO_MANIFEST_DIR"));
    run_script_env(
        "test_console_browser.py",
        &[
            ("CONSOLE_URL", gateway.url("/ui")),
            ("GATEWAY_URL", gateway.url("")),
            ("ADMIN_KEY", ADMIN.to_owned()),
            ("CLIENT_KEY", DEV.to_owned()),
            ("OTHER_KEY", OTHER.to_owned()),
            ("PREMIUM_MODEL", "premium".to_owned()),
            ("BREAKER_MODEL", "broken".to_owned()),
            ("BREAKER_PROVIDER", "flaky".to_owned()),
            ("SCREENSHOTS", screenshots),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_disabled_console_answers_404_everywhere_and_the_catalog_api_stays() {
    let gateway = TestGateway::start(&format!(
        r#"
server: {{ admin_key: {ADMIN}, console: {{ enabled: false }} }}
providers:
  demo: {{ kind: mock }}
models:
  - {{ name: fast, targets: [ {{ provider: demo, model: mock-fast }} ] }}
keys:
  - {{ name: dev, key: {DEV} }}
"#
    ))
    .await;
    let client = crate::common::client();
    for path in ["/ui", "/ui/login", "/ui/assets/app.js", "/ui/admin"] {
        let response = client.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let login = client
        .post(gateway.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 404);
    assert!(login.headers().get("set-cookie").is_none());
    let catalog = client
        .get(gateway.url("/v1/catalog"))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(catalog.status(), 200);
}
