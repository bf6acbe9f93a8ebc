//! Several real processes on one shared table: this test binary spawns itself (the `worker`
//! test, which does nothing unless `CELLGATE_HOST_WORKER` names a role) as the workers.
//!
//! - `n_processes_on_a_hot_key_admit_exactly_one_burst`, `..._on_many_keys_...`: 4 workers
//!   hammer one mapping; together they admit exactly what one in-process limiter admits over
//!   the same time, not 4×.
//! - `many_processes_opening_at_once_agree_on_one_creator_and_seed`: the creation race.
//! - `killing_workers_mid_storm_leaves_the_table_exact_and_usable`: SIGKILL at random moments
//!   during a flood of new keys and a hot-key storm, then the invariants.
#![cfg(unix)]

mod support;

use cellgate::{KeyedLimiter, Quota, Refill, NS_PER_DAY};
use cellgate_host::{host_now_ns, OpenOptions, SharedTable, TableConfig, CLAIM_TIMEOUT_NS};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{scratch_dir, state_offset};

const ROLE: &str = "CELLGATE_HOST_WORKER";
/// Lines a worker reports start with this (libtest prints its own lines too).
const REPORT: &str = "@@ ";

/// Every key's quota in these tests: a burst of `burst`, then 1 more per day, so that the
/// refill during a test of seconds is nothing and the exact total is known.
fn quota(burst: u64) -> Quota {
    Quota::with_parts(1, NS_PER_DAY, burst).unwrap()
}

fn config(burst: u64, max_keys: usize) -> TableConfig {
    TableConfig::limiter(quota(burst), Refill::Greedy, max_keys).unwrap()
}

/// The quotas of the `limiter` role: `quota(burst)` and a looser one on the same dimension.
fn limiter_quotas(burst: u64) -> [cellgate::LimiterQuota<'static>; 2] {
    [
        cellgate::LimiterQuota {
            name: Some("tight"),
            ..cellgate::LimiterQuota::new(quota(burst))
        },
        cellgate::LimiterQuota {
            name: Some("loose"),
            ..cellgate::LimiterQuota::new(quota(burst + 3))
        },
    ]
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

fn report(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT}{line}").unwrap();
}

/// Waits until `CELLGATE_START_NS` on the host clock, so that the workers start together.
fn wait_for_start() {
    let start_ns = env_u64("CELLGATE_START_NS");
    while host_now_ns() < start_ns {
        std::hint::spin_loop();
    }
}

/// The entry point of the worker processes; a no-op in a normal test run.
#[test]
fn worker() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = std::env::var("CELLGATE_PATH").unwrap();
    let burst = env_u64("CELLGATE_BURST");
    let max_keys = env_u64("CELLGATE_MAX_KEYS") as usize;
    let config = config(burst, max_keys);
    match role.as_str() {
        "count" => {
            let limiter = SharedTable::open(&path, &config, &OpenOptions::new())
                .unwrap()
                .limiter()
                .unwrap();
            let keys = env_u64("CELLGATE_KEYS");
            let rounds = env_u64("CELLGATE_ROUNDS");
            let mut admitted = vec![0u64; keys as usize];
            wait_for_start();
            for _ in 0..rounds {
                for (key, count) in admitted.iter_mut().enumerate() {
                    let decision = limiter.check(format!("key-{key}"), 1).expect("room");
                    *count += u64::from(decision.allowed);
                }
            }
            let counts: Vec<String> = admitted.iter().map(u64::to_string).collect();
            report(format_args!("counts {}", counts.join(" ")));
        }
        "limiter" => {
            // Core's Limiter over two quotas on one dimension (burst, and burst + 3 a day).
            let quotas = limiter_quotas(burst);
            let options = cellgate::LimiterOptions {
                max_keys,
                ..cellgate::LimiterOptions::default()
            };
            let limiter =
                SharedTable::open_limiter(&path, &quotas, options, &OpenOptions::new()).unwrap();
            let keys = env_u64("CELLGATE_KEYS");
            let rounds = env_u64("CELLGATE_ROUNDS");
            let mut admitted = vec![0u64; keys as usize];
            wait_for_start();
            for _ in 0..rounds {
                for (key, count) in admitted.iter_mut().enumerate() {
                    let now_ns = host_now_ns();
                    let decision = limiter
                        .apply_at(
                            format!("key-{key}").as_bytes(),
                            now_ns,
                            &[None],
                            cellgate::Op::Check,
                        )
                        .unwrap();
                    assert_eq!(decision.reason, cellgate::Reason::Limit);
                    *count += u64::from(decision.allowed);
                }
            }
            let counts: Vec<String> = admitted.iter().map(u64::to_string).collect();
            report(format_args!("counts {}", counts.join(" ")));
        }
        "create" => {
            wait_for_start();
            let table = SharedTable::open(&path, &config, &OpenOptions::new()).unwrap();
            let seed = table.limiter().unwrap().header().seed;
            report(format_args!(
                "created {} seed {} {}",
                u8::from(table.created()),
                seed[0],
                seed[1]
            ));
        }
        "storm" => storm(&path, &config),
        other => panic!("unknown worker role {other}"),
    }
}

