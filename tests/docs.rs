//! Every config block of the docs passes `switchboard check`, so the docs cannot drift from the
//! code. A ```yaml block is a config: whole, or a fragment of top-level sections merged over a
//! minimal base (the mock provider and a `demo` model). Other YAML is marked ```yaml-snippet.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::{Mapping, Value};

const BASE: &str = "providers:\n  demo: { kind: mock }\nmodels:\n  - name: demo\n    targets: [{ provider: demo, model: demo }]\n";

/// The documents whose blocks are checked.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The ```yaml blocks of a Markdown text, with the line each starts on.
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    enum At {
        Prose,
        Yaml(usize, String),
        OtherBlock,
    }
    let mut blocks = Vec::new();
    let mut at = At::Prose;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        at = match (at, fence) {
            (At::Prose, true) if line.trim_start().trim_start_matches('`').trim() == "yaml" => {
                At::Yaml(i + 1, String::new())
            }
            (At::Prose, true) => At::OtherBlock,
            (At::Yaml(start, body), true) => {
                blocks.push((start, body));
                At::Prose
            }
            (At::Yaml(start, mut body), false) => {
                body.push_str(line);
                body.push('\n');
                At::Yaml(start, body)
            }
            (At::OtherBlock, true) => At::Prose,
            (other, false) => other,
        };
    }
    blocks
}

/// Top-level maps merged key by key; anything else in the fragment replaces the base's.
fn merge(base: &mut Mapping, fragment: Mapping) {
    for (key, value) in fragment {
        match (base.get_mut(&key), value) {
            (Some(Value::Mapping(into)), Value::Mapping(from)) => {
                for (k, v) in from {
                    into.insert(k, v);
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The `${VAR}` names a block uses.
fn variables(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        rest = &rest[at + 2..];
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        names.insert(rest[..end].to_owned());
    }
    names
}

#[test]
fn every_config_block_in_the_docs_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::temp_dir().join(format!("switchboard-docs-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    // The `mcp.openapi` examples name `petstore.yaml` beside the config, as a reader's would be.
    std::fs::copy(
        root.join("tests/gateway/fixtures/openapi/petstore.yaml"),
        work.join("petstore.yaml"),
    )
    .expect("the vendored Petstore spec");
    let mut checked = 0;
    let mut failures = Vec::new();
    for document in documents(root) {
        let text = std::fs::read_to_string(&document).expect("readable doc");
        let name = document.strip_prefix(root).expect("in the repo").display();
        for (line, block) in yaml_blocks(&text) {
            let fragment: Mapping = match serde_yaml_ng::from_str(&block) {
                Ok(fragment) => fragment,
                Err(e) => {
                    failures.push(format!("{name}:{line}: not a YAML mapping: {e}"));
                    continue;
                }
            };
            let mut config: Mapping = serde_yaml_ng::from_str(BASE).expect("base parses");
            merge(&mut config, fragment);
            let file = work.join(format!("block-{checked}.yaml"));
            let yaml = serde_yaml_ng::to_string(&config).expect("serializable");
            std::fs::write(&file, yaml).expect("writable temp file");
            let mut check = Command::new(env!("CARGO_BIN_EXE_switchboard"));
            check
                .current_dir(&work)
                .arg("check")
                .arg("--config")
                .arg(&file);
            for var in variables(&block) {
                let value = if var.contains("REDIS") {
                    "redis://127.0.0.1:9".to_owned()
                } else if var.ends_with("_URL") {
                    "http://127.0.0.1:9".to_owned()
                } else {
                    // Distinct values: two keys from two variables are two keys.
                    format!("placeholder-{var}-0123456789")
                };
                check.env(&var, value);
            }
            let output = check.output().expect("switchboard runs");
            if !output.status.success() {
                failures.push(format!(
                    "{name}:{line}: {}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} config blocks found");
}

#[test]
fn blocks_are_found_and_other_fences_skipped() {
    let text = "a\n```yaml\ncache: {}\n```\n```yaml-snippet\nx: [\n```\n```yaml\nkeys: []\n```\n";
    let blocks = yaml_blocks(text);
    assert_eq!(
        blocks,
        [(2, "cache: {}\n".to_owned()), (8, "keys: []\n".to_owned())]
    );
}

/// The image builds the way the README does (`--locked`, release), runs as a non-root user on a
/// distroless base, and serves the shipped config with its state in the volume it declares.
#[test]
fn the_dockerfile_builds_and_runs_as_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let steps: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let build = steps
        .iter()
        .find(|l| l.starts_with("RUN cargo"))
        .expect("a cargo build step");
    assert!(build.contains("cargo build --release --locked"), "{build}");
    assert!(readme.contains("--locked") && readme.contains("cargo run --release"));
    let last_from = steps
        .iter()
        .rev()
        .find(|l| l.starts_with("FROM "))
        .expect("stages");
    assert!(
        last_from.contains("distroless") && last_from.contains("nonroot"),
        "{last_from}"
    );
    assert!(steps.contains(&"USER nonroot"));
    assert!(steps.contains(&"COPY --from=build /src/config.yaml /etc/switchboard/config.yaml"));
    assert!(steps.contains(&"ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard"));
    let entry = steps
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT"))
        .expect("an entrypoint");
    assert!(entry.contains("/etc/switchboard/config.yaml") && entry.contains("0.0.0.0:8080"));
    // The shipped config takes the data directory from that variable.
    let shipped = std::fs::read_to_string(root.join("config.yaml")).expect("config.yaml");
    assert!(shipped.contains("${SWITCHBOARD_DATA_DIR:-./data}"));
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check", "--config"])
        .arg(root.join("config.yaml"))
        .env("SWITCHBOARD_DATA_DIR", "/var/lib/switchboard")
        .output()
        .expect("switchboard runs");
    assert!(output.status.success(), "{output:?}");
}

/// `docker-compose.yaml` runs three replicas of `deploy/replicas.yaml` over one Redis behind
/// nginx; no container runtime is here, so its parts are checked: the config passes `check`
/// with the compose file's `REDIS_URL`, and nginx balances over the three without stickiness.
#[test]
fn the_compose_file_runs_three_replicas_over_one_redis_behind_nginx() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = std::fs::read_to_string(root.join("docker-compose.yaml")).expect("compose");
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&compose).expect("YAML");
    let services = compose["services"].as_mapping().expect("services");
    let replicas: Vec<&str> = services
        .keys()
        .filter_map(|k| k.as_str())
        .filter(|name| name.starts_with("switchboard-"))
        .collect();
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    let redis_url = compose["services"]["switchboard-1"]["environment"]["REDIS_URL"]
        .as_str()
        .expect("REDIS_URL");
    assert!(redis_url.starts_with("redis://redis:"), "{redis_url}");
    let nginx = std::fs::read_to_string(root.join("deploy/nginx.conf")).expect("nginx.conf");
    for name in &replicas {
        assert!(nginx.contains(&format!("server {name}:8080;")), "{name}");
    }
    assert!(!nginx.contains("ip_hash") && !nginx.contains("sticky"));
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check", "--config"])
        .arg(root.join("deploy/replicas.yaml"))
        .env("REDIS_URL", redis_url)
        .output()
        .expect("switchboard runs");
    assert!(output.status.success(), "{output:?}");
}
