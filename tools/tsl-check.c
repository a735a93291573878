/* tsl-check: ask tailscaled through the LocalAPI client core what a web
 * server would ask it, and say what to fix when something is missing.
 *
 * `cache` asks httpd instead, for its server-status page.
 *
 * Exit codes: 0 ok, 1 a check failed or tailscaled (httpd) said no, 2 usage
 * error, 3 tailscaled (httpd for cache) unreachable.  Diagnostic lines carry IDs TS03nnn.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "tsl.h"
#include "server_status.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#define CERT_TIMEOUT_DEFAULT 120   /* seconds: first issuance can take a minute */

typedef struct ctx {
    apr_pool_t *p;
    const char *socket;
    double timeout;            /* seconds, 0 = client default */
    const char *command;       /* status, whois, cert or check: picks the hints */
    tsl_client *client;
} ctx;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tsl-check [--socket PATH|file://localhost/PATH] [--timeout SEC] COMMAND\n"
        "commands:\n"
        "  status                      what tailscaled reports about this node\n"
        "  whois ADDR[:PORT]           who owns a tailnet address ([v6]:port for IPv6)\n"
        "  cert DOMAIN [--min-validity SEC] [--out-key FILE] [--out-chain FILE]\n"
        "                              fetch and check the certificate for DOMAIN\n"
        "  check [DOMAIN]              check everything a web server needs\n"
        "  cache [URL]                 httpd's identity caches, from its server-status\n"
        "                              (default " SERVER_STATUS_URL_DEFAULT ")\n"
        "exit codes: 0 ok, 1 check failed or tailscaled (httpd) said no, 2 usage error,\n"
        "            3 tailscaled (httpd for cache) unreachable\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "TS03010: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    usage(stderr);
    return EXIT_USAGE;
}

/* A usage error for a DOMAIN argument that is a URL or path, or 0. */
static int url_for_domain(const char *command, const char *arg)
{
    if (strstr(arg, "://") || strchr(arg, '/') || strchr(arg, ':')) {
        return usage_error("%s takes a DOMAIN (web1.tail1234.ts.net), not a URL, path "
                           "or port: %s", command, arg);
    }
    return 0;
}

static const char *user_name(apr_pool_t *p, uid_t uid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
        return apr_pstrdup(p, res->pw_name);
    }
    return apr_psprintf(p, "%lu", (unsigned long)uid);
}

static int is_unreachable(tsl_code code)
{
    return code == TSL_ERR_SOCKET_MISSING || code == TSL_ERR_CONNECT
           || code == TSL_ERR_TIMEOUT || code == TSL_ERR_TRANSPORT;
}

static int exit_for(tsl_code code)
{
    if (code == TSL_OK) return EXIT_OK;
    if (code == TSL_ERR_INVALID) return EXIT_USAGE;
    if (is_unreachable(code)) return EXIT_UNREACHABLE;
    return EXIT_FAILED;
}

static tsl_client *client(ctx *c, double default_timeout)
{
    tsl_client_options o;
    double t = c->timeout > 0 ? c->timeout : default_timeout;

    if (!c->client) {
        tsl_client_options_default(&o);
        if (t > 0) {
            o.timeout = (apr_interval_time_t)(t * APR_USEC_PER_SEC);
            if (o.connect_timeout > o.timeout) o.connect_timeout = o.timeout;
        }
        o.max_idle = 1;
        c->client = tsl_client_create(c->p, c->socket, &o);
    }
    return c->client;
}

/* The settings tsl-check's hints name. */
static const tsl_hint_settings hint_settings = { "--socket", "--timeout" };

/* The fix for an unreachable tailscaled, as lines after a failure. */
static void unreachable_fix(ctx *c, const tsl_result *r)
{
    struct stat st;

    switch (r->code) {
    case TSL_ERR_SOCKET_MISSING:
        printf("     fix: start tailscaled (systemctl start tailscaled), or pass --socket "
               "with the path tailscaled listens on (its --socket flag)\n");
        if (strcmp(c->socket, TSL_SOCKET_DEFAULT) != 0 && stat(TSL_SOCKET_DEFAULT, &st) == 0) {
            printf("     note: %s exists\n", TSL_SOCKET_DEFAULT);
        }
        else if (strcmp(c->socket, TSL_SOCKET_FALLBACK) != 0
                 && stat(TSL_SOCKET_FALLBACK, &st) == 0) {
            printf("     note: %s exists\n", TSL_SOCKET_FALLBACK);
        }
        break;
    case TSL_ERR_CONNECT:
        /* not a socket, a directory or mode in the way, or nobody listening */
        printf("     fix: %s\n", tsl_socket_hint(c->p, r->code, c->socket, &hint_settings));
        break;
    case TSL_ERR_TIMEOUT:
        printf("     fix: tailscaled is stuck or busy: check tailscale status and "
               "journalctl -u tailscaled; a longer --timeout helps for certificates\n");
        break;
    default:
        printf("     fix: %s\n", tsl_code_hint(r->code));
        break;
    }
}

