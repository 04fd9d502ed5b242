//! A gateway as its own process, from the built binary: for what only a process shows (exit
//! codes, signals, logs) and for replicas that can be killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A gateway process with JSON logs; its log lines arrive on a channel.
pub struct Process {
    pub child: Child,
    pub addr: String,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Process {
    pub fn start(config: &PathBuf, env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut process = Process::spawn(command);
        let started = process.wait_for(|line| line["message"] == "listening");
        process.addr = started["addr"].as_str().unwrap().to_owned();
        process
    }

    /// A process from a prepared command, its output piped into the log channel.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Process {
            child,
            addr: String::new(),
            lines,
            log: Vec::new(),
        }
    }

    /// Reads log lines until one matches; panics after 20 s.
    pub fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("log so far: {:#?}", self.log));
            self.log.push(line.clone());
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && matches(&value)
            {
                return value;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Kills it at once, as a crash or an OOM killer would: no drain, no shutdown work.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit and returns the exit code and every log line.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        (status.code(), std::mem::take(&mut self.log))
    }
}

/// A test that fails midway must not leave its gateway running: it would hold the test
/// runner's pipes open.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
