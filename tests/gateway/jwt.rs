//! OAuth 2.1 bearer JWTs (`auth.jwt`): tokens signed in the test with RS256, ES256 and EdDSA
//! keys, checked against a local JWKS server; refused when expired, for another audience or
//! issuer, of an unknown key (until the JWKS rotates it in) or unsigned (`alg: none`); a valid
//! token's claims restrict its tools, each user has a quota of their own, static keys keep
//! working, and a 401 on `/mcp` points at the protected-resource metadata.

use std::sync::{Arc, Mutex};

use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::common::{TestGateway, client};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/fixtures/jwt");
const ISSUER: &str = "https://issuer.test";

/// A JWKS endpoint whose key set the test changes (a rotation).
struct Issuer {
    url: String,
    published: Arc<Mutex<Vec<Value>>>,
}

impl Issuer {
    async fn start(keys: &[&str]) -> Issuer {
        let published: Vec<Value> = keys.iter().map(|k| public(k)).collect();
        let published = Arc::new(Mutex::new(published));
        let serving = published.clone();
        let app = axum::Router::new().route(
            "/jwks",
            get(move || {
                let keys = serving.lock().unwrap().clone();
                async move { axum::Json(json!({ "keys": keys })) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer { url, published }
    }

    fn publish(&self, key: &str) {
        self.published.lock().unwrap().push(public(key));
    }
}

/// The public JWK of a fixture key, by its name in `public-jwks.json`.
fn public(name: &str) -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/public-jwks.json")).unwrap(),
    )
    .unwrap();
    all[name].clone()
}

/// A token signed with the fixture key `name` (its kid from the JWKS), with these claims.
fn token(name: &str, claims: Value) -> String {
    let jwk = public(name);
    let pem = std::fs::read(format!("{FIXTURES}/{name}.pem")).unwrap();
    let (algorithm, key) = match jwk["kty"].as_str().unwrap() {
        "RSA" => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap()),
        "EC" => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap()),
        _ => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem).unwrap()),
    };
    let mut header = Header::new(algorithm);
    header.kid = jwk["kid"].as_str().map(str::to_owned);
    encode(&header, &claims, &key).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims valid for ten minutes, for `sub`.
fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": "switchboard", "sub": sub, "exp": now() + 600, "iat": now()})
}

fn config(issuer: &Issuer) -> String {
    format!(
        r#"
providers: {{ demo: {{ kind: mock }} }}
models:
  - {{ name: m, targets: [ {{ provider: demo, model: x }} ] }}
keys:
  - {{ name: static, key: sk-static }}
auth:
  jwt:
    issuer: {ISSUER}
    jwks_url: {url}
    audiences: [switchboard]
    claims: {{ name: sub, tools: tools }}
    limits: {{ requests_per_minute: 3 }}
    scopes: [mcp]
"#,
        url = issuer.url
    )
}

async fn chat(gateway: &TestGateway, bearer: &str) -> (u16, Value) {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(bearer)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn jwts_of_the_issuer_are_callers_and_every_bad_token_is_refused() {
    let issuer = Issuer::start(&["rsa", "ec", "ed25519"]).await;
    let gateway = TestGateway::start(&config(&issuer)).await;

    for key in ["rsa", "ec", "ed25519"] {
        let (status, body) = chat(&gateway, &token(key, claims(&format!("user-{key}")))).await;
        assert_eq!(status, 200, "{key}: {body}");
    }
    let (status, _) = chat(&gateway, "sk-static").await;
    assert_eq!(status, 200, "a static key beside the issuer");

    let mut expired = claims("ana");
    expired["exp"] = json!(now() - 600);
    let mut elsewhere = claims("ana");
    elsewhere["aud"] = json!("another-service");
    let mut forged = claims("ana");
    forged["iss"] = json!("https://evil.test");
    let mut missing = claims("ana");
    missing.as_object_mut().unwrap().remove("sub");
    let unsigned = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"});
        format!("{}.{}.", b64(&header), b64(&claims("ana")))
    };
    let cases = [
        (token("rsa", expired), "expired"),
        (token("rsa", elsewhere), "not issued for this gateway"),
        (token("rsa", forged), "another issuer"),
        (token("rsa", missing), "lacks the claim \"sub\""),
        (unsigned, "not a JWT signed with"),
        (token("rsa-rotated", claims("ana")), "does not publish"),
    ];
    for (bad, why) in cases {
        let (status, body) = chat(&gateway, &bad).await;
        assert_eq!(status, 401, "{why}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{why}: {message}");
    }

    // The issuer rotates a new key in: a token naming it is taken once the set is fetched
    // again (at most every 10 seconds for an unknown key).
    issuer.publish("rsa-rotated");
    let rotated = token("rsa-rotated", claims("ana"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = chat(&gateway, &rotated).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the rotated key was never taken: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    gateway.stop().await;
}

#[tokio::test]
async fn each_user_has_a_quota_and_claims_restrict_tools() {
    let issuer = Issuer::start(&["rsa"]).await;
    let gateway = TestGateway::start(&config(&issuer)).await;

    // 3 requests a minute each: the fourth of one user is refused, another user goes on, and a
    // second token of the first user shares its quota.
    let first = token("rsa", claims("ana"));
    for _ in 0..3 {
        assert_eq!(chat(&gateway, &first).await.0, 200);
    }
    assert_eq!(chat(&gateway, &first).await.0, 429);
    let mut again = claims("ana");
    again["jti"] = json!("another-token");
    assert_eq!(chat(&gateway, &token("rsa", again)).await.0, 429);
    assert_eq!(chat(&gateway, &token("rsa", claims("bo"))).await.0, 200);

    // A token whose `tools` claim grants the context reads only lists those.
    let mut reader = claims("reader");
    reader["tools"] = json!(["context_get", "context_list"]);
    let reader = token("rsa", reader);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let opened = client()
        .post(gateway.url("/mcp"))
        .bearer_auth(&reader)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mcp = |body: Value| {
        client()
            .post(gateway.url("/mcp"))
            .bearer_auth(&reader)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
    };
    mcp(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    let listed = mcp(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await
        .unwrap();
    let text = listed.text().await.unwrap();
    let data = crate::common::sse_data(&text);
    let listed: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    let mut names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["context_get", "context_list"]);

    // Without a token, /mcp says where an OAuth client learns how to get one.
    let refused = client()
        .post(gateway.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = gateway.url("/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp\"")
    );
    let metadata: Value = client()
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], gateway.url("/mcp"));
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(metadata["scopes_supported"], json!(["mcp"]));
    gateway.stop().await;
}