/// Until killed: half the calls check the hot key, half a random key of `CELLGATE_KEYS`
/// (more than the table holds: a flood), and one call in 8 resets a random key (so that idle
/// keys are reclaimed and new keys keep being inserted). Reports each admission after it,
/// each reset before it: a kill can only lose an admission or add a reset, so the counts
/// the parent checks are on the safe side.
fn storm(path: &str, config: &TableConfig) {
    let limiter = SharedTable::open(path, config, &OpenOptions::new())
        .unwrap()
        .limiter()
        .unwrap();
    let keys = env_u64("CELLGATE_KEYS");
    let mut state = u64::from(std::process::id()) | 1;
    let mut next = move || {
        // xorshift64: any spread will do.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    loop {
        let roll = next();
        let key = if roll % 2 == 0 {
            "hot".to_string()
        } else {
            format!("flood-{}", (roll >> 8) % keys)
        };
        if roll % 8 == 1 {
            report(format_args!("R {key}"));
            limiter.reset(&key);
            continue;
        }
        if let Ok(decision) = limiter.check(&key, 1) {
            if decision.allowed {
                report(format_args!("A {key}"));
            }
        }
    }
}

/// A worker process of `role`, its reports collected on a thread until it exits.
struct Worker {
    child: Child,
    reports: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Worker {
    fn spawn(role: &str, envs: &[(&str, String)]) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE, role)
            .envs(envs.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reports = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.strip_prefix(REPORT).map(str::to_string))
                .collect()
        });
        Self {
            child,
            reports: Some(reports),
        }
    }

    /// Waits for the worker to exit by itself; its reports. Fails if it failed.
    fn finish(mut self) -> Vec<String> {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
        self.reports.take().unwrap().join().unwrap()
    }

    /// Kills the worker (SIGKILL); the reports it made before.
    fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reports.take().unwrap().join().unwrap()
    }
}

fn base_env(path: &Path, burst: u64, max_keys: usize) -> Vec<(&'static str, String)> {
    vec![
        ("CELLGATE_PATH", path.display().to_string()),
        ("CELLGATE_BURST", burst.to_string()),
        ("CELLGATE_MAX_KEYS", max_keys.to_string()),
    ]
}