/* Why a user other than root is refused certificates, and why that is
 * right: mod_md_tailscale fetches them in httpd's parent (root), and a user
 * given access (operator, TS_PERMIT_CERT_UID) hands the node's private key to
 * every program it runs - for httpd's user, every CGI and PHP script. */
static void denied_note(ctx *c)
{
    printf("     note: mod_md_tailscale fetches certificates in httpd's parent process as "
           "root, so the user httpd's children run as (%s here) needs no access; keep it "
           "so: with access, every CGI or PHP script could fetch the node's private key\n",
           user_name(c->p, geteuid()));
}

static void denied_fix(ctx *c)
{
    printf("     fix: run it as root (sudo tsl-check ...)\n");
    denied_note(c);
}

/* The hint for a definite answer, for the command that got it: the core's
 * hints speak of whois for a 404 and of certificates for other refusals. */
static const char *command_hint(ctx *c, const tsl_result *r)
{
    int certs = strcmp(c->command, "cert") == 0 || strcmp(c->command, "check") == 0;

    if (r->code == TSL_ERR_HTTP && r->http_status == 404) {
        return apr_psprintf(c->p, "the program on %s does not know this LocalAPI request "
                            "(404): check that the socket is tailscaled's (not another "
                            "program's) and that tailscaled is current (tailscale version)",
                            c->socket);
    }
    if (r->code == TSL_ERR_HTTP && !certs) {
        return "tailscaled refused the request: read its message and its log "
               "(journalctl -u tailscaled)";
    }
    return tsl_code_hint(r->code);
}

static void report_error(ctx *c, const char *id, const char *what, const tsl_result *r)
{
    printf("FAIL %s: %s: %s\n", id, what, r->text);
    if (is_unreachable(r->code)) {
        unreachable_fix(c, r);
    }
    else if (r->code == TSL_ERR_DENIED) {
        denied_fix(c);
    }
    else {
        printf("     hint: %s\n", command_hint(c, r));
    }
}

static const char *fmt_time(apr_pool_t *p, apr_time_t t)
{
    char buf[APR_RFC822_DATE_LEN];
    apr_time_exp_t tm;
    apr_size_t n = 0;

    apr_time_exp_gmt(&tm, t);
    apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return apr_pstrndup(p, buf, n);
}

static const char *join(apr_pool_t *p, const apr_array_header_t *a, const char *sep)
{
    const char *s = "";
    int i;

    for (i = 0; a && i < a->nelts; i++) {
        s = apr_pstrcat(p, s, i ? sep : "", APR_ARRAY_IDX(a, i, const char *), NULL);
    }
    return s;
}

/* ------------------------------------------------------------------ status */

static int cmd_status(ctx *c)
{
    tsl_status *st;
    tsl_result r;
    int i;

    if (tsl_status_get(client(c, 0), c->p, &st, &r) != TSL_OK) {
        report_error(c, "TS03030", apr_psprintf(c->p, "status from tailscaled on %s",
                                                c->socket), &r);
        return exit_for(r.code);
    }
    printf("socket:          %s\n", c->socket);
    printf("version:         %s\n", st->version);
    printf("backend state:   %s\n", st->backend_state);
    printf("self:            %s\n", *st->self_dns_name ? st->self_dns_name : "(unknown)");
    printf("tailnet name:    %s\n", *st->tailnet_name ? st->tailnet_name : "(none)");
    printf("MagicDNS suffix: %s\n", *st->magic_dns_suffix ? st->magic_dns_suffix : "(none)");
    printf("addresses:       %s\n", st->self_ips->nelts ? join(c->p, st->self_ips, " ") : "(none)");
    if (st->cert_domains->nelts) {
        printf("cert domains:    %s\n", tsl_status_cert_domains_str(c->p, st));
    }
    else {
        printf("cert domains:    (none: HTTPS certificates are not enabled for this "
               "tailnet, or no netmap yet)\n");
    }
    for (i = 0; i < st->services->nelts; i++) {
        const tsl_service *svc = &APR_ARRAY_IDX(st->services, i, tsl_service);
        printf("%s %s %s\n", i ? "                " : "services:       ", svc->name,
               join(c->p, svc->vips, " "));
    }
    if (st->services_error) {
        printf("services:        (not understood: %s)\n", st->services_error);
    }
    return EXIT_OK;
}

