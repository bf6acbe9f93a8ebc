//! Creating, attaching to, refusing and removing shared tables, in one process; and a claim
//! left by a dead process, recovered.
#![cfg(unix)]

mod support;

use cellgate::{OnFull, Op, PolicyEntry, Quota, Refill};
use cellgate_host::{
    host_now_ns, Access, OpenOptions, SharedError, SharedTable, TableConfig, CLAIM_TIMEOUT_NS,
};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};
use support::{fingerprint_offset, scratch_dir, state_offset};

fn config(rate: u64, max_keys: usize) -> TableConfig {
    TableConfig::limiter(Quota::per_hour(rate).unwrap(), Refill::Greedy, max_keys).unwrap()
}

fn open(path: &std::path::Path, config: &TableConfig) -> Result<SharedTable, SharedError> {
    SharedTable::open(path, config, &OpenOptions::new())
}

#[test]
fn the_first_open_creates_and_the_next_attach_to_the_same_table() {
    let dir = scratch_dir("attach");
    let path = dir.join("table");
    let config = config(3, 100);
    let first = open(&path, &config).unwrap();
    let second = open(&path, &config).unwrap();
    assert!(first.created());
    assert!(!second.created());
    let (a, b) = (first.limiter().unwrap(), second.limiter().unwrap());
    assert_eq!(a.header().seed, b.header().seed);
    assert_ne!(a.header().seed, [0, 0]);
    // One bucket per key for both handles: 3 per hour in all, not 3 each.
    assert!(a.check(b"k", 2).unwrap().allowed);
    assert!(b.check(b"k", 1).unwrap().allowed);
    assert!(!a.check(b"k", 1).unwrap().allowed);
    assert!(!b.check(b"k", 1).unwrap().allowed);
    // apply_at, the one verb, works over the shared slots too.
    let decision = b.apply_at(b"other", host_now_ns(), 3, Op::Check, OnFull::Deny);
    assert!(decision.decision.allowed);
    assert!(!a.check(b"other", 1).unwrap().allowed);
    // The limiter keeps the mapping alive after the table handles are gone.
    drop((first, second));
    assert!(!a.check(b"k", 1).unwrap().allowed);
    // No temporary file is left beside the table.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("table")]);
}

#[test]
fn files_are_created_0600_or_0660_whatever_the_umask() {
    let dir = scratch_dir("modes");
    let owner = dir.join("owner");
    open(&owner, &config(1, 10)).unwrap();
    assert_eq!(std::fs::metadata(&owner).unwrap().mode() & 0o7777, 0o600);
    let group = dir.join("group");
    SharedTable::open(
        &group,
        &config(1, 10),
        &OpenOptions::new().access(Access::Group),
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&group).unwrap().mode() & 0o7777, 0o660);
    // A group file is refused by an owner-only open, accepted by a group one.
    let error = open(&group, &config(1, 10)).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::Permissions {
                file_mode: 0o660,
                allowed_mode: 0o600
            }
        ),
        "{error:?}"
    );
    SharedTable::open(
        &group,
        &config(1, 10),
        &OpenOptions::new().access(Access::Group),
    )
    .unwrap();
}

#[test]
fn a_world_accessible_file_is_refused() {
    let dir = scratch_dir("world");
    let path = dir.join("table");
    open(&path, &config(1, 10)).unwrap();
    for mode in [0o644, 0o606, 0o666, 0o601] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = open(&path, &config(1, 10)).unwrap_err();
        assert!(
            matches!(error, SharedError::Permissions { file_mode, .. } if file_mode == mode),
            "mode {mode:o}: {error:?}"
        );
    }
}

