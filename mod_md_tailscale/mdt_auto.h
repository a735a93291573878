/* mod_md_tailscale: zero-configuration ts.net virtual hosts
 * (MDTailscaleAutoDomains).
 *
 * An `SSLEngine on` <VirtualHost> whose ServerName and every ServerAlias end
 * in .ts.net, that names no SSLCertificateFile and whose names are in no
 * MDomain (ours or mod_md's), is managed as if it had its own <MDomain> with
 * MDCertificateProtocol tailscale and the top-level MDCertificateAuthority.
 */
#ifndef MDT_AUTO_H
#define MDT_AUTO_H

#include <httpd.h>
#include <util_cfgtree.h>
#include "mdt_config.h"

/* check_config, before mdt_config_finish: add a domain to c for each such
 * virtual host in tree.  Returns an error text (the configuration cannot
 * be used) or NULL. */
const char *mdt_auto_add_domains(apr_pool_t *p, const ap_directive_t *tree,
                                 mdt_config *c);

#endif
