//! Replays the shared decision vectors in `testdata/vectors/*.json` (the format is documented in
//! `testdata/README.md`).
//!
//! Every scenario is replayed several times, and every replay must produce exactly the
//! expected decisions:
//!
//! * single-limiter scenarios (`quota` + `algorithm`):
//!   * through the cells (`Gcra`, `TokenBucket` and their `_at` operations, `reset()`), one per
//!     key, which is what the C, Python and Node bindings wrap;
//!   * through the pure decision function (`Rule::decide` over a plain `CellState`), one state
//!     per key, which is what a runtime keeping its state elsewhere (shared memory, a remote
//!     store) runs;
//!   * for `"keyed": true` scenarios, also through one `KeyedLimiter` holding every key;
//! * policy scenarios (`policy`):
//!   * through `Policy`, one per key (or one for the scenario when no step names a key);
//!   * through one `KeyedPolicy` holding every key (a fixed key when no step names one).
//!
//! Scenarios on which core is believed to be wrong are listed in [`KNOWN_DISAGREEMENTS`]: they
//! keep the correct expected values, and this test requires them to still fail on the listed
//! replay (a strict expected failure), so that fixing core makes the test ask for the entry
//! to be removed.

use cellgate::{
    CellState, Decision, Gcra, KeyedLimiter, KeyedPolicy, NoClock, Op, Policy, PolicyDecision,
    PolicyEntry, PolicyError, Quota, Refill, Reservation, Rule, Seed, SlotGroup, TokenBucket,
    MAX_POLICY_QUOTAS, NEVER, PROBE_WINDOW,
};
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

/// `max_keys` when a scenario replayed through a keyed table does not give it.
const DEFAULT_MAX_KEYS: u64 = 1024;

/// The largest `max_keys` a vector may ask for (the table is allocated up front).
const MAX_MAX_KEYS: u64 = 1 << 20;

/// The latest `now_ns` a scenario replayed through a keyed table may use: the tables clamp
/// times to `u64::MAX - 1` (a state with `last_ns == u64::MAX` marks a slot changing owner).
const MAX_TABLE_NOW_NS: u64 = u64::MAX - 1;

/// The most distinct keys a scenario replayed through a keyed table may use: `PROBE_WINDOW`.
/// Every table has at least that many slots, so with no more keys a new key always finds room
/// in its window, whatever the seed and `max_keys` (see `testdata/README.md`, "Keyed tables").
const MAX_SCENARIO_KEYS: usize = 16;

/// The seed of every keyed table. With at most `MAX_SCENARIO_KEYS` distinct keys in a scenario
/// no decision depends on it.
const SEED: Seed = Seed::new(1, 2);

/// The key the `KeyedPolicy` replay uses for a policy scenario whose steps name no key.
const FIXED_POLICY_KEY: &[u8] = b"cellgate-vectors";

/// Where a scenario is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    /// `Gcra` / `TokenBucket` and their operations, one per key.
    Cell,
    /// `Rule::decide` over a plain `CellState`, one per key.
    Rule,
    /// One `KeyedLimiter` for every key (`"keyed": true` scenarios).
    Keyed,
    /// `Policy`, one per key.
    Policy,
    /// One `KeyedPolicy` for every key.
    KeyedPolicy,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cell => "cell (Gcra/TokenBucket)",
            Self::Rule => "rule (Rule::decide)",
            Self::Keyed => "keyed (KeyedLimiter)",
            Self::Policy => "policy (Policy)",
            Self::KeyedPolicy => "keyed policy (KeyedPolicy)",
        })
    }
}

