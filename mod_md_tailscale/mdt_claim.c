/* mod_md_tailscale: which MDomain sections are ours (see mdt_claim.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include "tsl_conf.h"
#include "mdt_claim.h"
#include "mdt_config.h"
#include <http_config.h>

/* Identifies the lines mdt_claim_refuse_comments() rewrote. */
static const char comment_tag[] = "md_tailscale trailing comment";

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

static int is_our_directive(const char *name)
{
    const command_rec *c;

    for (c = md_tailscale_module.cmds; c && c->name; c++) {
        if (!strcasecmp(c->name, name)) {
            return 1;
        }
    }
    return 0;
}

/* The name the user wrote for a node mdt_claim_tree() may have renamed. */
static const char *written_name(const char *directive)
{
    return !strcasecmp(directive, MDT_DIR_SECTION) ? "<MDomain"
           : !strcasecmp(directive, MDT_DIR_LINE) ? "MDomain"
           : !strcasecmp(directive, MDT_DIR_GLOBAL_PROTO) ? "MDCertificateProtocol"
           : !strcasecmp(directive, MDT_DIR_GLOBAL_CA) ? "MDCertificateAuthority"
           : directive;
}

void mdt_claim_refuse_comments(apr_pool_t *pconf, ap_directive_t *d)
{
    for (; d; d = d->next) {
        const char *args = d->args ? d->args : "", *comment, *shown = NULL;

        if (d->directive && d->data != comment_tag && is_our_directive(d->directive)) {
            shown = written_name(d->directive);
            if (d->directive[0] == '<') {
                /* "<MDomain name> # x": httpd ends the section's arguments
                 * at its '>' and would drop the rest silently */
                const char *end = strrchr(args, '>');
                shown = apr_pstrcat(pconf, shown, " ",
                                    end ? apr_pstrmemdup(pconf, args,
                                                         (apr_size_t)(end - args + 1))
                                        : args, NULL);
                args = end ? end + 1 : "";
            }
            if ((comment = tsl_conf_trailing_comment(args))) {
                d->args = tsl_conf_comment_error(pconf, shown, comment);
                d->directive = MDT_DIR_COMMENT_ERROR;
                d->data = (void *)comment_tag;
            }
        }
        if (d->first_child) {
            mdt_claim_refuse_comments(pconf, d->first_child);
        }
    }
}

const char *mdt_claim_comment_error(cmd_parms *cmd, void *dc, const char *args)
{
    (void)dc;
    if (!cmd->directive || cmd->directive->data != comment_tag) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           " is set by mod_md_tailscale itself; remove it", NULL);
    }
    return args;
}