#[test]
fn a_file_of_another_user_is_refused_unless_asked_for() {
    let dir = scratch_dir("owner");
    let path = dir.join("table");
    open(&path, &config(1, 10)).unwrap();
    let uid = rustix::process::geteuid();
    if !uid.is_root() {
        // Only root can give a file away; the refusal itself is covered by the type.
        eprintln!("not root: the other-owner case needs chown, skipped");
        return;
    }
    let nobody = rustix::process::Uid::from_raw(65534);
    rustix::fs::chown(&path, Some(nobody), None).unwrap();
    let error = open(&path, &config(1, 10)).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::Owner {
                file_uid: 65534,
                our_uid: 0
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("reset any limit"), "{error}");
    let table = SharedTable::open(
        &path,
        &config(1, 10),
        &OpenOptions::new().allow_other_owner(true),
    )
    .unwrap();
    assert!(!table.created());
}

#[test]
fn links_directories_and_devices_are_refused() {
    let dir = scratch_dir("kinds");
    let target = dir.join("table");
    open(&target, &config(1, 10)).unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let error = open(&link, &config(1, 10)).unwrap_err();
    assert!(matches!(error, SharedError::NotRegularFile), "{error:?}");
    let error = open(&dir, &config(1, 10)).unwrap_err();
    assert!(matches!(error, SharedError::NotRegularFile), "{error:?}");
    let error = open(std::path::Path::new("/dev/null"), &config(1, 10)).unwrap_err();
    assert!(matches!(error, SharedError::NotRegularFile), "{error:?}");
}

#[test]
fn another_configuration_is_an_error_naming_the_field() {
    let dir = scratch_dir("mismatch");
    let path = dir.join("table");
    open(&path, &config(10, 100)).unwrap();
    let error = open(&path, &config(20, 100)).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "rate_cost",
                quota: Some(0),
                file: 10,
                ours: 20
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "quota 0's rate_cost differs: the file has 10, this process asked for 20"
    );
    // Resizing is not supported, and the error says so.
    let error = open(&path, &config(10, 200)).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "max_keys",
                quota: None,
                file: 100,
                ours: 200
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("cannot be resized"), "{error}");
    let interval =
        TableConfig::limiter(Quota::per_hour(10).unwrap(), Refill::Interval, 100).unwrap();
    let error = open(&path, &interval).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "refill",
                file: 0,
                ours: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let burst = TableConfig::limiter(
        Quota::per_hour(10).unwrap().with_burst(5).unwrap(),
        Refill::Greedy,
        100,
    )
    .unwrap();
    let error = open(&path, &burst).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "burst_cost",
                file: 10,
                ours: 5,
                ..
            }
        ),
        "{error:?}"
    );
    let entries = [
        PolicyEntry {
            name: "a",
            quota: Quota::per_hour(10).unwrap(),
            dimension: 0,
        },
        PolicyEntry {
            name: "b",
            quota: Quota::per_hour(10).unwrap(),
            dimension: 1,
        },
    ];
    let error = open(&path, &TableConfig::policy(&entries, 100).unwrap()).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "quota_count",
                file: 1,
                ours: 2,
                ..
            }
        ),
        "{error:?}"
    );
    // A single-quota table is a policy of one entry, on dimension 0.
    let one = [PolicyEntry {
        name: "x",
        quota: Quota::per_hour(10).unwrap(),
        dimension: 0,
    }];
    let table = open(&path, &TableConfig::policy(&one, 100).unwrap()).unwrap();
    let error = table
        .policy([PolicyEntry {
            name: "x",
            quota: Quota::per_hour(11).unwrap(),
            dimension: 0,
        }])
        .unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "entries",
                quota: Some(0),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(table.policy(one).is_ok());
    // A table of two quotas is no keyed limiter.
    let two = dir.join("two");
    let error = open(&two, &TableConfig::policy(&entries, 100).unwrap())
        .unwrap()
        .limiter()
        .unwrap_err();
    assert!(
        matches!(error, SharedError::WrongKind { quotas: 2 }),
        "{error:?}"
    );
}

