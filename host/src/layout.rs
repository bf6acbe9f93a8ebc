//! The file's layout: a header of little-endian 64-bit words, then one slot array per quota.
//!
//! ```text
//! offset 0      header (HEADER_WORDS words, checksummed), zero padding to HEADER_BYTES
//! HEADER_BYTES  quota 0's slots: slot_count / 8 groups × 192 bytes (core's `SlotGroup`, zero = empty)
//! ...           quota 1's slots, ...
//! ```
//!
//! The header is written once, before the file is linked into place, and never changed; the
//! slots are only ever accessed through core's atomics. A zeroed group is an empty one (core's
//! `SlotGroup::new()`: fingerprints 0, states 0 = full buckets), so a fresh file needs no writes
//! beyond its header.

use crate::error::SharedError;
use cellgate::{
    check_max_keys, group_count_for, slot_count_for, PolicyEntry, Quota, Refill, SlotGroup,
    MAX_POLICY_QUOTAS, PROBE_WINDOW, TABLE_LAYOUT_VERSION,
};
use core::hash::Hasher;
use siphasher::sip::SipHasher13;

/// The first header word: `b"cgshared"`.
const MAGIC: [u8; 8] = *b"cgshared";

/// The version of this crate's file layout (the header and where the slots lie), bumped on
/// any change to either; core's [`TABLE_LAYOUT_VERSION`] covers the slots themselves. Version
/// 2: word 3 is the bytes of a slot group (192), no longer of a slot (32).
pub const MAPPING_VERSION: u32 = 2;

/// The bytes before the first slot: the header, padded to a multiple of the slot alignment
/// and of a cache line.
pub const HEADER_BYTES: u64 = 512;

/// How old a claim must be before a process takes its claimant for dead (see
/// [`cellgate::ClaimRecovery`]): one second of [`HostClock`](crate::HostClock). It bounds how
/// long a key whose insert was cut short by a crash waits, and must exceed any pause of a live
/// process inside an insert (about twenty instructions; a CPU-throttled container can pause
/// for a 100 ms period). Recorded in the header: every process must agree.
pub const CLAIM_TIMEOUT_NS: u64 = 1_000_000_000;

/// The header's words, in order.
mod word {
    pub const MAGIC: usize = 0;
    pub const MAPPING_VERSION: usize = 1;
    pub const TABLE_LAYOUT_VERSION: usize = 2;
    pub const GROUP_BYTES: usize = 3;
    pub const PROBE_WINDOW: usize = 4;
    pub const HEADER_BYTES: usize = 5;
    pub const FILE_BYTES: usize = 6;
    pub const SEED_K0: usize = 7;
    pub const SEED_K1: usize = 8;
    pub const CLAIM_TIMEOUT_NS: usize = 9;
    pub const QUOTA_COUNT: usize = 10;
    pub const DIMENSIONS: usize = 11;
    pub const REFILL: usize = 12;
    pub const MAX_KEYS: usize = 13;
    pub const SLOT_COUNT: usize = 14;
    /// Then 4 words per quota slot (rate_cost, period_ns, burst_cost, dimension), for
    /// `MAX_POLICY_QUOTAS` quotas (unused ones zero).
    pub const QUOTAS: usize = 15;
    pub const QUOTA_WORDS: usize = 4;
    pub const CHECKSUM: usize = QUOTAS + QUOTA_WORDS * super::MAX_POLICY_QUOTAS;
    pub const COUNT: usize = CHECKSUM + 1;
}

/// The header's length in bytes (before padding).
pub(crate) const HEADER_USED_BYTES: usize = word::COUNT * 8;

const _: () = assert!(HEADER_USED_BYTES as u64 <= HEADER_BYTES);
const _: () = assert!(HEADER_BYTES % 64 == 0);

/// The key of the header's checksum: fixed, since it guards against damage, not attack
/// (whoever can write the file can write a valid header).
const CHECKSUM_KEY: (u64, u64) = (0x6365_6c6c_6761_7465, 0x7368_6172_6564_0001);

/// One quota of a table: its limits and the dimension it charges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct QuotaSpec {
    quota: Quota,
    dimension: usize,
}

