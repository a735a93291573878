/* mod_md_tailscale: the self-signed stand-in certificate a vhost gets while
 * tailscaled has not supplied the real one (mod_ssl then answers 503). */
#ifndef MDT_FALLBACK_H
#define MDT_FALLBACK_H

#include <apr_pools.h>
#include "mdt_config.h"

/* Make sure a usable fallback pair exists for d in the store (reused while it
 * is valid for another day, else generated: EC P-256, 7 days, CN = d->name,
 * SANs = d's names). Returns an error text or NULL. */
const char *mdt_fallback_ensure(apr_pool_t *p, const char *store_dir,
                                const mdt_domain *d, const char **key_file,
                                const char **chain_file);

#endif
