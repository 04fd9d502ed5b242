//! Audit lines to their file (rotated by size) or to the standard output, on one thread of
//! their own behind a bounded queue: a request hands its line over and goes on. A full queue
//! or a failed write is counted and logged, never waited for.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use serde::Serialize;

use super::Line;
use crate::config::AuditConfig;
use crate::telemetry::AuditMetrics;

/// Lines waiting for the writer; past this, new ones are dropped (and counted).
const QUEUE: usize = 16 * 1024;
/// Lines written between two flushes, at most.
const BATCH: usize = 512;

/// The audit file cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("audit.path: cannot open {path}: {cause}")]
pub struct WriterError {
    path: String,
    cause: std::io::Error,
}

/// The writer's end of the queue.
#[derive(Clone)]
pub(super) struct Sink {
    queue: SyncSender<Vec<u8>>,
    metrics: Arc<AuditMetrics>,
}

/// A line as written: when, and how long the action took, around what it says.
#[derive(Serialize)]
struct Stamped<'a> {
    time: String,
    log: &'static str,
    #[serde(flatten)]
    line: &'a Line,
    duration_ms: f64,
}

impl Sink {
    /// Opens the output (so a path that cannot be written fails at start) and starts the
    /// writer thread.
    pub(super) fn start(
        config: &AuditConfig,
        metrics: Arc<AuditMetrics>,
    ) -> Result<Sink, WriterError> {
        let output = if config.to_stdout() {
            Output::Stdout
        } else {
            let path = PathBuf::from(&config.path);
            let (file, size) = open(&path).map_err(|cause| WriterError {
                path: config.path.clone(),
                cause,
            })?;
            Output::File(Rotating {
                path,
                max_size: config.max_size.0,
                keep: config.keep,
                file: Some(file),
                size,
            })
        };
        let (queue, lines) = sync_channel(QUEUE);
        let writing = metrics.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(lines, output, &writing))
            .map_err(|cause| WriterError {
                path: config.path.clone(),
                cause,
            })?;
        Ok(Sink { queue, metrics })
    }

    /// Queues `line`; never waits.
    pub(super) fn write(&self, line: &Line, took: Duration) {
        let stamped = Stamped {
            time: crate::clock::rfc3339_now(),
            log: "audit",
            line,
            duration_ms: (took.as_secs_f64() * 1e5).round() / 1e2,
        };
        let Ok(mut bytes) = serde_json::to_vec(&stamped) else {
            return;
        };
        bytes.push(b'\n');
        match self.queue.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.metrics.dropped();
                // The first of a run, then ever more rarely: the log must not drown as well.
                if dropped.is_power_of_two() {
                    tracing::error!(dropped, "audit lines dropped: the writer cannot keep up");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.failed();
            }
        }
    }
}

enum Output {
    Stdout,
    File(Rotating),
}

/// The audit file and its rotated predecessors `path.1` (newest) to `path.{keep}`.
struct Rotating {
    path: PathBuf,
    max_size: u64,
    keep: u32,
    /// `None` after a failure; reopened at the next line.
    file: Option<BufWriter<File>>,
    size: u64,
}

fn open(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    let file = File::options().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::new(file), size))
}

fn run(lines: Receiver<Vec<u8>>, mut output: Output, metrics: &AuditMetrics) {
    while let Ok(first) = lines.recv() {
        let mut outcome = output.write(&first);
        for line in lines.try_iter().take(BATCH) {
            outcome = outcome.and_then(|()| output.write(&line));
        }
        if let Err(error) = outcome.and_then(|()| output.flush()) {
            if metrics.failed().is_power_of_two() {
                tracing::error!(%error, "cannot write the audit log");
            }
            output.reset();
        }
    }
}

impl Output {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout => std::io::stdout().lock().write_all(line),
            Output::File(rotating) => rotating.write(line),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout => std::io::stdout().lock().flush(),
            Output::File(rotating) => rotating.file.as_mut().map_or(Ok(()), Write::flush),
        }
    }

    /// After a failure: the file is reopened for the next line.
    fn reset(&mut self) {
        if let Output::File(rotating) = self {
            rotating.file = None;
        }
    }
}

impl Rotating {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let (file, size) = open(&self.path)?;
                self.size = size;
                self.file.insert(file)
            }
        };
        file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `path.{keep-1}` to `path.{keep}`, ..., `path` to `path.1`, and a new `path`.
    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in (1..self.keep).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        let (file, size) = open(&self.path)?;
        self.file = Some(file);
        self.size = size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotating(dir: &Path, max_size: u64, keep: u32) -> Rotating {
        let path = dir.join("audit.jsonl");
        let (file, size) = open(&path).unwrap();
        Rotating {
            path,
            max_size,
            keep,
            file: Some(file),
            size,
        }
    }

    #[test]
    fn files_rotate_at_the_size_and_only_keep_are_kept() {
        let dir = std::env::temp_dir().join(format!("switchboard-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = rotating(&dir, 100, 2);
        for n in 0..20 {
            log.write(format!("{{\"n\":{n:03},\"pad\":\"xxxxxxxxxxxxxxxx\"}}\n").as_bytes())
                .unwrap();
        }
        log.file.as_mut().unwrap().flush().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        for name in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"] {
            let text = read(name);
            assert!(text.len() <= 100, "{name}: {}", text.len());
            assert!(text.lines().all(|l| l.ends_with('}')), "{name}: {text}");
        }
        assert!(!dir.join("audit.jsonl.3").exists());
        assert!(read("audit.jsonl").contains("\"n\":019"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
