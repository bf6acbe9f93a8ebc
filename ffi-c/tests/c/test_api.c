/* The API's contracts from C: versions, statuses, NULL and invalid arguments (each a status,
 * changing nothing), keys as bytes, clocks and CG_NOW, policies with reserve/settle, header
 * and body rendering, client keys. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <string.h>

static const cg_quota per_second_3 = {3, CG_NS_PER_SECOND, 3};

static void test_version_and_statuses(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", CG_VERSION_MAJOR, CG_VERSION_MINOR,
             CG_VERSION_PATCH);
    CHECK(strcmp(CG_VERSION, expected) == 0);
    CHECK(strcmp(cg_version(), CG_VERSION) == 0);

    /* Every code has its own message; codes past the last are "unknown". */
    for (int code = CG_STATUS_OK; code <= CG_STATUS_BAD_REPLY; code++) {
        const char *message = cg_status_message(code);
        CHECK(message != NULL && message[0] != '\0');
        CHECK(strstr(message, "unknown") == NULL);
        for (int other = CG_STATUS_OK; other < code; other++)
            CHECK(strcmp(message, cg_status_message(other)) != 0);
    }
    CHECK(strcmp(cg_status_message(-1), "unknown status code") == 0);
    CHECK(strcmp(cg_status_message(CG_STATUS_BAD_REPLY + 1), "unknown status code") == 0);
    /* The numbers are part of the ABI. */
    CHECK(CG_STATUS_NULL_ARGUMENT == 1 && CG_STATUS_TABLE_FULL == 11 && CG_STATUS_PANIC == 22);
    CHECK(CG_STATUS_OUT_OF_MEMORY == 23 && CG_STATUS_EMPTY_NAME == 24 &&
          CG_STATUS_DUPLICATE_NAME == 25 && CG_STATUS_INVALID_MAX_KEYS == 26);
}

