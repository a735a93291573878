/* mod_md_tailscale: status for people and monitoring.
 *
 * "SetHandler md-tailscale-status" answers JSON: every managed domain with
 * name, socket, state, certificate dates and fingerprint, last and next
 * check, last error (tailscaled's text, log ID, hint) and counters;
 * /<location>/<domain> gives one domain.  mod_status's server-status shows
 * the same as a table (or "key: value" lines with ?auto).  Both read the
 * status files the helper process writes, so children need no privileges.
 */
#ifndef MDT_STATUS_H
#define MDT_STATUS_H

#include <httpd.h>

int mdt_status_handler(request_rec *r);
int mdt_status_hook(request_rec *r, int flags);

#endif
