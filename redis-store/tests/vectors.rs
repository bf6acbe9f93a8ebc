//! Replays every decision vector (`testdata/vectors/*.json`) through Redis with injected time,
//! step by step beside the in-process `Limiter`: every decision must be the in-process one
//! (which core's own vector test holds to the expected values), and, where the vector gives
//! one, the expected decision.
//!
//! Scenarios with times past `u64::MAX - 1` (which tables clamp) are compared with the
//! in-process limiter only. Scenarios with `initial_tokens` are cell-only (a `Limiter` starts full) and are skipped; the
//! test requires that at least 45 scenarios are replayed.

mod support;

use cellgate::{
    Decision, Limiter, LimiterDecision, LimiterQuota, LimiterReservation, Op, Quota, Refill,
    RemoteReservation, NEVER,
};
use serde_json::Value;
use std::collections::HashMap;

fn int(value: &Value) -> u64 {
    match value {
        Value::Number(number) => number.as_u64().unwrap(),
        Value::String(text) if text == "never" => NEVER,
        Value::String(text) => text.parse().unwrap(),
        other => panic!("not an integer: {other}"),
    }
}

fn quota(value: &Value) -> Quota {
    Quota::with_parts(
        int(&value["rate_cost"]),
        int(&value["period_ns"]),
        int(&value["burst_cost"]),
    )
    .unwrap()
}

fn decision(value: &Value) -> Decision {
    Decision {
        allowed: value["allowed"].as_bool().unwrap(),
        limit: int(&value["limit"]),
        remaining: int(&value["remaining"]),
        retry_after_ns: int(&value["retry_after_ns"]),
        reset_after_ns: int(&value["reset_after_ns"]),
    }
}

fn key_of(step: &Value) -> Vec<u8> {
    if let Some(key) = step["key"].as_str() {
        return key.as_bytes().to_vec();
    }
    if let Some(hex) = step["key_hex"].as_str() {
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
    }
    b"cellgate-vectors".to_vec()
}

#[test]
fn every_vector_through_redis_equals_core() {
    let url = support::shared_url();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let (mut replayed, mut steps_checked) = (0usize, 0usize);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let document: Value = serde_json::from_str(&text).unwrap();
        for scenario in document["scenarios"].as_array().unwrap() {
            if scenario.get("initial_tokens").is_some() {
                continue;
            }
            let name = scenario["name"].as_str().unwrap();
            let policy = scenario.get("policy").and_then(Value::as_array);
            let names: Vec<String>;
            let mut quotas = Vec::new();
            let refill;
            match policy {
                Some(entries) => {
                    names = entries
                        .iter()
                        .map(|entry| entry["name"].as_str().unwrap().to_string())
                        .collect();
                    for (entry, name) in entries.iter().zip(&names) {
                        quotas.push(LimiterQuota {
                            quota: quota(&entry["quota"]),
                            name: Some(name.as_str()),
                            dimension: entry["dimension"].as_u64().unwrap() as usize,
                        });
                    }
                    refill = Refill::Greedy;
                }
                None => {
                    quotas.push(LimiterQuota::new(quota(&scenario["quota"])));
                    refill = match (scenario["algorithm"].as_str(), scenario["refill"].as_str()) {
                        (Some("token_bucket"), Some("interval")) | (Some("token_bucket"), None) => {
                            Refill::Interval
                        }
                        _ => Refill::Greedy,
                    };
                }
            }
            // Tables decide at most at u64::MAX - 1 (core's vector test replays such scenarios on
            // cells only): Redis must still equal the in-process limiter, not the cells' values.
            let beyond_tables = scenario["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|step| int(&step["now_ns"]) > u64::MAX - 1);
            let prefix = support::unique_prefix(name);
            let store = support::redis_limiter(
                &url,
                &quotas,
                refill,
                support::remote_options(&prefix),
                support::store_options(),
            );
            let local = Limiter::new(&quotas, support::limiter_options(refill)).unwrap();
            let dimensions = local.dimensions();
            let mut local_reservations: HashMap<String, LimiterReservation> = HashMap::new();
            let mut remote_reservations: HashMap<String, RemoteReservation> = HashMap::new();
            for (index, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
                let now_ns = int(&step["now_ns"]);
                let key = key_of(step);
                let costs: Vec<Option<u64>> = match (step.get("costs"), step.get("cost")) {
                    (Some(costs), _) => costs
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| Some(int(c)))
                        .collect(),
                    (None, Some(cost)) => vec![Some(int(cost))],
                    (None, None) => vec![Some(0); dimensions],
                };
                let op = step["op"].as_str().unwrap();
                let (local_decision, remote_decision): (LimiterDecision, LimiterDecision) = match op
                {
                    "reserve" => {
                        let label = step["reservation"].as_str().unwrap().to_string();
                        let held = local.reserve_at(&key, now_ns, &costs).unwrap();
                        let remote = store.reserve(&key, Some(now_ns), &costs).unwrap();
                        if let Some(reservation) = held.reservation {
                            local_reservations.insert(label.clone(), reservation);
                        }
                        if let Some(reservation) = remote.reservation {
                            remote_reservations.insert(label, reservation);
                        }
                        (held.decision, remote.decision)
                    }
                    "settle" => {
                        let label = step["reservation"].as_str().unwrap();
                        let local_reservation = local_reservations.remove(label).unwrap();
                        let remote_reservation = remote_reservations.remove(label).unwrap();
                        (
                            local.settle_at(now_ns, local_reservation, &costs).unwrap(),
                            store
                                .settle(remote_reservation, Some(now_ns), &costs)
                                .unwrap(),
                        )
                    }
                    other => {
                        let op = match other {
                            "check" => Op::Check,
                            "peek" => Op::Peek,
                            "force" => Op::Force,
                            "refund" => Op::Refund,
                            "reset" => Op::Reset,
                            other => panic!("unknown op {other}"),
                        };
                        (
                            local.apply_at(&key, now_ns, &costs, op).unwrap(),
                            store.apply_at(&key, now_ns, &costs, op).unwrap(),
                        )
                    }
                };
                assert_eq!(
                    remote_decision, local_decision,
                    "{name} step {index} ({op}): Redis differs from core"
                );
                if let (Some(expect), false) = (step.get("expect"), op == "reset" || beyond_tables)
                {
                    if policy.is_some() {
                        assert_eq!(
                            remote_decision.allowed,
                            expect["allowed"].as_bool().unwrap(),
                            "{name} step {index}"
                        );
                        assert_eq!(
                            remote_decision.binding as u64,
                            expect["binding"].as_u64().unwrap(),
                            "{name} step {index}"
                        );
                        let expected: Vec<Decision> = expect["decisions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(decision)
                            .collect();
                        assert_eq!(
                            remote_decision.decisions(),
                            expected.as_slice(),
                            "{name} step {index}"
                        );
                    } else {
                        assert_eq!(
                            remote_decision.decisions()[0],
                            decision(expect),
                            "{name} step {index}"
                        );
                    }
                    steps_checked += 1;
                }
            }
            let stats = store.stats();
            assert_eq!(stats.errors, 0, "{name}: {stats:?}");
            replayed += 1;
        }
    }
    assert!(replayed >= 45, "only {replayed} scenarios replayed");
    assert!(
        steps_checked >= 200,
        "only {steps_checked} expected decisions checked"
    );
}
