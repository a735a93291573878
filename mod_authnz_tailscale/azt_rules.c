/* mod_authnz_tailscale: per-section Require analysis (see azt_rules.h). */
#include <httpd.h>
#include <http_config.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "azt_config.h"
#include "azt_rules.h"

/* Identifies the markers pre_config placed (a user cannot write this). */
static const char marker_tag[] = "authnz_tailscale rules marker";

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

int azt_rules_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_hash_t *aliases = apr_hash_make(ptemp);

    (void)plog;
    collect_aliases(ptemp, aliases, ap_conftree);
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