#[test]
fn invalid_configurations_are_typed_errors() {
    let quota = Quota::per_hour(1).unwrap();
    for max_keys in [0, (1 << 27) + 1] {
        let error = TableConfig::limiter(quota, Refill::Greedy, max_keys).unwrap_err();
        assert!(matches!(error, SharedError::Config { .. }), "{error:?}");
    }
    let none: [PolicyEntry<&str>; 0] = [];
    assert!(matches!(
        TableConfig::policy(&none, 10),
        Err(SharedError::Config { .. })
    ));
    let nine: Vec<_> = (0..9)
        .map(|_| PolicyEntry {
            name: "q",
            quota,
            dimension: 0,
        })
        .collect();
    assert!(matches!(
        TableConfig::policy(&nine, 10),
        Err(SharedError::Config { .. })
    ));
}

#[test]
fn truncated_and_garbage_files_are_errors_not_crashes() {
    let dir = scratch_dir("garbage");
    let path = dir.join("table");
    let config = config(10, 100);
    open(&path, &config).unwrap();
    let full = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();

    // Shorter than the header says: the slots would be mapped beyond the end.
    file.set_len(full - 32).unwrap();
    let error = open(&path, &config).unwrap_err();
    assert!(
        matches!(error, SharedError::Truncated { file_bytes, expected_bytes } if file_bytes == full - 32 && expected_bytes == full),
        "{error:?}"
    );
    // Shorter than a header.
    for len in [0, 8, 100, 511] {
        file.set_len(len).unwrap();
        let error = open(&path, &config).unwrap_err();
        assert!(
            matches!(
                error,
                SharedError::Truncated {
                    expected_bytes: 512,
                    ..
                }
            ),
            "{len}: {error:?}"
        );
    }
    // Longer than the header says.
    let mut header = vec![0; 512];
    SharedTable::remove(&path).unwrap();
    open(&path, &config).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.read_exact_at(&mut header, 0).unwrap();
    file.set_len(full + 4096).unwrap();
    assert!(matches!(open(&path, &config), Err(SharedError::Corrupt)));
    file.set_len(full).unwrap();
    open(&path, &config).unwrap();

    // Garbage: not our magic.
    let garbage: Vec<u8> = (0..full)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    file.write_all_at(&garbage, 0).unwrap();
    assert!(matches!(open(&path, &config), Err(SharedError::NotATable)));
    // The magic, then damage: the checksum catches it.
    file.write_all_at(&header, 0).unwrap();
    open(&path, &config).unwrap();
    let mut damaged = header.clone();
    damaged[7 * 8] ^= 1; // the seed's first byte
    file.write_all_at(&damaged, 0).unwrap();
    assert!(matches!(open(&path, &config), Err(SharedError::Corrupt)));
    // An older layout: a version error, naming the version.
    let mut older = header.clone();
    older[2 * 8] = 2; // core's table layout version 2
    file.write_all_at(&older, 0).unwrap();
    let error = open(&path, &config).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::Version {
                field: "table_layout_version",
                file: 2,
                ours: 4,
            }
        ),
        "{error:?}"
    );
    let mut other_mapping = header.clone();
    other_mapping[8] = 9;
    file.write_all_at(&other_mapping, 0).unwrap();
    let error = open(&path, &config).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::Version {
                field: "mapping_version",
                file: 9,
                ours: 2
            }
        ),
        "{error:?}"
    );
    // Restored (header, and the slots the garbage overwrote), it opens again.
    file.write_all_at(&header, 0).unwrap();
    file.write_all_at(&vec![0; (full - 512) as usize], 512)
        .unwrap();
    assert!(
        open(&path, &config)
            .unwrap()
            .limiter()
            .unwrap()
            .check(b"k", 1)
            .unwrap()
            .allowed
    );
}

#[test]
fn remove_unlinks_and_the_next_open_starts_afresh() {
    let dir = scratch_dir("remove");
    let path = dir.join("table");
    let config = config(1, 10);
    let limiter = open(&path, &config).unwrap().limiter().unwrap();
    assert!(limiter.check(b"k", 1).unwrap().allowed);
    // The state persists while the file exists.
    let again = open(&path, &config).unwrap();
    assert!(!again.created());
    assert!(!again.limiter().unwrap().check(b"k", 1).unwrap().allowed);
    assert!(SharedTable::remove(&path).unwrap());
    assert!(!SharedTable::remove(&path).unwrap());
    let fresh = open(&path, &config).unwrap();
    assert!(fresh.created());
    assert!(fresh.limiter().unwrap().check(b"k", 1).unwrap().allowed);
    assert_ne!(
        fresh.limiter().unwrap().header().seed,
        limiter.header().seed
    );
}