/// Scenarios whose expected values are believed correct but which core currently fails on
/// the given replay: `(scenario name, replay, step, why)`. Each must still fail there, first at
/// exactly that step (so every earlier step is still checked), and pass on every other replay;
/// remove the entry once core is fixed.
const KNOWN_DISAGREEMENTS: &[(&str, Via, usize, &str)] = &[];

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
    #[serde(default)]
    quota: Option<QuotaSpec>,
    #[serde(default)]
    algorithm: Option<Algorithm>,
    #[serde(default)]
    refill: Option<RefillSpec>,
    #[serde(default)]
    initial_tokens: Option<Int>,
    #[serde(default)]
    keyed: Option<bool>,
    #[serde(default)]
    max_keys: Option<Int>,
    #[serde(default)]
    policy: Option<Vec<EntrySpec>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    name: String,
    quota: QuotaSpec,
    dimension: Int,
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
    Reserve,
    Settle,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    now_ns: Int,
    op: OpSpec,
    #[serde(default)]
    cost: Option<Int>,
    #[serde(default)]
    costs: Option<Vec<Int>>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_hex: Option<String>,
    #[serde(default)]
    reservation: Option<String>,
    /// A decision (single-limiter scenarios) or a policy decision (policy scenarios); parsed
    /// once the scenario's kind is known.
    #[serde(default)]
    expect: Option<Value>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyExpect {
    allowed: bool,
    binding: Int,
    decisions: Vec<Expect>,
}

// ---------------------------------------------------------------------------------------------
// Validation: a scenario that breaks the format is an error in the vectors, not in core.

/// What a step returns (or is expected to return): one decision, or a policy's.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shown {
    One(Decision),
    Policy(PolicyShown),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PolicyShown {
    allowed: bool,
    binding: usize,
    decisions: Vec<Decision>,
}

impl From<PolicyDecision> for PolicyShown {
    fn from(decision: PolicyDecision) -> Self {
        Self {
            allowed: decision.allowed,
            binding: decision.binding,
            decisions: decision.decisions().to_vec(),
        }
    }
}

/// A step, validated.
struct Checked {
    now_ns: u64,
    op: OpSpec,
    /// The cost (single-limiter scenarios; 0 for a reset).
    cost: u64,
    /// One cost per dimension (policy scenarios; all 0 for a reset).
    costs: Vec<u64>,
    /// The key's bytes, if the step names one.
    key: Option<Vec<u8>>,
    reservation: Option<String>,
    expect: Option<Shown>,
}

/// A single-limiter scenario's configuration, validated.
struct Setup {
    quota: Quota,
    algorithm: Algorithm,
    refill: Refill,
    initial_tokens: Option<u64>,
    /// `Some(max_keys)` for `"keyed": true` scenarios.
    keyed: Option<usize>,
}

/// A policy scenario's configuration, validated.
struct PolicySetup {
    entries: Vec<PolicyEntry<String>>,
    /// Whether the steps name keys.
    keys: bool,
    max_keys: usize,
}

enum Kind {
    Single(Setup),
    Policy(PolicySetup),
}

/// A scenario, validated.
struct Prepared {
    kind: Kind,
    steps: Vec<Checked>,
}

impl Prepared {
    /// The replays this scenario runs on.
    fn vias(&self) -> &'static [Via] {
        match &self.kind {
            Kind::Single(Setup { keyed: None, .. }) => &[Via::Cell, Via::Rule],
            Kind::Single(Setup { keyed: Some(_), .. }) => &[Via::Cell, Via::Rule, Via::Keyed],
            Kind::Policy(_) => &[Via::Policy, Via::KeyedPolicy],
        }
    }
}

fn quota_from_spec(spec: &QuotaSpec) -> Result<Quota, String> {
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
    Ok(explicit)
}

