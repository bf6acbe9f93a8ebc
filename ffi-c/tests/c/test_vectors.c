/* Replays testdata/vectors (converted to lines by ffi-c/tests/vectors_to_lines.py) through the
 * C API, as testdata/README.md describes, each scenario twice: with explicit `now_ns`, and
 * with a manual clock read through CG_NOW. Single-limiter scenarios run on one cg_cell per
 * key, keyed ones also on one cg_keyed_limiter, policy scenarios on one cg_policy per key and
 * on one cg_keyed_policy. Every decision field is compared. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY 64
#define MAX_KEYS 17 /* 16 keys (the probe window) and the unnamed one */
#define MAX_ENTRIES CG_MAX_POLICY_QUOTAS
#define MAX_NAME 64

enum op { OP_CHECK, OP_PEEK, OP_FORCE, OP_REFUND, OP_RESET, OP_RESERVE, OP_SETTLE };

struct key {
    int present; /* 0: the step names no key */
    size_t len;
    uint8_t bytes[MAX_KEY];
};

struct step {
    enum op op;
    uint64_t now_ns;
    struct key key;
    char reservation[MAX_NAME]; /* "" when absent */
    size_t cost_count;
    uint64_t costs[MAX_ENTRIES]; /* costs[0] is the cost of a single-limiter step */
    int has_expect;
    int allowed;
    size_t binding;
    size_t count;
    cg_decision expect[MAX_ENTRIES]; /* expect[0] for single-limiter steps */
};

struct scenario {
    char file[128];
    char name[128];
    int is_policy;
    int token_bucket;
    uint32_t refill;
    int has_initial;
    uint64_t initial_tokens;
    int keyed;
    size_t max_keys;
    size_t entry_count;
    cg_policy_entry entries[MAX_ENTRIES];
    char entry_names[MAX_ENTRIES][MAX_NAME];
    cg_quota quota; /* single-limiter scenarios */
    size_t step_count;
    struct step *steps;
};

/* How a replay gives time. */
enum time_mode { EXPLICIT, MANUAL_CLOCK };

static const char *mode_name(enum time_mode mode) {
    return mode == EXPLICIT ? "explicit now_ns" : "manual clock + CG_NOW";
}

/* Copies text into a fixed buffer, cutting it if needed (names here are short). */
static void copy_text(char *dst, size_t size, const char *src) {
    size_t len = strlen(src);
    if (len >= size) len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex text ("~" is empty) into `out`; returns the length, or -1 when malformed. */
static long unhex(const char *text, uint8_t *out, size_t capacity) {
    if (strcmp(text, "~") == 0) return 0;
    size_t len = strlen(text);
    if (len % 2 != 0 || len / 2 > capacity) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int high = hex_value(text[2 * i]), low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0) return -1;
        out[i] = (uint8_t)(high * 16 + low);
    }
    return (long)(len / 2);
}

static uint64_t number(const char *token) {
    return token == NULL ? 0 : strtoull(token, NULL, 10);
}

static enum op parse_op(const char *op) {
    static const char *names[] = {"check", "peek",    "force", "refund",
                                  "reset", "reserve", "settle"};
    for (int i = 0; i < 7; i++)
        if (strcmp(op, names[i]) == 0) return (enum op)i;
    fprintf(stderr, "unknown op %s\n", op);
    abort();
}

/* Checks the quota line: the integers are a valid quota and the rate string (with its burst
 * as a "(burst N)" suffix) parses to them. */
static cg_quota read_quota(const struct scenario *scenario, char *rest) {
    char *save = NULL;
    char *rate_hex = strtok_r(rest, " \n", &save);
    char *burst = strtok_r(NULL, " \n", &save);
    cg_quota quota = {number(strtok_r(NULL, " \n", &save)), number(strtok_r(NULL, " \n", &save)),
                      number(strtok_r(NULL, " \n", &save))};
    char rate[256];
    long len = unhex(rate_hex, (uint8_t *)rate, sizeof rate - 64);
    CHECK(len >= 0);
    if (len < 0) return quota;
    rate[len] = '\0';
    if (strcmp(burst, "-") != 0) {
        size_t used = strlen(rate);
        snprintf(rate + used, sizeof rate - used, " (burst %s)", burst);
    }
    cg_quota parsed = {0, 0, 0};
    size_t offset = 0;
    cg_status status = cg_quota_parse(rate, CG_NUL_TERMINATED, &parsed, &offset);
    if (status != CG_STATUS_OK || parsed.rate_cost != quota.rate_cost ||
        parsed.period_ns != quota.period_ns || parsed.burst_cost != quota.burst_cost) {
        check_failures++;
        fprintf(stderr, "%s %s: rate \"%s\" parsed to status %d, %" PRIu64 "/%" PRIu64 "ns burst %" PRIu64 "\n",
                scenario->file, scenario->name, rate, (int)status, parsed.rate_cost,
                parsed.period_ns, parsed.burst_cost);
    }
    check_count++;
    cg_quota validated;
    CHECK_OK(cg_quota_new(quota.rate_cost, quota.period_ns, quota.burst_cost, &validated));
    return quota;
}