/// Runs `processes` count workers on `keys` keys, `rounds` checks of each; returns the total
/// admitted per key, and what one in-process limiter admits for each key when it gets all the
/// workers' checks spread over the same elapsed time.
fn count_run(
    test: &str,
    role: &str,
    processes: usize,
    keys: u64,
    rounds: u64,
    burst: u64,
) -> (Vec<u64>, u64) {
    let dir = scratch_dir(test);
    let path = dir.join("table");
    let max_keys = 1_000;
    // Created here, so that the workers only attach.
    if role == "limiter" {
        let options = cellgate::LimiterOptions {
            max_keys,
            ..cellgate::LimiterOptions::default()
        };
        SharedTable::open_limiter(&path, &limiter_quotas(burst), options, &OpenOptions::new())
            .unwrap();
    } else {
        SharedTable::open(&path, &config(burst, max_keys), &OpenOptions::new()).unwrap();
    }
    let started_ns = host_now_ns();
    let mut env = base_env(&path, burst, max_keys);
    env.push(("CELLGATE_KEYS", keys.to_string()));
    env.push(("CELLGATE_ROUNDS", rounds.to_string()));
    // Far enough ahead for every worker to have started (a debug test binary starts in ms).
    env.push(("CELLGATE_START_NS", (started_ns + 400_000_000).to_string()));
    let workers: Vec<Worker> = (0..processes).map(|_| Worker::spawn(role, &env)).collect();
    let mut totals = vec![0u64; keys as usize];
    for worker in workers {
        let reports = worker.finish();
        let counts = reports
            .iter()
            .find_map(|line| line.strip_prefix("counts "))
            .expect("a worker reports its counts");
        for (total, count) in totals.iter_mut().zip(counts.split(' ')) {
            *total += count.parse::<u64>().unwrap();
        }
    }
    let ended_ns = host_now_ns();
    // One in-process limiter, the same quota, every attempt of one key spread over the run.
    let local = KeyedLimiter::new(quota(burst), 10);
    let attempts = rounds * processes as u64;
    let elapsed_ns = ended_ns - started_ns;
    let in_process = (0..attempts)
        .filter(|&i| {
            let now_ns = started_ns + elapsed_ns * i / attempts;
            local.check_at(b"key", now_ns, 1).unwrap().allowed
        })
        .count() as u64;
    // And the bound from the quota itself: the burst plus the refill over the elapsed time.
    assert_eq!(in_process, burst + elapsed_ns / NS_PER_DAY);
    SharedTable::remove(&path).unwrap();
    (totals, in_process)
}

#[test]
fn n_processes_on_a_hot_key_admit_exactly_one_burst() {
    let (totals, in_process) = count_run("hot", "count", 4, 1, 5_000, 1_000);
    // 20,000 checks by 4 processes: one limiter's 1,000, not 4,000.
    assert_eq!(totals, vec![in_process]);
}

#[test]
fn n_processes_on_many_keys_admit_exactly_one_burst_per_key() {
    let (totals, in_process) = count_run("many", "count", 4, 400, 8, 5);
    // 32 checks of each key by 4 processes: 5 per key, as one limiter.
    assert!(
        totals.iter().all(|&total| total == in_process),
        "{totals:?}"
    );
}

#[test]
fn n_processes_of_core_s_limiter_admit_exactly_the_tightest_quota_per_key() {
    // Two quotas (5 and 8 per day) through core's Limiter in every process: 5 per key.
    let (totals, in_process) = count_run("limiter", "limiter", 4, 300, 8, 5);
    assert!(
        totals.iter().all(|&total| total == in_process),
        "{totals:?}"
    );
}

#[test]
fn many_processes_opening_at_once_agree_on_one_creator_and_seed() {
    let dir = scratch_dir("race");
    for round in 0..3 {
        let path = dir.join(format!("table-{round}"));
        let mut env = base_env(&path, 5, 1_000);
        env.push((
            "CELLGATE_START_NS",
            (host_now_ns() + 400_000_000).to_string(),
        ));
        let workers: Vec<Worker> = (0..8).map(|_| Worker::spawn("create", &env)).collect();
        let reports: Vec<String> = workers
            .into_iter()
            .flat_map(|worker| worker.finish())
            .collect();
        assert_eq!(reports.len(), 8, "{reports:?}");
        let creators = reports
            .iter()
            .filter(|line| line.starts_with("created 1"))
            .count();
        assert_eq!(creators, 1, "exactly one process initialises: {reports:?}");
        let seeds: std::collections::BTreeSet<&str> = reports
            .iter()
            .map(|line| line.split_once(" seed ").unwrap().1)
            .collect();
        assert_eq!(
            seeds.len(),
            1,
            "every process has the creator's seed: {reports:?}"
        );
    }
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["table-0", "table-1", "table-2"]);
}

/// How many slots of table 0 hold a claim (a state word with `last_ns == u64::MAX`).
fn claimed_slots(path: &Path, slot_count: u64) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    (0..slot_count)
        .filter(|&index| {
            let mut word = [0; 16];
            file.read_exact_at(&mut word, state_offset(0, slot_count, index))
                .unwrap();
            u128::from_le_bytes(word) >> 64 == u128::from(u64::MAX)
        })
        .count() as u64
}

