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
/// While lines keep coming, the writer wakes this often and writes what came meanwhile, in one
/// flush: waking per line (and a write per line) cost a busy gateway a quarter of its CPU.
const GATHER: Duration = Duration::from_millis(10);
/// How long a shutdown waits for the lines still queued.
const CLOSING: Duration = Duration::from_secs(2);

/// The audit file cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("audit.path: cannot open {path}: {cause}")]
pub struct WriterError {
    path: String,
    cause: std::io::Error,
}

/// What the writer is handed.
enum Message {
    Line(Vec<u8>),
    /// Write everything queued before this, then say so.
    Flush(SyncSender<()>),
}

/// The writer's end of the queue.
#[derive(Clone)]
pub(super) struct Sink {
    queue: SyncSender<Message>,
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
            Output::Stdout(BufWriter::with_capacity(64 * 1024, std::io::stdout()))
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
        match self.queue.try_send(Message::Line(bytes)) {
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

    /// Waits (a little) until the lines queued so far are written: at shutdown.
    pub(super) fn flush(&self) {
        let (done, written) = sync_channel(1);
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = written.recv_timeout(CLOSING);
        }
    }
}

enum Output {
    Stdout(BufWriter<std::io::Stdout>),
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
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

fn run(messages: Receiver<Message>, mut output: Output, metrics: &AuditMetrics) {
    // Idle, the writer sleeps until a line comes; busy, it gathers lines for `GATHER` at a time.
    while let Ok(first) = messages.recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            let mut flushed = Vec::new();
            let mut outcome = Ok(());
            for message in std::iter::once(message).chain(messages.try_iter()) {
                match message {
                    Message::Line(line) => outcome = outcome.and_then(|()| output.write(&line)),
                    Message::Flush(done) => flushed.push(done),
                }
            }
            if let Err(error) = outcome.and_then(|()| output.flush()) {
                if metrics.failed().is_power_of_two() {
                    tracing::error!(%error, "cannot write the audit log");
                }
                output.reset();
            }
            for done in flushed {
                let _ = done.send(());
            }
            std::thread::sleep(GATHER);
            next = messages.try_recv().ok();
        }
    }
}

impl Output {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(line),
            Output::File(rotating) => rotating.write(line),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
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
