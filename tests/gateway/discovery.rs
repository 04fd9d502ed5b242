//! DNS discovery through the gateway: a real DNS server on loopback whose records the test
//! changes, two fake providers on 127.0.0.1 and 127.0.0.2 at the same port, and the gateway
//! finding, using and dropping them without a restart.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::fake_dns::FakeDns;
use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::{TestGateway, client};

const ADMIN: &str = "admin-secret";
const HOST: &str = "llm.test.";
const FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const SECOND: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Two fakes at one port, on 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to loopback).
async fn two_fakes() -> (FakeOpenAi, FakeOpenAi) {
    for _ in 0..20 {
        let first = FakeOpenAi::start().await;
        let port = first.addr.port();
        if let Ok(second) = FakeOpenAi::start_on(SocketAddr::from((SECOND, port))).await {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

async fn gateway(dns: &FakeDns, port: u16) -> TestGateway {
    TestGateway::start(&format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  local:
    kind: openai
    base_url: "http://llm.test:{port}/v1"
    api_key: {key}
    discovery: {{ dns: "llm.test:{port}", refresh: 100ms, nameserver: "{ns}" }}
models:
  - {{ name: chat, targets: [ {{ provider: local, model: ok }} ], retry: {{ attempts: 1 }} }}
"#,
        key = fake_openai::KEY,
        ns = dns.addr,
    ))
    .await
}

/// The provider's instances as `/admin/upstreams` reports them: (url, origin).
async fn instances(gateway: &TestGateway) -> Vec<(String, String)> {
    let report: Value = client()
        .get(gateway.url("/admin/upstreams"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    report["providers"]["local"]["instances"]
        .as_array()
        .expect("instances listed")
        .iter()
        .map(|i| {
            (
                i["url"].as_str().unwrap().to_owned(),
                i["origin"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// Polls `/admin/upstreams` until the instances are `addresses` (in order), all from DNS.
async fn wait_for(gateway: &TestGateway, port: u16, addresses: &[Ipv4Addr]) {
    let expected: Vec<(String, String)> = addresses
        .iter()
        .map(|a| (format!("http://{a}:{port}/v1"), "dns".to_owned()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = instances(gateway).await;
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instances never became {expected:?}; last seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn chat(gateway: &TestGateway) -> (u16, Value) {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn instances_follow_the_records_without_a_restart() {
    let (first, second) = two_fakes().await;
    let port = first.addr.port();
    let dns = FakeDns::start("test.").await;
    dns.set_a(HOST, &[FIRST]).await;
    let gateway = gateway(&dns, port).await;

    wait_for(&gateway, port, &[FIRST]).await;
    let (status, body) = chat(&gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(first.received().len(), 1);
    assert_eq!(
        first.received()[0].headers["host"],
        format!("127.0.0.1:{port}"),
        "sent to the discovered address"
    );

    dns.set_a(HOST, &[FIRST, SECOND]).await;
    wait_for(&gateway, port, &[FIRST, SECOND]).await;

    dns.set_a(HOST, &[SECOND]).await;
    wait_for(&gateway, port, &[SECOND]).await;
    let (status, body) = chat(&gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        first.received().len(),
        1,
        "the removed address gets nothing"
    );
    assert_eq!(second.received().len(), 1, "the added address serves");
    assert_eq!(second.received()[0].path, "/v1/chat/completions");
    assert_eq!(
        second.received()[0].headers["authorization"],
        format!("Bearer {}", fake_openai::KEY),
        "a discovered instance keeps the provider's key"
    );

    dns.set_a(HOST, &[]).await;
    wait_for(&gateway, port, &[]).await;
    let (status, body) = chat(&gateway).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("local/ok") && message.contains("DNS discovery found no address"),
        "{message}"
    );

    dns.set_a(HOST, &[FIRST]).await;
    wait_for(&gateway, port, &[FIRST]).await;
    assert_eq!(chat(&gateway).await.0, 200, "back without a restart");
    assert_eq!(first.received().len(), 2);
}

#[tokio::test]
async fn a_failing_resolver_keeps_the_last_answer() {
    let (first, second) = two_fakes().await;
    let port = first.addr.port();
    let dns = FakeDns::start("test.").await;
    dns.set_a(HOST, &[FIRST, SECOND]).await;
    let gateway = gateway(&dns, port).await;
    wait_for(&gateway, port, &[FIRST, SECOND]).await;

    dns.fail(true);
    dns.set_a(HOST, &[]).await;
    // Several refreshes answered SERVFAIL (each refresh asks A and AAAA, with a retry).
    let seen = dns.queries();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dns.queries() < seen + 8 {
        assert!(Instant::now() < deadline, "the gateway stopped asking DNS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        instances(&gateway).await,
        [FIRST, SECOND].map(|a| (format!("http://{a}:{port}/v1"), "dns".to_owned())),
        "SERVFAIL is no reason to drop instances"
    );
    assert_eq!(chat(&gateway).await.0, 200);
    assert_eq!(first.received().len() + second.received().len(), 1);

    dns.fail(false);
    wait_for(&gateway, port, &[]).await;
}
