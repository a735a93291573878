/* mod_md_tailscale: MDMessageCmd / MDNotifyCmd, as in mod_md.
 *
 *   MDMessageCmd prog [args]  ->  prog args <event> <domain>
 *       event: renewing, renewed, installed, expiring, errored
 *   MDNotifyCmd prog [args]   ->  prog args <domain>   (when a certificate
 *                                                        was obtained)
 * Run by the helper process and waited for.  As in mod_md, a command runs
 * as the server's User/Group, except for "installed" (root, as mod_md's
 * post_config sends it); it inherits httpd's environment (as mod_md's
 * commands do) plus MD_STORE (the store directory), MD_DOMAIN and MD_EVENT;
 * stdin is /dev/null and every descriptor above 2 is closed.  A non-zero
 * exit is logged.
 */
#ifndef MDT_EVENTS_H
#define MDT_EVENTS_H

#include <httpd.h>
#include "mdt_state.h"

/* Run MDMessageCmd for event (and MDNotifyCmd for "renewed").  renewing,
 * renewed and installed follow mod_md's rates (hourly, daily, daily per
 * domain): inside that time since the last successful run nothing is run.
 * Returns 0 if every command ran and exited 0 (or none ran). */
int mdt_event_fire(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                   const char *event, apr_pool_t *ptemp);

#endif
