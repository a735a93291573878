/* mod_md_tailscale: the helper process (see mdt_helper.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <apr_strings.h>
#include <apr_signal.h>
#include <apr_thread_proc.h>
#include <httpd.h>
#include <http_log.h>
#include <ap_listen.h>
#include <mpm_common.h>
#include "tsl_client.h"
#include "mdt_driver.h"
#include "mdt_events.h"
#include "mdt_store.h"
#include "mdt_helper.h"

APLOG_USE_MODULE(md_tailscale);

#define RESPAWN_DELAY   apr_time_from_sec(10)
#define STOP_GRACE      apr_time_from_sec(2)
#define KILL_GRACE      apr_time_from_sec(1)
#define ERRORED_EVERY   apr_time_from_sec(3600)
#define EXPIRING_EVERY  apr_time_from_sec(86400)

typedef struct mdt_helper {
    apr_pool_t *pconf;
    server_rec *s;
    mdt_runtime *rt;
    apr_proc_t proc;
    pid_t parent;
    /* The stop pipe: the parent holds the write end (stop_fd), the helper
     * the read end (watch_fd).  Closing the write end tells the helper to
     * end; unlike a signal this needs no privileges, so it also works from
     * an httpd -X that has already switched to its User. */
    int stop_fd;
    int watch_fd;
    int running;
    int registered;
    int stopping;
    apr_time_t started;
    apr_time_t died;
    int deaths;
} mdt_helper;

static mdt_helper *current;

/* ---- inside the helper ------------------------------------------------- */

static int stop_requested(const mdt_helper *h, int timeout_ms)
{
    struct pollfd pfd;

    pfd.fd = h->watch_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (h->watch_fd < 0) {
        if (timeout_ms > 0) {
            apr_sleep(apr_time_from_msec(timeout_ms));
        }
        return 0;
    }
    /* the parent never writes: readable means its end was closed */
    return poll(&pfd, 1, timeout_ms) > 0;
}

static void parent_gone_check(const mdt_helper *h)
{
    if (getppid() != h->parent || stop_requested(h, 0)) {
        _exit(0);
    }
}

/* Sleep up to nap, ending at once when the parent closes the stop pipe. */
static void helper_sleep(const mdt_helper *h, apr_interval_time_t nap)
{
    int ms = (int)((nap + 999) / 1000);

    if (stop_requested(h, ms > 0 ? ms : 0)) {
        _exit(0);
    }
}

/* Also end in the middle of a request to tailscaled or an event command:
 * with O_ASYNC the kernel raises SIGIO (default action: terminate) when
 * the last write end of the pipe is closed.  Everything the helper writes
 * is written atomically (see mdt_store.c), as for SIGTERM. */
static void watch_stop_pipe(const mdt_helper *h)
{
#if defined(__linux__) && defined(O_ASYNC)
    int fl;

    if (h->watch_fd < 0) {
        return;
    }
    apr_signal(SIGIO, SIG_DFL);
    fl = fcntl(h->watch_fd, F_GETFL);
    if (fl >= 0 && fcntl(h->watch_fd, F_SETOWN, (int)getpid()) == 0) {
        (void)fcntl(h->watch_fd, F_SETFL, fl | O_ASYNC | O_NONBLOCK);
    }
#else
    (void)h;
#endif
}

static void maybe_expiring(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                           apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    mdt_window ww = mdt_domain_warn_window(rt->conf, st->md);
    apr_interval_time_t len;

    if (st->served_fallback || !st->served.not_after) {
        return;
    }
    if (st->restart_requested == 1) {
        return;     /* the restart this helper asked for replaces it */
    }
    len = mdt_window_length(&ww, st->served.not_after - st->served.not_before);
    if (now < st->served.not_after - len) {
        return;
    }
    if (st->expiring_event_at && now - st->expiring_event_at < EXPIRING_EVERY) {
        return;
    }
    st->expiring_event_at = now;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02060: MDomain %s: the certificate "
                 "in use expires %s (within MDWarnWindow %s) and no newer one could be "
                 "obtained yet%s%s", st->md->name,
                 mdt_time_rfc3339(p, st->served.not_after), mdt_window_str(p, &ww),
                 st->err_text[0] ? "; last error: " : "", st->err_text);
    (void)mdt_event_fire(s, rt, st, "expiring", p);
}