/// Lowercase hexadecimal, two digits per byte; the empty string is the empty key.
fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        _ => Err(format!(
            "key_hex {hex:?}: only lowercase hexadecimal digits, two per byte"
        )),
    };
    let bytes = hex.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(format!("key_hex {hex:?} has an odd number of digits"));
    }
    bytes
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
        _ => format!(
            "hex {:?}",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

fn step_key(index: usize, step: &Step) -> Result<Option<Vec<u8>>, String> {
    match (&step.key, &step.key_hex) {
        (Some(_), Some(_)) => Err(format!("step {index}: give `key` or `key_hex`, not both")),
        (Some(key), None) => Ok(Some(key.as_bytes().to_vec())),
        (None, Some(hex)) => decode_hex(hex)
            .map(Some)
            .map_err(|error| format!("step {index}: {error}")),
        (None, None) => Ok(None),
    }
}

/// Rules for scenarios replayed through a keyed table (see `testdata/README.md`): time never
/// goes backwards (unless one fixed key is the only key), stays below `u64::MAX`, and at most
/// [`MAX_SCENARIO_KEYS`] distinct keys are used, so that no decision depends on the seed, on
/// `max_keys` or on which idle slots are reclaimed.
fn check_table_rules(steps: &[Checked], backwards_ok: bool) -> Result<(), String> {
    let mut latest = 0;
    let mut keys = BTreeSet::new();
    for (index, step) in steps.iter().enumerate() {
        if step.now_ns > MAX_TABLE_NOW_NS {
            return Err(format!(
                "step {index}: now_ns must be at most u64::MAX - 1 in a scenario replayed \
                 through a keyed table"
            ));
        }
        if !backwards_ok && step.now_ns < latest {
            return Err(format!(
                "step {index}: now_ns goes backwards, which a keyed scenario must not do"
            ));
        }
        latest = latest.max(step.now_ns);
        keys.insert(step.key.clone());
    }
    if keys.len() > MAX_SCENARIO_KEYS {
        return Err(format!(
            "{} distinct keys: at most {MAX_SCENARIO_KEYS} (PROBE_WINDOW), so that no new key \
             can find its window full whatever the seed",
            keys.len()
        ));
    }
    Ok(())
}

fn max_keys(scenario: &Scenario) -> Result<usize, String> {
    let max_keys = scenario.max_keys.map_or(DEFAULT_MAX_KEYS, |n| n.0);
    if max_keys == 0 || max_keys > MAX_MAX_KEYS {
        return Err(format!("max_keys must be 1 to {MAX_MAX_KEYS}"));
    }
    usize::try_from(max_keys).map_err(|_| "max_keys does not fit usize".into())
}

fn parse_expect<T: for<'de> Deserialize<'de>>(index: usize, value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone())
        .map_err(|error| format!("step {index}: invalid expect: {error}"))
}

fn prepare(scenario: &Scenario) -> Result<Prepared, String> {
    if scenario.name.is_empty() || scenario.description.is_empty() {
        return Err("name and description must not be empty".into());
    }
    if scenario.steps.is_empty() {
        return Err("a scenario needs at least one step".into());
    }
    match &scenario.policy {
        Some(entries) => prepare_policy(scenario, entries),
        None => prepare_single(scenario),
    }
}

