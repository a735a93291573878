/* mod_md_tailscale: directives.
 *
 * The MDomain sections that are ours arrive renamed (mdt_claim.c); their
 * children are read here directly, never walked, so mod_md's handlers of
 * the same directive names are not involved.  Global MD* settings that both
 * modules understand are recorded and passed on (DECLINE_CMD) to mod_md.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include "tsl_client.h"
#include "mdt_claim.h"
#include "mdt_config.h"

APLOG_USE_MODULE(md_tailscale);

#define DEF_CHECK_INTERVAL  apr_time_from_sec(12 * 3600)
#define DEF_RETRY_MIN       apr_time_from_sec(5)
#define DEF_RETRY_MAX       apr_time_from_sec(600)
#define DEF_STARTUP_WAIT    apr_time_from_sec(10)
#define DEF_REQUEST_TIMEOUT apr_time_from_sec(120)

/* ---- server config ------------------------------------------------- */

void *mdt_create_server(apr_pool_t *p, server_rec *s)
{
    mdt_config *c = apr_pcalloc(p, sizeof(*c));

    c->domains = apr_array_make(p, 4, sizeof(mdt_domain *));
    c->check_interval = MDT_UNSET;
    c->retry_min = MDT_UNSET;
    c->retry_max = MDT_UNSET;
    c->startup_wait = MDT_UNSET;
    c->request_timeout = MDT_UNSET;
    c->auto_restart = MDT_UNSET;
    c->auto_domains = MDT_UNSET;
    return c;
}

mdt_config *mdt_config_get(server_rec *s)
{
    if (s && s->is_virtual) {
        s = ap_server_conf;
    }
    return s ? ap_get_module_config(s->module_config, &md_tailscale_module) : NULL;
}

/* Settings written by directives; those are only accepted at the top level,
 * where cmd->server is the main server. */
static mdt_config *cmd_config(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &md_tailscale_module);
}

/* ---- effective values ---------------------------------------------- */

const char *mdt_config_store_dir(apr_pool_t *p, const mdt_config *c)
{
    return ap_server_root_relative(p, c->store_dir ? c->store_dir : "md_tailscale");
}

apr_interval_time_t mdt_config_check_interval(const mdt_config *c)
{
    return c->check_interval >= 0 ? c->check_interval : DEF_CHECK_INTERVAL;
}

apr_interval_time_t mdt_config_retry_min(const mdt_config *c)
{
    return c->retry_min >= 0 ? c->retry_min : DEF_RETRY_MIN;
}

apr_interval_time_t mdt_config_retry_max(const mdt_config *c)
{
    apr_interval_time_t max = c->retry_max >= 0 ? c->retry_max : DEF_RETRY_MAX;
    apr_interval_time_t min = mdt_config_retry_min(c);
    return max < min ? min : max;
}

apr_interval_time_t mdt_config_startup_wait(const mdt_config *c)
{
    return c->startup_wait >= 0 ? c->startup_wait : DEF_STARTUP_WAIT;
}

apr_interval_time_t mdt_config_request_timeout(const mdt_config *c)
{
    return c->request_timeout >= 0 ? c->request_timeout : DEF_REQUEST_TIMEOUT;
}

int mdt_config_auto_restart(const mdt_config *c)
{
    return c->auto_restart != 0;
}

mdt_window mdt_domain_renew_window(const mdt_config *c, const mdt_domain *d)
{
    mdt_window w = { 1, 33, 0 };

    if (d && d->renew_window.set) {
        return d->renew_window;
    }
    if (c->renew_window.set) {
        return c->renew_window;
    }
    return w;
}

mdt_window mdt_domain_warn_window(const mdt_config *c, const mdt_domain *d)
{
    mdt_window w = { 1, 10, 0 };

    if (d && d->warn_window.set) {
        return d->warn_window;
    }
    if (c->warn_window.set) {
        return c->warn_window;
    }
    return w;
}

