use super::*;
use std::time::Duration;

fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::parse(text, &|name| {
        (name == "TEAM_KEY").then(|| "sk-team".to_owned())
    })
    .map_err(|e| match e {
        LoadError::Invalid(errors) => errors.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    })
}

#[test]
fn an_empty_file_is_refused_and_a_byte_order_mark_ignored() {
    for empty in ["", "# only a comment\n", "\u{feff}"] {
        let errors = parse(empty).unwrap_err();
        assert!(
            errors[0].contains("the configuration is empty"),
            "{errors:?}"
        );
    }
    let config = parse("\u{feff}providers:\n  demo: { kind: mock }\n").unwrap();
    assert_eq!(config.server.listen, default_listen());
    assert!(config.keys.is_empty());
}

/// One run reports a problem in each section and entry, each at the field it is about,
/// inside a provider of any kind too.
#[test]
fn type_and_field_errors_are_all_reported_with_their_paths() {
    let errors = parse(
        r#"
server: { listn: 127.0.0.1:1 }
providers:
  a: { kind: mock, latency: { first_tokn: 1ms } }
  b: { kind: openai, timeout: soon }
  c: { kind: opnai }
  d: { kind: mock }
models:
  - { name: x, targets: [ { provider: d, model: m, weight: heavy } ] }
  - { name: y, targets: [ { provider: d, model: m } ], stratgy: weighted }
keys:
  - { name: k, key: sk-k, limits: { requests_per_minute: many } }
extra: 1
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "extra",
            "server.listn",
            "providers.a.latency.first_tokn",
            "providers.b.timeout",
            "providers.c.kind",
            "models[0].targets[0].weight",
            "models[1].stratgy",
            "keys[0].limits.requests_per_minute",
        ],
        "{errors:#?}"
    );
}

/// A secret written where a mapping belongs is named by its path only: `check` output lands
/// in CI logs.
#[test]
fn a_misplaced_secret_is_not_repeated_in_the_error() {
    let errors = parse(
        r#"
providers:
  a: { kind: openai, api_key: sk-fine, headers: "Authorization: Bearer sk-HEADER-SECRET" }
keys: [ sk-KEY-SECRET ]
"#,
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "providers.a.headers: invalid type: a string, expected a map",
            "keys[0]: invalid type: a string, expected a mapping",
        ]
    );
}

#[test]
fn full_shape_loads() {
    let config = parse(
            r#"
server: { listen: 127.0.0.1:9000, max_body: 1MiB, admin_key: "${ADMIN:-}" }
providers:
  demo: { kind: mock, latency: { first_token: 10ms, per_chunk: 1ms } }
  local: { kind: openai, base_url: "http://127.0.0.1:11434/v1", headers: { x-team: a }, timeout: 30s }
models:
  - name: fast
    targets: [ { provider: demo, model: m, weight: 2 }, { provider: local, model: llama } ]
keys:
  - { name: team-a, key: "${TEAM_KEY}", models: ["fast", "local/*"] }
"#,
        )
        .unwrap();
    assert_eq!(config.server.max_body, Size(1024 * 1024));
    assert_eq!(config.keys[0].key.as_ref().unwrap().expose(), "sk-team");
    assert_eq!(config.models[0].targets[1].weight, 1);
}

#[test]
fn gemini_provider_loads_with_the_common_fields() {
    let config = parse(
            "providers:\n  g: { kind: gemini, api_key: \"${TEAM_KEY}\", base_url: \"https://gemini.test\", headers: { x-goog-user-project: p }, timeout: 20s }\n",
        )
        .unwrap();
    let ProviderConfig::Gemini(http) = &config.providers["g"] else {
        panic!("gemini config")
    };
    assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
    assert_eq!(http.base_url.as_deref(), Some("https://gemini.test"));
    assert_eq!(http.timeout.unwrap().0, Duration::from_secs(20));
    let errors = parse("providers:\n  g: { kind: gemini, base_url: \"ftp://x\", project: p }\n")
        .unwrap_err();
    assert!(errors[0].starts_with("providers.g"), "{errors:?}");
    let errors = parse("providers:\n  g: { kind: gemini, base_url: \"ftp://x\" }\n").unwrap_err();
    assert_eq!(
        errors,
        ["providers.g.base_url: must be an http:// or https:// URL"]
    );
}

