//! Random schedules, core in-process against the Redis store with injected time, decision for
//! decision: random quotas (rates that do not divide their periods, huge and tiny ones), one to
//! three quotas over one or two dimensions, interval refill, every operation (reserve and
//! settle included), costs above the burst, times that jump, step backwards, start near 0 and
//! near `u64::MAX`; in half the cases a limiter that blocks a key after a denial
//! (`with_block_ns`), the block written by the script.

mod support;

use cellgate::{
    Limiter, LimiterQuota, LimiterReservation, Op, Quota, Refill, RemoteLimiter, RemoteReservation,
};
use cellgate_redis::RedisLimiter;

/// splitmix64: a reproducible stream from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_quota(rng: &mut Rng) -> Quota {
    loop {
        let period_ns = match rng.below(6) {
            0 => rng.pick(&[
                1,
                7,
                1_000,
                1_000_000_000,
                60_000_000_000,
                86_400_000_000_000,
            ]),
            1 => 1 + rng.below(1_000_000_000_000),
            2 => 1 + rng.below(100),
            _ => rng.pick(&[1_000_000_000, 3_000_000_000, 250_000_000]),
        };
        let rate = match rng.below(8) {
            0 => 1 + rng.below(u64::MAX / 2),
            1 => 1_000_000_000,
            _ => 1 + rng.below(20),
        };
        let burst = match rng.below(8) {
            0 => 1 + rng.below(1_000_000),
            _ => 1 + rng.below(30),
        };
        if let Ok(quota) = Quota::with_parts(rate, period_ns, burst) {
            return quota;
        }
    }
}

fn random_cost(rng: &mut Rng, burst: u64) -> u64 {
    match rng.below(12) {
        0 => 0,
        1 => burst + 1 + rng.below(3),
        2 => rng.next(),
        // Where the script changes representation: 2^53 (exact doubles end) and 2^61.
        3 => (1u64 << 53) - 1 + rng.below(3),
        4 => (1u64 << 61) - 1 + rng.below(3),
        _ => 1 + rng.below(burst.min(5)),
    }
}