static int name_covers(const char *pattern, const char *host)
{
    if (!strcasecmp(pattern, host)) {
        return 1;
    }
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot && dot != host && !strcasecmp(dot + 1, pattern + 2);
    }
    return 0;
}

const mdt_domain *mdt_config_find_domain(const mdt_config *c, const char *h)
{
    int i, j;
    const mdt_domain *wild = NULL;

    if (!c || !h) {
        return NULL;
    }
    for (i = 0; i < c->domains->nelts; ++i) {
        const mdt_domain *d = APR_ARRAY_IDX(c->domains, i, const mdt_domain *);
        for (j = 0; j < d->names->nelts; ++j) {
            const char *n = APR_ARRAY_IDX(d->names, j, const char *);
            if (!strcasecmp(n, h)) {
                return d;       /* an exact name always wins */
            }
            if (!wild && name_covers(n, h)) {
                wild = d;
            }
        }
    }
    return wild;
}

/* ---- names ----------------------------------------------------------- */

/* Lower-case, strip one trailing dot, check DNS syntax ("*." only in front). */
static const char *normalize_name(apr_pool_t *p, const char *in, const char **out)
{
    char *n = apr_pstrdup(p, in), *s;
    size_t len = strlen(n), label = 0;

    if (len > 0 && n[len - 1] == '.') {
        n[--len] = '\0';
    }
    for (s = n; *s; ++s) {
        *s = (char)tolower((unsigned char)*s);
    }
    s = n;
    if (s[0] == '*' && s[1] == '.') {
        s += 2;
    }
    if (!*s || len > 253 || !strchr(s, '.')) {
        return apr_psprintf(p, "'%s' is not a fully qualified domain name", in);
    }
    for (; *s; ++s) {
        if (*s == '.') {
            if (label == 0) {
                return apr_psprintf(p, "'%s' has an empty label", in);
            }
            label = 0;
            continue;
        }
        if (!(isalnum((unsigned char)*s) || *s == '-')) {
            return apr_psprintf(p, "'%s' contains '%c', which cannot be in a "
                                "certificate name", in, *s);
        }
        if (++label > 63) {
            return apr_psprintf(p, "'%s' has a label longer than 63 characters", in);
        }
    }
    if (label == 0) {
        return apr_psprintf(p, "'%s' has an empty label", in);
    }
    *out = n;
    return NULL;
}

/* Several names are only possible as "x *.x": one wildcard request. */
static const char *decide_request(apr_pool_t *p, mdt_domain *d)
{
    const char *a, *b;

    if (d->names->nelts == 0) {
        return "needs a domain name";
    }
    a = APR_ARRAY_IDX(d->names, 0, const char *);
    if (d->names->nelts == 1) {
        d->request = a;
        return NULL;
    }
    b = APR_ARRAY_IDX(d->names, 1, const char *);
    if (d->names->nelts == 2) {
        if (b[0] == '*' && !strcmp(b + 2, a)) {
            d->request = b;
            return NULL;
        }
        if (a[0] == '*' && !strcmp(a + 2, b)) {
            d->request = a;
            return NULL;
        }
    }
    return apr_psprintf(p, "has %d names, but tailscaled issues a certificate for "
                        "one name only; the one combination allowed is "
                        "'node.tailnet.ts.net *.node.tailnet.ts.net' (one wildcard "
                        "certificate). Use one MDomain per name", d->names->nelts);
}

static const char *add_names(apr_pool_t *p, mdt_domain *d, const char *args,
                             int allow_mode)
{
    const char *w;

    while (*(w = ap_getword_conf(p, &args))) {
        const char *n = NULL;
        const char *err;
        int i;

        if (allow_mode && (!strcasecmp(w, "auto") || !strcasecmp(w, "manual"))) {
            continue;   /* mod_md's name-collection mode; names here are explicit */
        }
        if ((err = normalize_name(p, w, &n))) {
            return err;
        }
        for (i = 0; i < d->names->nelts; ++i) {
            if (!strcmp(APR_ARRAY_IDX(d->names, i, const char *), n)) {
                break;
            }
        }
        if (i == d->names->nelts) {
            APR_ARRAY_PUSH(d->names, const char *) = n;
        }
    }
    return NULL;
}

