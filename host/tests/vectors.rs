//! Replays the shared decision vectors (`testdata/vectors/*.json`, format in
//! `testdata/README.md`) through shared tables: every `"keyed": true` scenario through a
//! single-quota [`SharedTable::limiter`], every policy scenario through a
//! [`SharedTable::policy`], each in a fresh file. Every step must give exactly the expected
//! decision, as core's own replay (`core/tests/vectors.rs`) requires of the in-process tables.
#![cfg(unix)]

mod support;

use cellgate::{Decision, PolicyDecision, PolicyEntry, Quota, Refill, Reservation, NEVER};
use cellgate_host::{OpenOptions, SharedTable, TableConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// `max_keys` when a keyed scenario gives none (as in core's replay).
const DEFAULT_MAX_KEYS: usize = 1024;
/// The key of a policy scenario whose steps name none (as in core's replay).
const FIXED_POLICY_KEY: &[u8] = b"cellgate-vectors";

fn int(value: &Value) -> u64 {
    match value {
        Value::Number(number) => number.as_u64().expect("an unsigned integer"),
        Value::String(text) if text == "never" => NEVER,
        Value::String(text) => text.parse().expect("decimal digits"),
        other => panic!("not an integer: {other}"),
    }
}

fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

fn quota(spec: &Value) -> Quota {
    Quota::with_parts(
        int(field(spec, "rate_cost")),
        int(field(spec, "period_ns")),
        int(field(spec, "burst_cost")),
    )
    .expect("a valid quota")
}

fn decision(expect: &Value) -> Decision {
    Decision {
        allowed: field(expect, "allowed").as_bool().expect("allowed"),
        limit: int(field(expect, "limit")),
        remaining: int(field(expect, "remaining")),
        retry_after_ns: int(field(expect, "retry_after_ns")),
        reset_after_ns: int(field(expect, "reset_after_ns")),
    }
}

fn policy_expect(expect: &Value) -> (bool, usize, Vec<Decision>) {
    (
        field(expect, "allowed").as_bool().expect("allowed"),
        int(field(expect, "binding")) as usize,
        field(expect, "decisions")
            .as_array()
            .expect("decisions")
            .iter()
            .map(decision)
            .collect(),
    )
}

fn policy_shown(decision: &PolicyDecision) -> (bool, usize, Vec<Decision>) {
    (
        decision.allowed,
        decision.binding,
        decision.decisions().to_vec(),
    )
}

fn key(step: &Value) -> Option<Vec<u8>> {
    if let Some(text) = step.get("key").and_then(Value::as_str) {
        return Some(text.as_bytes().to_vec());
    }
    let hex = step.get("key_hex")?.as_str()?;
    Some(
        (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
            .collect(),
    )
}

fn replay_keyed(path: &Path, scenario: &Value) {
    let name = field(scenario, "name");
    let refill = match field(scenario, "refill").as_str() {
        Some("interval") => Refill::Interval,
        _ => Refill::Greedy,
    };
    let max_keys = scenario
        .get("max_keys")
        .map_or(DEFAULT_MAX_KEYS, |value| int(value) as usize);
    let config = TableConfig::limiter(quota(field(scenario, "quota")), refill, max_keys).unwrap();
    let limiter = SharedTable::open(path, &config, &OpenOptions::new())
        .unwrap()
        .limiter()
        .unwrap();
    for (index, step) in field(scenario, "steps")
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let now_ns = int(field(step, "now_ns"));
        let key = key(step).expect("a keyed step names a key");
        let cost = step.get("cost").map_or(0, int);
        let actual = match field(step, "op").as_str().unwrap() {
            "check" => limiter.check_at(&key, now_ns, cost).expect("room"),
            "peek" => limiter.peek_at(&key, now_ns, cost),
            "force" => limiter.force_at(&key, now_ns, cost).expect("room"),
            "refund" => limiter.refund_at(&key, now_ns, cost),
            "reset" => {
                limiter.reset_at(&key, now_ns);
                limiter.peek_at(&key, now_ns, 0)
            }
            other => panic!("{name} step {index}: op {other} in a keyed scenario"),
        };
        if let Some(expect) = step.get("expect") {
            assert_eq!(actual, decision(expect), "{name} step {index}");
        }
    }
}

fn replay_policy(path: &Path, scenario: &Value) {
    let name = field(scenario, "name");
    let entries: Vec<PolicyEntry<String>> = field(scenario, "policy")
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| PolicyEntry {
            name: field(entry, "name").as_str().unwrap().to_string(),
            quota: quota(field(entry, "quota")),
            dimension: int(field(entry, "dimension")) as usize,
        })
        .collect();
    let max_keys = scenario
        .get("max_keys")
        .map_or(DEFAULT_MAX_KEYS, |value| int(value) as usize);
    let config = TableConfig::policy(&entries, max_keys).unwrap();
    let policy = SharedTable::open(path, &config, &OpenOptions::new())
        .unwrap()
        .policy(entries)
        .unwrap();
    let mut reservations: BTreeMap<String, Reservation> = BTreeMap::new();
    for (index, step) in field(scenario, "steps")
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let now_ns = int(field(step, "now_ns"));
        let key = key(step).unwrap_or_else(|| FIXED_POLICY_KEY.to_vec());
        let costs: Vec<u64> = match step.get("costs") {
            Some(costs) => costs.as_array().unwrap().iter().map(int).collect(),
            None => vec![0; policy.dimensions()],
        };
        let id = step
            .get("reservation")
            .and_then(Value::as_str)
            .map(str::to_string);
        let actual = match field(step, "op").as_str().unwrap() {
            "check" => policy.check_at(&key, now_ns, &costs),
            "peek" => policy.peek_at(&key, now_ns, &costs),
            "force" => policy.force_at(&key, now_ns, &costs),
            "refund" => policy.refund_at(&key, now_ns, &costs),
            "reset" => {
                policy.reset_at(&key, now_ns);
                policy.peek_at(&key, now_ns, &costs)
            }
            "reserve" => policy.reserve_at(&key, now_ns, &costs).map(|reserved| {
                if let Some(reservation) = reserved.reservation {
                    reservations.insert(id.clone().expect("a reservation id"), reservation);
                }
                reserved.decision
            }),
            "settle" => {
                let reservation = reservations
                    .remove(id.as_deref().expect("a reservation id"))
                    .expect("a held reservation");
                policy.settle_at(now_ns, reservation, &costs)
            }
            other => panic!("{name} step {index}: unknown op {other}"),
        }
        .unwrap_or_else(|error| panic!("{name} step {index}: {error}"));
        if let Some(expect) = step.get("expect") {
            assert_eq!(
                policy_shown(&actual),
                policy_expect(expect),
                "{name} step {index}"
            );
        }
    }
}

#[test]
fn decision_vectors_replay_exactly_through_shared_tables() {
    let dir = support::scratch_dir("vectors");
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&vectors)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let (mut keyed, mut policies) = (0, 0);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let vectors: Value = serde_json::from_str(&text).unwrap();
        for scenario in field(&vectors, "scenarios").as_array().unwrap() {
            let path = dir.join(format!("scenario-{}", keyed + policies));
            if scenario.get("policy").is_some() {
                replay_policy(&path, scenario);
                policies += 1;
            } else if field(scenario, "keyed").as_bool() == Some(true) {
                replay_keyed(&path, scenario);
                keyed += 1;
            } else {
                continue;
            }
            SharedTable::remove(&path).unwrap();
        }
    }
    // Every keyed and policy scenario of the vectors ran (6 and 7 today; more may come).
    assert!(
        keyed >= 6 && policies >= 7,
        "{keyed} keyed, {policies} policy scenarios"
    );
}
