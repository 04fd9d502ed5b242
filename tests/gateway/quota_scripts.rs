//! The shared quota's Lua scripts run on a real `redis-server` with days the test chooses: a
//! budget period's earlier days count however their money reached Redis (a reservation's
//! riders, a settlement of its own, an import, a new day), whatever the script keeps of them.

use std::sync::LazyLock;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};

use crate::common::redis::RedisServer;

static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../src/quota/shared/settle_fn.lua"),
        include_str!("../../src/quota/shared/reserve.lua")
    ))
});

static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../src/quota/shared/settle_fn.lua"),
        include_str!("../../src/quota/shared/settle.lua")
    ))
});

const BUDGET: u64 = 100;
const FIRST: u32 = 1000;

/// One key's names, as the gateway lays them out under one hash tag.
fn key(suffix: &str) -> String {
    format!("t:{{budgeted}}:{suffix}")
}

/// A settlement riding on a reservation: the lease it ends, the day it was reserved on and what
/// it cost; its hold was `(0, hold)`.
struct Rider {
    id: &'static str,
    day: u32,
    cost: u64,
    hold: u64,
}

/// Reserves `cost` under a budget of `BUDGET` for the period `FIRST..=today`: `[0, ...]` when
/// admitted, `[4, spent]` when the budget refuses.
async fn reserve(
    redis: &mut MultiplexedConnection,
    id: &str,
    today: u32,
    cost: u64,
    riders: &[Rider],
) -> Vec<i64> {
    reserve_in(redis, id, (FIRST, today), cost, riders).await
}

/// [`reserve`] in the period `first..=today`.
async fn reserve_in(
    redis: &mut MultiplexedConnection,
    id: &str,
    period: (u32, u32),
    cost: u64,
    riders: &[Rider],
) -> Vec<i64> {
    reserve_under(redis, id, period, BUDGET, cost, riders).await
}

/// The reservation script on the key's seven keys, for the lease `id` (a minute long); the
/// limits and what follows them are the caller's.
fn reservation(id: &str) -> redis::ScriptInvocation<'static> {
    let mut invocation = RESERVE.prepare_invoke();
    for name in ["q", "leases", "held", "days", "gone", "rate", "models"] {
        invocation.key(key(name));
    }
    invocation.arg(id).arg(60_000);
    invocation
}

/// [`reserve_in`] under a budget of `budget` picodollars.
async fn reserve_under(
    redis: &mut MultiplexedConnection,
    id: &str,
    (first, today): (u32, u32),
    budget: u64,
    cost: u64,
    riders: &[Rider],
) -> Vec<i64> {
    let mut invocation = reservation(id);
    invocation
        .arg(&[0, 0, 0, 0])
        .arg(budget)
        .arg(first)
        .arg(today)
        .arg(0)
        .arg(cost)
        .arg(0)
        .arg(riders.len());
    for rider in riders {
        invocation
            .arg(rider.id)
            .arg("m")
            .arg(rider.day)
            .arg(&[0, 0])
            .arg(rider.cost)
            .arg(1)
            .arg(format!("0 {}", rider.hold));
    }
    invocation.invoke_async(redis).await.unwrap()
}

/// Settles the lease `id` (reserved on `day`, holding `hold`) with what it cost, on its own.
async fn settle(redis: &mut MultiplexedConnection, id: &str, day: u32, cost: u64) -> i64 {
    let mut invocation = SETTLE.prepare_invoke();
    for name in ["q", "leases", "held", "days", "gone", "models", "rate"] {
        invocation.key(key(name));
    }
    invocation
        .arg(id)
        .arg("m")
        .arg(day)
        .arg(&[0, 0])
        .arg(cost)
        .arg(&[0, 1, 1]);
    invocation.invoke_async(redis).await.unwrap()
}

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn a_budget_periods_earlier_days_count_however_their_money_arrived() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    // 10 on each of the period's six days before today (1006), 5 today.
    for day in FIRST..1006 {
        let _: () = redis
            .hset(key("days"), format!("c:{day}"), 10)
            .await
            .unwrap();
    }
    let _: () = redis.hset(key("days"), "c:1006", 5).await.unwrap();

    // 65 spent: 35 more fit, 36 do not; the refusal says what was spent, holds included.
    assert_eq!(reserve(&mut redis, "x", 1006, 36, &[]).await, [4, 65]);
    assert_eq!(reserve(&mut redis, "a", 1006, 30, &[]).await[0], 0);
    assert_eq!(reserve(&mut redis, "x", 1006, 6, &[]).await, [4, 95]);

    // `a` began yesterday and cost 20 of its 30: its own settlement charges day 1005.
    assert_eq!(settle(&mut redis, "a", 1005, 20).await, 1);
    assert_eq!(reserve(&mut redis, "x", 1006, 16, &[]).await, [4, 85]);
    assert_eq!(reserve(&mut redis, "b", 1006, 15, &[]).await[0], 0);

    // `b` began on day 1004 and cost 10 of its 15, settled riding on the next reservation.
    let rider = Rider {
        id: "b",
        day: 1004,
        cost: 10,
        hold: 15,
    };
    assert_eq!(reserve(&mut redis, "x", 1006, 6, &[rider]).await, [4, 95]);
    assert_eq!(reserve(&mut redis, "c", 1006, 5, &[]).await[0], 0);
    assert_eq!(settle(&mut redis, "c", 1006, 5).await, 1);

    // The next day reads the period again: 100 spent, not a cent more fits.
    assert_eq!(reserve(&mut redis, "x", 1007, 1, &[]).await, [4, 100]);
    // A new period starts from nothing spent.
    let admitted = reserve_in(&mut redis, "y", (1031, 1032), 100, &[]).await;
    assert_eq!(admitted[0], 0, "{admitted:?}");
}

