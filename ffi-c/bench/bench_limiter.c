/* cg_limiter_check (in process and host-wide) against cg_keyed_limiter_check, in the loop of
 * bench_keyed.c (the same keys, order, injected time and CPU-time measure), so that one run
 * compares the product's check with the keyed table's and the shared table's with both.
 *
 *   bench_limiter API NAME KEYS ITERATIONS ROUNDS
 *
 * API: `keyed` (cg_keyed_limiter_check), `limiter` (cg_limiter_check over cg_limiter_new) or
 * `shared` (cg_limiter_check over cg_limiter_open_shared, a fresh file under /dev/shm,
 * removed at the end). One quota, 1000/second; every check is admitted (asserted). Prints one
 * line per round: `NAME KEYS NS_PER_CHECK`. */
#define _POSIX_C_SOURCE 200809L
#include <cellgate.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

enum api { KEYED, LIMITER, SHARED };

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s keyed|limiter|shared NAME KEYS ITERATIONS ROUNDS\n", argv[0]);
        return 2;
    }
    enum api api = strcmp(argv[1], "keyed") == 0     ? KEYED
                   : strcmp(argv[1], "limiter") == 0 ? LIMITER
                   : strcmp(argv[1], "shared") == 0  ? SHARED
                                                     : (enum api)-1;
    if ((int)api < 0) return 2;
    const char *name = argv[2];
    size_t keys = strtoull(argv[3], NULL, 10);
    uint64_t iterations = strtoull(argv[4], NULL, 10);
    unsigned rounds = (unsigned)strtoul(argv[5], NULL, 10);
    const uint64_t step_ns = CG_NS_PER_SECOND / 1000;
    cg_quota quota = {1000, CG_NS_PER_SECOND, 1000};

    cg_keyed_limiter *keyed = NULL;
    cg_limiter *limiter = NULL;
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/cellgate-bench-%ld", (long)getpid());
    cg_limiter_quota quotas[1] = {{quota, NULL, CG_NUL_TERMINATED, 0}};
    cg_limiter_options options;
    cg_limiter_options_init(&options);
    options.max_keys = keys;
    cg_status status = CG_STATUS_OK;
    if (api == KEYED) status = cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, keys, NULL, &keyed);
    if (api == LIMITER) status = cg_limiter_new(quotas, 1, &options, &limiter);
    if (api == SHARED) {
        cg_shared_remove(path, NULL);
        status = cg_limiter_open_shared(path, quotas, 1, &options, NULL, &limiter);
    }
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", name, cg_status_message((int)status));
        return 1;
    }
    uint8_t *key_bytes = malloc(keys * 8);
    if (key_bytes == NULL) return 1;
    uint64_t seed = 42, time_ns = 0;
    cg_decision d;
    cg_limiter_decision ld;
    /* N present keys: a key the table has no room for is skipped, as in bench_keyed.c. */
    for (size_t placed = 0; placed < keys;) {
        uint64_t key = splitmix64(&seed);
        memcpy(key_bytes + placed * 8, &key, 8);
        bool stored;
        if (api == KEYED) {
            status = cg_keyed_limiter_check(keyed, key_bytes + placed * 8, 8, 0, 1, &d);
            if (status != CG_STATUS_OK && status != CG_STATUS_TABLE_FULL) return 1;
            stored = status == CG_STATUS_OK;
        } else {
            if (cg_limiter_check(limiter, key_bytes + placed * 8, 8, 0, NULL, 0, &ld) != CG_STATUS_OK)
                return 1;
            stored = ld.reason == CG_REASON_LIMIT;
        }
        if (stored) placed++;
    }
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
        if (api == KEYED) {
            for (uint64_t i = 0; i < iterations; i++) {
                time_ns += step_ns;
                cg_keyed_limiter_check(keyed, ordered + next * 8, 8, time_ns, 1, &d);
                admitted += d.allowed;
                if (++next == keys) next = 0;
            }
        } else {
            for (uint64_t i = 0; i < iterations; i++) {
                time_ns += step_ns;
                cg_limiter_check(limiter, ordered + next * 8, 8, time_ns, NULL, 0, &ld);
                admitted += ld.allowed;
                if (++next == keys) next = 0;
            }
        }
        uint64_t elapsed = cpu_ns() - start;
        total += iterations;
        if (round > 0) /* round 0 warms up */
            printf("%s %zu %.2f\n", name, keys, (double)elapsed / (double)iterations);
    }
    cg_keyed_limiter_free(keyed);
    cg_limiter_free(limiter);
    if (api == SHARED) cg_shared_remove(path, NULL);
    free(ordered);
    free(order);
    free(key_bytes);
    if (admitted != total) {
        fprintf(stderr, "%s: off the admitted path (%llu of %llu admitted)\n", name,
                (unsigned long long)admitted, (unsigned long long)total);
        return 1;
    }
    return 0;
}