/// What a shared table holds, which every process opening it must agree on: the quotas
/// (rate, period, burst and dimension of each), the refill mode and `max_keys` (hence the
/// slot count). Names are not part of it: they only label headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableConfig {
    quotas: Vec<QuotaSpec>,
    refill: Refill,
    max_keys: usize,
    dimensions: usize,
}

impl TableConfig {
    /// The configuration of a single-quota keyed limiter (what
    /// [`SharedTable::limiter`](crate::SharedTable::limiter) opens): `quota` for every key,
    /// `refill` (greedy GCRA or interval), room for `max_keys` keys
    /// (`slot_count_for(max_keys)` slots).
    ///
    /// # Errors
    /// [`SharedError::Config`] when `max_keys` is outside `1..=MAX_MAX_KEYS`.
    pub fn limiter(quota: Quota, refill: Refill, max_keys: usize) -> Result<Self, SharedError> {
        Self::new(
            vec![QuotaSpec {
                quota,
                dimension: 0,
            }],
            refill,
            max_keys,
        )
    }

    /// The configuration of a keyed policy over `entries` (quotas and dimensions, in entry
    /// order; names are ignored), greedy refill, with room for `max_keys` keys in each entry's
    /// table. What [`SharedTable::policy`](crate::SharedTable::policy) opens.
    ///
    /// # Errors
    /// [`SharedError::Config`]: no entry, more than [`MAX_POLICY_QUOTAS`], or `max_keys`
    /// outside `1..=MAX_MAX_KEYS`.
    pub fn policy<N>(entries: &[PolicyEntry<N>], max_keys: usize) -> Result<Self, SharedError> {
        let quotas = entries
            .iter()
            .map(|entry| QuotaSpec {
                quota: entry.quota,
                dimension: entry.dimension,
            })
            .collect();
        Self::new(quotas, Refill::Greedy, max_keys)
    }

