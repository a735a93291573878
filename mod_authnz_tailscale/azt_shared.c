/* mod_authnz_tailscale: answers shared between processes (see azt_shared.h). */
#include <unistd.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <util_mutex.h>
#include <apr_global_mutex.h>
#include <apr_strings.h>

#include "azt_config.h"
#include "azt_stats.h"
#include "azt_entry.h"
#include "azt_shared.h"

APLOG_USE_MODULE(authnz_tailscale);

#define MUTEX_TYPE "authnz-tailscale-cache"
#define CACHE_NAME "authnz_tailscale"   /* the provider's name for our data */
#define DEFAULT_PROVIDER "shmcb"
#define POLL_FIRST apr_time_from_msec(1)
#define POLL_MAX apr_time_from_msec(16)

struct azt_shared {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    apr_global_mutex_t *mutex;      /* NULL when the provider needs none */
    const char *name;
    server_rec *s;
    apr_interval_time_t keep;       /* the longest timeout of any vhost */
};

/* What AuthTailscaleCache said in the configuration being read. */
static struct {
    int set;
    const ap_socache_provider_t *provider;  /* NULL: none */
    ap_socache_instance_t *instance;
    const char *spec;
} conf;

static azt_shared *current;

const char *azt_shared_set_cache(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *colon, *name;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance = NULL;

    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "none")) {
        conf.set = 1;
        conf.provider = NULL;
        conf.spec = "none";
        return NULL;
    }
    colon = ap_strchr_c(arg, ':');
    name = colon ? apr_pstrmemdup(cmd->temp_pool, arg, (apr_size_t)(colon - arg)) : arg;
    provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                  AP_SOCACHE_PROVIDER_VERSION);
    if (!provider) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a loaded mod_socache provider; load its module "
                            "first (LoadModule socache_%s_module, a2enmod socache_%s), or "
                            "write none to keep answers in each process",
                            cmd->cmd->name, name, name, name);
    }
    err = provider->create(&instance, colon ? colon + 1 : NULL, cmd->temp_pool, cmd->pool);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: %s: %s", cmd->cmd->name, arg, err);
    }
    conf.set = 1;
    conf.provider = provider;
    conf.instance = instance;
    conf.spec = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

int azt_shared_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    memset(&conf, 0, sizeof(conf));
    current = NULL;
    return ap_mutex_register(pconf, MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static apr_status_t shared_destroy(void *data)
{
    azt_shared *sh = data;

    if (current == sh) {
        current = NULL;
    }
    sh->provider->destroy(sh->instance, sh->s);
    return APR_SUCCESS;
}

/* A cache that cannot be set up: fatal when configured, else answers stay
 * in each process. */
static int setup_failed(void)
{
    return conf.set ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

int azt_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    struct ap_socache_hints hints;
    azt_shared *sh;
    server_rec *sv;
    apr_status_t rv;
    const char *err;

    current = NULL;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || (conf.set && !conf.provider)) {
        return OK;
    }
    sh = apr_pcalloc(pconf, sizeof(*sh));
    sh->s = s;
    if (conf.set) {
        sh->provider = conf.provider;
        sh->instance = conf.instance;
        sh->name = conf.spec;
    }
    else {
        sh->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, DEFAULT_PROVIDER,
                                          AP_SOCACHE_PROVIDER_VERSION);
        if (!sh->provider) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "TS01070: mod_socache_shmcb is not loaded: each httpd process "
                         "asks tailscaled about a node once per cache timeout on its own. "
                         "To share answers between processes, load it (a2enmod "
                         "socache_shmcb) or set AuthTailscaleCache; AuthTailscaleCache "
                         "none silences this notice.");
            return OK;
        }
        sh->name = DEFAULT_PROVIDER;
        if ((err = sh->provider->create(&sh->instance, NULL, ptemp, pconf))) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "TS01071: the shared identity cache (%s) cannot be created: %s; "
                         "each process asks tailscaled on its own. Set AuthTailscaleCache "
                         "to a provider that works here, or none.", sh->name, err);
            return OK;
        }
    }
    for (sv = s; sv; sv = sv->next) {
        const azt_server_conf *sc = azt_server_conf_get(sv);

        if (azt_conf_ttl(sc) > sh->keep) {
            sh->keep = azt_conf_ttl(sc);
        }
        if (azt_conf_negative_ttl(sc) > sh->keep) {
            sh->keep = azt_conf_negative_ttl(sc);
        }
    }
    if (sh->keep <= 0) {
        return OK;              /* no vhost keeps an answer: nothing to share */
    }
    if (sh->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&sh->mutex, NULL, MUTEX_TYPE, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         "TS01072: cannot create the lock of the shared identity cache "
                         "(AuthTailscaleCache %s); see Mutex %s. %s", sh->name, MUTEX_TYPE,
                         conf.set ? "Not starting." : "Each process asks tailscaled on "
                         "its own.");
            return setup_failed();
        }
    }
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = 64;
    hints.avg_obj_size = 600;
    hints.expiry_interval = sh->keep;
    rv = sh->provider->init(sh->instance, CACHE_NAME, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "TS01073: cannot set up the shared identity cache (AuthTailscaleCache "
                     "%s). %s", sh->name,
                     conf.set ? "Not starting: fix its arguments or write none."
                              : "Each process asks tailscaled on its own.");
        return setup_failed();
    }
    apr_pool_cleanup_register(pconf, sh, shared_destroy, apr_pool_cleanup_null);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "TS01077: tailscaled's answers are shared between processes through "
                 "%s (AuthTailscaleCache), kept for up to %" APR_TIME_T_FMT " ms",
                 sh->name, apr_time_as_msec(sh->keep));
    current = sh;
    return OK;
}