static void read_step(struct step *step, char *rest) {
    char *save = NULL;
    memset(step, 0, sizeof *step);
    step->op = parse_op(strtok_r(rest, " \n", &save));
    step->now_ns = number(strtok_r(NULL, " \n", &save));
    char *key = strtok_r(NULL, " \n", &save);
    if (strcmp(key, "-") != 0) {
        long len = unhex(key, step->key.bytes, MAX_KEY);
        if (len < 0) abort();
        step->key.present = 1;
        step->key.len = (size_t)len;
    }
    char *reservation = strtok_r(NULL, " \n", &save);
    if (strcmp(reservation, "-") != 0) {
        copy_text(step->reservation, sizeof step->reservation, reservation);
    }
    char *costs = strtok_r(NULL, " \n", &save);
    if (strcmp(costs, "-") != 0) {
        char *cost_save = NULL;
        for (char *cost = strtok_r(costs, ",", &cost_save); cost != NULL;
             cost = strtok_r(NULL, ",", &cost_save)) {
            if (step->cost_count == MAX_ENTRIES) abort();
            step->costs[step->cost_count++] = number(cost);
        }
    }
    char *allowed = strtok_r(NULL, " \n", &save);
    if (allowed == NULL || strcmp(allowed, "-") == 0) return;
    step->has_expect = 1;
    step->allowed = allowed[0] == '1';
    /* A single-limiter expectation is four more numbers; a policy's is binding, count, then
     * five per entry. The scenario kind decides, see `fill_expect`. */
    char *next;
    size_t n = 0;
    uint64_t values[3 + 5 * MAX_ENTRIES];
    while ((next = strtok_r(NULL, " \n", &save)) != NULL && n < sizeof values / sizeof *values)
        values[n++] = number(next);
    if (n == 4) {
        step->count = 1;
        step->expect[0] = (cg_decision){step->allowed, values[0], values[1], values[2], values[3]};
        return;
    }
    step->binding = (size_t)values[0];
    step->count = (size_t)values[1];
    for (size_t i = 0; i < step->count && i < MAX_ENTRIES; i++) {
        const uint64_t *v = &values[2 + 5 * i];
        step->expect[i] = (cg_decision){v[0] != 0, v[1], v[2], v[3], v[4]};
    }
}

static int same_decision(const cg_decision *a, const cg_decision *b) {
    return a->allowed == b->allowed && a->limit == b->limit && a->remaining == b->remaining &&
           a->retry_after_ns == b->retry_after_ns && a->reset_after_ns == b->reset_after_ns;
}

static void print_decision(const char *label, const cg_decision *d) {
    fprintf(stderr,
            "    %s: allowed %d limit %" PRIu64 " remaining %" PRIu64 " retry_after_ns %" PRIu64
            " reset_after_ns %" PRIu64 "\n",
            label, (int)d->allowed, d->limit, d->remaining, d->retry_after_ns,
            d->reset_after_ns);
}

static void mismatch(const struct scenario *s, size_t step, const char *replay,
                     enum time_mode mode, const char *what) {
    check_failures++;
    fprintf(stderr, "%s %s step %zu (%s, %s): %s\n", s->file, s->name, step, replay,
            mode_name(mode), what);
}

static void expect_decision(const struct scenario *s, size_t index, const char *replay,
                            enum time_mode mode, cg_status status, const cg_decision *got) {
    const struct step *step = &s->steps[index];
    check_count++;
    if (status != CG_STATUS_OK) {
        mismatch(s, index, replay, mode, cg_status_message((int)status));
    } else if (!same_decision(got, &step->expect[0])) {
        mismatch(s, index, replay, mode, "decision differs");
        print_decision("expected", &step->expect[0]);
        print_decision("got     ", got);
    }
}