#[test]
fn anthropic_provider_loads() {
    let config = parse(
            r#"
providers:
  claude: { kind: anthropic, api_key: "${TEAM_KEY}", headers: { anthropic-beta: files-api-2025-04-14 }, timeout: 2m }
  proxy: { kind: anthropic, base_url: "http://127.0.0.1:9000" }
models:
  - name: smart
    targets: [ { provider: claude, model: claude-sonnet-4-5 } ]
"#,
        )
        .unwrap();
    let ProviderConfig::Anthropic(http) = &config.providers["claude"] else {
        panic!("anthropic kind")
    };
    assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
    assert_eq!(http.timeout.unwrap().0, Duration::from_secs(120));
    assert!(matches!(
        config.providers["proxy"],
        ProviderConfig::Anthropic(_)
    ));
    let errors = parse("providers:\n  c: { kind: anthropic, base_url: \"ftp://x\", region: us }\n")
        .unwrap_err();
    assert!(errors[0].starts_with("providers.c"), "{errors:?}");
    assert!(errors[0].contains("region"), "{errors:?}");
    let errors =
        parse("providers:\n  c: { kind: anthropic, base_url: \"ftp://x\" }\n").unwrap_err();
    assert_eq!(
        errors,
        ["providers.c.base_url: must be an http:// or https:// URL"]
    );
}

#[test]
fn unknown_field_names_its_path() {
    let errors = parse("providers:\n  demo: { kind: mock, latncy: {} }\n").unwrap_err();
    assert!(errors[0].starts_with("providers.demo"), "{errors:?}");
    assert!(errors[0].contains("latncy"), "{errors:?}");
    let errors = parse("sever: {}\n").unwrap_err();
    assert!(errors[0].contains("sever"), "{errors:?}");
}

#[test]
fn wrong_type_and_bad_units_name_their_path() {
    let errors = parse("server: { max_body: lots }\n").unwrap_err();
    assert!(
        errors[0].starts_with("server.max_body: invalid size"),
        "{errors:?}"
    );
    let errors =
        parse("models:\n  - name: a\n    targets: [ { provider: p, model: m, weight: heavy } ]\n")
            .unwrap_err();
    assert!(
        errors[0].starts_with("models[0].targets[0].weight"),
        "{errors:?}"
    );
}