static void maybe_errored(server_rec *s, const mdt_runtime *rt, mdt_state *st,
                          apr_pool_t *p)
{
    apr_time_t now = apr_time_now();

    if (!strcmp(st->errored_event_kind, st->err_kind) && st->errored_event_at
        && now - st->errored_event_at < ERRORED_EVERY) {
        return;     /* reported at most hourly, unless the failure changes */
    }
    st->errored_event_at = now;
    apr_cpystrn(st->errored_event_kind, st->err_kind, sizeof(st->errored_event_kind));
    (void)mdt_event_fire(s, rt, st, "errored", p);
}

/* The parent installs its signal handlers only when the MPM starts running,
 * after post_config forked us; until then SIGUSR1 would terminate it.  Wait
 * (bounded) until /proc shows the parent catches the signal. */
static void wait_parent_catches_graceful(const mdt_helper *h, apr_pool_t *p)
{
    const char *path = apr_psprintf(p, "/proc/%ld/status", (long)h->parent);
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(10);

    while (apr_time_now() < deadline) {
        char text[4096];
        const char *cgt;
        ssize_t n = -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
            n = read(fd, text, sizeof(text) - 1);   /* SigCgt is in the first 1k */
            close(fd);
        }
        if (n <= 0) {
            apr_sleep(apr_time_from_sec(1));    /* no /proc: a short grace */
            return;
        }
        text[n] = '\0';
        cgt = strstr(text, "\nSigCgt:");
        if (cgt) {
            unsigned long long mask = strtoull(cgt + 8, NULL, 16);
            if (mask & (1ULL << (AP_SIG_GRACEFUL - 1))) {
                return;
            }
        }
        apr_sleep(apr_time_from_msec(50));
    }
}

static void helper_save(mdt_helper *h, mdt_state *st, apr_pool_t *p);

static void activate(mdt_helper *h, mdt_state *st, apr_pool_t *p)
{
    server_rec *s = h->s;

    if (!strcmp(st->cert.fingerprint, st->served.fingerprint) || st->restart_requested) {
        return;
    }
    if (!mdt_config_auto_restart(h->rt->conf)) {
        if (strcmp(st->restart_fp, st->cert.fingerprint)) {
            /* once per certificate, also across helper restarts */
            apr_cpystrn(st->restart_fp, st->cert.fingerprint, sizeof(st->restart_fp));
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02033: MDomain %s: a new "
                         "certificate is stored; it becomes active with the next "
                         "graceful restart (MDTailscaleAutoRestart is off)",
                         st->md->name);
        }
        return;
    }
    if (!strcmp(st->restart_fp, st->cert.fingerprint)) {
        /* an earlier generation asked for a restart for it, and this one
         * still does not serve it: asking again would loop (2: gave up, the
         * served certificate stays the one to warn about) */
        st->restart_requested = 2;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02107: MDomain %s: the stored "
                     "certificate %s (%s) was not taken up by the graceful restart "
                     "asked for it; httpd serves %s. Check the error log of that "
                     "restart (mod_ssl) and restart httpd", st->md->name,
                     st->cert.fingerprint, st->cert.gen,
                     st->served_fallback ? "the fallback certificate"
                                         : st->served.fingerprint);
        return;
    }
    st->restart_requested = 1;
    apr_cpystrn(st->restart_fp, st->cert.fingerprint, sizeof(st->restart_fp));
    helper_save(h, st, p);      /* the restart ends this helper */
    wait_parent_catches_graceful(h, p);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02032: MDomain %s: asking httpd "
                 "(pid %ld) for a graceful restart to activate the new certificate",
                 st->md->name, (long)h->parent);
    if (kill(h->parent, AP_SIG_GRACEFUL) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "TS02092: MDomain %s: cannot "
                     "signal httpd; activate the certificate with a graceful "
                     "restart", st->md->name);
    }
}

/* The store against what this generation serves, at the helper's start and
 * after every check: a usable stored certificate that is not the served one
 * and lasts longer (or replaces the fallback) is activated, whoever stored
 * it and whenever (a helper killed between storing and asking included). */
static void reconcile(mdt_helper *h, mdt_state *st, apr_pool_t *p)
{
    const char *why;
    mdt_stored *act = mdt_store_load(p, h->rt->store_dir, st->md, apr_time_now(), &why);

    mdt_state_set_cert(&st->cert, act ? act->pair : NULL, act ? act->gen : NULL);
    if (act && strcmp(act->pair->fingerprint, st->served.fingerprint)
        && (st->served_fallback || act->pair->not_after > st->served.not_after)) {
        activate(h, st, p);
    }
}

/* Publish and write the status; the store's condition (checked as the
 * parent checks it, the status file written or not) goes with it. */
