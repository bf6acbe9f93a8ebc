//! Replays the shared decision vectors in `testdata/vectors/*.json` (the format is documented in
//! `testdata/README.md`).
//!
//! Every scenario is replayed twice, and both replays must produce exactly the expected
//! decisions:
//!
//! * through the cells (`Gcra`, `TokenBucket` and their `_at` operations, `reset()`), which is
//!   what the C, Python and Node bindings wrap;
//! * through the pure decision function (`Rule::decide` over a plain `CellState`), which is
//!   what a runtime keeping its state elsewhere (shared memory, a remote store) runs.
//!
//! Scenarios on which core is believed to be wrong are listed in [`KNOWN_DISAGREEMENTS`]: they
//! keep the correct expected values, and this test requires them to still fail on the listed
//! replay (a strict expected failure), so that fixing core makes the test ask for the entry
//! to be removed.

use cellgate::{CellState, Decision, Gcra, Op, Quota, Refill, Rule, TokenBucket, NEVER};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The format version this reader understands.
const FORMAT: u64 = 1;

/// The largest integer a JSON number may hold in a vector file: 2^53 - 1, the largest integer
/// every JSON reader (JavaScript's included) reads exactly. Larger values are decimal strings.
const MAX_JSON_NUMBER: u64 = (1 << 53) - 1;

/// Where a scenario is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `Gcra` / `TokenBucket` and their operations.
    Cell,
    /// `Rule::decide` over a plain `CellState`.
    Rule,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cell => "cell (Gcra/TokenBucket)",
            Self::Rule => "rule (Rule::decide)",
        })
    }
}

