/* mod_md_tailscale: per-domain run-time state and its status file. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mdt_live.h"
#include "mdt_store.h"
#include "mdt_state.h"

static mdt_runtime *runtime;

static apr_status_t runtime_cleanup(void *data)
{
    if (runtime == data) {
        runtime = NULL;
    }
    return APR_SUCCESS;
}

mdt_runtime *mdt_runtime_get(void)
{
    return runtime;
}

void mdt_runtime_set(apr_pool_t *pconf, mdt_runtime *rt)
{
    runtime = rt;
    apr_pool_cleanup_register(pconf, rt, runtime_cleanup, apr_pool_cleanup_null);
}

mdt_state *mdt_runtime_state(const mdt_runtime *rt, const mdt_domain *d)
{
    int i;

    for (i = 0; rt && i < rt->states->nelts; ++i) {
        mdt_state *st = APR_ARRAY_IDX(rt->states, i, mdt_state *);
        if (st->md == d) {
            return st;
        }
    }
    return NULL;
}

mdt_state *mdt_state_create(apr_pool_t *p, const mdt_domain *d)
{
    mdt_state *st = apr_pcalloc(p, sizeof(*st));

    st->md = d;
    return st;
}

void mdt_state_set_cert(mdt_cert_info *ci, const tsl_cert_pair *pair, const char *gen)
{
    memset(ci, 0, sizeof(*ci));
    if (!pair) {
        return;
    }
    apr_cpystrn(ci->fingerprint, pair->fingerprint ? pair->fingerprint : "",
                sizeof(ci->fingerprint));
    apr_cpystrn(ci->gen, gen ? gen : "", sizeof(ci->gen));
    ci->not_before = pair->not_before;
    ci->not_after = pair->not_after;
}

/* apr_cpystrn that never cuts a UTF-8 character in two: a cut character
 * would make the text invalid UTF-8, which the status JSON cannot hold. */
static void copy_utf8(char *dst, const char *src, apr_size_t size)
{
    apr_size_t n = strlen(src);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            --n;    /* src[n] continues a character: cut before its start */
        }
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void mdt_state_set_error(mdt_state *st, const char *id, const char *kind,
                         const char *text, const char *hint, int http_status)
{
    apr_cpystrn(st->err_id, id ? id : "", sizeof(st->err_id));
    apr_cpystrn(st->err_kind, kind ? kind : "", sizeof(st->err_kind));
    copy_utf8(st->err_text, text ? text : "", sizeof(st->err_text));
    copy_utf8(st->err_hint, hint ? hint : "", sizeof(st->err_hint));
    st->err_status = http_status;
    st->err_at = apr_time_now();
}

void mdt_state_clear_error(mdt_state *st)
{
    st->err_id[0] = st->err_kind[0] = st->err_text[0] = st->err_hint[0] = '\0';
    st->err_status = 0;
    st->err_at = 0;
}

int mdt_state_set_store_err(mdt_state *st, const char *text)
{
    char before[sizeof(st->store_err)];

    apr_cpystrn(before, st->store_err, sizeof(before));
    copy_utf8(st->store_err, text ? text : "", sizeof(st->store_err));
    return strcmp(before, st->store_err) != 0;
}

const char *mdt_state_word(const mdt_state *st, apr_time_t now)
{
    if (st->served_fallback) {
        return "fallback";
    }
    if (st->served.not_after && now >= st->served.not_after) {
        return "expired";
    }
    if (st->cert.fingerprint[0] && strcmp(st->cert.fingerprint, st->served.fingerprint)) {
        return "pending-restart";
    }
    return "valid";
}

static json_t *jtime(apr_pool_t *p, apr_time_t t)
{
    return t > 0 ? json_string(mdt_time_rfc3339(p, t)) : json_null();
}

static json_t *jcert(apr_pool_t *p, const mdt_cert_info *ci)
{
    if (!ci->fingerprint[0]) {
        return json_null();
    }
    return json_pack("{s:s, s:o, s:o, s:s}", "fingerprint", ci->fingerprint,
                     "notBefore", jtime(p, ci->not_before),
                     "notAfter", jtime(p, ci->not_after),
                     "generation", ci->gen);
}

/* tailscaled's CertDomains as a JSON array (null: not known) */
static json_t *cert_domains_json(const mdt_state *st)
{
    json_t *a;
    const char *s = st->cert_domain_list;

    if (!st->cert_domains[0]) {
        return json_null();
    }
    a = json_array();
    while (*s) {
        const char *e = strchr(s, ' ');
        apr_size_t n = e ? (apr_size_t)(e - s) : strlen(s);
        if (n) {
            json_array_append_new(a, json_stringn(s, n));
        }
        s += n + (e != NULL);
    }
    return a;
}