static void helper_save(mdt_helper *h, mdt_state *st, apr_pool_t *p)
{
    const char *problem = mdt_store_init(p, h->rt->store_dir);
    const char *err = mdt_state_save(p, h->rt, st, !problem);

    if (mdt_driver_store_check(h->s, h->rt, st, problem ? problem : err)) {
        (void)mdt_state_save(p, h->rt, st, !problem);
    }
}

static void helper_start_domain(mdt_helper *h, mdt_state *st, tsl_client *client,
                                apr_pool_t *p)
{
    const mdt_runtime *rt = h->rt;
    apr_time_t now = apr_time_now();

    st->pid = (int)getpid();
    mdt_state_resume(p, rt, st);
    if (!st->served_fallback && st->served.fingerprint[0]
        && strcmp(st->served.fingerprint, st->known_fp)) {
        /* served, but unknown to the status file (it could not be written
         * when the certificate was stored, or was lost): count it now.
         * The parent's wait at startup records what it obtains, so known_fp
         * is that certificate and it is not counted twice; the counters
         * resumed above start from zero in every helper, as the parent
         * never resumes the state it forks us with (mdt_ssl.c) */
        st->pending_renewed = 1;
        st->obtained++;
        st->renewals += st->known_fp[0] != '\0';
    }
    if (st->served_fallback) {
        (void)mdt_driver_probe(h->s, rt, st, client, p);
    }
    /* one check now (cheap on tailscaled's cache; picks up a renewal it did
     * meanwhile), unless the parent just failed and asks us to wait */
    if (!st->next_check || !strcmp(st->err_kind, "timeout") || st->next_check < now) {
        st->next_check = now;
    }
    if (st->retry_after_until > st->next_check) {
        st->next_check = st->retry_after_until;     /* never sooner than a 429 said */
    }
    if (st->pending_renewed) {
        st->pending_renewed = 0;
        (void)mdt_event_fire(h->s, rt, st, "renewed", p);
    }
    if (!st->served_fallback && st->served.fingerprint[0]
        && strcmp(st->served.fingerprint, st->installed_fp)) {
        apr_cpystrn(st->installed_fp, st->served.fingerprint, sizeof(st->installed_fp));
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, h->s, "TS02034: MDomain %s: "
                     "certificate %s (valid until %s) is installed and in use",
                     st->md->name, st->served.fingerprint,
                     mdt_time_rfc3339(p, st->served.not_after));
        (void)mdt_event_fire(h->s, rt, st, "installed", p);
    }
    if (st->err_kind[0]) {
        maybe_errored(h->s, rt, st, p);
    }
    reconcile(h, st, p);
    maybe_expiring(h->s, rt, st, p);
    helper_save(h, st, p);
}

/* Wall clock against the monotonic clock, to notice the system clock being
 * set (NTP step, a VM resumed): the schedule is wall-clock times (notAfter
 * decides renewals), so after a jump every domain is checked at once and a
 * 429's Retry-After, an interval, moves with the clock. */
typedef struct clock_pair {
    apr_time_t wall;
    apr_time_t mono;
} clock_pair;

static apr_time_t mono_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return apr_time_from_sec((apr_time_t)ts.tv_sec) + ts.tv_nsec / 1000;
}

#define CLOCK_JUMP apr_time_from_sec(5)

static void follow_clock_jump(mdt_helper *h, clock_pair *c, apr_time_t now)
{
    apr_time_t mono = mono_now();
    apr_interval_time_t jump = (now - c->wall) - (mono - c->mono);
    int i;

    if (c->mono && mono && (jump > CLOCK_JUMP || jump < -CLOCK_JUMP)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, h->s, "TS02109: the system clock "
                     "was set %s by %" APR_TIME_T_FMT " s; checking every domain now",
                     jump > 0 ? "forward" : "back",
                     apr_time_sec(jump > 0 ? jump : -jump));
        for (i = 0; i < h->rt->states->nelts; ++i) {
            mdt_state *st = APR_ARRAY_IDX(h->rt->states, i, mdt_state *);
            if (st->retry_after_until) {
                st->retry_after_until += jump;
            }
            st->next_check = st->retry_after_until > now ? st->retry_after_until : now;
        }
    }
    c->wall = now;
    c->mono = mono;
}

