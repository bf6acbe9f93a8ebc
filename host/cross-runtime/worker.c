/* A C process of the cross-runtime test (driver.py): `worker PATH ATTEMPTS PAUSE_MS` opens the shared
 * table at PATH for a 50/hour limiter (the configuration the Python and Node workers use),
 * waits for a line on stdin, checks ATTEMPTS times,
 * PAUSE_MS apart, on the key "hot-key" at the host's clock
 * and prints {"admitted": N}. Exit status 2 on any refusal, with its message on stderr. */
#define _POSIX_C_SOURCE 199309L
#include <cellgate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: worker PATH ATTEMPTS PAUSE_MS\n");
        return 2;
    }
    cg_limiter_quota quota = {.name = NULL, .dimension = 0};
    enum cg_status status = cg_quota_parse("50/hour", CG_NUL_TERMINATED, &quota.quota, NULL);
    cg_limiter *limiter = NULL;
    if (status == CG_STATUS_OK) status = cg_limiter_open_shared(argv[1], &quota, 1, NULL, NULL, &limiter);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "worker.c: %s\n", cg_status_message(status));
        return 2;
    }
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) return 2;
    long attempts = strtol(argv[2], NULL, 10);
    long pause_ms = strtol(argv[3], NULL, 10);
    struct timespec pause = {.tv_sec = pause_ms / 1000, .tv_nsec = (pause_ms % 1000) * 1000000L};
    long admitted = 0;
    for (long i = 0; i < attempts; i++) {
        cg_limiter_decision decision;
        status = cg_limiter_check(limiter, (const uint8_t *)"hot-key", strlen("hot-key"), CG_NOW, NULL, 0, &decision);
        if (status != CG_STATUS_OK) {
            fprintf(stderr, "worker.c: %s\n", cg_status_message(status));
            return 2;
        }
        if (decision.allowed) admitted++;
        nanosleep(&pause, NULL);
    }
    printf("{\"admitted\": %ld}\n", admitted);
    cg_limiter_free(limiter);
    return 0;
}
