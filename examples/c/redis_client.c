/* cellgate over Redis from C with hiredis: the library encodes and decodes, hiredis sends.
 * One EVALSHA per decision (EVAL once the server answers NOSCRIPT: after a restart, a
 * failover or SCRIPT FLUSH), a timeout on every call, and the outage policy when Redis cannot
 * be asked; the next call reconnects, so decisions go back to Redis by themselves.
 *
 *   redis_client HOST PORT check KEY [N]    N checks of KEY under 5/minute, one line each
 *   redis_client HOST PORT test             what make test-c-redis runs (below)
 *
 * The test: 4 processes check one key 200 times each under 50/hour (Redis's clock; the run
 * takes far less than the 72 s one unit takes to return): exactly 50 admitted in total. Then
 * the server is killed (SIGKILL, its pid from INFO): every outage policy decides as it says,
 * within the call timeout (fail closed: denied, failed_closed; fail open: admitted,
 * failed_open; fallback: this process's own limiter, fallback).
 *
 * Build: cc -std=c11 redis_client.c $(pkg-config --cflags --libs cellgate hiredis) */
#define _POSIX_C_SOURCE 200809L
#include <cellgate.h>
#include <hiredis/hiredis.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One client: a cg_remote, its parameters (ARGV[1]) and a connection, made again after an
 * error. */
typedef struct {
    const char *host;
    int port;
    struct timeval timeout; /* per call, and for connecting */
    cg_remote *remote;
    uint8_t params[512];
    size_t params_len;
    redisContext *redis;
} client;

static int client_init(client *c, const char *host, int port, const char *rate, uint32_t outage,
                       const char *prefix) {
    memset(c, 0, sizeof *c);
    c->host = host;
    c->port = port;
    c->timeout.tv_sec = 0;
    c->timeout.tv_usec = 200 * 1000;
    cg_limiter_quota quotas[1];
    memset(quotas, 0, sizeof quotas);
    quotas[0].name_len = CG_NUL_TERMINATED;
    cg_status status = cg_quota_parse(rate, CG_NUL_TERMINATED, &quotas[0].quota, NULL);
    cg_remote_options remote;
    cg_remote_options_init(&remote);
    remote.outage = outage;
    remote.prefix = prefix;
    remote.prefix_len = CG_NUL_TERMINATED;
    if (status == CG_STATUS_OK) status = cg_remote_new(quotas, 1, NULL, &remote, &c->remote);
    if (status == CG_STATUS_OK)
        status = cg_remote_params(c->remote, c->params, sizeof c->params, &c->params_len);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "cg_remote: %s\n", cg_status_message((int)status));
        return -1;
    }
    return 0;
}

static void client_close(client *c) {
    if (c->redis != NULL) redisFree(c->redis);
    c->redis = NULL;
}

static void client_free(client *c) {
    client_close(c);
    cg_remote_free(c->remote);
}

/* The connection, made if there is none; NULL if Redis cannot be reached now. */
static redisContext *connection(client *c) {
    if (c->redis != NULL && c->redis->err == 0) return c->redis;
    client_close(c);
    c->redis = redisConnectWithTimeout(c->host, c->port, c->timeout);
    if (c->redis == NULL || c->redis->err != 0 ||
        redisSetTimeout(c->redis, c->timeout) != REDIS_OK) {
        client_close(c);
        return NULL;
    }
    return c->redis;
}

/* Sends the script call (EVALSHA, then EVAL on NOSCRIPT); the reply, or NULL on an error. */
static redisReply *send_call(client *c, const uint8_t *key, size_t key_len, const uint8_t *argv,
                             size_t argv_len) {
    redisContext *redis = connection(c);
    if (redis == NULL) return NULL;
    const char *args[6] = {"EVALSHA", cg_remote_script_sha1(), "1", (const char *)key,
                           (const char *)c->params, (const char *)argv};
    size_t lens[6] = {7, 40, 1, key_len, c->params_len, argv_len};
    redisReply *reply = redisCommandArgv(redis, 6, args, lens);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(reply);
        args[0] = "EVAL";
        lens[0] = 4;
        args[1] = cg_remote_script(&lens[1]);
        reply = redisCommandArgv(redis, 6, args, lens);
    }
    if (reply == NULL) client_close(c); /* an I/O error or a timeout: reconnect next time */
    return reply;
}

/* One decision for `op` on `key` at `now_ns` (CG_NOW: Redis's clock): Redis's, or the outage
 * policy's. */
