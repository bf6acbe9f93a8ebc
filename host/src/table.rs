//! [`SharedTable`]: creating, attaching to and removing the file that holds a shared table.

use crate::clock::{host_now_ns, HostClock};
use crate::error::SharedError;
use crate::layout::{Header, TableConfig, CLAIM_TIMEOUT_NS, HEADER_BYTES, HEADER_USED_BYTES};
use crate::mapping::Mapping;
use crate::slots::TableSlots;
use cellgate::{
    ClaimRecovery, KeyedLimiter, KeyedPolicy, Limiter, LimiterOptions, LimiterQuota, NoClock,
    PolicyEntry, Seed,
};
use rustix::fs::{FallocateFlags, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Who may open a shared table's file besides its owner. Never others: a shared table is
/// never world-readable (the header holds the hash seed) or world-writable (whoever can write
/// the file can reset anyone's limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Mode 0600: the owner only (the default).
    #[default]
    Owner,
    /// Mode 0660: the owner and the file's group (workers running as several users of one
    /// group). The group is the creating process's, as for any new file.
    Group,
}

impl Access {
    /// The file's permission bits.
    pub const fn mode(self) -> u32 {
        match self {
            Self::Owner => 0o600,
            Self::Group => 0o660,
        }
    }
}

/// How [`SharedTable::open`] creates and accepts the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OpenOptions {
    access: Access,
    allow_other_owner: bool,
}

impl OpenOptions {
    /// Owner-only files (0600), owned by this process's user.
    pub const fn new() -> Self {
        Self {
            access: Access::Owner,
            allow_other_owner: false,
        }
    }

    /// The permissions a new file gets, and the most an existing one may grant.
    #[must_use]
    pub const fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Whether a file owned by another user is accepted (refused by default: that user can
    /// reset or exhaust every limit in it).
    #[must_use]
    pub const fn allow_other_owner(mut self, allow: bool) -> Self {
        self.allow_other_owner = allow;
        self
    }
}

/// How many times [`SharedTable::open`] tries to open or create before giving up: each try
/// fails only if another process removes the file between our steps.
const OPEN_ATTEMPTS: u32 = 64;

/// Numbers this process's temporary files.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file mapping holding one keyed table per quota, shared by every process that opens the
/// same path with the same configuration. Build the limiter or policy with
/// [`limiter`](Self::limiter) or [`policy`](Self::policy); they keep the mapping alive, so the
/// `SharedTable` itself may be dropped.
///
/// ```
/// use cellgate::{Quota, Refill};
/// use cellgate_host::{OpenOptions, SharedTable, TableConfig};
/// # let dir = std::env::temp_dir().join(format!("cellgate-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("api");
/// // Every worker runs the same two lines; the first creates the file, the others attach.
/// let config = TableConfig::limiter(Quota::per_minute(100).unwrap(), Refill::Greedy, 10_000).unwrap();
/// let limiter = SharedTable::open(&path, &config, &OpenOptions::new()).unwrap().limiter().unwrap();
/// assert!(limiter.check(b"client-1", 1).unwrap().allowed);
/// # SharedTable::remove(&path).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct SharedTable {
    mapping: Arc<Mapping>,
    config: TableConfig,
    seed: [u64; 2],
    created: bool,
    path: PathBuf,
}