static void helper_main(mdt_helper *h)
{
    clock_pair clock = { 0, 0 };
    mdt_runtime *rt = h->rt;
    apr_pool_t *hp, *tp;
    tsl_client **clients;
    tsl_client_options opts;
    sigset_t none;
    int i, n = rt->states->nelts;

#ifdef __linux__
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    parent_gone_check(h);
    apr_signal(SIGTERM, SIG_DFL);
    apr_signal(SIGINT, SIG_DFL);
    apr_signal(SIGHUP, SIG_DFL);
    apr_signal(SIGUSR1, SIG_DFL);
    apr_signal(SIGWINCH, SIG_DFL);
    apr_signal(SIGCHLD, SIG_DFL);
    apr_signal(SIGPIPE, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ap_close_listeners();
    watch_stop_pipe(h);
    parent_gone_check(h);   /* stopped before we got here */

    apr_pool_create(&hp, NULL);
    apr_pool_tag(hp, "md_tailscale_helper");
    tsl_global_init();
    tsl_client_options_default(&opts);
    opts.timeout = mdt_config_request_timeout(rt->conf);
    clients = apr_pcalloc(hp, sizeof(*clients) * (apr_size_t)(n ? n : 1));
    for (i = 0; i < n; ++i) {
        mdt_state *st = APR_ARRAY_IDX(rt->states, i, mdt_state *);
        clients[i] = tsl_client_create(hp, st->md->socket, &opts);
        apr_pool_create(&tp, hp);
        helper_start_domain(h, st, clients[i], tp);
        apr_pool_destroy(tp);
    }

    for (;;) {
        apr_time_t now, due = 0;

        parent_gone_check(h);
        now = apr_time_now();
        follow_clock_jump(h, &clock, now);
        for (i = 0; i < n; ++i) {
            mdt_state *st = APR_ARRAY_IDX(rt->states, i, mdt_state *);
            if (!due || st->next_check < due) {
                due = st->next_check;
            }
        }
        if (!n || due > now) {
            apr_interval_time_t nap = n ? due - now : apr_time_from_sec(1);
            helper_sleep(h, nap > apr_time_from_sec(1) ? apr_time_from_sec(1) : nap);
            continue;
        }
        for (i = 0; i < n; ++i) {
            mdt_state *st = APR_ARRAY_IDX(rt->states, i, mdt_state *);
            mdt_check_outcome out;

            if (st->next_check > now) {
                continue;
            }
            apr_pool_create(&tp, hp);
            out = mdt_driver_check(h->s, rt, st, clients[i], tp,
                                   mdt_config_request_timeout(rt->conf));
            parent_gone_check(h);
            if (out == MDT_CHECK_NEW) {
                (void)mdt_event_fire(h->s, rt, st, "renewed", tp);
            }
            else if (out == MDT_CHECK_FAILED) {
                maybe_errored(h->s, rt, st, tp);
            }
            reconcile(h, st, tp);
            maybe_expiring(h->s, rt, st, tp);
            helper_save(h, st, tp);
            apr_pool_destroy(tp);
        }
    }
}

/* ---- in the parent ------------------------------------------------------ */

static void close_stop_pipe(mdt_helper *h)
{
    if (h->stop_fd >= 0) {
        close(h->stop_fd);
        h->stop_fd = -1;
    }
}

/* Reap the helper if it ends within grace; 1 when it is gone. */
static int reaped_within(mdt_helper *h, apr_interval_time_t grace)
{
    apr_time_t deadline = apr_time_now() + grace;
    int status;

    for (;;) {
        pid_t r = waitpid(h->proc.pid, &status, WNOHANG);
        if (r == h->proc.pid || (r < 0 && errno != EINTR)) {
            return 1;   /* reaped, or not our child any more */
        }
        if (apr_time_now() >= deadline) {
            return 0;
        }
        apr_sleep(apr_time_from_msec(10));
    }
}

/* Tell the helper to end and reap it, never waiting without bound: httpd
 * -X (one process) has changed to its User before it stops and may not
 * signal the helper any more; the closed pipe still reaches it. */
static void stop_helper(mdt_helper *h)
{
    if (!h->running) {
        close_stop_pipe(h);
        return;
    }
    h->stopping = 1;
    close_stop_pipe(h);
    (void)kill(h->proc.pid, SIGTERM);
    if (!reaped_within(h, STOP_GRACE)) {
        (void)kill(h->proc.pid, SIGKILL);
        if (!reaped_within(h, KILL_GRACE)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, h->s, "TS02074: the certificate "
                         "helper (pid %ld) did not end when asked; httpd goes on without "
                         "waiting for it. It ends by itself once it notices httpd has "
                         "gone; if it is still there, end it with kill -9 %ld",
                         (long)h->proc.pid, (long)h->proc.pid);
            h->running = 0;
            return;
        }
    }
    h->running = 0;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, h->s, "TS02075: certificate helper "
                 "(pid %ld) stopped", (long)h->proc.pid);
}

