/* Runs the C block of the top-level README.md ("From C"), extracted as it stands by
 * ffi-c/tests/readme_snippet.py, set up as its comment says, under a flood of 100,000 new keys
 * into a table for 1,000 under "1/hour": every request must get a decision, answered 200 when
 * allowed and 429 otherwise, a full table's refusals included (Retry-After, RateLimit headers
 * and core's body); never 500 or 503; the exhausted key stays denied; an invalid argument is an
 * error answer (500), never served. */
#include <cellgate.h>

#include <stdio.h>
#include <string.h>

int answer(const cg_limiter *limiter, const uint8_t *key, size_t key_len);

static unsigned long answered_200, answered_429, answered_500, answered_other;
static char last_headers[1024], last_body[64];
static size_t last_headers_len, last_body_len;
static unsigned long failures;

/* The snippet's `respond`: counts each answer and keeps the last header lines and body. */
int respond(int http_status, const char *headers, size_t headers_len, const char *body,
            size_t body_len) {
    switch (http_status) {
    case 200: answered_200++; break;
    case 429: answered_429++; break;
    case 500: answered_500++; break;
    default: answered_other++; break;
    }
    last_headers_len = headers_len < sizeof last_headers ? headers_len : sizeof last_headers - 1;
    memcpy(last_headers, headers, last_headers_len);
    last_headers[last_headers_len] = '\0';
    last_body_len = body_len < sizeof last_body ? body_len : sizeof last_body - 1;
    memcpy(last_body, body, last_body_len);
    last_body[last_body_len] = '\0';
    return http_status;
}

#define EXPECT(cond)                                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                                     \
    } while (0)

int main(void) {
    /* As the snippet's comment says, with room for 1,000 keys. */
    cg_limiter_quota quota = {0};
    cg_limiter_options options;
    cg_limiter *limiter = NULL;
    if (cg_quota_parse("1/hour", CG_NUL_TERMINATED, &quota.quota, NULL) != CG_STATUS_OK ||
        cg_limiter_options_init(&options) != CG_STATUS_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    options.max_keys = 1000;
    if (cg_limiter_new(&quota, 1, &options, &limiter) != CG_STATUS_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    /* The exhausted key: served once, then over its quota for the hour. */
    const uint8_t exhausted[] = "exhausted";
    EXPECT(answer(limiter, exhausted, sizeof exhausted - 1) == 200);
    EXPECT(answer(limiter, exhausted, sizeof exhausted - 1) == 429);
    EXPECT(strstr(last_headers, "Retry-After: 3600\r\n") != NULL);
    EXPECT(strstr(last_headers, "RateLimit-Policy: \"1-in-1h\";q=1;w=3600\r\n") != NULL);
    EXPECT(strcmp(last_body, "{\"error\":\"rate_limited\",\"retry_after\":3600}") == 0);

    /* 100,000 new clients, one request each, into a table for 1,000. */
    enum { CLIENTS = 100000 };
    unsigned long served_before = answered_200, refused_before = answered_429;
    unsigned long exhausted_served = 0, refusals_without_retry_after = 0;
    for (int client = 0; client < CLIENTS; client++) {
        char key[32];
        int key_len = snprintf(key, sizeof key, "client-%d", client);
        if (answer(limiter, (const uint8_t *)key, (size_t)key_len) == 429 &&
            (strstr(last_headers, "Retry-After: ") == NULL ||
             strncmp(last_body, "{\"error\":\"rate_limited\",\"retry_after\":", 38) != 0))
            refusals_without_retry_after++;
        if (client % 1000 == 0 && answer(limiter, exhausted, sizeof exhausted - 1) != 429)
            exhausted_served++;
    }
    unsigned long served = answered_200 - served_before;
    unsigned long refused = answered_429 - refused_before - CLIENTS / 1000;
    cg_keyed_stats stats;
    size_t count = 0;
    EXPECT(cg_limiter_stats(limiter, &stats, 1, &count) == CG_STATUS_OK && count == 1);
    printf("README snippet, %d new clients into a table for 1000 under 1/hour: %lu served, "
           "%lu answered 429 (table full: %llu), %lu 500, %lu other\n",
           CLIENTS, served, refused, (unsigned long long)stats.rejected_full, answered_500,
           answered_other);
    EXPECT(served + refused == CLIENTS);
    EXPECT(served >= 700 && refused > 90000);
    EXPECT(refused == stats.rejected_full);           /* every refusal of a new key: full */
    EXPECT(refusals_without_retry_after == 0);
    EXPECT(exhausted_served == 0);
    EXPECT(answered_500 == 0 && answered_other == 0);

    /* Any other status is an error answer, never served. */
    EXPECT(answer(NULL, exhausted, 1) == 500);
    EXPECT(answer(limiter, NULL, 1) == 500);
    EXPECT(answered_500 == 2);

    cg_limiter_free(limiter);
    if (failures != 0) {
        fprintf(stderr, "FAILED: %lu checks of the README snippet\n", failures);
        return 1;
    }
    printf("ok: the README snippet answers every request, a full table with 429\n");
    return 0;
}
