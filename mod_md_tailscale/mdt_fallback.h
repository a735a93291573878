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

/* The same kind of certificate held in memory only (when the store cannot
 * hold it: disk full, read-only): key_file and chain_file name memory files
 * of this process that mod_ssl reads in post_config. */
typedef struct mdt_fallback_memory {
    const char *key_file;
    const char *chain_file;
    int key_fd;
    int chain_fd;
} mdt_fallback_memory;

const char *mdt_fallback_in_memory(apr_pool_t *pconf, const mdt_domain *d,
                                   mdt_fallback_memory **out);

/* Close the memory files once mod_ssl has read them (also a pconf cleanup),
 * so that no request-serving child inherits them. */
void mdt_fallback_memory_close(mdt_fallback_memory *m);

#endif