/// Scenarios whose expected values are believed correct but which core currently fails on
/// the given replay: `(scenario name, replay, why)`. Each must still fail there (and pass on
/// every other replay); remove the entry once core is fixed.
const KNOWN_DISAGREEMENTS: &[(&str, Via, &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The format.

/// An unsigned 64-bit integer: a JSON number up to 2^53 - 1, or a string of decimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Int(u64);

/// A wait (`retry_after_ns`, `reset_after_ns`): as [`Int`], or `"never"` for `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wait(u64);

fn int_from_value(value: &Value, allow_never: bool) -> Result<u64, String> {
    match value {
        Value::Number(number) => match number.as_u64() {
            Some(n) if n <= MAX_JSON_NUMBER => Ok(n),
            Some(n) => Err(format!(
                "the JSON number {n} is above 2^53 - 1; write it as the string \"{n}\""
            )),
            None => Err(format!("{number} is not an unsigned 64-bit integer")),
        },
        Value::String(s) if allow_never && s == "never" => Ok(NEVER),
        Value::String(s) => {
            let canonical = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            if !canonical {
                return Err(format!(
                    "\"{s}\" is not a string of decimal digits without leading zeros{}",
                    if allow_never { " nor \"never\"" } else { "" }
                ));
            }
            s.parse::<u64>()
                .map_err(|_| format!("\"{s}\" does not fit in an unsigned 64-bit integer"))
        }
        other => Err(format!("expected an integer, found {other}")),
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        int_from_value(&value, false)
            .map(Int)
            .map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        int_from_value(&value, true)
            .map(Wait)
            .map_err(D::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    format: u64,
    #[serde(default)]
    #[allow(dead_code)] // documentation for readers
    description: Option<String>,
    scenarios: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    description: String,
    quota: QuotaSpec,
    algorithm: Algorithm,
    #[serde(default)]
    refill: Option<RefillSpec>,
    #[serde(default)]
    initial_tokens: Option<Int>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaSpec {
    rate: String,
    #[serde(default)]
    burst: Option<Int>,
    rate_cost: Int,
    period_ns: Int,
    burst_cost: Int,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Algorithm {
    Gcra,
    TokenBucket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RefillSpec {
    Greedy,
    Interval,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpSpec {
    Check,
    Peek,
    Force,
    Refund,
    Reset,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    now_ns: Int,
    op: OpSpec,
    #[serde(default)]
    cost: Option<Int>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    allowed: bool,
    limit: Int,
    remaining: Int,
    retry_after_ns: Wait,
    reset_after_ns: Wait,
}

impl Expect {
    fn decision(&self) -> Decision {
        Decision {
            allowed: self.allowed,
            limit: self.limit.0,
            remaining: self.remaining.0,
            retry_after_ns: self.retry_after_ns.0,
            reset_after_ns: self.reset_after_ns.0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: a scenario that breaks the format is an error in the vectors, not in core.

/// A scenario's limiter configuration, validated.
struct Setup {
    quota: Quota,
    algorithm: Algorithm,
    refill: Refill,
    initial_tokens: Option<u64>,
}

fn setup(scenario: &Scenario) -> Result<Setup, String> {
    let spec = &scenario.quota;
    // `rate` with `burst` is the rate string `"<rate> (burst <burst>)"`: the burst applies
    // to the parsed rate as a whole (a rate such as `18446744073709551615/ns` is only a valid
    // quota with a smaller burst than its count).
    let text = match spec.burst {
        Some(burst) => format!("{} (burst {})", spec.rate, burst.0),
        None => spec.rate.clone(),
    };
    let parsed =
        Quota::parse(&text).map_err(|error| format!("rate {text:?} does not parse: {error}"))?;
    let explicit = Quota::with_parts(spec.rate_cost.0, spec.period_ns.0, spec.burst_cost.0)
        .map_err(|error| format!("rate_cost/period_ns/burst_cost are invalid: {error}"))?;
    if parsed != explicit {
        return Err(format!(
            "rate {:?} (burst {:?}) parses to {parsed:?}, but the explicit integers say \
             {explicit:?}",
            spec.rate,
            spec.burst.map(|b| b.0)
        ));
    }
    if scenario.name.is_empty() || scenario.description.is_empty() {
        return Err("name and description must not be empty".into());
    }
    let refill = match (scenario.algorithm, scenario.refill) {
        (Algorithm::Gcra, Some(_)) => return Err("`refill` is for token_bucket only".into()),
        (Algorithm::Gcra, None) | (Algorithm::TokenBucket, None | Some(RefillSpec::Greedy)) => {
            Refill::Greedy
        }
        (Algorithm::TokenBucket, Some(RefillSpec::Interval)) => Refill::Interval,
    };
    let initial_tokens = scenario.initial_tokens.map(|tokens| tokens.0);
    match (scenario.algorithm, initial_tokens) {
        (Algorithm::Gcra, Some(_)) => {
            return Err("`initial_tokens` is for token_bucket only".into());
        }
        (_, Some(tokens)) if tokens > explicit.burst_cost() => {
            return Err(format!("initial_tokens {tokens} exceeds the burst"));
        }
        _ => {}
    }
    if scenario.steps.is_empty() {
        return Err("a scenario needs at least one step".into());
    }
    for (index, step) in scenario.steps.iter().enumerate() {
        match (step.op, step.cost, &step.expect) {
            (OpSpec::Reset, Some(_), _) => {
                return Err(format!("step {index}: `reset` takes no `cost`"));
            }
            (OpSpec::Reset, None, _) => {}
            (_, None, _) => return Err(format!("step {index}: `cost` is required")),
            (_, _, None) => return Err(format!("step {index}: `expect` is required")),
            _ => {}
        }
    }
    Ok(Setup {
        quota: explicit,
        algorithm: scenario.algorithm,
        refill,
        initial_tokens,
    })
}

// ---------------------------------------------------------------------------------------------
// The two replays.

enum Cell {
    Gcra(Gcra),
    Bucket(TokenBucket),
}

impl Cell {
    fn build(setup: &Setup, now_ns: u64) -> Self {
        match setup.algorithm {
            Algorithm::Gcra => Self::Gcra(Gcra::new(setup.quota)),
            Algorithm::TokenBucket => {
                let mut builder = TokenBucket::builder(setup.quota).refill(setup.refill);
                if let Some(tokens) = setup.initial_tokens {
                    builder = builder.initial_tokens(tokens);
                }
                Self::Bucket(builder.build_at(now_ns).expect("validated initial fill"))
            }
        }
    }

    fn apply(&self, op: OpSpec, now_ns: u64, cost: u64) -> Decision {
        macro_rules! on {
            ($cell:expr) => {
                match op {
                    OpSpec::Check => $cell.check_at(now_ns, cost),
                    OpSpec::Peek => $cell.peek_at(now_ns, cost),
                    OpSpec::Force => $cell.force_at(now_ns, cost),
                    OpSpec::Refund => $cell.refund_at(now_ns, cost),
                    OpSpec::Reset => {
                        // `reset()` returns nothing; a reset's expect (when given) describes
                        // the bucket right after it, which a cost-0 peek reads without
                        // changing anything.
                        $cell.reset();
                        $cell.peek_at(now_ns, 0)
                    }
                }
            };
        }
        match self {
            Self::Gcra(cell) => on!(cell),
            Self::Bucket(cell) => on!(cell),
        }
    }
}

struct RuleCell {
    rule: Rule,
    state: CellState,
}

impl RuleCell {
    fn build(setup: &Setup, now_ns: u64) -> Self {
        let rule = Rule::new(setup.quota, setup.refill);
        let state = match setup.initial_tokens {
            Some(tokens) => rule.state_with_tokens(tokens, now_ns),
            None => CellState::FULL,
        };
        Self { rule, state }
    }

    fn apply(&mut self, op: OpSpec, now_ns: u64, cost: u64) -> Decision {
        let op = match op {
            OpSpec::Check => Op::Check,
            OpSpec::Peek => Op::Peek,
            OpSpec::Force => Op::Force,
            OpSpec::Refund => Op::Refund,
            OpSpec::Reset => Op::Reset,
        };
        let outcome = self.rule.decide(self.state, now_ns, cost, op);
        if let Some(next) = outcome.next {
            self.state = next;
        }
        outcome.decision
    }
}

/// A replay's buckets, one per key (a step without `key` uses its own, unnamed key); a key's
/// bucket is built at the `now_ns` of the first step that uses it.
enum Replay {
    Cell(BTreeMap<Option<String>, Cell>),
    Rule(BTreeMap<Option<String>, RuleCell>),
}

impl Replay {
    fn new(path: Via) -> Self {
        match path {
            Via::Cell => Self::Cell(BTreeMap::new()),
            Via::Rule => Self::Rule(BTreeMap::new()),
        }
    }

    fn apply(&mut self, setup: &Setup, step: &Step) -> Decision {
        let now_ns = step.now_ns.0;
        let cost = step.cost.map_or(0, |cost| cost.0);
        let key = step.key.clone();
        match self {
            Self::Cell(cells) => cells
                .entry(key)
                .or_insert_with(|| Cell::build(setup, now_ns))
                .apply(step.op, now_ns, cost),
            Self::Rule(cells) => cells
                .entry(key)
                .or_insert_with(|| RuleCell::build(setup, now_ns))
                .apply(step.op, now_ns, cost),
        }
    }
}

fn wait(ns: u64) -> String {
    if ns == NEVER {
        "never".into()
    } else {
        ns.to_string()
    }
}

fn show(decision: &Decision) -> String {
    format!(
        "{{allowed: {}, limit: {}, remaining: {}, retry_after_ns: {}, reset_after_ns: {}}}",
        decision.allowed,
        decision.limit,
        decision.remaining,
        wait(decision.retry_after_ns),
        wait(decision.reset_after_ns)
    )
}

/// Replays `scenario` on `path`: the number of steps run, and the first mismatch.
fn replay(setup: &Setup, scenario: &Scenario, path: Via) -> (usize, Option<String>) {
    let mut replay = Replay::new(path);
    for (index, step) in scenario.steps.iter().enumerate() {
        let actual = replay.apply(setup, step);
        let Some(expect) = &step.expect else {
            continue;
        };
        let expected = expect.decision();
        if actual != expected {
            let key = step
                .key
                .as_ref()
                .map_or(String::new(), |key| format!(", key {key:?}"));
            let cost = step
                .cost
                .map_or(String::new(), |cost| format!(" cost {}", cost.0));
            return (
                index + 1,
                Some(format!(
                    "step {index} ({:?}{cost} at now_ns {}{key}) via {path}:\n      \
                     expected {}\n      actual   {}",
                    step.op,
                    step.now_ns.0,
                    show(&expected),
                    show(&actual)
                )),
            );
        }
    }
    (scenario.steps.len(), None)
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

#[test]
fn decision_vectors() {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.json vector files in {}",
        dir.display()
    );

    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut steps_run = 0usize;
    let mut scenarios_run = 0usize;
    let mut known_seen = BTreeSet::new();

    for file in &files {
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|error| panic!("{file_name}: cannot read: {error}"));
        let vectors: VectorFile = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{file_name}: not a valid vector file: {error}"));
        assert_eq!(
            vectors.format, FORMAT,
            "{file_name}: unsupported format version"
        );
        assert!(
            !vectors.scenarios.is_empty(),
            "{file_name}: a vector file needs at least one scenario"
        );
        for scenario in &vectors.scenarios {
            let name = &scenario.name;
            assert!(
                names.insert(name.clone()),
                "{file_name}: scenario {name:?}: the name is used twice (names are unique \
                 across all files)"
            );
            let setup = setup(scenario).unwrap_or_else(|error| {
                panic!("{file_name}: scenario {name:?}: invalid vector: {error}")
            });
            scenarios_run += 1;
            for path in [Via::Cell, Via::Rule] {
                let (ran, mismatch) = replay(&setup, scenario, path);
                steps_run += ran;
                let known = KNOWN_DISAGREEMENTS
                    .iter()
                    .find(|(known, known_path, _)| known == name && *known_path == path);
                match (mismatch, known) {
                    (None, None) => {}
                    (Some(mismatch), None) => {
                        failures.push(format!("{file_name}: scenario {name:?}: {mismatch}"));
                    }
                    (Some(mismatch), Some((_, _, why))) => {
                        known_seen.insert(name.clone());
                        notes.push(format!(
                            "{file_name}: scenario {name:?}: KNOWN CORE DISAGREEMENT, \
                             expected to fail: {why}\n    {mismatch}"
                        ));
                    }
                    (None, Some(_)) => {
                        known_seen.insert(name.clone());
                        failures.push(format!(
                            "{file_name}: scenario {name:?}: listed in KNOWN_DISAGREEMENTS \
                             for {path} but now passes; remove the entry"
                        ));
                    }
                }
            }
        }
    }

    for (known, _, _) in KNOWN_DISAGREEMENTS {
        if !known_seen.contains(*known) {
            failures.push(format!(
                "KNOWN_DISAGREEMENTS names {known:?}, which no vector file holds"
            ));
        }
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "replayed {scenarios_run} scenarios from {} files ({steps_run} steps over both replays)",
        files.len()
    );
    assert!(steps_run > 0, "no steps ran");
    assert!(
        failures.is_empty(),
        "{} decision vector failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn integer_encoding() {
    let int = |json: &str| serde_json::from_str::<Int>(json).map(|int| int.0);
    let wait = |json: &str| serde_json::from_str::<Wait>(json).map(|wait| wait.0);
    assert_eq!(int("0").unwrap(), 0);
    assert_eq!(int("9007199254740991").unwrap(), MAX_JSON_NUMBER);
    assert!(
        int("9007199254740992").is_err(),
        "above 2^53 - 1 must be a string"
    );
    assert_eq!(int("\"9007199254740992\"").unwrap(), 1 << 53);
    assert_eq!(int("\"18446744073709551615\"").unwrap(), u64::MAX);
    assert_eq!(int("\"42\"").unwrap(), 42);
    for bad in [
        "-1",
        "1.5",
        "1e3",
        "\"\"",
        "\"007\"",
        "\"+1\"",
        "\" 1\"",
        "\"18446744073709551616\"",
        "\"never\"",
        "null",
        "true",
    ] {
        assert!(int(bad).is_err(), "{bad} must be rejected");
    }
    assert_eq!(wait("\"never\"").unwrap(), NEVER);
    assert_eq!(wait("\"18446744073709551615\"").unwrap(), NEVER);
    assert_eq!(wait("5").unwrap(), 5);
    assert!(wait("\"Never\"").is_err());
}
