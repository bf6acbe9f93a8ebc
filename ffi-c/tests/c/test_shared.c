/* Host-wide limiters (cg_limiter_open_shared): processes forked from this one share one table
 * in a file under /dev/shm (or $TMPDIR where there is none).
 *
 * - Exactness: 4 processes hammer one key of one mapping at a frozen time under 50/hour:
 *   exactly 50 admitted in total, not 4 x 50.
 * - Refusals, each its own status and no crash: another configuration, a garbage file, a
 *   truncated table, an empty file, a directory, a file granting others access.
 * - Crash safety: a process flooding new keys is SIGKILLed mid-flood; the others, before and
 *   after, still admit exactly the quota on their key, and new keys are still placed. */
#define _DEFAULT_SOURCE
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHARED_WORKERS 4
#define SHARED_QUOTA 50
/* Every process passes this time: time stands still, nothing refills. */
#define FROZEN_NS (1000u * CG_NS_PER_SECOND)

static char shared_dir[64];

static void path_for(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/cellgate-ctest-%ld-%s", shared_dir, (long)getpid(), name);
}

static cg_limiter_quota per_hour(uint64_t count) {
    cg_limiter_quota quota = {{count, 3600u * CG_NS_PER_SECOND, count}, NULL, CG_NUL_TERMINATED,
                              0};
    return quota;
}

static cg_status open_at(const char *path, uint64_t per_hour_count, size_t max_keys,
                         cg_limiter **out) {
    cg_limiter_quota quotas[1] = {per_hour(per_hour_count)};
    cg_limiter_options options;
    cg_limiter_options_init(&options);
    options.max_keys = max_keys;
    return cg_limiter_open_shared(path, quotas, 1, &options, NULL, out);
}

/* Checks `key` `checks` times at the frozen time; the number admitted. -1 on a failed call. */
static long hammer(const cg_limiter *limiter, const char *key, int checks) {
    long admitted = 0;
    for (int i = 0; i < checks; i++) {
        cg_limiter_decision d;
        if (cg_limiter_check(limiter, (const uint8_t *)key, strlen(key), FROZEN_NS, NULL, 0, &d) !=
            CG_STATUS_OK)
            return -1;
        admitted += d.allowed;
    }
    return admitted;
}

/* A child: attaches to `path` itself, hammers `key`, writes what it admitted to `fd`. Exits
 * with _exit, so that it runs none of the parent's exit handlers. */
static void worker(const char *path, const char *key, int checks, int fd) {
    cg_limiter *limiter = NULL;
    long admitted = -1;
    if (open_at(path, SHARED_QUOTA, 1000, &limiter) == CG_STATUS_OK)
        admitted = hammer(limiter, key, checks);
    cg_limiter_free(limiter);
    if (write(fd, &admitted, sizeof admitted) != (ssize_t)sizeof admitted) _exit(3);
    _exit(0);
}

/* Reads one count from each of `n` children and reaps them; the sum, -1 if one failed. */
static long collect(int fd, const pid_t *pids, int n) {
    long total = 0;
    for (int i = 0; i < n; i++) {
        long admitted = -1;
        if (read(fd, &admitted, sizeof admitted) != (ssize_t)sizeof admitted || admitted < 0)
            total = -1;
        else if (total >= 0)
            total += admitted;
    }
    for (int i = 0; i < n; i++) {
        int status = 0;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return total;
}

static void exact_across_processes(void) {
    char path[128];
    path_for(path, sizeof path, "exact");
    cg_shared_remove(path, NULL);
    cg_limiter *limiter = NULL;
    CHECK_OK(open_at(path, SHARED_QUOTA, 1000, &limiter));
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pids[SHARED_WORKERS];
    fflush(NULL);
    for (int i = 0; i < SHARED_WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            worker(path, "client-1", 200, fds[1]);
        }
        CHECK(pids[i] > 0);
    }
    close(fds[1]);
    long total = collect(fds[0], pids, SHARED_WORKERS);
    close(fds[0]);
    printf("shared: %d processes x 200 checks of one key under %d/hour: %ld admitted\n",
           SHARED_WORKERS, SHARED_QUOTA, total);
    CHECK(total == SHARED_QUOTA);
    /* This process sees the same exhausted bucket, and an untouched key is fresh. */
    CHECK(hammer(limiter, "client-1", 3) == 0);
    CHECK(hammer(limiter, "client-2", 1) == 1);
    cg_limiter_free(limiter);
    bool removed = false;
    CHECK_OK(cg_shared_remove(path, &removed));
    CHECK(removed);
    CHECK_OK(cg_shared_remove(path, &removed));
    CHECK(!removed);
}

