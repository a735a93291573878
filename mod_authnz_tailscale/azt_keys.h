/* mod_authnz_tailscale: the ES256 keys that sign identity assertions.
 *
 * Keys are read by the parent (root) while it reads the configuration,
 * before any child starts: the children inherit them in memory and never
 * open a key file. A key file must hold an EC P-256 private key, belong to
 * the user httpd starts as and be closed to group and others. Without
 * AuthTailscaleAssertionKey, one key is generated once and kept in the
 * key directory for every later start.
 */
#ifndef AZT_KEYS_H
#define AZT_KEYS_H

#include <httpd.h>
#include <apr_tables.h>
#include <cjose/jwk.h>

#include "azt_config.h"

typedef struct azt_key {
    cjose_jwk_t *jwk;           /* private key; released with the pool it was read into */
    const char *kid;            /* RFC 7638 thumbprint of the public key */
    const char *x, *y;          /* public point, base64url (the JWK members) */
    const char *path;           /* the file it came from, for messages */
} azt_key;

/* Read a PEM EC P-256 private key file into a key released with p. Returns
 * NULL, or a message saying what is wrong with the file and what to do. */
const char *azt_key_load(apr_pool_t *p, const char *path, azt_key **out);

/* The generated key kept in dir: read it, or (create set) make dir 0700 and
 * a new key file 0600 in it when there is none yet (*created set then).
 * *out stays NULL when there is none and create is not set. */
const char *azt_key_generated(apr_pool_t *p, const char *dir, int create,
                              azt_key **out, int *created);

/* The file name of the generated key in dir. */
const char *azt_key_generated_path(apr_pool_t *p, const char *dir);

/* The keys a server signs and publishes with: its AuthTailscaleAssertionKey
 * list, else the generated key; NULL when it has none. */
const apr_array_header_t *azt_keys_of(const azt_server_conf *sc);

/* Read (create set: and make, at the first start) the generated key if
 * AuthTailscaleAssertion is on somewhere and a server has no key of its
 * own; logged, and an error status to stop httpd, when that fails. */
int azt_keys_prepare(apr_pool_t *pconf, server_rec *s, int create);

/* The JWK Set (RFC 7517) publishing the public half of each key (of azt_key *). */
const char *azt_keys_jwks(apr_pool_t *p, const apr_array_header_t *keys);

#endif
