/* Result codes, their names and operator hints. */
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_strings.h>
#include "tsl_client.h"
#include "tsl_result.h"

void tsl_result_init(tsl_result *res)
{
    if (!res) {
        return;
    }
    res->code = TSL_OK;
    res->http_status = 0;
    res->text = "";
    res->retry_after = -1;
}

tsl_code tsl_result_set(tsl_result *res, apr_pool_t *p, tsl_code code,
                        const char *fmt, ...)
{
    va_list ap;

    if (!res) {
        return code;
    }
    res->code = code;
    va_start(ap, fmt);
    res->text = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    if (!res->text) {
        res->text = "";
    }
    return code;
}

const char *tsl_code_name(tsl_code code)
{
    switch (code) {
    case TSL_OK:                 return "ok";
    case TSL_ERR_INVALID:        return "invalid";
    case TSL_ERR_SOCKET_MISSING: return "socket-missing";
    case TSL_ERR_CONNECT:        return "connect";
    case TSL_ERR_TIMEOUT:        return "timeout";
    case TSL_ERR_TRANSPORT:      return "transport";
    case TSL_ERR_TOO_LARGE:      return "too-large";
    case TSL_ERR_NOT_FOUND:      return "not-found";
    case TSL_ERR_DENIED:         return "denied";
    case TSL_ERR_RATE_LIMITED:   return "rate-limited";
    case TSL_ERR_HTTP:           return "http";
    case TSL_ERR_PARSE:          return "parse";
    case TSL_ERR_CERT:           return "cert";
    }
    return "unknown";
}

const char *tsl_code_hint(tsl_code code)
{
    switch (code) {
    case TSL_OK:
        return "nothing to do";
    case TSL_ERR_INVALID:
        return "check the value given in the configuration or on the command line";
    case TSL_ERR_SOCKET_MISSING:
        return "is tailscaled running? (systemctl status tailscaled); the socket is "
               "the path given to tailscaled's --socket flag, default "
               TSL_SOCKET_DEFAULT ": ls -l it to check that it exists";
    case TSL_ERR_CONNECT:
        return "tailscaled does not accept connections on the socket: check that it "
               "is running and that this user may open the socket";
    case TSL_ERR_TIMEOUT:
        return "tailscaled did not answer in time: check its health (tailscale status, "
               "journalctl -u tailscaled) and the timeout configured for this request";
    case TSL_ERR_TRANSPORT:
        return "the connection to tailscaled broke: check that the socket belongs to "
               "tailscaled and that tailscaled is healthy";
    case TSL_ERR_TOO_LARGE:
        return "the answer exceeded the response size limit: check what listens on "
               "the socket, or raise the limit";
    case TSL_ERR_NOT_FOUND:
        return "the address is not a node of this tailnet (or not visible to this node)";
    case TSL_ERR_DENIED:
        return "for certificates run httpd's parent as root, make it the operator "
               "(tailscale set --operator=USER) or set TS_PERMIT_CERT_UID";
    case TSL_ERR_RATE_LIMITED:
        return "the certificate authority is rate limiting this domain: wait for the "
               "Retry-After time before asking again";
    case TSL_ERR_HTTP:
        return "tailscaled refused the request: read its message (for certificates: "
               "enable HTTPS in the admin console and use a name from CertDomains)";
    case TSL_ERR_PARSE:
        return "tailscaled's answer was not understood: check the tailscaled version "
               "and what listens on the socket";
    case TSL_ERR_CERT:
        return "the certificate is not usable: check the domain against CertDomains "
               "(tailscale status --json) and the system clock";
    }
    return "unknown result code";
}

static const char *user_of(apr_pool_t *p, uid_t uid)
{
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found) {
        return apr_psprintf(p, "%s (uid %lu)", found->pw_name, (unsigned long)uid);
    }
    return apr_psprintf(p, "uid %lu", (unsigned long)uid);
}

static const char *mode_of(apr_pool_t *p, const struct stat *st)
{
    return apr_psprintf(p, "mode %04o, owner uid %lu, group gid %lu",
                        (unsigned)(st->st_mode & 07777), (unsigned long)st->st_uid,
                        (unsigned long)st->st_gid);
}

