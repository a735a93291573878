/* mod_md_tailscale: which MDomain sections are ours (see mdt_claim.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include "mdt_claim.h"
#include <http_config.h>

int mdt_claim_mod_md_loaded(void)
{
    return ap_find_linked_module("mod_md.c") != NULL;
}

int mdt_claim_is_socket_spec(const char *value)
{
    return value && (value[0] == '/' || !strncasecmp(value, "file:", 5));
}

static const char *first_arg(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d->args ? d->args : "";
    return ap_getword_conf(p, &args);
}

static int is(const ap_directive_t *d, const char *name)
{
    return d->directive && !strcasecmp(d->directive, name);
}

/* The protocol a section names itself, NULL if it does not. */
static const char *section_protocol(apr_pool_t *p, const ap_directive_t *sec)
{
    const ap_directive_t *c;
    const char *proto = NULL;

    for (c = sec->first_child; c; c = c->next) {
        if (is(c, "MDCertificateProtocol")) {
            proto = first_arg(p, c);
        }
    }
    return proto;
}

static int claim_walk(apr_pool_t *p, ap_directive_t *d, int global_ts)
{
    int n = 0;

    for (; d; d = d->next) {
        if (is(d, "<MDomain") || is(d, "<MDomainSet")) {
            const char *proto = section_protocol(p, d);
            if ((proto && !strcasecmp(proto, "tailscale")) || (!proto && global_ts)) {
                d->directive = MDT_DIR_SECTION;
                ++n;
            }
            continue;   /* children are read by the section handler */
        }
        if (is(d, "MDomain") && global_ts) {
            d->directive = MDT_DIR_LINE;
            ++n;
            continue;
        }
        if (!d->parent && global_ts && is(d, "MDCertificateProtocol")) {
            d->directive = MDT_DIR_GLOBAL_PROTO;
            continue;
        }
        if (!d->parent && is(d, "MDCertificateAuthority")
            && mdt_claim_is_socket_spec(first_arg(p, d))) {
            d->directive = MDT_DIR_GLOBAL_CA;
            continue;
        }
        if (d->first_child) {
            n += claim_walk(p, d->first_child, global_ts);
        }
    }
    return n;
}

int mdt_claim_tree(apr_pool_t *ptemp, ap_directive_t *tree)
{
    const ap_directive_t *d;
    const char *proto = NULL;

    /* A top-level MDCertificateProtocol applies to every MDomain that does
     * not name its own, as in mod_md. */
    for (d = tree; d; d = d->next) {
        if (is(d, "MDCertificateProtocol")) {
            proto = first_arg(ptemp, d);
        }
    }
    return claim_walk(ptemp, tree, proto && !strcasecmp(proto, "tailscale"));
}
