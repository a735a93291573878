/* mod_md_tailscale: checking a domain against tailscaled (see mdt_driver.h). */
#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#include "tsl_cert.h"
#include "tsl_status.h"
#include "mdt_errors.h"
#include "mdt_events.h"
#include "mdt_store.h"
#include "mdt_driver.h"

APLOG_USE_MODULE(md_tailscale);

apr_interval_time_t mdt_driver_window(const mdt_runtime *rt, const mdt_state *st,
                                      apr_time_t not_before, apr_time_t not_after)
{
    mdt_window w = mdt_domain_renew_window(rt->conf, st->md);
    apr_interval_time_t life = not_after - not_before;
    apr_interval_time_t len = mdt_window_length(&w, life);

    if (life > 0 && len > (life / 4) * 3) {
        len = (life / 4) * 3;   /* a window as long as the lifetime never ends */
    }
    return len;
}

void mdt_driver_log_error(server_rec *s, const mdt_state *st, apr_pool_t *p,
                          const char *what, apr_interval_time_t retry_in)
{
    const char *allowed = "";

    if (st->cert_domains[0] && (!strcmp(st->err_kind, "invalid-domain")
                                || !strcmp(st->err_kind, MDT_KIND_NOT_CERT_DOMAIN)
                                || !strcmp(st->err_kind, "https-disabled"))) {
        allowed = apr_psprintf(p, " tailscaled's CertDomains: %s.", st->cert_domains);
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                 "%s: MDomain %s: %s from tailscaled at %s failed: %s%s.%s "
                 "Hint: %s. %s%s", st->err_id, st->md->name, what, st->md->socket,
                 st->err_text,
                 st->err_status ? apr_psprintf(p, " (HTTP %d)", st->err_status) : "",
                 allowed, st->err_hint,
                 st->served_fallback ? "Serving the fallback certificate (503) until "
                                       "then; "
                                     : "The current certificate stays in use; ",
                 retry_in > 0 ? apr_psprintf(p, "next attempt in %s",
                                             mdt_duration_str(p, retry_in))
                              : "will retry");
}

static void fail(mdt_state *st, const mdt_error_info *ei, const char *text, int status)
{
    mdt_state_set_error(st, ei->id, ei->kind, text, ei->hint, status);
    st->errors++;
}

int mdt_driver_store_check(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                           const char *problem)
{
    if (!mdt_state_set_store_err(st, problem)) {
        return 0;   /* logged when it appeared */
    }
    if (problem) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02105: MDomain %s: the "
                     "certificate store %s cannot take a new certificate: %s. httpd "
                     "goes on with the certificate it serves; renewals are stored "
                     "once this is fixed", st->md->name, rt->store_dir, problem);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02106: MDomain %s: the "
                     "certificate store %s is usable again", st->md->name,
                     rt->store_dir);
    }
    return 1;
}

/* After a failure: back off, never sooner than Retry-After.  now is when
 * the attempt ended (the answer arrived): Retry-After counts from the
 * answer, and a slow answer must not eat into the back-off. */
static apr_interval_time_t schedule_retry(const mdt_runtime *rt, mdt_state *st,
                                          apr_time_t now, long retry_after)
{
    apr_interval_time_t min = mdt_config_retry_min(rt->conf);
    apr_interval_time_t max = mdt_config_retry_max(rt->conf);
    apr_interval_time_t wait;

    st->backoff = st->backoff <= 0 ? min : st->backoff * 2;
    if (st->backoff > max) {
        st->backoff = max;
    }
    wait = st->backoff;
    if (retry_after > 0) {
        apr_interval_time_t ra = apr_time_from_sec(retry_after);
        st->retry_after_until = now + ra;
        if (wait < ra) {
            wait = ra;
        }
    }
    st->next_check = now + wait;
    return wait;
}

/* After a success: poll at the check interval, or at the renew window. */
static void schedule_ok(const mdt_runtime *rt, mdt_state *st, apr_time_t now,
                        const tsl_cert_pair *pair)
{
    apr_time_t next = now + mdt_config_check_interval(rt->conf);
    apr_interval_time_t w = mdt_driver_window(rt, st, pair->not_before, pair->not_after);

    st->renew_at = pair->not_after - w;
    if (st->renew_at < next) {
        next = st->renew_at;
    }
    if (next < now + apr_time_from_sec(1)) {
        next = now + apr_time_from_sec(1);
    }
    st->next_check = next;
    st->backoff = 0;
    st->errors = 0;
    mdt_state_clear_error(st);
}