impl SharedTable {
    /// Opens the shared table at `path`, creating it if it does not exist.
    ///
    /// Creation is race-free: the creator writes the whole header into a temporary file in
    /// the same directory (`.NAME.PID.N.tmp`, with the final permissions), then links it to
    /// `path` with `link(2)`, which fails if `path` exists. So a file at `path` is always
    /// complete, exactly one of many processes starting at once creates it (and draws the
    /// random hash seed), and the others attach to it; nobody waits. A creator killed
    /// mid-way leaves at most its temporary file behind.
    ///
    /// Attaching checks, before mapping anything: a regular file (symbolic links are not
    /// followed), owned by this process's effective user (unless
    /// [`OpenOptions::allow_other_owner`]), granting no more than [`Access::mode`], at least as
    /// long as a header; then the header's magic, checksum and versions, then `config` field by
    /// field, then the length the header gives. The state persists while the file exists,
    /// across restarts of every process (see [`remove`](Self::remove)).
    ///
    /// # Errors
    /// [`SharedError::Unsupported`] where 64- or 128-bit atomics are not lock-free;
    /// [`SharedError::Io`] for a failed system call (a missing directory, no space for the
    /// table: the file's space is allocated at creation); [`SharedError::NotRegularFile`],
    /// [`SharedError::Owner`], [`SharedError::Permissions`], [`SharedError::Truncated`],
    /// [`SharedError::NotATable`], [`SharedError::Corrupt`], [`SharedError::Version`] or
    /// [`SharedError::ConfigMismatch`] (naming the first field that differs; a table cannot
    /// be resized) for an existing file that does not fit.
    pub fn open(
        path: impl AsRef<Path>,
        config: &TableConfig,
        options: &OpenOptions,
    ) -> Result<Self, SharedError> {
        check_atomics()?;
        let path = path.as_ref();
        for _ in 0..OPEN_ATTEMPTS {
            match open_existing(path) {
                Ok(file) => return Self::attach(file, path, config, options, false),
                Err(SharedError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
            if let Some(file) = create(path, config, options)? {
                return Self::attach(file, path, config, options, true);
            }
            // Another process linked its file first: attach to it.
        }
        Err(SharedError::Io {
            operation: "open",
            source: std::io::Error::other(
                "the file kept disappearing between attempts to open and to create it",
            ),
        })
    }

    /// Removes the table's file (`unlink(2)`); `Ok(false)` if there was none.
    ///
    /// Processes that have the table open keep using the old one, now nameless, until they
    /// drop it; the next [`open`](Self::open) of the path creates a fresh table (every key
    /// full again, a new seed). So stop every process using the table before removing it, or
    /// each generation of processes limits on its own. Nothing removes the file otherwise:
    /// it lives until removed or, under `/dev/shm`, until the host reboots.
    ///
    /// # Errors
    /// [`SharedError::Io`] when the unlink fails for another reason than a missing file.
    pub fn remove(path: impl AsRef<Path>) -> Result<bool, SharedError> {
        match rustix::fs::unlink(path.as_ref()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(error) => Err(SharedError::io("unlink", error)),
        }
    }

    /// Opens (or creates) the shared table for core's [`Limiter`] over `quotas` and
    /// `options`, and builds that limiter over it: the product every binding wraps, host-wide.
    /// Every process passes the same quotas (rate, period, burst, dimension), refill and
    /// `max_keys`; names and `on_full` are each process's own, and `options.seed` is replaced
    /// by the file's. Decisions, headers and reservations are exactly the in-process
    /// limiter's (a reservation settles only on the `Limiter` value that made it).
    ///
    /// ```
    /// use cellgate::{LimiterOptions, LimiterQuota, Op, Quota};
    /// use cellgate_host::{OpenOptions, SharedTable};
    /// # let dir = std::env::temp_dir().join(format!("cellgate-doc-ol-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("api");
    /// let quotas = [LimiterQuota::new(Quota::per_minute(20).unwrap()), LimiterQuota::new(Quota::per_day(100).unwrap())];
    /// let limiter = SharedTable::open_limiter(&path, &quotas, LimiterOptions::default(), &OpenOptions::new()).unwrap();
    /// let now_ns = cellgate_host::host_now_ns();
    /// assert!(limiter.apply_at(b"client", now_ns, &[None], Op::Check).unwrap().allowed);
    /// # SharedTable::remove(&path).unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`SharedError::Limiter`] when core's rules refuse the configuration (before the file
    /// is touched); otherwise [`open`](Self::open)'s.
    pub fn open_limiter(
        path: impl AsRef<Path>,
        quotas: &[LimiterQuota<'_>],
        options: LimiterOptions,
        open_options: &OpenOptions,
    ) -> Result<Limiter<TableSlots>, SharedError> {
        Limiter::check_config(quotas, &options).map_err(SharedError::Limiter)?;
        let config = TableConfig::for_limiter(quotas, &options)?;
        let table = Self::open(path, &config, open_options)?;
        let tables = (0..config.quota_count())
            .map(|index| table.table(index, NoClock))
            .collect::<Result<Vec<_>, _>>()?;
        let options = LimiterOptions {
            seed: table.seed(),
            ..options
        };
        Limiter::with_tables(quotas, options, tables).map_err(SharedError::Limiter)
    }

    /// The hash seed drawn by the file's creator (secret: whoever knows it can aim keys at
    /// one window).
    pub fn seed(&self) -> Seed {
        Seed::new(self.seed[0], self.seed[1])
    }

    /// Whether this call created the file (and drew its seed), rather than attached to it.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration (the file's, which equals the one given to `open`).
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// The slots of table `index` (one per quota, in order), for building a limiter by hand;
    /// `None` past the last table.
    pub fn slots(&self, index: usize) -> Option<TableSlots> {
        if index >= self.config.quota_count() {
            return None;
        }
        let offset = self.config.table_offset(index)?;
        self.mapping.slots(offset, self.config.group_count())
    }

    /// The keyed limiter of a single-quota table, with the file's seed, [`HostClock`], and
    /// [`ClaimRecovery`] after [`CLAIM_TIMEOUT_NS`] (see the crate's "Crash safety").
    ///
    /// Its `stats()` count this process's operations only; the decisions are the table's.
    ///
    /// # Errors
    /// [`SharedError::WrongKind`] for a table of several quotas.
    pub fn limiter(&self) -> Result<KeyedLimiter<TableSlots, HostClock>, SharedError> {
        self.limiter_with_clock(HostClock)
    }

    /// As [`limiter`](Self::limiter), reading `clock` in the operations without `_at`
    /// (`NoClock` for a binding that passes [`HostClock`] times to the `_at` operations
    /// itself). Every process sharing the table must use `HostClock`'s time line.
    ///
    /// # Errors
    /// [`SharedError::WrongKind`] for a table of several quotas.
    pub fn limiter_with_clock<C>(
        &self,
        clock: C,
    ) -> Result<KeyedLimiter<TableSlots, C>, SharedError> {
        if self.config.quota_count() != 1 {
            return Err(SharedError::WrongKind {
                quotas: self.config.quota_count(),
            });
        }
        self.table(0, clock)
    }

    /// The keyed policy of this table over `entries`, which must be the configuration's
    /// quotas and dimensions in order (their names are this process's: they label headers
    /// only). Each entry's table has the file's seed and [`ClaimRecovery`]; the policy reads
    /// [`HostClock`].
    ///
    /// # Errors
    /// [`SharedError::ConfigMismatch`] (field `"entries"`, `quota` the first entry that
    /// differs) when `entries` are not the configuration's; [`SharedError::Core`] if core
    /// refuses them.
    pub fn policy<N>(
        &self,
        entries: impl IntoIterator<Item = PolicyEntry<N>>,
    ) -> Result<KeyedPolicy<N, HostClock, TableSlots>, SharedError> {
        self.policy_with_clock(entries, HostClock)
    }

    /// As [`policy`](Self::policy), reading `clock` in the operations without `_at` (see
    /// [`limiter_with_clock`](Self::limiter_with_clock)).
    ///
    /// # Errors
    /// As [`policy`](Self::policy).
    pub fn policy_with_clock<N, C>(
        &self,
        entries: impl IntoIterator<Item = PolicyEntry<N>>,
        clock: C,
    ) -> Result<KeyedPolicy<N, C, TableSlots>, SharedError> {
        let entries: Vec<PolicyEntry<N>> = entries.into_iter().collect();
        if let Some(index) = self.config.matches_entries(&entries) {
            return Err(SharedError::ConfigMismatch {
                field: "entries",
                quota: Some(index),
                file: u64::try_from(self.config.quota_count()).unwrap_or(u64::MAX),
                ours: u64::try_from(entries.len()).unwrap_or(u64::MAX),
            });
        }
        let tables = (0..self.config.quota_count())
            .map(|index| self.table(index, NoClock))
            .collect::<Result<Vec<_>, _>>()?;
        KeyedPolicy::from_tables(entries, tables, clock).map_err(|error| SharedError::Core {
            reason: error.to_string(),
        })
    }

    /// The keyed limiter over table `index`.
    fn table<C>(&self, index: usize, clock: C) -> Result<KeyedLimiter<TableSlots, C>, SharedError> {
        let (Some(slots), Some(quota)) = (self.slots(index), self.config.quota(index)) else {
            return Err(SharedError::WrongKind {
                quotas: self.config.quota_count(),
            });
        };
        let limiter =
            KeyedLimiter::with_storage(slots, quota, self.config.refill(), self.seed(), clock)
                .map_err(|error| SharedError::Core {
                    reason: error.to_string(),
                })?;
        Ok(limiter.with_claim_recovery(ClaimRecovery {
            timeout_ns: CLAIM_TIMEOUT_NS,
            clock: host_now_ns,
        }))
    }

    /// Checks an open file (see [`open`](Self::open)) and maps it.
    fn attach(
        file: File,
        path: &Path,
        config: &TableConfig,
        options: &OpenOptions,
        created: bool,
    ) -> Result<Self, SharedError> {
        let metadata = file
            .metadata()
            .map_err(|error| SharedError::io("fstat", error))?;
        if !metadata.file_type().is_file() {
            return Err(SharedError::NotRegularFile);
        }
        let our_uid = rustix::process::geteuid().as_raw();
        if metadata.uid() != our_uid && !options.allow_other_owner {
            return Err(SharedError::Owner {
                file_uid: metadata.uid(),
                our_uid,
            });
        }
        let file_mode = metadata.mode() & 0o7777;
        let allowed_mode = options.access.mode();
        if file_mode & !allowed_mode != 0 {
            return Err(SharedError::Permissions {
                file_mode,
                allowed_mode,
            });
        }
        let file_bytes = metadata.len();
        if file_bytes < HEADER_BYTES {
            return Err(SharedError::Truncated {
                file_bytes,
                expected_bytes: HEADER_BYTES,
            });
        }
        let mut bytes = [0; HEADER_USED_BYTES];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|error| SharedError::io("read header", error))?;
        let header = Header::from_bytes(&bytes);
        header.validate(config, file_bytes)?;
        let len = usize::try_from(file_bytes).map_err(|_| SharedError::Corrupt)?;
        let mapping = Mapping::map(&file, len)?;
        Ok(Self {
            mapping: Arc::new(mapping),
            config: config.clone(),
            seed: header.seed(),
            created,
            path: path.to_path_buf(),
        })
    }
}

/// Refuses shared mode unless the atomics the slots use are lock-free in hardware (checked at
/// run time: portable-atomic detects `cmpxchg16b` on x86_64).
fn check_atomics() -> Result<(), SharedError> {
    if !portable_atomic::AtomicU64::is_lock_free() {
        return Err(SharedError::Unsupported {
            atomic: "AtomicU64",
        });
    }
    if !portable_atomic::AtomicU128::is_lock_free() {
        return Err(SharedError::Unsupported {
            atomic: "AtomicU128",
        });
    }
    Ok(())
}

/// Opens an existing file for reading and writing, never following a symbolic link.
fn open_existing(path: &Path) -> Result<File, SharedError> {
    match rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(File::from(fd)),
        // O_NOFOLLOW on a symbolic link; a directory.
        Err(Errno::LOOP | Errno::ISDIR) => Err(SharedError::NotRegularFile),
        Err(error) => Err(SharedError::io("open", error)),
    }
}

/// Creates the table's file: a complete temporary file linked to `path`. Returns the open
/// file if this process's link won, `None` if a file appeared at `path` first.
fn create(
    path: &Path,
    config: &TableConfig,
    options: &OpenOptions,
) -> Result<Option<File>, SharedError> {
    let file_bytes = config.file_bytes().ok_or(SharedError::Config {
        reason: "the table's size overflows",
    })?;
    let name = path.file_name().ok_or(SharedError::Config {
        reason: "the path names no file",
    })?;
    let (temp_path, file) = create_temp(path, name, options.access)?;
    let linked = initialise(&file, config, file_bytes).and_then(|()| {
        match rustix::fs::link(&temp_path, path) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(error) => Err(SharedError::io("link", error)),
        }
    });
    // The temporary name is no longer needed, whatever happened (the file lives on at
    // `path` if linked). A failure leaves a stray temporary file, which is harmless.
    let _ = rustix::fs::unlink(&temp_path);
    Ok(linked?.then_some(file))
}

