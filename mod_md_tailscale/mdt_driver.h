/* mod_md_tailscale: one check of one domain against tailscaled, and when
 * the next one is due.
 *
 * Schedule: with the active certificate valid from B to A (lifetime L) and a
 * renew window W (MDRenewWindow, default 33% of L), renewal starts at A - W.
 * Before that tailscaled is polled every MDTailscaleCheckInterval (which also
 * picks up tailscaled's own renewal at 2/3 of the lifetime); inside the
 * window the request carries min_validity = W so tailscaled renews at once.
 * After a failure the next attempt waits MDTailscaleRetryDelay, doubling up
 * to its maximum, and never less than a 429's Retry-After.
 */
#ifndef MDT_DRIVER_H
#define MDT_DRIVER_H

#include <httpd.h>
#include "tsl_client.h"
#include "mdt_state.h"

typedef enum {
    MDT_CHECK_SAME = 0,     /* tailscaled has the certificate we have */
    MDT_CHECK_NEW,          /* a better certificate was stored and is now active */
    MDT_CHECK_FAILED,       /* see st->err_* */
    MDT_CHECK_POSTPONED,    /* MDMessageCmd renewing vetoed the renewal */
    MDT_CHECK_WAITED        /* startup only: no answer within the wait; nothing recorded */
} mdt_check_outcome;

/* Ask tailscaled for st's domain (timeout: whole request), validate, store
 * a better certificate, update st (errors, schedule) and log. ptemp is for
 * this call only. */
mdt_check_outcome mdt_driver_check(server_rec *s, const mdt_runtime *rt,
                                   mdt_state *st, tsl_client *client,
                                   apr_pool_t *ptemp, apr_interval_time_t timeout);

/* mdt_driver_check() at the parent's first start, bounded by wait
 * (MDTailscaleStartupWait): running out of it is MDT_CHECK_WAITED, neither
 * logged nor recorded as a failure (TS02021 says what happens next). */
mdt_check_outcome mdt_driver_check_startup(server_rec *s, const mdt_runtime *rt,
                                           mdt_state *st, tsl_client *client,
                                           apr_pool_t *ptemp, apr_interval_time_t wait);

/* Ask tailscaled's status whether st's request name is one of its
 * CertDomains; records the list and backend state in st and logs when it
 * is not. Returns 0 when tailscaled said no, 1 otherwise (including when
 * the status could not be read). */
int mdt_driver_probe(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                     tsl_client *client, apr_pool_t *ptemp);

/* Record the store's problem (NULL: none) in st and log when it changes;
 * 1 when it changed. */
int mdt_driver_store_check(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                           const char *problem);

/* Log a failure recorded in st (log ID, domain, socket, text, hint). */
void mdt_driver_log_error(server_rec *s, const mdt_state *st, apr_pool_t *p,
                          const char *what, apr_interval_time_t retry_in);

/* The renew window in effect for a certificate of the given lifetime
 * (clamped to half the lifetime so a large window cannot renew forever). */
apr_interval_time_t mdt_driver_window(const mdt_runtime *rt, const mdt_state *st,
                                      apr_time_t not_before, apr_time_t not_after);

#endif