static cg_status decide_at(client *c, const char *key, uint64_t now_ns, uint32_t op,
                           cg_limiter_decision *out) {
    uint8_t redis_key[256], argv[256];
    size_t redis_key_len = 0, argv_len = 0;
    cg_remote_call *call = NULL;
    cg_status status = cg_remote_encode(c->remote, (const uint8_t *)key, strlen(key), now_ns, NULL,
                                        0, op, redis_key, sizeof redis_key, &redis_key_len, argv,
                                        sizeof argv, &argv_len, &call);
    if (status != CG_STATUS_OK) return status;
    redisReply *reply = send_call(c, redis_key, redis_key_len, argv, argv_len);
    status = CG_STATUS_BAD_REPLY;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements <= 3) {
        const uint8_t *strings[3];
        size_t lens[3];
        int shaped = 1;
        for (size_t i = 0; i < reply->elements; i++) {
            shaped &= reply->element[i]->type == REDIS_REPLY_STRING;
            strings[i] = (const uint8_t *)reply->element[i]->str;
            lens[i] = reply->element[i]->len;
        }
        if (shaped) status = cg_remote_decode(c->remote, call, strings, lens, reply->elements, out);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "redis: %s\n", reply->str);
    if (status != CG_STATUS_OK) status = cg_remote_outage(c->remote, call, CG_NOW, out);
    if (reply != NULL) freeReplyObject(reply);
    cg_remote_call_free(call);
    return status;
}

