/* The keyed check from C: `cg_keyed_limiter_check` on a present key among N, in the loop that
 * ffi-c/bench/bench_keyed.rs runs on the Rust call (`KeyedLimiter::check_at`), with the same
 * keys in the same order, so the difference is the cost of the C ABI.
 *
 *   bench_keyed NAME KEYS ITERATIONS ROUNDS
 *
 * Keys are 8 bytes from splitmix64 (seed 42), checked in a shuffled order, round and round;
 * time is injected and advanced by 1 ms (the emission interval of 1000/second) every check,
 * so every check is admitted and written (asserted). Prints one line per round:
 * `NAME KEYS NS_PER_CHECK`.
 *
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: on a machine shared
 * with other work, the time this thread spends descheduled is not counted, which keeps the
 * figures comparable between variants run at different moments. */
#define _POSIX_C_SOURCE 200809L
#include <cellgate.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s NAME KEYS ITERATIONS ROUNDS\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    size_t keys = strtoull(argv[2], NULL, 10);
    uint64_t iterations = strtoull(argv[3], NULL, 10);
    unsigned rounds = (unsigned)strtoul(argv[4], NULL, 10);
    const uint64_t step_ns = CG_NS_PER_SECOND / 1000;

    cg_keyed_limiter *limiter = NULL;
    cg_quota quota = {1000, CG_NS_PER_SECOND, 1000};
    if (cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, keys, NULL, &limiter) != CG_STATUS_OK)
        return 1;
    /* N present keys: a key whose window is full is skipped, as in benches/benches/keyed.rs. */
    uint8_t *key_bytes = malloc(keys * 8);
    if (key_bytes == NULL) return 1;
    uint64_t seed = 42, time_ns = 0;
    cg_decision d;
    for (size_t placed = 0; placed < keys;) {
        uint64_t key = splitmix64(&seed);
        memcpy(key_bytes + placed * 8, &key, 8);
        cg_status status = cg_keyed_limiter_check(limiter, key_bytes + placed * 8, 8, 0, 1, &d);
        if (status == CG_STATUS_OK) placed++;
        else if (status != CG_STATUS_TABLE_FULL) return 1;
    }
    /* Shuffled order (Fisher-Yates over the same generator). */
    size_t *order = malloc(keys * sizeof *order);
    if (order == NULL) return 1;
    for (size_t i = 0; i < keys; i++) order[i] = i;
    for (size_t i = keys - 1; i > 0; i--) {
        size_t j = (size_t)(splitmix64(&seed) % (i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint8_t *ordered = malloc(keys * 8);
    if (ordered == NULL) return 1;
    for (size_t i = 0; i < keys; i++) memcpy(ordered + i * 8, key_bytes + order[i] * 8, 8);

    uint64_t admitted = 0, total = 0;
    size_t next = 0;
    for (unsigned round = 0; round <= rounds; round++) {
        uint64_t start = cpu_ns();
        for (uint64_t i = 0; i < iterations; i++) {
            time_ns += step_ns;
            cg_keyed_limiter_check(limiter, ordered + next * 8, 8, time_ns, 1, &d);
            admitted += d.allowed;
            if (++next == keys) next = 0;
        }
        uint64_t elapsed = cpu_ns() - start;
        total += iterations;
        if (round > 0) /* round 0 warms up */
            printf("%s %zu %.2f\n", name, keys, (double)elapsed / (double)iterations);
    }
    cg_keyed_stats stats;
    cg_keyed_limiter_stats(limiter, &stats);
    cg_keyed_limiter_free(limiter);
    free(ordered);
    free(order);
    free(key_bytes);
    if (admitted != total || stats.live_keys != keys) {
        fprintf(stderr, "%s: off the admitted path (%llu of %llu admitted)\n", name,
                (unsigned long long)admitted, (unsigned long long)total);
        return 1;
    }
    return 0;
}
