/* mod_authnz_tailscale: the client a trusted proxy forwarded.
 *
 * Exactly what mod_remoteip decided for the one hop from the trusted peer:
 * the PROXY preamble's source when mod_remoteip reads PROXY protocol on the
 * connection, else the single (last) entry that peer appended to the
 * vhost's RemoteIPHeader, as it arrived.  No other header, and nothing
 * mod_headers or a client does to one, can move it; whatever cannot be told
 * exactly is no client at all (the lookup's "unavailable").
 */
#ifndef AZT_FORWARDED_H
#define AZT_FORWARDED_H

#include <httpd.h>

/* post_config: learn each server's RemoteIPHeader from the configuration
 * tree (mod_remoteip keeps its settings private). */
void azt_forwarded_post_config(apr_pool_t *pconf, server_rec *s);

/* post_read_request, before anything reads or rewrites headers: keep the
 * last entry of the forwarding header of the connection's first request. */
int azt_forwarded_post_read(request_rec *r);

/* The forwarded client's normalized IP for the request r whose socket peer
 * (normalized) is the trusted proxy peer; NULL with *why when there is none
 * or which one cannot be told exactly. */
const char *azt_forwarded_client(request_rec *r, const char *peer, const char **why);

/* The last comma-separated entry of a forwarding header, trimmed: the one
 * the nearest hop added (and the first mod_remoteip reads). */
const char *azt_forwarded_last_entry(apr_pool_t *p, const char *value);

/* The request r came from: its first request before any internal redirect,
 * the main request of a subrequest. */
request_rec *azt_origin_request(request_rec *r);

#endif