void azt_shared_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!current || !current->mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&current->mutex,
                                     apr_global_mutex_lockfile(current->mutex), pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "TS01074: process %ld cannot attach to the lock of the shared "
                     "identity cache (Mutex %s): it asks tailscaled on its own",
                     (long)getpid(), MUTEX_TYPE);
        current = NULL;
    }
}

azt_shared *azt_shared_get(void)
{
    return current;
}

const char *azt_shared_name(const azt_shared *sh)
{
    return sh->name;
}

/* The provider's id for key: a hash of it in front.  shmcb picks the part
 * of its memory an entry goes to from the id's first byte, and every key
 * starts with the socket path; the hash spreads them (the entry itself
 * names its key, so two keys with one hash are told apart on read).  Hex
 * text, which every provider takes (memcache keys are text). */
#define ID_PREFIX 9
static const unsigned char *cache_id(apr_pool_t *p, const char *key, unsigned int *len)
{
    apr_uint32_t h = 2166136261u;
    const unsigned char *k;

    for (k = (const unsigned char *)key; *k; k++) {
        h = (h ^ *k) * 16777619u;
    }
    *len = (unsigned int)(ID_PREFIX + strlen(key));
    return (const unsigned char *)apr_psprintf(p, "%08x|%s", h, key);
}

static int lock(azt_shared *sh)
{
    return !sh->mutex || apr_global_mutex_lock(sh->mutex) == APR_SUCCESS;
}

static void unlock(azt_shared *sh)
{
    if (sh->mutex) {
        apr_global_mutex_unlock(sh->mutex);
    }
}

/* Absent entries are AZT_ENTRY_BAD with *why NULL. */
static azt_entry_kind read_entry(azt_shared *sh, const char *key, apr_pool_t *p,
                                 apr_pool_t *tmp, azt_outcome *code, tsl_identity **id,
                                 apr_time_t *stamp, apr_uint32_t *pid, const char **why)
{
    /* one more: some providers want room to spare */
    unsigned int len = AZT_ENTRY_MAX + 1;
    unsigned char *buf = apr_palloc(tmp, len);
    unsigned int idlen;
    const unsigned char *cid = cache_id(tmp, key, &idlen);
    apr_status_t rv;
    azt_entry_kind kind;

    *why = NULL;
    *id = NULL;
    if (!lock(sh)) {
        return AZT_ENTRY_BAD;
    }
    rv = sh->provider->retrieve(sh->instance, sh->s, cid, idlen, buf, &len, tmp);
    unlock(sh);
    if (rv != APR_SUCCESS) {
        return AZT_ENTRY_BAD;
    }
    kind = azt_entry_decode(p, key, buf, len, code, id, stamp, pid, why);
    if (kind == AZT_ENTRY_BAD) {
        azt_stats_inc(&azt_stats_get()->shared_unreadable);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, sh->s,
                     "TS01075: shared identity cache (%s): the entry for %s is unusable "
                     "(%s); treated as a miss. If another program writes to this cache, "
                     "give AuthTailscaleCache a cache of its own.", sh->name, key, *why);
    }
    return kind;
}

static void store(azt_shared *sh, const char *key, apr_time_t expiry,
                  const unsigned char *data, apr_size_t len, apr_pool_t *tmp)
{
    apr_status_t rv = APR_EGENERAL;
    unsigned int idlen;
    const unsigned char *cid = cache_id(tmp, key, &idlen);

    if (lock(sh)) {
        rv = sh->provider->store(sh->instance, sh->s, cid, idlen, expiry,
                                 (unsigned char *)data, (unsigned int)len, tmp);
        unlock(sh);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, sh->s,
                     "TS01076: shared identity cache (%s): cannot store the entry for %s "
                     "(%" APR_SIZE_T_FMT " bytes); it stays in this process", sh->name, key,
                     len);
    }
}

