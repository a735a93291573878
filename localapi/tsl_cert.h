/* GET /localapi/v0/cert/<domain>?type=pair and the checks before a key and
 * certificate chain are used: split, key/cert match, names, validity. */
#ifndef TSL_CERT_H
#define TSL_CERT_H

#include "tsl_client.h"
#include <apr_tables.h>
#include <apr_time.h>

typedef struct tsl_cert_pair {
    const char *key_pem;          /* private key PEM block */
    const char *chain_pem;        /* leaf certificate first, then intermediates */
    apr_time_t not_before;        /* leaf validity */
    apr_time_t not_after;
    apr_array_header_t *names;    /* of const char*: leaf DNS SANs (CN if none) */
    const char *fingerprint;      /* hex SHA-256 of the leaf DER */
} tsl_cert_pair;

/* Split a "pair" body (key PEM immediately followed by the chain PEM) and
 * check it: one private key, at least one certificate, key matches leaf.
 * Dates and names are filled in but not judged here. */
tsl_code tsl_cert_pair_parse(apr_pool_t *p, const char *body, apr_size_t len,
                             tsl_cert_pair **out, tsl_result *res);

/* Check a pair for use now: covers domain (wildcard SANs honoured, trailing
 * dot ignored) and now lies inside [not_before, not_after]. */
tsl_code tsl_cert_pair_check(const tsl_cert_pair *pair, apr_pool_t *p,
                             const char *domain, apr_time_t now,
                             tsl_result *res);

/* Check the chain as a client will need it: each certificate issued (and
 * signed) by the next one, a leaf alone only when it is self-issued, and the
 * leaf's names in a subjectAltName (not only the CN). */
tsl_code tsl_cert_pair_check_chain(const tsl_cert_pair *pair, apr_pool_t *p,
                                   tsl_result *res);

/* Load and parse key and chain PEM files (as stored on disk). */
tsl_code tsl_cert_pair_load(apr_pool_t *p, const char *key_file,
                            const char *chain_file, tsl_cert_pair **out,
                            tsl_result *res);

/* Fetch cert and key for domain in one request. min_validity > 0 asks
 * tailscaled to renew synchronously if the cached cert expires sooner;
 * timeout should be generous (first issuance can take a minute). The
 * result is parsed and checked with tsl_cert_pair_check_chain() and
 * tsl_cert_pair_check() for now. */
tsl_code tsl_cert_fetch(tsl_client *c, apr_pool_t *p, const char *domain,
                        apr_interval_time_t min_validity,
                        apr_interval_time_t timeout, tsl_cert_pair **out,
                        tsl_result *res);

#endif
