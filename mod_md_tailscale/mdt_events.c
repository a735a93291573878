/* mod_md_tailscale: event commands (see mdt_events.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <grp.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#include <unixd.h>
#include "mdt_events.h"

APLOG_USE_MODULE(md_tailscale);

#define CMD_TIMEOUT apr_time_from_sec(30)

/* Close every descriptor above 2, however high (not just those below 1024):
 * close_range(); without it (glibc < 2.34, kernel < 5.9) each entry of
 * /proc/self/fd; without /proc every number below the open-files limit
 * (sysconf(_SC_OPEN_MAX), the soft RLIMIT_NOFILE).  Each way is tested
 * through httpd in test/md/test_md_event_fds.py. */
static void close_from_3(void)
{
#if defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0U, 0) == 0) {
        return;
    }
#endif
    {
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *e;
        long max;
        int fd;

        if (dir) {
            int self = dirfd(dir);
            while ((e = readdir(dir))) {
                fd = atoi(e->d_name);
                if (fd > 2 && fd != self) {
                    close(fd);
                }
            }
            closedir(dir);
            return;
        }
        max = sysconf(_SC_OPEN_MAX);
        for (fd = 3; fd < (max > 0 ? max : 65536); ++fd) {
            close(fd);
        }
    }
}

/* mod_md runs its event commands as the server's User (its watchdog lives
 * in a child process), except "installed", which it sends from the parent
 * at startup.  Do the same; 0 on success. */
static int drop_privileges(const char *event)
{
    if (geteuid() != 0 || (event && !strcmp(event, "installed"))) {
        return 0;
    }
    if (setgid(ap_unixd_config.group_id) != 0
        || initgroups(ap_unixd_config.user_name, ap_unixd_config.group_id) != 0
        || setuid(ap_unixd_config.user_id) != 0) {
        return -1;
    }
    return geteuid() == 0 && ap_unixd_config.user_id != 0 ? -1 : 0;
}

static int run(server_rec *s, const mdt_runtime *rt, const mdt_state *st,
               const char *directive, const char *cmdline, const char *event,
               apr_pool_t *p)
{
    char **argv0 = NULL, **argv;
    int n = 0, i, status = 0;
    pid_t pid, helper;
    apr_time_t deadline;

    if (apr_tokenize_to_argv(cmdline, &argv0, p) != APR_SUCCESS || !argv0 || !argv0[0]) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02093: %s '%s' cannot be parsed",
                     directive, cmdline);
        return -1;
    }
    while (argv0[n]) {
        ++n;
    }
    argv = apr_pcalloc(p, sizeof(char *) * (apr_size_t)(n + 3));
    for (i = 0; i < n; ++i) {
        argv[i] = argv0[i];
    }
    if (event) {
        argv[n++] = apr_pstrdup(p, event);
    }
    argv[n++] = apr_pstrdup(p, st->md->name);
    argv[n] = NULL;

    helper = getpid();
    pid = fork();
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "TS02094: %s: cannot fork for %s",
                     directive, argv[0]);
        return -1;
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDONLY);
        sigset_t none;

        if (fd >= 0) {
            dup2(fd, 0);
        }
        close_from_3();
        if (drop_privileges(event) != 0) {
            _exit(126);     /* never run it with more rights than mod_md would */
        }
#ifdef __linux__
        /* the helper supervises it (30 s limit): a killed helper takes it
         * along (set after the uid change, which clears it) */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != helper) {
            _exit(125);
        }
#endif
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setenv("MD_STORE", rt->store_dir, 1);
        setenv("MD_DOMAIN", st->md->name, 1);
        setenv("MD_EVENT", event ? event : "notify", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    deadline = apr_time_now() + CMD_TIMEOUT;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (apr_time_now() > deadline) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02095: %s %s for %s did not "
                         "finish within 30s and was killed", directive, argv[0],
                         st->md->name);
            return -1;
        }
        apr_sleep(apr_time_from_msec(20));
    }
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02072: %s %s %s %s failed (%s %d)",
                     directive, argv[0], event ? event : "", st->md->name,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status)
                                       : (WIFSIGNALED(status) ? WTERMSIG(status) : -1));
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "TS02096: %s ran for %s %s", directive,
                 event ? event : "", st->md->name);
    return 0;
}

/* The rate-limited events' last successful run, NULL for the others
 * (errored and expiring keep their own, see mdt_helper.c). */
static apr_time_t *rate_slot(mdt_state *st, const char *event, apr_interval_time_t *every)
{
    if (!strcmp(event, "renewing")) {
        *every = apr_time_from_sec(3600);
        return &st->renewing_event_at;
    }
    *every = apr_time_from_sec(86400);
    if (!strcmp(event, "renewed")) {
        return &st->renewed_event_at;
    }
    if (!strcmp(event, "installed")) {
        return &st->installed_event_at;
    }
    return NULL;
}

int mdt_event_fire(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                   const char *event, apr_pool_t *ptemp)
{
    apr_interval_time_t every = 0;
    apr_time_t *last = rate_slot(st, event, &every), now = apr_time_now();
    int rv = 0;

    if (last && *last && now - *last < every) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "TS02097: MDomain %s: event %s "
                     "not reported again yet (at most every %s, as mod_md)",
                     st->md->name, event, every > apr_time_from_sec(3600) ? "day"
                                                                          : "hour");
        return 0;
    }

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "TS02073: MDomain %s: event %s",
                 st->md->name, event);
    if (rt->conf->message_cmd
        && run(s, rt, st, "MDMessageCmd", rt->conf->message_cmd, event, ptemp) != 0) {
        rv = -1;
    }
    if (!strcmp(event, "renewed") && rt->conf->notify_cmd
        && run(s, rt, st, "MDNotifyCmd", rt->conf->notify_cmd, NULL, ptemp) != 0) {
        rv = -1;
    }
    if (last && rv == 0) {
        *last = now;    /* like mod_md, only a successful run counts */
    }
    return rv;
}