#[test]
fn responses_api_defaults_to_openai_itself_and_belongs_to_openai_alone() {
    let config = parse(
        "providers:\n  a: { kind: openai }\n  b: { kind: openai, base_url: \"https://api.openai.com/v1\" }\n  \
         c: { kind: openai, base_url: \"http://vllm:8000/v1\" }\n  \
         d: { kind: openai, base_url: \"http://vllm:8000/v1\", responses_api: true }\n  \
         e: { kind: openai, responses_api: false }\n",
    )
    .unwrap();
    let serves = |name: &str| match &config.providers[name] {
        ProviderConfig::Openai(openai) => openai.serves_responses(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ["a", "b", "c", "d", "e"].map(serves),
        [true, true, false, true, false]
    );
    let errors = parse("providers:\n  x: { kind: gemini, responses_api: true }\n").unwrap_err();
    assert_eq!(
        errors,
        ["providers.x.responses_api: only `kind: openai` takes it"]
    );
    let errors =
        parse("providers:\n  x: { kind: openai, responses_api: yes please }\n").unwrap_err();
    assert_eq!(errors, ["providers.x.responses_api: must be true or false"]);
}

#[test]
fn both_stages_report_in_one_run_with_what_was_meant() {
    // A misspelled field, and a target naming a provider that does not exist.
    let errors = parse(
        "providers:\n  demo: { kind: mock, latncy: {} }\nmodels:\n  - { name: a, targets: [ { provider: dmeo, model: m } ] }\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("providers.demo.latncy: unknown field `latncy`"),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with(r#"(did you mean "latency"?)"#),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        r#"models[0].targets[0].provider: unknown provider "dmeo" (did you mean "demo"?)"#
    );
    let errors = parse("providers:\n  x: { kind: opnai }\nmodles: []\n").unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with(r#"(did you mean "models"?)"#)),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with(r#"(did you mean "openai"?)"#)),
        "{errors:?}"
    );
}

#[test]
fn what_could_not_be_read_is_not_reported_again() {
    // A provider and a model that cannot be read still exist for the checks that name them, and
    // the models after a broken one keep their own index.
    let errors = parse(
        "providers:\n  up: { kind: openai, timeout: soon }\nmodels:\n  - { name: a, targets: [ { provider: up, model: m } ], retry: many }\n  \
         - { name: b, targets: [ { provider: up, model: m } ], fallbacks: [a] }\n  - { name: c, targets: [] }\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("providers.up.timeout"), "{errors:?}");
    assert!(errors[1].starts_with("models[0].retry"), "{errors:?}");
    assert_eq!(
        errors[2],
        "models[2].targets: a model needs at least one target"
    );
}

#[test]
fn a_registration_rule_that_is_neither_network_nor_glob_names_its_entry() {
    let errors = parse(
        "providers:\n  x: { kind: openai, registration: { allow: [10.0.0.0/8, 10.0.0.0/33] } }\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("providers.x.registration.allow[1]: \"10.0.0.0/33\""),
        "{errors:?}"
    );
}

#[test]
fn unknown_kind_is_rejected() {
    let errors = parse("providers:\n  x: { kind: opnai }\n").unwrap_err();
    assert!(errors[0].starts_with("providers.x"), "{errors:?}");
    assert!(errors[0].contains("opnai"), "{errors:?}");
}

#[test]
fn missing_variables_are_all_reported() {
    let errors = parse("providers:\n  a: { kind: openai, api_key: \"${NOPE_A}\" }\n  b: { kind: openai, api_key: \"${NOPE_B}\" }\n").unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("providers.a.api_key: environment variable NOPE_A"));
}

#[test]
fn cohere_provider_loads_with_the_common_fields() {
    let config = parse(
            "providers:\n  co: { kind: cohere, api_key: \"${TEAM_KEY}\", base_url: \"https://api.cohere.com\", headers: { x-client-name: sb }, timeout: 20s }\n",
        )
        .unwrap();
    let ProviderConfig::Cohere(http) = &config.providers["co"] else {
        panic!("cohere kind")
    };
    assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
    assert_eq!(http.timeout, Some(Span(Duration::from_secs(20))));
    let errors =
        parse("providers:\n  co: { kind: cohere, base_url: \"ftp://x\", model: m }\n").unwrap_err();
    assert!(errors[0].starts_with("providers.co"), "{errors:?}");
    let errors = parse("providers:\n  co: { kind: cohere, base_url: \"ftp://x\" }\n").unwrap_err();
    assert_eq!(
        errors,
        ["providers.co.base_url: must be an http:// or https:// URL"]
    );
}

#[test]
fn mistral_provider_loads_with_the_common_fields() {
    let config =
        parse("providers:\n  mi: { kind: mistral, api_key: \"${TEAM_KEY}\", timeout: 5s }\n")
            .unwrap();
    let ProviderConfig::Mistral(http) = &config.providers["mi"] else {
        panic!("mistral kind")
    };
    assert_eq!(http.base_url, None);
    assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
    let errors = parse("providers:\n  mi: { kind: mistral, timeout: 0s }\n").unwrap_err();
    assert_eq!(errors, ["providers.mi.timeout: must be longer than 0s"]);
}

