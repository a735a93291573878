/* mod_authnz_tailscale: the server-status section. */
#ifndef AZT_STATUS_H
#define AZT_STATUS_H

#include <httpd.h>

/* mod_status status_hook: lookups, cache hits, whois calls, errors, last error. */
int azt_status_hook(request_rec *r, int flags);

#endif
