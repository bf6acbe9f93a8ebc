//! Replays `testdata/headers/*.json` through core's `Limiter`: configuration to decisions,
//! header bytes in every style and 429 bodies. C, Python and Node replay the same files.
//!
//! `CELLGATE_BLESS_HEADERS=1 cargo test -p cellgate --test header_vectors` writes the
//! expectations from core instead of checking them; review the diff by hand before committing.

use cellgate::{
    DimensionStyle, HeaderStyle, Limiter, LimiterDecision, LimiterOptions, LimiterQuota, OnFull,
    Op, Quota, Refill, Seed, MAX_POLICY_QUOTAS,
};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The `now_unix_s` of the `legacy_epoch` style in every vector.
const NOW_UNIX_S: u64 = 1_700_000_000;

fn headers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/headers")
}

fn op_of(name: &str) -> Op {
    match name {
        "check" => Op::Check,
        "peek" => Op::Peek,
        "force" => Op::Force,
        "refund" => Op::Refund,
        "reset" => Op::Reset,
        other => panic!("unknown op {other:?}"),
    }
}

fn build(config: &Value) -> (Limiter, Vec<String>) {
    let quotas: Vec<(Quota, Option<String>, usize)> = config["quotas"]
        .as_array()
        .expect("quotas")
        .iter()
        .map(|entry| {
            let mut quota: Quota = entry["rate"]
                .as_str()
                .expect("rate")
                .parse()
                .expect("a rate");
            if let Some(burst) = entry.get("burst") {
                quota = quota
                    .with_burst(burst.as_u64().expect("burst"))
                    .expect("a burst");
            }
            let name = entry
                .get("name")
                .map(|name| name.as_str().expect("name").to_owned());
            let dimension = entry
                .get("dimension")
                .map_or(0, |d| d.as_u64().unwrap() as usize);
            (quota, name, dimension)
        })
        .collect();
    let dimensions: Vec<String> = config.get("dimensions").map_or_else(
        || vec!["cost".to_owned()],
        |names| {
            names
                .as_array()
                .unwrap()
                .iter()
                .map(|name| name.as_str().unwrap().to_owned())
                .collect()
        },
    );
    let entries: Vec<LimiterQuota<'_>> = quotas
        .iter()
        .map(|(quota, name, dimension)| LimiterQuota {
            quota: *quota,
            name: name.as_deref(),
            dimension: *dimension,
        })
        .collect();
    let mut options = LimiterOptions::with_seed(Seed::new(1, 2));
    options.refill = match config.get("refill").and_then(Value::as_str) {
        None | Some("greedy") => Refill::Greedy,
        Some("interval") => Refill::Interval,
        Some(other) => panic!("unknown refill {other:?}"),
    };
    if let Some(max_keys) = config.get("max_keys") {
        options.max_keys = max_keys.as_u64().unwrap() as usize;
    }
    options.on_full = match config.get("on_full").and_then(Value::as_str) {
        None | Some("deny") => OnFull::Deny,
        Some("allow_untracked") => OnFull::AllowUntracked,
        Some(other) => panic!("unknown on_full {other:?}"),
    };
    (
        Limiter::new(&entries, options).expect("a valid limiter"),
        dimensions,
    )
}

fn costs_of(step: &Value, dimensions: &[String]) -> Vec<Option<u64>> {
    if let Some(costs) = step.get("costs") {
        dimensions
            .iter()
            .map(|name| costs.get(name).map(|cost| cost.as_u64().unwrap()))
            .collect()
    } else {
        vec![step.get("cost").map(|cost| cost.as_u64().unwrap())]
    }
}

fn headers(limiter: &Limiter, decision: &LimiterDecision, style: HeaderStyle) -> Value {
    let mut buf = [0u8; 1024];
    let rendered = limiter.render_headers(decision, style, &mut buf).unwrap();
    Value::Array(
        rendered
            .iter()
            .map(|(name, value)| json!([name, value]))
            .collect(),
    )
}

fn dimension_headers(
    limiter: &Limiter,
    decision: &LimiterDecision,
    style: DimensionStyle<'_>,
) -> Value {
    let mut buf = [0u8; 2048];
    match limiter.render_dimension_headers(decision, style, &mut buf) {
        Ok(rendered) => Value::Array(
            rendered
                .iter()
                .map(|(name, value)| json!([name, value]))
                .collect(),
        ),
        // A name that cannot be part of a header name: every runtime refuses it.
        Err(cellgate::HeaderError::InvalidName { index }) => {
            json!({ "error": "invalid_name", "index": index })
        }
        Err(error) => panic!("{error}"),
    }
}

fn expect_of(limiter: &Limiter, decision: &LimiterDecision) -> Value {
    let body = (!decision.allowed).then(|| {
        let mut buf = [0u8; 64];
        let len = limiter.render_429_body(decision, &mut buf).unwrap();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    });
    let binding = decision.decision();
    json!({
        "allowed": decision.allowed,
        "reason": decision.reason.as_str(),
        "remaining": binding.remaining,
        "retry_after_ns": limiter.retry_after_ns(decision),
        "headers": {
            "ietf": headers(limiter, decision, HeaderStyle::Ietf),
            "legacy": headers(limiter, decision, HeaderStyle::Legacy),
            "legacy_epoch": headers(limiter, decision, HeaderStyle::LegacyEpoch { now_unix_s: NOW_UNIX_S }),
            "draft_6": headers(limiter, decision, HeaderStyle::Draft6),
            "draft_7": headers(limiter, decision, HeaderStyle::Draft7),
            "anthropic": dimension_headers(limiter, decision, DimensionStyle::anthropic(NOW_UNIX_S)),
            "openai": dimension_headers(limiter, decision, DimensionStyle::openai()),
        },
        "body": body,
    })
}

#[test]
fn header_vectors_replay_through_the_limiter() {
    let bless = std::env::var_os("CELLGATE_BLESS_HEADERS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(headers_dir())
        .expect("testdata/headers")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut checked = 0;
    for path in files {
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["format"], 1, "{path:?}");
        for scenario in doc["scenarios"].as_array_mut().unwrap() {
            let name = scenario["name"].as_str().unwrap().to_owned();
            let (limiter, dimensions) = build(&scenario["limiter"]);
            assert!(limiter.names().len() <= MAX_POLICY_QUOTAS);
            for (index, step) in scenario["steps"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                let decision = limiter
                    .apply_at(
                        step["key"].as_str().unwrap().as_bytes(),
                        step["now_ns"].as_u64().unwrap(),
                        &costs_of(step, &dimensions),
                        op_of(step["op"].as_str().unwrap()),
                    )
                    .unwrap();
                let got = expect_of(&limiter, &decision);
                if bless {
                    step["expect"] = got;
                } else {
                    assert_eq!(step["expect"], got, "{name}, step {index}");
                }
                checked += 1;
            }
        }
        if bless {
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        }
    }
    assert!(checked > 40, "{checked} steps");
}

/// The names rule is core's: a configuration whose default names collide is refused.
#[test]
fn duplicate_default_names_are_refused() {
    let quota: Quota = "10/second".parse().unwrap();
    let error = Limiter::new(
        &[LimiterQuota::new(quota), LimiterQuota::new(quota)],
        LimiterOptions::with_seed(Seed::new(1, 2)),
    )
    .unwrap_err();
    assert_eq!(
        error,
        cellgate::ConfigError::DuplicateName { index: 1, first: 0 }
    );
}
