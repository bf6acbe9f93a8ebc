//! core's `Limiter`: configuration rules, the one verb, reservations, and equality with the
//! keyed tables it is made of.

use cellgate::{
    ConfigError, KeyedLimiter, KeyedPolicy, Limiter, LimiterOptions, LimiterQuota, NoClock, OnFull,
    Op, PolicyEntry, Quota, Reason, Refill, Seed, NS_PER_SECOND,
};

fn options() -> LimiterOptions {
    LimiterOptions::with_seed(Seed::new(3, 4))
}

fn quota(rate: &str) -> Quota {
    rate.parse().unwrap()
}

fn two_dimensions() -> Limiter {
    Limiter::new(
        &[
            LimiterQuota {
                quota: quota("60/minute"),
                name: Some("requests"),
                dimension: 0,
            },
            LimiterQuota {
                quota: quota("1000/minute"),
                name: Some("tokens"),
                dimension: 1,
            },
        ],
        options(),
    )
    .unwrap()
}

#[test]
fn configuration_rules_are_checked_once_here() {
    let q = quota("10/second");
    let cases: Vec<(Vec<LimiterQuota<'_>>, LimiterOptions, ConfigError)> = vec![
        (vec![], options(), ConfigError::NoQuotas),
        (
            vec![LimiterQuota::new(q), LimiterQuota::new(q)],
            options(),
            ConfigError::DuplicateName { index: 1, first: 0 },
        ),
        (
            vec![LimiterQuota {
                quota: q,
                name: Some(""),
                dimension: 0,
            }],
            options(),
            ConfigError::EmptyName { index: 0 },
        ),
        (
            vec![LimiterQuota {
                quota: q,
                name: Some("caf\u{e9}"),
                dimension: 0,
            }],
            options(),
            ConfigError::InvalidName { index: 0 },
        ),
        (
            vec![LimiterQuota {
                quota: q,
                name: None,
                dimension: 1,
            }],
            options(),
            ConfigError::DimensionGap { dimension: 0 },
        ),
        (
            vec![LimiterQuota::new(q), LimiterQuota::new(quota("100/day"))],
            LimiterOptions {
                refill: Refill::Interval,
                ..options()
            },
            ConfigError::RefillNeedsOneQuota,
        ),
        (
            vec![LimiterQuota::new(q)],
            LimiterOptions {
                max_keys: 0,
                ..options()
            },
            ConfigError::MaxKeys { given: 0 },
        ),
        (
            vec![LimiterQuota::new(q); 9],
            options(),
            ConfigError::TooManyNames { given: 9 },
        ),
    ];
    for (quotas, options, expected) in cases {
        assert_eq!(
            Limiter::new(&quotas, options).unwrap_err(),
            expected,
            "{quotas:?}"
        );
    }
    let limiter = Limiter::new(
        &[LimiterQuota::new(q), LimiterQuota::new(quota("10/minute"))],
        options(),
    )
    .unwrap();
    assert_eq!(
        limiter.names().collect::<Vec<_>>(),
        ["10-in-1s", "10-in-1min"]
    );
}

#[test]
fn costs_follow_the_default_cost_rule() {
    let single = Limiter::new(&[LimiterQuota::new(quota("3/second"))], options()).unwrap();
    for _ in 0..3 {
        assert!(
            single
                .apply_at(b"k", 0, &[None], Op::Check)
                .unwrap()
                .allowed
        );
    }
    assert!(
        !single
            .apply_at(b"k", 0, &[None], Op::Check)
            .unwrap()
            .allowed,
        "None costs 1"
    );
    let limiter = two_dimensions();
    assert_eq!(
        limiter
            .apply_at(b"k", 0, &[Some(1), None], Op::Check)
            .unwrap_err(),
        ConfigError::MissingCost { dimension: 1 }
    );
    assert_eq!(
        limiter
            .apply_at(b"k", 0, &[Some(1)], Op::Check)
            .unwrap_err(),
        ConfigError::CostCount {
            expected: 2,
            given: 1
        }
    );
    // Nothing was charged by the refused calls.
    let peek = limiter
        .apply_at(b"k", 0, &[Some(0), Some(0)], Op::Peek)
        .unwrap();
    assert_eq!(peek.decisions()[0].remaining, 60);
}

