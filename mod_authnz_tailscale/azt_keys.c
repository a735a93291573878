/* mod_authnz_tailscale: assertion signing keys (see azt_keys.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_strings.h>
#include <jansson.h>
#include <cjose/base64.h>
#include <cjose/util.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "azt_keys.h"

APLOG_USE_MODULE(authnz_tailscale);

#define GENERATED_NAME "assertion-key.pem"
#define P256_BYTES 32
#define MAKE_KEY_HINT "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out FILE"

static apr_status_t release_jwk(void *jwk)
{
    cjose_jwk_release(jwk);
    return APR_SUCCESS;
}

/* A key file readable by the children (www-data) or writable by anyone
 * but root would give them the key, or let them choose it. */
static const char *check_owner_mode(apr_pool_t *p, const char *path, const struct stat *st)
{
    if (!S_ISREG(st->st_mode)) {
        return apr_psprintf(p, "%s is not a regular file", path);
    }
    if (st->st_uid != geteuid()) {
        return apr_psprintf(p, "%s belongs to uid %ld, not to the user httpd starts as "
                            "(uid %ld), whose request-serving children could then read "
                            "it: chown %ld %s", path, (long)st->st_uid, (long)geteuid(),
                            (long)geteuid(), path);
    }
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        return apr_psprintf(p, "%s is open to group or others (mode %04o): only the "
                            "user httpd starts as may read a signing key: chmod 600 %s",
                            path, (unsigned)(st->st_mode & 07777), path);
    }
    return NULL;
}

static EVP_PKEY *read_pem(apr_pool_t *p, const char *path, const char **err)
{
    struct stat st;
    EVP_PKEY *pkey = NULL;
    BIO *bio;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        *err = apr_psprintf(p, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        *err = apr_psprintf(p, "cannot stat %s: %s", path, strerror(errno));
    }
    else if (!(*err = check_owner_mode(p, path, &st))) {
        bio = BIO_new_fd(fd, BIO_NOCLOSE);
        if (bio) {
            pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
            BIO_free(bio);
        }
        if (!pkey) {
            *err = apr_psprintf(p, "%s holds no unencrypted PEM private key; make one "
                                "with `" MAKE_KEY_HINT "`", path);
        }
    }
    close(fd);
    return pkey;
}

/* The key's d, x and y as fixed-size big-endian numbers (RFC 7518 6.2). */
static int p256_numbers(EVP_PKEY *pkey, uint8_t d[P256_BYTES], uint8_t x[P256_BYTES],
                        uint8_t y[P256_BYTES])
{
    BIGNUM *bd = NULL, *bx = NULL, *by = NULL;
    int ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bd)
             && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx)
             && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by)
             && BN_bn2binpad(bd, d, P256_BYTES) == P256_BYTES
             && BN_bn2binpad(bx, x, P256_BYTES) == P256_BYTES
             && BN_bn2binpad(by, y, P256_BYTES) == P256_BYTES;
    BN_clear_free(bd);
    BN_free(bx);
    BN_free(by);
    return ok;
}

static cjose_jwk_t *jwk_of(apr_pool_t *p, const char *path, EVP_PKEY *pkey, const char **err)
{
    char group[64] = "";
    uint8_t d[P256_BYTES], x[P256_BYTES], y[P256_BYTES];
    cjose_jwk_ec_keyspec spec;
    cjose_jwk_t *jwk = NULL;
    cjose_err cerr;

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC
        || !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), NULL)
        || strcmp(group, SN_X9_62_prime256v1) != 0) {
        *err = apr_psprintf(p, "%s holds a%s %s key, but assertions are signed with ES256 "
                            "only, which needs an EC P-256 key; make one with `"
                            MAKE_KEY_HINT "`", path,
                            *group ? "n EC" : "", *group ? group : EVP_PKEY_get0_type_name(pkey));
        return NULL;
    }
    if (!p256_numbers(pkey, d, x, y)) {
        *err = apr_psprintf(p, "%s: cannot read the EC P-256 key's numbers", path);
        OPENSSL_cleanse(d, sizeof(d));
        return NULL;
    }
    memset(&spec, 0, sizeof(spec));
    spec.crv = CJOSE_JWK_EC_P_256;
    spec.d = d;
    spec.dlen = sizeof(d);
    spec.x = x;
    spec.xlen = sizeof(x);
    spec.y = y;
    spec.ylen = sizeof(y);
    jwk = cjose_jwk_create_EC_spec(&spec, &cerr);
    OPENSSL_cleanse(d, sizeof(d));
    if (!jwk) {
        *err = apr_psprintf(p, "%s: cjose refused the key: %s", path, cerr.message);
    }
    return jwk;
}

