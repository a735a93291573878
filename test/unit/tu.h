/* A tiny TAP-style assertion framework for the C unit tests.
 * TU_CHECK(cond, name) prints "ok N - name" or "not ok N - name";
 * tu_done() prints "N passed, N failed" and returns the exit status. */
#ifndef TU_H
#define TU_H

#include <stdio.h>
#include <string.h>

static int tu_n, tu_failed;

static int tu_check(int cond, const char *name, const char *file, int line)
{
    tu_n++;
    if (cond) {
        printf("ok %d - %s\n", tu_n, name);
    }
    else {
        tu_failed++;
        printf("not ok %d - %s\n#   at %s:%d\n", tu_n, name, file, line);
    }
    fflush(stdout);
    return cond;
}

static int tu_check_str(const char *got, const char *want, const char *name,
                        const char *file, int line)
{
    int ok = (got == NULL && want == NULL)
             || (got != NULL && want != NULL && strcmp(got, want) == 0);
    if (!tu_check(ok, name, file, line)) {
        printf("#   got:  %s%s%s\n#   want: %s%s%s\n",
               got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
               want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
    }
    return ok;
}

static int tu_done(void)
{
    printf("1..%d\n%d passed, %d failed\n", tu_n, tu_n - tu_failed, tu_failed);
    return tu_failed ? 1 : 0;
}

#define TU_CHECK(cond, name) tu_check(!!(cond), (name), __FILE__, __LINE__)
#define TU_STR(got, want, name) tu_check_str((got), (want), (name), __FILE__, __LINE__)

#endif