json_t *mdt_state_to_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_state *st)
{
    const mdt_domain *d = st->md;
    apr_time_t now = apr_time_now();
    mdt_window rw = mdt_domain_renew_window(rt->conf, d);
    json_t *o = json_object(), *names = json_array(), *err;
    int i;

    for (i = 0; i < d->names->nelts; ++i) {
        json_array_append_new(names, json_string(APR_ARRAY_IDX(d->names, i, const char *)));
    }
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "request", json_string(d->request));
    json_object_set_new(o, "automatic", json_boolean(d->automatic));
    json_object_set_new(o, "socket", json_string(d->socket ? d->socket : ""));
    json_object_set_new(o, "state", json_string(mdt_state_word(st, now)));
    json_object_set_new(o, "fallback", json_boolean(st->served_fallback));
    json_object_set_new(o, "served", st->served_fallback ? json_null()
                                                         : jcert(p, &st->served));
    json_object_set_new(o, "cert", jcert(p, &st->cert));
    json_object_set_new(o, "renewWindow", json_string(mdt_window_str(p, &rw)));
    json_object_set_new(o, "renewAt", jtime(p, st->renew_at));
    json_object_set_new(o, "lastCheck", jtime(p, st->last_check));
    json_object_set_new(o, "nextCheck", jtime(p, st->next_check));
    json_object_set_new(o, "lastSuccess", jtime(p, st->last_success));
    /* rounded up: the file has whole seconds, and earlier would be too early */
    json_object_set_new(o, "retryAfterUntil", jtime(p, st->retry_after_until
                                                 ? st->retry_after_until
                                                   + APR_USEC_PER_SEC - 1 : 0));
    json_object_set_new(o, "errors", json_integer(st->errors));
    json_object_set_new(o, "obtained", json_integer(st->obtained));
    json_object_set_new(o, "renewals", json_integer(st->renewals));
    if (st->err_kind[0]) {
        err = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "id", st->err_id,
                        "kind", st->err_kind, "text", st->err_text,
                        "hint", st->err_hint, "httpStatus", st->err_status,
                        "at", jtime(p, st->err_at));
    }
    else {
        err = json_null();
    }
    json_object_set_new(o, "lastError", err);
    json_object_set_new(o, "certDomains", cert_domains_json(st));
    json_object_set_new(o, "storeProblem", st->store_err[0]
                        ? json_string(st->store_err) : json_null());
    json_object_set_new(o, "backoffSeconds",
                        json_integer((json_int_t)apr_time_sec(st->backoff)));
    json_object_set_new(o, "restartAskedFor", json_string(st->restart_fp));
    json_object_set_new(o, "backendState", st->backend_state[0]
                        ? json_string(st->backend_state) : json_null());
    json_object_set_new(o, "installedFingerprint", json_string(st->installed_fp));
    json_object_set_new(o, "erroredEventAt", jtime(p, st->errored_event_at));
    json_object_set_new(o, "erroredEventKind", json_string(st->errored_event_kind));
    json_object_set_new(o, "expiringEventAt", jtime(p, st->expiring_event_at));
    json_object_set_new(o, "renewingEventAt", jtime(p, st->renewing_event_at));
    json_object_set_new(o, "renewedEventAt", jtime(p, st->renewed_event_at));
    json_object_set_new(o, "installedEventAt", jtime(p, st->installed_event_at));
    json_object_set_new(o, "helperPid", json_integer(st->pid));
    json_object_set_new(o, "pendingRenewed", json_boolean(st->pending_renewed));
    json_object_set_new(o, "updated", jtime(p, now));
    return o;
}

static int state_index(const mdt_runtime *rt, const mdt_state *st)
{
    int i;

    for (i = 0; i < rt->states->nelts; ++i) {
        if (APR_ARRAY_IDX(rt->states, i, const mdt_state *)->md == st->md) {
            return i;
        }
    }
    return -1;
}

const char *mdt_state_save(apr_pool_t *p, const mdt_runtime *rt, const mdt_state *st,
                           int store_ok)
{
    json_t *o = mdt_state_to_json(p, rt, st);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    const char *err = NULL;

    json_decref(o);
    if (!text) {
        return "cannot encode the status";
    }
    mdt_live_put(rt->live, state_index(rt, st), text);
    /* the job record first: it is what the next helper goes on from (never
     * into a store refused by mdt_store_init) */
    if (store_ok && !(err = mdt_store_domain_init(p, rt->store_dir, st->md))) {
        err = mdt_store_write_atomic(p, mdt_store_job_path(p, rt->store_dir, st->md),
                                     text, strlen(text), 0600);
    }
    if (!err) {
        err = mdt_store_write_atomic(p, mdt_store_status_path(p, rt->store_dir, st->md),
                                     text, strlen(text), 0644);
    }
    free(text);
    return err;
}