static void write_file(const char *path, const void *bytes, size_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(write(fd, bytes, len) == (ssize_t)len);
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

static void refusals(void) {
    char path[128];
    path_for(path, sizeof path, "refusals");
    cg_shared_remove(path, NULL);
    cg_limiter *limiter = NULL, *other = NULL;
    CHECK_OK(open_at(path, SHARED_QUOTA, 1000, &limiter));
    /* Another rate, another max_keys: never reinterpreted, never resized. */
    CHECK_STATUS(open_at(path, SHARED_QUOTA + 1, 1000, &other), CG_STATUS_SHARED_CONFIG_MISMATCH);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 2000, &other), CG_STATUS_SHARED_CONFIG_MISMATCH);
    cg_limiter_quota two[2] = {per_hour(SHARED_QUOTA), per_hour(SHARED_QUOTA * 24)};
    two[1].quota.period_ns *= 24;
    cg_limiter_options options;
    cg_limiter_options_init(&options);
    options.max_keys = 1000;
    CHECK_STATUS(cg_limiter_open_shared(path, two, 2, &options, NULL, &other),
                 CG_STATUS_SHARED_CONFIG_MISMATCH);
    CHECK(other == NULL);
    /* Configuration errors are cg_limiter_new's, before the file is touched. */
    CHECK_STATUS(cg_limiter_open_shared(path, two, 0, &options, NULL, &other), CG_STATUS_NO_QUOTAS);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 0, &other), CG_STATUS_INVALID_MAX_KEYS);
    CHECK_STATUS(cg_limiter_open_shared(NULL, two, 1, &options, NULL, &other),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_open_shared(path, two, 1, &options, NULL, NULL),
                 CG_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(cg_limiter_open_shared("", two, 1, &options, NULL, &other),
                 CG_STATUS_INVALID_ARGUMENT);
    cg_shared_options shared;
    CHECK_STATUS(cg_shared_options_init(NULL), CG_STATUS_NULL_ARGUMENT);
    CHECK_OK(cg_shared_options_init(&shared));
    CHECK(shared.access == CG_SHARED_ACCESS_OWNER && !shared.allow_other_owner);
    shared.access = 9;
    CHECK_STATUS(cg_limiter_open_shared(path, two, 1, &options, &shared, &other),
                 CG_STATUS_INVALID_ARGUMENT);
    /* The same configuration attaches, with the table's state. */
    CHECK(hammer(limiter, "k", SHARED_QUOTA + 5) == SHARED_QUOTA);
    CHECK_OK(open_at(path, SHARED_QUOTA, 1000, &other));
    CHECK(hammer(other, "k", 1) == 0);
    cg_limiter_free(other);
    other = NULL;
    cg_limiter_free(limiter);

    /* A table cut short (as by a truncate of the file): refused, no crash. */
    CHECK(truncate(path, 700) == 0);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_BAD_FILE);
    CHECK(truncate(path, 100) == 0);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_BAD_FILE);
    CHECK(truncate(path, 0) == 0);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_BAD_FILE);
    /* Garbage: bytes that are no table, long enough for a header. */
    unsigned char garbage[4096];
    uint64_t state = 7;
    for (size_t i = 0; i < sizeof garbage; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        garbage[i] = (unsigned char)(state >> 56);
    }
    write_file(path, garbage, sizeof garbage, 0600);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_BAD_FILE);
    /* A file others may read or write: whoever can write it can reset anyone's limit. */
    write_file(path, garbage, sizeof garbage, 0644);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_PERMISSION);
    CHECK_OK(cg_shared_remove(path, NULL));
    /* A directory, and a path in a directory that does not exist. */
    CHECK(mkdir(path, 0700) == 0);
    CHECK_STATUS(open_at(path, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_BAD_FILE);
    CHECK(rmdir(path) == 0);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such-dir/table", path);
    CHECK_STATUS(open_at(missing, SHARED_QUOTA, 1000, &other), CG_STATUS_SHARED_IO);
    CHECK(other == NULL);
    CHECK_STATUS(cg_shared_remove(NULL, NULL), CG_STATUS_NULL_ARGUMENT);
    for (int code = CG_STATUS_SHARED_UNSUPPORTED; code <= CG_STATUS_SHARED_IO; code++)
        CHECK(strstr(cg_status_message(code), "unknown") == NULL);
}

