/* mod_md_tailscale: atomic certificate store (layout in mdt_store.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "mdt_store.h"

#define KEY_FILE   "privkey.pem"
#define CHAIN_FILE "pubcert.pem"
#define CURRENT    "current"

/* What to do about a failed system call on the store, for the log line. */
static const char *fix_for(apr_pool_t *p, const char *path, int err)
{
    switch (err) {
    case EROFS:
        return apr_psprintf(p, " (fix: the file system holding %s is mounted "
                            "read-only: remount it read-write, e.g. mount -o "
                            "remount,rw $(stat -c %%m %s), or point MDTailscaleStoreDir "
                            "at a writable directory)", path, path);
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return apr_psprintf(p, " (fix: free space on the file system holding %s: "
                            "df -h %s)", path, path);
    case EACCES:
    case EPERM:
        return apr_psprintf(p, " (fix: let uid %ld write there: chown %ld %s)",
                            (long)geteuid(), (long)geteuid(), path);
    case ENOENT:
        return " (the store was removed: it is created again)";
    default:
        return "";
    }
}

static const char *sys_err(apr_pool_t *p, const char *what, const char *path, int err)
{
    return apr_psprintf(p, "%s %s: %s%s", what, path, strerror(err),
                        fix_for(p, path, err));
}

/* Make path a directory of the store with mode, created when missing and
 * chmod()ed only when its mode differs (a read-only store whose modes are
 * right stays usable). */
static const char *mkdir_mode(apr_pool_t *p, const char *path, mode_t mode)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            return sys_err(p, "cannot stat", path, errno);
        }
        if (mkdir(path, mode) != 0 && errno != EEXIST) {
            return sys_err(p, "cannot create directory", path, errno);
        }
        if (lstat(path, &st) != 0) {
            return sys_err(p, "cannot stat", path, errno);
        }
    }
    if (S_ISLNK(st.st_mode)) {
        return apr_psprintf(p, "%s is a symbolic link; the store does not follow "
                            "links (make it a directory, or point MDTailscaleStoreDir "
                            "at the link's target)", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        return apr_psprintf(p, "%s exists but is not a directory (fix: move it away, "
                            "mv %s %s.old)", path, path, path);
    }
    if (st.st_uid != geteuid()) {
        return apr_psprintf(p, "%s is owned by uid %ld, not by uid %ld that keeps the "
                            "store; others could replace its keys (fix: chown %ld %s)",
                            path, (long)st.st_uid, (long)geteuid(), (long)geteuid(),
                            path);
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        return apr_psprintf(p, "%s is writable by its group or by others; others could "
                            "replace its keys (fix: chmod go-w %s)", path, path);
    }
    /* umask may have narrowed it; someone may have widened it */
    if ((st.st_mode & 07777) != mode && chmod(path, mode) != 0) {
        return sys_err(p, "cannot set the mode of", path, errno);
    }
    return NULL;
}

static const char *mkdir_parents(apr_pool_t *p, const char *path)
{
    char *copy = apr_pstrdup(p, path), *s;

    for (s = copy + 1; *s; ++s) {
        if (*s == '/') {
            *s = '\0';
            if (access(copy, F_OK) != 0 && mkdir(copy, 0755) != 0
                && errno != EEXIST) {
                return sys_err(p, "cannot create directory", copy, errno);
            }
            *s = '/';
        }
    }
    return NULL;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static const char *write_new_file(apr_pool_t *p, const char *path, const char *data,
                                  apr_size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    apr_size_t off = 0;

    if (fd < 0) {
        return sys_err(p, "cannot create", path, errno);
    }
    if (fchmod(fd, mode) != 0) {
        int err = errno;
        close(fd);
        return sys_err(p, "cannot set the mode of", path, err);
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            int err = errno;
            if (err == EINTR) {
                continue;
            }
            close(fd);
            return sys_err(p, "cannot write", path, err);
        }
        off += (apr_size_t)n;
    }
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return sys_err(p, "cannot sync", path, err);
    }
    if (close(fd) != 0) {
        return sys_err(p, "cannot close", path, errno);
    }
    return NULL;
}

static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash != path ? apr_pstrmemdup(p, path, (apr_size_t)(slash - path)) : "/";
}