const char *mdt_domain_add_names(apr_pool_t *p, mdt_domain *d, const char *args)
{
    return add_names(p, d, args, 0);
}

const char *mdt_domain_decide_request(apr_pool_t *p, mdt_domain *d)
{
    const char *err = decide_request(p, d);

    if (!err) {
        d->name = APR_ARRAY_IDX(d->names, 0, const char *);
    }
    return err;
}

static const char *names_str(apr_pool_t *p, const mdt_domain *d)
{
    return d->names->nelts ? apr_array_pstrcat(p, d->names, ' ') : "(no name)";
}

/* ---- MDomain sections and lines that are ours --------------------------- */

static const char *check_global(cmd_parms *cmd, const char *what)
{
    if (cmd->server->is_virtual || (cmd->directive && cmd->directive->parent)) {
        return apr_psprintf(cmd->pool, "%s is only allowed at the top level of the "
                            "server configuration (not inside <VirtualHost> or "
                            "other sections)", what);
    }
    return NULL;
}

static const char *socket_check(cmd_parms *cmd, const char *spec)
{
    const char *path;
    tsl_result res;

    tsl_result_init(&res);
    if (tsl_socket_parse(cmd->pool, spec, &path, &res) != TSL_OK) {
        /* res.text already lists the accepted forms: say them once */
        return apr_psprintf(cmd->pool, "MDCertificateAuthority '%s' (with "
                            "MDCertificateProtocol tailscale, tailscaled's socket): %s",
                            spec, res.text);
    }
    return NULL;
}

static const char *read_section_child(cmd_parms *cmd, mdt_domain *d,
                                      const ap_directive_t *c)
{
    apr_pool_t *p = cmd->pool;
    const char *args = c->args ? c->args : "";
    const char *name = c->directive;
    const char *v, *err;

    if (!strcasecmp(name, MDT_DIR_COMMENT_ERROR)) {
        return args;        /* the reason, see mdt_claim_refuse_comments() */
    }
    if (!strcasecmp(name, "MDCertificateProtocol")) {
        v = ap_getword_conf(p, &args);
        if (strcasecmp(v, "tailscale")) {
            return apr_psprintf(p, "MDCertificateProtocol '%s': a section with "
                                "MDCertificateProtocol tailscale cannot name another "
                                "protocol", v);
        }
        return NULL;
    }
    if (!strcasecmp(name, "MDCertificateAuthority")) {
        v = ap_getword_conf(p, &args);
        if (!*v || *ap_getword_conf(p, &args)) {
            return "MDCertificateAuthority takes exactly one argument: tailscaled's "
                   "socket (a path or a file:// URL)";
        }
        if ((err = socket_check(cmd, v))) {
            return err;
        }
        d->ca = v;
        return NULL;
    }
    if (!strcasecmp(name, "MDRenewWindow") || !strcasecmp(name, "MDWarnWindow")) {
        mdt_window *w = !strcasecmp(name, "MDRenewWindow") ? &d->renew_window
                                                            : &d->warn_window;
        v = ap_getword_conf(p, &args);
        if ((err = mdt_window_parse(p, v, w))) {
            return apr_psprintf(p, "%s %s", name, err);
        }
        return NULL;
    }
    if (!strcasecmp(name, "MDMember") || !strcasecmp(name, "MDMembers")) {
        if (!strcasecmp(name, "MDMembers")) {
            return NULL;    /* auto/manual: names are always explicit here */
        }
        if ((err = add_names(p, d, args, 0))) {
            return apr_psprintf(p, "MDMember %s", err);
        }
        return NULL;
    }
    if (!strcasecmp(name, "MDRenewMode")) {
        v = ap_getword_conf(p, &args);
        if (!strcasecmp(v, "auto") || !strcasecmp(v, "always")) {
            return NULL;
        }
        return apr_psprintf(p, "MDRenewMode '%s' is not supported with "
                            "MDCertificateProtocol tailscale (certificates are "
                            "always kept renewed)", v);
    }
    if (!strncasecmp(name, "MD", 2)) {
        return apr_psprintf(p, "%s is not supported inside an MDomain with "
                            "MDCertificateProtocol tailscale (supported: "
                            "MDCertificateProtocol, MDCertificateAuthority, "
                            "MDRenewWindow, MDWarnWindow, MDMember)", name);
    }
    return apr_psprintf(p, "%s is not allowed inside <MDomain>", name);
}