#[test]
fn azure_provider_loads_with_its_api_version() {
    let config = parse(
            "providers:\n  az: { kind: azure, base_url: \"https://r.openai.azure.com\", api_key: \"${TEAM_KEY}\", headers: { x-ms-client-request-id: a } }\n  az2: { kind: azure, base_url: \"https://r.openai.azure.com\", api_version: 2025-01-01-preview, timeout: 30s }\n",
        )
        .unwrap();
    let ProviderConfig::Azure(az) = &config.providers["az"] else {
        panic!("azure kind")
    };
    assert_eq!(az.api_version, "2024-10-21");
    assert_eq!(az.http().api_key.unwrap().expose(), "sk-team");
    let ProviderConfig::Azure(az2) = &config.providers["az2"] else {
        panic!("azure kind")
    };
    assert_eq!(az2.api_version, "2025-01-01-preview");
    let errors = parse("providers:\n  az: { kind: azure, api_key: k }\n").unwrap_err();
    assert!(
        errors[0].starts_with("providers.az") && errors[0].contains("base_url"),
        "{errors:?}"
    );
    let errors = parse("providers:\n  az: { kind: azure, base_url: \"https://r\", api_version: \"a b\", deployment: x }\n").unwrap_err();
    assert!(errors[0].contains("deployment"), "{errors:?}");
    let errors =
        parse("providers:\n  az: { kind: azure, base_url: \"https://r\", api_version: \"a&b\" }\n")
            .unwrap_err();
    assert_eq!(
        errors,
        ["providers.az.api_version: must be a version such as 2024-10-21"]
    );
}

#[test]
fn invalid_yaml_is_an_error_not_a_panic() {
    assert!(parse("models: [ {").is_err());
}

fn bedrock(config: &Config) -> &BedrockConfig {
    match &config.providers["aws"] {
        ProviderConfig::Bedrock(bedrock) => bedrock,
        other => panic!("not bedrock: {other:?}"),
    }
}

#[test]
fn bedrock_loads_from_the_file() {
    let config = parse(
        r#"
providers:
  aws:
    kind: bedrock
    region: eu-west-1
    access_key_id: AKIAEXAMPLEKEY123456
    secret_access_key: "${TEAM_KEY}"
    session_token: token
    base_url: http://127.0.0.1:9999
    headers: { x-team: a }
    timeout: 30s
"#,
    )
    .unwrap();
    let aws = bedrock(&config);
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(aws.secret_access_key.as_ref().unwrap().expose(), "sk-team");
    assert_eq!(aws.session_token.as_ref().unwrap().expose(), "token");
    assert_eq!(aws.http().timeout, Some(Span(Duration::from_secs(30))));
    assert!(parse("providers: { aws: { kind: bedrock, api_key: x } }").is_err());
}

#[test]
fn bedrock_reads_missing_credentials_and_region_from_the_aws_environment() {
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
        "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
        "AWS_DEFAULT_REGION" => Some("us-west-2".to_owned()),
        _ => None,
    };
    let config = Config::parse("providers: { aws: { kind: bedrock } }", &env).unwrap();
    let aws = bedrock(&config);
    assert_eq!(aws.region.as_deref(), Some("us-west-2"));
    assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKIAENV");
    assert_eq!(aws.session_token.as_ref().unwrap().expose(), "env-token");
    // Keys from the file are never paired with the environment's session token.
    let config = Config::parse(
            "providers: { aws: { kind: bedrock, region: eu-west-1, access_key_id: AKIAFILE, secret_access_key: file } }",
            &env,
        )
        .unwrap();
    let aws = bedrock(&config);
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKIAFILE");
    assert!(aws.session_token.is_none());
}

#[test]
fn bedrock_without_region_or_keys_names_each_missing_field() {
    let errors = parse("providers: { aws: { kind: bedrock, region: US East } }").unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("providers.aws.region: "),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("providers.aws.access_key_id: required"));
    assert!(errors[2].contains("AWS_SECRET_ACCESS_KEY"));
    let errors = parse("providers: { aws: { kind: bedrock } }").unwrap_err();
    assert!(errors[0].contains("AWS_REGION"), "{errors:?}");
}

