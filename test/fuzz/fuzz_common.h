/* Shared helpers for the libFuzzer targets in test/fuzz/.
 *
 * Every target links fuzz_common.c, which replaces apr_palloc() with one
 * malloc() per allocation (freed when the iteration's pool is destroyed), so
 * AddressSanitizer sees an overrun of any pool buffer instead of it landing
 * silently in the rest of an 8 KiB pool block.
 */
#ifndef TSL_FUZZ_COMMON_H
#define TSL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>

/* Abort (a crash libFuzzer records) with a message when cond is false. */
#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                  \
        }                                                                     \
    } while (0)

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* One-time setup (apr_initialize); safe to call repeatedly. */
void fz_init(void);

/* A fresh pool for one iteration; fz_end() destroys it and frees every
 * allocation made from it (and its sub-pools). */
apr_pool_t *fz_begin(void);
void fz_end(apr_pool_t *p);

/* data as a NUL-terminated string in its own malloc()ed buffer of exactly
 * size + 1 bytes (embedded NULs shorten the string); free() it. */
char *fz_cstr(const uint8_t *data, size_t size);

/* data as a buffer of exactly size bytes with no terminator (so reading one
 * past the end is caught); NULL when size is 0; free() it. */
char *fz_buf(const uint8_t *data, size_t size);

/* True if s is printable ASCII (0x20..0x7e) or tab throughout. */
int fz_printable(const char *s);

#endif
