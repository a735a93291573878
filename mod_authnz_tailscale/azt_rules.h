/* mod_authnz_tailscale: which sections' effective Require rules need a
 * tailnet identity, decided per section from its own rules.
 *
 * mod_authz_core keeps its rules to itself, so before the configuration is
 * processed (pre_config) the parsed tree is read: every <Location>,
 * <Directory>, <Files>, <If>, <Proxy> section holding Require lines gets a
 * marker directive as its first line saying whether it has rules of its
 * own, whether one names a tailscale provider (or an AuthzProviderAlias of
 * one), whether one is negated, and its AuthMerging.  The directory merge
 * then takes a section's own answer when its rules replace the parent's. */
#ifndef AZT_RULES_H
#define AZT_RULES_H

#include <httpd.h>
#include <http_config.h>

/* pre_config: mark the sections of the parsed configuration tree. */
int azt_rules_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);

/* May the result of this Require line be negated?  "Require not ...", a
 * line inside <RequireNone> (at any depth) and one in an
 * <AuthzProviderAlias> (its uses are elsewhere) all may.  NULL (a line not
 * from a configuration tree) counts as negated. */
int azt_rules_negated(apr_pool_t *p, const ap_directive_t *require);

/* Can a request to this server (main server or virtual host) need a tailnet
 * identity: does a Require tailscale-* line (or an alias of one), AuthType
 * tailscale or AuthTailscaleHeaders apply to it? (.htaccess files are not
 * known; the main server's sections apply to every virtual host.) */
int azt_rules_server_needs_identity(apr_pool_t *p, const server_rec *s);

/* The socket path an MDCertificateAuthority line names (the certificate
 * module's socket), or NULL. */
const char *azt_rules_md_socket(void);

/* The marker directive's handler (refuses anything not placed by pre_config). */
const char *azt_rules_marker(cmd_parms *cmd, void *dcv, const char *args);

#define AZT_RULES_MARKER "AuthTailscaleSectionRules"

/* A line of ours with a trailing '#' comment becomes this directive in
 * pre_config; its handler refuses it with the reason. */
const char *azt_rules_comment_error(cmd_parms *cmd, void *dcv, const char *args);

#define AZT_COMMENT_ERROR "AuthTailscaleTrailingComment"

#endif
