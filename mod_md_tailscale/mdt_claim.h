/* mod_md_tailscale: claiming tailscale MDomain sections before httpd walks
 * the configuration.
 *
 * httpd hands a directive to every module that defines it, newest-loaded
 * first; returning NULL or DECLINE_CMD from a handler both pass it on (see
 * ap_walk_config_sub in server/config.c).  So if mod_md and we both defined
 * <MDomain>, mod_md would also see the tailscale sections and reject them
 * ("The CA name ... is not known").  Instead, in pre_config (after the
 * configuration tree is read, before it is walked) we rename the nodes that
 * are ours to names only this module defines.  mod_md then never sees them,
 * whatever order the modules were loaded in.
 */
#ifndef MDT_CLAIM_H
#define MDT_CLAIM_H

#include <httpd.h>
#include <http_config.h>
#include <util_cfgtree.h>

/* Directive names the claimed nodes get. */
#define MDT_DIR_SECTION       "<MDTailscaleDomain"
#define MDT_DIR_LINE          "MDTailscaleDomain"
#define MDT_DIR_GLOBAL_PROTO  "MDTailscaleGlobalProtocol"
#define MDT_DIR_GLOBAL_CA     "MDTailscaleGlobalAuthority"
#define MDT_DIR_COMMENT_ERROR "MDTailscaleTrailingComment"

/* True if a MDCertificateAuthority value names a socket (a path or a
 * file:// URL) rather than an ACME CA. */
int mdt_claim_is_socket_spec(const char *value);

/* Rename the nodes that belong to mod_md_tailscale; returns how many
 * MDomain definitions were claimed. */
int mdt_claim_tree(apr_pool_t *ptemp, ap_directive_t *tree);

/* Lines of ours (sections included) with a trailing '#' comment, which
 * Apache does not have, become MDT_DIR_COMMENT_ERROR lines, refused by
 * mdt_claim_comment_error() with the reason (read_section_child too). Runs after
 * mdt_claim_tree(), which needs a section's MDCertificateProtocol line. */
void mdt_claim_refuse_comments(apr_pool_t *pconf, ap_directive_t *tree);
const char *mdt_claim_comment_error(cmd_parms *cmd, void *dc, const char *args);

/* True if mod_md is loaded in this server. */
int mdt_claim_mod_md_loaded(void);

#endif
