//! [`NativePolicy`]: several quotas over named dimensions, decided all-or-nothing per key,
//! with reserve and settle, over core's [`KeyedPolicy`].

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use cellgate::{
    resolve_costs, resolve_settle_costs, Clock, ConfigError, KeyedPolicy, PolicyDecision,
    PolicyEntry, PolicyError, Quota, Reservation, Seed, MAX_POLICY_QUOTAS,
};
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use napi_derive::napi;

use crate::clock::{NativeManualClock, NodeClock};
use crate::error::range_error;
use crate::fast::{FastError, FastFunctions, FastOp, FastTarget};
use crate::headers::{header_style, render};
use crate::key::Key;
use crate::limiter;
use crate::shared::{
    InvalidCost, Shared, ALLOWED, BINDING, COUNT, DENIED, MISSING_COST, STATUS, TABLE_FULL,
};

/// One entry as JavaScript describes it (validated there first).
#[napi(object)]
pub struct EntrySpec {
    /// The name headers show (printable ASCII).
    pub name: String,
    /// One rate string, such as `"10/second"`.
    pub rate: String,
    /// The burst, or the rate's count when absent.
    pub burst: Option<f64>,
    /// The dimension (index into the costs) this entry is charged.
    pub dimension: u32,
}

/// Tells policies apart, so that a reservation is settled only by the policy that made it.
static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// One cost per dimension.
#[derive(Clone, Copy)]
struct Costs {
    values: [u64; MAX_POLICY_QUOTAS],
    len: usize,
}

/// Why the costs in the shared array could not be completed.
enum CostsError {
    /// A slot held neither a cost nor `COST_NOT_GIVEN`.
    Invalid(InvalidCost),
    /// Core's rule needs a cost for this dimension.
    Missing(usize),
}

impl core::ops::Deref for Costs {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        self.values.get(..self.len).unwrap_or_default()
    }
}

/// The state behind a [`NativePolicy`] and its fast functions.
pub struct PolicyInner {
    policy: KeyedPolicy<String, NodeClock>,
    shared: Shared,
    names: Vec<String>,
    quotas: Vec<Quota>,
}

impl FastTarget for PolicyInner {
    #[inline]
    fn run(&self, op: FastOp, key: &[u8]) -> core::result::Result<(), FastError> {
        let costs = match self.costs() {
            Ok(costs) => costs,
            Err(CostsError::Missing(dimension)) => {
                self.missing_cost(dimension);
                return Ok(());
            }
            Err(CostsError::Invalid(_)) => {
                return Err(FastError(
                    "every cost must be an integer from 0 to 2^53 - 1",
                ))
            }
        };
        let now_ns = self.policy.clock().now_ns();
        let decision = match op {
            FastOp::Check => self.policy.check_at(key, now_ns, &costs),
            FastOp::Peek => self.policy.peek_at(key, now_ns, &costs),
            FastOp::Force => self.policy.force_at(key, now_ns, &costs),
            FastOp::Refund => self.policy.refund_at(key, now_ns, &costs),
        };
        let status = self
            .written(decision)
            .map_err(|_| FastError("the costs do not match the policy's dimensions"))?;
        self.shared.set(STATUS, f64::from(status));
        Ok(())
    }
}

impl PolicyInner {
    /// The costs JavaScript wrote into the shared array, one per dimension, `None` where its
    /// caller named none (no allocation).
    fn given(
        &self,
    ) -> core::result::Result<([Option<u64>; MAX_POLICY_QUOTAS], usize), InvalidCost> {
        let len = self.policy.dimensions().min(MAX_POLICY_QUOTAS);
        let mut given = [None; MAX_POLICY_QUOTAS];
        for (dimension, slot) in given.iter_mut().enumerate().take(len) {
            *slot = self.shared.given_cost(dimension)?;
        }
        Ok((given, len))
    }

    /// The costs of a call, completed by core's rule ([`resolve_costs`]): one dimension costs
    /// `DEFAULT_COST` when none is named; several need every one named.
    fn costs(&self) -> core::result::Result<Costs, CostsError> {
        let (given, len) = self.given().map_err(CostsError::Invalid)?;
        let mut costs = Costs {
            values: [0; MAX_POLICY_QUOTAS],
            len,
        };
        let given = given.get(..len).unwrap_or_default();
        let out = costs.values.get_mut(..len).unwrap_or_default();
        match resolve_costs(given, out) {
            Ok(()) => Ok(costs),
            Err(ConfigError::MissingCost { dimension }) => Err(CostsError::Missing(dimension)),
            // The lengths agree by construction; a policy has at least one dimension.
            Err(_) => Err(CostsError::Missing(0)),
        }
    }

