/* mod_authnz_tailscale: signed identity assertions (see azt_assertion.h). */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <jansson.h>
#include <cjose/header.h>
#include <cjose/jws.h>

#include "tsl_identity.h"
#include "tsl_json.h"
#include "azt_config.h"
#include "azt_keys.h"
#include "azt_assertion.h"

APLOG_USE_MODULE(authnz_tailscale);

/* Signed tokens this process remembers: a slot per hash of what the token
 * says (without its times); a colliding token replaces the older one. */
#define CACHE_SLOTS 256

typedef struct {
    char *said;                 /* key_of(): what the token says; malloc'd */
    char *token;                /* malloc'd */
    apr_time_t fresh_until;     /* reused before this: more than half its life left */
} cached_token;

static cached_token cache[CACHE_SLOTS];
static apr_thread_mutex_t *cache_lock;

static apr_status_t cache_clear(void *unused)
{
    int i;

    for (i = 0; i < CACHE_SLOTS; i++) {
        free(cache[i].said);
        free(cache[i].token);
        cache[i].said = cache[i].token = NULL;
    }
    cache_lock = NULL;
    return APR_SUCCESS;
}

void azt_assertion_child_init(apr_pool_t *pchild)
{
    if (apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        cache_lock = NULL;      /* no reuse: every token is signed */
        return;
    }
    apr_pool_cleanup_register(pchild, NULL, cache_clear, apr_pool_cleanup_null);
}

static const char *cache_get(apr_pool_t *p, unsigned slot, const char *said, apr_time_t now)
{
    const char *token = NULL;

    if (!cache_lock || apr_thread_mutex_lock(cache_lock) != APR_SUCCESS) {
        return NULL;
    }
    if (cache[slot].said && now < cache[slot].fresh_until && !strcmp(cache[slot].said, said)) {
        token = apr_pstrdup(p, cache[slot].token);
    }
    apr_thread_mutex_unlock(cache_lock);
    return token;
}

static void cache_put(unsigned slot, const char *said, const char *token, apr_time_t fresh_until)
{
    char *s, *t;

    if (!cache_lock) {
        return;
    }
    s = strdup(said);
    t = strdup(token);
    if (s && t && apr_thread_mutex_lock(cache_lock) == APR_SUCCESS) {
        free(cache[slot].said);
        free(cache[slot].token);
        cache[slot].said = s;
        cache[slot].token = t;
        cache[slot].fresh_until = fresh_until;
        apr_thread_mutex_unlock(cache_lock);
        return;
    }
    free(s);
    free(t);
}

/* What a token says, besides its times: gathered once per request, read by
 * the cache key and by the claims alike. */
typedef struct {
    const tsl_identity *id;
    const char *iss, *aud;
    const char *caps;           /* accepted capabilities as JSON, or NULL */
    const char *service;        /* or NULL */
    int via_proxy;
} claim_inputs;

static void push(apr_array_header_t *a, const char *s)
{
    APR_ARRAY_PUSH(a, const char *) = s ? s : "";
}

static void push_list(apr_array_header_t *a, const apr_array_header_t *list)
{
    push(a, apr_itoa(a->pool, list ? list->nelts : 0));
    if (list) {
        apr_array_cat(a, list);
    }
}

/* The cache key: the signing key, the lifetime and every input of
 * claims_of(), joined by US (0x1f), a byte no identity string holds
 * (tsl_identity_clean drops control characters) and no compact JSON or
 * URL contains. Far cheaper than building the claims themselves. */
static const char *key_of(apr_pool_t *p, const azt_key *key, int lifetime,
                          const claim_inputs *in)
{
    const tsl_identity *id = in->id;
    apr_array_header_t *a = apr_array_make(p, 32, sizeof(const char *));

    push(a, key->kid);
    push(a, apr_itoa(p, lifetime));
    push(a, in->iss);
    push(a, in->aud);
    push(a, in->caps);
    push(a, in->service);
    push(a, in->via_proxy ? "1" : "0");
    push(a, id->is_tagged ? "t" : "u");
    push(a, apr_off_t_toa(p, id->user_id));
    push(a, id->login_name);
    push(a, id->display_name);
    push(a, id->profile_pic_url);
    push(a, apr_off_t_toa(p, id->node_id));
    push(a, id->node_stable_id);
    push(a, id->node_name);
    push(a, id->tailnet);
    push_list(a, id->addresses);
    push_list(a, id->tags);
    push_list(a, id->groups);
    return apr_array_pstrcat(p, a, '\x1f');
}

/* Adds v (NULL: the value could not be made, so the claims are incomplete). */
static void put(json_t *claims, const char *name, json_t *v, int *ok)
{
    if (!v || json_object_set_new(claims, name, v) != 0) {
        *ok = 0;
    }
}

static void put_nonempty(json_t *claims, const char *name, const char *v, int *ok)
{
    if (v && *v) {
        put(claims, name, json_string(v), ok);
    }
}

/* The claims, in tsidp's names where it has them, from exactly what
 * key_of() covers. sub never names two principals: users and tagged nodes
 * are numbered apart and prefixed apart. */
