//! What the per-key limiter costs a request: admission (GCRA rate and concurrency), reservation
//! under token and dollar limits, and settlement, spread over 1,000 distinct keys.
//!
//! Run with `cargo bench --bench limiter`. The journal variant writes each settlement to a file,
//! as the embedded default does.

use std::hint::black_box;
use std::num::{NonZeroU32, NonZeroU64};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use switchboard::config::{BudgetConfig, BudgetPeriod, LimitsConfig};
use switchboard::quota::{Door, Estimate, KeyQuota};
use switchboard::usage::{Ledger, Spent};

const KEYS: usize = 1000;

fn limits() -> LimitsConfig {
    LimitsConfig {
        requests_per_minute: NonZeroU32::new(u32::MAX),
        max_concurrent: NonZeroU32::new(64),
        tokens_per_minute: NonZeroU32::new(u32::MAX),
        tokens_per_day: NonZeroU64::new(u64::MAX / 4),
        budget_usd: Some(BudgetConfig {
            amount: 1e6,
            period: BudgetPeriod::Month,
        }),
        ..LimitsConfig::default()
    }
}

fn quotas(ledger: &Ledger, names: &[String]) -> Vec<KeyQuota> {
    names
        .iter()
        .map(|name| KeyQuota::new(Some(&limits()), ledger.account(name), None))
        .collect()
}

fn one_request(quota: &KeyQuota) {
    // Quotas kept in this process never wait: their futures are ready at the first poll.
    let admission = quota
        .admit(Door::Other)
        .now_or_never()
        .expect("ready")
        .expect("admitted");
    let reservation = quota
        .reserve(Estimate {
            tokens: 500,
            cost: 1_000_000,
        })
        .now_or_never()
        .expect("ready")
        .expect("reserved");
    let spent = Spent {
        input_tokens: 120,
        output_tokens: 80,
        cost: 400_000,
    };
    reservation.settle("provider/model", black_box(&spent));
    drop(admission);
}

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (0..KEYS).map(|i| format!("key-{i}")).collect();
    let memory = Ledger::in_memory(names.iter().map(String::as_str));
    let in_memory = quotas(&memory, &names);
    let mut i = 0;
    c.bench_function("limiter/1000 keys/in memory", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            one_request(&in_memory[i]);
        })
    });
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    let journaled = Ledger::open(&dir, names.iter().map(String::as_str)).expect("ledger");
    let on_disk = quotas(&journaled, &names);
    c.bench_function("limiter/1000 keys/journaled", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            one_request(&on_disk[i]);
        })
    });
    drop(journaled);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
