//! Gateway replicas as processes from one config, each with its own data directory, and the
//! requests tests spread over them.

use std::path::PathBuf;

use serde_json::Value;

use super::process::Process;
use super::{client, temp_dir};

/// Gateway processes started from one config, each with its own data directory.
pub struct Replicas {
    template: String,
    processes: Vec<Option<Process>>,
    configs: Vec<PathBuf>,
}

impl Replicas {
    /// `n` replicas of `yaml`, whose `{data_dir}` each replica fills with a directory of its own.
    pub fn start(yaml: &str, n: usize) -> Replicas {
        let mut replicas = Replicas {
            template: yaml.to_owned(),
            processes: Vec::new(),
            configs: Vec::new(),
        };
        for _ in 0..n {
            let dir = temp_dir();
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("config.yaml");
            let text = replicas.template.replace(
                "{data_dir}",
                &format!("{:?}", dir.join("data").display().to_string()),
            );
            std::fs::write(&config, text).unwrap();
            replicas.processes.push(Some(Process::start(&config, &[])));
            replicas.configs.push(config);
        }
        replicas
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        self.processes[i]
            .as_ref()
            .expect("replica running")
            .url(path)
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.processes.len())
            .filter(|&i| self.processes[i].is_some())
            .collect()
    }

    /// SIGKILL: no drain, no settlement flushed.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.processes[i].take() {
            process.kill();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.processes[i] = Some(Process::start(&self.configs[i], &[]));
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn post(url: String, key: &'static str, body: Value) -> Reply {
    match client().post(url).bearer_auth(key).json(&body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                body,
                text,
            }
        }
        // A replica killed under the request: no answer, status 0.
        Err(_) => Reply {
            status: 0,
            headers: Default::default(),
            body: Value::Null,
            text: String::new(),
        },
    }
}
