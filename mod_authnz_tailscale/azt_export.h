/* mod_authnz_tailscale: the identity for applications - request environment
 * variables (CGI, SSI, logs, <If>, mod_rewrite) and, optionally, tailscale
 * serve's request headers for proxied backends - and removal of
 * client-sent copies of those headers. */
#ifndef AZT_EXPORT_H
#define AZT_EXPORT_H

#include <httpd.h>

/* post_read_request hook: drop every client-sent Tailscale-* header. */
int azt_export_strip(request_rec *r);

/* fixups hook: set TAILSCALE_* variables and, if configured, headers. */
int azt_export_fixups(request_rec *r);

#endif
