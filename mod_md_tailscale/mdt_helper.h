/* mod_md_tailscale: the helper process.
 *
 * tailscaled gives certificates only to root, its operator or
 * TS_PERMIT_CERT_UID; httpd's children run as www-data and must not hold
 * the node's key.  mod_watchdog has no parent-side watchdog on forked MPMs,
 * and the parent's main loop must not block on a slow issuance, so the
 * parent forks this helper in post_config.  It keeps the parent's user,
 * closes the listeners, dies with the parent (PR_SET_PDEATHSIG and a
 * getppid() check), checks every domain on its schedule (mdt_driver.c),
 * writes status files, runs events, and asks the parent for a graceful
 * restart (SIGUSR1) when a better certificate was stored.  The parent reaps
 * it as an "other child", stops it when its configuration pool goes (restart
 * or stop), and starts it again from the monitor hook if it died.  Stopping
 * closes a pipe the helper watches before it signals: httpd -X may have
 * changed to its User by then and cannot signal the root-owned helper.
 */
#ifndef MDT_HELPER_H
#define MDT_HELPER_H

#include <httpd.h>
#include "mdt_state.h"

/* Fork the helper for this generation (parent, post_config). */
apr_status_t mdt_helper_start(apr_pool_t *pconf, server_rec *s, mdt_runtime *rt);

/* Parent monitor hook: restart a helper that died (not too often). */
void mdt_helper_monitor(void);

/* child_init: a request-serving child drops its copy of the helper's stop
 * pipe, so that closing the parent's end reaches the helper. */
void mdt_helper_child_init(void);

#endif
