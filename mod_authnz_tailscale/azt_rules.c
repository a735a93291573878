/* mod_authnz_tailscale: per-section Require analysis (see azt_rules.h). */
#include <httpd.h>
#include <http_config.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "tsl_client.h"
#include "tsl_conf.h"
#include "azt_config.h"
#include "azt_rules.h"

extern module AP_MODULE_DECLARE_DATA authnz_tailscale_module;

/* Identifies the markers pre_config placed (a user cannot write this). */
static const char marker_tag[] = "authnz_tailscale rules marker";
/* Identifies the lines pre_config turned into AZT_COMMENT_ERROR. */
static const char comment_tag[] = "authnz_tailscale trailing comment";

typedef struct {
    int has_rules;
    int uses;
    int uses_client;    /* a rule about the request's client, not only its proxy hop */
    int negates;
    int merging;     /* 0 off, 1 and/or */
} section_rules;

static int is_section(const char *d)
{
    static const char *const names[] = {
        "<Location", "<LocationMatch", "<Directory", "<DirectoryMatch", "<Files",
        "<FilesMatch", "<If", "<ElseIf", "<Else", "<Proxy", "<ProxyMatch", "<VirtualHost",
        "<AuthzProviderAlias", NULL
    };
    int i;

    for (i = 0; names[i]; i++) {
        if (!strcasecmp(d, names[i])) {
            return 1;
        }
    }
    return 0;
}

static int is_ours(apr_hash_t *aliases, const char *provider)
{
    return !strncasecmp(provider, "tailscale-", 10)
           || apr_hash_get(aliases, provider, APR_HASH_KEY_STRING) != NULL;
}

int azt_rules_negated(apr_pool_t *p, const ap_directive_t *d)
{
    if (!d) {
        return 1;
    }
    if (!strcasecmp(d->directive, "Require") && d->args) {
        /* The first word as mod_authz_core reads it: `"not"` is "not" too. */
        const char *args = d->args;

        if (!strcasecmp(ap_getword_conf(p, &args), "not")) {
            return 1;
        }
    }
    for (; d; d = d->parent) {
        if (!strcasecmp(d->directive, "<RequireNone")
            || !strcasecmp(d->directive, "<AuthzProviderAlias")) {
            return 1;
        }
    }
    return 0;
}

/* Read the Require lines of one section (not of the sections inside it). */
static void scan(apr_pool_t *p, apr_hash_t *aliases, const ap_directive_t *d,
                 section_rules *sr)
{
    for (; d; d = d->next) {
        if (is_section(d->directive)) {
            continue;
        }
        if (!strcasecmp(d->directive, "Require") && d->args) {
            const char *args = d->args;
            const char *w = ap_getword_conf(p, &args);

            if (!strcasecmp(w, "not")) {
                w = ap_getword_conf(p, &args);
            }
            sr->has_rules = 1;
            if (is_ours(aliases, w)) {
                sr->uses = 1;
                /* an alias may stand for any provider: counted as the client's */
                sr->uses_client |= strncasecmp(w, "tailscale-peer-", 15) != 0;
                sr->negates |= azt_rules_negated(p, d);
            }
        }
        else if (!strcasecmp(d->directive, "AuthMerging") && d->args) {
            sr->merging = strncasecmp(d->args, "off", 3) != 0;
        }
        if (d->first_child) {
            scan(p, aliases, d->first_child, sr);
        }
    }
}

static void collect_aliases(apr_pool_t *p, apr_hash_t *aliases, const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<AuthzProviderAlias") && d->args) {
            const char *args = d->args;
            const char *prov = ap_getword_conf(p, &args);
            const char *alias = ap_getword_conf(p, &args);

            if (!strncasecmp(prov, "tailscale-", 10) && *alias) {
                apr_hash_set(aliases, alias, APR_HASH_KEY_STRING, alias);
            }
        }
        if (d->first_child) {
            collect_aliases(p, aliases, d->first_child);
        }
    }
}

/* Where a tailnet identity can be needed: "" for the main server (its
 * sections apply to every virtual host), "file:line" for a <VirtualHost>.
 * Rebuilt in each pre_config, from that pass's pconf. */
static apr_hash_t *identity_users;

/* The socket mod_md_tailscale is told to use (MDCertificateAuthority with a
 * socket path), or NULL: read from the same tree, so that the identity
 * side can say when it asks another socket. */
static const char *md_socket;

static void find_md_socket(apr_pool_t *p, const ap_directive_t *d)
{
    for (; d && !md_socket; d = d->next) {
        if (!strcasecmp(d->directive, "MDCertificateAuthority") && d->args) {
            const char *args = d->args, *path;
            const char *v = ap_getword_conf(p, &args);
            tsl_result res;

            if ((v[0] == '/' || !strncasecmp(v, "file:", 5))
                && tsl_socket_parse(p, v, &path, &res) == TSL_OK) {
                md_socket = path;
            }
        }
        if (d->first_child) {
            find_md_socket(p, d->first_child);
        }
    }
}

const char *azt_rules_md_socket(void)
{
    return md_socket;
}

static const char *vhost_key(apr_pool_t *p, const char *file, unsigned line)
{
    return apr_psprintf(p, "%s:%u", file ? file : "", line);
}

