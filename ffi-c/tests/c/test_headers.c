/* Replays testdata/headers (header vectors, converted to lines by
 * ffi-c/tests/headers_to_lines.py) through cg_limiter: each scenario's limiter is built with
 * cg_limiter_new, its steps applied with cg_limiter_apply, and every decision (allowed, reason,
 * remaining, the Retry-After wait), every style's header bytes (IETF, legacy, legacy epoch,
 * Anthropic, OpenAI) and the 429 body compared with
 * the expected bytes exactly. Any difference is a failure, reported with both texts. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LINE_BYTES 16384
#define TEXT_BYTES 2048
#define NOW_UNIX_S 1700000000u

struct scenario {
    char file[128];
    char name[128];
    size_t quota_count, quotas_read, dimensions, step;
    cg_limiter_options options;
    cg_limiter_quota quotas[CG_MAX_POLICY_QUOTAS];
    char names[CG_MAX_POLICY_QUOTAS][TEXT_BYTES];
    cg_limiter *limiter;
    int have_decision;
    cg_limiter_decision decision;
};

static unsigned long header_comparisons;

/* Reports a difference between an expected and a rendered text. */
static void differs(const struct scenario *s, const char *what, const char *want,
                    size_t want_len, const char *got, size_t got_len) {
    char where[512];
    snprintf(where, sizeof where, "%s: %s, step %zu: %s not as the vector says", s->file, s->name, s->step,
             what);
    check_failed(__FILE__, __LINE__, where);
    fprintf(stderr, "  expected (%zu bytes): %.*s\n  rendered (%zu bytes): %.*s\n", want_len,
            (int)want_len, want, got_len, (int)got_len, got);
}

static void compare_text(const struct scenario *s, const char *what, const char *want,
                         size_t want_len, const char *got, size_t got_len) {
    check_count++;
    if (want_len != got_len || memcmp(want, got, want_len) != 0)
        differs(s, what, want, want_len, got, got_len);
}

static void compare_number(const struct scenario *s, const char *what, uint64_t want,
                           uint64_t got) {
    check_count++;
    if (want != got) {
        char where[512];
        snprintf(where, sizeof where, "%s: %s, step %zu: %s: expected %" PRIu64 ", got %" PRIu64,
                 s->file, s->name, s->step, what, want, got);
        check_failed(__FILE__, __LINE__, where);
    }
}

/* Hexadecimal text ("~": empty) into `out`; returns its length, or -1. */
static long unhex(const char *hex, char *out, size_t capacity) {
    if (strcmp(hex, "~") == 0) return 0;
    size_t len = strlen(hex);
    if (len % 2 != 0 || len / 2 > capacity) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1) return -1;
        out[i] = (char)value;
    }
    return (long)(len / 2);
}

static uint64_t number(const char *text, int *ok) {
    char *end = NULL;
    if (text == NULL || *text < '0' || *text > '9') {
        *ok = 0;
        return 0;
    }
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0') *ok = 0;
    return (uint64_t)value;
}

static uint32_t op_of(const char *name, int *ok) {
    static const char *const names[] = {"check", "peek", "force", "refund", "reset"};
    static const uint32_t ops[] = {CG_OP_CHECK, CG_OP_PEEK, CG_OP_FORCE, CG_OP_REFUND,
                                   CG_OP_RESET};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return ops[i];
    *ok = 0;
    return 0;
}

static uint32_t style_of(const char *name, int *ok) {
    if (strcmp(name, "ietf") == 0) return CG_HEADER_STYLE_IETF;
    if (strcmp(name, "legacy") == 0) return CG_HEADER_STYLE_LEGACY;
    if (strcmp(name, "legacy_epoch") == 0) return CG_HEADER_STYLE_LEGACY_EPOCH;
    if (strcmp(name, "anthropic") == 0) return CG_HEADER_STYLE_ANTHROPIC;
    if (strcmp(name, "openai") == 0) return CG_HEADER_STYLE_OPENAI;
    if (strcmp(name, "draft_6") == 0) return CG_HEADER_STYLE_DRAFT_6;
    if (strcmp(name, "draft_7") == 0) return CG_HEADER_STYLE_DRAFT_7;
    *ok = 0;
    return 0;
}