static void expect_policy(const struct scenario *s, size_t index, const char *replay,
                          enum time_mode mode, cg_status status, const cg_policy_decision *got) {
    const struct step *step = &s->steps[index];
    check_count++;
    if (status != CG_STATUS_OK) {
        mismatch(s, index, replay, mode, cg_status_message((int)status));
        return;
    }
    int same = got->allowed == step->allowed && got->binding == step->binding &&
               got->count == step->count;
    for (size_t i = 0; same && i < step->count; i++)
        same = same_decision(&got->decisions[i], &step->expect[i]);
    /* The summary decision is the binding entry's with the policy's answer. */
    if (same && got->count > 0) {
        cg_decision binding = got->decisions[got->binding];
        binding.allowed = got->allowed;
        if (got->allowed) binding.retry_after_ns = 0;
        same = same_decision(&got->decision, &binding);
    }
    if (!same) {
        mismatch(s, index, replay, mode, "policy decision differs");
        fprintf(stderr, "    expected allowed %d binding %zu; got allowed %d binding %zu\n",
                step->allowed, step->binding, (int)got->allowed, got->binding);
        for (size_t i = 0; i < step->count; i++) {
            print_decision("expected", &step->expect[i]);
            print_decision("got     ", &got->decisions[i]);
        }
    }
}

/* The time to pass for a step: explicit, or CG_NOW after moving the manual clock. A time of
 * UINT64_MAX is CG_NOW itself, so it always goes through the clock. */
static uint64_t step_time(cg_clock *clock, enum time_mode mode, uint64_t now_ns) {
    if (mode == EXPLICIT && now_ns != CG_NOW) return now_ns;
    CHECK_OK(cg_clock_set(clock, now_ns));
    return CG_NOW;
}

/* A small map from keys to handles (at most MAX_KEYS, linear search). */
struct slot {
    struct key key;
    void *handle;
};

static void **lookup(struct slot *slots, size_t *used, const struct key *key) {
    for (size_t i = 0; i < *used; i++) {
        const struct key *k = &slots[i].key;
        if (k->present == key->present && k->len == key->len &&
            memcmp(k->bytes, key->bytes, key->len) == 0)
            return &slots[i].handle;
    }
    if (*used == MAX_KEYS) abort();
    slots[*used].key = *key;
    slots[*used].handle = NULL;
    return &slots[(*used)++].handle;
}

static void replay_single(const struct scenario *s, enum time_mode mode) {
    cg_clock *clock = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    struct slot slots[MAX_KEYS];
    size_t used = 0;
    for (size_t i = 0; i < s->step_count; i++) {
        const struct step *step = &s->steps[i];
        uint64_t now = step_time(clock, mode, step->now_ns);
        cg_cell **limiter = (cg_cell **)lookup(slots, &used, &step->key);
        if (*limiter == NULL) {
            if (s->token_bucket)
                CHECK_OK(cg_cell_new_token_bucket(s->quota, s->refill,
                                                     s->has_initial ? s->initial_tokens : CG_FULL,
                                                     now, clock, limiter));
            else
                CHECK_OK(cg_cell_new_gcra(s->quota, clock, limiter));
            if (*limiter == NULL) return;
        }
        cg_decision got;
        memset(&got, 0xA5, sizeof got);
        cg_status status = CG_STATUS_OK;
        switch (step->op) {
        case OP_CHECK: status = cg_cell_check(*limiter, now, step->costs[0], &got); break;
        case OP_PEEK: status = cg_cell_peek(*limiter, now, step->costs[0], &got); break;
        case OP_FORCE: status = cg_cell_force(*limiter, now, step->costs[0], &got); break;
        case OP_REFUND: status = cg_cell_refund(*limiter, now, step->costs[0], &got); break;
        case OP_RESET:
            CHECK_OK(cg_cell_reset(*limiter));
            if (!step->has_expect) continue;
            status = cg_cell_peek(*limiter, now, 0, &got);
            break;
        default: abort();
        }
        expect_decision(s, i, "cg_cell per key", mode, status, &got);
    }
    for (size_t i = 0; i < used; i++) cg_cell_free((cg_cell *)slots[i].handle);
    cg_clock_free(clock);
}