static const char *finish_domain(cmd_parms *cmd, mdt_config *c, mdt_domain *d)
{
    const char *err;
    int i, j, k;

    if ((err = decide_request(cmd->pool, d))) {
        return apr_psprintf(cmd->pool, "MDomain %s: %s", names_str(cmd->pool, d), err);
    }
    d->name = APR_ARRAY_IDX(d->names, 0, const char *);
    for (i = 0; i < c->domains->nelts; ++i) {
        const mdt_domain *o = APR_ARRAY_IDX(c->domains, i, const mdt_domain *);
        for (j = 0; j < o->names->nelts; ++j) {
            for (k = 0; k < d->names->nelts; ++k) {
                if (!strcmp(APR_ARRAY_IDX(o->names, j, const char *),
                            APR_ARRAY_IDX(d->names, k, const char *))) {
                    return apr_psprintf(cmd->pool, "MDomain %s: the name %s is "
                                        "already managed by the MDomain defined at "
                                        "%s:%d", names_str(cmd->pool, d),
                                        APR_ARRAY_IDX(d->names, k, const char *),
                                        o->file, o->line);
                }
            }
        }
    }
    APR_ARRAY_PUSH(c->domains, mdt_domain *) = d;
    return NULL;
}

static mdt_domain *new_domain(cmd_parms *cmd)
{
    mdt_domain *d = apr_pcalloc(cmd->pool, sizeof(*d));

    d->names = apr_array_make(cmd->pool, 2, sizeof(const char *));
    d->file = cmd->directive ? cmd->directive->filename : "?";
    d->line = cmd->directive ? cmd->directive->line_num : 0;
    return d;
}

static const char *cmd_ts_section(cmd_parms *cmd, void *dc, const char *arg)
{
    mdt_config *c = cmd_config(cmd);
    mdt_domain *d;
    const ap_directive_t *child;
    const char *err, *end = ap_strrchr_c(arg, '>');
    char *args;

    if ((err = check_global(cmd, "<MDomain>"))) {
        return err;
    }
    if (!end) {
        return "<MDomain> section is missing its closing '>'";
    }
    args = apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(end - arg));
    d = new_domain(cmd);
    if ((err = add_names(cmd->pool, d, args, 1))) {
        return apr_psprintf(cmd->pool, "<MDomain %s>: %s", args, err);
    }
    for (child = cmd->directive->first_child; child; child = child->next) {
        if ((err = read_section_child(cmd, d, child))) {
            cmd->err_directive = (ap_directive_t *)child;
            return apr_psprintf(cmd->pool, "<MDomain %s>: %s",
                                names_str(cmd->pool, d), err);
        }
    }
    return finish_domain(cmd, c, d);
}

static const char *cmd_ts_line(cmd_parms *cmd, void *dc, const char *args)
{
    mdt_config *c = cmd_config(cmd);
    mdt_domain *d;
    const char *err;

    if ((err = check_global(cmd, "MDomain"))) {
        return err;
    }
    d = new_domain(cmd);
    if ((err = add_names(cmd->pool, d, args, 1))) {
        return apr_psprintf(cmd->pool, "MDomain %s: %s", args, err);
    }
    return finish_domain(cmd, c, d);
}