/* Does this line make its section need a tailnet identity? */
static int needs_identity(apr_pool_t *p, apr_hash_t *aliases, const ap_directive_t *d)
{
    const char *args = d->args ? d->args : "", *w;

    if (!strcasecmp(d->directive, "Require")) {
        w = ap_getword_conf(p, &args);
        if (!strcasecmp(w, "not")) {
            w = ap_getword_conf(p, &args);
        }
        return is_ours(aliases, w);
    }
    if (!strcasecmp(d->directive, "AuthType")) {
        return !strcasecmp(ap_getword_conf(p, &args), "tailscale");
    }
    if (!strcasecmp(d->directive, "AuthTailscaleHeaders")) {
        return strcasecmp(ap_getword_conf(p, &args), "off") != 0;
    }
    return 0;
}

static void find_identity_users(apr_pool_t *p, apr_hash_t *aliases, const ap_directive_t *d,
                                const char *key)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost")) {
            find_identity_users(p, aliases, d->first_child,
                                vhost_key(p, d->filename, (unsigned)d->line_num));
            continue;
        }
        if (needs_identity(p, aliases, d)) {
            apr_hash_set(identity_users, key, APR_HASH_KEY_STRING, key);
        }
        if (d->first_child) {
            find_identity_users(p, aliases, d->first_child, key);
        }
    }
}

int azt_rules_server_needs_identity(apr_pool_t *p, const server_rec *s)
{
    if (!identity_users) {
        return 1;       /* no tree was read: assume it does */
    }
    return apr_hash_get(identity_users, "", APR_HASH_KEY_STRING)
           || (s->is_virtual
               && apr_hash_get(identity_users,
                               vhost_key(p, s->defn_name, s->defn_line_number),
                               APR_HASH_KEY_STRING));
}

/* Put a marker first into every section with rules of its own. */
static void mark(apr_pool_t *p, apr_hash_t *aliases, ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (is_section(d->directive) && strcasecmp(d->directive, "<AuthzProviderAlias")
            && strcasecmp(d->directive, "<VirtualHost")) {
            section_rules sr = { 0, 0, 0, 0, 0 };

            scan(p, aliases, d->first_child, &sr);
            if (sr.has_rules) {
                ap_directive_t *m = apr_pcalloc(p, sizeof(*m));

                m->directive = AZT_RULES_MARKER;
                m->args = apr_psprintf(p, "%d %d %d %d", sr.uses, sr.negates, sr.merging,
                                       sr.uses_client);
                m->parent = d;
                m->next = d->first_child;
                m->filename = d->filename;
                m->line_num = d->line_num;
                m->data = (void *)marker_tag;
                d->first_child = m;
            }
        }
        if (d->first_child) {
            mark(p, aliases, d->first_child);
        }
    }
}

static int is_our_directive(const char *name)
{
    const command_rec *c;

    for (c = authnz_tailscale_module.cmds; c && c->name; c++) {
        if (!strcasecmp(c->name, name)) {
            return 1;
        }
    }
    return 0;
}

/* httpd would refuse "AuthTailscaleURL /x.sock # note" with a bare "takes
 * one argument", and take the comment's words as values where more are
 * allowed: such lines become AZT_COMMENT_ERROR, which refuses them saying why. */
static void refuse_comments(apr_pool_t *p, ap_directive_t *d)
{
    const char *comment;

    for (; d; d = d->next) {
        if (d->directive && d->data != marker_tag && d->data != comment_tag
            && is_our_directive(d->directive)
            && (comment = tsl_conf_trailing_comment(d->args))) {
            d->args = tsl_conf_comment_error(p, d->directive, comment);
            d->directive = AZT_COMMENT_ERROR;
            d->data = (void *)comment_tag;
        }
        if (d->first_child) {
            refuse_comments(p, d->first_child);
        }
    }
}

const char *azt_rules_comment_error(cmd_parms *cmd, void *dcv, const char *args)
{
    (void)dcv;
    if (!cmd->directive || cmd->directive->data != comment_tag) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           " is set by mod_authnz_tailscale itself; remove it", NULL);
    }
    return args;
}

int azt_rules_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_hash_t *aliases = apr_hash_make(ptemp);

    (void)plog;
    refuse_comments(pconf, ap_conftree);
    collect_aliases(ptemp, aliases, ap_conftree);
    identity_users = apr_hash_make(pconf);
    md_socket = NULL;
    find_md_socket(pconf, ap_conftree);
    find_identity_users(pconf, aliases, ap_conftree, "");
    mark(pconf, aliases, ap_conftree);
    return OK;
}

const char *azt_rules_marker(cmd_parms *cmd, void *dcv, const char *args)
{
    azt_dir_conf *dc = dcv;
    int uses, negates, merging, uses_client;

    if (!cmd->directive || cmd->directive->data != marker_tag
        || sscanf(args, "%d %d %d %d", &uses, &negates, &merging, &uses_client) != 4) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           " is set by mod_authnz_tailscale itself; remove it", NULL);
    }
    dc->own_rules = merging ? AZT_RULES_MERGED : AZT_RULES_OWN;
    dc->uses_tailscale |= uses;
    dc->uses_client |= uses_client;
    dc->negates_tailscale |= negates;
    return NULL;
}