static void replay_keyed(const struct scenario *s, enum time_mode mode) {
    cg_clock *clock = NULL;
    cg_keyed_limiter *limiter = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    uint32_t refill = s->token_bucket ? s->refill : CG_REFILL_GREEDY;
    CHECK_OK(cg_keyed_limiter_new(s->quota, refill, s->max_keys, clock, &limiter));
    if (limiter == NULL) return;
    for (size_t i = 0; i < s->step_count; i++) {
        const struct step *step = &s->steps[i];
        uint64_t now = step_time(clock, mode, step->now_ns);
        /* NULL with length 0 is the empty key: pass NULL for it, to check that too. */
        const uint8_t *key = step->key.len == 0 ? NULL : step->key.bytes;
        size_t len = step->key.len;
        cg_decision got;
        memset(&got, 0xA5, sizeof got);
        cg_status status = CG_STATUS_OK;
        switch (step->op) {
        case OP_CHECK:
            status = cg_keyed_limiter_check(limiter, key, len, now, step->costs[0], &got);
            break;
        case OP_PEEK:
            status = cg_keyed_limiter_peek(limiter, key, len, now, step->costs[0], &got);
            break;
        case OP_FORCE:
            status = cg_keyed_limiter_force(limiter, key, len, now, step->costs[0], &got);
            break;
        case OP_REFUND:
            status = cg_keyed_limiter_refund(limiter, key, len, now, step->costs[0], &got);
            break;
        case OP_RESET:
            CHECK_OK(cg_keyed_limiter_reset(limiter, key, len, now));
            if (!step->has_expect) continue;
            status = cg_keyed_limiter_peek(limiter, key, len, now, 0, &got);
            break;
        default: abort();
        }
        expect_decision(s, i, "cg_keyed_limiter", mode, status, &got);
    }
    cg_keyed_limiter_free(limiter);
    cg_clock_free(clock);
}

/* Reservations kept by id during a policy replay. */
struct reservations {
    size_t used;
    char ids[32][MAX_NAME];
    cg_reservation *handles[32];
};

static cg_reservation **reservation_slot(struct reservations *r, const char *id) {
    for (size_t i = 0; i < r->used; i++)
        if (strcmp(r->ids[i], id) == 0) return &r->handles[i];
    if (r->used == 32) abort();
    copy_text(r->ids[r->used], MAX_NAME, id);
    r->handles[r->used] = NULL;
    return &r->handles[r->used++];
}

static void free_reservations(struct reservations *r) {
    for (size_t i = 0; i < r->used; i++) cg_reservation_free(r->handles[i]);
    r->used = 0;
}

/* After a reserve: a reservation exactly when admitted. */
static void keep_reservation(const struct scenario *s, size_t index, const char *replay,
                             enum time_mode mode, struct reservations *kept,
                             cg_reservation *made, int admitted) {
    check_count++;
    if ((made != NULL) != admitted) {
        mismatch(s, index, replay, mode, "reservation present iff admitted");
        cg_reservation_free(made);
        return;
    }
    if (made != NULL) {
        cg_reservation **slot = reservation_slot(kept, s->steps[index].reservation);
        cg_reservation_free(*slot);
        *slot = made;
    }
}

