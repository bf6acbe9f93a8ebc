/* cg_limiter, core's Limiter in C: configuration statuses, the one verb and its sugar, costs
 * not named, reservations, a full table answered as a decision (the 100,000-key flood), the
 * headers and 429 body of a decision, and the stats. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdio.h>
#include <string.h>

static cg_quota parsed(const char *rate) {
    cg_quota quota = {0, 0, 0};
    CHECK_OK(cg_quota_parse(rate, CG_NUL_TERMINATED, &quota, NULL));
    return quota;
}

static cg_limiter_quota quota_of(const char *rate, const char *name, size_t dimension) {
    cg_limiter_quota quota = {parsed(rate), name, CG_NUL_TERMINATED, dimension};
    return quota;
}

static const uint8_t *key(const char *text) { return (const uint8_t *)text; }

static void configuration_statuses(void) {
    cg_limiter *limiter = NULL;
    cg_limiter_quota one[1] = {quota_of("10/second", NULL, 0)};
    CHECK_STATUS(cg_limiter_new(one, 0, NULL, &limiter), CG_STATUS_NO_QUOTAS);
    CHECK_STATUS(cg_limiter_new(NULL, 1, NULL, &limiter), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_new(one, 1, NULL, NULL), CG_STATUS_NULL_ARGUMENT);
    cg_limiter_quota nine[9];
    char names[9][16];
    for (int i = 0; i < 9; i++) {
        snprintf(names[i], sizeof names[i], "q%d", i);
        nine[i] = quota_of("10/second", names[i], 0);
    }
    CHECK_STATUS(cg_limiter_new(nine, 9, NULL, &limiter), CG_STATUS_TOO_MANY_QUOTAS);
    cg_limiter_quota empty[1] = {quota_of("10/second", "", 0)};
    CHECK_STATUS(cg_limiter_new(empty, 1, NULL, &limiter), CG_STATUS_EMPTY_NAME);
    cg_limiter_quota control[1] = {quota_of("10/second", "a\nb", 0)};
    CHECK_STATUS(cg_limiter_new(control, 1, NULL, &limiter), CG_STATUS_INVALID_NAME);
    cg_limiter_quota latin1[1] = {quota_of("10/second", "caf\xe9", 0)};
    CHECK_STATUS(cg_limiter_new(latin1, 1, NULL, &limiter), CG_STATUS_INVALID_NAME);
    /* Default names count: "10/s; 10/second" names both "10-in-1s". */
    cg_limiter_quota twice[2] = {quota_of("10/s", NULL, 0), quota_of("10/second", NULL, 0)};
    CHECK_STATUS(cg_limiter_new(twice, 2, NULL, &limiter), CG_STATUS_DUPLICATE_NAME);
    cg_limiter_quota gap[2] = {quota_of("10/s", NULL, 0), quota_of("10/minute", NULL, 2)};
    CHECK_STATUS(cg_limiter_new(gap, 2, NULL, &limiter), CG_STATUS_DIMENSION_GAP);
    cg_limiter_quota zero[1] = {{{0, 1, 1}, NULL, 0, 0}};
    CHECK_STATUS(cg_limiter_new(zero, 1, NULL, &limiter), CG_STATUS_ZERO_RATE);

    cg_limiter_options options;
    CHECK_STATUS(cg_limiter_options_init(NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_limiter_options_init(&options));
    CHECK(options.refill == CG_REFILL_GREEDY && options.on_full == CG_ON_FULL_DENY);
    CHECK(options.max_keys == CG_DEFAULT_MAX_KEYS && options.clock == NULL && !options.seeded);
    options.refill = CG_REFILL_INTERVAL;
    cg_limiter_quota two[2] = {quota_of("10/s", NULL, 0), quota_of("100/minute", NULL, 0)};
    CHECK_STATUS(cg_limiter_new(two, 2, &options, &limiter), CG_STATUS_REFILL_NEEDS_ONE_QUOTA);
    options.refill = 7;
    CHECK_STATUS(cg_limiter_new(one, 1, &options, &limiter), CG_STATUS_INVALID_ARGUMENT);
    CHECK_OK(cg_limiter_options_init(&options));
    options.on_full = 7;
    CHECK_STATUS(cg_limiter_new(one, 1, &options, &limiter), CG_STATUS_INVALID_ARGUMENT);
    CHECK_OK(cg_limiter_options_init(&options));
    options.max_keys = 0;
    CHECK_STATUS(cg_limiter_new(one, 1, &options, &limiter), CG_STATUS_INVALID_MAX_KEYS);
    options.max_keys = CG_MAX_MAX_KEYS + 1;
    CHECK_STATUS(cg_limiter_new(one, 1, &options, &limiter), CG_STATUS_INVALID_MAX_KEYS);
    CHECK(limiter == NULL);

    /* The new statuses keep their numbers and carry core's texts. */
    CHECK(CG_STATUS_NO_QUOTAS == 27 && CG_STATUS_DIMENSION_GAP == 28 &&
          CG_STATUS_REFILL_NEEDS_ONE_QUOTA == 29 && CG_STATUS_FOREIGN_RESERVATION == 30 &&
          CG_STATUS_MISSING_COST == 31);
    CHECK(strcmp(cg_status_message(CG_STATUS_NO_QUOTAS), "a limiter needs at least one quota") ==
          0);
    CHECK(strcmp(cg_status_message(CG_STATUS_FOREIGN_RESERVATION),
                 "the reservation was made by another limiter") == 0);
    CHECK(strcmp(cg_status_message(41), "unknown status code") == 0);
    CHECK(CG_STATUS_SHARED_UNSUPPORTED == 32 && CG_STATUS_SHARED_IO == 37);
    CHECK(strcmp(cg_reason_name(CG_REASON_LIMIT), "limit") == 0);
    CHECK(strcmp(cg_reason_name(CG_REASON_TABLE_FULL), "table_full") == 0);
    CHECK(strcmp(cg_reason_name(CG_REASON_UNTRACKED), "untracked") == 0);
    CHECK(strcmp(cg_reason_name(CG_REASON_FALLBACK), "fallback") == 0);
    CHECK(strcmp(cg_reason_name(6), "unknown") == 0 && strcmp(cg_reason_name(-1), "unknown") == 0);
}