static void helper_maintenance(int reason, void *data, int status)
{
    mdt_helper *h = data;

    if (getpid() != h->parent) {
        return;     /* a request-serving child tearing down its copy */
    }
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        h->running = 0;
        h->died = apr_time_now();
        if (h->died - h->started > apr_time_from_sec(600)) {
            h->deaths = 0;      /* it had run fine for a while */
        }
        h->deaths++;
        close_stop_pipe(h);
        if (!h->stopping) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, h->s, "TS02071: certificate "
                         "helper (pid %ld) ended unexpectedly (%s %d); the stored "
                         "certificates stay in use and the helper is started again",
                         (long)h->proc.pid,
                         WIFSIGNALED(status) ? "signal" : "exit status",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
        if (h->registered) {
            h->registered = 0;
            apr_proc_other_child_unregister(h);
        }
        break;
    case APR_OC_REASON_RESTART:
        if (h->running) {
            h->stopping = 1;
            close_stop_pipe(h);
            (void)kill(h->proc.pid, SIGTERM);
        }
        break;
    case APR_OC_REASON_UNREGISTER:
        h->registered = 0;
        stop_helper(h);
        break;
    default:
        break;
    }
}

static apr_status_t helper_cleanup(void *data)
{
    mdt_helper *h = data;

    if (getpid() == h->parent && current == h) {
        current = NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t make_stop_pipe(int fds[2])
{
    if (pipe(fds) != 0) {
        return errno;
    }
    /* nothing exec()ed from httpd may keep the helper alive */
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return APR_SUCCESS;
}

static apr_status_t spawn(mdt_helper *h)
{
    apr_status_t rv;
    int i, fds[2];

    h->stopping = 0;
    if ((rv = make_stop_pipe(fds)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, h->s, "TS02076: cannot start the "
                     "certificate helper process (no pipe: check the open files "
                     "limit)");
        h->died = apr_time_now();
        return rv;
    }
    rv = apr_proc_fork(&h->proc, h->pconf);
    if (rv == APR_INCHILD) {
        close(fds[1]);
        h->stop_fd = -1;
        h->watch_fd = fds[0];
        helper_main(h);
        _exit(0);
    }
    close(fds[0]);
    if (rv != APR_INPARENT) {
        close(fds[1]);
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, h->s, "TS02077: cannot start the "
                     "certificate helper process (fork failed: check the process "
                     "limit)");
        h->died = apr_time_now();
        return rv;
    }
    h->stop_fd = fds[1];
    h->running = 1;
    h->started = apr_time_now();
    apr_proc_other_child_register(&h->proc, helper_maintenance, h, NULL, h->pconf);
    h->registered = 1;
    for (i = 0; i < h->rt->states->nelts; ++i) {
        /* the helper fired what was pending; a respawned one must not again */
        APR_ARRAY_IDX(h->rt->states, i, mdt_state *)->pending_renewed = 0;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, h->s, "TS02070: certificate helper started "
                 "(pid %ld, uid %ld)", (long)h->proc.pid, (long)getuid());
    return APR_SUCCESS;
}

apr_status_t mdt_helper_start(apr_pool_t *pconf, server_rec *s, mdt_runtime *rt)
{
    mdt_helper *h = apr_pcalloc(pconf, sizeof(*h));

    h->pconf = pconf;
    h->s = s;
    h->rt = rt;
    h->parent = getpid();
    h->stop_fd = -1;
    h->watch_fd = -1;
    current = h;
    apr_pool_cleanup_register(pconf, h, helper_cleanup, apr_pool_cleanup_null);
    return spawn(h);
}

void mdt_helper_monitor(void)
{
    mdt_helper *h = current;
    apr_interval_time_t delay;

    if (!h || h->running || getpid() != h->parent) {
        return;
    }
    /* 10s, 20s, ... up to 5 minutes after repeated deaths */
    delay = RESPAWN_DELAY * (h->deaths < 30 ? h->deaths : 30);
    if (delay < RESPAWN_DELAY) {
        delay = RESPAWN_DELAY;
    }
    if (apr_time_now() - h->died >= delay) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, h->s, "TS02078: starting the "
                     "certificate helper again");
        (void)spawn(h);
    }
}

void mdt_helper_child_init(void)
{
    mdt_helper *h = current;

    /* a request-serving child must not hold the helper's stop pipe open
     * (with httpd -X this is the parent itself: keep it) */
    if (h && getpid() != h->parent && h->stop_fd >= 0) {
        close(h->stop_fd);
        h->stop_fd = -1;
    }
}