fn prepare_single(scenario: &Scenario) -> Result<Prepared, String> {
    let (Some(spec), Some(algorithm)) = (&scenario.quota, scenario.algorithm) else {
        return Err("`quota` and `algorithm` are required (or `policy`)".into());
    };
    let quota = quota_from_spec(spec)?;
    let refill = match (algorithm, scenario.refill) {
        (Algorithm::Gcra, Some(_)) => return Err("`refill` is for token_bucket only".into()),
        (Algorithm::Gcra, None) | (Algorithm::TokenBucket, None | Some(RefillSpec::Greedy)) => {
            Refill::Greedy
        }
        (Algorithm::TokenBucket, Some(RefillSpec::Interval)) => Refill::Interval,
    };
    let initial_tokens = scenario.initial_tokens.map(|tokens| tokens.0);
    match (algorithm, initial_tokens) {
        (Algorithm::Gcra, Some(_)) => {
            return Err("`initial_tokens` is for token_bucket only".into());
        }
        (_, Some(tokens)) if tokens > quota.burst_cost() => {
            return Err(format!("initial_tokens {tokens} exceeds the burst"));
        }
        _ => {}
    }
    let keyed = scenario.keyed.unwrap_or(false);
    if keyed && initial_tokens.is_some() {
        return Err("a keyed scenario starts every key full: no `initial_tokens`".into());
    }
    if !keyed && scenario.max_keys.is_some() {
        return Err("`max_keys` is for keyed scenarios only".into());
    }
    let mut steps = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        if step.costs.is_some() || step.reservation.is_some() {
            return Err(format!(
                "step {index}: `costs` and `reservation` are for policy scenarios"
            ));
        }
        let cost = match (step.op, step.cost) {
            (OpSpec::Reserve | OpSpec::Settle, _) => {
                return Err(format!(
                    "step {index}: reserve/settle are for policy scenarios"
                ));
            }
            (OpSpec::Reset, Some(_)) => {
                return Err(format!("step {index}: `reset` takes no `cost`"));
            }
            (OpSpec::Reset, None) => 0,
            (_, None) => return Err(format!("step {index}: `cost` is required")),
            (_, Some(cost)) => cost.0,
        };
        let expect = match (&step.expect, step.op) {
            (None, OpSpec::Reset) => None,
            (None, _) => return Err(format!("step {index}: `expect` is required")),
            (Some(value), _) => Some(Shown::One(parse_expect::<Expect>(index, value)?.decision())),
        };
        let key = step_key(index, step)?;
        if keyed && key.is_none() {
            return Err(format!(
                "step {index}: every step of a keyed scenario names `key` or `key_hex`"
            ));
        }
        steps.push(Checked {
            now_ns: step.now_ns.0,
            op: step.op,
            cost,
            costs: Vec::new(),
            key,
            reservation: None,
            expect,
        });
    }
    let keyed = if keyed {
        let max_keys = max_keys(scenario)?;
        check_table_rules(&steps, false)?;
        Some(max_keys)
    } else {
        None
    };
    Ok(Prepared {
        kind: Kind::Single(Setup {
            quota,
            algorithm,
            refill,
            initial_tokens,
            keyed,
        }),
        steps,
    })
}