/* log: 0 after a failed attempt, whose own line (mdt_driver_log_error)
 * already lists the CertDomains recorded here: one line per attempt. */
static int probe(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                 tsl_client *client, apr_pool_t *ptemp, int log)
{
    tsl_status *ts = NULL;
    tsl_result res;
    mdt_error_info ei;

    tsl_result_init(&res);
    if (tsl_status_get(client, ptemp, &ts, &res) != TSL_OK || !ts) {
        return 1;   /* the certificate request will tell what is wrong */
    }
    apr_cpystrn(st->cert_domains, tsl_status_cert_domains_str(ptemp, ts),
                sizeof(st->cert_domains));
    apr_cpystrn(st->cert_domain_list, ts->cert_domains
                ? apr_array_pstrcat(ptemp, ts->cert_domains, ' ') : "",
                sizeof(st->cert_domain_list));
    apr_cpystrn(st->backend_state, ts->backend_state ? ts->backend_state : "",
                sizeof(st->backend_state));
    if (!log) {
        return ts->backend_state && strcmp(ts->backend_state, "Running") ? 1
               : tsl_status_cert_domain_ok(ts, st->md->request);
    }
    if (ts->backend_state && strcmp(ts->backend_state, "Running")) {
        mdt_error_for_kind(MDT_KIND_NOT_RUNNING, &ei);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: MDomain %s: tailscaled at "
                     "%s is in state %s, not Running; certificates can only be "
                     "obtained once it is connected. Hint: %s", ei.id, st->md->name,
                     st->md->socket, ts->backend_state, ei.hint);
        return 1;
    }
    if (!tsl_status_cert_domain_ok(ts, st->md->request)) {
        const char *text;

        mdt_error_for_kind(MDT_KIND_NOT_CERT_DOMAIN, &ei);
        if (ts->cert_domains->nelts == 0) {
            text = apr_psprintf(ptemp, "tailscaled offers no certificate names at all "
                                "(HTTPS certificates are not enabled for the tailnet), "
                                "so %s cannot be obtained", st->md->request);
        }
        else {
            text = apr_psprintf(ptemp, "%s is not one of tailscaled's CertDomains %s",
                                st->md->request, st->cert_domains);
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "%s: MDomain %s: %s (asked %s). "
                     "Hint: %s", ei.id, st->md->name, text, st->md->socket, ei.hint);
        return 0;
    }
    return 1;
}

int mdt_driver_probe(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                     tsl_client *client, apr_pool_t *ptemp)
{
    return probe(s, rt, st, client, ptemp, 1);
}

