/* mod_md_tailscale: zero-configuration ts.net virtual hosts (see mdt_auto.h). */
#include <string.h>
#include <strings.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include "mdt_claim.h"
#include "mdt_auto.h"

APLOG_USE_MODULE(md_tailscale);

#define TS_NET ".ts.net"

static int is(const ap_directive_t *d, const char *name)
{
    return d->directive && !strcasecmp(d->directive, name);
}

static int ends_in_ts_net(const char *name)
{
    size_t n = strlen(name), k = sizeof(TS_NET) - 1;

    if (n > 0 && name[n - 1] == '.') {
        --n;    /* a trailing dot is the same name */
    }
    return n > k && !strncasecmp(name + n - k, TS_NET, k);
}

/* mod_md's own MDomain names (the nodes mdt_claim.c left unrenamed). */
static void collect_mod_md_names(apr_pool_t *p, const ap_directive_t *d,
                                 apr_hash_t *names)
{
    for (; d; d = d->next) {
        const char *args = d->args ? d->args : "", *w;
        int section = is(d, "<MDomain") || is(d, "<MDomainSet");

        if (section || is(d, "MDomain")) {
            char *a = apr_pstrdup(p, args), *gt = section ? strrchr(a, '>') : NULL;
            const ap_directive_t *c;

            if (gt) {
                *gt = '\0';
            }
            args = a;
            while (*(w = ap_getword_conf(p, &args))) {
                apr_hash_set(names, apr_pstrdup(p, w), APR_HASH_KEY_STRING, "");
            }
            for (c = section ? d->first_child : NULL; c; c = c->next) {
                const char *m = c->args ? c->args : "";
                if (is(c, "MDMember")) {
                    while (*(w = ap_getword_conf(p, &m))) {
                        apr_hash_set(names, apr_pstrdup(p, w), APR_HASH_KEY_STRING, "");
                    }
                }
            }
            continue;
        }
        if (d->first_child) {
            collect_mod_md_names(p, d->first_child, names);
        }
    }
}

static int in_mod_md(apr_hash_t *mod_md_names, const char *name)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, mod_md_names); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_hash_this(hi, &k, NULL, NULL);
        if (!strcasecmp(k, name)) {
            return 1;
        }
    }
    return 0;
}

/* What one <VirtualHost> says (its own lines and those of sections like
 * <IfModule> inside it; never <Location> and the like). */
typedef struct vhost_info {
    int ssl_on;
    int has_cert;
    int other_name;         /* a name that does not end in .ts.net */
    const char *server_name;
    apr_array_header_t *names;
} vhost_info;

static void read_vhost(apr_pool_t *p, const ap_directive_t *d, vhost_info *vi)
{
    for (; d; d = d->next) {
        const char *args = d->args ? d->args : "", *w;

        if (is(d, "SSLEngine")) {
            vi->ssl_on = !strcasecmp(ap_getword_conf(p, &args), "on");
        }
        else if (is(d, "SSLCertificateFile")) {
            vi->has_cert = 1;
        }
        else if (is(d, "ServerName") || is(d, "ServerAlias")) {
            int server_name = is(d, "ServerName");
            while (*(w = ap_getword_conf(p, &args))) {
                char *n = apr_pstrdup(p, w), *colon;
                if (server_name) {
                    /* [scheme://]name[:port] */
                    char *sep = strstr(n, "://");
                    if (sep) {
                        n = sep + 3;
                    }
                    if ((colon = strrchr(n, ':'))) {
                        *colon = '\0';
                    }
                    vi->server_name = n;
                }
                if (ends_in_ts_net(n)) {
                    APR_ARRAY_PUSH(vi->names, const char *) = n;
                }
                else {
                    vi->other_name = 1;
                }
            }
        }
        else if (d->first_child && d->directive && d->directive[0] == '<'
                 && strncasecmp(d->directive, "<If", 3) == 0) {
            read_vhost(p, d->first_child, vi);    /* <IfModule>, <IfDefine>, ... */
        }
    }
}

