/* mod_authnz_tailscale: server-status section (see azt_status.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <mod_status.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "tsl_result.h"
#include "azt_config.h"
#include "azt_stats.h"
#include "azt_lookup.h"
#include "azt_shared.h"
#include "azt_status.h"

int azt_status_hook(request_rec *r, int flags)
{
    azt_stats *st = azt_stats_get();
    azt_server_conf *sc = azt_server_conf_get(r->server);
    apr_time_t when = 0;
    const char *last;
    azt_shared *sh = azt_shared_get();
    struct { const char *name; apr_uint64_t value; } rows[12];
    int i, n = 0, shared_entries = sh ? azt_shared_entries(sh, r->pool) : -1;

    if (!st) {
        return OK;
    }
    last = azt_stats_last_error(st, r->pool, &when);
    rows[n].name = "Lookups"; rows[n++].value = apr_atomic_read64(&st->lookups);
    rows[n].name = "ConnectionHits"; rows[n++].value = apr_atomic_read64(&st->conn_hits);
    rows[n].name = "CacheHits"; rows[n++].value = apr_atomic_read64(&st->cache_hits);
    rows[n].name = "WhoisCalls"; rows[n++].value = apr_atomic_read64(&st->whois_calls);
    rows[n].name = "Identified"; rows[n++].value = apr_atomic_read64(&st->identified);
    rows[n].name = "NotTailnetPeers"; rows[n++].value = apr_atomic_read64(&st->not_found);
    rows[n].name = "Errors"; rows[n++].value = apr_atomic_read64(&st->errors);
    rows[n].name = "ErrorLinesSuppressed"; rows[n++].value = apr_atomic_read64(&st->suppressed);
    rows[n].name = "SharedCacheHits"; rows[n++].value = apr_atomic_read64(&st->shared_hits);
    rows[n].name = "SharedCacheMisses"; rows[n++].value = apr_atomic_read64(&st->shared_misses);
    rows[n].name = "SharedCacheWaits"; rows[n++].value = apr_atomic_read64(&st->shared_waits);
    rows[n].name = "SharedCacheUnreadable";
    rows[n++].value = apr_atomic_read64(&st->shared_unreadable);

    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "TailscaleSocket: %s\n", azt_conf_socket(sc));
        for (i = 0; i < n; i++) {
            ap_rprintf(r, "Tailscale%s: %" APR_UINT64_T_FMT "\n", rows[i].name, rows[i].value);
        }
        ap_rprintf(r, "TailscaleCacheEntries: %d\n", azt_lookup_cache_count());
        ap_rprintf(r, "TailscaleSharedCache: %s\n", sh ? azt_shared_name(sh) : "none");
        if (shared_entries >= 0) {
            ap_rprintf(r, "TailscaleSharedCacheEntries: %d\n", shared_entries);
        }
        if (last) {
            ap_rprintf(r, "TailscaleLastError: %s\n", last);
        }
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_authnz_tailscale</h2>\n<table>\n", r);
    ap_rprintf(r, "<tr><th>Socket</th><td>%s</td></tr>\n",
               ap_escape_html(r->pool, azt_conf_socket(sc)));
    for (i = 0; i < n; i++) {
        ap_rprintf(r, "<tr><th>%s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   rows[i].name, rows[i].value);
    }
    ap_rprintf(r, "<tr><th>CacheEntries (this process)</th><td>%d</td></tr>\n",
               azt_lookup_cache_count());
    ap_rprintf(r, "<tr><th>SharedCache</th><td>%s</td></tr>\n",
               ap_escape_html(r->pool, sh ? azt_shared_name(sh) : "none"));
    if (shared_entries >= 0) {
        ap_rprintf(r, "<tr><th>SharedCacheEntries</th><td>%d</td></tr>\n", shared_entries);
    }
    if (last) {
        char date[APR_RFC822_DATE_LEN];
        apr_rfc822_date(date, when);
        ap_rprintf(r, "<tr><th>LastError</th><td>%s: %s</td></tr>\n", date,
                   ap_escape_html(r->pool, last));
    }
    ap_rputs("</table>\n", r);
    return OK;
}