/// Money imported into a period's earlier days counts from the next reservation.
#[tokio::test]
async fn money_imported_into_earlier_days_counts_at_once() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    assert_eq!(reserve(&mut redis, "a", 1003, 60, &[]).await[0], 0);
    assert_eq!(settle(&mut redis, "a", 1003, 60).await, 1);
    assert_eq!(reserve(&mut redis, "x", 1004, 41, &[]).await, [4, 60]);

    let import = Script::new(include_str!("../../src/quota/shared/import.lua"));
    let imported: i64 = import
        .key(key("days"))
        .key(key("models"))
        .key(key("imported"))
        .key(key("q"))
        .arg(&["d", "c:1001", "30"])
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(imported, 1);
    assert_eq!(reserve(&mut redis, "x", 1004, 11, &[]).await, [4, 90]);
    assert_eq!(reserve(&mut redis, "b", 1004, 10, &[]).await[0], 0);
}

/// A replica whose clock is still on yesterday charges a day the others have summed: the sum
/// takes it.
#[tokio::test]
async fn a_charge_from_a_replica_still_on_yesterday_reaches_the_sum() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    assert_eq!(reserve(&mut redis, "a", 1000, 40, &[]).await[0], 0);
    // A replica already on day 1001 sums day 1000: nothing charged yet, 40 held.
    assert_eq!(reserve(&mut redis, "x", 1001, 61, &[]).await, [4, 40]);

    // One still on day 1000 settles `a` riding on its next reservation, then `b` on its own.
    let rider = Rider {
        id: "a",
        day: 1000,
        cost: 40,
        hold: 40,
    };
    assert_eq!(reserve(&mut redis, "b", 1000, 1, &[rider]).await[0], 0);
    assert_eq!(settle(&mut redis, "b", 1000, 1).await, 1);

    assert_eq!(reserve(&mut redis, "x", 1001, 60, &[]).await, [4, 41]);
    assert_eq!(reserve(&mut redis, "c", 1001, 59, &[]).await[0], 0);
}

/// Several settlements riding on one reservation are each charged once, one applied before (a
/// retry) and one that comes twice included; their holds come back and their leases end.
#[tokio::test]
async fn riders_settled_together_are_each_charged_once() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    for (id, cost) in [("a", 30), ("b", 20), ("c", 10), ("d", 10)] {
        assert_eq!(reserve(&mut redis, id, 1006, cost, &[]).await[0], 0);
    }
    let rider = |id, day, cost, hold| Rider {
        id,
        day,
        cost,
        hold,
    };
    // 70 held; a, b and c cost 13 of their 60, two of them today, one yesterday.
    let riders = [
        rider("a", 1006, 5, 30),
        rider("b", 1006, 7, 20),
        rider("c", 1005, 1, 10),
    ];
    // 10 still held for d, 13 charged: 77 fit, 78 do not.
    assert_eq!(reserve(&mut redis, "x", 1006, 78, &riders).await, [4, 23]);
    // b again (a retry), d for the first time, d twice: only d's 2 are charged.
    let riders = [
        rider("b", 1006, 7, 20),
        rider("d", 1006, 2, 10),
        rider("d", 1006, 2, 10),
    ];
    assert_eq!(reserve(&mut redis, "x", 1006, 86, &riders).await, [4, 15]);

    let days: Vec<Option<u64>> = redis
        .hmget(key("days"), &["c:1005", "c:1006"])
        .await
        .unwrap();
    assert_eq!(days, [Some(1), Some(14)]);
    let models: Vec<Option<u64>> = redis.hmget(key("models"), &["r:m", "c:m"]).await.unwrap();
    assert_eq!(models, [Some(4), Some(15)]);
    let held: u64 = redis.hlen(key("held")).await.unwrap();
    let leases: u64 = redis.zcard(key("leases")).await.unwrap();
    assert_eq!((held, leases), (0, 0));
}