/* The fix for a node that is not running, by its BackendState. */
static void state_fix(const char *state)
{
    if (strcmp(state, "NeedsLogin") == 0) {
        printf("     fix: log this node in: tailscale up (or tailscale login)\n");
    }
    else if (strcmp(state, "NeedsMachineAuth") == 0) {
        printf("     fix: approve this machine in the admin console (Machines page)\n");
    }
    else if (strcmp(state, "Stopped") == 0) {
        printf("     fix: bring tailscale up: tailscale up\n");
    }
    else if (strcmp(state, "Starting") == 0 || strcmp(state, "NoState") == 0) {
        printf("     fix: tailscaled is still starting: wait and run tsl-check again "
               "(tailscale status shows progress)\n");
    }
    else {
        printf("     fix: see tailscale status\n");
    }
}

/* ------------------------------------------------------------------ whois */

static int parse_addr(apr_pool_t *p, const char *arg, const char **ip, int *port)
{
    const char *colon, *ps = NULL;
    char *end;
    long v;

    *port = 0;
    if (arg[0] == '[') {
        const char *rb = strchr(arg, ']');
        if (!rb) return 0;
        *ip = apr_pstrndup(p, arg + 1, (apr_size_t)(rb - arg - 1));
        if (rb[1] == ':') ps = rb + 2;
        else if (rb[1] != '\0') return 0;
    }
    else {
        colon = strchr(arg, ':');
        if (colon && !strchr(colon + 1, ':')) {     /* one colon: v4:port */
            *ip = apr_pstrndup(p, arg, (apr_size_t)(colon - arg));
            ps = colon + 1;
        }
        else {
            *ip = arg;                              /* v4 or bare v6 */
        }
    }
    if (ps) {
        errno = 0;
        v = strtol(ps, &end, 10);
        if (!*ps || *end || errno || v < 1 || v > 65535) return 0;
        *port = (int)v;
    }
    return tsl_addr_normalize(p, *ip) != NULL;
}