int azt_shared_lookup(azt_shared *sh, const char *key, apr_time_t now,
                      apr_interval_time_t wait_max, azt_shared_fresh_fn *fresh,
                      apr_interval_time_t ttl, apr_interval_time_t negative_ttl,
                      apr_pool_t *p, azt_outcome *code, tsl_identity **id,
                      apr_time_t *fetched)
{
    azt_stats *st = azt_stats_get();
    apr_uint32_t self = (apr_uint32_t)getpid(), pid = 0;
    apr_time_t deadline = now + wait_max / 4, stamp = 0;
    apr_interval_time_t nap = POLL_FIRST;
    apr_pool_t *tmp;
    const unsigned char *marker;
    apr_size_t len;
    const char *why;
    int waited = 0, found = 0;

    apr_pool_create(&tmp, p);
    for (;;) {
        azt_entry_kind kind = read_entry(sh, key, p, tmp, code, id, &stamp, &pid, &why);

        if (kind == AZT_ENTRY_ANSWER && fresh(*code, stamp, now, ttl, negative_ttl)) {
            *fetched = stamp;
            found = 1;
            break;
        }
        if (kind != AZT_ENTRY_PENDING || pid == self || now >= stamp || now >= deadline) {
            break;
        }
        /* Another process is asking tailscaled: its answer is due shortly. */
        if (!waited) {
            waited = 1;
            azt_stats_inc(&st->shared_waits);
        }
        apr_sleep(nap < deadline - now ? nap : deadline - now);
        nap = nap * 2 < POLL_MAX ? nap * 2 : POLL_MAX;
        now = apr_time_now();
        apr_pool_clear(tmp);
    }
    if (found) {
        azt_stats_inc(&st->shared_hits);
    }
    else {
        *id = NULL;
        azt_stats_inc(&st->shared_misses);
        marker = azt_entry_encode_pending(tmp, key, now + wait_max, self, &len);
        if (marker) {
            store(sh, key, now + wait_max, marker, len, tmp);
        }
    }
    apr_pool_destroy(tmp);
    return found;
}

void azt_shared_put(azt_shared *sh, const char *key, azt_outcome code,
                    const tsl_identity *id, apr_time_t fetched)
{
    apr_pool_t *tmp;
    const unsigned char *data;
    apr_size_t len;

    apr_pool_create(&tmp, NULL);
    data = azt_entry_encode_answer(tmp, key, code, id, fetched, &len);
    if (data) {
        store(sh, key, fetched + sh->keep, data, len, tmp);
    }
    else {
        azt_shared_release(sh, key);
    }
    apr_pool_destroy(tmp);
}

void azt_shared_release(azt_shared *sh, const char *key)
{
    unsigned char *buf;
    const unsigned char *cid;
    unsigned int len, idlen;
    apr_uint32_t pid = 0;
    apr_time_t stamp;
    tsl_identity *id;
    azt_outcome code;
    const char *why;
    apr_pool_t *tmp;

    if (!lock(sh)) {
        return;
    }
    apr_pool_create(&tmp, NULL);
    len = 64 + (unsigned int)strlen(key);
    buf = apr_palloc(tmp, len);
    cid = cache_id(tmp, key, &idlen);
    /* A marker is short: anything that does not fit is an answer, kept. */
    if (sh->provider->retrieve(sh->instance, sh->s, cid, idlen, buf, &len, tmp) == APR_SUCCESS
        && azt_entry_decode(tmp, key, buf, len, &code, &id, &stamp, &pid, &why)
           == AZT_ENTRY_PENDING
        && pid == (apr_uint32_t)getpid()) {
        sh->provider->remove(sh->instance, sh->s, cid, idlen, tmp);
    }
    unlock(sh);
    apr_pool_destroy(tmp);
}

typedef struct {
    int answers;
    apr_pool_t *tmp;
} count_ctx;

static apr_status_t count_one(ap_socache_instance_t *instance, server_rec *s, void *userctx,
                              const unsigned char *id, unsigned int idlen,
                              const unsigned char *data, unsigned int datalen,
                              apr_pool_t *pool)
{
    count_ctx *cc = userctx;
    const char *key, *why;
    apr_uint32_t pid;
    apr_time_t stamp;
    tsl_identity *ident;
    azt_outcome code;

    if (idlen <= ID_PREFIX) {
        return APR_SUCCESS;
    }
    key = apr_pstrmemdup(cc->tmp, (const char *)id + ID_PREFIX, idlen - ID_PREFIX);
    if (azt_entry_decode(cc->tmp, key, data, datalen, &code, &ident, &stamp, &pid, &why)
        == AZT_ENTRY_ANSWER) {
        cc->answers++;
    }
    apr_pool_clear(cc->tmp);
    return APR_SUCCESS;
}

int azt_shared_entries(azt_shared *sh, apr_pool_t *p)
{
    count_ctx cc = { 0, NULL };
    apr_status_t rv;

    if (!sh->provider->iterate || !lock(sh)) {
        return -1;
    }
    apr_pool_create(&cc.tmp, p);
    rv = sh->provider->iterate(sh->instance, sh->s, &cc, count_one, p);
    unlock(sh);
    apr_pool_destroy(cc.tmp);
    return rv == APR_SUCCESS ? cc.answers : -1;
}