/* An MDomain that is not ours: mod_md's, or an error without mod_md. */
static const char *cmd_foreign_md(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *end, *names = arg, *proto = "none, so ACME", *args, *word;
    const ap_directive_t *c;
    int acme = 1, socket_ca = 0, mod_md = mdt_claim_mod_md_loaded();

    /* Quote what it names, so a typo ("tailscal") is visible. */
    for (c = cmd->directive ? cmd->directive->first_child : NULL; c; c = c->next) {
        args = c->args ? c->args : "";
        word = ap_getword_conf(cmd->pool, &args);
        if (!strcasecmp(c->directive, "MDCertificateProtocol") && c->args) {
            proto = apr_psprintf(cmd->pool, "'%s'", c->args);
            acme = !strcasecmp(word, "ACME");
        }
        else if (!strcasecmp(c->directive, "MDCertificateAuthority")) {
            socket_ca |= mdt_claim_is_socket_spec(word);
        }
    }
    /* mod_md takes ACME sections; one naming another protocol or a socket
     * was meant for us, and mod_md would only say "CA name ... is not known" */
    if (mod_md && acme && !socket_ca) {
        return DECLINE_CMD;
    }
    end = ap_strrchr_c(arg, '>');
    if (end && cmd->directive && cmd->directive->directive[0] == '<') {
        names = apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(end - arg));
    }
    return apr_psprintf(cmd->pool, "TS02002: MDomain %s: only MDCertificateProtocol "
                        "tailscale is handled by mod_md_tailscale, and this MDomain's "
                        "protocol is %s%s; %s", names, proto,
                        socket_ca ? " while its MDCertificateAuthority is a socket" : "",
                        mod_md ? "mod_md (loaded too) handles ACME only: write "
                                 "'MDCertificateProtocol tailscale' in the MDomain"
                               : "load mod_md for ACME (a2enmod md), or write "
                                 "'MDCertificateProtocol tailscale' in the MDomain");
}

/* ---- global MD* settings shared with mod_md --------------------------- */

/* Inside a section (mod_md walking its own MDomain) or in a vhost: not ours. */
static int not_ours_here(cmd_parms *cmd)
{
    return cmd->server->is_virtual || (cmd->directive && cmd->directive->parent);
}

static const char *pass_on(cmd_parms *cmd, const char *what)
{
    if (mdt_claim_mod_md_loaded()) {
        return DECLINE_CMD;
    }
    return apr_psprintf(cmd->pool, "%s: not valid here; mod_md_tailscale only "
                        "accepts it at the top level of the server configuration "
                        "(load mod_md for ACME settings)", what);
}

static const char *cmd_protocol(cmd_parms *cmd, void *dc, const char *v)
{
    mdt_config *c = cmd_config(cmd);

    if (not_ours_here(cmd)) {
        return pass_on(cmd, "MDCertificateProtocol");
    }
    if (strcasecmp(v, "tailscale")) {
        if (mdt_claim_mod_md_loaded()) {
            return DECLINE_CMD;
        }
        return apr_psprintf(cmd->pool, "MDCertificateProtocol '%s': mod_md_tailscale "
                            "implements only 'tailscale'; load mod_md for ACME", v);
    }
    c->global_protocol = v;
    return NULL;
}

static const char *cmd_authority(cmd_parms *cmd, void *dc, const char *v)
{
    mdt_config *c = cmd_config(cmd);
    const char *err;

    if (not_ours_here(cmd)) {
        return pass_on(cmd, "MDCertificateAuthority");
    }
    if (!mdt_claim_is_socket_spec(v)) {
        /* an ACME CA name or URL */
        if (mdt_claim_mod_md_loaded()) {
            return DECLINE_CMD;
        }
        return apr_psprintf(cmd->pool, "MDCertificateAuthority '%s': not a socket; "
                            "mod_md_tailscale needs tailscaled's socket (a path or "
                            "file:// URL); load mod_md for ACME", v);
    }
    if ((err = socket_check(cmd, v))) {
        return err;
    }
    c->global_ca = v;
    return NULL;
}