static int cmd_whois(ctx *c, int argc, char **argv)
{
    const char *ip;
    int port, i;
    tsl_identity *id;
    tsl_result r;

    if (argc != 1) {
        return usage_error("whois takes one address, ADDR[:PORT]");
    }
    if (!parse_addr(c->p, argv[0], &ip, &port)) {
        return usage_error("not an IP address or IP:PORT: %s", argv[0]);
    }
    if (tsl_whois(client(c, 0), c->p, ip, port, &id, &r) != TSL_OK) {
        const char *addr = tsl_addr_format(c->p, ip, port);
        if (r.code == TSL_ERR_NOT_FOUND) {
            tsl_status *st;
            tsl_result sr;

            /* a node that is not running knows no peers at all */
            if (tsl_status_get(client(c, 0), c->p, &st, &sr) == TSL_OK
                && strcmp(st->backend_state, "Running") != 0) {
                printf("FAIL TS03013: this node is not running (BackendState %s), so "
                       "tailscaled knows no tailnet peers and cannot say who %s is\n",
                       st->backend_state, addr);
                state_fix(st->backend_state);
                return EXIT_FAILED;
            }
            printf("FAIL TS03011: %s is not a node of this tailnet: tailscaled said \"%s\"\n",
                   addr, r.text);
            return EXIT_FAILED;
        }
        report_error(c, "TS03012", apr_psprintf(c->p, "whois %s on %s", addr, c->socket), &r);
        return exit_for(r.code);
    }
    printf("address:         %s\n", tsl_addr_format(c->p, ip, port));
    printf("login:           %s\n", id->login_name);
    printf("display name:    %s\n", id->display_name);
    printf("profile picture: %s\n", *id->profile_pic_url ? id->profile_pic_url : "(none)");
    printf("user id:         %" APR_INT64_T_FMT "\n", id->user_id);
    printf("node:            %s\n", id->node_name);
    printf("short name:      %s\n", id->node_short);
    printf("node id:         %" APR_INT64_T_FMT " (stable %s)\n", id->node_id,
           *id->node_stable_id ? id->node_stable_id : "-");
    printf("MagicDNS suffix: %s\n", *id->tailnet ? id->tailnet : "(withheld: shared-in node)");
    printf("tagged:          %s\n", id->is_tagged ? join(c->p, id->tags, " ") : "no");
    printf("shared-in:       %s\n", id->is_shared_in ? "yes" : "no");
    printf("addresses:       %s\n", id->addresses->nelts ? join(c->p, id->addresses, " ") : "(none)");
    if (!id->capmap_json) {
        printf("capabilities:    (none)\n");
    }
    else {
        printf("capabilities:    %d\n", id->caps->nelts);
        for (i = 0; i < id->caps->nelts; i++) {
            const tsl_cap *cap = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
            printf("  %s: %s\n", cap->name, cap->values_json);
        }
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ cert */

/* Write data to path atomically (temp file, fsync, rename) with mode. */
static int write_atomic(apr_pool_t *p, const char *path, const char *data, mode_t mode)
{
    const char *tmp = apr_psprintf(p, "%s.tmp.%ld", path, (long)getpid());
    size_t len = strlen(data), off = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

    if (fd < 0) {
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) goto fail;
    if (close(fd) != 0) { fd = -1; goto fail; }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    return 0;
fail:
    {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        errno = e;
    }
    return -1;
}

static int cmd_cert(ctx *c, int argc, char **argv)
{
    const char *domain = NULL, *out_key = NULL, *out_chain = NULL;
    double minv = 0;
    tsl_cert_pair *pair;
    tsl_result r;
    apr_time_t now;
    int i, rc = EXIT_OK;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--min-validity") == 0 && i + 1 < argc) {
            char *end;
            minv = strtod(argv[++i], &end);
            if (*end || minv < 0) return usage_error("bad --min-validity: %s", argv[i]);
        }
        else if (strcmp(argv[i], "--out-key") == 0 && i + 1 < argc) {
            out_key = argv[++i];
        }
        else if (strcmp(argv[i], "--out-chain") == 0 && i + 1 < argc) {
            out_chain = argv[++i];
        }
        else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("unknown or incomplete cert option: %s", argv[i]);
        }
        else if (!domain) {
            domain = argv[i];
        }
        else {
            return usage_error("cert takes one DOMAIN, got another: %s", argv[i]);
        }
    }
    if (!domain || !*domain) {
        return usage_error("cert needs a DOMAIN");
    }
    if ((rc = url_for_domain("cert", domain))) {
        return rc;
    }
    client(c, CERT_TIMEOUT_DEFAULT);
    if (tsl_cert_fetch(c->client, c->p, domain,
                       (apr_interval_time_t)(minv * APR_USEC_PER_SEC), 0, &pair, &r)
        != TSL_OK) {
        report_error(c, "TS03020", apr_psprintf(c->p, "certificate for %s from %s",
                                                domain, c->socket), &r);
        if (r.code == TSL_ERR_RATE_LIMITED && r.retry_after >= 0) {
            printf("     retry after: %ld seconds\n", r.retry_after);
        }
        return exit_for(r.code);
    }
    now = apr_time_now();
    printf("domain:          %s\n", domain);
    printf("names:           %s\n", join(c->p, pair->names, " "));
    printf("not before:      %s\n", fmt_time(c->p, pair->not_before));
    printf("not after:       %s (%" APR_INT64_T_FMT " days left)\n",
           fmt_time(c->p, pair->not_after),
           (apr_int64_t)(apr_time_sec(pair->not_after - now) / 86400));
    printf("fingerprint:     sha256 %s\n", pair->fingerprint);
    {
        int n = 0;
        const char *s = pair->chain_pem;
        while ((s = strstr(s, "-----BEGIN CERTIFICATE-----")) != NULL) { n++; s++; }
        printf("chain:           %d certificate%s\n", n, n == 1 ? "" : "s");
    }
    if (out_key) {
        if (write_atomic(c->p, out_key, pair->key_pem, 0600) != 0) {
            printf("FAIL TS03021: cannot write the key to %s: %s\n", out_key, strerror(errno));
            rc = EXIT_FAILED;
        }
        else {
            printf("key:             written to %s (mode 0600)\n", out_key);
        }
    }
    else {
        printf("key:             matches the certificate (not shown; use --out-key FILE)\n");
    }
    if (out_chain) {
        if (write_atomic(c->p, out_chain, pair->chain_pem, 0644) != 0) {
            printf("FAIL TS03022: cannot write the chain to %s: %s\n", out_chain, strerror(errno));
            rc = EXIT_FAILED;
        }
        else {
            printf("chain file:      written to %s\n", out_chain);
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ check */

/* Ask for a certificate with an invalid min_validity: tailscaled checks the
 * caller's permission first (403) and rejects the parameter next (400), so
 * nothing is issued (tailscaled >= 1.72; older ones ignore the parameter and
 * answer with the certificate). */
static tsl_code probe_cert_permission(ctx *c, const char *domain, tsl_result *r,
                                      tsl_response **resp)
{
    const char *dom = domain;
    size_t n = strlen(dom);
    char *esc;
    size_t i, o = 0;

    if (n && dom[n - 1] == '.') n--;
    esc = apr_palloc(c->p, 3 * n + 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dom[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
            || ch == '-' || ch == '.' || ch == '_' || ch == '*') {
            esc[o++] = (char)ch;
        }
        else {
            o += (size_t)sprintf(esc + o, "%%%02X", ch);
        }
    }
    esc[o] = '\0';
    return tsl_client_get(c->client, c->p,
                          apr_pstrcat(c->p, "cert/", esc,
                                      "?type=pair&min_validity=tsl-check-probe", NULL),
                          0, resp, r);
}

static int cmd_check(ctx *c, int argc, char **argv)
{
    struct stat sb;
    tsl_status *st;
    tsl_result r;
    tsl_response *resp;
    const char *domain = NULL, *who;
    int failed = 0, i, rc;

    if (argc > 1) {
        return usage_error("check takes at most one DOMAIN, got also: %s", argv[1]);
    }
    if (argc == 1) {
        domain = argv[0];
        if ((rc = url_for_domain("check", domain))) {
            return rc;
        }
    }

    /* 1. socket */
    if (stat(c->socket, &sb) != 0) {
        tsl_result_init(&r);
        r.code = errno == ENOENT || errno == ENOTDIR ? TSL_ERR_SOCKET_MISSING : TSL_ERR_CONNECT;
        printf("FAIL TS03001: tailscaled socket %s: %s\n", c->socket, strerror(errno));
        r.text = strerror(errno);
        unreachable_fix(c, &r);
        return EXIT_UNREACHABLE;
    }
    if (!S_ISSOCK(sb.st_mode)) {
        printf("FAIL TS03002: %s exists but is not a unix socket\n", c->socket);
        printf("     fix: %s\n", tsl_socket_hint(c->p, TSL_ERR_CONNECT, c->socket,
                                               &hint_settings));
        return EXIT_UNREACHABLE;
    }
    printf("ok   socket %s exists\n", c->socket);

    /* 2. tailscaled answers */
    client(c, 0);
    if (tsl_status_get(c->client, c->p, &st, &r) != TSL_OK) {
        report_error(c, "TS03003", apr_psprintf(c->p, "tailscaled on %s does not answer "
                                                "status", c->socket), &r);
        return is_unreachable(r.code) ? EXIT_UNREACHABLE : EXIT_FAILED;
    }
    printf("ok   tailscaled answers (version %s)\n", *st->version ? st->version : "unknown");

    /* 3. running */
    if (strcmp(st->backend_state, "Running") != 0) {
        printf("FAIL TS03004: tailscale is not running: BackendState is %s\n", st->backend_state);
        state_fix(st->backend_state);
        failed++;
    }
    else {
        printf("ok   BackendState is Running (this node: %s)\n",
               *st->self_dns_name ? st->self_dns_name : "name unknown");
    }

    /* 4. HTTPS enabled */
    if (st->cert_domains->nelts == 0) {
        printf("FAIL TS03005: tailscaled offers no certificate domains (CertDomains is empty)\n");
        if (strcmp(st->backend_state, "Running") == 0) {
            printf("     fix: enable MagicDNS and HTTPS Certificates in the admin console "
                   "(DNS page), then run tsl-check again\n");
        }
        else {
            printf("     fix: get the node running first (see above); then, if still empty, "
                   "enable HTTPS Certificates in the admin console (DNS page)\n");
        }
        failed++;
    }
    else {
        printf("ok   HTTPS certificates enabled: CertDomains %s\n",
               tsl_status_cert_domains_str(c->p, st));
    }

    /* 5. the domain */
    if (!domain) {
        if (*st->self_dns_name && tsl_status_cert_domain_ok(st, st->self_dns_name)) {
            domain = st->self_dns_name;
        }
        else if (st->cert_domains->nelts) {
            domain = APR_ARRAY_IDX(st->cert_domains, 0, const char *);
        }
    }
    if (domain && st->cert_domains->nelts) {
        if (tsl_status_cert_domain_ok(st, domain)) {
            printf("ok   %s is allowed%s\n", domain,
                   strncmp(domain, "*.", 2) == 0
                       ? " (a wildcard also needs wildcard certificates enabled for this node)"
                       : "");
        }
        else {
            printf("FAIL TS03006: %s is not one of tailscaled's CertDomains %s\n", domain,
                   tsl_status_cert_domains_str(c->p, st));
            for (i = 0; i < st->cert_domains->nelts; i++) {
                const char *d = APR_ARRAY_IDX(st->cert_domains, i, const char *);
                size_t dl = strlen(d), l = strlen(domain);
                if (l > dl + 1 && strcasecmp(domain + l - dl, d) == 0 && domain[l - dl - 1] == '.') {
                    printf("     fix: for names below %s ask for the wildcard *.%s (needs wildcard "
                           "certificates enabled for this node)\n", d, d);
                    break;
                }
            }
            printf("     fix: use one of %s as ServerName / MDomain, or rename the node "
                   "in the admin console\n", tsl_status_cert_domains_str(c->p, st));
            failed++;
        }
    }

    /* 6. permission to fetch certificates */
    who = user_name(c->p, geteuid());
    if (!domain) {
        domain = *st->self_dns_name ? st->self_dns_name : "localhost.invalid";
    }
    {
        tsl_client_options o;
        tsl_client *saved = c->client;
        tsl_client_options_default(&o);
        o.timeout = (apr_interval_time_t)((c->timeout > 0 ? c->timeout : CERT_TIMEOUT_DEFAULT)
                                          * APR_USEC_PER_SEC);
        o.max_idle = 1;
        c->client = tsl_client_create(c->p, c->socket, &o);
        if (probe_cert_permission(c, domain, &r, &resp) != TSL_OK) {
            report_error(c, "TS03008", apr_psprintf(c->p, "asking tailscaled whether uid %lu "
                                                    "(%s) may fetch certificates",
                                                    (unsigned long)geteuid(), who), &r);
            c->client = saved;
            return is_unreachable(r.code) ? EXIT_UNREACHABLE : EXIT_FAILED;
        }
        c->client = saved;
    }
    if (resp->status == 403 && geteuid() != 0) {
        /* the healthy state for the user httpd's children run as */
        tsl_result_from_response(&r, c->p, resp);
        printf("ok   uid %lu (%s) may not fetch certificates (tailscaled said \"%s\"): as "
               "it should be\n", (unsigned long)geteuid(), who, r.text);
        denied_note(c);
    }
    else if (resp->status == 403) {
        tsl_result_from_response(&r, c->p, resp);
        printf("FAIL TS03007: root may not fetch certificates: tailscaled said \"%s\"\n",
               r.text);
        printf("     fix: tailscaled lets root fetch certificates unless it runs in a "
               "user namespace or container of its own: check how it is started "
               "(systemctl cat tailscaled)\n");
        failed++;
    }
    else {
        printf("ok   uid %lu (%s) may fetch certificates\n", (unsigned long)geteuid(), who);
    }

    if (failed) {
        printf("%d check%s failed\n", failed, failed == 1 ? "" : "s");
        return EXIT_FAILED;
    }
    printf("all checks passed\n");
    return EXIT_OK;
}

/* ------------------------------------------------------------------ cache */

/* What to do about a server-status answer other than 200. */
static const char *status_page_hint(int http_status)
{
    switch (http_status) {
    case 401:
    case 403:
    case 404:
        return "enable mod_status (a2enmod status) and allow this host: "
               "<Location /server-status> SetHandler server-status Require local "
               "</Location>; then reload httpd, or pass the URL where server-status is";
    default:
        return "read httpd's error log for this request, or pass the URL where "
               "server-status is";
    }
}

static void print_count(const char *label, unsigned long long v)
{
    printf("  %-15s%llu\n", label, v);
}

/* httpd's identity caches, from its server-status?auto page: tsl-check
 * cannot map httpd's anonymous shmcb segment, so it asks the running httpd. */
static int cmd_cache(ctx *c, int argc, char **argv)
{
    server_status_cache sc;
    server_status_error e;
    const char *url;

    if (argc > 1) {
        return usage_error("cache takes at most one URL, got also: %s", argv[1]);
    }
    if (!(url = server_status_url(c->p, argc ? argv[0] : NULL, &e))) {
        return usage_error("cache takes the URL of httpd's server-status: %s", e.text);
    }
    switch (server_status_cache_get(c->p, url, c->timeout > 0 ? c->timeout : 5, &sc, &e)) {
    case SERVER_STATUS_OK:
        break;
    case SERVER_STATUS_UNREACHABLE:
        printf("FAIL TS03031: httpd at %s is unreachable: %s\n", e.url, e.text);
        printf("     fix: start httpd (systemctl start apache2), or pass the URL of its "
               "server-status (host and port of a Listen line); a longer --timeout helps "
               "a busy server\n");
        return EXIT_UNREACHABLE;
    case SERVER_STATUS_TLS:
        printf("FAIL TS03032: httpd's certificate at %s did not verify: %s\n", e.url, e.text);
        printf("     fix: ask over http on this host (http://localhost/server-status), or "
               "use the name the certificate is for\n");
        return EXIT_FAILED;
    case SERVER_STATUS_HTTP:
        printf("FAIL TS03033: httpd answered %s with %s instead of the status page\n",
               e.url, e.text);
        printf("     fix: %s\n", status_page_hint(e.http_status));
        return EXIT_FAILED;
    case SERVER_STATUS_REDIRECT:
        printf("FAIL TS03034: %s redirects %s\n", e.url, e.text);
        printf("     fix: tsl-check follows redirects only on the same host and never from "
               "https to http: pass the URL where server-status answers\n");
        return EXIT_FAILED;
    case SERVER_STATUS_TOO_LARGE:
        printf("FAIL TS03035: the page at %s is too large: %s\n", e.url, e.text);
        printf("     fix: pass the URL of httpd's server-status (mod_status)\n");
        return EXIT_FAILED;
    case SERVER_STATUS_NOT_OURS:
        printf("FAIL TS03036: the server-status page at %s has no mod_authnz_tailscale "
               "figures (%s)\n", e.url, e.text);
        printf("     fix: load mod_authnz_tailscale in that server (a2enmod authnz_tailscale), "
               "or update it: the shared cache figures came with AuthTailscaleCache\n");
        return EXIT_FAILED;
    case SERVER_STATUS_GARBAGE:
        printf("FAIL TS03037: %s did not give a usable server-status?auto page: %s\n",
               e.url, e.text);
        printf("     fix: pass the URL of httpd's server-status (mod_status); is another "
               "program listening there?\n");
        return EXIT_FAILED;
    default:
        printf("FAIL TS03038: cannot ask %s: %s\n", e.url, e.text);
        printf("     fix: nothing httpd did: free memory on this host and run it again\n");
        return EXIT_FAILED;
    }
    printf("server-status:   %s\n", e.url);
    if (strcmp(sc.shared_cache, "none") == 0) {
        printf("shared cache:    none (AuthTailscaleCache none, or no socache provider "
               "loaded: each process asks tailscaled itself)\n");
    }
    else {
        printf("shared cache:    %s\n", sc.shared_cache);
    }
    if (sc.shared_entries >= 0) {
        printf("  %-15s%lld\n", "entries:", sc.shared_entries);
    }
    else if (strcmp(sc.shared_cache, "none") != 0) {
        printf("  %-15s(not counted by this provider)\n", "entries:");
    }
    print_count("hits:", sc.shared_hits);
    print_count("misses:", sc.shared_misses);
    print_count("waits:", sc.shared_waits);
    print_count("unreadable:", sc.shared_unreadable);
    printf("whois calls:     %llu (all processes since httpd last started or reloaded)\n",
           sc.whois_calls);
    if (sc.process_entries >= 0) {
        printf("process cache:   %lld entr%s (one process's figure: the one that answered; "
               "each process has its own)\n", sc.process_entries,
               sc.process_entries == 1 ? "y" : "ies");
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ main */

/* Options of a command that take a value: the global pass copies the value
 * with the option, so a FILE named like a global option stays the command's. */
static int is_command_option_with_value(const char *a)
{
    return strcmp(a, "--min-validity") == 0 || strcmp(a, "--out-key") == 0
           || strcmp(a, "--out-chain") == 0;
}

int main(int argc, char **argv)
{
    ctx c;
    tsl_result r;
    const char *spec = NULL;
    char **rest;
    int i, n = 0, rc;

    memset(&c, 0, sizeof(c));
    /* Global options may stand anywhere (before or after the command); the
     * rest, in order, is the command and its own arguments. */
    rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest) {
        fprintf(stderr, "TS03023: out of memory\n");
        return EXIT_USAGE;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--socket") == 0 || strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc) {
                free(rest);
                return usage_error("%s needs a value", a);
            }
        }
        if (strcmp(a, "--socket") == 0) {
            spec = argv[++i];
        }
        else if (strncmp(a, "--socket=", 9) == 0) {
            spec = a + 9;
        }
        else if (strcmp(a, "--timeout") == 0 || strncmp(a, "--timeout=", 10) == 0) {
            const char *v = a[9] == '=' ? a + 10 : argv[++i];
            char *end;
            c.timeout = strtod(v, &end);
            if (!*v || *end || c.timeout <= 0) {
                free(rest);
                return usage_error("bad --timeout (seconds > 0): %s", v);
            }
        }
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            free(rest);
            usage(stdout);
            return EXIT_OK;
        }
        else if (strcmp(a, "--version") == 0) {
            free(rest);
            printf("tsl-check %s\n", TSL_VERSION);
            return EXIT_OK;
        }
        else if (is_command_option_with_value(a) && i + 1 < argc) {
            rest[n++] = argv[i++];
            rest[n++] = argv[i];
        }
        else {
            rest[n++] = argv[i];
        }
    }
    if (n == 0) {
        free(rest);
        return usage_error("no command given");
    }
    if (rest[0][0] == '-') {
        rc = usage_error("unknown or incomplete option: %s", rest[0]);
        free(rest);
        return rc;
    }

    apr_initialize();
    tsl_global_init();
    apr_pool_create(&c.p, NULL);
    if (spec) {
        if (tsl_socket_parse(c.p, spec, &c.socket, &r) != TSL_OK) {
            rc = usage_error("%s", r.text);
            apr_pool_destroy(c.p);
            apr_terminate();
            free(rest);
            return rc;
        }
    }
    else {
        c.socket = tsl_socket_default();
    }

    c.command = rest[0];
    for (i = 1; i < n; i++) {
        if (rest[i][0] == '-' && rest[i][1] && strcmp(rest[0], "cert") != 0) {
            break;              /* cert names its own unknown options */
        }
    }
    if (i < n) {
        rc = usage_error("unknown or incomplete option for %s: %s", rest[0], rest[i]);
    }
    else if (strcmp(rest[0], "status") == 0) {
        rc = n == 1 ? cmd_status(&c)
                    : usage_error("status takes no arguments, got: %s", rest[1]);
    }
    else if (strcmp(rest[0], "whois") == 0) {
        rc = cmd_whois(&c, n - 1, rest + 1);
    }
    else if (strcmp(rest[0], "cert") == 0) {
        rc = cmd_cert(&c, n - 1, rest + 1);
    }
    else if (strcmp(rest[0], "check") == 0) {
        rc = cmd_check(&c, n - 1, rest + 1);
    }
    else if (strcmp(rest[0], "cache") == 0) {
        rc = cmd_cache(&c, n - 1, rest + 1);
    }
    else {
        rc = usage_error("unknown command: %s", rest[0]);
    }
    fflush(stdout);
    apr_pool_destroy(c.p);
    apr_terminate();
    free(rest);
    return rc;
}