static void replay_policy(const struct scenario *s, enum time_mode mode) {
    cg_clock *clock = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    struct slot slots[MAX_KEYS];
    size_t used = 0;
    struct reservations kept = {0};
    const char *replay = "cg_policy per key";
    for (size_t i = 0; i < s->step_count; i++) {
        const struct step *step = &s->steps[i];
        uint64_t now = step_time(clock, mode, step->now_ns);
        cg_policy **policy = (cg_policy **)lookup(slots, &used, &step->key);
        if (*policy == NULL) {
            CHECK_OK(cg_policy_new(s->entries, s->entry_count, clock, policy));
            if (*policy == NULL) return;
        }
        cg_policy_decision got;
        memset(&got, 0xA5, sizeof got);
        cg_status status = CG_STATUS_OK;
        const uint64_t *costs = step->costs;
        size_t n = step->cost_count;
        switch (step->op) {
        case OP_CHECK: status = cg_policy_check(*policy, now, costs, n, &got); break;
        case OP_PEEK: status = cg_policy_peek(*policy, now, costs, n, &got); break;
        case OP_FORCE: status = cg_policy_force(*policy, now, costs, n, &got); break;
        case OP_REFUND: status = cg_policy_refund(*policy, now, costs, n, &got); break;
        case OP_RESERVE: {
            cg_reservation *made = NULL;
            status = cg_policy_reserve(*policy, now, costs, n, &got, &made);
            if (status == CG_STATUS_OK)
                keep_reservation(s, i, replay, mode, &kept, made, step->allowed);
            break;
        }
        case OP_SETTLE: {
            cg_reservation **slot = reservation_slot(&kept, step->reservation);
            status = cg_policy_settle(*policy, now, *slot, costs, n, &got);
            /* A settled reservation cannot be settled again. */
            CHECK_STATUS(cg_policy_settle(*policy, now, *slot, costs, n, &got),
                         status == CG_STATUS_OK ? CG_STATUS_ALREADY_SETTLED
                                                : CG_STATUS_NULL_ARGUMENT);
            cg_reservation_free(*slot);
            *slot = NULL;
            break;
        }
        case OP_RESET: {
            CHECK_OK(cg_policy_reset(*policy));
            if (!step->has_expect) continue;
            size_t dimensions = 0;
            CHECK_OK(cg_policy_dimensions(*policy, &dimensions));
            uint64_t zeros[MAX_ENTRIES] = {0};
            status = cg_policy_peek(*policy, now, zeros, dimensions, &got);
            break;
        }
        }
        expect_policy(s, i, replay, mode, status, &got);
    }
    free_reservations(&kept);
    for (size_t i = 0; i < used; i++) cg_policy_free((cg_policy *)slots[i].handle);
    cg_clock_free(clock);
}

static void replay_keyed_policy(const struct scenario *s, enum time_mode mode) {
    static const char fixed_key[] = "cellgate-vectors";
    const char *replay = "cg_keyed_policy";
    cg_clock *clock = NULL;
    cg_keyed_policy *policy = NULL;
    CHECK_OK(cg_clock_new(0, &clock));
    CHECK_OK(cg_keyed_policy_new(s->entries, s->entry_count, s->max_keys, clock, &policy));
    if (policy == NULL) return;
    struct reservations kept = {0};
    for (size_t i = 0; i < s->step_count; i++) {
        const struct step *step = &s->steps[i];
        uint64_t now = step_time(clock, mode, step->now_ns);
        const uint8_t *key = step->key.present ? step->key.bytes : (const uint8_t *)fixed_key;
        size_t len = step->key.present ? step->key.len : sizeof fixed_key - 1;
        cg_policy_decision got;
        memset(&got, 0xA5, sizeof got);
        cg_status status = CG_STATUS_OK;
        const uint64_t *costs = step->costs;
        size_t n = step->cost_count;
        switch (step->op) {
        case OP_CHECK: status = cg_keyed_policy_check(policy, key, len, now, costs, n, &got); break;
        case OP_PEEK: status = cg_keyed_policy_peek(policy, key, len, now, costs, n, &got); break;
        case OP_FORCE: status = cg_keyed_policy_force(policy, key, len, now, costs, n, &got); break;
        case OP_REFUND:
            status = cg_keyed_policy_refund(policy, key, len, now, costs, n, &got);
            break;
        case OP_RESERVE: {
            cg_reservation *made = NULL;
            status = cg_keyed_policy_reserve(policy, key, len, now, costs, n, &got, &made);
            if (status == CG_STATUS_OK)
                keep_reservation(s, i, replay, mode, &kept, made, step->allowed);
            break;
        }
        case OP_SETTLE: {
            cg_reservation **slot = reservation_slot(&kept, step->reservation);
            status = cg_keyed_policy_settle(policy, now, *slot, costs, n, &got);
            cg_reservation_free(*slot);
            *slot = NULL;
            break;
        }
        case OP_RESET: {
            CHECK_OK(cg_keyed_policy_reset(policy, key, len, now));
            if (!step->has_expect) continue;
            size_t dimensions = 0;
            CHECK_OK(cg_keyed_policy_dimensions(policy, &dimensions));
            uint64_t zeros[MAX_ENTRIES] = {0};
            status = cg_keyed_policy_peek(policy, key, len, now, zeros, dimensions, &got);
            break;
        }
        }
        expect_policy(s, i, replay, mode, status, &got);
    }
    free_reservations(&kept);
    cg_keyed_policy_free(policy);
    cg_clock_free(clock);
}