#[test]
fn killing_workers_mid_storm_leaves_the_table_exact_and_usable() {
    let dir = scratch_dir("kill");
    let path = dir.join("table");
    let (burst, max_keys, keys) = (5, 1_000, 3_000u64);
    let config = config(burst, max_keys);
    let slot_count = config.slot_count() as u64;
    SharedTable::open(&path, &config, &OpenOptions::new()).unwrap();
    let mut env = base_env(&path, burst, max_keys);
    env.push(("CELLGATE_KEYS", keys.to_string()));
    let mut workers: Vec<Worker> = (0..4).map(|_| Worker::spawn("storm", &env)).collect();
    let mut reports = Vec::new();
    let mut kills = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let storm = Instant::now();
    while storm.elapsed() < Duration::from_secs(3) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(5 + rng % 40));
        let victim = (rng >> 32) as usize % workers.len();
        reports.extend(workers.swap_remove(victim).kill());
        kills += 1;
        workers.push(Worker::spawn("storm", &env));
    }
    for worker in workers {
        reports.extend(worker.kill());
    }
    let claimed_after_storm = claimed_slots(&path, slot_count);

    // Admitted per key within its bound: the burst, plus a burst per reset of the key.
    let mut admitted: BTreeMap<&str, u64> = BTreeMap::new();
    let mut resets: BTreeMap<&str, u64> = BTreeMap::new();
    for line in &reports {
        match line.split_once(' ') {
            Some(("A", key)) => *admitted.entry(key).or_default() += 1,
            Some(("R", key)) => *resets.entry(key).or_default() += 1,
            _ => panic!("unexpected report {line:?}"),
        }
    }
    // (A kill between a decision and its report loses the report: counts are lower bounds.)
    let hot = admitted.get("hot").copied().unwrap_or(0);
    assert!(
        hot <= burst,
        "the hot key: {hot} admitted, one burst ({burst}) in all"
    );
    for (key, count) in &admitted {
        let bound = burst * (1 + resets.get(key).copied().unwrap_or(0));
        assert!(*count <= bound, "{key}: {count} admitted, bound {bound}");
    }
    assert!(
        admitted.len() > 100,
        "the flood placed keys: {}",
        admitted.len()
    );

    // The table is still usable, and exact: once claims left by killed workers are old
    // enough, a process recovers every one it meets. Fill the table with fresh keys until
    // inserts keep failing (each failing insert scans both windows of its key): no claim is
    // left anywhere, and the hot key is still exhausted.
    // On a thread with a deadline: a claim stuck for ever would hang a check, not fail it.
    let (done, finished) = std::sync::mpsc::channel();
    let sweep_path = path.clone();
    std::thread::spawn(move || {
        let path = sweep_path;
        std::thread::sleep(Duration::from_nanos(CLAIM_TIMEOUT_NS) + Duration::from_millis(100));
        let limiter = SharedTable::open(&path, &config, &OpenOptions::new())
            .unwrap()
            .limiter()
            .unwrap();
        assert!(
            !limiter.check(b"hot", 1).unwrap().allowed,
            "the hot key's state survived"
        );
        let mut refused = 0;
        let mut placed = 0;
        for fresh in 0u64.. {
            match limiter.check(format!("sweep-{fresh}"), 1) {
                Ok(decision) => {
                    assert!(decision.allowed);
                    placed += 1;
                }
                Err(_) => refused += 1,
            }
            if refused == 2_000 {
                break;
            }
        }
        let claimed_after_sweep = claimed_slots(&path, slot_count);
        eprintln!(
            "kill test: {kills} kills, {} admissions reported, {claimed_after_storm} claims left \
             by killed workers, {} recovered by the sweep, {placed} fresh keys placed",
            reports.len(),
            limiter.recovered_claims()
        );
        assert_eq!(claimed_after_sweep, 0, "a claim is stuck");
        // Every slot is reusable: once every key but the hot one is reset (idle), new keys are
        // placed, and limited exactly.
        for key in 0..keys {
            limiter.reset(format!("flood-{key}"));
        }
        for fresh in 0..placed {
            limiter.reset(format!("sweep-{fresh}"));
        }
        for fresh in 0..200 {
            let key = format!("after-{fresh}");
            assert!(
                limiter
                    .check(&key, burst)
                    .expect("room once keys are idle")
                    .allowed
            );
            assert!(!limiter.check(&key, 1).unwrap().allowed);
        }
        assert!(
            !limiter.check(b"hot", 1).unwrap().allowed,
            "the hot key is still exhausted"
        );
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the sweep finished: no key is stuck behind a claim");
    SharedTable::remove(&path).unwrap();
}
