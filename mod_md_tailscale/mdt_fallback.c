/* mod_md_tailscale: self-signed fallback certificate (OpenSSL). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* memfd_create */
#endif
#include <errno.h>
#include <unistd.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <apr_strings.h>
#include "tsl_cert.h"
#include "mdt_store.h"
#include "mdt_fallback.h"

#define VALIDITY_SECS   (7 * 86400L)
#define REUSE_MARGIN    apr_time_from_sec(86400)

static char *bio_string(apr_pool_t *p, BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);

    return n > 0 ? apr_pstrmemdup(p, data, (apr_size_t)n) : NULL;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) {
        return 0;
    }
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Generate key and certificate PEMs; returns an error text or NULL. */
static const char *generate(apr_pool_t *p, const mdt_domain *d, char **key_pem,
                            char **cert_pem)
{
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    BIGNUM *bn = NULL;
    BIO *kb = NULL, *cb = NULL;
    const char *err = NULL;
    const char *san = "";
    const char *cn = d->name[0] == '*' ? d->name + 2 : d->name;
    int i;

    for (i = 0; i < d->names->nelts; ++i) {
        san = apr_psprintf(p, "%s%sDNS:%s", san, i ? "," : "",
                           APR_ARRAY_IDX(d->names, i, const char *));
    }
    if (!(pkey = EVP_EC_gen("P-256"))) {
        err = "cannot generate an EC P-256 key";
        goto out;
    }
    if (!(x = X509_new()) || !X509_set_version(x, 2)) {
        err = "cannot create a certificate";
        goto out;
    }
    if (!(bn = BN_new()) || !BN_rand(bn, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
        || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        err = "cannot set a serial number";
        goto out;
    }
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -60)
        || !X509_gmtime_adj(X509_getm_notAfter(x), VALIDITY_SECS)) {
        err = "cannot set the validity";
        goto out;
    }
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                       (const unsigned char *)"mod_md_tailscale fallback",
                                       -1, -1, 0)
        || !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey)) {
        err = "cannot set the names";
        goto out;
    }
    if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE")
        || !add_ext(x, NID_key_usage, "critical,digitalSignature")
        || !add_ext(x, NID_ext_key_usage, "serverAuth")
        || !add_ext(x, NID_subject_alt_name, san)) {
        err = "cannot add the extensions";
        goto out;
    }
    if (!X509_sign(x, pkey, EVP_sha256())) {
        err = "cannot sign the certificate";
        goto out;
    }
    kb = BIO_new(BIO_s_mem());
    cb = BIO_new(BIO_s_mem());
    if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL)
        || !PEM_write_bio_X509(cb, x)
        || !(*key_pem = bio_string(p, kb)) || !(*cert_pem = bio_string(p, cb))) {
        err = "cannot encode key and certificate";
        goto out;
    }
out:
    BIO_free(kb);
    BIO_free(cb);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return err;
}

const char *mdt_fallback_ensure(apr_pool_t *p, const char *store_dir,
                                const mdt_domain *d, const char **key_file,
                                const char **chain_file)
{
    const char *fdir = mdt_store_fallback_dir(p, store_dir, d);
    const char *kf = apr_pstrcat(p, fdir, "/privkey.pem", NULL);
    const char *cf = apr_pstrcat(p, fdir, "/pubcert.pem", NULL);
    tsl_cert_pair *pair = NULL;
    tsl_result res;
    char *key_pem = NULL, *cert_pem = NULL;
    const char *err;

    *key_file = kf;
    *chain_file = cf;
    tsl_result_init(&res);
    if (tsl_cert_pair_load(p, kf, cf, &pair, &res) == TSL_OK
        && !mdt_store_pair_usable(p, pair, d, apr_time_now() + REUSE_MARGIN)) {
        return NULL;
    }
    if ((err = generate(p, d, &key_pem, &cert_pem))) {
        return apr_psprintf(p, "fallback certificate for %s: %s", d->name, err);
    }
    if (access(fdir, F_OK) != 0 && mkdir(fdir, 0700) != 0 && errno != EEXIST) {
        return apr_psprintf(p, "cannot create %s: %s", fdir, strerror(errno));
    }
    /* key first: a crash in between leaves a mismatched pair, which the
     * check above rejects next time, so it is simply generated again */
    if ((err = mdt_store_write_atomic(p, kf, key_pem, strlen(key_pem), 0600))
        || (err = mdt_store_write_atomic(p, cf, cert_pem, strlen(cert_pem), 0644))) {
        return err;
    }
    return NULL;
}

/* One memory file holding data; "/proc/self/fd/N" names it for mod_ssl. */
static const char *memory_file(apr_pool_t *pconf, const char *name, const char *data,
                               int *fd_out, const char **path)
{
#if defined(__linux__) && defined(MFD_CLOEXEC)
    int fd = memfd_create(name, MFD_CLOEXEC);
    apr_size_t len = strlen(data), off = 0;

    if (fd < 0) {
        return apr_psprintf(pconf, "memfd_create: %s", strerror(errno));
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            return apr_psprintf(pconf, "cannot write to memory: %s", strerror(e));
        }
        off += (apr_size_t)n;
    }
    *fd_out = fd;
    *path = apr_psprintf(pconf, "/proc/self/fd/%d", fd);
    return NULL;
#else
    (void)name; (void)data; (void)fd_out; (void)path;
    return "no memory files on this system";
#endif
}

static apr_status_t close_memory(void *data)
{
    mdt_fallback_memory *m = data;

    mdt_fallback_memory_close(m);
    return APR_SUCCESS;
}

void mdt_fallback_memory_close(mdt_fallback_memory *m)
{
    if (m->key_fd >= 0) {
        close(m->key_fd);
        m->key_fd = -1;
    }
    if (m->chain_fd >= 0) {
        close(m->chain_fd);
        m->chain_fd = -1;
    }
}

const char *mdt_fallback_in_memory(apr_pool_t *pconf, const mdt_domain *d,
                                   mdt_fallback_memory **out)
{
    mdt_fallback_memory *m = apr_pcalloc(pconf, sizeof(*m));
    char *key_pem = NULL, *cert_pem = NULL;
    const char *err;

    m->key_fd = m->chain_fd = -1;
    apr_pool_cleanup_register(pconf, m, close_memory, apr_pool_cleanup_null);
    if ((err = generate(pconf, d, &key_pem, &cert_pem))
        || (err = memory_file(pconf, "mdt-fallback-key", key_pem, &m->key_fd,
                              &m->key_file))
        || (err = memory_file(pconf, "mdt-fallback-chain", cert_pem, &m->chain_fd,
                              &m->chain_file))) {
        mdt_fallback_memory_close(m);
        return apr_psprintf(pconf, "fallback certificate for %s in memory: %s",
                            d->name, err);
    }
    *out = m;
    return NULL;
}