/* The verb, its sugar, and costs not named. */
static void one_verb(void) {
    cg_clock *clock = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    cg_limiter_options options;
    CHECK_OK(cg_limiter_options_init(&options));
    options.clock = clock;
    cg_limiter_quota quotas[1] = {quota_of("2/second", NULL, 0)};
    cg_limiter *limiter = NULL;
    CHECK_OK(cg_limiter_new(quotas, 1, &options, &limiter));
    cg_clock_free(clock); /* the limiter keeps it */
    cg_limiter_decision d;
    memset(&d, 0xA5, sizeof d);

    CHECK_STATUS(cg_limiter_apply(NULL, key("k"), 1, 0, NULL, 0, CG_OP_CHECK, &d),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, NULL, 0, CG_OP_CHECK, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_apply(limiter, NULL, 1, 0, NULL, 0, CG_OP_CHECK, &d),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, NULL, 3, CG_OP_CHECK, &d),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, NULL, 0, 5, &d),
                 CG_STATUS_INVALID_ARGUMENT);
    const uint64_t two_costs[2] = {1, 1};
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, two_costs, 2, CG_OP_CHECK, &d),
                 CG_STATUS_COST_COUNT);
    const uint64_t nine_costs[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, nine_costs, 9, CG_OP_CHECK, &d),
                 CG_STATUS_COST_COUNT);
    /* A NULL output is NULL_ARGUMENT whatever else is wrong (found by the ffi fuzz target:
     * the cost count was checked first). */
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, nine_costs, 9, CG_OP_CHECK, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_apply(limiter, key("k"), 1, 0, NULL, 0, 9, NULL),
                 CG_STATUS_NULL_ARGUMENT);

    /* Nothing named is the default cost, 1: by NULL, 0 or by CG_COST_DEFAULT alike. */
    const uint64_t unnamed[1] = {CG_COST_DEFAULT};
    CHECK_OK(cg_limiter_check(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK(d.allowed && d.reason == CG_REASON_LIMIT && d.count == 1 && d.binding == 0);
    CHECK(d.decision.remaining == 1 && d.decisions[0].remaining == 1 && d.decision.limit == 2);
    CHECK(d.decisions[1].limit == 0 && d.decisions[7].remaining == 0); /* past count: zero */
    CHECK_OK(cg_limiter_peek(limiter, key("k"), 1, CG_NOW, unnamed, 1, &d));
    CHECK(d.allowed && d.decision.remaining == 1);
    CHECK_OK(cg_limiter_check(limiter, key("k"), 1, CG_NOW, unnamed, 1, &d));
    CHECK(d.allowed && d.decision.remaining == 0);
    CHECK_OK(cg_limiter_check(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK(!d.allowed && d.reason == CG_REASON_LIMIT && d.decision.retry_after_ns == 500000000u);
    const uint64_t three[1] = {3};
    CHECK_OK(cg_limiter_check(limiter, key("k"), 1, CG_NOW, three, 1, &d));
    CHECK(!d.allowed && d.decision.retry_after_ns == CG_NEVER);
    CHECK_OK(cg_limiter_force(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK(!d.allowed && d.decision.remaining == 0); /* into debt */
    CHECK_OK(cg_limiter_refund(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK_OK(cg_limiter_check(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK(!d.allowed);
    CHECK_OK(cg_limiter_reset(limiter, key("k"), 1, CG_NOW, NULL, 0, &d));
    CHECK(d.decision.remaining == 2);
    /* The apply of an op is its sugar: the same call. */
    CHECK_OK(cg_limiter_apply(limiter, key("k"), 1, CG_NOW, NULL, 0, CG_OP_CHECK, &d));
    CHECK(d.allowed && d.decision.remaining == 1);
    /* The empty key is a key; NULL with length 0 is it. */
    CHECK_OK(cg_limiter_check(limiter, NULL, 0, CG_NOW, NULL, 0, &d));
    CHECK(d.allowed && d.decision.remaining == 1);
    cg_limiter_free(limiter);
    cg_limiter_free(NULL);

    /* Several dimensions: every cost must be named (0 is a cost). */
    cg_limiter_quota dims[2] = {quota_of("60/minute", "requests", 0),
                                quota_of("1000/minute", "tokens", 1)};
    CHECK_OK(cg_limiter_new(dims, 2, NULL, &limiter));
    CHECK_STATUS(cg_limiter_check(limiter, key("u"), 1, 0, NULL, 0, &d), CG_STATUS_MISSING_COST);
    const uint64_t half[2] = {1, CG_COST_DEFAULT};
    CHECK_STATUS(cg_limiter_check(limiter, key("u"), 1, 0, half, 2, &d), CG_STATUS_MISSING_COST);
    CHECK_STATUS(cg_limiter_check(limiter, key("u"), 1, 0, three, 1, &d), CG_STATUS_COST_COUNT);
    const uint64_t costs[2] = {1, 400};
    CHECK_OK(cg_limiter_check(limiter, key("u"), 1, 0, costs, 2, &d));
    CHECK(d.allowed && d.count == 2 && d.decisions[0].remaining == 59 &&
          d.decisions[1].remaining == 600 && d.binding == 0);
    const uint64_t big[2] = {0, 700};
    CHECK_OK(cg_limiter_check(limiter, key("u"), 1, 0, big, 2, &d));
    CHECK(!d.allowed && d.binding == 1 && d.decisions[0].remaining == 59);
    cg_keyed_stats stats[CG_MAX_POLICY_QUOTAS];
    size_t count = 9;
    CHECK_STATUS(cg_limiter_stats(limiter, NULL, 0, &count), CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(count == 2);
    CHECK_STATUS(cg_limiter_stats(limiter, NULL, 1, &count), CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_stats(limiter, stats, 2, NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_limiter_stats(limiter, stats, CG_MAX_POLICY_QUOTAS, &count));
    CHECK(count == 2 && stats[0].live_keys == 1 && stats[1].live_keys == 1);
    CHECK(stats[0].slot_count >= CG_DEFAULT_MAX_KEYS && stats[0].rejected_full == 0);
    cg_limiter_free(limiter);
}

/* block_ns: five failed logins block the key for fifteen minutes; the denials the block
 * answers do not extend it; other keys are not blocked. */
static void blocking(void) {
    const uint64_t minute_ns = 60ull * 1000000000ull;
    cg_limiter_options options;
    CHECK_OK(cg_limiter_options_init(&options));
    CHECK(options.block_ns == 0);
    options.block_ns = 15 * minute_ns;
    cg_limiter_quota quotas[1] = {quota_of("5/minute", NULL, 0)};
    cg_limiter *limiter = NULL;
    CHECK_OK(cg_limiter_new(quotas, 1, &options, &limiter));
    cg_limiter_decision d;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cg_limiter_check(limiter, key("ann"), 3, 0, NULL, 0, &d));
        CHECK(d.allowed);
    }
    const uint64_t release_ns = 15 * minute_ns + minute_ns / 5; /* + one interval, 12 s */
    CHECK_OK(cg_limiter_check(limiter, key("ann"), 3, 0, NULL, 0, &d));
    CHECK(!d.allowed && d.decision.retry_after_ns == release_ns);
    CHECK_OK(cg_limiter_check(limiter, key("ann"), 3, minute_ns, NULL, 0, &d));
    CHECK(!d.allowed && d.decision.retry_after_ns == release_ns - minute_ns);
    CHECK_OK(cg_limiter_check(limiter, key("bob"), 3, minute_ns, NULL, 0, &d));
    CHECK(d.allowed);
    CHECK_OK(cg_limiter_peek(limiter, key("ann"), 3, release_ns - 1, NULL, 0, &d));
    CHECK(!d.allowed && d.decision.retry_after_ns == 1);
    CHECK_OK(cg_limiter_check(limiter, key("ann"), 3, release_ns, NULL, 0, &d));
    CHECK(d.allowed);
    cg_limiter_free(limiter);
}

static void reservations(void) {
    cg_limiter_quota quotas[1] = {quota_of("10/minute", NULL, 0)};
    cg_limiter *limiter = NULL, *other = NULL;
    CHECK_OK(cg_limiter_new(quotas, 1, NULL, &limiter));
    CHECK_OK(cg_limiter_new(quotas, 1, NULL, &other));
    cg_limiter_decision d;
    cg_limiter_reservation *reservation = NULL;
    const uint64_t estimate[1] = {5}, actual[1] = {2}, eleven[1] = {11};
    CHECK_STATUS(cg_limiter_reserve(limiter, key("r"), 1, 0, estimate, 1, &d, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    const uint64_t two_costs[2] = {1, 1};
    CHECK_STATUS(cg_limiter_reserve(limiter, key("r"), 1, 0, two_costs, 2, &d, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_reserve(limiter, key("r"), 1, 0, two_costs, 2, NULL, &reservation),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_limiter_reserve(limiter, key("q"), 1, 0, NULL, 0, &d, &reservation));
    CHECK_STATUS(cg_limiter_settle(limiter, 0, reservation, two_costs, 2, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_limiter_reserve(limiter, key("r"), 1, 0, estimate, 1, &d, &reservation));
    CHECK(d.allowed && d.decision.remaining == 5 && reservation != NULL);
    CHECK_OK(cg_limiter_settle(limiter, 0, reservation, actual, 1, &d));
    CHECK(d.allowed && d.decision.remaining == 8);
    /* A settle with no cost named keeps the estimate. */
    CHECK_OK(cg_limiter_reserve(limiter, key("r"), 1, 0, estimate, 1, &d, &reservation));
    CHECK_OK(cg_limiter_settle(limiter, 0, reservation, NULL, 0, &d));
    CHECK(d.decision.remaining == 3);
    /* Refused: no reservation, nothing charged. */
    reservation = (cg_limiter_reservation *)&d;
    CHECK_OK(cg_limiter_reserve(limiter, key("r"), 1, 0, eleven, 1, &d, &reservation));
    CHECK(!d.allowed && reservation == NULL);
    /* Another limiter's reservation: a status, nothing charged, and the handle is freed
     * (ASan and valgrind see no leak). */
    CHECK_OK(cg_limiter_reserve(limiter, key("r"), 1, 0, NULL, 0, &d, &reservation));
    CHECK(d.allowed && d.decision.remaining == 2);
    CHECK_STATUS(cg_limiter_settle(other, 0, reservation, actual, 1, &d),
                 CG_STATUS_FOREIGN_RESERVATION);
    CHECK_OK(cg_limiter_peek(other, key("r"), 1, 0, NULL, 0, &d));
    CHECK(d.decision.remaining == 10);
    /* Freed on every path: a NULL limiter or output too. */
    CHECK_OK(cg_limiter_reserve(limiter, key("r"), 1, 0, NULL, 0, &d, &reservation));
    CHECK_STATUS(cg_limiter_settle(NULL, 0, reservation, NULL, 0, &d), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_limiter_reserve(limiter, key("s"), 1, 0, NULL, 0, &d, &reservation));
    CHECK_STATUS(cg_limiter_settle(limiter, 0, reservation, NULL, 0, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_settle(limiter, 0, NULL, NULL, 0, &d), CG_STATUS_NULL_ARGUMENT);
    /* Freed unsettled: the estimate stays charged. */
    CHECK_OK(cg_limiter_reserve(limiter, key("t"), 1, 0, estimate, 1, &d, &reservation));
    cg_limiter_reservation_free(reservation);
    cg_limiter_reservation_free(NULL);
    CHECK_OK(cg_limiter_peek(limiter, key("t"), 1, 0, NULL, 0, &d));
    CHECK(d.decision.remaining == 5);
    cg_limiter_free(other);
    cg_limiter_free(limiter);
}

/* Headers and the 429 body of a decision, from the limiter that made it. */
static void rendering(void) {
    cg_limiter_quota quotas[2] = {quota_of("2/second", NULL, 0), quota_of("3/day", NULL, 0)};
    cg_limiter *limiter = NULL;
    CHECK_OK(cg_limiter_new(quotas, 2, NULL, &limiter));
    cg_limiter_decision d;
    for (int i = 0; i < 3; i++) CHECK_OK(cg_limiter_check(limiter, key("h"), 1, 0, NULL, 0, &d));
    CHECK(!d.allowed && d.binding == 0);
    char buf[1024];
    size_t len = 0;
    CHECK_OK(cg_limiter_render_headers(limiter, &d, CG_HEADER_STYLE_IETF, 0, buf, sizeof buf,
                                       &len));
    static const char want[] =
        "RateLimit-Policy: \"2-in-1s\";q=2;w=1,\"3-in-1d\";q=3;w=86400\r\n"
        "RateLimit: \"2-in-1s\";r=0;t=1,\"3-in-1d\";r=1;t=28800\r\n"
        "Retry-After: 1\r\n";
    CHECK(len == sizeof want - 1 && memcmp(buf, want, len) == 0);
    if (len != sizeof want - 1 || memcmp(buf, want, len) != 0)
        fprintf(stderr, "rendered: %.*s\n", (int)len, buf);
    size_t needed = 0;
    CHECK_STATUS(cg_limiter_render_headers(limiter, &d, CG_HEADER_STYLE_IETF, 0, buf, 10,
                                           &needed),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed == len);
    CHECK_STATUS(cg_limiter_render_headers(limiter, &d, 9, 0, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_limiter_render_headers(limiter, NULL, 0, 0, buf, sizeof buf, &len),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_render_headers(NULL, &d, 0, 0, buf, sizeof buf, &len),
                 CG_STATUS_NULL_ARGUMENT);
    char body[CG_MAX_429_BODY_BYTES];
    CHECK_OK(cg_limiter_render_429_body(limiter, &d, body, sizeof body, &len));
    CHECK(len == 40 && memcmp(body, "{\"error\":\"rate_limited\",\"retry_after\":1}", 40) == 0);
    CHECK_STATUS(cg_limiter_render_429_body(limiter, &d, body, 3, &needed),
                 CG_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed == 40);
    uint64_t wait_ns = 0;
    CHECK_OK(cg_limiter_retry_after_ns(limiter, &d, &wait_ns));
    CHECK(wait_ns == 500000000u);
    /* A reason C wrote that is no cg_reason is never read by the renderers. */
    int bogus = 77;
    memcpy(&d.reason, &bogus, sizeof bogus < sizeof d.reason ? sizeof bogus : sizeof d.reason);
    CHECK_OK(cg_limiter_render_429_body(limiter, &d, body, sizeof body, &len));
    /* A decision of another shape (count) is refused. */
    d.count = 1;
    CHECK_STATUS(cg_limiter_render_headers(limiter, &d, 0, 0, buf, sizeof buf, &len),
                 CG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cg_limiter_retry_after_ns(limiter, &d, &wait_ns), CG_STATUS_INVALID_ARGUMENT);
    cg_limiter_free(limiter);
}

/* A flood of 100,000 new keys into max_keys 1000 under 1/hour: every call is a decision.
 * Under CG_ON_FULL_DENY the keys that find no room are denied with reason table_full and a
 * Retry-After (answered 429 like any denial); the exhausted key stays denied throughout. */
static void key_flood(uint32_t on_full) {
    enum { KEYS = 100000 };
    cg_limiter_options options;
    CHECK_OK(cg_limiter_options_init(&options));
    options.max_keys = 1000;
    options.on_full = on_full;
    cg_limiter_quota quotas[1] = {quota_of("1/hour", NULL, 0)};
    cg_limiter *limiter = NULL;
    CHECK_OK(cg_limiter_new(quotas, 1, &options, &limiter));
    cg_limiter_decision d;
    CHECK_OK(cg_limiter_check(limiter, key("exhausted"), 9, 0, NULL, 0, &d));
    CHECK(d.allowed);
    unsigned long statuses_not_ok = 0, allowed = 0, table_full = 0, untracked = 0, other = 0;
    unsigned long wrong_headers = 0, exhausted_admitted = 0;
    for (int i = 0; i < KEYS; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "flood-%d", i);
        uint64_t now_ns = (uint64_t)i * 1000u;
        if (cg_limiter_check(limiter, key(name), (size_t)len, now_ns, NULL, 0, &d) !=
            CG_STATUS_OK) {
            statuses_not_ok++;
            continue;
        }
        if (d.reason == CG_REASON_TABLE_FULL) {
            table_full++;
            if (d.allowed) other++;
            /* Answered as every denial: headers with Retry-After, and core's body. */
            char headers[1024], body[CG_MAX_429_BODY_BYTES];
            size_t headers_len = 0, body_len = 0;
            if (cg_limiter_render_headers(limiter, &d, CG_HEADER_STYLE_IETF, 0, headers,
                                          sizeof headers, &headers_len) != CG_STATUS_OK ||
                cg_limiter_render_429_body(limiter, &d, body, sizeof body, &body_len) !=
                    CG_STATUS_OK ||
                strstr(headers, "Retry-After: ") == NULL || d.decision.retry_after_ns == 0 ||
                memcmp(body, "{\"error\":\"rate_limited\",\"retry_after\":", 38) != 0)
                wrong_headers++;
        } else if (d.reason == CG_REASON_UNTRACKED) {
            untracked++;
            if (!d.allowed) other++;
        } else if (d.allowed) {
            allowed++;
        } else {
            other++; /* a new key denied by its own bucket: never, at cost 1 */
        }
        if (i % 997 == 0) {
            CHECK_OK(cg_limiter_check(limiter, key("exhausted"), 9, now_ns, NULL, 0, &d));
            if (d.allowed || d.reason != CG_REASON_LIMIT) exhausted_admitted++;
        }
    }
    cg_keyed_stats stats;
    size_t count = 0;
    CHECK_OK(cg_limiter_stats(limiter, &stats, 1, &count));
    printf("key flood (%s): %d new keys into max_keys 1000 under 1/hour: %lu admitted, %lu "
           "table_full, %lu untracked; stats: %llu live, %llu rejected_full, %llu "
           "admitted_untracked\n",
           on_full == CG_ON_FULL_DENY ? "deny" : "allow_untracked", KEYS, allowed, table_full,
           untracked, (unsigned long long)stats.live_keys,
           (unsigned long long)stats.rejected_full, (unsigned long long)stats.admitted_untracked);
    CHECK(statuses_not_ok == 0 && other == 0 && wrong_headers == 0);
    CHECK(exhausted_admitted == 0);
    CHECK(allowed + table_full + untracked == KEYS);
    CHECK(allowed >= 700 && allowed < 1336); /* the table (1336 slots) filled, then refused */
    CHECK(stats.rejected_full == table_full + untracked);
    CHECK(stats.live_keys == allowed + 1);
    if (on_full == CG_ON_FULL_DENY) {
        CHECK(table_full > 90000 && untracked == 0 && stats.admitted_untracked == 0);
    } else {
        CHECK(untracked > 90000 && table_full == 0 && stats.admitted_untracked == untracked);
    }
    cg_limiter_free(limiter);
}

void test_limiter(void) {
    configuration_statuses();
    one_verb();
    blocking();
    reservations();
    rendering();
    key_flood(CG_ON_FULL_DENY);
    key_flood(CG_ON_FULL_ALLOW_UNTRACKED);
}
