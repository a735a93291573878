/* mod_md_tailscale: the certificate store.
 *
 * Layout under MDTailscaleStoreDir (0755):
 *   domains/ (0700)   <dname>/g<time>/{privkey.pem (0600), pubcert.pem}
 *                     <dname>/current -> g<time>   (symlink, replaced by rename)
 *   fallback/ (0700)  <dname>/{privkey.pem, pubcert.pem}  self-signed stand-in
 *   status/ (0755)    <dname>.json                 readable by the children
 * <dname> is the requested name with "*" written as "wildcard_".
 *
 * A generation directory is complete (written, fsynced) before it is renamed
 * into place, and only then does "current" switch to it, so key and chain
 * always belong together and a crash at any point leaves the previous
 * generation active.
 */
#ifndef MDT_STORE_H
#define MDT_STORE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_cert.h"
#include "mdt_config.h"

typedef struct mdt_stored {
    const char *gen;              /* generation name, e.g. "g0006123456789abc" */
    const char *key_file;         /* absolute paths inside that generation */
    const char *chain_file;
    tsl_cert_pair *pair;
} mdt_stored;

/* Check the store as the parent and the helper both use it: create what is
 * missing, chmod only a mode that differs, refuse links, foreign owners and
 * group/other-writable directories. Returns what is wrong (with the command
 * that fixes it) or NULL. */
const char *mdt_store_init(apr_pool_t *p, const char *dir);

/* File-system name for a requested certificate name. */
const char *mdt_store_dname(apr_pool_t *p, const char *request);

/* Check a pair for use now for every name of d (wildcards honoured).
 * Returns NULL if usable, else why not. */
const char *mdt_store_pair_usable(apr_pool_t *p, const tsl_cert_pair *pair,
                                  const mdt_domain *d, apr_time_t now);

/* The active generation if usable now; otherwise the usable generation that
 * is valid longest; NULL (with *why) if none is.  now == 0: ignore the dates
 * (the last usable certificate, even an expired one). */
mdt_stored *mdt_store_load(apr_pool_t *p, const char *dir, const mdt_domain *d,
                           apr_time_t now, const char **why);

/* Check the store (mdt_store_init), save a pair as a new generation and make
 * it the active one; a failed write leaves nothing behind. *note (may be
 * NULL) tells of a non-link "current" that was moved aside. */
const char *mdt_store_save(apr_pool_t *p, const char *dir, const mdt_domain *d,
                           const tsl_cert_pair *pair, mdt_stored **out,
                           const char **note);

/* Remove generations other than the active one and keep_gen (may be NULL),
 * a moved-aside "current", and leftovers of interrupted saves older than ten
 * minutes (younger ones may be another server's save in progress). */
void mdt_store_prune(apr_pool_t *p, const char *dir, const mdt_domain *d,
                     const char *keep_gen);

/* Write a file atomically (temp file, fsync, rename, fsync directory). */
const char *mdt_store_write_atomic(apr_pool_t *p, const char *path, const char *data,
                                   apr_size_t len, int mode);

/* Read a whole small file; NULL if missing or unreadable. */
char *mdt_store_read(apr_pool_t *p, const char *path, apr_size_t max, apr_size_t *len);

const char *mdt_store_status_path(apr_pool_t *p, const char *dir, const mdt_domain *d);

/* The domain's job record: domains/<dname>/job.json (0600), what the helper
 * keeps across restarts (counters, back-off, Retry-After, events sent); the
 * status file is for display only. */
const char *mdt_store_job_path(apr_pool_t *p, const char *dir, const mdt_domain *d);

/* Create the domain's directory under domains/ (0700) if it is missing. */
const char *mdt_store_domain_init(apr_pool_t *p, const char *dir, const mdt_domain *d);
const char *mdt_store_fallback_dir(apr_pool_t *p, const char *dir, const mdt_domain *d);
const char *mdt_store_domain_dir(apr_pool_t *p, const char *dir, const mdt_domain *d);

#endif