json_t *mdt_state_load_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_domain *d)
{
    apr_size_t len;
    char *text = mdt_store_read(p, mdt_store_status_path(p, rt->store_dir, d),
                                1024 * 1024, &len);
    json_error_t jerr;

    if (!text) {
        return NULL;
    }
    return json_loadb(text, len, 0, &jerr);
}

static void copy_str(json_t *o, const char *key, char *buf, apr_size_t size)
{
    json_t *v = json_object_get(o, key);

    if (json_is_string(v)) {
        copy_utf8(buf, json_string_value(v), size);
    }
}

/* The job record; the status file when there is none yet (a store written
 * by an earlier version). */
static json_t *load_job(apr_pool_t *p, const mdt_runtime *rt, const mdt_domain *d)
{
    apr_size_t len;
    char *text = mdt_store_read(p, mdt_store_job_path(p, rt->store_dir, d),
                                1024 * 1024, &len);
    json_error_t jerr;
    json_t *o = text ? json_loadb(text, len, 0, &jerr) : NULL;

    return o ? o : mdt_state_load_json(p, rt, d);
}

void mdt_state_resume(apr_pool_t *p, const mdt_runtime *rt, mdt_state *st)
{
    json_t *o = load_job(p, rt, st->md);
    json_t *v;

    if (!o) {
        return;
    }
    if (json_is_integer(v = json_object_get(o, "obtained"))) {
        st->obtained += (int)json_integer_value(v);
    }
    if (json_is_integer(v = json_object_get(o, "renewals"))) {
        st->renewals += (int)json_integer_value(v);
    }
    copy_str(o, "installedFingerprint", st->installed_fp, sizeof(st->installed_fp));
    copy_str(o, "restartAskedFor", st->restart_fp, sizeof(st->restart_fp));
    /* consecutive failures and the back-off go on across restarts: a
     * graceful restart must not reset them to a fast retry */
    if (!st->errors && json_is_integer(v = json_object_get(o, "errors"))
        && json_integer_value(v) > 0 && json_integer_value(v) < 1000000) {
        st->errors = (int)json_integer_value(v);
    }
    if (!st->backoff && json_is_integer(v = json_object_get(o, "backoffSeconds"))
        && json_integer_value(v) > 0 && json_integer_value(v) < 86400 * 365) {
        st->backoff = apr_time_from_sec((apr_time_t)json_integer_value(v));
    }

    if (json_is_true(json_object_get(o, "pendingRenewed"))) {
        st->pending_renewed = 1;
    }
    if (json_is_object(v = json_object_get(o, "cert"))) {
        copy_str(v, "fingerprint", st->known_fp, sizeof(st->known_fp));
    }
    copy_str(o, "erroredEventKind", st->errored_event_kind, sizeof(st->errored_event_kind));
    if (json_is_string(v = json_object_get(o, "erroredEventAt"))) {
        st->errored_event_at = mdt_time_parse_rfc3339(json_string_value(v));
    }
    if (json_is_string(v = json_object_get(o, "expiringEventAt"))) {
        st->expiring_event_at = mdt_time_parse_rfc3339(json_string_value(v));
    }
    if (json_is_string(v = json_object_get(o, "renewingEventAt"))) {
        st->renewing_event_at = mdt_time_parse_rfc3339(json_string_value(v));
    }
    if (json_is_string(v = json_object_get(o, "renewedEventAt"))) {
        st->renewed_event_at = mdt_time_parse_rfc3339(json_string_value(v));
    }
    if (json_is_string(v = json_object_get(o, "installedEventAt"))) {
        st->installed_event_at = mdt_time_parse_rfc3339(json_string_value(v));
    }
    if (json_is_string(v = json_object_get(o, "retryAfterUntil"))) {
        apr_time_t t = mdt_time_parse_rfc3339(json_string_value(v));
        if (t > st->retry_after_until) {
            st->retry_after_until = t;   /* a 429 seen before a restart */
        }
    }
    if (!st->err_kind[0] && json_is_object(v = json_object_get(o, "lastError"))) {
        json_t *at = json_object_get(v, "at"), *hs = json_object_get(v, "httpStatus");
        copy_str(v, "id", st->err_id, sizeof(st->err_id));
        copy_str(v, "kind", st->err_kind, sizeof(st->err_kind));
        copy_str(v, "text", st->err_text, sizeof(st->err_text));
        copy_str(v, "hint", st->err_hint, sizeof(st->err_hint));
        st->err_status = json_is_integer(hs) ? (int)json_integer_value(hs) : 0;
        st->err_at = json_is_string(at) ? mdt_time_parse_rfc3339(json_string_value(at)) : 0;
    }
    if (json_is_string(v = json_object_get(o, "lastSuccess")) && !st->last_success) {
        st->last_success = mdt_time_parse_rfc3339(json_string_value(v));
    }
    json_decref(o);
}
