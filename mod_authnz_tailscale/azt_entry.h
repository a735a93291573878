/* mod_authnz_tailscale: one entry of the shared identity cache as bytes.
 *
 * What one process stores for the others (azt_shared.c): a whois answer
 * (an identity or "not a tailnet peer") with the time tailscaled gave it,
 * or a pending marker (a process is asking tailscaled right now).  The
 * bytes come from shared memory any process of the server (or, with a
 * networked provider, any host) may have written: decoding checks the
 * format's magic and version, that the entry names the key it was read
 * for, every length, and parses the identity with the whois parser; a
 * short, foreign, wrong-version or corrupt entry is never an identity.
 * No httpd headers (unit-tested and fuzzed alone).
 */
#ifndef AZT_ENTRY_H
#define AZT_ENTRY_H

#include <apr_pools.h>
#include "azt_outcome.h"
#include <apr_time.h>
#include "tsl_identity.h"
#include "tsl_result.h"

#define AZT_ENTRY_VERSION 1

/* The largest entry written; a larger answer stays in its process. */
#define AZT_ENTRY_MAX (32 * 1024)

typedef enum {
    AZT_ENTRY_BAD = 0,      /* unusable: a miss */
    AZT_ENTRY_ANSWER,       /* a definite whois answer */
    AZT_ENTRY_PENDING       /* someone is asking tailscaled */
} azt_entry_kind;

/* The bytes of an answer for key (code AZT_IDENTIFIED with id, or AZT_NOT_A_PEER)
 * given at fetched, in p; NULL when the answer cannot be carried faithfully
 * (it then stays in its process). */
const unsigned char *azt_entry_encode_answer(apr_pool_t *p, const char *key, azt_outcome code,
                                             const tsl_identity *id, apr_time_t fetched,
                                             apr_size_t *len);

/* The bytes of a pending marker for key, valid until until, set by pid. */
const unsigned char *azt_entry_encode_pending(apr_pool_t *p, const char *key,
                                              apr_time_t until, apr_uint32_t pid,
                                              apr_size_t *len);

/* Read len bytes stored under key.  ANSWER: *code, *id (AZT_IDENTIFIED; allocated
 * from p) and *stamp (when tailscaled answered).  PENDING: *stamp (until
 * when to wait) and *pid.  BAD: nothing usable, *why says what was wrong. */
azt_entry_kind azt_entry_decode(apr_pool_t *p, const char *key, const unsigned char *data,
                                apr_size_t len, azt_outcome *code, tsl_identity **id,
                                apr_time_t *stamp, apr_uint32_t *pid, const char **why);

#endif
