//! The context store's REST surface: ETags, `If-Match` (412 on a stale write), TTLs, 404 after a
//! delete, per-key namespace globs (403), 401, size bounds (413), bad input that changes nothing,
//! and documents that survive a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, client};

const CONFIG: &str = r#"
mcp: { max_document: 64 }
keys:
  - { name: all, key: sk-ctx-all }
  - { name: team, key: sk-ctx-team, context: ["team-*", "shared"] }
"#;

fn doc(gateway: &TestGateway, path: &str) -> String {
    gateway.url(&format!("/v1/context/{path}"))
}

async fn put(
    gateway: &TestGateway,
    key: &str,
    path: &str,
    body: &str,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .put(doc(gateway, path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

async fn get(gateway: &TestGateway, key: &str, path: &str) -> reqwest::Response {
    client()
        .get(doc(gateway, path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn put_get_if_match_and_delete() {
    let gateway = TestGateway::start(CONFIG).await;
    let created = put(
        &gateway,
        "sk-ctx-all",
        "team-a/plan",
        r#"{"step": 1}"#,
        None,
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let first = etag(&created);
    let body: Value = created.json().await.unwrap();
    assert_eq!(format!("\"{}\"", body["version"]), first);

    let read = get(&gateway, "sk-ctx-all", "team-a/plan").await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(etag(&read), first);
    assert_eq!(read.json::<Value>().await.unwrap(), json!({"step": 1}));

    let updated = put(
        &gateway,
        "sk-ctx-all",
        "team-a/plan",
        r#"{"step": 2}"#,
        Some(&first),
    )
    .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let second = etag(&updated);
    assert_ne!(second, first);

    // A writer still holding the first version loses, and the document keeps the second.
    let stale = put(
        &gateway,
        "sk-ctx-all",
        "team-a/plan",
        r#"{"step": 9}"#,
        Some(&first),
    )
    .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(error_code(stale).await, "precondition_failed");
    let read = get(&gateway, "sk-ctx-all", "team-a/plan").await;
    assert_eq!(read.json::<Value>().await.unwrap(), json!({"step": 2}));

    let stale_delete = client()
        .delete(doc(&gateway, "team-a/plan"))
        .bearer_auth("sk-ctx-all")
        .header("if-match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), StatusCode::PRECONDITION_FAILED);
    let deleted = client()
        .delete(doc(&gateway, "team-a/plan"))
        .bearer_auth("sk-ctx-all")
        .header("if-match", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = get(&gateway, "sk-ctx-all", "team-a/plan").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(gone).await, "not_found");
    let again = client()
        .delete(doc(&gateway, "team-a/plan"))
        .bearer_auth("sk-ctx-all")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Create-only writes: If-None-Match: * refuses to replace.
    let create_only = |body: &'static str| {
        client()
            .put(doc(&gateway, "team-a/once"))
            .bearer_auth("sk-ctx-all")
            .header("if-none-match", "*")
            .body(body)
            .send()
    };
    assert_eq!(
        create_only("1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        create_only("2").await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
}

#[tokio::test]
async fn keys_are_held_to_their_namespaces() {
    let gateway = TestGateway::start(CONFIG).await;
    let allowed = put(&gateway, "sk-ctx-team", "team-b/x", "true", None).await;
    assert_eq!(allowed.status(), StatusCode::CREATED);
    put(&gateway, "sk-ctx-all", "finance/budget", "100", None).await;
    for response in [
        get(&gateway, "sk-ctx-team", "finance/budget").await,
        put(&gateway, "sk-ctx-team", "finance/budget", "0", None).await,
        client()
            .delete(doc(&gateway, "finance/budget"))
            .bearer_auth("sk-ctx-team")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("finance")
        );
    }
    let read = get(&gateway, "sk-ctx-all", "finance/budget").await;
    assert_eq!(read.json::<Value>().await.unwrap(), json!(100));

    for key in [None, Some("sk-wrong")] {
        let mut request = client().get(doc(&gateway, "team-b/x"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(response).await, "invalid_api_key");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let gateway = TestGateway::start(CONFIG).await;
    let original = put(&gateway, "sk-ctx-all", "team-a/doc", r#"{"v": 1}"#, None).await;
    let tag = etag(&original);

    let too_big = format!(r#"{{"text": "{}"}}"#, "x".repeat(100));
    let response = put(&gateway, "sk-ctx-all", "team-a/doc", &too_big, None).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "document_too_large");

    let huge = "1".repeat(10_000);
    let response = put(&gateway, "sk-ctx-all", "team-a/doc", &huge, None).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let response = put(&gateway, "sk-ctx-all", "team-a/doc", "{not json", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = put(&gateway, "sk-ctx-all", "team-a/bad%20name", "1", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "key");

    // A TTL past the bound (it used to overflow the clock and drop the connection) is refused.
    for query in [
        "ttl=soon",
        "ttl=0s",
        "color=red",
        "ttl=3000000000000w",
        "ttl=31d",
    ] {
        let response = client()
            .put(doc(&gateway, &format!("team-a/doc?{query}")))
            .bearer_auth("sk-ctx-all")
            .body("2")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }

    let read = get(&gateway, "sk-ctx-all", "team-a/doc").await;
    assert_eq!(etag(&read), tag, "nothing was written");
    assert_eq!(read.json::<Value>().await.unwrap(), json!({"v": 1}));
}

#[tokio::test]
async fn a_document_with_a_ttl_disappears() {
    let gateway = TestGateway::start(CONFIG).await;
    let response = client()
        .put(doc(&gateway, "team-a/lease?ttl=300ms"))
        .bearer_auth("sk-ctx-all")
        .body(r#""held""#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at_ms"].as_u64().is_some());
    assert_eq!(
        get(&gateway, "sk-ctx-all", "team-a/lease").await.status(),
        StatusCode::OK
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = get(&gateway, "sk-ctx-all", "team-a/lease").await.status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn documents_survive_a_restart() {
    let data_dir = crate::common::temp_dir();
    let config = format!(
        "{CONFIG}\nstate: {{ data_dir: {:?} }}\n",
        data_dir.display().to_string()
    );
    let gateway = TestGateway::start(&config).await;
    let written = put(
        &gateway,
        "sk-ctx-all",
        "shared/roster",
        r#"["ann","bo"]"#,
        None,
    )
    .await;
    let tag = etag(&written);
    put(&gateway, "sk-ctx-all", "shared/gone", "1", None).await;
    client()
        .delete(doc(&gateway, "shared/gone"))
        .bearer_auth("sk-ctx-all")
        .send()
        .await
        .unwrap();
    gateway.stop().await;

    let gateway = TestGateway::start(&config).await;
    let read = get(&gateway, "sk-ctx-all", "shared/roster").await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(etag(&read), tag);
    assert_eq!(read.json::<Value>().await.unwrap(), json!(["ann", "bo"]));
    assert_eq!(
        get(&gateway, "sk-ctx-all", "shared/gone").await.status(),
        StatusCode::NOT_FOUND
    );
    // The version a writer read before the restart still guards its write.
    let updated = put(&gateway, "sk-ctx-all", "shared/roster", "[]", Some(&tag)).await;
    assert_eq!(updated.status(), StatusCode::OK);
    gateway.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Two gateways on one data directory would each overwrite the other's view. The second one,
/// even with no keys (so no usage files) and before any document is written, refuses to start
/// instead of failing every write later while it reports ready.
#[tokio::test]
async fn a_second_gateway_on_the_same_directory_refuses_to_start() {
    let data_dir = crate::common::temp_dir();
    let config = format!(
        "providers:\n  demo: {{ kind: mock }}\nstate: {{ data_dir: {:?} }}\n",
        data_dir.display().to_string()
    );
    let first = TestGateway::start(&config).await;
    let parsed = switchboard::Config::parse(&config, &|_| None).unwrap();
    let second = switchboard::Gateway::new(&parsed);
    let error = second
        .err()
        .expect("the second gateway is refused")
        .to_string();
    assert!(
        error.contains("in use by another running gateway"),
        "{error}"
    );
    first.stop().await;
    assert!(
        switchboard::Gateway::new(&parsed).is_ok(),
        "free again once the first is gone"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
