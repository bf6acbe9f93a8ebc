/* Runs the C block of the top-level README.md ("From C"), extracted as it stands by
 * ffi-c/tests/readme_snippet.py, against a 16-key table: `answer` must serve (200) only the
 * requests the limiter allowed, answer 503 on every CG_STATUS_TABLE_FULL, 429 with
 * Retry-After and RateLimit on a denial, and an error (500) on any other status. */
#include <cellgate.h>

#include <stdio.h>
#include <string.h>

int answer(const cg_keyed_limiter *limiter, cg_quota quota, const uint8_t *key, size_t key_len);

static unsigned long answered_200, answered_429, answered_503, answered_500, answered_other;
static char last_headers[1024];
static size_t last_headers_len;
static unsigned long failures;

/* The snippet's `respond`: counts each answer and keeps the last header lines. */
int respond(int http_status, const char *headers, size_t headers_len) {
    switch (http_status) {
    case 200: answered_200++; break;
    case 429: answered_429++; break;
    case 503: answered_503++; break;
    case 500: answered_500++; break;
    default: answered_other++; break;
    }
    last_headers_len = headers_len < sizeof last_headers ? headers_len : sizeof last_headers - 1;
    memcpy(last_headers, headers, last_headers_len);
    last_headers[last_headers_len] = '\0';
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
    cg_quota quota;
    cg_keyed_limiter *limiter = NULL;
    if (cg_quota_parse("1/minute", CG_NUL_TERMINATED, &quota, NULL) != CG_STATUS_OK ||
        cg_keyed_limiter_new(quota, CG_REFILL_GREEDY, 16, NULL, &limiter) != CG_STATUS_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    /* 1000 new clients, one request each, into a table sized for 16. */
    enum { CLIENTS = 1000 };
    char first_served[32] = "";
    for (int client = 0; client < CLIENTS; client++) {
        char key[32];
        int key_len = snprintf(key, sizeof key, "client-%d", client);
        unsigned long served_before = answered_200;
        answer(limiter, quota, (const uint8_t *)key, (size_t)key_len);
        if (answered_200 > served_before && first_served[0] == '\0') memcpy(first_served, key, 32);
    }
    cg_keyed_stats stats;
    EXPECT(cg_keyed_limiter_stats(limiter, &stats) == CG_STATUS_OK);
    printf("README snippet, %d new clients into a 16-key table: %lu served, %lu answered 503 "
           "(table full: %llu), %lu 429, %lu 500\n",
           CLIENTS, answered_200, answered_503, (unsigned long long)stats.rejected_full,
           answered_429, answered_500);
    EXPECT(stats.rejected_full > 0);
    EXPECT(answered_503 == stats.rejected_full);
    EXPECT(answered_200 == CLIENTS - stats.rejected_full);
    EXPECT(answered_429 == 0 && answered_500 == 0 && answered_other == 0);

    /* A served client's second request in the minute: 429 with the headers. */
    EXPECT(first_served[0] != '\0');
    int status = answer(limiter, quota, (const uint8_t *)first_served, strlen(first_served));
    EXPECT(status == 429 && answered_429 == 1);
    EXPECT(strstr(last_headers, "Retry-After: 60\r\n") != NULL);
    EXPECT(strstr(last_headers, "RateLimit: \"per-ip\";r=0;") != NULL);
    EXPECT(strstr(last_headers, "RateLimit-Policy: \"per-ip\";q=1;w=60\r\n") != NULL);

    /* Any other status is an error answer, never served. */
    EXPECT(answer(NULL, quota, (const uint8_t *)"k", 1) == 500);
    EXPECT(answer(limiter, quota, NULL, 1) == 500);
    EXPECT(answered_200 == CLIENTS - stats.rejected_full);

    cg_keyed_limiter_free(limiter);
    if (failures != 0) {
        fprintf(stderr, "FAILED: %lu checks of the README snippet\n", failures);
        return 1;
    }
    printf("ok: the README snippet serves only what the limiter allowed\n");
    return 0;
}
