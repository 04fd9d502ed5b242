//! The one thread that writes stored responses to disk, in batches: a response per request
//! handed to the blocking pool cost a thread wake-up and a context switch each, more than the
//! write itself (bench/README.md); one writer drains whatever is waiting at each wake-up.
//!
//! Each write is still done before its caller hears back, so a follow-up finds it.

use std::path::PathBuf;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::{StoreError, write};

/// One file to write, and who waits for it.
struct Job {
    path: PathBuf,
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue to the writer thread, which ends when the store (the last sender) is dropped.
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread.
    pub(super) fn start() -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("responses-writer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    for job in std::iter::once(first).chain(jobs.try_iter()) {
                        // The caller may have gone (its client hung up): the write still stands.
                        let _ = job.done.send(write(&job.path, &job.bytes));
                    }
                }
            })?;
        Ok(Writer { queue })
    }

    /// Writes `bytes` to `path` (a temporary file renamed into place), and waits until it is.
    pub(super) async fn write(&self, path: PathBuf, bytes: Vec<u8>) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        self.queue
            .send(Job { path, bytes, done })
            .map_err(|_| StoreError::Corrupt("the response writer has stopped".into()))?;
        written
            .await
            .map_err(|_| StoreError::Corrupt("the response writer has stopped".into()))?
    }
}
