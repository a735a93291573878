/* mod_authnz_tailscale: Require providers. */
#ifndef AZT_AUTHZ_H
#define AZT_AUTHZ_H

#include <apr_pools.h>

/* Register tailscale-user, -node, -tailnet, -tag, -cap, -peer-node, -peer-tag. */
void azt_authz_register(apr_pool_t *p);

#endif