static cg_status decide(client *c, const char *key, uint32_t op, cg_limiter_decision *out) {
    return decide_at(c, key, CG_NOW, op, out);
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int check_command(const char *host, int port, const char *key, int count) {
    client c;
    if (client_init(&c, host, port, "5/minute", CG_OUTAGE_FALLBACK, "cellgate-example:") != 0)
        return 1;
    for (int i = 0; i < count; i++) {
        cg_limiter_decision d;
        cg_status status = decide(&c, key, CG_OP_CHECK, &d);
        if (status != CG_STATUS_OK) {
            fprintf(stderr, "%s\n", cg_status_message((int)status));
            break;
        }
        char headers[512];
        size_t headers_len = 0;
        status = cg_remote_render_headers(c.remote, &d, CG_HEADER_STYLE_IETF, 0, headers,
                                          sizeof headers, &headers_len);
        if (status != CG_STATUS_OK) headers_len = 0;
        printf("%s %s remaining=%llu retry_after_ms=%llu\n%.*s", d.allowed ? "allowed" : "denied",
               cg_reason_name((int)d.reason), (unsigned long long)d.decision.remaining,
               (unsigned long long)(d.decision.retry_after_ns / 1000000u), (int)headers_len,
               headers);
    }
    client_free(&c);
    return 0;
}

#define WORKERS 4
#define QUOTA 50

static int failures = 0;
#define EXPECT(cond)                                                                         \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);              \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

static int test_command(const char *host, int port) {
    char prefix[64], key[] = "client-1";
    snprintf(prefix, sizeof prefix, "cellgate-ctest-%ld:", (long)getpid());
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pids[WORKERS];
    fflush(NULL);
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            client c;
            long admitted = -1;
            if (client_init(&c, host, port, "50/hour", CG_OUTAGE_FAIL_CLOSED, prefix) == 0) {
                admitted = 0;
                for (int n = 0; n < 200 && admitted >= 0; n++) {
                    cg_limiter_decision d;
                    if (decide(&c, key, CG_OP_CHECK, &d) != CG_STATUS_OK ||
                        d.reason != CG_REASON_LIMIT)
                        admitted = -1;
                    else
                        admitted += d.allowed;
                }
                client_free(&c);
            }
            _exit(write(fds[1], &admitted, sizeof admitted) == (ssize_t)sizeof admitted ? 0 : 3);
        }
    }
    close(fds[1]);
    long total = 0;
    for (int i = 0; i < WORKERS; i++) {
        long admitted = -1;
        if (read(fds[0], &admitted, sizeof admitted) != (ssize_t)sizeof admitted || admitted < 0)
            total = -1000000;
        total += admitted;
    }
    close(fds[0]);
    for (int i = 0; i < WORKERS; i++) {
        int status = 0;
        EXPECT(waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
               WEXITSTATUS(status) == 0);
    }
    printf("redis: %d processes x 200 checks of one key under %d/hour: %ld admitted\n", WORKERS,
           QUOTA, total);
    EXPECT(total == QUOTA);

    /* Decision for decision, the in-process limiter's (explicit times, 3/second). */
    client exact;
    cg_limiter *local = NULL;
    cg_limiter_quota quotas[1] = {{{0, 0, 0}, NULL, CG_NUL_TERMINATED, 0}};
    if (client_init(&exact, host, port, "3/second", CG_OUTAGE_FAIL_CLOSED, prefix) != 0 ||
        cg_quota_parse("3/second", CG_NUL_TERMINATED, &quotas[0].quota, NULL) != CG_STATUS_OK ||
        cg_limiter_new(quotas, 1, NULL, &local) != CG_STATUS_OK)
        return 1;
    int same = 0;
    for (int n = 0; n < 60; n++) {
        uint64_t at_ns = 1000u * CG_NS_PER_SECOND + (uint64_t)n * 90u * 1000000u;
        cg_limiter_decision remote_d, local_d;
        EXPECT(decide_at(&exact, "same", at_ns, CG_OP_CHECK, &remote_d) == CG_STATUS_OK);
        EXPECT(cg_limiter_check(local, (const uint8_t *)"same", 4, at_ns, NULL, 0, &local_d) ==
               CG_STATUS_OK);
        same += remote_d.allowed == local_d.allowed && remote_d.reason == local_d.reason &&
                remote_d.count == 1 && local_d.count == 1 &&
                remote_d.decision.remaining == local_d.decision.remaining &&
                remote_d.decision.limit == local_d.decision.limit &&
                remote_d.decision.retry_after_ns == local_d.decision.retry_after_ns &&
                remote_d.decision.reset_after_ns == local_d.decision.reset_after_ns;
    }
    printf("redis: %d of 60 decisions at explicit times identical to the in-process limiter's\n",
           same);
    EXPECT(same == 60);
    cg_limiter_free(local);
    client_free(&exact);

    /* One client per outage policy, each first decided by Redis. */
    client closed, open, fallback;
    if (client_init(&closed, host, port, "50/hour", CG_OUTAGE_FAIL_CLOSED, prefix) != 0 ||
        client_init(&open, host, port, "50/hour", CG_OUTAGE_FAIL_OPEN, prefix) != 0 ||
        client_init(&fallback, host, port, "2/hour", CG_OUTAGE_FALLBACK, prefix) != 0)
        return 1;
    cg_limiter_decision d;
    EXPECT(decide(&closed, key, CG_OP_CHECK, &d) == CG_STATUS_OK && !d.allowed &&
           d.reason == CG_REASON_LIMIT);
    EXPECT(decide(&fallback, "other", CG_OP_CHECK, &d) == CG_STATUS_OK && d.allowed &&
           d.reason == CG_REASON_LIMIT);
    /* Kill the server (its pid from INFO server). */
    redisContext *redis = connection(&closed);
    redisReply *info = redis ? redisCommand(redis, "INFO server") : NULL;
    const char *field = info && info->type == REDIS_REPLY_STRING ? strstr(info->str, "process_id:")
                                                                : NULL;
    long server_pid = field ? strtol(field + strlen("process_id:"), NULL, 10) : 0;
    if (info) freeReplyObject(info);
    EXPECT(server_pid > 0);
    if (server_pid > 0) {
        EXPECT(kill((pid_t)server_pid, SIGKILL) == 0);
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    uint64_t start = now_ms();
    EXPECT(decide(&closed, key, CG_OP_CHECK, &d) == CG_STATUS_OK && !d.allowed &&
           d.reason == CG_REASON_FAILED_CLOSED && d.decision.retry_after_ns == CG_NS_PER_SECOND);
    EXPECT(decide(&open, key, CG_OP_CHECK, &d) == CG_STATUS_OK && d.allowed &&
           d.reason == CG_REASON_FAILED_OPEN);
    /* The fallback limits on its own: 2/hour here, whatever Redis held. */
    int admitted = 0;
    for (int n = 0; n < 5; n++) {
        EXPECT(decide(&fallback, "other", CG_OP_CHECK, &d) == CG_STATUS_OK &&
               d.reason == CG_REASON_FALLBACK);
        admitted += d.allowed;
    }
    EXPECT(admitted == 2);
    uint64_t took_ms = now_ms() - start;
    printf("redis: server killed; fail_closed denied, fail_open admitted, fallback admitted %d "
           "of 5 under 2/hour, 7 decisions in %llu ms\n",
           admitted, (unsigned long long)took_ms);
    EXPECT(took_ms < 7 * 1000); /* nothing hangs: each call within its timeout */
    client_free(&closed);
    client_free(&open);
    client_free(&fallback);
    if (failures != 0) {
        fprintf(stderr, "FAILED: %d expectations\n", failures);
        return 1;
    }
    printf("redis: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[3], "check") == 0)
        return check_command(argv[1], atoi(argv[2]), argv[4], argc > 5 ? atoi(argv[5]) : 7);
    if (argc == 4 && strcmp(argv[3], "test") == 0) return test_command(argv[1], atoi(argv[2]));
    fprintf(stderr, "usage: %s HOST PORT check KEY [N] | %s HOST PORT test\n", argv[0], argv[0]);
    return 2;
}