#[test]
fn a_shared_policy_reserves_in_one_handle_and_settles_in_another() {
    let dir = scratch_dir("policy");
    let path = dir.join("table");
    let entries = [
        PolicyEntry {
            name: "requests",
            quota: Quota::per_hour(10).unwrap(),
            dimension: 0,
        },
        PolicyEntry {
            name: "tokens",
            quota: Quota::per_hour(1_000).unwrap(),
            dimension: 1,
        },
    ];
    let config = TableConfig::policy(&entries, 100).unwrap();
    let a = open(&path, &config).unwrap().policy(entries).unwrap();
    let b = open(&path, &config).unwrap().policy(entries).unwrap();
    assert_eq!(a.dimensions(), 2);
    let now = host_now_ns();
    let reserved = a.reserve_at(b"user", now, &[1, 400]).unwrap();
    let reservation = reserved.reservation.expect("admitted");
    let settled = b.settle_at(now, reservation, &[1, 700]).unwrap();
    assert_eq!(settled.decisions()[1].remaining, 300);
    // The other handle sees it: 300 tokens left, so 301 is refused on every handle.
    assert!(!a.check_at(b"user", now, &[1, 301]).unwrap().allowed);
    assert!(b.check_at(b"user", now, &[1, 300]).unwrap().allowed);
    assert!(!a.check_at(b"user", now, &[1, 1]).unwrap().allowed);
}

/// The slot of the only key in table 0, found by its fingerprint.
fn only_key_slot(file: &std::fs::File, slot_count: u64) -> u64 {
    let mut found = Vec::new();
    for index in 0..slot_count {
        let mut word = [0; 8];
        file.read_exact_at(&mut word, fingerprint_offset(0, slot_count, index))
            .unwrap();
        if u64::from_le_bytes(word) != 0 {
            found.push(index);
        }
    }
    assert_eq!(found.len(), 1, "one key, one slot");
    found[0]
}

/// Writes a claim stamped `stamp_ns` (a state word with `last_ns == u64::MAX`) into slot
/// `index` of table 0, as a process killed mid-insert leaves it.
fn leave_claim(file: &std::fs::File, slot_count: u64, index: u64, stamp_ns: u64) {
    let word = (u128::from(u64::MAX) << 64) | u128::from(stamp_ns);
    file.write_all_at(&word.to_le_bytes(), state_offset(0, slot_count, index))
        .unwrap();
}

/// Runs `f` on a thread and fails the test if it does not finish within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver
        .recv_timeout(limit)
        .expect("the operation did not finish: a claim left by a dead process blocks it")
}

