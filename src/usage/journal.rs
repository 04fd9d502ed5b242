//! The usage ledger's lines and files: one [`Record`] per settled request, journaled under
//! `state.data_dir` as `usage.json` and `usage.journal` (see `state::Journal`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Totals;
use crate::state::{Journal, Line, StateError};

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

impl Line for Record {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// The ledger's journal.
pub type UsageJournal = Journal<Record>;

/// The lock file of the ledger's directory.
pub const LOCK_FILE: &str = "usage.lock";

/// The records a ledger journal's text holds, in the order a start applies them.
pub fn lines(text: &[u8]) -> Vec<Record> {
    crate::state::read_lines(text)
}

/// Opens the ledger's files in `dir`, and returns the accounts they hold.
pub fn open(dir: &Path) -> Result<(UsageJournal, BTreeMap<String, Totals>), StateError> {
    Journal::open(
        dir,
        "usage",
        "a usage snapshot",
        |accounts: &mut BTreeMap<String, Totals>, record: Record| {
            accounts
                .entry(record.key.clone())
                .or_default()
                .apply(&record);
        },
    )
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::state::MAX_SEQ_GAP;

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
        let (journal, accounts) = open(&dir).unwrap();
        assert!(accounts.is_empty());
        journal.append(record("a", 10), |_| {});
        journal.append(record("a", 20), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("usage.journal"))
            .unwrap();
        file.write_all(br#"{"seq":3,"key":"a","mod"#).unwrap();
        let (_, accounts) = open(&dir).unwrap();
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
        let (journal, _) = open(&dir).unwrap();
        journal.append(record("a", 10), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("usage.journal"))
            .unwrap();
        let mut damaged = serde_json::to_value(record("a", 1000)).unwrap();
        damaged["seq"] = serde_json::json!(u64::MAX);
        file.write_all(format!("{damaged}\n").as_bytes()).unwrap();
        drop(file);
        let (journal, _) = open(&dir).unwrap();
        journal.append(record("a", 20), |r| assert_eq!(r.seq, 2));
        drop(journal);
        let (_, accounts) = open(&dir).unwrap();
        let usage = &accounts["a"].models["p/m"];
        assert_eq!((usage.requests, usage.input_tokens), (2, 30));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A long run of failed writes leaves a big gap; the lines after it go on from each other,
    /// so they are taken.
    #[test]
    fn lines_after_a_long_gap_that_go_on_from_each_other_are_taken() {
        let dir = temp_dir("gap");
        let (journal, _) = open(&dir).unwrap();
        journal.append(record("a", 10), |_| {});
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("usage.journal"))
            .unwrap();
        let far = 2 + 2 * MAX_SEQ_GAP;
        for (seq, input) in [(far, 20), (far + 1, 30)] {
            let mut line = serde_json::to_value(record("a", input)).unwrap();
            line["seq"] = serde_json::json!(seq);
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
        drop(file);
        let (journal, accounts) = open(&dir).unwrap();
        let usage = &accounts["a"].models["p/m"];
        assert_eq!((usage.requests, usage.input_tokens), (3, 60));
        journal.append(record("a", 1), |r| assert_eq!(r.seq, far + 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_and_a_stale_journal_do_not_count_twice() {
        let dir = temp_dir("twice");
        let (journal, _) = open(&dir).unwrap();
        let mut totals = Totals::default();
        journal.append(record("a", 10), |r| totals.apply(r));
        let stale = std::fs::read(dir.join("usage.journal")).unwrap();
        journal
            .compact(|| BTreeMap::from([("a".to_owned(), totals.clone())]))
            .unwrap();
        // A crash after the rename but before the journal was emptied.
        std::fs::write(dir.join("usage.journal"), stale).unwrap();
        drop(journal);
        let (journal, accounts) = open(&dir).unwrap();
        assert_eq!(accounts["a"].models["p/m"].requests, 1);
        journal.append(record("a", 1), |r| {
            assert_eq!(r.seq, 2, "numbering continues")
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_directory_serves_one_gateway_at_a_time() {
        let dir = temp_dir("locked");
        let (first, _) = open(&dir).unwrap();
        let error = open(&dir).err().unwrap().to_string();
        assert!(error.contains("in use"), "{error}");
        drop(first);
        assert!(open(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_snapshot_is_an_error_naming_the_file() {
        let dir = temp_dir("broken");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("usage.json"), "{ nope").unwrap();
        let error = open(&dir).err().unwrap().to_string();
        assert!(error.contains("usage.json"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
