//! An append-only journal beside a snapshot, under the data directory: `NAME.json`, a snapshot
//! written durably, and `NAME.journal`, one JSON line per change since.
//!
//! Each line is one `write` to an append-only file, so a killed process leaves every line it
//! acknowledged; only the last line can be torn, and a torn line is ignored. Lines carry sequence
//! numbers and the snapshot the last one it contains, so a crash between writing a snapshot and
//! emptying the journal never applies a line twice.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{StateError, claim, io, write_durably};

/// Lines after which the journal asks to be folded into a new snapshot.
const COMPACT_AFTER: u64 = 10_000;

/// How far a line's number may run ahead of the line before it: as many writes as may fail in
/// a row (each still takes its number).
pub const MAX_SEQ_GAP: u64 = 1_000_000;

/// One line of a journal: any JSON record with a sequence number the journal assigns.
pub trait Line: Serialize + DeserializeOwned {
    fn seq(&self) -> u64;
    fn set_seq(&mut self, seq: u64);
}

/// The snapshot file. Its state is stored under `accounts`, the name the usage ledger's files
/// had before the journal served others, so existing data directories still load.
#[derive(Serialize, Deserialize)]
struct Snapshot<S> {
    /// The last journal line the snapshot contains.
    seq: u64,
    accounts: S,
}

struct Open {
    file: File,
    seq: u64,
    lines: u64,
}

/// The append-only journal of lines `R` and the snapshot beside it.
pub struct Journal<R> {
    snapshot: PathBuf,
    journal: PathBuf,
    open: Mutex<Open>,
    /// Held for the journal's life: two gateways appending to one file would corrupt it.
    _lock: File,
    _lines: PhantomData<fn(R)>,
}

impl<R: Line> Journal<R> {
    /// Opens `name`'s files in `dir` (creating it, taking `name.lock`), and returns the state
    /// they hold: the snapshot (or `S::default()`) with every later line applied in order.
    /// `what` names the snapshot in errors ("a usage snapshot").
    pub fn open<S>(
        dir: &Path,
        name: &str,
        what: &'static str,
        mut apply: impl FnMut(&mut S, R),
    ) -> Result<(Journal<R>, S), StateError>
    where
        S: DeserializeOwned + Default,
    {
        let lock = claim(dir, &format!("{name}.lock"))?;
        let snapshot_path = dir.join(format!("{name}.json"));
        let snapshot = match std::fs::read(&snapshot_path) {
            Ok(bytes) => serde_json::from_slice::<Snapshot<S>>(&bytes).map_err(|cause| {
                StateError::Corrupt {
                    path: snapshot_path.clone(),
                    what,
                    cause,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot {
                seq: 0,
                accounts: S::default(),
            },
            Err(e) => return Err(io(&snapshot_path)(e)),
        };
        let journal_path = dir.join(format!("{name}.journal"));
        let text = match std::fs::read(&journal_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&journal_path)(e)),
        };
        let mut state = snapshot.accounts;
        let mut seq = snapshot.seq;
        for line in replayable::<R>(&text, seq, &journal_path) {
            seq = line.seq();
            apply(&mut state, line);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io(&journal_path))?;
        let journal = Journal {
            snapshot: snapshot_path,
            journal: journal_path,
            open: Mutex::new(Open {
                file,
                seq,
                lines: 0,
            }),
            _lock: lock,
            _lines: PhantomData,
        };
        Ok((journal, state))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `line` (numbered next), then runs `apply` while still holding the journal, so that
    /// a snapshot sees either both or neither. A write failure is logged: the change happened,
    /// and refusing to count it would be worse than a gap in the file.
    pub fn append(&self, mut line: R, apply: impl FnOnce(&R)) {
        let mut open = self.lock();
        open.seq = open.seq.saturating_add(1);
        line.set_seq(open.seq);
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(error) = open.file.write_all(&bytes) {
            tracing::error!(%error, "cannot append to {}", self.journal.display());
        }
        open.lines += 1;
        apply(&line);
    }

    pub fn wants_compaction(&self) -> bool {
        self.lock().lines >= COMPACT_AFTER
    }

    /// Flushes the journal to the disk.
    pub fn sync(&self) -> Result<(), StateError> {
        let file = self.lock().file.try_clone();
        file.and_then(|f| f.sync_data()).map_err(io(&self.journal))
    }

    /// Writes a snapshot of `state()` (taken while appends wait) and empties the journal.
    pub fn compact<S: Serialize>(&self, state: impl FnOnce() -> S) -> Result<(), StateError> {
        let mut open = self.lock();
        let snapshot = Snapshot {
            seq: open.seq,
            accounts: state(),
        };
        let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        write_durably(&self.snapshot, &bytes)?;
        open.file.set_len(0).map_err(io(&self.journal))?;
        open.lines = 0;
        Ok(())
    }
}

/// The lines a journal's text holds, in the order a start applies them (torn and damaged lines
/// skipped): what a start replays over an empty snapshot.
pub fn read_lines<R: Line>(text: &[u8]) -> Vec<R> {
    replayable(text, 0, Path::new("a journal"))
}

/// The lines of a journal's text that follow the snapshot's `seq`, in order. A torn or damaged
/// line is skipped with a warning.
fn replayable<R: Line>(text: &[u8], mut seq: u64, path: &Path) -> Vec<R> {
    let mut lines: Vec<Option<R>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match serde_json::from_slice::<R>(l) {
            Ok(line) => Some(line),
            // A crash mid-write tears the last line, whose change was never acknowledged;
            // anything else unreadable is damage, and is said to be.
            Err(error) => {
                tracing::warn!(%error, "skipping an unreadable line of {}", path.display());
                None
            }
        })
        .collect();
    let mut taken = Vec::new();
    for i in 0..lines.len() {
        let Some(at) = lines[i].as_ref().map(Line::seq) else {
            continue;
        };
        if at <= seq {
            continue;
        }
        // Lines count up by one, with a gap only where a write failed. A number far ahead is a
        // damaged line, which would hide every later line behind it, unless the next line goes
        // on from it (the disk came back after a long run of failed writes).
        let continued = matches!(
            lines.get(i + 1),
            Some(Some(next)) if at.checked_add(1) == Some(next.seq())
        );
        if at - seq > MAX_SEQ_GAP && !continued {
            tracing::warn!(
                seq = at,
                expected = seq.saturating_add(1),
                "skipping a line of {} numbered far ahead of the ones before it",
                path.display()
            );
            continue;
        }
        seq = at;
        taken.extend(lines[i].take());
    }
    taken
}
