//! The ledger's files under `state.data_dir`: `usage.json`, a snapshot written to a temporary file,
//! synced and renamed into place, and `usage.journal`, one JSON line per settled request since.
//!
//! Each line is one `write` to an append-only file, so a killed process leaves every line it
//! acknowledged; only the last line can be torn, and a torn line is ignored. Lines carry sequence
//! numbers and the snapshot the last one it contains, so a crash between writing a snapshot and
//! emptying the journal never counts a request twice.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Totals;

const SNAPSHOT: &str = "usage.json";
const JOURNAL: &str = "usage.journal";
/// Lines after which the journal is folded into a new snapshot.
const COMPACT_AFTER: u64 = 10_000;

/// How far a line's number may run ahead of the line before it: as many writes as may fail in
/// a row (each still takes its number).
const MAX_SEQ_GAP: u64 = 1_000_000;

/// Why the usage files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state.data_dir: cannot use {path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: std::io::Error,
    },
    #[error("state.data_dir: {path} is in use by another running gateway")]
    Locked { path: PathBuf },
    #[error("state.data_dir: {path} is not a usage snapshot: {cause}")]
    Corrupt {
        path: PathBuf,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: serde_json::Error,
    },
}

/// One settled request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub key: String,
    pub model: String,
    pub day: u32,
    pub input: u64,
    pub output: u64,
    pub cost: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// The last journal line the snapshot contains.
    seq: u64,
    accounts: BTreeMap<String, Totals>,
}

struct Open {
    file: File,
    seq: u64,
    lines: u64,
}

/// The append-only journal and the snapshot beside it.
pub struct Journal {
    dir: PathBuf,
    open: Mutex<Open>,
    /// Held for the journal's life: two gateways appending to one file would corrupt it.
    _lock: File,
}