static int read_quota(struct scenario *s, char **tokens) {
    if (s->quotas_read >= s->quota_count) return 0;
    size_t index = s->quotas_read++;
    char rate[TEXT_BYTES];
    long rate_len = unhex(tokens[1], rate, sizeof rate);
    if (rate_len < 0) return 0;
    cg_limiter_quota *quota = &s->quotas[index];
    memset(quota, 0, sizeof *quota);
    CHECK_OK(cg_quota_parse(rate, (size_t)rate_len, &quota->quota, NULL));
    int ok = 1;
    if (strcmp(tokens[2], "-") != 0) quota->quota.burst_cost = number(tokens[2], &ok);
    if (strcmp(tokens[3], "-") != 0) {
        long name_len = unhex(tokens[3], s->names[index], sizeof s->names[index]);
        if (name_len < 0) return 0;
        quota->name = s->names[index];
        quota->name_len = (size_t)name_len;
    }
    quota->dimension = (size_t)number(tokens[4], &ok);
    if (ok && s->quotas_read == s->quota_count)
        CHECK_OK(cg_limiter_new(s->quotas, s->quota_count, &s->options, &s->limiter));
    return ok;
}

static int apply_step(struct scenario *s, char **tokens) {
    int ok = 1;
    uint32_t op = op_of(tokens[1], &ok);
    uint64_t now_ns = number(tokens[2], &ok);
    char key[TEXT_BYTES];
    long key_len = unhex(tokens[3], key, sizeof key);
    uint64_t costs[CG_MAX_POLICY_QUOTAS];
    size_t cost_count = 0;
    int all_unnamed = 1;
    for (char *cost = strtok(tokens[4], ","); cost != NULL; cost = strtok(NULL, ",")) {
        if (cost_count == CG_MAX_POLICY_QUOTAS) return 0;
        if (strcmp(cost, "d") == 0) {
            costs[cost_count++] = CG_COST_DEFAULT;
        } else {
            costs[cost_count++] = number(cost, &ok);
            all_unnamed = 0;
        }
    }
    if (!ok || key_len < 0 || cost_count != s->dimensions || s->limiter == NULL) return 0;
    s->step++;
    /* With no cost named, every other step passes no costs at all (NULL, 0): the same. */
    const uint64_t *given = costs;
    if (all_unnamed && s->step % 2 == 0) {
        given = NULL;
        cost_count = 0;
    }
    CHECK_OK(cg_limiter_apply(s->limiter, (const uint8_t *)key, (size_t)key_len, now_ns, given,
                              cost_count, op, &s->decision));
    s->have_decision = 1;
    return 1;
}

static int compare_expect(struct scenario *s, char **tokens) {
    if (!s->have_decision) return 0;
    const cg_limiter_decision *d = &s->decision;
    int ok = 1;
    compare_number(s, "allowed", number(tokens[1], &ok), d->allowed ? 1 : 0);
    const char *reason = cg_reason_name((int)d->reason);
    compare_text(s, "reason", tokens[2], strlen(tokens[2]), reason, strlen(reason));
    compare_number(s, "remaining", number(tokens[3], &ok), d->decision.remaining);
    uint64_t wait_ns = 1;
    CHECK_OK(cg_limiter_retry_after_ns(s->limiter, d, &wait_ns));
    compare_number(s, "retry_after_ns", strcmp(tokens[4], "-") == 0 ? 0 : number(tokens[4], &ok),
                   wait_ns);
    if (strcmp(tokens[5], "-") != 0) {
        char want[TEXT_BYTES], got[CG_MAX_429_BODY_BYTES];
        long want_len = unhex(tokens[5], want, sizeof want);
        size_t got_len = 0;
        if (want_len < 0) return 0;
        CHECK_OK(cg_limiter_render_429_body(s->limiter, d, got, sizeof got, &got_len));
        compare_text(s, "429 body", want, (size_t)want_len, got, got_len);
    } else {
        CHECK(d->allowed);
    }
    return ok;
}

static int compare_headers(struct scenario *s, char **tokens, size_t token_count) {
    int ok = 1;
    uint32_t style = style_of(tokens[1], &ok);
    char got[TEXT_BYTES];
    size_t got_len = 0;
    if (strcmp(tokens[2], "error") == 0) {
        /* The style refuses a quota's name (the index is core's; C has the status). */
        if (!ok || !s->have_decision || token_count != 5 || strcmp(tokens[3], "invalid_name") != 0)
            return 0;
        CHECK_STATUS(cg_limiter_render_headers(s->limiter, &s->decision, style, NOW_UNIX_S, got,
                                               sizeof got, &got_len),
                     CG_STATUS_INVALID_NAME);
        header_comparisons++;
        return 1;
    }
    size_t pairs = (size_t)number(tokens[2], &ok);
    if (!ok || !s->have_decision || token_count != 3 + 2 * pairs) return 0;
    /* The expected lines, "Name: value\r\n" each, as cg_limiter_render_headers writes them. */
    char want[TEXT_BYTES];
    size_t want_len = 0;
    for (size_t pair = 0; pair < pairs; pair++) {
        char name[TEXT_BYTES], value[TEXT_BYTES];
        long name_len = unhex(tokens[3 + 2 * pair], name, sizeof name);
        long value_len = unhex(tokens[4 + 2 * pair], value, sizeof value);
        if (name_len < 0 || value_len < 0 ||
            want_len + (size_t)name_len + (size_t)value_len + 4 > sizeof want)
            return 0;
        memcpy(want + want_len, name, (size_t)name_len);
        want_len += (size_t)name_len;
        memcpy(want + want_len, ": ", 2);
        want_len += 2;
        memcpy(want + want_len, value, (size_t)value_len);
        want_len += (size_t)value_len;
        memcpy(want + want_len, "\r\n", 2);
        want_len += 2;
    }
    CHECK_OK(cg_limiter_render_headers(s->limiter, &s->decision, style, NOW_UNIX_S, got,
                                       sizeof got, &got_len));
    char what[64];
    snprintf(what, sizeof what, "%s headers", tokens[1]);
    compare_text(s, what, want, want_len, got, got_len);
    header_comparisons++;
    return 1;
}

