//! The coding agents as users run them, pointed at the gateway: Claude Code in print mode on
//! `/v1/messages` and the Codex CLI's `exec` on `/v1/responses`, each reading a file with a tool
//! of its own through a scripted upstream.
//!
//! The agents come from npm (`scripts/agents.sh`, pinned versions) into `.agents/`, or from
//! `$SWITCHBOARD_AGENTS` (a `node_modules/.bin` directory).

use std::path::PathBuf;
use std::time::Duration;

use crate::common::fake_anthropic::{self, FakeAnthropic};
use crate::common::{TestGateway, temp_dir};

pub fn agent(name: &str) -> PathBuf {
    let bin = std::env::var_os("SWITCHBOARD_AGENTS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/.agents/node_modules/.bin"
            ))
        },
        PathBuf::from,
    );
    let path = bin.join(name);
    assert!(
        path.exists(),
        "{} not found: run ./scripts/test.sh, which installs the coding agents from npm",
        path.display()
    );
    path
}

/// Runs an agent to its end (two minutes at most) in `dir`, with only the environment given
/// plus `PATH`; returns its standard output.
async fn run(
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    env: Vec<(&str, String)>,
) -> String {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the agent finishes within two minutes")
        .expect("the agent starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "agent failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn claude_code_reads_a_file_with_its_own_tool_through_the_gateway() {
    let fake = FakeAnthropic::start().await;
    let gateway = TestGateway::start(&format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
models:
  - {{ name: claude-sonnet-4-5, targets: [ {{ provider: anthropic, model: agent }} ] }}
keys:
  - {{ name: coder, key: sk-coder }}
"#,
        fake.base_url(),
        fake_anthropic::KEY
    ))
    .await;
    let dir = temp_dir();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the-word-is-switchboard-7731\n").unwrap();
    let prompt = format!(
        "Read the file {} and tell me what it says",
        secret.display()
    );
    let base_url = gateway.url("");
    let env = vec![
        ("HOME", home.display().to_string()),
        ("ANTHROPIC_BASE_URL", base_url),
        ("ANTHROPIC_API_KEY", "sk-coder".to_owned()),
        ("ANTHROPIC_MODEL", "claude-sonnet-4-5".to_owned()),
        ("ANTHROPIC_SMALL_FAST_MODEL", "claude-sonnet-4-5".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
        ("DISABLE_AUTOUPDATER", "1".to_owned()),
    ];
    let args = vec![
        "-p".to_owned(),
        prompt,
        "--output-format".to_owned(),
        "text".to_owned(),
    ];
    let stdout = run(agent("claude"), args, dir.clone(), env).await;
    assert!(
        stdout.contains("the-word-is-switchboard-7731"),
        "Claude Code answered with the file's words: {stdout}"
    );
    // The call went out and its result came back through the gateway.
    let received = fake.received();
    let result = received.iter().find(|r| {
        r.raw.contains("toolu_01ReadFile") && r.raw.contains("the-word-is-switchboard-7731")
    });
    assert!(
        result.is_some(),
        "the Read tool's result reached the upstream"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn codex_reads_a_file_with_its_own_shell_through_the_gateway() {
    let fake = FakeAnthropic::start().await;
    let gateway = TestGateway::start(&format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
models:
  - {{ name: gateway-agent, targets: [ {{ provider: anthropic, model: agent }} ] }}
keys:
  - {{ name: coder, key: sk-coder }}
"#,
        fake.base_url(),
        fake_anthropic::KEY
    ))
    .await;
    let dir = temp_dir();
    let home = dir.join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the-word-is-switchboard-4417\n").unwrap();
    let provider = format!(
        r#"model_providers.switchboard={{name="Switchboard", base_url="{}", env_key="SWITCHBOARD_KEY", wire_api="responses"}}"#,
        gateway.url("/v1")
    );
    let args = vec![
        "exec".to_owned(),
        "--skip-git-repo-check".to_owned(),
        "--dangerously-bypass-approvals-and-sandbox".to_owned(),
        "-c".to_owned(),
        provider,
        "-c".to_owned(),
        "model_provider=\"switchboard\"".to_owned(),
        "-m".to_owned(),
        "gateway-agent".to_owned(),
        format!(
            "Read the file {} and tell me what it says",
            secret.display()
        ),
    ];
    let env = vec![
        ("HOME", dir.display().to_string()),
        ("CODEX_HOME", home.display().to_string()),
        ("SWITCHBOARD_KEY", "sk-coder".to_owned()),
    ];
    let stdout = run(agent("codex"), args, dir.clone(), env).await;
    assert!(
        stdout.contains("the-word-is-switchboard-4417"),
        "Codex answered with the file's words: {stdout}"
    );
    let received = fake.received();
    assert!(
        received.iter().any(|r| r.raw.contains("toolu_01ReadFile")
            && r.raw.contains("the-word-is-switchboard-4417")),
        "the shell's output reached the upstream: {:?}",
        received.iter().map(|r| &r.raw).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(dir);
}
