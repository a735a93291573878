/* Shared helpers for the fuzz targets; see fuzz_common.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>
#include "fuzz_common.h"

static int initialized;
static apr_pool_t *iteration_pool;   /* the pool of the running iteration */
static void **blocks;                /* allocations made from it */
static size_t n_blocks, cap_blocks;
static void **kept;                  /* allocations from longer-lived pools */
static size_t n_kept, cap_kept;

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n%s:%d: invariant violated: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static int in_iteration(apr_pool_t *p)
{
    for (; p && iteration_pool; p = apr_pool_parent_get(p)) {
        if (p == iteration_pool) {
            return 1;
        }
    }
    return 0;
}

static void remember(void ***list, size_t *n, size_t *cap, void *m)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        *list = realloc(*list, *cap * sizeof(**list));
        if (!*list) {
            abort();
        }
    }
    (*list)[(*n)++] = m;
}

/* Interposes libapr's apr_palloc (libapr itself calls it through the PLT,
 * so apr_pstrdup & co. come here too).  Allocations from pools outside the
 * running iteration (APR's global pool) are never freed, and kept in a list
 * so LeakSanitizer sees them as reachable: APR refers to them only from
 * pool memory it may have mmap()ed. */
void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    void *m = malloc(size ? size : 1);

    if (!m) {
        abort();
    }
    if (in_iteration(p)) {
        remember(&blocks, &n_blocks, &cap_blocks, m);
    }
    else {
        remember(&kept, &n_kept, &cap_kept, m);
    }
    return m;
}

void fz_init(void)
{
    if (!initialized) {
        apr_initialize();
        initialized = 1;
    }
}

apr_pool_t *fz_begin(void)
{
    apr_pool_t *p = NULL;

    fz_init();
    if (apr_pool_create(&p, NULL) != APR_SUCCESS || !p) {
        abort();
    }
    iteration_pool = p;
    return p;
}

void fz_end(apr_pool_t *p)
{
    size_t i;

    apr_pool_destroy(p);   /* runs cleanups, which live in our blocks */
    iteration_pool = NULL;
    for (i = 0; i < n_blocks; i++) {
        free(blocks[i]);
    }
    n_blocks = 0;
}

char *fz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s) {
        abort();
    }
    if (size) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

char *fz_buf(const uint8_t *data, size_t size)
{
    char *s;

    if (size == 0) {
        return NULL;
    }
    s = malloc(size);
    if (!s) {
        abort();
    }
    memcpy(s, data, size);
    return s;
}

int fz_printable(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    for (; *u; u++) {
        if ((*u < 0x20 || *u > 0x7e) && *u != '\t') {
            return 0;
        }
    }
    return 1;
}