#[test]
fn reservations_settle_once_on_their_own_limiter() {
    let limiter = two_dimensions();
    let reserved = limiter
        .reserve_at(b"org", 0, &[Some(1), Some(500)])
        .unwrap();
    assert!(reserved.decision.allowed);
    let reservation = reserved.reservation.unwrap();
    assert_eq!(reservation.costs(), [1, 500]);
    let after = limiter
        .settle_at(0, reservation, &[None, Some(120)])
        .unwrap();
    assert_eq!(
        after.decisions()[0].remaining,
        59,
        "requests keep their estimate"
    );
    assert_eq!(
        after.decisions()[1].remaining,
        1000 - 120,
        "tokens refunded to the actual"
    );

    let other = two_dimensions();
    let reservation = limiter
        .reserve_at(b"org", 0, &[Some(1), Some(10)])
        .unwrap()
        .reservation
        .unwrap();
    assert_eq!(
        other.settle_at(0, reservation, &[None, None]).unwrap_err(),
        ConfigError::ForeignReservation
    );
    let untouched = other
        .apply_at(b"org", 0, &[Some(0), Some(0)], Op::Peek)
        .unwrap();
    assert_eq!(untouched.decisions()[1].remaining, 1000);

    // A single quota: settle above the estimate goes into debt.
    let single = Limiter::new(&[LimiterQuota::new(quota("100/minute"))], options()).unwrap();
    let reservation = single
        .reserve_at(b"k", 0, &[Some(10)])
        .unwrap()
        .reservation
        .unwrap();
    let after = single.settle_at(0, reservation, &[Some(4)]).unwrap();
    assert_eq!(after.decision().remaining, 96);
    let reservation = single
        .reserve_at(b"k", 0, &[Some(90)])
        .unwrap()
        .reservation
        .unwrap();
    let after = single.settle_at(0, reservation, &[Some(150)]).unwrap();
    assert!(!after.allowed, "in debt");
    assert!(
        !single
            .apply_at(b"k", 30 * NS_PER_SECOND, &[None], Op::Check)
            .unwrap()
            .allowed
    );
}

#[test]
fn an_untracked_reservation_settles_to_nothing() {
    let limiter = Limiter::new(
        &[LimiterQuota::new(quota("1/hour"))],
        LimiterOptions {
            max_keys: 12,
            on_full: OnFull::AllowUntracked,
            ..options()
        },
    )
    .unwrap();
    for index in 0..16u8 {
        assert_eq!(
            limiter
                .apply_at(&[index], 0, &[None], Op::Check)
                .unwrap()
                .reason,
            Reason::Limit
        );
    }
    let reserved = limiter.reserve_at(b"new", 0, &[None]).unwrap();
    assert_eq!(reserved.decision.reason, Reason::Untracked);
    let reservation = reserved.reservation.unwrap();
    assert!(reservation.is_untracked());
    let after = limiter.settle_at(0, reservation, &[Some(1)]).unwrap();
    assert_eq!(after.reason, Reason::Untracked);
    assert_eq!(limiter.stats()[0].live_keys, 16);
    assert_eq!(limiter.stats()[0].admitted_untracked, 1);
}

