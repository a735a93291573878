/* mod_md_tailscale: ts.net certificates from tailscaled for mod_ssl,
 * configured with mod_md's syntax.  This file only wires the hooks; each
 * concern lives in its own mdt_*.c file. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_cfgtree.h>
#include <mpm_common.h>
#include <mod_ssl.h>
#include <mod_status.h>
#include "mdt_auto.h"
#include "mdt_claim.h"
#include "mdt_config.h"
#include "mdt_helper.h"
#include "mdt_ssl.h"
#include "mdt_status.h"

static int mdt_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)mdt_claim_tree(ptemp, ap_conftree);
    mdt_claim_refuse_comments(pconf, ap_conftree);
    return OK;
}

static int mdt_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    mdt_config *c = mdt_config_get(s);
    const char *err = mdt_auto_add_domains(pconf, ap_conftree, c);

    if (!err) {
        err = mdt_config_finish(pconf, s, c);
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "%s", err);
        return !OK;
    }
    return OK;
}

static void mdt_test_config(apr_pool_t *pconf, server_rec *s)
{
    mdt_config_log_summary(pconf, s, mdt_config_get(s));
}

static int mdt_post_config_before_ssl(apr_pool_t *pconf, apr_pool_t *plog,
                                      apr_pool_t *ptemp, server_rec *s)
{
    return mdt_ssl_prepare(pconf, ptemp, s);
}

static int mdt_post_config_after_ssl(apr_pool_t *pconf, apr_pool_t *plog,
                                     apr_pool_t *ptemp, server_rec *s)
{
    return mdt_ssl_after(pconf, ptemp, s);
}

static int mdt_monitor(apr_pool_t *p, server_rec *s)
{
    mdt_helper_monitor();
    return DECLINED;
}

static void mdt_child_init(apr_pool_t *pchild, server_rec *s)
{
    mdt_helper_child_init();
}

static void mdt_register_hooks(apr_pool_t *p)
{
    static const char *const mod_ssl[] = { "mod_ssl.c", NULL };

    ap_hook_pre_config(mdt_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(mdt_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(mdt_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mdt_post_config_before_ssl, NULL, mod_ssl, APR_HOOK_MIDDLE);
    ap_hook_post_config(mdt_post_config_after_ssl, mod_ssl, NULL, APR_HOOK_LAST);
    ap_hook_monitor(mdt_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(mdt_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(mdt_ssl_fallback_503, NULL, mod_ssl, APR_HOOK_MIDDLE);
    ap_hook_handler(mdt_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, add_cert_files, mdt_ssl_add_cert_files, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, add_fallback_cert_files, mdt_ssl_add_fallback_cert_files,
                      NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, mdt_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(md_tailscale) = {
    STANDARD20_MODULE_STUFF,
    NULL,                   /* per-directory config */
    NULL,
    mdt_create_server,      /* per-server config */
    NULL,                   /* no merge: the vhosts' own records stay theirs */
    mdt_cmds,
    mdt_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