/// The money a key's in-flight requests hold stays exact past 2^53 picodollars (about $9,007),
/// where Lua's numbers are not.
#[tokio::test]
async fn holds_past_lua_numbers_exact_range_stay_exact() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    let big: u64 = (1 << 53) - 1;
    for (id, cost) in [("a", big), ("b", 3), ("c", 4)] {
        let verdict = reserve_under(&mut redis, id, (FIRST, FIRST), 1 << 62, cost, &[]).await;
        assert_eq!(verdict[0], 0, "{verdict:?}");
    }
    let held: String = redis.hget(key("q"), "rc").await.unwrap();
    assert_eq!(held, (big + 7).to_string());
}

/// Reserves a request under `requests_per_minute: 2`, `ahead` ms ahead of it, first giving back
/// the reservations `unused` (made ahead, never used) riding on it: `[0, ...]` when admitted,
/// `[2, ms]` when the rate refuses.
async fn reserve_rated(
    redis: &mut MultiplexedConnection,
    id: &str,
    ahead: u64,
    unused: &[&str],
) -> Vec<i64> {
    let mut invocation = reservation(id);
    invocation
        .arg(2)
        .arg(&[0, 0, 0, 0])
        .arg(&[FIRST, FIRST])
        .arg(&[0, 0])
        .arg(ahead)
        .arg(unused.len());
    for lease in unused {
        invocation
            .arg(*lease)
            .arg("m")
            .arg(FIRST)
            .arg(&[0, 0, 0])
            .arg(2)
            .arg("0 0");
    }
    invocation.invoke_async(redis).await.unwrap()
}

/// A reservation made ahead of its request counts in the rate window until the latest its
/// request may come; given back unused (riding on a reservation, or settled on its own), it
/// leaves the window, its lease and its hold as if it had never been made.
#[tokio::test]
async fn a_reservation_made_ahead_counts_until_its_request_may_come_and_leaves_unused() {
    let server = RedisServer::start();
    let mut redis = connect(&server).await;
    assert_eq!(reserve_rated(&mut redis, "now", 0, &[]).await[0], 0);
    assert_eq!(reserve_rated(&mut redis, "ahead", 1000, &[]).await[0], 0);
    let now: f64 = redis.zscore(key("rate"), "now").await.unwrap();
    let ahead: f64 = redis.zscore(key("rate"), "ahead").await.unwrap();
    assert!(ahead >= now + 1000.0, "dated {ahead}, a request now {now}");
    let refused = reserve_rated(&mut redis, "x", 0, &[]).await;
    assert_eq!(refused[0], 2, "two in the window: {refused:?}");

    let admitted = reserve_rated(&mut redis, "next", 0, &["ahead"]).await;
    assert_eq!(
        admitted[0], 0,
        "the unused one left the window: {admitted:?}"
    );
    let window: Vec<String> = redis.zrange(key("rate"), 0, -1).await.unwrap();
    assert_eq!(window, ["now", "next"]);
    let held: bool = redis.hexists(key("held"), "ahead").await.unwrap();
    let leased: Option<f64> = redis.zscore(key("leases"), "ahead").await.unwrap();
    assert_eq!((held, leased), (false, None), "its hold and lease ended");

    let mut release = SETTLE.prepare_invoke();
    for name in ["q", "leases", "held", "days", "gone", "models", "rate"] {
        release.key(key(name));
    }
    release
        .arg("next")
        .arg("m")
        .arg(FIRST)
        .arg(&[0, 0, 0, 0])
        .arg(&[2, 1]);
    let applied: i64 = release.invoke_async(&mut redis).await.unwrap();
    assert_eq!(applied, 1);
    let window: Vec<String> = redis.zrange(key("rate"), 0, -1).await.unwrap();
    assert_eq!(window, ["now"]);
    assert_eq!(reserve_rated(&mut redis, "last", 0, &[]).await[0], 0);
    // Nothing was charged for either.
    let requests: Option<u64> = redis.hget(key("models"), "r:m").await.unwrap();
    assert_eq!(requests, None);
}