/* A child flooding new keys (inserts: claims on slots) until it is killed. */
static void flooder(const char *path, int fd) {
    cg_limiter *limiter = NULL;
    if (open_at(path, SHARED_QUOTA, 200000, &limiter) != CG_STATUS_OK) _exit(3);
    char key[32];
    for (unsigned long i = 0;; i++) {
        snprintf(key, sizeof key, "flood-%lu", i);
        if (hammer(limiter, key, 1) < 0) _exit(4);
        if (i == 1000) {
            char ready = 1;
            if (write(fd, &ready, 1) != 1) _exit(5);
        }
    }
}

static void sigkill_mid_flood(void) {
    char path[128];
    path_for(path, sizeof path, "sigkill");
    cg_shared_remove(path, NULL);
    cg_limiter *limiter = NULL;
    CHECK_OK(open_at(path, SHARED_QUOTA, 200000, &limiter));
    /* Before: 10 admitted by this process. */
    CHECK(hammer(limiter, "hot", 10) == 10);
    for (int round = 0; round < 3; round++) {
        int ready[2];
        CHECK(pipe(ready) == 0);
        fflush(NULL);
        pid_t victim = fork();
        if (victim == 0) {
            close(ready[0]);
            flooder(path, ready[1]);
        }
        CHECK(victim > 0);
        close(ready[1]);
        char byte = 0;
        CHECK(read(ready[0], &byte, 1) == 1);
        close(ready[0]);
        struct timespec pause = {0, 1000000L * (1 + round * 3)};
        nanosleep(&pause, NULL);
        CHECK(kill(victim, SIGKILL) == 0);
        int status = 0;
        CHECK(waitpid(victim, &status, 0) == victim);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }
    /* After: the others on the hot key admit exactly the rest of the quota. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pids[SHARED_WORKERS - 1];
    fflush(NULL);
    for (int i = 0; i < SHARED_WORKERS - 1; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            cg_limiter *mine = NULL;
            long admitted = -1;
            if (open_at(path, SHARED_QUOTA, 200000, &mine) == CG_STATUS_OK) {
                admitted = hammer(mine, "hot", 100);
                /* New keys are still placed beside whatever the victims left. */
                char key[32];
                for (int k = 0; k < 50 && admitted >= 0; k++) {
                    snprintf(key, sizeof key, "after-%d-%d", i, k);
                    if (hammer(mine, key, 1) != 1) admitted = -1;
                }
            }
            cg_limiter_free(mine);
            if (write(fds[1], &admitted, sizeof admitted) != (ssize_t)sizeof admitted) _exit(3);
            _exit(0);
        }
        CHECK(pids[i] > 0);
    }
    close(fds[1]);
    long total = collect(fds[0], pids, SHARED_WORKERS - 1);
    close(fds[0]);
    printf("shared: 3 floods SIGKILLed; then 3 processes admitted %ld of the hot key's last %d\n",
           total, SHARED_QUOTA - 10);
    CHECK(total == SHARED_QUOTA - 10);
    CHECK(hammer(limiter, "hot", 1) == 0);
    CHECK(hammer(limiter, "fresh-after-kill", 1) == 1);
    cg_limiter_free(limiter);
    CHECK_OK(cg_shared_remove(path, NULL));
}

void test_shared(void) {
    struct stat st;
    const char *tmp = getenv("TMPDIR");
    snprintf(shared_dir, sizeof shared_dir, "%s",
             stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : (tmp ? tmp : "/tmp"));
    exact_across_processes();
    refusals();
    sigkill_mid_flood();
}