/* May a process of uid (groups: its groups) do what usr/grp/oth allow? */
static int may(const struct stat *st, uid_t uid, const gid_t *groups, int ngroups,
               mode_t usr, mode_t grp, mode_t oth)
{
    int i;

    if (uid == 0) {
        return 1;
    }
    if (st->st_uid == uid) {
        return (st->st_mode & usr) != 0;
    }
    for (i = 0; i < ngroups; i++) {
        if (groups[i] == st->st_gid) {
            return (st->st_mode & grp) != 0;
        }
    }
    return (st->st_mode & oth) != 0;
}

const char *tsl_socket_access_problem(apr_pool_t *p, const char *socket, uid_t uid,
                                      gid_t gid)
{
    char *dir = apr_pstrdup(p, socket), *slash, buf[1024];
    gid_t groups[64];
    int ngroups = 64;
    struct passwd pw, *found = NULL;
    struct stat st;

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found
        || getgrouplist(found->pw_name, gid, groups, &ngroups) < 0) {
        groups[0] = gid;    /* more than 64 groups: the primary one decides */
        ngroups = 1;
    }
    /* every directory on the way needs search (x) permission */
    for (slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (stat(dir, &st) == 0 && !may(&st, uid, groups, ngroups, S_IXUSR, S_IXGRP, S_IXOTH)) {
            return apr_psprintf(p, "%s may not enter the directory %s (%s): give it "
                                "search permission (chmod o+x %s) or use a socket "
                                "path it can reach", user_of(p, uid), dir,
                                mode_of(p, &st), dir);
        }
        *slash = '/';
    }
    /* connecting to a unix socket needs write permission on it */
    if (stat(socket, &st) == 0 && !may(&st, uid, groups, ngroups, S_IWUSR, S_IWGRP, S_IWOTH)) {
        return apr_psprintf(p, "%s may not open the socket %s (%s; tailscaled makes "
                            "it 0666)", user_of(p, uid), socket, mode_of(p, &st));
    }
    return NULL;
}

const char *tsl_socket_hint(apr_pool_t *p, tsl_code code, const char *socket,
                            const tsl_hint_settings *set)
{
    struct stat st;
    const char *why;

    switch (code) {
    case TSL_ERR_SOCKET_MISSING:
        return apr_psprintf(p, "is tailscaled running? (systemctl status tailscaled) If "
                            "it listens on another socket (its --socket flag: ps -o "
                            "args= -C tailscaled), set %s to that path", set->socket);
    case TSL_ERR_CONNECT:
        if (stat(socket, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            return apr_psprintf(p, "%s is not a unix socket: set %s to the path "
                                "tailscaled listens on (its --socket flag: ps -o args= -C "
                                "tailscaled)", socket, set->socket);
        }
        if ((why = tsl_socket_access_problem(p, socket, geteuid(), getegid()))) {
            return why;
        }
        return apr_psprintf(p, "nothing accepts connections on %s: tailscaled has "
                            "stopped or is restarting (systemctl restart tailscaled; "
                            "journalctl -u tailscaled)", socket);
    case TSL_ERR_TIMEOUT:
        return apr_psprintf(p, "tailscaled did not answer within %s: check its health "
                            "(tailscale status, journalctl -u tailscaled); raise %s only "
                            "if it is merely slow", set->timeout, set->timeout);
    default:
        return tsl_code_hint(code);
    }
}

int tsl_code_is_unavailable(tsl_code code)
{
    switch (code) {
    case TSL_ERR_SOCKET_MISSING:
    case TSL_ERR_CONNECT:
    case TSL_ERR_TIMEOUT:
    case TSL_ERR_TRANSPORT:
    case TSL_ERR_TOO_LARGE:
    case TSL_ERR_HTTP:
    case TSL_ERR_PARSE:
        return 1;
    default:
        return 0;
    }
}

int tsl_result_is_unavailable(const tsl_result *res)
{
    if (!res) {
        return 0;
    }
    if (res->code == TSL_ERR_HTTP) {
        /* A 4xx other than 403/404/429 is a definite (if odd) answer. */
        return res->http_status == 0 || res->http_status >= 500;
    }
    return tsl_code_is_unavailable(res->code);
}

const char *tsl_printable(apr_pool_t *p, const char *s, apr_size_t max)
{
    apr_size_t n, i;
    char *t;

    if (!s) {
        return "";
    }
    n = strlen(s);
    t = apr_palloc(p, (n > max ? max : n) + 4);
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        t[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (n > max) {
        memcpy(t + i, "...", 3);
        i += 3;
    }
    t[i] = '\0';
    return t;
}
