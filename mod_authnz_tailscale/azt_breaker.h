/* mod_authnz_tailscale: the circuit breaker for one tailscaled socket, per
 * process.
 *
 * Closed: every lookup asks tailscaled.  Once a lookup could not get an
 * answer (down, timed out, garbage, error status), the breaker opens: lookups
 * fail at once with that answer, while a single probe at a time (at most one
 * started per AZT_BREAKER_PROBE_GAP) asks whether tailscaled is back; a probe
 * stuck for AZT_BREAKER_STUCK lets one more start (at most
 * AZT_BREAKER_MAX_PROBES at once), so a hanging daemon that recovers is
 * noticed within that time.  A probe's success closes the breaker; its
 * failure keeps it open.
 * Thread-safe; every field is read and written under its mutex.
 */
#ifndef AZT_BREAKER_H
#define AZT_BREAKER_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_result.h"

typedef struct azt_breaker azt_breaker;

typedef enum {
    AZT_BREAKER_ASK,      /* closed: ask tailscaled */
    AZT_BREAKER_PROBE,    /* open, and this caller probes: ask, then report */
    AZT_BREAKER_FAIL      /* open: answer *code / text at once */
} azt_breaker_verdict;

/* Create a closed breaker, living as long as p. */
azt_breaker *azt_breaker_create(apr_pool_t *p);

/* May the caller ask tailscaled at time now?  For AZT_BREAKER_FAIL, *code
 * and text (size bytes) get the answer that opened the breaker. */
azt_breaker_verdict azt_breaker_enter(azt_breaker *b, apr_time_t now, tsl_code *code,
                                      char *text, apr_size_t size);

/* Report what an AZT_BREAKER_ASK or _PROBE lookup started at started got:
 * available (an answer, positive or "not a peer") closes the breaker,
 * otherwise code and text open it (or keep it open) - unless tailscaled
 * answered another lookup after this one started (a lookup stuck on a
 * connection the daemon accepted while it hung says nothing of now). */
void azt_breaker_report(azt_breaker *b, azt_breaker_verdict v, int available,
                        tsl_code code, const char *text, apr_time_t started,
                        apr_time_t now);

/* True while the breaker is open (tailscaled did not answer lately). */
int azt_breaker_is_open(azt_breaker *b);

#endif