void test_header_vectors(const char *path) {
    FILE *file = fopen(path, "r");
    CHECK(file != NULL);
    if (file == NULL) return;
    static char line[LINE_BYTES];
    char *tokens[3 + 2 * CG_MAX_DIMENSION_HEADERS];
    struct scenario s;
    memset(&s, 0, sizeof s);
    unsigned long scenarios = 0, steps = 0, line_number = 0;
    int versioned = 0, ended = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        line_number++;
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            check_failed(__FILE__, __LINE__, "a line too long for the reader");
            break;
        }
        line[len - 1] = '\0';
        if (!versioned) {
            versioned = strcmp(line, "cellgate-headers 1") == 0;
            CHECK(versioned);
            if (!versioned) break;
            continue;
        }
        size_t count = 0;
        char *save = NULL;
        for (char *token = strtok_r(line, " ", &save); token != NULL;
             token = strtok_r(NULL, " ", &save)) {
            if (count == sizeof tokens / sizeof tokens[0]) {
                count = 0;
                break;
            }
            tokens[count++] = token;
        }
        int ok = count > 0;
        if (ok && strcmp(tokens[0], "F") == 0 && count == 2) {
            snprintf(s.file, sizeof s.file, "%s", tokens[1]);
        } else if (ok && strcmp(tokens[0], "S") == 0 && count == 7) {
            char file_name[sizeof s.file];
            memcpy(file_name, s.file, sizeof file_name);
            memset(&s, 0, sizeof s);
            memcpy(s.file, file_name, sizeof file_name);
            snprintf(s.name, sizeof s.name, "%s", tokens[1]);
            CHECK_OK(cg_limiter_options_init(&s.options));
            s.options.refill = (uint32_t)number(tokens[2], &ok);
            s.options.on_full = (uint32_t)number(tokens[3], &ok);
            s.options.max_keys = (size_t)number(tokens[4], &ok);
            /* A fixed seed, as core's replay uses: the expectations hold for any seed. */
            s.options.seeded = true;
            s.options.seed_k0 = 1;
            s.options.seed_k1 = 2;
            s.quota_count = (size_t)number(tokens[5], &ok);
            s.dimensions = (size_t)number(tokens[6], &ok);
            ok = ok && s.quota_count >= 1 && s.quota_count <= CG_MAX_POLICY_QUOTAS;
        } else if (ok && strcmp(tokens[0], "Q") == 0 && count == 5) {
            ok = read_quota(&s, tokens);
        } else if (ok && strcmp(tokens[0], "T") == 0 && count == 5) {
            ok = apply_step(&s, tokens);
            steps++;
        } else if (ok && strcmp(tokens[0], "E") == 0 && count == 6) {
            ok = compare_expect(&s, tokens);
        } else if (ok && strcmp(tokens[0], "H") == 0 && count >= 3) {
            ok = compare_headers(&s, tokens, count);
        } else if (ok && strcmp(tokens[0], "X") == 0 && count == 1) {
            cg_limiter_free(s.limiter);
            s.limiter = NULL;
            scenarios++;
        } else if (ok && strcmp(tokens[0], "N") == 0 && count == 2) {
            CHECK(number(tokens[1], &ok) == scenarios);
            ended = 1;
        } else {
            ok = 0;
        }
        if (!ok) {
            char where[256];
            snprintf(where, sizeof where, "%s line %lu: malformed or out of order", path,
                     line_number);
            check_failed(__FILE__, __LINE__, where);
            break;
        }
    }
    cg_limiter_free(s.limiter);
    fclose(file);
    CHECK(ended);
    CHECK(scenarios > 0 && steps > 0);
    /* Every step was compared in all five styles. */
    CHECK(header_comparisons == 7 * steps); /* every style of every step */
    printf("header vectors: %lu scenarios, %lu steps, %lu header renderings compared\n",
           scenarios, steps, header_comparisons);
}