fn prepare_policy(scenario: &Scenario, specs: &[EntrySpec]) -> Result<Prepared, String> {
    if scenario.quota.is_some()
        || scenario.algorithm.is_some()
        || scenario.refill.is_some()
        || scenario.initial_tokens.is_some()
        || scenario.keyed.is_some()
    {
        return Err(
            "a policy scenario has no `quota`, `algorithm`, `refill`, `initial_tokens` or \
             `keyed`"
                .into(),
        );
    }
    if specs.is_empty() || specs.len() > MAX_POLICY_QUOTAS {
        return Err(format!("`policy` needs 1 to {MAX_POLICY_QUOTAS} entries"));
    }
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (index, spec) in specs.iter().enumerate() {
        let quota =
            quota_from_spec(&spec.quota).map_err(|error| format!("entry {index}: {error}"))?;
        if spec.name.is_empty() || !names.insert(spec.name.clone()) {
            return Err(format!(
                "entry {index}: names must be non-empty and distinct"
            ));
        }
        let dimension = usize::try_from(spec.dimension.0)
            .ok()
            .filter(|dimension| *dimension < MAX_POLICY_QUOTAS)
            .ok_or_else(|| format!("entry {index}: dimension out of range"))?;
        used.insert(dimension);
        entries.push(PolicyEntry {
            name: spec.name.clone(),
            quota,
            dimension,
        });
    }
    let dimensions = used.len();
    if used.iter().copied().ne(0..dimensions) {
        return Err("the entries' dimensions must be 0, 1, … with none skipped".into());
    }

    let mut steps = Vec::new();
    // Reservations stored by admitted reserves and not yet settled: id -> key.
    let mut open: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        if step.cost.is_some() {
            return Err(format!(
                "step {index}: a policy step gives `costs` (one per dimension), not `cost`"
            ));
        }
        let costs = match (step.op, &step.costs) {
            (OpSpec::Reset, Some(_)) => {
                return Err(format!("step {index}: `reset` takes no `costs`"));
            }
            (OpSpec::Reset, None) => vec![0; dimensions],
            (_, None) => return Err(format!("step {index}: `costs` is required")),
            (_, Some(costs)) if costs.len() != dimensions => {
                return Err(format!(
                    "step {index}: {} costs for {dimensions} dimensions",
                    costs.len()
                ));
            }
            (_, Some(costs)) => costs.iter().map(|cost| cost.0).collect(),
        };
        let expect = match (&step.expect, step.op) {
            (None, OpSpec::Reset) => None,
            (None, _) => return Err(format!("step {index}: `expect` is required")),
            (Some(value), _) => {
                let expect = parse_expect::<PolicyExpect>(index, value)?;
                if expect.decisions.len() != entries.len() {
                    return Err(format!(
                        "step {index}: {} decisions for {} entries",
                        expect.decisions.len(),
                        entries.len()
                    ));
                }
                let binding = usize::try_from(expect.binding.0)
                    .ok()
                    .filter(|binding| *binding < entries.len())
                    .ok_or_else(|| format!("step {index}: binding is not an entry's index"))?;
                Some(Shown::Policy(PolicyShown {
                    allowed: expect.allowed,
                    binding,
                    decisions: expect.decisions.iter().map(Expect::decision).collect(),
                }))
            }
        };
        let key = step_key(index, step)?;
        match (step.op, &step.reservation) {
            (OpSpec::Reserve, Some(id)) => {
                if open.contains_key(id) {
                    return Err(format!(
                        "step {index}: reservation {id:?} is still open (settle it first)"
                    ));
                }
                let admitted = matches!(&expect, Some(Shown::Policy(shown)) if shown.allowed);
                if admitted {
                    open.insert(id.clone(), key.clone());
                }
            }
            (OpSpec::Settle, Some(id)) => match open.remove(id) {
                Some(reserved_for) if reserved_for == key => {}
                Some(_) => {
                    return Err(format!(
                        "step {index}: settle names another key than reservation {id:?}"
                    ));
                }
                None => {
                    return Err(format!(
                        "step {index}: no open reservation {id:?} (never admitted, or settled)"
                    ));
                }
            },
            (OpSpec::Reserve | OpSpec::Settle, None) => {
                return Err(format!("step {index}: `reservation` (an id) is required"));
            }
            (_, Some(_)) => {
                return Err(format!(
                    "step {index}: `reservation` is for reserve and settle only"
                ));
            }
            (_, None) => {}
        }
        steps.push(Checked {
            now_ns: step.now_ns.0,
            op: step.op,
            cost: 0,
            costs,
            key,
            reservation: step.reservation.clone(),
            expect,
        });
    }
    let keyed_steps = steps.iter().filter(|step| step.key.is_some()).count();
    let keys = keyed_steps > 0;
    if keys && keyed_steps != steps.len() {
        return Err("if one step names a key, every step must".into());
    }
    let max_keys = max_keys(scenario)?;
    // Without keys the KeyedPolicy replay uses one fixed key: nothing can reclaim its slots,
    // so time may go backwards.
    check_table_rules(&steps, !keys)?;
    Ok(Prepared {
        kind: Kind::Policy(PolicySetup {
            entries,
            keys,
            max_keys,
        }),
        steps,
    })
}

// ---------------------------------------------------------------------------------------------
// The replays.

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
                    OpSpec::Reserve | OpSpec::Settle => unreachable!("validated"),
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
            OpSpec::Reserve | OpSpec::Settle => unreachable!("validated"),
        };
        let outcome = self.rule.decide(self.state, now_ns, cost, op);
        if let Some(next) = outcome.next {
            self.state = next;
        }
        outcome.decision
    }
}

type Key = Option<Vec<u8>>;

/// An admitted reservation, and the key it was made for.
type Reservations = BTreeMap<String, (Key, Reservation)>;

/// A replay's limiters. Per-key maps build a key's limiter at the `now_ns` of the first step
/// that uses it (a step without `key` uses its own, unnamed key).
enum Replay {
    Cell(BTreeMap<Key, Cell>),
    Rule(BTreeMap<Key, RuleCell>),
    Keyed(KeyedLimiter<Box<[SlotGroup]>, NoClock>),
    Policy(BTreeMap<Key, Policy<String>>, Reservations),
    KeyedPolicy(Box<KeyedPolicy<String>>, Reservations),
}