#[test]
fn a_claim_left_by_a_dead_process_is_recovered_after_the_timeout_without_over_admission() {
    let dir = scratch_dir("claim");
    let path = dir.join("table");
    let config = config(5, 100);
    let slot_count = config.slot_count() as u64;
    let table = open(&path, &config).unwrap();
    let limiter = table.limiter().unwrap();
    // The key's slot as a dead inserter leaves it: the key's fingerprint written, the state
    // still the claim (a key is claimed only while absent or idle, i.e. full).
    assert!(limiter.check(b"victim", 1).unwrap().allowed);
    limiter.reset(b"victim");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let index = only_key_slot(&file, slot_count);
    let claimed_at = host_now_ns();
    leave_claim(&file, slot_count, index, claimed_at);

    // A check waits for the claim to age, then recovers the slot and decides on a full
    // bucket: 5 admitted, no more.
    let started = Instant::now();
    let other = open(&path, &config).unwrap().limiter().unwrap();
    let decision = within(Duration::from_secs(10), move || {
        other.check(b"victim", 5).unwrap()
    });
    let waited = started.elapsed();
    assert!(decision.allowed, "{decision:?}");
    assert!(
        host_now_ns() - claimed_at >= CLAIM_TIMEOUT_NS,
        "recovered a claim younger than the timeout"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(!limiter.check(b"victim", 1).unwrap().allowed);

    // Claims left on every slot, already stale: new keys still find room (each insert
    // recovers what it meets), and each is limited exactly.
    let stale = host_now_ns() - 2 * CLAIM_TIMEOUT_NS;
    for index in 0..slot_count {
        leave_claim(&file, slot_count, index, stale);
    }
    let fresh = open(&path, &config).unwrap().limiter().unwrap();
    let recovered = within(Duration::from_secs(10), move || {
        for key in 0..50u32 {
            let key = key.to_le_bytes();
            assert!(fresh.check(key, 5).unwrap().allowed);
            assert!(!fresh.check(key, 1).unwrap().allowed);
        }
        fresh.recovered_claims()
    });
    assert!(recovered >= 50, "recovered {recovered}");
}

#[test]
fn core_s_limiter_opens_host_wide_and_in_process_as_one_type() {
    use cellgate::{ConfigError, Limiter, LimiterOptions, LimiterQuota, Seed};
    let dir = scratch_dir("limiter");
    let path = dir.join("table");
    let quotas = [
        LimiterQuota::new(Quota::per_hour(3).unwrap()),
        LimiterQuota::new(Quota::per_day(5).unwrap()),
    ];
    let options = LimiterOptions {
        max_keys: 100,
        ..LimiterOptions::with_seed(Seed::new(1, 2))
    };
    let a = SharedTable::open_limiter(&path, &quotas, options, &OpenOptions::new()).unwrap();
    let b = SharedTable::open_limiter(&path, &quotas, options, &OpenOptions::new()).unwrap();
    let now = host_now_ns();
    // 3 per hour for the host: a and b share every key.
    for limiter in [&a, &b, &a] {
        assert!(
            limiter
                .apply_at(b"k", now, &[None], Op::Check)
                .unwrap()
                .allowed
        );
    }
    assert!(!b.apply_at(b"k", now, &[None], Op::Check).unwrap().allowed);
    // A reservation settles on the limiter value that made it.
    let reserved = a.reserve_at(b"r", now, &[Some(2)]).unwrap();
    assert!(a
        .settle_at(now, reserved.reservation.unwrap(), &[Some(1)])
        .is_ok());
    assert_eq!(
        b.apply_at(b"r", now, &[None], Op::Peek)
            .unwrap()
            .decisions()[0]
            .remaining,
        2
    );

    // The same type in process, deciding as core's own Limiter.
    let local: Limiter<cellgate_host::TableSlots> =
        cellgate_host::in_process(&quotas, options).unwrap();
    let core = Limiter::new(&quotas, options).unwrap();
    for step in 0..20 {
        assert_eq!(
            local.apply_at(b"k", step, &[None], Op::Check).unwrap(),
            core.apply_at(b"k", step, &[None], Op::Check).unwrap()
        );
    }

    // The file is the TableConfig::policy of the same quotas; another configuration is a
    // mismatch naming the field, and an invalid one is refused before the file is touched.
    let other = [LimiterQuota::new(Quota::per_hour(4).unwrap()), quotas[1]];
    let error = SharedTable::open_limiter(&path, &other, options, &OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::ConfigMismatch {
                field: "rate_cost",
                quota: Some(0),
                ..
            }
        ),
        "{error:?}"
    );
    let fresh = dir.join("fresh");
    let bad = [LimiterQuota {
        name: Some(""),
        ..quotas[0]
    }];
    let error = SharedTable::open_limiter(&fresh, &bad, options, &OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            error,
            SharedError::Limiter(ConfigError::EmptyName { index: 0 })
        ),
        "{error:?}"
    );
    assert!(!fresh.exists(), "no file for a refused configuration");
}