static void replay(const struct scenario *s) {
    for (int m = 0; m < 2; m++) {
        enum time_mode mode = m == 0 ? EXPLICIT : MANUAL_CLOCK;
        if (s->is_policy) {
            replay_policy(s, mode);
            replay_keyed_policy(s, mode);
        } else {
            replay_single(s, mode);
            if (s->keyed) replay_keyed(s, mode);
        }
    }
}

void test_vectors(const char *path) {
    FILE *file = fopen(path, "r");
    CHECK(file != NULL);
    if (file == NULL) return;
    static char line[8192];
    CHECK(fgets(line, sizeof line, file) != NULL && strcmp(line, "cellgate-vectors 1\n") == 0);
    struct scenario s;
    memset(&s, 0, sizeof s);
    size_t capacity = 0, scenarios = 0, steps = 0, announced = 0;
    char file_name[128] = "";
    while (fgets(line, sizeof line, file) != NULL) {
        char *rest = line + 2;
        char *save = NULL;
        switch (line[0]) {
        case 'F':
            rest[strcspn(rest, "\n")] = '\0';
            copy_text(file_name, sizeof file_name, rest);
            break;
        case 'S': {
            struct step *kept_steps = s.steps;
            memset(&s, 0, sizeof s);
            s.steps = kept_steps;
            copy_text(s.file, sizeof s.file, file_name);
            copy_text(s.name, sizeof s.name, strtok_r(rest, " \n", &save));
            s.token_bucket = strcmp(strtok_r(NULL, " \n", &save), "token_bucket") == 0;
            s.refill = (uint32_t)number(strtok_r(NULL, " \n", &save));
            char *initial = strtok_r(NULL, " \n", &save);
            s.has_initial = strcmp(initial, "-") != 0;
            s.initial_tokens = s.has_initial ? number(initial) : 0;
            s.keyed = number(strtok_r(NULL, " \n", &save)) != 0;
            s.max_keys = (size_t)number(strtok_r(NULL, " \n", &save));
            break;
        }
        case 'P': {
            struct step *kept_steps = s.steps;
            memset(&s, 0, sizeof s);
            s.steps = kept_steps;
            s.is_policy = 1;
            copy_text(s.file, sizeof s.file, file_name);
            copy_text(s.name, sizeof s.name, strtok_r(rest, " \n", &save));
            (void)strtok_r(NULL, " \n", &save); /* the entry count, implied by the E lines */
            s.max_keys = (size_t)number(strtok_r(NULL, " \n", &save));
            break;
        }
        case 'E': {
            if (s.entry_count == MAX_ENTRIES) abort();
            size_t e = s.entry_count++;
            long len = unhex(strtok_r(rest, " \n", &save), (uint8_t *)s.entry_names[e],
                             MAX_NAME - 1);
            if (len < 0) abort();
            s.entry_names[e][len] = '\0';
            /* Names by pointer and length for even entries, NUL-terminated for odd ones. */
            s.entries[e].name = s.entry_names[e];
            s.entries[e].name_len = e % 2 == 0 ? (size_t)len : CG_NUL_TERMINATED;
            s.entries[e].dimension = (size_t)number(strtok_r(NULL, " \n", &save));
            break;
        }
        case 'Q': {
            cg_quota quota = read_quota(&s, rest);
            if (s.is_policy && s.entry_count > 0)
                s.entries[s.entry_count - 1].quota = quota;
            else
                s.quota = quota;
            break;
        }
        case 'T':
            if (s.step_count == capacity) {
                capacity = capacity == 0 ? 64 : capacity * 2;
                s.steps = realloc(s.steps, capacity * sizeof *s.steps);
                if (s.steps == NULL) abort();
            }
            read_step(&s.steps[s.step_count++], rest);
            break;
        case 'N':
            announced = (size_t)number(rest);
            break;
        case 'X':
            replay(&s);
            scenarios++;
            steps += s.step_count;
            s.step_count = 0;
            break;
        default:
            fprintf(stderr, "%s: unexpected line: %s", path, line);
            check_failures++;
        }
    }
    free(s.steps);
    fclose(file);
    printf("vectors: %zu scenarios, %zu steps, each replayed 2 ways in time\n", scenarios, steps);
    /* Every scenario was read (the file ends with their count), and there are many. */
    CHECK(scenarios == announced && scenarios >= 50);
}