/* startup: the parent's first start, bounded by MDTailscaleStartupWait. */
static mdt_check_outcome check(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                               tsl_client *client, apr_pool_t *ptemp,
                               apr_interval_time_t timeout, int startup)
{
    const mdt_domain *d = st->md;
    apr_time_t now = apr_time_now();
    apr_interval_time_t min_validity = 0, wait;
    mdt_stored *act, *saved = NULL;
    tsl_cert_pair *pair = NULL;
    tsl_result res;
    mdt_error_info ei;
    const char *why = NULL, *bad, *note = NULL;
    int in_window = 0;

    st->last_check = now;
    act = mdt_store_load(ptemp, rt->store_dir, d, now, &why);
    mdt_state_set_cert(&st->cert, act ? act->pair : NULL, act ? act->gen : NULL);
    if (act) {
        apr_interval_time_t w = mdt_driver_window(rt, st, act->pair->not_before,
                                                  act->pair->not_after);
        st->renew_at = act->pair->not_after - w;
        if (now >= st->renew_at) {
            in_window = 1;
            /* tailscaled renews synchronously when the cached certificate
             * expires sooner than min_validity */
            min_validity = w + apr_time_from_sec(1);
        }
    }
    else {
        st->renew_at = 0;
    }

    if (in_window && mdt_event_fire(s, rt, st, "renewing", ptemp) != 0) {
        /* as in mod_md: MDMessageCmd renewing <domain> exiting non-zero
         * postpones the renewal */
        st->next_check = now + mdt_config_retry_max(rt->conf);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02085: MDomain %s: the "
                     "renewal is postponed to the next check (%s) because "
                     "MDMessageCmd renewing %s did not exit 0",
                     d->name, mdt_time_rfc3339(ptemp, st->next_check), d->name);
        return MDT_CHECK_POSTPONED;
    }
    tsl_result_init(&res);
    if (tsl_cert_fetch(client, ptemp, d->request, min_validity, timeout, &pair, &res)
        != TSL_OK || !pair) {
        /* the answer's time, before the probe below asks again */
        apr_time_t answered = apr_time_now();

        if (startup && res.code == TSL_ERR_TIMEOUT) {
            /* not a failure: TS02021 says the fallback is served while the
             * helper asks again, with MDTailscaleRequestTimeout */
            return MDT_CHECK_WAITED;
        }
        mdt_error_classify(&res, &ei);
        fail(st, &ei, res.text, res.http_status);
        if (!strcmp(ei.kind, "invalid-domain") || !strcmp(ei.kind, "https-disabled")
            || !strcmp(ei.kind, "no-netmap")) {
            (void)probe(s, rt, st, client, ptemp, 0);
        }
        wait = schedule_retry(rt, st, answered, res.code == TSL_ERR_RATE_LIMITED
                                                ? res.retry_after : -1);
        mdt_driver_log_error(s, st, ptemp, act ? (in_window ? "renewing the certificate"
                                                            : "checking the certificate")
                                               : "obtaining the certificate", wait);
        return MDT_CHECK_FAILED;
    }
    st->retry_after_until = 0;

    if ((bad = mdt_store_pair_usable(ptemp, pair, d, apr_time_now()))) {
        mdt_error_for_kind(MDT_KIND_WRONG_NAMES, &ei);
        fail(st, &ei, bad, 200);
        wait = schedule_retry(rt, st, apr_time_now(), -1);
        mdt_driver_log_error(s, st, ptemp, "checking the certificate", wait);
        return MDT_CHECK_FAILED;
    }

    if (act && (!strcmp(pair->fingerprint, act->pair->fingerprint)
                || pair->not_after <= act->pair->not_after)) {
        /* nothing newer */
        if (in_window) {
            mdt_error_for_kind(MDT_KIND_NOT_RENEWED, &ei);
            fail(st, &ei, apr_psprintf(ptemp, "the certificate expires %s and is "
                                       "inside the renew window, but tailscaled "
                                       "returned it again",
                                       mdt_time_rfc3339(ptemp, act->pair->not_after)),
                 200);
            wait = schedule_retry(rt, st, apr_time_now(), -1);
            mdt_driver_log_error(s, st, ptemp, "renewing the certificate", wait);
            return MDT_CHECK_FAILED;
        }
        st->last_success = now;
        schedule_ok(rt, st, now, act->pair);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "TS02030: MDomain %s: tailscaled "
                     "has the current certificate (valid until %s); next check %s",
                     d->name, mdt_time_rfc3339(ptemp, act->pair->not_after),
                     mdt_time_rfc3339(ptemp, st->next_check));
        return MDT_CHECK_SAME;
    }

    if ((bad = mdt_store_save(ptemp, rt->store_dir, d, pair, &saved, &note))) {
        mdt_error_for_kind(MDT_KIND_STORE, &ei);
        fail(st, &ei, bad, 0);
        wait = schedule_retry(rt, st, apr_time_now(), -1);
        mdt_driver_log_error(s, st, ptemp, "storing the certificate", wait);
        return MDT_CHECK_FAILED;
    }
    if (note) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02104: MDomain %s: %s",
                     d->name, note);
    }
    mdt_store_prune(ptemp, rt->store_dir, d, st->served.gen[0] ? st->served.gen : NULL);
    mdt_state_set_cert(&st->cert, pair, saved->gen);
    st->obtained++;
    if (act || (!st->served_fallback && st->served.fingerprint[0])) {
        st->renewals++;
    }
    st->last_success = now;
    schedule_ok(rt, st, now, pair);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02031: MDomain %s: new certificate "
                 "from tailscaled stored (valid %s to %s, SHA-256 %s)%s", d->name,
                 mdt_time_rfc3339(ptemp, pair->not_before),
                 mdt_time_rfc3339(ptemp, pair->not_after), pair->fingerprint,
                 act ? apr_psprintf(ptemp, ", replacing the one valid until %s",
                                    mdt_time_rfc3339(ptemp, act->pair->not_after))
                     : "");
    return MDT_CHECK_NEW;
}

mdt_check_outcome mdt_driver_check(server_rec *s, const mdt_runtime *rt,
                                   mdt_state *st, tsl_client *client,
                                   apr_pool_t *ptemp, apr_interval_time_t timeout)
{
    return check(s, rt, st, client, ptemp, timeout, 0);
}

mdt_check_outcome mdt_driver_check_startup(server_rec *s, const mdt_runtime *rt,
                                           mdt_state *st, tsl_client *client,
                                           apr_pool_t *ptemp, apr_interval_time_t wait)
{
    return check(s, rt, st, client, ptemp, wait, 1);
}
