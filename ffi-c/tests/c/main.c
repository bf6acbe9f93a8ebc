/* The C test runner: `cellgate_tests VECTORS.txt HEADERS.txt [THREADS [ITERATIONS]]`. Exits 0
 * only when every check passed. VECTORS.txt is written by ffi-c/tests/vectors_to_lines.py,
 * HEADERS.txt by ffi-c/tests/headers_to_lines.py. */
#include "check.h"

#include <stdlib.h>
#include <string.h>

unsigned long check_failures = 0;
unsigned long check_count = 0;

void check_failed(const char *file, int line, const char *what) {
    check_failures++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

void check_status_failed(const char *file, int line, const char *expr, cg_status got,
                         cg_status want) {
    check_failures++;
    fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", file, line, expr,
            (int)got, cg_status_message((int)got), (int)want, cg_status_message((int)want));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VECTORS.txt HEADERS.txt [THREADS [ITERATIONS]]\n", argv[0]);
        return 2;
    }
    unsigned threads = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 4;
    unsigned long iterations = argc > 4 ? strtoul(argv[4], NULL, 10) : 20000;

    unsigned long before = check_count;
    test_api();
    printf("api: %lu checks\n", check_count - before);
    before = check_count;
    test_vectors(argv[1]);
    printf("vectors: %lu checks\n", check_count - before);
    before = check_count;
    test_limiter();
    printf("limiter: %lu checks\n", check_count - before);
    before = check_count;
    test_header_vectors(argv[2]);
    printf("header vectors: %lu checks\n", check_count - before);
    before = check_count;
    test_threads(threads, iterations);
    printf("threads: %lu checks (%u threads x %lu checks)\n", check_count - before, threads,
           iterations);
    before = check_count;
    test_shared();
    printf("shared: %lu checks\n", check_count - before);

    if (check_failures != 0) {
        fprintf(stderr, "FAILED: %lu of %lu checks\n", check_failures, check_count);
        return 1;
    }
    printf("ok: %lu checks passed\n", check_count);
    return 0;
}
