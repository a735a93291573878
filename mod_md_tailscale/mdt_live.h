/* mod_md_tailscale: the helper's latest status document of each domain, in
 * anonymous shared memory of this server generation (made by the parent
 * before it forks the helper and the children).  The request-serving
 * children show it, so the status is right even when the store cannot take
 * the status file (disk full, read-only, deleted); the file only carries
 * what a later generation resumes.  One writer (the helper); readers retry
 * while a write is under way (a sequence count, odd while writing). */
#ifndef MDT_LIVE_H
#define MDT_LIVE_H

#include <apr_pools.h>

typedef struct mdt_live mdt_live;

/* Room for n domains' documents (parent, post_config); NULL if shared
 * memory cannot be had (the status then comes from the files alone). */
mdt_live *mdt_live_create(apr_pool_t *pconf, int n);

/* Publish domain i's document (the helper). Too long a text is not kept. */
void mdt_live_put(mdt_live *l, int i, const char *text);

/* Domain i's latest document, or NULL while the helper has published none. */
char *mdt_live_get(const mdt_live *l, int i, apr_pool_t *p);

#endif