    /// The actual costs of a settle, completed by core's rule ([`resolve_settle_costs`]): a
    /// dimension not named keeps its estimate.
    fn settle_costs(&self, estimate: &Costs) -> Result<Costs> {
        let (given, len) = self.given().map_err(InvalidCost::to_napi)?;
        let mut costs = Costs {
            values: [0; MAX_POLICY_QUOTAS],
            len,
        };
        let given = given.get(..len).unwrap_or_default();
        let out = costs.values.get_mut(..len).unwrap_or_default();
        resolve_settle_costs(given, estimate, out)
            .map_err(|error| range_error(format!("actual: {error}")))?;
        Ok(costs)
    }

    /// Answers `MISSING_COST` for `dimension` (nothing was charged).
    fn missing_cost(&self, dimension: usize) {
        self.shared.set(BINDING, dimension as f64);
        self.shared.set(STATUS, f64::from(MISSING_COST));
    }

    /// Writes every entry's decision, the count and the binding entry; returns the status.
    fn written(&self, decision: core::result::Result<PolicyDecision, PolicyError>) -> Result<u32> {
        match decision {
            Ok(decision) => {
                let entries = decision.decisions();
                for (index, entry) in entries.iter().enumerate() {
                    self.shared.write_entry(index, entry);
                }
                self.shared.set(COUNT, entries.len() as f64);
                self.shared.set(BINDING, decision.binding as f64);
                Ok(if decision.allowed { ALLOWED } else { DENIED })
            }
            Err(PolicyError::TableFull) => Ok(TABLE_FULL),
            Err(error) => Err(range_error(error.to_string())),
        }
    }
}

/// The native half of a `Policy` (and of a `Limiter` with several quotas).
#[napi]
pub struct NativePolicy {
    inner: Rc<PolicyInner>,
    id: u64,
}

/// A reservation made by [`NativePolicy::reserve`], settled at most once.
#[napi]
pub struct NativeReservation {
    reservation: Option<Reservation>,
    /// The estimate's costs, which a settle keeps for the dimensions it names no cost for.
    estimate: Costs,
    policy_id: u64,
}

#[napi]
impl NativeReservation {
    /// Whether the reservation was admitted and is not settled yet.
    #[napi(getter)]
    pub fn pending(&self) -> bool {
        self.reservation.is_some()
    }
}