    /// The configuration of core's [`Limiter`](cellgate::Limiter) over `quotas` and
    /// `options` (what [`SharedTable::open_limiter`](crate::SharedTable::open_limiter) opens):
    /// each quota with its dimension, `options.refill`, `options.max_keys`. For a single quota
    /// it equals [`TableConfig::limiter`], for several [`TableConfig::policy`] of the same
    /// quotas, so such files can be opened either way. Names, `on_full` and the seed are not
    /// part of it.
    ///
    /// # Errors
    /// [`SharedError::Config`] as for [`TableConfig::policy`], or for interval refill with
    /// several quotas.
    pub fn for_limiter(
        quotas: &[cellgate::LimiterQuota<'_>],
        options: &cellgate::LimiterOptions,
    ) -> Result<Self, SharedError> {
        let specs = quotas
            .iter()
            .map(|quota| QuotaSpec {
                quota: quota.quota,
                dimension: quota.dimension,
            })
            .collect();
        Self::new(specs, options.refill, options.max_keys)
    }

    fn new(quotas: Vec<QuotaSpec>, refill: Refill, max_keys: usize) -> Result<Self, SharedError> {
        if quotas.is_empty() {
            return Err(SharedError::Config {
                reason: "a shared table needs at least one quota",
            });
        }
        if quotas.len() > MAX_POLICY_QUOTAS {
            return Err(SharedError::Config {
                reason: "a shared table holds at most MAX_POLICY_QUOTAS (8) quotas",
            });
        }
        if quotas.len() > 1 && refill != Refill::Greedy {
            return Err(SharedError::Config {
                reason: "a policy of several quotas uses greedy refill only",
            });
        }
        let max_keys = u64::try_from(max_keys).unwrap_or(u64::MAX);
        let max_keys = check_max_keys(max_keys).map_err(|_| SharedError::Config {
            reason: "max_keys must be in 1..=MAX_MAX_KEYS (2^27)",
        })?;
        let dimensions = quotas
            .iter()
            .map(|spec| spec.dimension.saturating_add(1))
            .max()
            .unwrap_or(1);
        Ok(Self {
            quotas,
            refill,
            max_keys,
            dimensions,
        })
    }

    /// How many quotas (tables) the configuration holds.
    pub fn quota_count(&self) -> usize {
        self.quotas.len()
    }

    /// The quota of table `index`, if there is one.
    pub fn quota(&self, index: usize) -> Option<Quota> {
        self.quotas.get(index).map(|spec| spec.quota)
    }

    /// The refill mode.
    pub fn refill(&self) -> Refill {
        self.refill
    }

    /// The keys each table has room for.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The slots of each table: `slot_count_for(max_keys)`.
    pub fn slot_count(&self) -> usize {
        slot_count_for(self.max_keys)
    }

    /// The slot groups of each table: `group_count_for(max_keys)`.
    pub fn group_count(&self) -> usize {
        group_count_for(self.max_keys)
    }

    /// Whether `entries` are this configuration's quotas and dimensions, in order.
    pub(crate) fn matches_entries<N>(&self, entries: &[PolicyEntry<N>]) -> Option<usize> {
        if entries.len() != self.quotas.len() {
            return Some(entries.len().min(self.quotas.len()));
        }
        self.quotas.iter().zip(entries).position(|(spec, entry)| {
            spec.quota != entry.quota || spec.dimension != entry.dimension
        })
    }

    /// The file's length: the header, then one slot array per quota; `None` if it overflows.
    pub(crate) fn file_bytes(&self) -> Option<u64> {
        let group_bytes = u64::try_from(core::mem::size_of::<SlotGroup>()).ok()?;
        let groups = u64::try_from(self.group_count()).ok()?;
        let quotas = u64::try_from(self.quotas.len()).ok()?;
        group_bytes
            .checked_mul(groups)?
            .checked_mul(quotas)?
            .checked_add(HEADER_BYTES)
    }

    /// The byte offset of table `index`'s first slot.
    pub(crate) fn table_offset(&self, index: usize) -> Option<usize> {
        let table_bytes = core::mem::size_of::<SlotGroup>().checked_mul(self.group_count())?;
        usize::try_from(HEADER_BYTES)
            .ok()?
            .checked_add(table_bytes.checked_mul(index)?)
    }
}

fn to_word(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn refill_word(refill: Refill) -> u64 {
    match refill {
        Refill::Greedy => 0,
        Refill::Interval => 1,
    }
}

/// A header, as words.
pub(crate) struct Header {
    words: [u64; word::COUNT],
}

impl Header {
    /// The header of a new file of `config` with `seed`.
    pub(crate) fn new(config: &TableConfig, seed: [u64; 2], file_bytes: u64) -> Self {
        let mut words = [0; word::COUNT];
        let mut set = |index: usize, value: u64| {
            if let Some(word) = words.get_mut(index) {
                *word = value;
            }
        };
        set(word::MAGIC, u64::from_le_bytes(MAGIC));
        set(word::MAPPING_VERSION, u64::from(MAPPING_VERSION));
        set(word::TABLE_LAYOUT_VERSION, u64::from(TABLE_LAYOUT_VERSION));
        set(
            word::GROUP_BYTES,
            to_word(core::mem::size_of::<SlotGroup>()),
        );
        set(word::PROBE_WINDOW, to_word(PROBE_WINDOW));
        set(word::HEADER_BYTES, HEADER_BYTES);
        set(word::FILE_BYTES, file_bytes);
        set(word::SEED_K0, seed[0]);
        set(word::SEED_K1, seed[1]);
        set(word::CLAIM_TIMEOUT_NS, CLAIM_TIMEOUT_NS);
        set(word::QUOTA_COUNT, to_word(config.quotas.len()));
        set(word::DIMENSIONS, to_word(config.dimensions));
        set(word::REFILL, refill_word(config.refill));
        set(word::MAX_KEYS, to_word(config.max_keys));
        set(word::SLOT_COUNT, to_word(config.slot_count()));
        for (index, spec) in config.quotas.iter().enumerate() {
            let base = word::QUOTAS.saturating_add(index.saturating_mul(word::QUOTA_WORDS));
            set(base, spec.quota.rate_cost());
            set(base.saturating_add(1), spec.quota.period_ns());
            set(base.saturating_add(2), spec.quota.burst_cost());
            set(base.saturating_add(3), to_word(spec.dimension));
        }
        let mut header = Self { words };
        let checksum = header.checksum();
        if let Some(word) = header.words.get_mut(word::CHECKSUM) {
            *word = checksum;
        }
        header
    }

    /// The header's bytes, little-endian words.
    pub(crate) fn to_bytes(&self) -> [u8; HEADER_USED_BYTES] {
        let mut bytes = [0; HEADER_USED_BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The header read from `bytes`.
    pub(crate) fn from_bytes(bytes: &[u8; HEADER_USED_BYTES]) -> Self {
        let mut words = [0; word::COUNT];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut raw = [0; 8];
            raw.copy_from_slice(chunk);
            *word = u64::from_le_bytes(raw);
        }
        Self { words }
    }

    fn get(&self, index: usize) -> u64 {
        self.words.get(index).copied().unwrap_or(0)
    }

    fn checksum(&self) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(CHECKSUM_KEY.0, CHECKSUM_KEY.1);
        for word in self.words.iter().take(word::CHECKSUM) {
            hasher.write_u64(*word);
        }
        hasher.finish()
    }

    /// The hash seed, `[k0, k1]`.
    pub(crate) fn seed(&self) -> [u64; 2] {
        [self.get(word::SEED_K0), self.get(word::SEED_K1)]
    }

    /// Checks the header against this build and `config`, for a file of `file_bytes`.
    ///
    /// # Errors
    /// The first problem found, in this order: [`SharedError::NotATable`],
    /// [`SharedError::Version`], [`SharedError::Corrupt`], [`SharedError::ConfigMismatch`],
    /// [`SharedError::Truncated`] (the file is shorter than the header says), or
    /// [`SharedError::Corrupt`] (the header's length is not its configuration's).
    pub(crate) fn validate(
        &self,
        config: &TableConfig,
        file_bytes: u64,
    ) -> Result<(), SharedError> {
        if self.get(word::MAGIC) != u64::from_le_bytes(MAGIC) {
            return Err(SharedError::NotATable);
        }
        let ours = Self::new(config, [0, 0], config.file_bytes().unwrap_or(u64::MAX));
        let versions = [
            ("mapping_version", word::MAPPING_VERSION),
            ("table_layout_version", word::TABLE_LAYOUT_VERSION),
            ("group_bytes", word::GROUP_BYTES),
            ("probe_window", word::PROBE_WINDOW),
            ("header_bytes", word::HEADER_BYTES),
        ];
        for (field, index) in versions {
            if self.get(index) != ours.get(index) {
                return Err(SharedError::Version {
                    field,
                    file: self.get(index),
                    ours: ours.get(index),
                });
            }
        }
        // After the versions: another version may checksum otherwise.
        if self.get(word::CHECKSUM) != self.checksum() {
            return Err(SharedError::Corrupt);
        }
        let fields = [
            ("quota_count", word::QUOTA_COUNT),
            ("dimensions", word::DIMENSIONS),
            ("refill", word::REFILL),
            ("max_keys", word::MAX_KEYS),
            ("slot_count", word::SLOT_COUNT),
            ("claim_timeout_ns", word::CLAIM_TIMEOUT_NS),
        ];
        for (field, index) in fields {
            if self.get(index) != ours.get(index) {
                return Err(SharedError::ConfigMismatch {
                    field,
                    quota: None,
                    file: self.get(index),
                    ours: ours.get(index),
                });
            }
        }
        const QUOTA_FIELDS: [&str; word::QUOTA_WORDS] =
            ["rate_cost", "period_ns", "burst_cost", "dimension"];
        for quota in 0..config.quotas.len() {
            let base = word::QUOTAS.saturating_add(quota.saturating_mul(word::QUOTA_WORDS));
            for (offset, field) in QUOTA_FIELDS.iter().enumerate() {
                let index = base.saturating_add(offset);
                if self.get(index) != ours.get(index) {
                    return Err(SharedError::ConfigMismatch {
                        field,
                        quota: Some(quota),
                        file: self.get(index),
                        ours: ours.get(index),
                    });
                }
            }
        }
        let expected_bytes = self.get(word::FILE_BYTES);
        if file_bytes < expected_bytes {
            return Err(SharedError::Truncated {
                file_bytes,
                expected_bytes,
            });
        }
        if expected_bytes != ours.get(word::FILE_BYTES) || file_bytes != expected_bytes {
            return Err(SharedError::Corrupt);
        }
        Ok(())
    }
}
