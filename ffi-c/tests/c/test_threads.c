/* Hammers one key from several pthreads (cells, keyed limiters, policies, cg_limiter): the handles are shared, the admissions are counted,
 * and the total must never exceed what the quota allows (and, with time frozen, must equal
 * the burst exactly: a lost update would admit more, a spurious denial fewer). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

enum target { KEYED, SINGLE, POLICY, KEYED_POLICY, LIMITER, LIMITER_TWO_DIMENSIONS };

/* The targets whose second quota (on the tokens dimension, 3 a call) binds. */
static int two_dimensions(int target) {
    return target == POLICY || target == KEYED_POLICY || target == LIMITER_TWO_DIMENSIONS;
}

struct hammer {
    enum target target;
    const cg_keyed_limiter *keyed;
    const cg_cell *single;
    const cg_policy *policy;
    const cg_keyed_policy *keyed_policy;
    const cg_limiter *limiter;
    const cg_limiter *limiter_two;
    unsigned long iterations;
    /* 0: every check at now_ns 0; 1: times from a shared counter (ns_per_tick apart);
     * 2: CG_NOW on the built-in monotonic clock. */
    int time_mode;
    uint64_t ns_per_tick;
    atomic_uint_fast64_t ticks;
    atomic_uint_fast64_t admitted;
    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t max_now_ns;
};

static const uint8_t hot_key[] = {'h', 'o', 't', 0, 'k', 'e', 'y'}; /* an embedded NUL */

static void *hammer_thread(void *arg) {
    struct hammer *h = arg;
    uint64_t admitted = 0;
    for (unsigned long i = 0; i < h->iterations; i++) {
        uint64_t now = 0;
        if (h->time_mode == 1) {
            now = (atomic_fetch_add(&h->ticks, 1) + 1) * h->ns_per_tick;
            uint64_t seen = atomic_load(&h->max_now_ns);
            while (now > seen && !atomic_compare_exchange_weak(&h->max_now_ns, &seen, now)) {
            }
        } else if (h->time_mode == 2) {
            now = CG_NOW;
        }
        cg_status status = CG_STATUS_OK;
        int allowed = 0;
        if (h->target == LIMITER || h->target == LIMITER_TWO_DIMENSIONS) {
            cg_limiter_decision d;
            uint64_t costs[2] = {1, 3};
            status = h->target == LIMITER
                         ? cg_limiter_check(h->limiter, hot_key, sizeof hot_key, now, NULL, 0, &d)
                         : cg_limiter_check(h->limiter_two, hot_key, sizeof hot_key, now, costs,
                                            2, &d);
            allowed = status == CG_STATUS_OK && d.allowed;
        } else if (h->target == KEYED || h->target == SINGLE) {
            cg_decision d;
            status = h->target == KEYED
                         ? cg_keyed_limiter_check(h->keyed, hot_key, sizeof hot_key, now, 1, &d)
                         : cg_cell_check(h->single, now, 1, &d);
            allowed = status == CG_STATUS_OK && d.allowed;
        } else {
            cg_policy_decision d;
            uint64_t costs[2] = {1, 3};
            status = h->target == POLICY
                         ? cg_policy_check(h->policy, now, costs, 2, &d)
                         : cg_keyed_policy_check(h->keyed_policy, hot_key, sizeof hot_key, now,
                                                 costs, 2, &d);
            allowed = status == CG_STATUS_OK && d.allowed;
        }
        if (status != CG_STATUS_OK) atomic_fetch_add(&h->errors, 1);
        admitted += (uint64_t)allowed;
    }
    atomic_fetch_add(&h->admitted, admitted);
    return NULL;
}

static uint64_t run(struct hammer *h, unsigned threads) {
    pthread_t ids[MAX_THREADS];
    atomic_store(&h->ticks, 0);
    atomic_store(&h->admitted, 0);
    atomic_store(&h->errors, 0);
    atomic_store(&h->max_now_ns, 0);
    for (unsigned t = 0; t < threads; t++) CHECK(pthread_create(&ids[t], NULL, hammer_thread, h) == 0);
    for (unsigned t = 0; t < threads; t++) CHECK(pthread_join(ids[t], NULL) == 0);
    CHECK(atomic_load(&h->errors) == 0);
    return atomic_load(&h->admitted);
}

/* The most a quota admits over [0, max_now_ns] from a full bucket: the burst plus whole units
 * refilled, i.e. burst + floor(max_now_ns * rate / period). */