/// Random schedules: a single-quota Limiter decides as a KeyedLimiter, a several-quota one as
/// a KeyedPolicy, step for step.
#[test]
fn the_limiter_decides_as_the_tables_it_wraps() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let q1 = quota("5/second");
    let q2 = quota("20/minute");
    let single = Limiter::new(&[LimiterQuota::new(q1)], options()).unwrap();
    let single_fast = Limiter::new(&[LimiterQuota::new(q1)], options()).unwrap();
    let table = KeyedLimiter::with_options(q1, Refill::Greedy, 100_000, Seed::new(3, 4), NoClock);
    let several = Limiter::new(&[LimiterQuota::new(q1), LimiterQuota::new(q2)], options()).unwrap();
    let policy = KeyedPolicy::new(
        [
            PolicyEntry {
                name: 0usize,
                quota: q1,
                dimension: 0,
            },
            PolicyEntry {
                name: 1usize,
                quota: q2,
                dimension: 0,
            },
        ],
        100_000,
        Seed::new(3, 4),
    )
    .unwrap();
    let mut now_ns = 0;
    for _ in 0..20_000 {
        now_ns += next(300_000_000);
        let key = [u8::try_from(next(8)).unwrap()];
        let cost = next(4);
        let op = [
            Op::Check,
            Op::Check,
            Op::Check,
            Op::Peek,
            Op::Force,
            Op::Refund,
        ][next(6) as usize];
        let one = single_fast
            .apply_one_at(&key, now_ns, Some(cost), op)
            .unwrap();
        assert!(several
            .apply_one_at(&key, now_ns, Some(cost), Op::Peek)
            .is_none());
        let got = single.apply_at(&key, now_ns, &[Some(cost)], op).unwrap();
        assert_eq!((one.decision, one.reason), (got.decision(), got.reason));
        let want = match op {
            Op::Check => table.check_at(key, now_ns, cost).unwrap(),
            Op::Peek => table.peek_at(key, now_ns, cost),
            Op::Force => table.force_at(key, now_ns, cost).unwrap(),
            _ => table.refund_at(key, now_ns, cost),
        };
        assert_eq!(got.decision(), want);
        let got = several.apply_at(&key, now_ns, &[Some(cost)], op).unwrap();
        let want = match op {
            Op::Check => policy.check_at(key, now_ns, &[cost]),
            Op::Peek => policy.peek_at(key, now_ns, &[cost]),
            Op::Force => policy.force_at(key, now_ns, &[cost]),
            _ => policy.refund_at(key, now_ns, &[cost]),
        }
        .unwrap();
        assert_eq!(got.decisions(), want.decisions());
        assert_eq!((got.allowed, got.binding), (want.allowed, want.binding));
        assert_eq!(got.decision(), want.decision());
    }
}

#[test]
fn reset_names_no_cost_whatever_the_dimensions() {
    let limiter = two_dimensions();
    assert!(
        limiter
            .apply_at(b"k", 0, &[Some(60), Some(1000)], Op::Check)
            .unwrap()
            .allowed
    );
    let reset = limiter.apply_at(b"k", 0, &[], Op::Reset).unwrap();
    assert_eq!(reset.decisions()[0].remaining, 60);
    assert_eq!(reset.decisions()[1].remaining, 1000);
    let single = Limiter::new(&[LimiterQuota::new(quota("1/hour"))], options()).unwrap();
    assert!(
        single
            .apply_at(b"k", 0, &[None], Op::Check)
            .unwrap()
            .allowed
    );
    assert!(
        single
            .apply_at(b"k", 0, &[None, None], Op::Reset)
            .unwrap()
            .allowed
    );
    assert!(
        single
            .apply_at(b"k", 0, &[None], Op::Check)
            .unwrap()
            .allowed
    );
}