static const char *cmd_window(cmd_parms *cmd, void *dc, const char *v)
{
    mdt_config *c = cmd_config(cmd);
    mdt_window w;
    const char *err;

    if (not_ours_here(cmd)) {
        return pass_on(cmd, cmd->cmd->name);
    }
    if ((err = mdt_window_parse(cmd->pool, v, &w))) {
        return apr_psprintf(cmd->pool, "%s %s", cmd->cmd->name, err);
    }
    if (cmd->info) {
        c->warn_window = w;
    }
    else {
        c->renew_window = w;
    }
    /* mod_md reads the same global setting */
    return mdt_claim_mod_md_loaded() ? DECLINE_CMD : NULL;
}

static const char *cmd_event_cmd(cmd_parms *cmd, void *dc, const char *args)
{
    mdt_config *c = cmd_config(cmd);
    const char *a = args, *prog;

    if (not_ours_here(cmd)) {
        return pass_on(cmd, cmd->cmd->name);
    }
    prog = ap_getword_conf(cmd->pool, &a);
    if (!*prog) {
        return apr_psprintf(cmd->pool, "%s needs the path of a program", cmd->cmd->name);
    }
    if (cmd->info) {
        c->notify_cmd = args;
    }
    else {
        c->message_cmd = args;
    }
    return mdt_claim_mod_md_loaded() ? DECLINE_CMD : NULL;
}

/* ---- our own directives ---------------------------------------------- */

static const char *cmd_store_dir(cmd_parms *cmd, void *dc, const char *v)
{
    const char *err = check_global(cmd, "MDTailscaleStoreDir");

    if (err) {
        return err;
    }
    if (!*v) {
        return "MDTailscaleStoreDir needs a directory";
    }
    cmd_config(cmd)->store_dir = v;
    return NULL;
}

static const char *cmd_duration(cmd_parms *cmd, void *dc, const char *v)
{
    mdt_config *c = cmd_config(cmd);
    apr_interval_time_t t;
    const char *which = cmd->info, *err;

    if ((err = check_global(cmd, cmd->cmd->name))) {
        return err;
    }
    if ((err = mdt_duration_parse(cmd->pool, v, "s", &t))) {
        return apr_psprintf(cmd->pool, "%s %s", cmd->cmd->name, err);
    }
    if (!strcmp(which, "check")) {
        if (t < apr_time_from_sec(1)) {
            return "MDTailscaleCheckInterval must be at least 1s";
        }
        c->check_interval = t;
    }
    else if (!strcmp(which, "startup")) {
        if (t > apr_time_from_sec(60)) {
            return "MDTailscaleStartupWait must be at most 60s (it delays startup)";
        }
        c->startup_wait = t;
    }
    else {
        if (t < apr_time_from_sec(1)) {
            return "MDTailscaleRequestTimeout must be at least 1s";
        }
        c->request_timeout = t;
    }
    return NULL;
}

static const char *cmd_retry_delay(cmd_parms *cmd, void *dc, const char *a,
                                   const char *b)
{
    mdt_config *c = cmd_config(cmd);
    apr_interval_time_t min, max;
    const char *err;

    if ((err = check_global(cmd, "MDTailscaleRetryDelay"))) {
        return err;
    }
    if ((err = mdt_duration_parse(cmd->pool, a, "s", &min))) {
        return apr_psprintf(cmd->pool, "MDTailscaleRetryDelay %s", err);
    }
    max = min < DEF_RETRY_MAX ? DEF_RETRY_MAX : min;
    if (b && (err = mdt_duration_parse(cmd->pool, b, "s", &max))) {
        return apr_psprintf(cmd->pool, "MDTailscaleRetryDelay %s", err);
    }
    if (min < apr_time_from_msec(100)) {
        return "MDTailscaleRetryDelay: the first delay must be at least 100ms";
    }
    if (max < min) {
        return "MDTailscaleRetryDelay: the maximum must not be below the first delay";
    }
    c->retry_min = min;
    c->retry_max = max;
    return NULL;
}

