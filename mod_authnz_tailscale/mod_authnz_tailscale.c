/* mod_authnz_tailscale: authentication and authorization by tailnet
 * identity, asked of the local tailscaled (LocalAPI whois).
 *
 * This file only wires hooks; see azt_*.c for each concept. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_request.h>
#include <http_protocol.h>
#include <mod_status.h>
#include <unixd.h>
#include <apr_optional_hooks.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "tsl.h"
#include "azt_config.h"
#include "azt_stats.h"
#include "azt_lookup.h"
#include "azt_forwarded.h"
#include "azt_authz.h"
#include "azt_authn.h"
#include "azt_export.h"
#include "azt_status.h"
#include "azt_rules.h"
#include "azt_shared.h"
#include "azt_keys.h"
#include "azt_assertion.h"
#include "azt_jwks.h"

static int azt_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    azt_conf_pre_config();
    return azt_rules_pre_config(pconf, plog, ptemp);
}

static int azt_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    server_rec *sv;
    apr_hash_t *warned = apr_hash_make(ptemp);

    tsl_global_init();
    azt_stats_create(pconf);
    /* In both startup passes: a bad key then fails `apachectl start` itself. */
    if (azt_keys_prepare(pconf, s, 1) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    azt_forwarded_post_config(pconf, s);
    for (sv = s; sv; sv = sv->next) {
        const char *path = azt_conf_socket(azt_server_conf_get(sv)), *why;
        apr_finfo_t fi;

        /* a socket no rule can reach (the main server's default next to a
         * virtual host with its own AuthTailscaleURL) is nobody's concern */
        if (apr_hash_get(warned, path, APR_HASH_KEY_STRING)
            || !azt_rules_server_needs_identity(ptemp, sv)) {
            continue;
        }
        apr_hash_set(warned, path, APR_HASH_KEY_STRING, path);
        if (apr_stat(&fi, path, APR_FINFO_TYPE, ptemp) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sv,
                         "TS01008: tailscaled socket %s does not exist (yet): requests "
                         "needing a tailnet identity get 503 until tailscaled runs. "
                         "Hint: %s", path,
                         azt_conf_socket_hint(ptemp, path, TSL_ERR_SOCKET_MISSING));
        }
        /* the parent may reach it, but the children ask */
        else if ((why = tsl_socket_access_problem(ptemp, path, ap_unixd_config.user_id,
                                                  ap_unixd_config.group_id))) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sv,
                         "TS01082: httpd's children cannot open tailscaled's socket: %s; "
                         "requests needing a tailnet identity get 503", why);
        }
    }
    return OK;
}

/* apache2 -t and every start: certificates come from the socket
 * MDCertificateAuthority names while identities are asked of the default
 * one - certificates work and every protected URL answers 503. */
static int azt_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    const char *md = azt_rules_md_socket();
    server_rec *sv;

    (void)pconf;
    (void)plog;
    for (sv = s; md && sv; sv = sv->next) {
        const azt_server_conf *sc = azt_server_conf_get(sv);

        if (!sc->socket_path && !tsl_socket_same(azt_conf_socket(sc), md)
            && azt_rules_server_needs_identity(ptemp, sv)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sv,
                         "TS01081: %s asks tailscaled for identities at the default "
                         "socket %s (AuthTailscaleURL is not set), but "
                         "MDCertificateAuthority names %s: if tailscaled listens there, "
                         "add AuthTailscaleURL %s next to it",
                         sv->is_virtual ? apr_psprintf(ptemp, "virtual host %s:%u",
                                                       sv->defn_name, sv->defn_line_number)
                                        : "the main server",
                         azt_conf_socket(sc), md, md);
            break;      /* one line says it */
        }
    }
    return OK;
}

static void azt_test_config(apr_pool_t *pconf, server_rec *s)
{
    azt_keys_prepare(pconf, s, 0);
}

static void azt_child_init(apr_pool_t *pchild, server_rec *s)
{
    azt_shared_child_init(pchild, s);
    azt_lookup_child_init(pchild, s);
    azt_assertion_child_init(pchild);
}

static void register_hooks(apr_pool_t *p)
{
    azt_authz_register(p);
    ap_hook_pre_config(azt_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(azt_shared_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(azt_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(azt_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(azt_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(azt_shared_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(azt_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_remoteip and everything else reads headers: first what
     * the lookup keeps as it arrived (serve's Funnel marker is one of the
     * headers then stripped). */
    ap_hook_post_read_request(azt_lookup_post_read, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(azt_export_strip, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_check_access(azt_access_check, NULL, NULL, APR_HOOK_FIRST,
                         AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_authn(azt_authn_check, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(azt_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(azt_export_fixups, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(azt_jwks_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, azt_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(authnz_tailscale) = {
    STANDARD20_MODULE_STUFF,
    azt_create_dir_conf,
    azt_merge_dir_conf,
    azt_create_server_conf,
    azt_merge_server_conf,
    azt_cmds,
    register_hooks
};