/* RFC 7638: SHA-256 of the required members in lexicographic order, no
 * whitespace (jansson's sorted compact form), base64url. */
static const char *thumbprint(apr_pool_t *p, const char *x, const char *y)
{
    json_t *members = json_pack("{s:s,s:s,s:s,s:s}", "crv", "P-256", "kty", "EC",
                                "x", x, "y", y);
    char *text = members ? json_dumps(members, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char *b64 = NULL;
    size_t b64len = 0;
    const char *kid = NULL;
    cjose_err cerr;

    if (text && EVP_Digest(text, strlen(text), digest, &dlen, EVP_sha256(), NULL)
        && cjose_base64url_encode(digest, dlen, &b64, &b64len, &cerr)) {
        kid = apr_pstrmemdup(p, b64, b64len);
    }
    cjose_get_dealloc()(b64);
    free(text);
    json_decref(members);
    return kid;
}

/* x, y and kid of the public half, from cjose's own JWK form. */
static const char *describe(apr_pool_t *p, azt_key *key)
{
    cjose_err cerr;
    char *pub = cjose_jwk_to_json(key->jwk, false, &cerr);
    json_t *obj = pub ? json_loads(pub, 0, NULL) : NULL;
    const char *x = json_string_value(json_object_get(obj, "x"));
    const char *y = json_string_value(json_object_get(obj, "y"));
    const char *err = NULL;

    if (x && y) {
        key->x = apr_pstrdup(p, x);
        key->y = apr_pstrdup(p, y);
        key->kid = thumbprint(p, key->x, key->y);
    }
    if (!key->kid || !cjose_jwk_set_kid(key->jwk, key->kid, strlen(key->kid), &cerr)) {
        err = apr_psprintf(p, "%s: cannot compute the key's JWK thumbprint", key->path);
    }
    json_decref(obj);
    cjose_get_dealloc()(pub);
    return err;
}

const char *azt_key_load(apr_pool_t *p, const char *path, azt_key **out)
{
    const char *err = NULL;
    EVP_PKEY *pkey = read_pem(p, path, &err);
    azt_key *key;
    cjose_jwk_t *jwk;

    *out = NULL;
    if (!pkey) {
        return err;
    }
    jwk = jwk_of(p, path, pkey, &err);
    EVP_PKEY_free(pkey);
    if (!jwk) {
        return err;
    }
    key = apr_pcalloc(p, sizeof(*key));
    key->jwk = jwk;
    key->path = path;
    apr_pool_cleanup_register(p, jwk, release_jwk, apr_pool_cleanup_null);
    if ((err = describe(p, key)) != NULL) {
        return err;
    }
    *out = key;
    return NULL;
}

const char *azt_key_generated_path(apr_pool_t *p, const char *dir)
{
    return apr_pstrcat(p, dir, "/" GENERATED_NAME, NULL);
}

/* The directory holding the generated key: ours, and nobody else may
 * put a file of their choosing there. */
static const char *key_dir(apr_pool_t *p, const char *dir, int create)
{
    struct stat st;

    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return apr_psprintf(p, "cannot create the assertion key directory %s: %s; create "
                            "it (mode 700) or choose another with "
                            "AuthTailscaleAssertionKeyDir", dir, strerror(errno));
    }
    if (lstat(dir, &st) != 0) {
        return create ? apr_psprintf(p, "cannot stat %s: %s", dir, strerror(errno)) : "";
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        return apr_psprintf(p, "the assertion key directory %s must be a directory owned by "
                            "uid %ld and writable by no one else (chown %ld %s; chmod 700 %s)",
                            dir, (long)geteuid(), (long)geteuid(), dir, dir);
    }
    return NULL;
}

/* Write a new P-256 key to path: a private temporary file, synced, then
 * renamed, so that a crash never leaves half a key behind. */