static const char *cmd_auto_restart(cmd_parms *cmd, void *dc, int flag)
{
    const char *err = check_global(cmd, "MDTailscaleAutoRestart");

    if (err) {
        return err;
    }
    cmd_config(cmd)->auto_restart = flag;
    return NULL;
}

static const char *cmd_auto_domains(cmd_parms *cmd, void *dc, int flag)
{
    const char *err = check_global(cmd, "MDTailscaleAutoDomains");

    if (err) {
        return err;
    }
    cmd_config(cmd)->auto_domains = flag;
    return NULL;
}

/* ---- check_config ------------------------------------------------------ */

const char *mdt_config_finish(apr_pool_t *p, server_rec *s, mdt_config *c)
{
    int i;

    if (c->domains->nelts > 0 && !ap_find_linked_module("mod_ssl.c")) {
        return "TS02003: mod_md_tailscale needs mod_ssl to use the certificates it "
               "obtains: load it (a2enmod ssl)";
    }
    for (i = 0; i < c->domains->nelts; ++i) {
        mdt_domain *d = APR_ARRAY_IDX(c->domains, i, mdt_domain *);
        const char *spec = d->ca ? d->ca : c->global_ca;
        tsl_result res;

        tsl_result_init(&res);
        if (spec) {
            if (tsl_socket_parse(p, spec, &d->socket, &res) != TSL_OK) {
                return apr_psprintf(p, "MDomain %s: MDCertificateAuthority '%s': %s",
                                    d->name, spec, res.text);
            }
            d->socket_is_default = 0;
        }
        else {
            d->socket = apr_pstrdup(p, tsl_socket_default());
            d->socket_is_default = 1;
        }
    }
    (void)s;
    return NULL;
}

void mdt_config_log_summary(apr_pool_t *p, server_rec *s, const mdt_config *c)
{
    int i;

    for (i = 0; i < c->domains->nelts; ++i) {
        const mdt_domain *d = APR_ARRAY_IDX(c->domains, i, const mdt_domain *);
        mdt_window rw = mdt_domain_renew_window(c, d);

        if (d->automatic) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02082: %s: managed "
                         "automatically (SSLEngine on, no SSLCertificateFile, in no "
                         "MDomain; <VirtualHost> at %s:%d): certificate for %s from "
                         "tailscaled at %s (%s), renew window %s, store %s (turn this "
                         "off with MDTailscaleAutoDomains off)",
                         apr_array_pstrcat(p, d->names, ' '), d->file, d->line,
                         d->request, d->socket,
                         d->socket_is_default ? "default socket" : "configured",
                         mdt_window_str(p, &rw), mdt_config_store_dir(p, c));
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02010: MDomain %s: "
                     "certificate for %s from tailscaled at %s (%s), renew window %s, "
                     "store %s", apr_array_pstrcat(p, d->names, ' '), d->request,
                     d->socket, d->socket_is_default ? "default socket" : "configured",
                     mdt_window_str(p, &rw), mdt_config_store_dir(p, c));
    }
}

/* ---- table ------------------------------------------------------------ */

