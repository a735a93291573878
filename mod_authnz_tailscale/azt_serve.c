/* mod_authnz_tailscale: connections tailscale serve forwards (see azt_serve.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_strings.h>

#include <errno.h>
#include <sys/stat.h>

#include "tsl_addr.h"
#include "tsl_result.h"
#include "azt_sockuid.h"
#include "azt_forwarded.h"
#include "azt_serve.h"

APLOG_USE_MODULE(authnz_tailscale);

#define NOTE_SERVE_CLIENT "tailscale-serve-client"
#define NOTE_SERVE_FUNNEL "tailscale-serve-funnel"

void azt_serve_post_read(request_rec *r)
{
    const char *xff, *funnel;

    if (r->main || r->prev) {
        return;
    }
    xff = apr_table_get(r->headers_in, "X-Forwarded-For");
    funnel = apr_table_get(r->headers_in, "Tailscale-Funnel-Request");
    if (xff) {
        /* serve sets exactly one entry; a longer list came through another
         * hop, whose rightmost entry is the one serve wrote. */
        apr_table_setn(r->notes, NOTE_SERVE_CLIENT, azt_forwarded_last_entry(r->pool, xff));
    }
    if (funnel && !strcmp(funnel, "?1")) {
        apr_table_setn(r->notes, NOTE_SERVE_FUNNEL, "1");
    }
}

int azt_serve_is_tailscaled(request_rec *r, const char *socket_path,
                            const apr_sockaddr_t *sa, int *memo)
{
    conn_rec *c = r->connection->master ? r->connection->master : r->connection;
    apr_socket_t *sock = ap_get_conn_socket(c);
    apr_sockaddr_t *la;
    struct stat st;
    uid_t uid = 0;
    apr_status_t rv = APR_EINVAL;

    if (*memo) {
        return *memo > 0;
    }
    *memo = -1;
    if (stat(socket_path, &st) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, errno, r,
                      "TS01041: AuthTailscaleBehindServe (vhost %s): cannot stat "
                      "tailscaled's socket %s to learn its owner; the loopback peer is "
                      "treated as an ordinary local client", r->server->server_hostname,
                      socket_path);
        return 0;
    }
    if (!sock || apr_socket_addr_get(&la, APR_LOCAL, sock) != APR_SUCCESS
        || (rv = azt_sockuid_of_peer(la, sa, &uid)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      "TS01042: AuthTailscaleBehindServe (vhost %s): the kernel did not "
                      "say who owns the loopback peer's socket (sock_diag); it is treated "
                      "as an ordinary local client", r->server->server_hostname);
        return 0;
    }
    if (uid != st.st_uid) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "TS01043: loopback peer owned by uid %ld, not tailscaled's uid %ld "
                      "(owner of %s): not tailscale serve, its X-Forwarded-For is ignored",
                      (long)uid, (long)st.st_uid, socket_path);
        return 0;
    }
    *memo = 1;
    return 1;
}

azt_served azt_serve_client(request_rec *r, const char **client)
{
    request_rec *origin = azt_origin_request(r);
    const char *xff = apr_table_get(origin->notes, NOTE_SERVE_CLIENT);
    const char *norm = xff ? tsl_addr_normalize(r->pool, xff) : NULL;

    if (apr_table_get(origin->notes, NOTE_SERVE_FUNNEL)) {
        *client = norm ? norm : "a Funnel client";
        return AZT_SERVED_FUNNEL;
    }
    if (!norm) {
        *client = xff ? tsl_printable(r->pool, xff, 64) : "none";
        return AZT_SERVED_NONE;
    }
    *client = norm;
    return AZT_SERVED_CLIENT;
}