static const char *write_new_key(apr_pool_t *p, const char *dir, const char *path)
{
    char *tmp = apr_pstrcat(p, dir, "/." GENERATED_NAME ".XXXXXX", NULL);
    EVP_PKEY *pkey = EVP_EC_gen(SN_X9_62_prime256v1);
    BIO *mem = BIO_new(BIO_s_secmem());
    const char *err = NULL;
    char *pem = NULL;
    long len = 0;
    int fd = -1;

    if (!pkey || !mem || !PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL, NULL)
        || (len = BIO_get_mem_data(mem, &pem)) <= 0) {
        err = "OpenSSL could not generate an EC P-256 key";
    }
    else if ((fd = mkstemp(tmp)) < 0) {
        err = apr_psprintf(p, "cannot create a file in %s: %s", dir, strerror(errno));
    }
    else if (fchmod(fd, 0600) != 0 || write(fd, pem, (size_t)len) != (ssize_t)len
             || fsync(fd) != 0) {
        err = apr_psprintf(p, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && !err) {
        err = apr_psprintf(p, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && !err && rename(tmp, path) != 0) {
        err = apr_psprintf(p, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    if (fd >= 0 && err) {
        unlink(tmp);
    }
    BIO_free(mem);
    EVP_PKEY_free(pkey);
    return err;
}

const char *azt_key_generated(apr_pool_t *p, const char *dir, int create,
                              azt_key **out, int *created)
{
    const char *path = azt_key_generated_path(p, dir);
    const char *err;
    struct stat st;

    *out = NULL;
    *created = 0;
    if ((err = key_dir(p, dir, create)) != NULL) {
        return *err ? err : NULL;      /* "": no directory yet, nothing to read */
    }
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            return apr_psprintf(p, "cannot stat %s: %s", path, strerror(errno));
        }
        if (!create) {
            return NULL;
        }
        if ((err = write_new_key(p, dir, path)) != NULL) {
            return err;
        }
        *created = 1;
    }
    return azt_key_load(p, path, out);
}

/* The generated key as a one-key list, for servers without keys of their
 * own; set by the parent before the children start. */
static apr_array_header_t *generated;

const apr_array_header_t *azt_keys_of(const azt_server_conf *sc)
{
    return sc->assertion_keys ? sc->assertion_keys : generated;
}

static apr_status_t forget_generated(void *unused)
{
    generated = NULL;
    return APR_SUCCESS;
}

int azt_keys_prepare(apr_pool_t *pconf, server_rec *s, int create)
{
    const char *dir, *err;
    server_rec *sv;
    azt_key *key;
    int created;

    generated = NULL;
    for (sv = s; sv && azt_server_conf_get(sv)->assertion_keys; sv = sv->next) {
    }
    if (!azt_conf_assertion_used() || !sv) {
        return OK;
    }
    dir = azt_conf_assertion_key_dir(pconf, s);
    if ((err = azt_key_generated(pconf, dir, create, &key, &created)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "TS01060: AuthTailscaleAssertion needs a signing key for server %s, "
                     "which has no AuthTailscaleAssertionKey, and the generated one is not "
                     "usable: %s", sv->server_hostname, err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (created) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "TS01064: generated the assertion signing key %s (kid %s); it is kept "
                     "for later starts. Backends find it through the tailscale-jwks handler",
                     key->path, key->kid);
    }
    if (key) {
        generated = apr_array_make(pconf, 1, sizeof(azt_key *));
        APR_ARRAY_PUSH(generated, azt_key *) = key;
        apr_pool_cleanup_register(pconf, NULL, forget_generated, apr_pool_cleanup_null);
    }
    return OK;
}

const char *azt_keys_jwks(apr_pool_t *p, const apr_array_header_t *keys)
{
    json_t *set = json_object(), *list = json_array();
    const char *text = NULL;
    char *dumped;
    int i;

    json_object_set_new(set, "keys", list);
    for (i = 0; keys && i < keys->nelts; i++) {
        const azt_key *k = APR_ARRAY_IDX(keys, i, const azt_key *);
        json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                                              "kty", "EC", "crv", "P-256", "x", k->x,
                                              "y", k->y, "use", "sig", "alg", "ES256",
                                              "kid", k->kid));
    }
    dumped = json_dumps(set, JSON_COMPACT);
    if (dumped) {
        text = apr_pstrdup(p, dumped);
        free(dumped);
    }
    json_decref(set);
    return text;
}
