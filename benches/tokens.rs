//! The token counter against tiktoken-rs, in one run: load time, memory the vocabulary takes
//! (resident set growth) and counting throughput on the repository's own docs and code.
//!
//! Run with `cargo bench --bench tokens`; figures go in bench/README.md.

use std::time::{Duration, Instant};

/// Resident memory now, in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The files, each below the counter's exact limit, twenty times over.
fn corpus() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        "README.md",
        "ARCHITECTURE.md",
        "docs/configuration.md",
        "docs/mcp.md",
        "src/api/chat.rs",
        "src/config/validate.rs",
    ];
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap_or_default())
        .collect();
    std::iter::repeat_n(texts, 20).flatten().collect()
}

struct Figures {
    load: Duration,
    grown_kib: u64,
    mb_per_s: f64,
    tokens: u64,
}

fn measure(count: impl Fn(&str) -> u64, texts: &[String]) -> Figures {
    let before = resident_kib();
    let started = Instant::now();
    count("warm up");
    let load = started.elapsed();
    let grown_kib = resident_kib().saturating_sub(before);
    let started = Instant::now();
    let rounds = 5;
    let tokens = (0..rounds)
        .flat_map(|_| texts)
        .map(|text| count(std::hint::black_box(text)))
        .sum();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mb_per_s = (bytes * rounds) as f64 / started.elapsed().as_secs_f64() / 1e6;
    Figures {
        load,
        grown_kib,
        mb_per_s,
        tokens,
    }
}

fn main() {
    let text = corpus();
    let ours = measure(switchboard::tokens::count, &text);
    let reference = measure(
        |t| tiktoken_rs::o200k_base_singleton().encode_ordinary(t).len() as u64,
        &text,
    );
    assert_eq!(ours.tokens, reference.tokens, "the counts differ");
    let bytes: usize = text.iter().map(String::len).sum();
    println!(
        "corpus: {bytes} bytes in {} texts, counted 5 times",
        text.len()
    );
    println!("| counter | load | resident growth | throughput |");
    println!("| --- | --- | --- | --- |");
    for (name, f) in [("switchboard", &ours), ("tiktoken-rs 0.12", &reference)] {
        println!(
            "| {name} | {:.1} ms | {:.1} MiB | {:.1} MB/s |",
            f.load.as_secs_f64() * 1000.0,
            f.grown_kib as f64 / 1024.0,
            f.mb_per_s
        );
    }
    println!(
        "ratio: {:.2}x the throughput, {:.2}x the memory",
        ours.mb_per_s / reference.mb_per_s,
        ours.grown_kib as f64 / reference.grown_kib.max(1) as f64
    );
}