/// Each refused new key is counted once, whatever `OnFull` answers (the first fast path
/// counted it twice: once in its own check, once more in the general path it retried).
#[test]
fn a_full_table_counts_each_refusal_once() {
    for on_full in [OnFull::Deny, OnFull::AllowUntracked] {
        let limiter = Limiter::new(
            &[LimiterQuota::new(quota("1/hour"))],
            LimiterOptions {
                max_keys: 12,
                on_full,
                ..options()
            },
        )
        .unwrap();
        let mut refused = 0;
        for index in 0..40u8 {
            for op in [Op::Check, Op::Force] {
                let decision = limiter
                    .apply_at(&[index, op as u8], 0, &[None], op)
                    .unwrap();
                refused += u64::from(decision.reason != Reason::Limit);
            }
        }
        let stats = limiter.stats()[0];
        assert_eq!(stats.rejected_full, refused, "{on_full:?}");
        let untracked = if on_full == OnFull::AllowUntracked {
            refused
        } else {
            0
        };
        assert_eq!(stats.admitted_untracked, untracked, "{on_full:?}");
    }
}
/// Tables of `quotas` over owned slot vectors, as a caller providing its own storage builds
/// them.
fn tables_for(
    quotas: &[LimiterQuota<'_>],
    refill: Refill,
    seed: Seed,
    slots: usize,
) -> Vec<KeyedLimiter<Vec<cellgate::SlotGroup>>> {
    quotas
        .iter()
        .map(|quota| {
            let storage = (0..slots.div_ceil(cellgate::GROUP_SLOTS))
                .map(|_| cellgate::SlotGroup::new())
                .collect();
            KeyedLimiter::with_storage(storage, quota.quota, refill, seed, NoClock).unwrap()
        })
        .collect()
}

#[test]
fn a_limiter_over_caller_tables_decides_as_one_over_its_own() {
    let single = [LimiterQuota::new(quota("3/second"))];
    let several = [
        LimiterQuota::new(quota("3/second")),
        LimiterQuota::new(quota("10/minute")),
        LimiterQuota {
            quota: quota("100/minute"),
            name: Some("tokens"),
            dimension: 1,
        },
    ];
    let options = LimiterOptions {
        max_keys: 50,
        ..options()
    };
    let slots = cellgate::slot_count_for(50);
    for (quotas, refill) in [
        (&single[..], Refill::Interval),
        (&several[..], Refill::Greedy),
    ] {
        let options = LimiterOptions { refill, ..options };
        let own = Limiter::new(quotas, options).unwrap();
        let given = Limiter::with_tables(
            quotas,
            options,
            tables_for(quotas, refill, options.seed, slots),
        )
        .unwrap();
        Limiter::check_config(quotas, &options).unwrap();
        let dimensions = own.dimensions();
        for step in 0..400u64 {
            let key = (step % 9).to_le_bytes();
            let now_ns = step * NS_PER_SECOND / 10;
            let costs: Vec<Option<u64>> = (0..dimensions)
                .map(|d| Some(1 + (step + d as u64) % 4))
                .collect();
            let op = [Op::Check, Op::Peek, Op::Check, Op::Refund][step as usize % 4];
            assert_eq!(
                own.apply_at(&key, now_ns, &costs, op).unwrap(),
                given.apply_at(&key, now_ns, &costs, op).unwrap(),
                "step {step}"
            );
        }
        let reserved = given
            .reserve_at(b"r", 0, &vec![Some(1); dimensions])
            .unwrap();
        assert!(given
            .settle_at(0, reserved.reservation.unwrap(), &vec![Some(2); dimensions])
            .is_ok());
    }
}

#[test]
fn caller_tables_that_do_not_fit_are_refused_naming_the_quota() {
    let quotas = [
        LimiterQuota::new(quota("3/second")),
        LimiterQuota::new(quota("10/minute")),
    ];
    let options = LimiterOptions {
        max_keys: 50,
        ..options()
    };
    let slots = cellgate::slot_count_for(50);
    let seed = options.seed;
    let mismatch = |tables| Limiter::with_tables(&quotas, options, tables).err();
    let mut wrong_quota = tables_for(&quotas, Refill::Greedy, seed, slots);
    wrong_quota.swap(0, 1);
    assert_eq!(
        mismatch(wrong_quota),
        Some(ConfigError::TableMismatch { index: 0 })
    );
    assert_eq!(
        mismatch(tables_for(&quotas, Refill::Greedy, Seed::new(9, 9), slots)),
        Some(ConfigError::TableMismatch { index: 0 })
    );
    assert_eq!(
        mismatch(tables_for(
            &quotas,
            Refill::Greedy,
            seed,
            slots - cellgate::GROUP_SLOTS
        )),
        Some(ConfigError::TableMismatch { index: 0 })
    );
    let mut short = tables_for(&quotas, Refill::Greedy, seed, slots);
    short.pop();
    assert_eq!(
        mismatch(short),
        Some(ConfigError::TableMismatch { index: 1 })
    );
    let mut long = tables_for(&quotas, Refill::Greedy, seed, slots);
    long.extend(tables_for(&quotas[..1], Refill::Greedy, seed, slots));
    assert_eq!(
        mismatch(long),
        Some(ConfigError::TableMismatch { index: 2 })
    );
    let single = [LimiterQuota::new(quota("3/second"))];
    assert_eq!(
        Limiter::with_tables(
            &single,
            options,
            tables_for(&single, Refill::Interval, seed, slots)
        )
        .err(),
        Some(ConfigError::TableMismatch { index: 0 })
    );
    // The configuration rules come first.
    assert_eq!(
        Limiter::check_config(&[], &options),
        Err(ConfigError::NoQuotas)
    );
    assert_eq!(
        Limiter::with_tables(
            &[],
            options,
            tables_for(&single, Refill::Greedy, seed, slots)
        )
        .err(),
        Some(ConfigError::NoQuotas)
    );
    assert_eq!(
        ConfigError::TableMismatch { index: 1 }.to_string(),
        "table 1 does not fit quota 1 (quota, refill, seed, size or count)"
    );
}