#[test]
fn the_audit_log_goes_to_a_file_or_to_stdout_and_bad_bounds_are_named() {
    let base = "providers:\n  demo: { kind: mock }\n";
    let stdout = parse(&format!("{base}audit: stdout\n")).unwrap();
    assert!(stdout.audit.as_ref().unwrap().to_stdout());
    let file = parse(&format!(
        "{base}audit: {{ path: /tmp/a.jsonl, max_size: 1MiB }}\n"
    ))
    .unwrap();
    let file = file.audit.unwrap();
    assert_eq!((file.max_size.0, file.keep), (1024 * 1024, 5));
    let errors = parse(&format!(
        "{base}audit: {{ path: '', max_size: 10, keep: 0, rotate: yes }}\n"
    ))
    .unwrap_err();
    assert!(errors[0].starts_with("audit.rotate"), "{errors:?}");
    let errors = parse(&format!(
        "{base}audit: {{ path: '', max_size: 10, keep: 0 }}\n"
    ))
    .unwrap_err();
    for path in ["audit.path", "audit.max_size", "audit.keep"] {
        assert!(
            errors.iter().any(|e| e.starts_with(path)),
            "{path}: {errors:?}"
        );
    }
}

#[test]
fn auth_jwt_is_checked_field_by_field() {
    let errors = parse(
        "providers: { demo: { kind: mock } }\nauth:\n  jwt:\n    issuer: ''\n    jwks_url: ftp://keys\n    audiences: []\n    claims: { name: '' }\n    leeway: 1h\n    refresh: 1s\n",
    )
    .unwrap_err();
    for expected in [
        "auth.jwt.issuer: must name the token issuer",
        "auth.jwt.jwks_url: must be an http:// or https:// URL",
        "auth.jwt.audiences: must name at least one audience",
        "auth.jwt.claims.name: must name a claim",
        "auth.jwt.leeway: must be at most 5m",
        "auth.jwt.refresh: must be at least 10s",
    ] {
        assert!(
            errors.iter().any(|e| e == expected),
            "{expected} in {errors:?}"
        );
    }
    let errors =
        parse("auth:\n  jwt: { issuer: x, jwks_url: http://k, audiences: [a], clams: {} }\n")
            .unwrap_err();
    assert!(errors[0].starts_with("auth.jwt"), "{errors:?}");
    let config =
        parse("auth:\n  jwt: { issuer: https://i, jwks_url: https://i/jwks, audiences: [gw] }\n")
            .unwrap();
    let jwt = config.auth.jwt.unwrap();
    assert_eq!(jwt.claims.name, "sub");
    assert_eq!(jwt.leeway.0, Duration::from_secs(60));
}

#[test]
fn shared_state_settings_out_of_bounds_are_named_by_path() {
    let errors = parse(
        r#"
providers: { m: { kind: mock } }
models: [ { name: m, targets: [ { provider: m, model: x } ] } ]
state:
  redis:
    url: http://127.0.0.1:6379
    timeout: 0s
    lease: 500ms
    max_queued_settlements: 0
    settlement_linger: 11s
"#,
    )
    .unwrap_err();
    for path in [
        "state.redis.url",
        "state.redis.timeout",
        "state.redis.lease",
        "state.redis.max_queued_settlements",
        "state.redis.settlement_linger",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(path)),
            "{path}: {errors:?}"
        );
    }
    let config = parse(
        "providers: { m: { kind: mock } }\nmodels: [ { name: m, targets: [ { provider: m, model: x } ] } ]\nstate: { redis: { url: redis://127.0.0.1:6379 } }\n",
    )
    .unwrap();
    let redis = config.state.redis.unwrap();
    assert_eq!(redis.settlement_linger.0, Duration::from_millis(3));

    let shared = "providers: { m: { kind: mock } }\nmodels: [ { name: m, targets: [ { provider: m, model: x } ] } ]\n";
    for url in [
        "redis+unix:///run/redis/redis.sock",
        "unix:///run/redis.sock?db=2",
    ] {
        parse(&format!(
            "{shared}state: {{ redis: {{ url: \"{url}\" }} }}\n"
        ))
        .unwrap();
    }
    let errors = parse(&format!(
        "{shared}state: {{ redis: {{ url: [redis://10.0.0.1:6379, \"redis+unix:///r.sock\"] }} }}\n"
    ))
    .unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("state.redis.url[1]")),
        "{errors:?}"
    );
}
