//! Settlements on this replica's disk until Redis has them: `settlements.journal` under
//! `state.data_dir`, so an answer's spend survives the replica being killed before it reached Redis.
//!
//! A settlement is a line written (one `write`, no fsync: a killed process loses nothing the
//! kernel took) before its answer ends; Redis taking it is recorded by a later line's `acked`.
//! At start, every line not acknowledged is written again; Redis applies a leased settlement
//! once however often it comes (see `settle.lua`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use redis::ScriptInvocation;
use serde::{Deserialize, Serialize};

use crate::state::{Journal, Line, StateError};

/// One settled request, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The virtual key's name.
    pub key: String,
    pub id: String,
    pub leased: bool,
    pub model: String,
    pub day: u32,
    pub input: u64,
    pub output: u64,
    pub cost: u64,
    pub tpm: u32,
}

impl Record {
    /// Its lease id, model, day, tokens and cost, the arguments both `settle.lua` and a
    /// reservation's riders take in this order.
    pub fn push_args(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .arg(&self.id)
            .arg(&self.model)
            .arg(self.day)
            .arg(self.input)
            .arg(self.output)
            .arg(self.cost);
    }
}

/// A line: a settlement, the settlements Redis took since the line before, or both.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settled: Option<Record>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    acked: Vec<u64>,
}

impl Line for Entry {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// Settlements not acknowledged by Redis, by their line's number.
type Pending = BTreeMap<u64, Record>;

/// The journal, what it holds that Redis has not acknowledged, and acknowledgements not yet
/// written (they ride on the next line, so a settlement costs one `write`).
pub struct SettlementJournal {
    journal: Journal<Entry>,
    pending: Mutex<Pending>,
    acked: Mutex<Vec<u64>>,
}

/// Acknowledgements kept before a line of their own is written: bounds memory and the replays
/// after a crash.
const ACKS_PER_LINE: usize = 4096;

impl SettlementJournal {
    /// Opens the journal in `dir`, returning what it holds that Redis never acknowledged.
    pub fn open(dir: &Path) -> Result<(Self, Vec<(u64, Record)>), StateError> {
        let (journal, pending) = Journal::open(
            dir,
            "settlements",
            "a settlements snapshot",
            |pending: &mut Pending, entry: Entry| apply(pending, &entry),
        )?;
        let unwritten = pending.iter().map(|(s, r)| (*s, r.clone())).collect();
        let journal = SettlementJournal {
            journal,
            pending: Mutex::new(pending),
            acked: Mutex::new(Vec::new()),
        };
        Ok((journal, unwritten))
    }

    /// Writes a settlement, with the acknowledgements gathered since the last line; returns
    /// its number.
    pub fn record(&self, record: Record) -> u64 {
        let acked = std::mem::take(&mut *lock(&self.acked));
        let entry = Entry {
            seq: 0,
            settled: Some(record),
            acked,
        };
        let mut seq = 0;
        self.journal.append(entry, |entry| {
            seq = entry.seq;
            apply(&mut lock(&self.pending), entry);
        });
        seq
    }

    /// Notes that Redis has taken (or will never take) the settlements numbered `seqs`.
    pub fn acked(&self, seqs: impl IntoIterator<Item = u64>) {
        let mut acked = lock(&self.acked);
        acked.extend(seqs.into_iter().filter(|&s| s > 0));
        if acked.len() >= ACKS_PER_LINE {
            let acked = std::mem::take(&mut *acked);
            self.append_acks(acked);
        }
    }

    /// Writes the acknowledgements gathered, if any, in a line of their own.
    pub fn write_acks(&self) {
        let acked = std::mem::take(&mut *lock(&self.acked));
        if !acked.is_empty() {
            self.append_acks(acked);
        }
    }

    /// Writes the acknowledgements gathered, puts the journal on the disk, and folds it into a
    /// snapshot of what is pending once it has grown long. Blocks: run it off the runtime.
    pub fn maintain(&self) -> Result<(), StateError> {
        self.write_acks();
        self.journal.sync()?;
        if self.journal.wants_compaction() {
            self.journal.compact(|| lock(&self.pending).clone())?;
        }
        Ok(())
    }

    fn append_acks(&self, acked: Vec<u64>) {
        let entry = Entry {
            seq: 0,
            settled: None,
            acked,
        };
        self.journal
            .append(entry, |entry| apply(&mut lock(&self.pending), entry));
    }
}

/// The settlements a journal's text leaves unacknowledged, by line number: what a start writes
/// to Redis again.
pub fn unacknowledged(text: &[u8]) -> Vec<(u64, Record)> {
    let mut pending = Pending::new();
    for entry in crate::state::read_lines::<Entry>(text) {
        apply(&mut pending, &entry);
    }
    pending.into_iter().collect()
}

fn apply(pending: &mut Pending, entry: &Entry) {
    for seq in &entry.acked {
        pending.remove(seq);
    }
    if let Some(record) = &entry.settled {
        pending.insert(entry.seq, record.clone());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Inserts, removals and takes only: a panic cannot leave them half-done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn record(key: &str, input: u64) -> Record {
        Record {
            key: key.into(),
            id: format!("lease-{input}"),
            leased: true,
            model: "p/m".into(),
            day: 20_000,
            input,
            output: 1,
            cost: 5,
            tpm: 0,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-settlements-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn what_redis_did_not_acknowledge_is_found_again_after_a_restart() {
        let dir = temp_dir("restart");
        {
            let (journal, unwritten) = SettlementJournal::open(&dir).unwrap();
            assert!(unwritten.is_empty());
            let a = journal.record(record("k", 1));
            let b = journal.record(record("k", 2));
            journal.acked([a]);
            // Acknowledgements ride on the next line.
            journal.record(record("j", 3));
            let _ = b;
        }
        let (_, unwritten) = SettlementJournal::open(&dir).unwrap();
        let inputs: Vec<u64> = unwritten.iter().map(|(_, r)| r.input).collect();
        assert_eq!(inputs, [2, 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn acknowledgements_written_when_the_queue_empties_survive_a_restart() {
        let dir = temp_dir("idle");
        {
            let (journal, _) = SettlementJournal::open(&dir).unwrap();
            let a = journal.record(record("k", 1));
            journal.acked([a]);
            journal.maintain().unwrap();
        }
        let (_, unwritten) = SettlementJournal::open(&dir).unwrap();
        assert!(unwritten.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fold_keeps_only_what_is_pending() {
        let dir = temp_dir("fold");
        {
            let (journal, _) = SettlementJournal::open(&dir).unwrap();
            let mut kept = 0;
            for i in 0..10_050u64 {
                let seq = journal.record(record("k", i));
                if i == 7 {
                    kept = seq;
                } else {
                    journal.acked([seq]);
                }
            }
            journal.maintain().unwrap();
            let text = std::fs::read_to_string(dir.join("settlements.journal")).unwrap();
            assert!(text.lines().count() < 100, "folded into the snapshot");
            assert!(kept > 0);
        }
        let (_, unwritten) = SettlementJournal::open(&dir).unwrap();
        assert_eq!(unwritten.len(), 1);
        assert_eq!(unwritten[0].1.input, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_gateway_cannot_share_the_journal() {
        let dir = temp_dir("lock");
        let (_held, _) = SettlementJournal::open(&dir).unwrap();
        assert!(matches!(
            SettlementJournal::open(&dir),
            Err(StateError::Locked { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