/// Creates a new temporary file beside `path`, with `access`'s mode exactly (the umask can
/// only take bits away, so the mode is set again after creation).
fn create_temp(
    path: &Path,
    name: &std::ffi::OsStr,
    access: Access,
) -> Result<(PathBuf, File), SharedError> {
    let mode = Mode::from_bits_truncate(access.mode());
    loop {
        let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed); // Relaxed: a unique number.
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{count}.tmp", std::process::id()));
        let temp_path = path.with_file_name(temp_name);
        match rustix::fs::open(
            &temp_path,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        ) {
            Ok(fd) => {
                let file = File::from(fd);
                if let Err(error) = rustix::fs::fchmod(&file, mode) {
                    let _ = rustix::fs::unlink(&temp_path);
                    return Err(SharedError::io("fchmod", error));
                }
                return Ok((temp_path, file));
            }
            // A stray file of an earlier process with our pid: try the next number.
            Err(Errno::EXIST) => continue,
            Err(error) => return Err(SharedError::io("create", error)),
        }
    }
}

/// Sizes a new file, allocating its space now (so that a full `/dev/shm` is an error here,
/// not a fault on first touch), and writes its header with a fresh random seed. The slots
/// stay zero: empty.
fn initialise(file: &File, config: &TableConfig, file_bytes: u64) -> Result<(), SharedError> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, file_bytes) {
        Ok(()) => {}
        // A file system without fallocate: the slots are allocated as they are touched.
        Err(Errno::OPNOTSUPP) => file
            .set_len(file_bytes)
            .map_err(|error| SharedError::io("ftruncate", error))?,
        Err(error) => return Err(SharedError::io("fallocate", error)),
    }
    let seed = random_seed()?;
    let header = Header::new(config, seed, file_bytes);
    file.write_all_at(&header.to_bytes(), 0)
        .map_err(|error| SharedError::io("write header", error))
}

