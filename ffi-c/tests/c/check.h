/* Minimal test harness for the C tests of libcellgate: checks that count failures and keep
 * going, so one run reports every broken expectation. */
#ifndef CELLGATE_TEST_CHECK_H
#define CELLGATE_TEST_CHECK_H

#include <cellgate.h>
#include <stdio.h>

extern unsigned long check_failures;
extern unsigned long check_count;

void check_failed(const char *file, int line, const char *what);
void check_status_failed(const char *file, int line, const char *expr, cg_status got,
                         cg_status want);

/* Checks a condition. */
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        check_count++;                                                                       \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond);                                \
    } while (0)

/* Checks that an expression returns the wanted status. */
#define CHECK_STATUS(expr, want)                                                             \
    do {                                                                                     \
        cg_status check_got_ = (expr);                                                       \
        check_count++;                                                                       \
        if (check_got_ != (want)) check_status_failed(__FILE__, __LINE__, #expr, check_got_, \
                                                      (want));                               \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, CG_STATUS_OK)

/* The test groups (each in its own file). */
void test_api(void);
void test_vectors(const char *path);
void test_limiter(void);
void test_header_vectors(const char *path);
void test_threads(unsigned threads, unsigned long iterations);
void test_shared(void);

#endif