impl Journal {
    /// Opens the files in `dir` (creating it), and returns the accounts they hold.
    pub fn open(dir: &Path) -> Result<(Journal, BTreeMap<String, Totals>), StateError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |cause| StateError::Io { path, cause }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("usage.lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    path: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let snapshot_path = dir.join(SNAPSHOT);
        let mut snapshot = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                serde_json::from_slice::<Snapshot>(&bytes).map_err(|cause| StateError::Corrupt {
                    path: snapshot_path.clone(),
                    cause,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot {
                seq: 0,
                accounts: BTreeMap::new(),
            },
            Err(e) => return Err(io(&snapshot_path)(e)),
        };
        let journal_path = dir.join(JOURNAL);
        let text = match std::fs::read(&journal_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&journal_path)(e)),
        };
        let mut seq = snapshot.seq;
        let lines: Vec<Result<Record, serde_json::Error>> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(serde_json::from_slice::<Record>)
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let record = match line {
                Ok(record) => record,
                // A crash mid-write tears the last line, whose request was never acknowledged;
                // anything else unreadable is damage, and is said to be.
                Err(error) => {
                    tracing::warn!(%error, "skipping an unreadable line of {}", journal_path.display());
                    continue;
                }
            };
            if record.seq <= seq {
                continue;
            }
            // Lines count up by one, with a gap only where a write failed. A number far ahead is
            // a damaged line, which would hide every later line behind it, unless the next line
            // goes on from it (the disk came back after a long run of failed writes).
            let continued = matches!(
                lines.get(i + 1),
                Some(Ok(next)) if record.seq.checked_add(1) == Some(next.seq)
            );
            if record.seq - seq > MAX_SEQ_GAP && !continued {
                tracing::warn!(
                    seq = record.seq,
                    expected = seq.saturating_add(1),
                    "skipping a line of {} numbered far ahead of the ones before it",
                    journal_path.display()
                );
                continue;
            }
            seq = record.seq;
            snapshot
                .accounts
                .entry(record.key.clone())
                .or_default()
                .apply(record);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io(&journal_path))?;
        let journal = Journal {
            dir: dir.to_owned(),
            open: Mutex::new(Open {
                file,
                seq,
                lines: 0,
            }),
            _lock: lock,
        };
        Ok((journal, snapshot.accounts))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `record` as one line, then runs `apply` while still holding the journal, so that a
    /// snapshot sees either both or neither. A write failure is logged: the request was served,
    /// and refusing to count it would be worse than a gap in the file.
    pub fn append(&self, mut record: Record, apply: impl FnOnce(&Record)) {
        let mut open = self.lock();
        open.seq = open.seq.saturating_add(1);
        record.seq = open.seq;
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        if let Err(error) = open.file.write_all(&line) {
            tracing::error!(%error, "cannot append to the usage journal");
        }
        open.lines += 1;
        apply(&record);
    }

    pub fn wants_compaction(&self) -> bool {
        self.lock().lines >= COMPACT_AFTER
    }

    /// Flushes the journal to the disk.
    pub fn sync(&self) -> Result<(), StateError> {
        let file = self.lock().file.try_clone();
        file.and_then(|f| f.sync_data())
            .map_err(|cause| StateError::Io {
                path: self.dir.join(JOURNAL),
                cause,
            })
    }

    /// Writes a snapshot of `accounts()` (taken while appends wait) and empties the journal.
    pub fn compact(
        &self,
        accounts: impl FnOnce() -> BTreeMap<String, Totals>,
    ) -> Result<(), StateError> {
        let mut open = self.lock();
        let snapshot = Snapshot {
            seq: open.seq,
            accounts: accounts(),
        };
        let path = self.dir.join(SNAPSHOT);
        let temporary = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |cause| StateError::Io { path, cause }
        };
        let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        let mut file = File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(&bytes).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        // The rename is durable only once the directory is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        open.file.set_len(0).map_err(io(&self.dir.join(JOURNAL)))?;
        open.lines = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, input: u64) -> Record {
        Record {
            seq: 0,
            key: key.into(),
            model: "p/m".into(),
            day: 20_000,
            input,
            output: 1,
            cost: 5,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn lines_survive_reopening_and_a_torn_tail_is_ignored() {
        let dir = temp_dir("torn");
        let (journal, accounts) = Journal::open(&dir).unwrap();
        assert!(accounts.is_empty());
        journal.append(record("a", 10), |_| {});
        journal.append(record("a", 20), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        file.write_all(br#"{"seq":3,"key":"a","mod"#).unwrap();
        let (_, accounts) = Journal::open(&dir).unwrap();
        let usage = &accounts["a"].models["p/m"];
        assert_eq!(
            (usage.requests, usage.input_tokens, usage.cost),
            (2, 30, 10)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A damaged line numbered far ahead is skipped: taken, it would hide every line after it,
    /// and numbering would wrap past it.
    #[test]
    fn a_line_numbered_far_ahead_does_not_hide_the_ones_after_it() {
        let dir = temp_dir("ahead");
        let (journal, _) = Journal::open(&dir).unwrap();
        journal.append(record("a", 10), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        let mut damaged = serde_json::to_value(record("a", 1000)).unwrap();
        damaged["seq"] = serde_json::json!(u64::MAX);
        file.write_all(format!("{damaged}\n").as_bytes()).unwrap();
        drop(file);
        let (journal, _) = Journal::open(&dir).unwrap();
        journal.append(record("a", 20), |r| assert_eq!(r.seq, 2));
        drop(journal);
        let (_, accounts) = Journal::open(&dir).unwrap();
        let usage = &accounts["a"].models["p/m"];
        assert_eq!((usage.requests, usage.input_tokens), (2, 30));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A long run of failed writes leaves a big gap; the lines after it go on from each other,
    /// so they are taken.
    #[test]
    fn lines_after_a_long_gap_that_go_on_from_each_other_are_taken() {
        let dir = temp_dir("gap");
        let (journal, _) = Journal::open(&dir).unwrap();
        journal.append(record("a", 10), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        let far = 2 + 2 * MAX_SEQ_GAP;
        for (seq, input) in [(far, 20), (far + 1, 30)] {
            let mut line = serde_json::to_value(record("a", input)).unwrap();
            line["seq"] = serde_json::json!(seq);
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
        drop(file);
        let (journal, accounts) = Journal::open(&dir).unwrap();
        let usage = &accounts["a"].models["p/m"];
        assert_eq!((usage.requests, usage.input_tokens), (3, 60));
        journal.append(record("a", 1), |r| assert_eq!(r.seq, far + 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_and_a_stale_journal_do_not_count_twice() {
        let dir = temp_dir("twice");
        let (journal, _) = Journal::open(&dir).unwrap();
        let mut totals = Totals::default();
        journal.append(record("a", 10), |r| totals.apply(r));
        let stale = std::fs::read(dir.join(JOURNAL)).unwrap();
        journal
            .compact(|| BTreeMap::from([("a".to_owned(), totals.clone())]))
            .unwrap();
        // A crash after the rename but before the journal was emptied.
        std::fs::write(dir.join(JOURNAL), stale).unwrap();
        drop(journal);
        let (journal, accounts) = Journal::open(&dir).unwrap();
        assert_eq!(accounts["a"].models["p/m"].requests, 1);
        journal.append(record("a", 1), |r| {
            assert_eq!(r.seq, 2, "numbering continues")
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_directory_serves_one_gateway_at_a_time() {
        let dir = temp_dir("locked");
        let (first, _) = Journal::open(&dir).unwrap();
        let error = Journal::open(&dir).err().unwrap().to_string();
        assert!(error.contains("in use"), "{error}");
        drop(first);
        assert!(Journal::open(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_snapshot_is_an_error_naming_the_file() {
        let dir = temp_dir("broken");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(SNAPSHOT), "{ nope").unwrap();
        let error = Journal::open(&dir).err().unwrap().to_string();
        assert!(error.contains("usage.json"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