#[test]
fn random_schedules_equal_core_decision_for_decision() {
    let url = support::shared_url();
    let seed = std::env::var("CELLGATE_DIFF_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let mut rng = Rng(seed);
    let cases = 120;
    let steps = 120;
    let mut compared = 0u64;
    let mut denied = 0u64;
    let mut blocked_denials = 0u64;
    for case in 0..cases {
        let count = 1 + rng.below(3) as usize;
        let dimensions = if count > 1 && rng.below(2) == 0 { 2 } else { 1 };
        let names = ["q0", "q1", "q2"];
        let quotas: Vec<LimiterQuota<'_>> = (0..count)
            .map(|index| LimiterQuota {
                quota: random_quota(&mut rng),
                name: Some(names[index]),
                dimension: if index < dimensions {
                    index
                } else {
                    rng.below(dimensions as u64) as usize
                },
            })
            .collect();
        let refill = if count == 1 && rng.below(3) == 0 {
            Refill::Interval
        } else {
            Refill::Greedy
        };
        let prefix = support::unique_prefix(&format!("diff{case}"));
        let max_burst = quotas.iter().map(|q| q.quota.burst_cost()).max().unwrap();
        let max_period = quotas.iter().map(|q| q.quota.period_ns()).max().unwrap();
        let block_ns = match rng.below(4) {
            0 | 1 => 0,
            2 => 1 + rng.below(max_period.saturating_mul(3).max(1)),
            _ => rng.pick(&[1, u64::MAX, 1 << 53]),
        };
        let remote = RemoteLimiter::new(
            &quotas,
            support::limiter_options(refill),
            support::remote_options(&prefix),
        )
        .unwrap()
        .with_block_ns(block_ns);
        let client = redis::Client::open(url.as_str()).unwrap();
        let store = RedisLimiter::with_remote(client, remote, support::store_options());
        let local = Limiter::new(&quotas, support::limiter_options(refill))
            .unwrap()
            .with_block_ns(block_ns);
        let mut now_ns: u64 = match rng.below(6) {
            0 => 0,
            4 => (1u64 << 53) - rng.below(max_period.saturating_mul(2).max(1)),
            5 => (1u64 << 61) - rng.below(max_period.saturating_mul(2).max(1)),
            1 => u64::MAX - 1 - rng.below(max_period.saturating_mul(4).max(1)),
            _ => 1_700_000_000_000_000_000 + rng.below(1_000_000_000),
        };
        let keys: [&[u8]; 3] = [b"alice", b"bob", b"\x00{}carol"];
        let mut held: Vec<(LimiterReservation, RemoteReservation)> = Vec::new();
        for step in 0..steps {
            now_ns = match rng.below(10) {
                0 => now_ns.saturating_sub(rng.below(max_period.max(2))),
                1 => now_ns.saturating_add(rng.below(max_period.saturating_mul(3).max(1))),
                2 => now_ns,
                _ => now_ns.saturating_add(rng.below((max_period / 4).max(2))),
            };
            let key = rng.pick(&keys);
            let costs: Vec<Option<u64>> = (0..dimensions)
                .map(|_| Some(random_cost(&mut rng, max_burst)))
                .collect();
            let what = rng.below(20);
            let context = format!("seed {seed} case {case} step {step}: {quotas:?} {refill:?} now {now_ns} costs {costs:?} op {what}");
            let (local_decision, remote_decision) = match what {
                0..=8 => (
                    local.apply_at(key, now_ns, &costs, Op::Check).unwrap(),
                    store.apply_at(key, now_ns, &costs, Op::Check).unwrap(),
                ),
                9 | 10 => (
                    local.apply_at(key, now_ns, &costs, Op::Peek).unwrap(),
                    store.apply_at(key, now_ns, &costs, Op::Peek).unwrap(),
                ),
                11 => (
                    local.apply_at(key, now_ns, &costs, Op::Force).unwrap(),
                    store.apply_at(key, now_ns, &costs, Op::Force).unwrap(),
                ),
                12 => (
                    local.apply_at(key, now_ns, &costs, Op::Refund).unwrap(),
                    store.apply_at(key, now_ns, &costs, Op::Refund).unwrap(),
                ),
                13 => {
                    let no_costs: Vec<Option<u64>> = Vec::new();
                    (
                        local.apply_at(key, now_ns, &no_costs, Op::Reset).unwrap(),
                        store.apply_at(key, now_ns, &no_costs, Op::Reset).unwrap(),
                    )
                }
                14..=16 => {
                    let a = local.reserve_at(key, now_ns, &costs).unwrap();
                    let b = store.reserve(key, Some(now_ns), &costs).unwrap();
                    assert_eq!(
                        a.reservation.is_some(),
                        b.reservation.is_some(),
                        "{context}"
                    );
                    if let (Some(x), Some(y)) = (a.reservation, b.reservation) {
                        held.push((x, y));
                    }
                    (a.decision, b.decision)
                }
                _ => {
                    if held.is_empty() {
                        continue;
                    }
                    let index = rng.below(held.len() as u64) as usize;
                    let (x, y) = held.swap_remove(index);
                    let actual: Vec<Option<u64>> = (0..dimensions)
                        .map(|_| {
                            if rng.below(4) == 0 {
                                None
                            } else {
                                Some(random_cost(&mut rng, max_burst))
                            }
                        })
                        .collect();
                    (
                        local.settle_at(now_ns, x, &actual).unwrap(),
                        store.settle(y, Some(now_ns), &actual).unwrap(),
                    )
                }
            };
            assert_eq!(
                remote_decision, local_decision,
                "{context} block {block_ns}"
            );
            compared += 1;
            denied += u64::from(!remote_decision.allowed);
            blocked_denials += u64::from(block_ns != 0 && !remote_decision.allowed);
        }
        assert_eq!(store.stats().errors, 0);
    }
    assert!(compared > 10_000, "{compared}");
    // The schedules reach denials often enough to matter.
    assert!(denied > compared / 20, "{denied} of {compared}");
    assert!(
        blocked_denials > compared / 40,
        "{blocked_denials} of {compared}"
    );
}