static void test_quotas(void) {
    cg_quota q;
    size_t offset = 99;
    CHECK_OK(cg_quota_parse("10 per minute", CG_NUL_TERMINATED, &q, &offset));
    CHECK(q.rate_cost == 10 && q.period_ns == CG_NS_PER_MINUTE && q.burst_cost == 10);
    CHECK(offset == 99); /* written only on a parse error */
    /* Pointer and length: only the first 3 bytes count. */
    CHECK_OK(cg_quota_parse("5/sXXX", 3, &q, NULL));
    CHECK(q.rate_cost == 5 && q.period_ns == CG_NS_PER_SECOND);
    CHECK_OK(cg_quota_parse("500/7 days (burst 20)", CG_NUL_TERMINATED, &q, NULL));
    CHECK(q.rate_cost == 500 && q.period_ns == 7 * CG_NS_PER_DAY && q.burst_cost == 20);

    cg_quota untouched = {1, 2, 3};
    CHECK_STATUS(cg_quota_parse("10 / fortnight", CG_NUL_TERMINATED, &untouched, &offset),
                 CG_STATUS_PARSE_ERROR);
    CHECK(offset == 5);
    CHECK(untouched.rate_cost == 1 && untouched.period_ns == 2 && untouched.burst_cost == 3);
    CHECK_STATUS(cg_quota_parse("0/second", CG_NUL_TERMINATED, &q, NULL), CG_STATUS_ZERO_RATE);
    CHECK_STATUS(cg_quota_parse("10/s; 1000/day", CG_NUL_TERMINATED, &q, &offset),
                 CG_STATUS_PARSE_ERROR);
    CHECK(offset == 4);
    CHECK_STATUS(cg_quota_parse("1/100000000000 days", CG_NUL_TERMINATED, &q, NULL),
                 CG_STATUS_PERIOD_OVERFLOW);
    CHECK_STATUS(cg_quota_parse("", 0, &q, NULL), CG_STATUS_PARSE_ERROR);
    CHECK_STATUS(cg_quota_parse(NULL, 0, &q, NULL), CG_STATUS_PARSE_ERROR); /* empty text */
    CHECK_STATUS(cg_quota_parse(NULL, 3, &q, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_quota_parse(NULL, CG_NUL_TERMINATED, &q, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_quota_parse("1/s", 3, NULL, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_quota_parse("\xff/s", CG_NUL_TERMINATED, &q, NULL), CG_STATUS_INVALID_UTF8);
    CHECK_STATUS(cg_quota_parse("1/s", (size_t)PTRDIFF_MAX + 1, &q, NULL),
                 CG_STATUS_INVALID_ARGUMENT);

    cg_quota list[2];
    size_t count = 0;
    CHECK_OK(cg_quota_parse_list("10/s; 1000/day", CG_NUL_TERMINATED, list, 2, &count, NULL));
    CHECK(count == 2 && list[0].rate_cost == 10 && list[1].period_ns == CG_NS_PER_DAY);
    CHECK_STATUS(cg_quota_parse_list("1/s|2/s|3/s", CG_NUL_TERMINATED, list, 2, &count, NULL),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(count == 3 && list[1].rate_cost == 2);
    CHECK_STATUS(cg_quota_parse_list("1/s|2/s|3/s", CG_NUL_TERMINATED, NULL, 0, &count, NULL),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(count == 3);
    CHECK_STATUS(cg_quota_parse_list("1/s;;", CG_NUL_TERMINATED, list, 2, &count, &offset),
                 CG_STATUS_PARSE_ERROR);
    CHECK_STATUS(cg_quota_parse_list("1/s", 3, NULL, 2, &count, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_quota_parse_list("1/s", 3, list, 2, NULL, NULL), CG_STATUS_NULL_ARGUMENT);

    CHECK_OK(cg_quota_new(100, CG_NS_PER_MINUTE, 20, &q));
    CHECK_STATUS(cg_quota_new(0, 1, 1, &q), CG_STATUS_ZERO_RATE);
    CHECK_STATUS(cg_quota_new(1, 0, 1, &q), CG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(cg_quota_new(1, 1, 0, &q), CG_STATUS_ZERO_BURST);
    CHECK_STATUS(cg_quota_new(1, CG_NS_PER_SECOND, UINT64_MAX, &q), CG_STATUS_CAPACITY_OVERFLOW);
    CHECK_STATUS(cg_quota_new(1, 1, 1, NULL), CG_STATUS_NULL_ARGUMENT);
}

static void test_cell(void) {
    cg_cell *limiter = NULL;
    cg_decision d;
    /* Invalid quotas and arguments: a status, and no handle. */
    CHECK_STATUS(cg_cell_new_gcra((cg_quota){0, 1, 1}, NULL, &limiter), CG_STATUS_ZERO_RATE);
    CHECK(limiter == NULL);
    CHECK_STATUS(cg_cell_new_gcra(per_second_3, NULL, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_cell_new_token_bucket(per_second_3, 7, CG_FULL, 0, NULL, &limiter),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_cell_new_token_bucket(per_second_3, CG_REFILL_INTERVAL, 4, 0, NULL,
                                             &limiter),
                 CG_STATUS_INITIAL_FILL_ABOVE_BURST);
    CHECK(limiter == NULL);

    CHECK_OK(cg_cell_new_gcra(per_second_3, NULL, &limiter));
    CHECK_OK(cg_cell_check(limiter, 0, 3, &d));
    CHECK(d.allowed && d.limit == 3 && d.remaining == 0 && d.reset_after_ns == CG_NS_PER_SECOND);
    CHECK_OK(cg_cell_check(limiter, 0, 1, &d));
    CHECK(!d.allowed && d.retry_after_ns == 333333334);
    CHECK_OK(cg_cell_check(limiter, 0, 4, &d));
    CHECK(!d.allowed && d.retry_after_ns == CG_NEVER);
    /* NULL arguments: a status and nothing consumed. */
    CHECK_STATUS(cg_cell_check(NULL, 0, 1, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_cell_check(limiter, 333333334, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_cell_peek(limiter, 0, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_cell_check(limiter, 333333334, 1, &d));
    CHECK(d.allowed);
    /* force and refund accept a NULL decision. */
    CHECK_OK(cg_cell_force(limiter, 333333334, 3, NULL));
    CHECK_OK(cg_cell_peek(limiter, 333333334, 0, &d));
    CHECK(!d.allowed && d.remaining == 0);
    CHECK_OK(cg_cell_refund(limiter, 333333334, 3, NULL));
    CHECK_STATUS(cg_cell_force(NULL, 0, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_cell_refund(NULL, 0, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_cell_reset(limiter));
    CHECK_STATUS(cg_cell_reset(NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_cell_peek(limiter, 333333334, 3, &d));
    CHECK(d.allowed && d.remaining == 3);
    cg_quota q;
    CHECK_OK(cg_cell_quota(limiter, &q));
    CHECK(q.rate_cost == 3 && q.burst_cost == 3);
    CHECK_STATUS(cg_cell_quota(limiter, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_cell_quota(NULL, &q), CG_STATUS_NULL_ARGUMENT);
    cg_cell_free(limiter);
    cg_cell_free(NULL);

    /* An interval token bucket starting empty at t = 0. */
    CHECK_OK(cg_cell_new_token_bucket((cg_quota){100, CG_NS_PER_MINUTE, 100},
                                         CG_REFILL_INTERVAL, 0, 0, NULL, &limiter));
    CHECK_OK(cg_cell_check(limiter, 1, 1, &d));
    CHECK(!d.allowed && d.retry_after_ns == CG_NS_PER_MINUTE - 1);
    CHECK_OK(cg_cell_check(limiter, CG_NS_PER_MINUTE, 100, &d));
    CHECK(d.allowed);
    cg_cell_free(limiter);
}

static void test_clocks(void) {
    cg_clock *clock = NULL;
    cg_cell *limiter = NULL;
    cg_decision d;
    uint64_t now = 0;
    CHECK_STATUS(cg_clock_new(0, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_clock_new(1000, &clock));
    CHECK_OK(cg_clock_now(clock, &now));
    CHECK(now == 1000);
    CHECK_OK(cg_cell_new_gcra(per_second_3, clock, &limiter));
    /* The limiter shares the clock and outlives the handle. */
    cg_clock_free(clock);
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 1, &d));
    CHECK(!d.allowed && d.retry_after_ns == 333333334);
    cg_cell_free(limiter);

    CHECK_OK(cg_clock_new(0, &clock));
    CHECK_OK(cg_cell_new_gcra(per_second_3, clock, &limiter));
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 3, &d));
    CHECK_OK(cg_clock_advance(clock, 333333333));
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 1, &d));
    CHECK(!d.allowed && d.retry_after_ns == 1);
    CHECK_OK(cg_clock_advance(clock, 1));
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 1, &d));
    CHECK(d.allowed);
    /* Backwards is no time passing. */
    CHECK_OK(cg_clock_set(clock, 0));
    CHECK_OK(cg_cell_peek(limiter, CG_NOW, 1, &d));
    CHECK(!d.allowed && d.retry_after_ns == 666666667);
    /* Saturating at UINT64_MAX, which only a clock reaches. */
    CHECK_OK(cg_clock_advance(clock, UINT64_MAX));
    CHECK_OK(cg_clock_now(clock, &now));
    CHECK(now == UINT64_MAX);
    CHECK_STATUS(cg_clock_advance(NULL, 1), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_clock_set(NULL, 1), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_clock_now(NULL, &now), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_clock_now(clock, NULL), CG_STATUS_NULL_ARGUMENT);
    cg_cell_free(limiter);
    cg_clock_free(clock);
    cg_clock_free(NULL);

    /* The monotonic clock never goes backwards. */
    uint64_t a = 0, b = 0;
    CHECK_OK(cg_monotonic_now(&a));
    CHECK_OK(cg_monotonic_now(&b));
    CHECK(b >= a);
    CHECK_STATUS(cg_monotonic_now(NULL), CG_STATUS_NULL_ARGUMENT);
}

static void test_keyed(void) {
    cg_keyed_limiter *limiter = NULL;
    cg_decision d;
    CHECK_STATUS(cg_keyed_limiter_new(per_second_3, 9, 10, NULL, &limiter),
                 CG_STATUS_INVALID_ARGUMENT);
    /* max_keys is 1 to CG_MAX_MAX_KEYS, as in every runtime (core's check_max_keys). */
    CHECK(CG_MAX_MAX_KEYS == 134217728 && CG_DEFAULT_MAX_KEYS == 100000);
    CHECK_STATUS(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, 0, NULL, &limiter),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK_STATUS(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, CG_MAX_MAX_KEYS + 1, NULL,
                                      &limiter),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK_STATUS(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, SIZE_MAX, NULL, &limiter),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK_STATUS(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, PTRDIFF_MAX / 64, NULL,
                                      &limiter),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK(strcmp(cg_status_message(CG_STATUS_INVALID_MAX_KEYS),
                 "max_keys must be in 1..=134217728") == 0);
    /* The smallest table: one key. */
    CHECK_OK(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, 1, NULL, &limiter));
    cg_keyed_limiter_free(limiter);
    limiter = NULL;
    CHECK_STATUS(cg_keyed_limiter_new((cg_quota){1, 0, 1}, CG_REFILL_GREEDY, 10, NULL, &limiter),
                 CG_STATUS_ZERO_PERIOD);
    CHECK(limiter == NULL);
    CHECK_OK(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, 100, NULL, &limiter));

    /* Keys are bytes: "a", "a\0" and "a\0b" are three keys; the empty key is one more, and
     * NULL with length 0 is the empty key. */
    const uint8_t a_nul_b[] = {'a', 0, 'b'};
    CHECK_OK(cg_keyed_limiter_check(limiter, a_nul_b, 1, 0, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_limiter_check(limiter, a_nul_b, 2, 0, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_limiter_check(limiter, a_nul_b, 3, 0, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_limiter_check(limiter, (const uint8_t *)"", 0, 0, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_limiter_check(limiter, NULL, 0, 0, 1, &d));
    CHECK(!d.allowed); /* the same empty key */
    CHECK_OK(cg_keyed_limiter_check(limiter, a_nul_b, 3, 0, 1, &d));
    CHECK(!d.allowed);
    CHECK_OK(cg_keyed_limiter_peek(limiter, (const uint8_t *)"b", 1, 0, 3, &d));
    CHECK(d.allowed && d.remaining == 3);

    /* NULL and invalid arguments: a status, nothing consumed. */
    CHECK_STATUS(cg_keyed_limiter_check(NULL, a_nul_b, 1, 0, 1, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_check(limiter, NULL, 1, 0, 1, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_check(limiter, (const uint8_t *)"b", 1, 0, 1, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_check(limiter, (const uint8_t *)"b", SIZE_MAX, 0, 1, &d),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_peek(limiter, (const uint8_t *)"b", 1, 0, 1, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_force(limiter, NULL, 2, 0, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_refund(NULL, NULL, 0, 0, 1, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_reset(limiter, NULL, 1, 0), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_keyed_limiter_peek(limiter, (const uint8_t *)"b", 1, 0, 3, &d));
    CHECK(d.allowed && d.remaining == 3);

    CHECK_OK(cg_keyed_limiter_force(limiter, (const uint8_t *)"b", 1, 0, 6, NULL));
    CHECK_OK(cg_keyed_limiter_peek(limiter, (const uint8_t *)"b", 1, 0, 0, &d));
    CHECK(!d.allowed && d.remaining == 0);
    CHECK_OK(cg_keyed_limiter_refund(limiter, (const uint8_t *)"b", 1, 0, 6, &d));
    CHECK(d.allowed && d.remaining == 3);
    CHECK_OK(cg_keyed_limiter_reset(limiter, a_nul_b, 3, 0));
    CHECK_OK(cg_keyed_limiter_check(limiter, a_nul_b, 3, 0, 3, &d));
    CHECK(d.allowed);

    cg_quota q;
    CHECK_OK(cg_keyed_limiter_quota(limiter, &q));
    CHECK(q.rate_cost == 3);
    cg_keyed_stats stats;
    CHECK_OK(cg_keyed_limiter_stats(limiter, &stats));
    CHECK(stats.live_keys == 5 && stats.rejected_full == 0 && stats.slot_count == 136);
    CHECK_STATUS(cg_keyed_limiter_stats(limiter, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_limiter_quota(NULL, &q), CG_STATUS_NULL_ARGUMENT);
    cg_keyed_limiter_free(limiter);
    cg_keyed_limiter_free(NULL);

    /* A table of one window (16 slots): the 17th live key is refused, no live key evicted. */
    CHECK_OK(cg_keyed_limiter_new(per_second_3, CG_REFILL_GREEDY, 1, NULL, &limiter));
    int full = 0;
    for (uint8_t key = 0; key < 17; key++) {
        cg_status status = cg_keyed_limiter_check(limiter, &key, 1, 0, 3, &d);
        CHECK(status == CG_STATUS_OK || status == CG_STATUS_TABLE_FULL);
        full += status == CG_STATUS_TABLE_FULL;
    }
    CHECK(full == 1);
    for (uint8_t key = 0; key < 17; key++) {
        cg_status status = cg_keyed_limiter_check(limiter, &key, 1, 0, 1, &d);
        /* Each placed key is still exhausted; the refused one is refused again. */
        CHECK((status == CG_STATUS_OK && !d.allowed) || status == CG_STATUS_TABLE_FULL);
    }
    CHECK_OK(cg_keyed_limiter_stats(limiter, &stats));
    CHECK(stats.live_keys == 16 && stats.rejected_full == 2 && stats.slot_count == 16);
    cg_keyed_limiter_free(limiter);
}

static void test_policies(void) {
    cg_policy_entry entries[3] = {
        {"burst", CG_NUL_TERMINATED, {2, CG_NS_PER_SECOND, 2}, 0},
        {"daily", 5, {4, CG_NS_PER_DAY, 4}, 0},
        {"tokens", CG_NUL_TERMINATED, {1000, CG_NS_PER_MINUTE, 1000}, 1},
    };
    cg_policy *policy = NULL;
    cg_policy_decision d;

    /* Validation. */
    CHECK_STATUS(cg_policy_new(entries, 0, NULL, &policy), CG_STATUS_EMPTY_POLICY);
    CHECK_STATUS(cg_policy_new(NULL, 2, NULL, &policy), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_policy_new(entries, 9, NULL, &policy), CG_STATUS_TOO_MANY_QUOTAS);
    cg_policy_entry bad = entries[0];
    bad.dimension = 1; /* dimension 0 unused */
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_INVALID_DIMENSION);
    bad.dimension = CG_MAX_POLICY_QUOTAS;
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_INVALID_DIMENSION);
    bad = entries[0];
    bad.name = "tab\there";
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_INVALID_NAME);
    bad.name = "\xc3\xa9t\xc3\xa9";
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_INVALID_NAME);
    bad.name = NULL;
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_NULL_ARGUMENT);
    /* Names as core's check_names has them in every runtime: not empty (NULL with length 0
     * is the empty name too), each once. */
    bad.name = "";
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_EMPTY_NAME);
    bad.name_len = 0;
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_EMPTY_NAME);
    bad.name = NULL;
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_EMPTY_NAME);
    cg_policy_entry twice[3] = {entries[0], entries[2], entries[0]};
    twice[2].quota = (cg_quota){9, CG_NS_PER_HOUR, 9};
    CHECK_STATUS(cg_policy_new(twice, 3, NULL, &policy), CG_STATUS_DUPLICATE_NAME);
    twice[2].name = "burstX";
    twice[2].name_len = 5; /* the same 5 bytes as "burst" */
    CHECK_STATUS(cg_policy_new(twice, 3, NULL, &policy), CG_STATUS_DUPLICATE_NAME);
    cg_keyed_policy *keyed_bad = NULL;
    CHECK_STATUS(cg_keyed_policy_new(twice, 3, 16, NULL, &keyed_bad), CG_STATUS_DUPLICATE_NAME);
    twice[2].name = "";
    twice[2].name_len = CG_NUL_TERMINATED;
    CHECK_STATUS(cg_keyed_policy_new(twice, 3, 16, NULL, &keyed_bad), CG_STATUS_EMPTY_NAME);
    twice[2].name = "hourly";
    CHECK_STATUS(cg_keyed_policy_new(twice, 3, 0, NULL, &keyed_bad), CG_STATUS_INVALID_MAX_KEYS);
    CHECK_STATUS(cg_keyed_policy_new(twice, 3, CG_MAX_MAX_KEYS + 1, NULL, &keyed_bad),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK(keyed_bad == NULL);
    CHECK_OK(cg_keyed_policy_new(twice, 3, 1, NULL, &keyed_bad));
    cg_keyed_policy_free(keyed_bad);
    CHECK(strcmp(cg_status_message(CG_STATUS_EMPTY_NAME), "a name is empty") == 0);
    CHECK(strcmp(cg_status_message(CG_STATUS_DUPLICATE_NAME),
                 "a name repeats an earlier name: names must be unique") == 0);
    bad = entries[0];
    bad.quota.burst_cost = 0;
    CHECK_STATUS(cg_policy_new(&bad, 1, NULL, &policy), CG_STATUS_ZERO_BURST);
    CHECK(policy == NULL);

    CHECK_OK(cg_policy_new(entries, 3, NULL, &policy));
    size_t dimensions = 0;
    CHECK_OK(cg_policy_dimensions(policy, &dimensions));
    CHECK(dimensions == 2);
    uint64_t two[2] = {2, 100};
    CHECK_OK(cg_policy_check(policy, 0, two, 2, &d));
    CHECK(d.allowed && d.count == 3 && d.binding == 0);
    CHECK(d.decisions[1].remaining == 2 && d.decisions[2].remaining == 900);
    CHECK_STATUS(cg_policy_check(policy, 0, two, 1, &d), CG_STATUS_COST_COUNT);
    CHECK_STATUS(cg_policy_check(policy, 0, NULL, 2, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_policy_check(policy, 0, two, 2, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_policy_check(NULL, 0, two, 2, &d), CG_STATUS_NULL_ARGUMENT);
    /* "daily" has 2 left at 1 s: a cost of 2 passes, then nothing is charged. */
    CHECK_OK(cg_policy_check(policy, CG_NS_PER_SECOND, two, 2, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_policy_check(policy, 2 * CG_NS_PER_SECOND, two, 2, &d));
    CHECK(!d.allowed && d.binding == 1 && !d.decision.allowed);
    CHECK(d.decision.retry_after_ns == d.decisions[1].retry_after_ns);
    CHECK(d.decisions[0].remaining == 2); /* taken back */

    /* Headers from the decision, by the policy's names and quotas. */
    char buf[512];
    size_t len = 0;
    CHECK_STATUS(cg_policy_render_headers(policy, &d, CG_HEADER_STYLE_IETF, 0, NULL, 0, &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    size_t needed = len;
    CHECK_STATUS(cg_policy_render_headers(policy, &d, CG_HEADER_STYLE_IETF, 0, buf, needed - 1,
                                          &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == needed);
    CHECK_OK(cg_policy_render_headers(policy, &d, CG_HEADER_STYLE_IETF, 0, buf, needed, &len));
    CHECK(len == needed);
    const char *expected =
        "RateLimit-Policy: \"burst\";q=2;w=1,\"daily\";q=4;w=86400,\"tokens\";q=1000;w=60\r\n"
        "RateLimit: \"burst\";r=2;t=0,\"daily\";r=0;t=43198,\"tokens\";r=833;t=1\r\n"
        "Retry-After: 43198\r\n";
    CHECK(len == strlen(expected) && memcmp(buf, expected, len) == 0);
    if (len != strlen(expected) || memcmp(buf, expected, len) != 0)
        fprintf(stderr, "got:\n%.*s", (int)len, buf);
    CHECK_STATUS(cg_policy_render_headers(policy, &d, 9, 0, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    cg_policy_decision wrong = d;
    wrong.count = 2;
    CHECK_STATUS(cg_policy_render_headers(policy, &wrong, 0, 0, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_policy_render_headers(policy, NULL, 0, 0, buf, sizeof buf, &len),
                 CG_STATUS_NULL_ARGUMENT);

    /* Reserve and settle. */
    cg_policy *other = NULL;
    CHECK_OK(cg_policy_new(entries, 3, NULL, &other));
    cg_reservation *reservation = NULL;
    uint64_t estimate[2] = {0, 400};
    CHECK_OK(cg_policy_reserve(policy, 3 * CG_NS_PER_SECOND, estimate, 2, &d, &reservation));
    CHECK(d.allowed && reservation != NULL);
    uint64_t reserved_remaining = d.decisions[2].remaining; /* 850 - 400 */
    CHECK(reserved_remaining == 450);
    uint64_t actual[2] = {0, 650};
    CHECK_STATUS(cg_policy_settle(other, 3 * CG_NS_PER_SECOND, reservation, actual, 2, &d),
                 CG_STATUS_WRONG_RESERVATION);
    CHECK_STATUS(cg_policy_settle(policy, 3 * CG_NS_PER_SECOND, reservation, actual, 1, &d),
                 CG_STATUS_COST_COUNT);
    CHECK_STATUS(cg_policy_settle(policy, 3 * CG_NS_PER_SECOND, reservation, actual, 2, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_policy_settle(policy, 3 * CG_NS_PER_SECOND, reservation, actual, 2, &d));
    CHECK(d.decisions[2].remaining == reserved_remaining - 250); /* 250 more than estimated */
    CHECK_STATUS(cg_policy_settle(policy, 3 * CG_NS_PER_SECOND, reservation, actual, 2, &d),
                 CG_STATUS_ALREADY_SETTLED);
    cg_reservation_free(reservation);
    cg_reservation_free(NULL);
    /* A refused reserve gives no reservation. */
    uint64_t too_much[2] = {0, 5000};
    reservation = (cg_reservation *)&reservation; /* overwritten with NULL */
    CHECK_OK(cg_policy_reserve(policy, 3 * CG_NS_PER_SECOND, too_much, 2, &d, &reservation));
    CHECK(!d.allowed && reservation == NULL);
    CHECK_STATUS(cg_policy_reserve(policy, 0, estimate, 2, &d, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_policy_settle(policy, 0, NULL, actual, 2, &d), CG_STATUS_NULL_ARGUMENT);

    CHECK_OK(cg_policy_force(policy, 3 * CG_NS_PER_SECOND, two, 2, NULL));
    CHECK_OK(cg_policy_refund(policy, 3 * CG_NS_PER_SECOND, two, 2, NULL));
    CHECK_OK(cg_policy_peek(policy, 3 * CG_NS_PER_SECOND, two, 2, &d));
    CHECK_OK(cg_policy_reset(policy));
    CHECK_OK(cg_policy_peek(policy, 3 * CG_NS_PER_SECOND, two, 2, &d));
    CHECK(d.allowed && d.decisions[1].remaining == 4);
    CHECK_STATUS(cg_policy_reset(NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_policy_dimensions(NULL, &dimensions), CG_STATUS_NULL_ARGUMENT);
    cg_policy_free(other);
    cg_policy_free(policy);
    cg_policy_free(NULL);

    /* Keyed: keys independent; a keyed reservation cannot be settled on another policy. */
    cg_keyed_policy *keyed = NULL;
    CHECK_STATUS(cg_keyed_policy_new(entries, 3, SIZE_MAX, NULL, &keyed),
                 CG_STATUS_INVALID_MAX_KEYS);
    CHECK_OK(cg_keyed_policy_new(entries, 3, 64, NULL, &keyed));
    CHECK_OK(cg_keyed_policy_check(keyed, (const uint8_t *)"u1", 2, 0, two, 2, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_policy_check(keyed, (const uint8_t *)"u1", 2, 0, two, 2, &d));
    CHECK(!d.allowed);
    CHECK_OK(cg_keyed_policy_check(keyed, NULL, 0, 0, two, 2, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_policy_render_headers(keyed, &d, CG_HEADER_STYLE_LEGACY, 0, buf,
                                            sizeof buf, &len));
    CHECK(len > 0 && memcmp(buf, "X-RateLimit-Limit: 2\r\n", 22) == 0);
    CHECK_OK(cg_keyed_policy_reserve(keyed, (const uint8_t *)"u2", 2, 0, estimate, 2, &d,
                                     &reservation));
    CHECK(reservation != NULL);
    CHECK_OK(cg_keyed_policy_dimensions(keyed, &dimensions));
    CHECK(dimensions == 2);
    CHECK_OK(cg_keyed_policy_settle(keyed, 0, reservation, estimate, 2, &d));
    CHECK_STATUS(cg_keyed_policy_settle(keyed, 0, reservation, estimate, 2, &d),
                 CG_STATUS_ALREADY_SETTLED);
    cg_reservation_free(reservation);
    CHECK_OK(cg_keyed_policy_force(keyed, (const uint8_t *)"u3", 2, 0, two, 2, NULL));
    CHECK_OK(cg_keyed_policy_refund(keyed, (const uint8_t *)"u3", 2, 0, two, 2, &d));
    CHECK_OK(cg_keyed_policy_peek(keyed, (const uint8_t *)"u1", 2, 0, two, 2, &d));
    CHECK(!d.allowed);
    CHECK_OK(cg_keyed_policy_reset(keyed, (const uint8_t *)"u1", 2, 0));
    CHECK_OK(cg_keyed_policy_peek(keyed, (const uint8_t *)"u1", 2, 0, two, 2, &d));
    CHECK(d.allowed);
    CHECK_STATUS(cg_keyed_policy_check(keyed, NULL, 2, 0, two, 2, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_keyed_policy_reset(keyed, NULL, 2, 0), CG_STATUS_NULL_ARGUMENT);
    cg_keyed_policy_free(keyed);
    cg_keyed_policy_free(NULL);
}

static void test_headers(void) {
    cg_policy_header policies[1] = {
        {"api", CG_NUL_TERMINATED, {10, CG_NS_PER_SECOND, 10}, {false, 10, 0, 2500000000u, 3000000000u}},
    };
    char buf[256];
    size_t len = 0;
    CHECK_OK(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf, &len));
    const char *ietf = "RateLimit-Policy: \"api\";q=10;w=1\r\n"
                       "RateLimit: \"api\";r=0;t=3\r\n"
                       "Retry-After: 3\r\n";
    CHECK(len == strlen(ietf) && memcmp(buf, ietf, len) == 0);
    CHECK_OK(cg_render_headers(CG_HEADER_STYLE_LEGACY_EPOCH, 1700000000, policies, 1, buf,
                               sizeof buf, &len));
    const char *epoch = "X-RateLimit-Limit: 10\r\nX-RateLimit-Remaining: 0\r\n"
                        "X-RateLimit-Reset: 1700000003\r\nRetry-After: 3\r\n";
    CHECK(len == strlen(epoch) && memcmp(buf, epoch, len) == 0);
    /* The exact length needed, from an empty buffer. */
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, NULL, 0, &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == strlen(ietf));
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 0, buf, sizeof buf, &len),
                 CG_STATUS_EMPTY_POLICY);
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, NULL, 1, buf, sizeof buf, &len),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, NULL, 10, &len),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_render_headers(99, 0, policies, 1, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    cg_policy_header bad = policies[0];
    bad.name = "new\nline";
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, &bad, 1, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_NAME);
    bad = policies[0];
    bad.quota.rate_cost = 0;
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, &bad, 1, buf, sizeof buf, &len),
                 CG_STATUS_ZERO_RATE);
    /* Names with quotes are escaped. */
    bad = policies[0];
    bad.name = "a\"b";
    bad.decision.allowed = true;
    bad.decision.remaining = 3;
    bad.decision.retry_after_ns = 0;
    CHECK_OK(cg_render_headers(CG_HEADER_STYLE_IETF, 0, &bad, 1, buf, sizeof buf, &len));
    /* Allowed and not full: t is the seconds until the next unit returns (draft-10), 0.1 s
     * rounded up. */
    const char *escaped = "RateLimit-Policy: \"a\\\"b\";q=10;w=1\r\nRateLimit: \"a\\\"b\";r=3;t=1\r\n";
    CHECK(len == strlen(escaped) && memcmp(buf, escaped, len) == 0);

    /* The same headers as name/value C strings. */
    cg_header_field fields[CG_MAX_HEADERS];
    size_t field_count = 0;
    CHECK_OK(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf, &len,
                                     fields, CG_MAX_HEADERS, &field_count));
    CHECK(field_count == 3);
    CHECK(strcmp(fields[0].name, "RateLimit-Policy") == 0);
    CHECK(strcmp(fields[0].value, "\"api\";q=10;w=1") == 0);
    CHECK(strcmp(fields[1].name, "RateLimit") == 0);
    CHECK(strcmp(fields[1].value, "\"api\";r=0;t=3") == 0);
    CHECK(strcmp(fields[2].name, "Retry-After") == 0 && strcmp(fields[2].value, "3") == 0);
    /* Per header, the 4 bytes of ": " and CRLF become 2 NULs. */
    CHECK(len == strlen(ietf) - 3 * 2);
    size_t needed_fields = len;
    /* Asking for the sizes: an empty buffer and no fields. */
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, NULL, 0, &len, NULL,
                                         0, &field_count),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == needed_fields && field_count == 3);
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf,
                                         &len, fields, 2, &field_count),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(field_count == 3);
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf,
                                         &len, NULL, 4, &field_count),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, sizeof buf,
                                         &len, fields, 4, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_LEGACY, 0, policies, 0, buf, sizeof buf,
                                         &len, fields, 4, &field_count),
                 CG_STATUS_EMPTY_POLICY);
    CHECK_OK(cg_render_header_fields(CG_HEADER_STYLE_LEGACY, 0, policies, 1, buf, sizeof buf, &len,
                                     fields, CG_MAX_HEADERS, &field_count));
    CHECK(field_count == 4 && strcmp(fields[3].name, "Retry-After") == 0);
    CHECK(strcmp(fields[2].name, "X-RateLimit-Reset") == 0 && strcmp(fields[2].value, "3") == 0);

    char body[CG_MAX_429_BODY_BYTES];
    CHECK_OK(cg_render_429_body(2500000000u, body, sizeof body, &len));
    CHECK(len == 40 && memcmp(body, "{\"error\":\"rate_limited\",\"retry_after\":3}", len) == 0);
    CHECK_OK(cg_render_429_body(CG_NEVER, body, sizeof body, &len));
    CHECK(memcmp(body, "{\"error\":\"rate_limited\",\"retry_after\":null}", len) == 0);
    CHECK_STATUS(cg_render_429_body(1, body, 10, &len), CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 40);
    CHECK_STATUS(cg_render_429_body(1, body, sizeof body, NULL), CG_STATUS_NULL_ARGUMENT);
}

static void test_client_keys(void) {
    uint8_t key[CG_CLIENT_KEY_MAX_LEN];
    size_t len = 0;
    CHECK_OK(cg_client_key_parse("192.0.2.1:8080", CG_NUL_TERMINATED, 0, key, sizeof key, &len));
    CHECK(len == 5 && key[0] == 4 && key[1] == 192 && key[4] == 1);
    uint8_t mapped[CG_CLIENT_KEY_MAX_LEN];
    size_t mapped_len = 0;
    CHECK_OK(cg_client_key_parse("[::ffff:192.0.2.1]:1", CG_NUL_TERMINATED, 0, mapped,
                                 sizeof mapped, &mapped_len));
    CHECK(mapped_len == len && memcmp(mapped, key, len) == 0);
    CHECK_OK(cg_client_key_parse("2001:db8:aa:bb::1", CG_NUL_TERMINATED, 0, key, sizeof key,
                                 &len));
    const uint8_t v6[] = {6, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00};
    CHECK(len == sizeof v6 && memcmp(key, v6, len) == 0);
    CHECK_OK(cg_client_key_parse("2001:db8::1", CG_NUL_TERMINATED, 128, key, sizeof key, &len));
    CHECK(len == 18);
    CHECK_STATUS(cg_client_key_parse("2001:db8::1", CG_NUL_TERMINATED, 128, key, 17, &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 18);
    CHECK_STATUS(cg_client_key_parse("010.0.0.1", CG_NUL_TERMINATED, 0, key, sizeof key, &len),
                 CG_STATUS_INVALID_ADDRESS);
    CHECK_STATUS(cg_client_key_parse("::1", CG_NUL_TERMINATED, 129, key, sizeof key, &len),
                 CG_STATUS_INVALID_PREFIX_LENGTH);
    CHECK_STATUS(cg_client_key_parse(NULL, 3, 0, key, sizeof key, &len), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_client_key_parse("::1", 3, 0, key, sizeof key, NULL),
                 CG_STATUS_NULL_ARGUMENT);

    const uint8_t v4[4] = {192, 0, 2, 1};
    CHECK_OK(cg_client_key_from_ip(v4, 4, 0, key, sizeof key, &len));
    CHECK(len == 5 && memcmp(key, mapped, 5) == 0);
    const uint8_t v6_bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0xbb, 0, 0, 0, 0, 0, 0, 0, 1};
    CHECK_OK(cg_client_key_from_ip(v6_bytes, 16, 0, key, sizeof key, &len));
    CHECK(len == sizeof v6 && memcmp(key, v6, len) == 0);
    CHECK_STATUS(cg_client_key_from_ip(v4, 5, 0, key, sizeof key, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_client_key_from_ip(NULL, 4, 0, key, sizeof key, &len),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_client_key_from_ip(v4, 4, 0, NULL, 5, &len), CG_STATUS_NULL_ARGUMENT);
}

/* Every function, given a NULL handle or a NULL required output, returns
 * CG_STATUS_NULL_ARGUMENT (and every _free accepts NULL). */
static void test_null_everywhere(void) {
    const cg_quota q = per_second_3;
    cg_decision d;
    cg_policy_decision pd;
    cg_quota quota_out;
    cg_keyed_stats stats;
    size_t n = 0;
    uint64_t u = 0, costs[1] = {1};
    char buf[64];
    const uint8_t key[1] = {'k'};
    cg_policy_entry entry = {"e", CG_NUL_TERMINATED, per_second_3, 0};
    cg_reservation *reservation = NULL;
    const cg_status null = CG_STATUS_NULL_ARGUMENT;

    /* Constructors: a NULL output. */
    CHECK_STATUS(cg_clock_new(0, NULL), null);
    CHECK_STATUS(cg_cell_new_gcra(q, NULL, NULL), null);
    CHECK_STATUS(cg_cell_new_token_bucket(q, CG_REFILL_GREEDY, CG_FULL, 0, NULL, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_new(q, CG_REFILL_GREEDY, 16, NULL, NULL), null);
    CHECK_STATUS(cg_policy_new(&entry, 1, NULL, NULL), null);
    CHECK_STATUS(cg_keyed_policy_new(&entry, 1, 16, NULL, NULL), null);
    CHECK_STATUS(cg_quota_new(1, 1, 1, NULL), null);

    /* A NULL handle. */
    CHECK_STATUS(cg_clock_advance(NULL, 1), null);
    CHECK_STATUS(cg_clock_set(NULL, 1), null);
    CHECK_STATUS(cg_clock_now(NULL, &u), null);
    CHECK_STATUS(cg_cell_check(NULL, 0, 1, &d), null);
    CHECK_STATUS(cg_cell_peek(NULL, 0, 1, &d), null);
    CHECK_STATUS(cg_cell_force(NULL, 0, 1, &d), null);
    CHECK_STATUS(cg_cell_refund(NULL, 0, 1, &d), null);
    CHECK_STATUS(cg_cell_reset(NULL), null);
    CHECK_STATUS(cg_cell_quota(NULL, &quota_out), null);
    CHECK_STATUS(cg_keyed_limiter_check(NULL, key, 1, 0, 1, &d), null);
    CHECK_STATUS(cg_keyed_limiter_peek(NULL, key, 1, 0, 1, &d), null);
    CHECK_STATUS(cg_keyed_limiter_force(NULL, key, 1, 0, 1, &d), null);
    CHECK_STATUS(cg_keyed_limiter_refund(NULL, key, 1, 0, 1, &d), null);
    CHECK_STATUS(cg_keyed_limiter_reset(NULL, key, 1, 0), null);
    CHECK_STATUS(cg_keyed_limiter_quota(NULL, &quota_out), null);
    CHECK_STATUS(cg_keyed_limiter_stats(NULL, &stats), null);
    CHECK_STATUS(cg_policy_check(NULL, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_policy_peek(NULL, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_policy_force(NULL, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_policy_refund(NULL, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_policy_reset(NULL), null);
    CHECK_STATUS(cg_policy_reserve(NULL, 0, costs, 1, &pd, &reservation), null);
    CHECK_STATUS(cg_policy_settle(NULL, 0, reservation, costs, 1, &pd), null);
    CHECK_STATUS(cg_policy_dimensions(NULL, &n), null);
    CHECK_STATUS(cg_policy_render_headers(NULL, &pd, 0, 0, buf, sizeof buf, &n), null);
    CHECK_STATUS(cg_keyed_policy_check(NULL, key, 1, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_peek(NULL, key, 1, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_force(NULL, key, 1, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_refund(NULL, key, 1, 0, costs, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_reset(NULL, key, 1, 0), null);
    CHECK_STATUS(cg_keyed_policy_reserve(NULL, key, 1, 0, costs, 1, &pd, &reservation), null);
    CHECK_STATUS(cg_keyed_policy_settle(NULL, 0, reservation, costs, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_dimensions(NULL, &n), null);
    CHECK_STATUS(cg_keyed_policy_render_headers(NULL, &pd, 0, 0, buf, sizeof buf, &n), null);
    CHECK(reservation == NULL);

    /* NULL required outputs and inputs, on live handles: nothing changes. */
    cg_clock *clock = NULL;
    cg_cell *limiter = NULL;
    cg_keyed_limiter *keyed = NULL;
    cg_policy *policy = NULL;
    cg_keyed_policy *keyed_policy = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    CHECK_OK(cg_cell_new_gcra(q, clock, &limiter));
    CHECK_OK(cg_keyed_limiter_new(q, CG_REFILL_GREEDY, 16, clock, &keyed));
    CHECK_OK(cg_policy_new(&entry, 1, clock, &policy));
    CHECK_OK(cg_keyed_policy_new(&entry, 1, 16, clock, &keyed_policy));
    CHECK_STATUS(cg_clock_now(clock, NULL), null);
    CHECK_STATUS(cg_cell_check(limiter, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_cell_peek(limiter, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_cell_quota(limiter, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_check(keyed, key, 1, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_check(keyed, NULL, 1, CG_NOW, 3, &d), null);
    CHECK_STATUS(cg_keyed_limiter_peek(keyed, key, 1, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_force(keyed, NULL, 1, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_refund(keyed, NULL, 1, CG_NOW, 3, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_quota(keyed, NULL), null);
    CHECK_STATUS(cg_keyed_limiter_stats(keyed, NULL), null);
    uint64_t three[1] = {3};
    CHECK_STATUS(cg_policy_check(policy, CG_NOW, three, 1, NULL), null);
    CHECK_STATUS(cg_policy_check(policy, CG_NOW, NULL, 1, &pd), null);
    CHECK_STATUS(cg_policy_peek(policy, CG_NOW, three, 1, NULL), null);
    CHECK_STATUS(cg_policy_force(policy, CG_NOW, NULL, 1, NULL), null);
    CHECK_STATUS(cg_policy_refund(policy, CG_NOW, NULL, 1, NULL), null);
    CHECK_STATUS(cg_policy_reserve(policy, CG_NOW, three, 1, NULL, &reservation), null);
    CHECK_STATUS(cg_policy_reserve(policy, CG_NOW, three, 1, &pd, NULL), null);
    CHECK_STATUS(cg_policy_dimensions(policy, NULL), null);
    CHECK_STATUS(cg_keyed_policy_check(keyed_policy, key, 1, CG_NOW, three, 1, NULL), null);
    CHECK_STATUS(cg_keyed_policy_check(keyed_policy, NULL, 1, CG_NOW, three, 1, &pd), null);
    CHECK_STATUS(cg_keyed_policy_peek(keyed_policy, key, 1, CG_NOW, three, 1, NULL), null);
    CHECK_STATUS(cg_keyed_policy_force(keyed_policy, key, 1, CG_NOW, NULL, 1, NULL), null);
    CHECK_STATUS(cg_keyed_policy_refund(keyed_policy, key, 1, CG_NOW, NULL, 1, NULL), null);
    CHECK_STATUS(cg_keyed_policy_reserve(keyed_policy, key, 1, CG_NOW, three, 1, &pd, NULL),
                 null);
    CHECK_STATUS(cg_keyed_policy_dimensions(keyed_policy, NULL), null);
    /* Nothing was consumed by any of the refused calls. */
    CHECK_OK(cg_cell_check(limiter, CG_NOW, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_keyed_limiter_check(keyed, key, 1, CG_NOW, 3, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_policy_check(policy, CG_NOW, three, 1, &pd));
    CHECK(pd.allowed);
    CHECK_OK(cg_keyed_policy_check(keyed_policy, key, 1, CG_NOW, three, 1, &pd));
    CHECK(pd.allowed);

    cg_keyed_policy_free(keyed_policy);
    cg_policy_free(policy);
    cg_keyed_limiter_free(keyed);
    cg_cell_free(limiter);
    cg_clock_free(clock);
    cg_clock_free(NULL);
    cg_cell_free(NULL);
    cg_keyed_limiter_free(NULL);
    cg_policy_free(NULL);
    cg_keyed_policy_free(NULL);
    cg_reservation_free(NULL);
}

/* True when every byte of `buf` is still `fill`: the call wrote nothing there. */
static int untouched_bytes(const char *buf, size_t len, char fill) {
    for (size_t i = 0; i < len; i++)
        if (buf[i] != fill) return 0;
    return 1;
}

/* Outputs are written only on CG_STATUS_OK: on CG_STATUS_BUFFER_TOO_SMALL only the length
 * outputs change (to the length needed), never the caller's buffer, whatever its size. */
static void test_no_partial_outputs(void) {
    cg_policy_header policies[1] = {
        {"api", CG_NUL_TERMINATED, {10, CG_NS_PER_SECOND, 10}, {false, 10, 0, 2500000000u, 3000000000u}},
    };
    char buf[256];
    size_t needed = 0, len = 0;
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, NULL, 0, &needed),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed > 0 && needed < sizeof buf);
    for (size_t size = 1; size < needed; size++) {
        memset(buf, 'X', sizeof buf);
        len = 0;
        CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, size, &len),
                     CG_STATUS_BUFFER_TOO_SMALL);
        CHECK(len == needed);
        CHECK(untouched_bytes(buf, sizeof buf, 'X'));
    }
    memset(buf, 'X', sizeof buf);
    CHECK_OK(cg_render_headers(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, needed, &len));
    CHECK(len == needed && untouched_bytes(buf + needed, sizeof buf - needed, 'X'));

    /* The same for a policy's and a keyed policy's headers. */
    cg_policy_entry entry = {"per-ip", CG_NUL_TERMINATED, per_second_3, 0};
    cg_policy *policy = NULL;
    cg_keyed_policy *keyed = NULL;
    cg_policy_decision d;
    uint64_t one[1] = {1};
    CHECK_OK(cg_policy_new(&entry, 1, NULL, &policy));
    CHECK_OK(cg_keyed_policy_new(&entry, 1, 16, NULL, &keyed));
    CHECK_OK(cg_policy_check(policy, 0, one, 1, &d));
    CHECK_STATUS(cg_policy_render_headers(policy, &d, CG_HEADER_STYLE_LEGACY, 0, NULL, 0, &needed),
                 CG_STATUS_BUFFER_TOO_SMALL);
    memset(buf, 'X', sizeof buf);
    CHECK_STATUS(cg_policy_render_headers(policy, &d, CG_HEADER_STYLE_LEGACY, 0, buf, needed - 1,
                                          &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == needed && untouched_bytes(buf, sizeof buf, 'X'));
    CHECK_OK(cg_keyed_policy_check(keyed, (const uint8_t *)"k", 1, 0, one, 1, &d));
    memset(buf, 'X', sizeof buf);
    CHECK_STATUS(cg_keyed_policy_render_headers(keyed, &d, CG_HEADER_STYLE_IETF, 0, buf, 20, &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len > 20 && untouched_bytes(buf, sizeof buf, 'X'));
    cg_keyed_policy_free(keyed);
    cg_policy_free(policy);

    /* Header fields: neither the buffer nor the fields. */
    cg_header_field fields[CG_MAX_HEADERS];
    memset(fields, 0, sizeof fields);
    size_t field_count = 0;
    memset(buf, 'X', sizeof buf);
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, policies, 1, buf, 10, &len,
                                         fields, CG_MAX_HEADERS, &field_count),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(untouched_bytes(buf, sizeof buf, 'X'));
    CHECK(fields[0].name == NULL && fields[0].value == NULL);

    /* The 429 body. */
    char body[CG_MAX_429_BODY_BYTES];
    for (size_t size = 1; size < 40; size++) {
        memset(body, 'X', sizeof body);
        len = 0;
        CHECK_STATUS(cg_render_429_body(2500000000u, body, size, &len), CG_STATUS_BUFFER_TOO_SMALL);
        CHECK(len == 40);
        CHECK(untouched_bytes(body, sizeof body, 'X'));
    }

    /* Client keys. */
    char key[CG_CLIENT_KEY_MAX_LEN];
    memset(key, 'X', sizeof key);
    CHECK_STATUS(cg_client_key_parse("2001:db8::1", CG_NUL_TERMINATED, 128, (uint8_t *)key, 17,
                                     &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 18 && untouched_bytes(key, sizeof key, 'X'));
    const uint8_t v4[4] = {192, 0, 2, 1};
    CHECK_STATUS(cg_client_key_from_ip(v4, 4, 0, (uint8_t *)key, 4, &len),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 5 && untouched_bytes(key, sizeof key, 'X'));
}

/* Every pointer with a length may be NULL when the length is 0: it is then the empty input,
 * and gets what an empty input gets (never CG_STATUS_NULL_ARGUMENT). */
static void test_null_with_length_0(void) {
    uint8_t key[CG_CLIENT_KEY_MAX_LEN];
    size_t len = 99;
    cg_quota q;
    /* An empty address: not 4 or 16 bytes, not an address. */
    CHECK_STATUS(cg_client_key_from_ip(NULL, 0, 0, key, sizeof key, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_client_key_from_ip(key, 0, 0, key, sizeof key, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_client_key_parse(NULL, 0, 0, key, sizeof key, &len),
                 CG_STATUS_INVALID_ADDRESS);
    CHECK_STATUS(cg_client_key_parse("", 0, 0, key, sizeof key, &len), CG_STATUS_INVALID_ADDRESS);
    CHECK(len == 99);
    /* An empty output buffer: asks for the length. */
    CHECK_STATUS(cg_client_key_parse("::1", 3, 0, NULL, 0, &len), CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 9); /* IPv6 by /56: a tag, the prefix length, 7 bytes */
    CHECK_STATUS(cg_render_429_body(1, NULL, 0, &len), CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 40);
    /* An empty rate string, an empty list. */
    CHECK_STATUS(cg_quota_parse(NULL, 0, &q, NULL), CG_STATUS_PARSE_ERROR);
    size_t count = 99;
    CHECK_STATUS(cg_quota_parse_list("", 0, NULL, 0, &count, NULL),
                 cg_quota_parse_list(NULL, 0, NULL, 0, &count, NULL));
    /* No policies, no entries: empty. */
    CHECK_STATUS(cg_render_headers(CG_HEADER_STYLE_IETF, 0, NULL, 0, NULL, 0, &len),
                 CG_STATUS_EMPTY_POLICY);
    cg_policy *policy = NULL;
    CHECK_STATUS(cg_policy_new(NULL, 0, NULL, &policy), CG_STATUS_EMPTY_POLICY);
    cg_keyed_policy *keyed = NULL;
    CHECK_STATUS(cg_keyed_policy_new(NULL, 0, 16, NULL, &keyed), CG_STATUS_EMPTY_POLICY);
    /* No costs: the same as an empty costs array, which is not one cost per dimension. */
    cg_policy_entry entry = {"e", CG_NUL_TERMINATED, per_second_3, 0};
    CHECK_OK(cg_policy_new(&entry, 1, NULL, &policy));
    CHECK_OK(cg_keyed_policy_new(&entry, 1, 16, NULL, &keyed));
    cg_policy_decision d;
    uint64_t unused[1] = {1};
    CHECK_STATUS(cg_policy_check(policy, 0, NULL, 0, &d), CG_STATUS_COST_COUNT);
    CHECK_STATUS(cg_policy_check(policy, 0, unused, 0, &d), CG_STATUS_COST_COUNT);
    CHECK_STATUS(cg_policy_force(policy, 0, NULL, 0, NULL), CG_STATUS_COST_COUNT);
    cg_reservation *reservation = NULL;
    CHECK_STATUS(cg_policy_reserve(policy, 0, NULL, 0, &d, &reservation), CG_STATUS_COST_COUNT);
    CHECK(reservation == NULL);
    CHECK_STATUS(cg_keyed_policy_check(keyed, NULL, 0, 0, NULL, 0, &d), CG_STATUS_COST_COUNT);
    CHECK_STATUS(cg_keyed_policy_reserve(keyed, NULL, 0, 0, NULL, 0, &d, &reservation),
                 CG_STATUS_COST_COUNT);
    CHECK_OK(cg_policy_reserve(policy, 0, unused, 1, &d, &reservation));
    CHECK(reservation != NULL);
    CHECK_STATUS(cg_policy_settle(policy, 0, reservation, NULL, 0, &d), CG_STATUS_COST_COUNT);
    CHECK_OK(cg_policy_settle(policy, 0, reservation, unused, 1, &d));
    cg_reservation_free(reservation);
    /* Header fields with no room for fields: asks for the count. */
    cg_policy_header header = {"e", 1, per_second_3, {true, 2, 0, 1, 1}};
    size_t field_count = 0;
    CHECK_STATUS(cg_render_header_fields(CG_HEADER_STYLE_IETF, 0, &header, 1, NULL, 0, &len, NULL,
                                         0, &field_count),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(field_count == 2);
    cg_keyed_policy_free(keyed);
    cg_policy_free(policy);
}

void test_api(void) {
    test_null_everywhere();
    test_version_and_statuses();
    test_quotas();
    test_cell();
    test_clocks();
    test_keyed();
    test_policies();
    test_headers();
    test_client_keys();
    test_no_partial_outputs();
    test_null_with_length_0();
}