/// 128 bits from the operating system's randomness: `getrandom(2)` on Linux, `/dev/urandom`
/// on other Unix systems.
#[cfg(not(target_os = "linux"))]
fn random_seed() -> Result<[u64; 2], SharedError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .map_err(|error| SharedError::io("read /dev/urandom", error))?;
    Ok(seed_from_bytes(&bytes))
}

/// 128 bits from the operating system's randomness: `getrandom(2)` on Linux, `/dev/urandom`
/// on other Unix systems.
#[cfg(target_os = "linux")]
fn random_seed() -> Result<[u64; 2], SharedError> {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while let Some(rest) = bytes.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match rustix::rand::getrandom(rest, rustix::rand::GetRandomFlags::empty()) {
            Ok(count) => filled = filled.saturating_add(count),
            Err(Errno::INTR) => {}
            Err(error) => return Err(SharedError::io("getrandom", error)),
        }
    }
    Ok(seed_from_bytes(&bytes))
}

/// A seed's two halves from 16 random bytes.
fn seed_from_bytes(bytes: &[u8; 16]) -> [u64; 2] {
    let mut k0 = [0; 8];
    let mut k1 = [0; 8];
    k0.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    k1.copy_from_slice(bytes.get(8..).unwrap_or(&[0; 8]));
    [u64::from_le_bytes(k0), u64::from_le_bytes(k1)]
}