/// Key `key`'s policy, built on first use.
fn policy_for<'a>(
    policies: &'a mut BTreeMap<Key, Policy<String>>,
    setup: &PolicySetup,
    key: Key,
) -> &'a Policy<String> {
    policies
        .entry(key)
        .or_insert_with(|| Policy::new(setup.entries.clone()).expect("validated entries"))
}

fn table_full(what: &str) -> String {
    format!("{what} returned TableFull")
}

fn policy_error(error: PolicyError) -> String {
    format!("returned the error {error:?} ({error})")
}

impl Replay {
    fn new(prepared: &Prepared, via: Via) -> Self {
        match (&prepared.kind, via) {
            (Kind::Single(_), Via::Cell) => Self::Cell(BTreeMap::new()),
            (Kind::Single(_), Via::Rule) => Self::Rule(BTreeMap::new()),
            (Kind::Single(setup), Via::Keyed) => Self::Keyed(KeyedLimiter::with_options(
                setup.quota,
                setup.refill,
                setup.keyed.expect("a keyed scenario"),
                SEED,
                NoClock,
            )),
            (Kind::Policy(_), Via::Policy) => Self::Policy(BTreeMap::new(), BTreeMap::new()),
            (Kind::Policy(setup), Via::KeyedPolicy) => Self::KeyedPolicy(
                Box::new(
                    KeyedPolicy::new(setup.entries.clone(), setup.max_keys, SEED)
                        .expect("validated entries"),
                ),
                BTreeMap::new(),
            ),
            _ => unreachable!("Prepared::vias"),
        }
    }