static const char *add_vhost(apr_pool_t *p, mdt_config *c, apr_hash_t *mod_md_names,
                             const ap_directive_t *vh)
{
    vhost_info vi;
    mdt_domain *d;
    const char *err;
    int i;

    memset(&vi, 0, sizeof(vi));
    vi.names = apr_array_make(p, 2, sizeof(const char *));
    read_vhost(p, vh->first_child, &vi);
    if (!vi.ssl_on || vi.has_cert || vi.other_name || !vi.server_name
        || vi.names->nelts == 0) {
        return NULL;
    }
    d = apr_pcalloc(p, sizeof(*d));
    d->names = apr_array_make(p, 2, sizeof(const char *));
    d->file = vh->filename;
    d->line = vh->line_num;
    d->automatic = 1;
    for (i = 0; i < vi.names->nelts; ++i) {
        const char *n = APR_ARRAY_IDX(vi.names, i, const char *);
        if (in_mod_md(mod_md_names, n) || mdt_config_find_domain(c, n)) {
            /* mod_md's, or already ours (an MDomain, another vhost) */
            continue;
        }
        if ((err = mdt_domain_add_names(p, d, n))) {
            return apr_psprintf(p, "TS02098: <VirtualHost> at %s:%d: %s", d->file,
                                d->line, err);
        }
    }
    if (d->names->nelts == 0) {
        return NULL;
    }
    if ((err = mdt_domain_decide_request(p, d))) {
        return apr_psprintf(p, "TS02083: <VirtualHost> at %s:%d (names %s, managed "
                            "automatically since MDTailscaleAutoDomains is on): %s. "
                            "Give it one ts.net name (and at most that name's *. "
                            "wildcard), or write one <MDomain> per name with "
                            "MDCertificateProtocol tailscale and a <VirtualHost> for "
                            "each", d->file, d->line,
                            apr_array_pstrcat(p, d->names, ' '), err);
    }
    APR_ARRAY_PUSH(c->domains, mdt_domain *) = d;
    return NULL;
}

static const char *walk(apr_pool_t *p, const ap_directive_t *d, mdt_config *c,
                        apr_hash_t *mod_md_names)
{
    const char *err;

    for (; d; d = d->next) {
        if (is(d, "<VirtualHost")) {
            if ((err = add_vhost(p, c, mod_md_names, d))) {
                return err;
            }
        }
        else if (d->first_child && d->directive
                 && strncasecmp(d->directive, "<If", 3) == 0
                 && (err = walk(p, d->first_child, c, mod_md_names))) {
            return err;
        }
    }
    return NULL;
}

/* Record, per ts.net name, a <VirtualHost> without SSLEngine on naming it,
 * or SSL_SEEN once one with SSLEngine on does. */
static const char SSL_SEEN[] = "ssl";

static void collect_served(apr_pool_t *p, const ap_directive_t *d, apr_hash_t *seen)
{
    for (; d; d = d->next) {
        if (is(d, "<VirtualHost")) {
            vhost_info vi;
            int i;

            memset(&vi, 0, sizeof(vi));
            vi.names = apr_array_make(p, 2, sizeof(const char *));
            read_vhost(p, d->first_child, &vi);
            for (i = 0; i < vi.names->nelts; ++i) {
                const char *n = APR_ARRAY_IDX(vi.names, i, const char *);
                if (vi.ssl_on) {
                    apr_hash_set(seen, n, APR_HASH_KEY_STRING, SSL_SEEN);
                }
                else if (!apr_hash_get(seen, n, APR_HASH_KEY_STRING)) {
                    apr_hash_set(seen, n, APR_HASH_KEY_STRING, d);
                }
            }
        }
        else if (d->first_child && d->directive && strncasecmp(d->directive, "<If", 3) == 0) {
            collect_served(p, d->first_child, seen);
        }
    }
}

/* An MDomain whose names appear only in virtual hosts without SSLEngine on
 * is served as plain HTTP (alice got 200 on http://name:443/): say so when
 * the configuration is read, apache2 -t included, not only after a start. */
static void warn_plain_only(apr_pool_t *p, const ap_directive_t *tree, const mdt_config *c)
{
    apr_hash_t *seen = apr_hash_make(p);
    int i, j;

    collect_served(p, tree, seen);
    for (i = 0; i < c->domains->nelts; ++i) {
        const mdt_domain *md = APR_ARRAY_IDX(c->domains, i, const mdt_domain *);
        const ap_directive_t *plain = NULL;

        for (j = 0; j < md->names->nelts; ++j) {
            const void *v = apr_hash_get(seen, APR_ARRAY_IDX(md->names, j, const char *),
                                         APR_HASH_KEY_STRING);
            if (v && v != (const void *)SSL_SEEN) {
                plain = plain ? plain : v;
            }
            else if (v) {
                plain = NULL;
                break;
            }
        }
        if (plain) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, NULL, "TS02086: MDomain %s: the "
                         "<VirtualHost %s at %s:%d names it but has no SSLEngine on, and no "
                         "virtual host with SSLEngine on does: that port answers plain "
                         "HTTP and the certificate is not used; add SSLEngine on",
                         md->name, plain->args, plain->filename, plain->line_num);
        }
    }
}

const char *mdt_auto_add_domains(apr_pool_t *p, const ap_directive_t *tree,
                                 mdt_config *c)
{
    apr_hash_t *mod_md_names = apr_hash_make(p);

    if (c && tree) {
        warn_plain_only(p, tree, c);
    }
    if (!c || c->auto_domains == 0 || !tree) {
        return NULL;
    }
    collect_mod_md_names(p, tree, mod_md_names);
    return walk(p, tree, c, mod_md_names);
}