static json_t *claims_of(apr_pool_t *p, const claim_inputs *in, apr_int64_t iat, int lifetime)
{
    const tsl_identity *id = in->id;
    json_t *c = json_object();
    int ok = c != NULL;

    put(c, "iss", json_string(in->iss), &ok);
    put(c, "aud", json_string(in->aud), &ok);
    put(c, "iat", json_integer(iat), &ok);
    put(c, "nbf", json_integer(iat), &ok);
    put(c, "exp", json_integer(iat + lifetime), &ok);
    if (id->is_tagged) {
        put(c, "sub", json_string(apr_pstrcat(p, "node:", id->node_stable_id, NULL)), &ok);
    }
    else {
        const char *at = strrchr(id->login_name, '@');

        put(c, "sub", json_string(apr_psprintf(p, "user:%" APR_INT64_T_FMT, id->user_id)), &ok);
        put(c, "email", json_string(id->login_name), &ok);
        put(c, "preferred_username",
            json_string(at ? apr_pstrmemdup(p, id->login_name, at - id->login_name)
                           : id->login_name), &ok);
        put_nonempty(c, "name", id->display_name, &ok);
        put_nonempty(c, "picture", id->profile_pic_url, &ok);
        put(c, "uid", json_integer(id->user_id), &ok);
    }
    put(c, "node", json_string(id->node_name), &ok);
    put(c, "nid", json_integer(id->node_id), &ok);
    put_nonempty(c, "tailnet", id->tailnet, &ok);
    put(c, "addresses", tsl_json_string_array(id->addresses), &ok);
    if (id->tags->nelts) {
        put(c, "tags", tsl_json_string_array(id->tags), &ok);
    }
    if (id->groups->nelts) {
        put(c, "groups", tsl_json_string_array(id->groups), &ok);
    }
    if (in->caps) {
        put(c, "caps", json_loads(in->caps, 0, NULL), &ok);
    }
    put_nonempty(c, "service", in->service, &ok);
    put(c, "via_proxy", json_boolean(in->via_proxy), &ok);
    if (!ok) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* Compact JSON of v in p (jansson writes into our buffer). */
static char *dump(apr_pool_t *p, const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    char *out;

    if (n == 0) {
        return NULL;
    }
    out = apr_palloc(p, n + 1);
    if (json_dumpb(v, out, n, JSON_COMPACT) != n) {
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static const char *sign(request_rec *r, const azt_key *key, const char *payload)
{
    cjose_header_t *hdr = cjose_header_new(NULL);
    cjose_jws_t *jws = NULL;
    const char *compact = NULL, *token = NULL;
    cjose_err err;

    err.message = "out of memory";
    if (hdr && cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, &err)
        && cjose_header_set(hdr, "typ", "JWT", &err)
        && cjose_header_set(hdr, CJOSE_HDR_KID, key->kid, &err)
        && (jws = cjose_jws_sign(key->jwk, hdr, (const uint8_t *)payload, strlen(payload),
                                 &err)) != NULL
        && cjose_jws_export(jws, &compact, &err)) {
        token = apr_pstrdup(r->pool, compact);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01061: cannot sign the identity assertion with %s: %s; the "
                      "request goes on without " AZT_ASSERTION_HEADER,
                      key->path, err.message);
    }
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    return token;
}

const char *azt_assertion_token(request_rec *r, const tsl_identity *id, int via_proxy,
                                const char *service)
{
    const azt_dir_conf *dc = azt_dir_conf_get(r);
    const apr_array_header_t *keys = azt_keys_of(azt_server_conf_get(r->server));
    const azt_key *key;
    int lifetime = azt_conf_assertion_lifetime(dc);
    apr_time_t now = apr_time_now();
    apr_int64_t iat = apr_time_sec(now);
    claim_inputs in;
    json_t *claims;
    const char *said, *payload, *token;
    apr_ssize_t len = APR_HASH_KEY_STRING;
    unsigned slot;

    if (!keys || !keys->nelts) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01062: AuthTailscaleAssertion is on for %s but server %s has no "
                      "signing key: add AuthTailscaleAssertionKey; the request goes on "
                      "without " AZT_ASSERTION_HEADER, r->uri, r->server->server_hostname);
        return NULL;
    }
    key = APR_ARRAY_IDX(keys, 0, const azt_key *);
    in.id = id;
    in.iss = azt_conf_assertion_issuer(r);
    in.aud = azt_conf_assertion_audience(r, dc);
    in.caps = dc->accept_caps && id->capmap_json
              ? tsl_identity_caps_filtered(r->pool, id, dc->accept_caps) : NULL;
    in.service = service;
    in.via_proxy = via_proxy;
    said = key_of(r->pool, key, lifetime, &in);
    slot = apr_hashfunc_default(said, &len) % CACHE_SLOTS;
    if ((token = cache_get(r->pool, slot, said, now)) != NULL) {
        return token;
    }
    claims = claims_of(r->pool, &in, iat, lifetime);
    payload = claims ? dump(r->pool, claims) : NULL;
    json_decref(claims);
    if (!payload) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01063: cannot put the identity of %s into an assertion (a value "
                      "is not valid UTF-8, or out of memory); the request goes on "
                      "without " AZT_ASSERTION_HEADER, id->node_name);
        return NULL;
    }
    token = sign(r, key, payload);
    if (token) {
        cache_put(slot, said, token, apr_time_from_sec(iat) + apr_time_from_sec(lifetime) / 2);
    }
    return token;
}