const char *mdt_store_write_atomic(apr_pool_t *p, const char *path, const char *data,
                                   apr_size_t len, int mode)
{
    const char *tmp = apr_psprintf(p, "%s.tmp%ld", path, (long)getpid());
    const char *err;

    (void)unlink(tmp);
    if ((err = write_new_file(p, tmp, data, len, (mode_t)mode))) {
        (void)unlink(tmp);
        return err;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        (void)unlink(tmp);
        return sys_err(p, "cannot rename into", path, e);
    }
    fsync_dir(dir_of(p, path));
    return NULL;
}

char *mdt_store_read(apr_pool_t *p, const char *path, apr_size_t max, apr_size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    char *buf;
    apr_size_t off = 0;

    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (apr_size_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    buf = apr_palloc(p, (apr_size_t)st.st_size + 1);
    while (off < (apr_size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (apr_size_t)st.st_size - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (apr_size_t)n;
    }
    close(fd);
    buf[off] = '\0';
    if (len) {
        *len = off;
    }
    return buf;
}

const char *mdt_store_init(apr_pool_t *p, const char *dir)
{
    const char *err;

    if ((err = mkdir_parents(p, dir))
        || (err = mkdir_mode(p, dir, 0755))
        || (err = mkdir_mode(p, apr_pstrcat(p, dir, "/domains", NULL), 0700))
        || (err = mkdir_mode(p, apr_pstrcat(p, dir, "/fallback", NULL), 0700))
        || (err = mkdir_mode(p, apr_pstrcat(p, dir, "/status", NULL), 0755))) {
        return err;
    }
    return NULL;
}

const char *mdt_store_dname(apr_pool_t *p, const char *request)
{
    if (request[0] == '*' && request[1] == '.') {
        return apr_pstrcat(p, "wildcard_", request + 1, NULL);
    }
    return request;
}

const char *mdt_store_domain_dir(apr_pool_t *p, const char *dir, const mdt_domain *d)
{
    return apr_pstrcat(p, dir, "/domains/", mdt_store_dname(p, d->request), NULL);
}

const char *mdt_store_fallback_dir(apr_pool_t *p, const char *dir, const mdt_domain *d)
{
    return apr_pstrcat(p, dir, "/fallback/", mdt_store_dname(p, d->request), NULL);
}

const char *mdt_store_status_path(apr_pool_t *p, const char *dir, const mdt_domain *d)
{
    return apr_pstrcat(p, dir, "/status/", mdt_store_dname(p, d->request), ".json", NULL);
}

const char *mdt_store_job_path(apr_pool_t *p, const char *dir, const mdt_domain *d)
{
    return apr_pstrcat(p, mdt_store_domain_dir(p, dir, d), "/job.json", NULL);
}

const char *mdt_store_domain_init(apr_pool_t *p, const char *dir, const mdt_domain *d)
{
    return mkdir_mode(p, mdt_store_domain_dir(p, dir, d), 0700);
}

/* ---- usability -------------------------------------------------------- */

static int san_covers(const char *san, const char *name)
{
    if (!strcasecmp(san, name)) {
        return 1;
    }
    if (san[0] == '*' && san[1] == '.' && name[0] != '*') {
        const char *dot = strchr(name, '.');
        return dot && dot != name && !strcasecmp(dot + 1, san + 2);
    }
    return 0;
}

const char *mdt_store_pair_usable(apr_pool_t *p, const tsl_cert_pair *pair,
                                  const mdt_domain *d, apr_time_t now)
{
    int i, j;

    if (now < pair->not_before) {
        return "the certificate is not valid yet";
    }
    if (now >= pair->not_after) {
        return "the certificate has expired";
    }
    for (i = 0; i < d->names->nelts; ++i) {
        const char *n = APR_ARRAY_IDX(d->names, i, const char *);
        int ok = 0;
        for (j = 0; pair->names && j < pair->names->nelts && !ok; ++j) {
            ok = san_covers(APR_ARRAY_IDX(pair->names, j, const char *), n);
        }
        if (!ok) {
            return apr_psprintf(p, "the certificate does not cover %s (it has %s)", n,
                                pair->names && pair->names->nelts
                                ? apr_array_pstrcat(p, pair->names, ' ') : "no names");
        }
    }
    return NULL;
}

/* ---- generations ------------------------------------------------------ */

static mdt_stored *load_gen(apr_pool_t *p, const char *ddir, const char *gen,
                            const mdt_domain *d, apr_time_t now, const char **why)
{
    mdt_stored *s = apr_pcalloc(p, sizeof(*s));
    tsl_result res;
    const char *bad;

    s->gen = gen;
    s->key_file = apr_pstrcat(p, ddir, "/", gen, "/" KEY_FILE, NULL);
    s->chain_file = apr_pstrcat(p, ddir, "/", gen, "/" CHAIN_FILE, NULL);
    tsl_result_init(&res);
    if (tsl_cert_pair_load(p, s->key_file, s->chain_file, &s->pair, &res) != TSL_OK) {
        *why = apr_psprintf(p, "generation %s: %s", gen, res.text);
        return NULL;
    }
    /* now == 0: any dates (the last resort when none is valid any more) */
    if ((bad = mdt_store_pair_usable(p, s->pair, d,
                                     now ? now : s->pair->not_before))) {
        *why = apr_psprintf(p, "generation %s: %s", gen, bad);
        return NULL;
    }
    return s;
}

static int is_gen_name(const char *n)
{
    return n[0] == 'g' && strlen(n) > 1 && !strchr(n, '/');
}

/* Leftovers of a save: a generation being written, a link being made, a
 * "current" that was not a link and was moved aside, a job record being
 * written by a helper that was ended meanwhile. */
static int is_leftover(const char *n)
{
    return !strncmp(n, ".tmp-", 5) || !strncmp(n, ".current.tmp", 12)
           || !strncmp(n, "job.json.tmp", 12);
}

static apr_array_header_t *list_gens(apr_pool_t *p, const char *ddir, int with_tmp)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    DIR *dh = opendir(ddir);
    struct dirent *e;

    if (!dh) {
        return a;
    }
    while ((e = readdir(dh)) != NULL) {
        if (is_gen_name(e->d_name) || (with_tmp && is_leftover(e->d_name))) {
            APR_ARRAY_PUSH(a, const char *) = apr_pstrdup(p, e->d_name);
        }
    }
    closedir(dh);
    return a;
}

static const char *current_gen(apr_pool_t *p, const char *ddir)
{
    char buf[256];
    ssize_t n = readlink(apr_pstrcat(p, ddir, "/" CURRENT, NULL), buf, sizeof(buf) - 1);

    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    return is_gen_name(buf) ? apr_pstrdup(p, buf) : NULL;
}

mdt_stored *mdt_store_load(apr_pool_t *p, const char *dir, const mdt_domain *d,
                           apr_time_t now, const char **why)
{
    const char *ddir = mdt_store_domain_dir(p, dir, d);
    const char *cur = current_gen(p, ddir);
    const char *reason = "no certificate stored yet";
    mdt_stored *s = NULL, *best = NULL;
    apr_array_header_t *gens;
    int i;

    if (cur && (s = load_gen(p, ddir, cur, d, now, &reason))) {
        return s;
    }
    /* the active one is unusable (expired, or damaged by hand), or "current"
     * is not a link (restored with cp -r): the best other one */
    gens = list_gens(p, ddir, 0);
    for (i = 0; i < gens->nelts; ++i) {
        const char *g = APR_ARRAY_IDX(gens, i, const char *);
        const char *r2;
        if (cur && !strcmp(g, cur)) {
            continue;
        }
        if ((s = load_gen(p, ddir, g, d, now, &r2))) {
            if (!best || s->pair->not_after > best->pair->not_after) {
                best = s;
            }
        }
    }
    if (!best && why) {
        *why = reason;
    }
    return best;
}

/* A "current" that is not a symbolic link (a directory restored with cp -r,
 * a file) cannot be replaced by rename(): move it aside, where prune finds it. */
static const char *move_aside_current(apr_pool_t *p, const char *ddir, const char *gen,
                                      int *moved)
{
    const char *cur = apr_pstrcat(p, ddir, "/" CURRENT, NULL);
    const char *aside = apr_pstrcat(p, ddir, "/.tmp-current-", gen, NULL);
    struct stat st;

    *moved = 0;
    if (lstat(cur, &st) != 0 || S_ISLNK(st.st_mode)) {
        return NULL;
    }
    if (rename(cur, aside) != 0) {
        return sys_err(p, "cannot move aside the non-link", cur, errno);
    }
    *moved = 1;
    return NULL;
}

static void remove_gen_dir(apr_pool_t *p, const char *path)
{
    DIR *dh = opendir(path);
    struct dirent *e;

    if (dh) {
        while ((e = readdir(dh)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                (void)unlink(apr_pstrcat(p, path, "/", e->d_name, NULL));
            }
        }
        closedir(dh);
    }
    if (rmdir(path) != 0 && errno == ENOTDIR) {
        (void)unlink(path);
    }
}

const char *mdt_store_save(apr_pool_t *p, const char *dir, const mdt_domain *d,
                           const tsl_cert_pair *pair, mdt_stored **out,
                           const char **note)
{
    const char *ddir = mdt_store_domain_dir(p, dir, d);
    const char *gen = apr_psprintf(p, "g%016" APR_UINT64_T_HEX_FMT,
                                   (apr_uint64_t)apr_time_now());
    const char *tmp = apr_pstrcat(p, ddir, "/.tmp-", gen, NULL);
    const char *final = apr_pstrcat(p, ddir, "/", gen, NULL);
    /* per process and generation: two servers sharing the store never
     * replace each other's link in the making */
    const char *link_tmp = apr_psprintf(p, "%s/.current.tmp%ld-%s", ddir,
                                        (long)getpid(), gen);
    const char *err;
    mdt_stored *s;
    int moved = 0;

    if (note) {
        *note = NULL;
    }
    /* the same checks as the parent's at every start: never store (and so
     * never ask for a restart) into a store the parent would refuse */
    if ((err = mdt_store_init(p, dir)) || (err = mkdir_mode(p, ddir, 0700))) {
        return err;
    }
    if (mkdir(tmp, 0700) != 0) {
        return sys_err(p, "cannot create directory", tmp, errno);
    }
    if ((err = write_new_file(p, apr_pstrcat(p, tmp, "/" KEY_FILE, NULL), pair->key_pem,
                              strlen(pair->key_pem), 0600))
        || (err = write_new_file(p, apr_pstrcat(p, tmp, "/" CHAIN_FILE, NULL),
                                 pair->chain_pem, strlen(pair->chain_pem), 0644))) {
        remove_gen_dir(p, tmp);
        return err;
    }
    fsync_dir(tmp);
    if (rename(tmp, final) != 0) {
        int e = errno;
        remove_gen_dir(p, tmp);
        return sys_err(p, "cannot rename into", final, e);
    }
    fsync_dir(ddir);
    if ((err = move_aside_current(p, ddir, gen, &moved))) {
        return err;
    }
    if (moved && note) {
        *note = apr_psprintf(p, "%s/" CURRENT " was not a symbolic link (restored "
                             "with cp -r?); it was moved aside to %s/.tmp-current-%s "
                             "and replaced", ddir, ddir, gen);
    }
    if (symlink(gen, link_tmp) != 0) {
        return sys_err(p, "cannot create", link_tmp, errno);
    }
    if (rename(link_tmp, apr_pstrcat(p, ddir, "/" CURRENT, NULL)) != 0) {
        int e = errno;
        (void)unlink(link_tmp);
        return sys_err(p, "cannot activate", final, e);
    }
    fsync_dir(ddir);
    if (out) {
        s = apr_pcalloc(p, sizeof(*s));
        s->gen = gen;
        s->key_file = apr_pstrcat(p, final, "/" KEY_FILE, NULL);
        s->chain_file = apr_pstrcat(p, final, "/" CHAIN_FILE, NULL);
        s->pair = (tsl_cert_pair *)pair;
        *out = s;
    }
    return NULL;
}

/* Another server sharing the store may be writing one right now: only
 * leftovers older than this are its abandoned ones. */
#define LEFTOVER_AGE 600

void mdt_store_prune(apr_pool_t *p, const char *dir, const mdt_domain *d,
                     const char *keep_gen)
{
    const char *ddir = mdt_store_domain_dir(p, dir, d);
    const char *cur = current_gen(p, ddir);
    apr_array_header_t *gens = list_gens(p, ddir, 1);
    time_t now = time(NULL);
    int i;

    if (!cur) {
        return;     /* nothing active: keep everything for inspection */
    }
    for (i = 0; i < gens->nelts; ++i) {
        const char *g = APR_ARRAY_IDX(gens, i, const char *);
        const char *path = apr_pstrcat(p, ddir, "/", g, NULL);
        struct stat st;

        if (!strcmp(g, cur) || (keep_gen && !strcmp(g, keep_gen))) {
            continue;
        }
        if (is_leftover(g) && strncmp(g, ".tmp-current-", 13)
            && (lstat(path, &st) != 0 || now - st.st_mtime < LEFTOVER_AGE)) {
            continue;
        }
        remove_gen_dir(p, path);
    }
}
