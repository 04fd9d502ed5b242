//! What a start reads back from the data directory's journals, whatever a crash or a disk left
//! there (torn lines, damage, lines of another version): the usage ledger's records and the
//! settlements a replica had not written to Redis. Reading never panics, and what is read is
//! what some line said.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let records = switchboard::fuzzing::usage_journal(data);
    // Lines are read in order of their numbers, each at most once.
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));
    let pending = switchboard::fuzzing::settlements_journal(data);
    assert!(pending.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(pending.iter().all(|(seq, _)| *seq > 0));
});