const command_rec mdt_cmds[] = {
    AP_INIT_RAW_ARGS(MDT_DIR_COMMENT_ERROR, mdt_claim_comment_error, NULL,
                     RSRC_CONF | ACCESS_CONF | OR_ALL,
                     "set by mod_md_tailscale for a line with a trailing comment"),
    AP_INIT_RAW_ARGS(MDT_DIR_SECTION, cmd_ts_section, NULL, RSRC_CONF,
        "An MDomain whose certificate comes from tailscaled (the same as <MDomain> "
        "with MDCertificateProtocol tailscale)"),
    AP_INIT_RAW_ARGS(MDT_DIR_LINE, cmd_ts_line, NULL, RSRC_CONF,
        "Names whose certificate comes from tailscaled"),
    AP_INIT_RAW_ARGS("<MDomain", cmd_foreign_md, NULL, RSRC_CONF,
        "Managed domain; with MDCertificateProtocol tailscale handled by "
        "mod_md_tailscale, otherwise by mod_md"),
    AP_INIT_RAW_ARGS("<MDomainSet", cmd_foreign_md, NULL, RSRC_CONF,
        "Old name of <MDomain>"),
    AP_INIT_RAW_ARGS("MDomain", cmd_foreign_md, NULL, RSRC_CONF,
        "Managed domain names (one-line form)"),
    AP_INIT_TAKE1("MDCertificateProtocol", cmd_protocol, NULL, RSRC_CONF,
        "Certificate protocol; 'tailscale' is handled by mod_md_tailscale"),
    AP_INIT_TAKE1(MDT_DIR_GLOBAL_PROTO, cmd_protocol, NULL, RSRC_CONF,
        "(internal) global MDCertificateProtocol tailscale"),
    AP_INIT_TAKE1("MDCertificateAuthority", cmd_authority, NULL, RSRC_CONF,
        "tailscaled's LocalAPI socket: a path, file://localhost/path or file:///path"),
    AP_INIT_TAKE1(MDT_DIR_GLOBAL_CA, cmd_authority, NULL, RSRC_CONF,
        "(internal) global MDCertificateAuthority naming a socket"),
    AP_INIT_TAKE1("MDRenewWindow", cmd_window, NULL, RSRC_CONF,
        "Time before expiry when the certificate is renewed (duration or percent)"),
    AP_INIT_TAKE1("MDWarnWindow", cmd_window, (void *)1, RSRC_CONF,
        "Time before expiry when 'expiring' is reported (duration or percent)"),
    AP_INIT_RAW_ARGS("MDMessageCmd", cmd_event_cmd, NULL, RSRC_CONF,
        "Program run on certificate events: program [args] <event> <domain>"),
    AP_INIT_RAW_ARGS("MDNotifyCmd", cmd_event_cmd, (void *)1, RSRC_CONF,
        "Program run when a certificate was obtained: program [args] <domain>"),
    AP_INIT_TAKE1("MDTailscaleStoreDir", cmd_store_dir, NULL, RSRC_CONF,
        "Where certificates and status are stored (default ServerRoot/md_tailscale)"),
    AP_INIT_TAKE1("MDTailscaleCheckInterval", cmd_duration, "check", RSRC_CONF,
        "How often tailscaled is asked outside the renew window (default 12h)"),
    AP_INIT_TAKE1("MDTailscaleStartupWait", cmd_duration, "startup", RSRC_CONF,
        "How long startup waits for a certificate tailscaled may hold (default 10s)"),
    AP_INIT_TAKE1("MDTailscaleRequestTimeout", cmd_duration, "request", RSRC_CONF,
        "Timeout of one certificate request to tailscaled (default 120s)"),
    AP_INIT_TAKE12("MDTailscaleRetryDelay", cmd_retry_delay, NULL, RSRC_CONF,
        "First and maximum delay between retries after errors (default 5s 10mi)"),
    AP_INIT_FLAG("MDTailscaleAutoRestart", cmd_auto_restart, NULL, RSRC_CONF,
        "Gracefully restart httpd when a new certificate is stored (default on)"),
    AP_INIT_FLAG("MDTailscaleAutoDomains", cmd_auto_domains, NULL, RSRC_CONF,
        "Manage the certificate of SSL virtual hosts named *.ts.net that have "
        "none and are in no MDomain (default on)"),
    { NULL }
};