#[napi]
impl NativePolicy {
    /// A keyed policy over `entries` with room for `max_keys` keys per entry.
    ///
    /// # Errors
    /// `RangeError`-coded errors for an invalid entry, an empty or too long list, a skipped
    /// dimension, or an invalid `max_keys`.
    #[napi(constructor)]
    pub fn new(
        entries: Vec<EntrySpec>,
        max_keys: f64,
        clock: Option<&NativeManualClock>,
        shared: Float64Array,
    ) -> Result<Self> {
        limiter::checked_names(
            &entries
                .iter()
                .map(|entry| entry.name.as_str())
                .collect::<Vec<_>>(),
            |index| format!("entries[{index}].name"),
        )?;
        let mut policy_entries = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let what = format!("entries[{index}]");
            let quota = crate::quota::parse_one(&entry.rate, entry.burst, &what)?;
            policy_entries.push(PolicyEntry {
                name: entry.name.clone(),
                quota,
                dimension: usize::try_from(entry.dimension).unwrap_or(usize::MAX),
            });
        }
        let dimensions = policy_entries
            .iter()
            .map(|entry| entry.dimension)
            .max()
            .map_or(0, |max| max + 1);
        for dimension in 0..dimensions {
            if !policy_entries
                .iter()
                .any(|entry| entry.dimension == dimension)
            {
                return Err(range_error(format!("dimension {dimension} has no entry")));
            }
        }
        let names = policy_entries
            .iter()
            .map(|entry| entry.name.clone())
            .collect();
        let quotas = policy_entries.iter().map(|entry| entry.quota).collect();
        let max_keys = limiter::max_keys(max_keys)?;
        let policy = KeyedPolicy::with_clock(
            policy_entries,
            max_keys,
            Seed::random(),
            NodeClock::new(clock),
        )
        .map_err(|error| match error {
            PolicyError::OutOfMemory => limiter::table_memory_error(max_keys),
            other => range_error(format!("entries: {other}")),
        })?;
        Ok(Self {
            inner: Rc::new(PolicyInner {
                policy,
                shared: Shared::new(shared)?,
                names,
                quotas,
            }),
            // Relaxed: a unique number; it orders nothing.
            id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// How many costs each call reads from the shared array: one per dimension.
    #[napi(getter)]
    pub fn dimensions(&self) -> u32 {
        u32::try_from(self.inner.policy.dimensions()).unwrap_or(u32::MAX)
    }

    /// Each entry's name, in entry order.
    #[napi]
    pub fn names(&self) -> Vec<String> {
        self.inner.names.clone()
    }

    /// The functions `[check, peek, force, refund]`, each `(key) => undefined`, reading the
    /// costs from the shared array and writing the status and every entry's decision there.
    #[napi(ts_return_type = "Array<(key: string | Uint8Array) => void>")]
    pub fn fast_functions(&self) -> FastFunctions<PolicyInner> {
        FastFunctions(self.inner.clone())
    }

    /// Makes every entry's bucket for `key` full.
    #[napi]
    pub fn reset(&self, key: Key) {
        let policy = &self.inner.policy;
        policy.reset_at(key, policy.clock().now_ns());
    }

    /// Reserves the estimate in the shared array for `key`: writes the decision and the
    /// status (into the `STATUS` slot: `MISSING_COST` when core's rule needs a cost the
    /// estimate does not name) and returns the reservation (pending when admitted).
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn reserve(&self, key: Key) -> Result<NativeReservation> {
        let inner = &self.inner;
        let refused = |estimate| NativeReservation {
            reservation: None,
            estimate,
            policy_id: self.id,
        };
        let costs = match inner.costs() {
            Ok(costs) => costs,
            Err(CostsError::Invalid(invalid)) => return Err(invalid.to_napi()),
            Err(CostsError::Missing(dimension)) => {
                inner.missing_cost(dimension);
                return Ok(refused(Costs {
                    values: [0; MAX_POLICY_QUOTAS],
                    len: 0,
                }));
            }
        };
        let now_ns = inner.policy.clock().now_ns();
        let (status, reservation) = match inner.policy.reserve_at(key, now_ns, &costs) {
            Ok(reserved) => (inner.written(Ok(reserved.decision))?, reserved.reservation),
            Err(error) => (inner.written(Err(error))?, None),
        };
        inner.shared.set(STATUS, f64::from(status));
        Ok(NativeReservation {
            reservation,
            ..refused(costs)
        })
    }

    /// Settles `reservation` with the actual costs in the shared array (a dimension given no
    /// cost keeps its estimate): refunds what was not used, charges what exceeds the estimate
    /// (into debt if need be).
    ///
    /// # Errors
    /// A reservation already settled, refused, or made by another policy; an invalid cost.
    #[napi]
    pub fn settle(&self, reservation: &mut NativeReservation) -> Result<u32> {
        if reservation.policy_id != self.id {
            return Err(range_error("reservation: made by another policy"));
        }
        if reservation.reservation.is_none() {
            return Err(range_error("reservation: already settled, or refused"));
        }
        let inner = &self.inner;
        // Before the reservation is taken: a settle with an invalid cost settles nothing.
        let costs = inner.settle_costs(&reservation.estimate)?;
        let Some(taken) = reservation.reservation.take() else {
            return Err(range_error("reservation: already settled, or refused"));
        };
        let now_ns = inner.policy.clock().now_ns();
        inner.written(inner.policy.settle_at(now_ns, taken, &costs))
    }

    /// Renders the headers for the `count` entries' decisions that JavaScript wrote into the
    /// shared array, as `name\nvalue\nname\nvalue...` (one string: one conversion).
    ///
    /// # Errors
    /// An invalid style or decision.
    #[napi]
    pub fn render_headers(&self, style: u32, now_unix_s: f64, count: u32) -> Result<String> {
        let inner = &self.inner;
        let count = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(inner.names.len());
        render(
            &inner.shared,
            &inner.names,
            &inner.quotas,
            header_style(style, now_unix_s)?,
            count,
        )
    }
}