static uint64_t bound(cg_quota q, uint64_t max_now_ns) {
    return q.burst_cost + (uint64_t)((unsigned __int128)max_now_ns * q.rate_cost / q.period_ns);
}

void test_threads(unsigned threads, unsigned long iterations) {
    if (threads < 2) threads = 2;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    /* 3000 per second: the interval, 333,333.3 ns, is not a whole number of nanoseconds,
     * which is where an inexact limiter over-admits. */
    cg_quota quota = {3000, CG_NS_PER_SECOND, 50};
    struct hammer *h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    if (h == NULL) return;
    h->iterations = iterations;

    cg_keyed_limiter *keyed = NULL;
    cg_cell *single = NULL;
    cg_policy *policy = NULL;
    cg_keyed_policy *keyed_policy = NULL;
    CHECK_OK(cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, 1024, NULL, &keyed));
    CHECK_OK(cg_cell_new_gcra(quota, NULL, &single));
    /* Two entries on two dimensions; the second binds (cost 3 of a burst of 90). */
    cg_policy_entry entries[2] = {
        {"requests", CG_NUL_TERMINATED, quota, 0},
        {"tokens", 6, {9000, CG_NS_PER_SECOND, 90}, 1},
    };
    CHECK_OK(cg_policy_new(entries, 2, NULL, &policy));
    CHECK_OK(cg_keyed_policy_new(entries, 2, 1024, NULL, &keyed_policy));
    cg_limiter *limiter = NULL, *limiter_two = NULL;
    cg_limiter_quota one[1] = {{quota, NULL, 0, 0}};
    cg_limiter_quota two[2] = {
        {quota, "requests", CG_NUL_TERMINATED, 0},
        {{9000, CG_NS_PER_SECOND, 90}, "tokens", CG_NUL_TERMINATED, 1},
    };
    CHECK_OK(cg_limiter_new(one, 1, NULL, &limiter));
    CHECK_OK(cg_limiter_new(two, 2, NULL, &limiter_two));
    if (!keyed || !single || !policy || !keyed_policy || !limiter || !limiter_two) return;
    h->limiter = limiter;
    h->limiter_two = limiter_two;
    h->keyed = keyed;
    h->single = single;
    h->policy = policy;
    h->keyed_policy = keyed_policy;

    for (int target = KEYED; target <= LIMITER_TWO_DIMENSIONS; target++) {
        h->target = (enum target)target;
        /* Time frozen at 0: exactly the burst is admitted, whatever the interleaving. */
        h->time_mode = 0;
        uint64_t admitted = run(h, threads);
        CHECK(admitted == (two_dimensions(target) ? 30u : 50u));

        /* Time moving (a shared counter, 1 us a tick): never above burst + refill. */
        h->time_mode = 1;
        h->ns_per_tick = 1000;
        admitted = run(h, threads);
        uint64_t max_now = atomic_load(&h->max_now_ns);
        uint64_t limit = two_dimensions(target) ? bound(entries[1].quota, max_now) / 3
                                                : bound(quota, max_now);
        if (admitted > limit)
            fprintf(stderr, "target %d: admitted %llu > bound %llu\n", target,
                    (unsigned long long)admitted, (unsigned long long)limit);
        CHECK(admitted <= limit);
    }

    /* The built-in monotonic clock through CG_NOW, on fresh handles: never more than the
     * burst plus what the elapsed time refills. */
    cg_keyed_limiter_free(keyed);
    keyed = NULL;
    CHECK_OK(cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, 16, NULL, &keyed));
    h->keyed = keyed;
    h->target = KEYED;
    h->time_mode = 2;
    uint64_t start = 0, end = 0;
    CHECK_OK(cg_monotonic_now(&start));
    uint64_t admitted = run(h, threads);
    CHECK_OK(cg_monotonic_now(&end));
    CHECK(end >= start);
    CHECK(admitted >= quota.burst_cost);
    /* The limiter's first reading is at or after `start`, its last at or before `end`. */
    CHECK(admitted <= bound(quota, end - start));

    cg_keyed_stats stats;
    CHECK_OK(cg_keyed_limiter_stats(keyed, &stats));
    CHECK(stats.live_keys <= 1);
    CHECK(stats.rejected_full == 0);

    cg_keyed_limiter_free(keyed);
    cg_cell_free(single);
    cg_policy_free(policy);
    cg_keyed_policy_free(keyed_policy);
    cg_limiter_free(limiter);
    cg_limiter_free(limiter_two);
    free(h);
}