    /// Runs `step`: what it returned, or why it returned nothing comparable.
    fn apply(&mut self, prepared: &Prepared, step: &Checked) -> Result<Shown, String> {
        let now_ns = step.now_ns;
        let cost = step.cost;
        let key = step.key.clone();
        match (self, &prepared.kind) {
            (Self::Cell(cells), Kind::Single(setup)) => Ok(Shown::One(
                cells
                    .entry(key)
                    .or_insert_with(|| Cell::build(setup, now_ns))
                    .apply(step.op, now_ns, cost),
            )),
            (Self::Rule(cells), Kind::Single(setup)) => Ok(Shown::One(
                cells
                    .entry(key)
                    .or_insert_with(|| RuleCell::build(setup, now_ns))
                    .apply(step.op, now_ns, cost),
            )),
            (Self::Keyed(limiter), Kind::Single(_)) => {
                let key = key.expect("validated: keyed steps name a key");
                let decision = match step.op {
                    OpSpec::Check => limiter
                        .check_at(&key, now_ns, cost)
                        .map_err(|_| table_full("check_at"))?,
                    OpSpec::Peek => limiter.peek_at(&key, now_ns, cost),
                    OpSpec::Force => limiter
                        .force_at(&key, now_ns, cost)
                        .map_err(|_| table_full("force_at"))?,
                    OpSpec::Refund => limiter.refund_at(&key, now_ns, cost),
                    OpSpec::Reset => {
                        // As for the cells: the bucket right after the reset.
                        limiter.reset_at(&key, now_ns);
                        limiter.peek_at(&key, now_ns, 0)
                    }
                    OpSpec::Reserve | OpSpec::Settle => unreachable!("validated"),
                };
                Ok(Shown::One(decision))
            }
            (Self::Policy(policies, reservations), Kind::Policy(setup)) => {
                let costs = &step.costs;
                let decision = match step.op {
                    OpSpec::Check => policy_for(policies, setup, key).check_at(now_ns, costs),
                    OpSpec::Peek => policy_for(policies, setup, key).peek_at(now_ns, costs),
                    OpSpec::Force => policy_for(policies, setup, key).force_at(now_ns, costs),
                    OpSpec::Refund => policy_for(policies, setup, key).refund_at(now_ns, costs),
                    OpSpec::Reset => {
                        // `Policy::reset()` takes no time: each bucket keeps the latest time
                        // it has seen. Its expect is what a peek of cost 0 then reads.
                        let policy = policy_for(policies, setup, key);
                        policy.reset();
                        policy.peek_at(now_ns, costs)
                    }
                    OpSpec::Reserve => {
                        let reserved = policy_for(policies, setup, key.clone())
                            .reserve_at(now_ns, costs)
                            .map_err(policy_error)?;
                        if let Some(reservation) = reserved.reservation {
                            let id = step.reservation.clone().expect("validated");
                            reservations.insert(id, (key, reservation));
                        }
                        Ok(reserved.decision)
                    }
                    OpSpec::Settle => {
                        let id = step.reservation.as_ref().expect("validated");
                        let Some((reserved_for, reservation)) = reservations.remove(id) else {
                            return Err(format!("no reservation {id:?} is held"));
                        };
                        policy_for(policies, setup, reserved_for).settle_at(
                            now_ns,
                            reservation,
                            costs,
                        )
                    }
                };
                decision
                    .map(|decision| Shown::Policy(decision.into()))
                    .map_err(policy_error)
            }
            (Self::KeyedPolicy(policy, reservations), Kind::Policy(setup)) => {
                let costs = &step.costs;
                let key = if setup.keys {
                    key.expect("validated: every step names a key")
                } else {
                    FIXED_POLICY_KEY.to_vec()
                };
                let decision = match step.op {
                    OpSpec::Check => policy.check_at(&key, now_ns, costs),
                    OpSpec::Peek => policy.peek_at(&key, now_ns, costs),
                    OpSpec::Force => policy.force_at(&key, now_ns, costs),
                    OpSpec::Refund => policy.refund_at(&key, now_ns, costs),
                    OpSpec::Reset => {
                        policy.reset_at(&key, now_ns);
                        policy.peek_at(&key, now_ns, costs)
                    }
                    OpSpec::Reserve => {
                        let reserved = policy
                            .reserve_at(&key, now_ns, costs)
                            .map_err(policy_error)?;
                        if let Some(reservation) = reserved.reservation {
                            let id = step.reservation.clone().expect("validated");
                            reservations.insert(id, (Some(key), reservation));
                        }
                        Ok(reserved.decision)
                    }
                    OpSpec::Settle => {
                        let id = step.reservation.as_ref().expect("validated");
                        let Some((_, reservation)) = reservations.remove(id) else {
                            return Err(format!("no reservation {id:?} is held"));
                        };
                        policy.settle_at(now_ns, reservation, costs)
                    }
                };
                decision
                    .map(|decision| Shown::Policy(decision.into()))
                    .map_err(policy_error)
            }
            _ => unreachable!("Replay::new"),
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

fn show_decision(decision: &Decision) -> String {
    format!(
        "{{allowed: {}, limit: {}, remaining: {}, retry_after_ns: {}, reset_after_ns: {}}}",
        decision.allowed,
        decision.limit,
        decision.remaining,
        wait(decision.retry_after_ns),
        wait(decision.reset_after_ns)
    )
}

fn show(shown: &Shown) -> String {
    match shown {
        Shown::One(decision) => show_decision(decision),
        Shown::Policy(policy) => {
            let mut text = format!(
                "{{allowed: {}, binding: {}, decisions:",
                policy.allowed, policy.binding
            );
            for (index, decision) in policy.decisions.iter().enumerate() {
                text.push_str(&format!("\n        [{index}] {}", show_decision(decision)));
            }
            text.push('}');
            text
        }
    }
}

/// Replays the scenario on `via`: the number of steps run, and the first mismatch (its step
/// index and description).
fn replay(prepared: &Prepared, via: Via) -> (usize, Option<(usize, String)>) {
    let mut replay = Replay::new(prepared, via);
    for (index, step) in prepared.steps.iter().enumerate() {
        let actual = replay.apply(prepared, step);
        let expected = step.expect.as_ref();
        let mismatch = match (&actual, expected) {
            (Ok(_), None) => continue,
            (Ok(actual), Some(expected)) if actual == expected => continue,
            (Ok(actual), Some(expected)) => format!(
                "expected {}\n      actual   {}",
                show(expected),
                show(actual)
            ),
            (Err(error), _) => error.clone(),
        };
        let key = step
            .key
            .as_ref()
            .map_or(String::new(), |key| format!(", key {}", show_key(key)));
        let cost = match &prepared.kind {
            Kind::Single(_) if step.op == OpSpec::Reset => String::new(),
            Kind::Single(_) => format!(" cost {}", step.cost),
            Kind::Policy(_) => format!(" costs {:?}", step.costs),
        };
        let reservation = step
            .reservation
            .as_ref()
            .map_or(String::new(), |id| format!(", reservation {id:?}"));
        return (
            index + 1,
            Some((
                index,
                format!(
                    "step {index} ({:?}{cost} at now_ns {}{key}{reservation}) via {via}:\n      \
                     {mismatch}",
                    step.op, step.now_ns,
                ),
            )),
        );
    }
    (prepared.steps.len(), None)
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

#[test]
fn decision_vectors() {
    assert_eq!(
        MAX_SCENARIO_KEYS, PROBE_WINDOW,
        "the vectors' key limit is the keyed table's probe window"
    );
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
    let mut replays_run: BTreeMap<Via, usize> = BTreeMap::new();
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
            let prepared = prepare(scenario).unwrap_or_else(|error| {
                panic!("{file_name}: scenario {name:?}: invalid vector: {error}")
            });
            scenarios_run += 1;
            for &via in prepared.vias() {
                let (ran, mismatch) = replay(&prepared, via);
                steps_run += ran;
                *replays_run.entry(via).or_default() += 1;
                let known = KNOWN_DISAGREEMENTS
                    .iter()
                    .find(|(known, known_via, _, _)| known == name && *known_via == via);
                if known.is_some() {
                    known_seen.insert((name.clone(), via));
                }
                match (mismatch, known) {
                    (None, None) => {}
                    (Some((_, mismatch)), None) => {
                        failures.push(format!("{file_name}: scenario {name:?}: {mismatch}"));
                    }
                    (Some((step, mismatch)), Some((_, _, known_step, why)))
                        if step == *known_step =>
                    {
                        notes.push(format!(
                            "{file_name}: scenario {name:?}: KNOWN CORE DISAGREEMENT, \
                             expected to fail at step {step}: {why}\n    {mismatch}"
                        ));
                    }
                    (Some((_, mismatch)), Some((_, _, known_step, _))) => {
                        failures.push(format!(
                            "{file_name}: scenario {name:?}: listed in KNOWN_DISAGREEMENTS \
                             as failing first at step {known_step} on {via}, but: {mismatch}"
                        ));
                    }
                    (None, Some(_)) => {
                        failures.push(format!(
                            "{file_name}: scenario {name:?}: listed in KNOWN_DISAGREEMENTS \
                             for {via} but now passes; remove the entry"
                        ));
                    }
                }
            }
        }
    }

    for (known, via, _, _) in KNOWN_DISAGREEMENTS {
        if !known_seen.contains(&(known.to_string(), *via)) {
            failures.push(format!(
                "KNOWN_DISAGREEMENTS names {known:?} on {via}, but no vector file holds that \
                 scenario or it is not replayed there"
            ));
        }
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "replayed {scenarios_run} scenarios from {} files ({steps_run} steps over all replays; \
         replays per path: {replays_run:?})",
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

#[test]
fn key_hex_decoding() {
    assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    assert_eq!(decode_hex("00").unwrap(), vec![0]);
    assert_eq!(decode_hex("6100ff").unwrap(), vec![b'a', 0, 0xff]);
    for bad in ["0", "6G", "FF", "0x00", " 00"] {
        assert!(decode_hex(bad).is_err(), "{bad:?} must be rejected");
    }
}
