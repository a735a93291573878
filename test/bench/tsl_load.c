/* tsl_load: a small HTTP/1.1 load generator for the mod_tailscale benchmark.
 *
 * What wrk, h2load and ab cannot do: pick the source address of every
 * connection (round-robin over several tailnet addresses inside a network
 * namespace), give every connection a distinct, never reused source
 * address:port (100,000 distinct userspace-style peers), and talk HTTP over a
 * unix socket (the tailscaled LocalAPI).  One thread per concurrent client,
 * blocking sockets; latency is recorded per request (connect included when
 * each request has its own connection).
 *
 *   tsl_load --connect 100.100.0.1:8080 --src 100.90.0.1,100.90.0.2 \
 *            --path /user/bench.html --concurrency 32 --duration 5
 *   tsl_load --connect 127.0.0.1:8080 --src 127.0.0.1,127.0.0.2 \
 *            --src-ports 10000-59999 --requests 100000 --concurrency 16
 *   tsl_load --unix /tmp/x/tailscaled.sock --host local-tailscaled.sock \
 *            --keepalive --path '/localapi/v0/whois?addr=100.64.0.2' --duration 3
 *
 * Prints one JSON object: requests, ok (status == --expect), errors,
 * status counts, elapsed seconds, rps, latency percentiles in microseconds.
 * Every run ends by itself: at --duration, at --requests, or when the
 * distinct source pairs run out; each socket operation times out after 10 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SRC 64
#define MAX_PATHS 64
#define BUFSZ (256 * 1024)

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
} addr_t;

static struct {
    addr_t target;
    int unix_target;
    addr_t src[MAX_SRC];
    int nsrc;
    int port_lo, port_hi;          /* distinct source pairs when port_lo > 0 */
    int keepalive;
    int linger0;
    const char *paths[MAX_PATHS];
    int npaths;
    const char *host;
    const char *extra_headers;
    int concurrency;
    double duration;
    long max_requests;
    int expect;
} opt;

static atomic_long issued;          /* requests started (for --requests) */
static atomic_long pair_next;       /* next distinct (src, port) pair */
static atomic_int stop_flag;
static double t_end;

typedef struct {
    pthread_t tid;
    int idx;
    long requests, ok, errors, bind_skips, conn_errors;
    long status[600];
    uint32_t *lat;
    size_t nlat, caplat;
    char *buf;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, int port, addr_t *a)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->sa;
    if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a->len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->len = sizeof(*v6);
        return 0;
    }
    return -1;
}

/* "1.2.3.4:80" or "[fd7a::1]:80" */
static int parse_hostport(const char *s, addr_t *a)
{
    char host[128];
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host)) return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host)) return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    return parse_addr(host, atoi(colon + 1), a);
}

static void set_port(addr_t *a, int port)
{
    if (a->sa.ss_family == AF_INET) ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)port);
    else ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)port);
}

static void set_timeouts(int fd)
{
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Open a connection; returns fd, -1 on error, -2 when the distinct source
 * pairs are exhausted. */
static int open_conn(worker_t *w, long seq)
{
    int fd;
    if (opt.unix_target) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        set_timeouts(fd);
        if (connect(fd, (struct sockaddr *)&opt.target.sa, opt.target.len) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    for (;;) {
        addr_t src;
        int have_src = 0;
        if (opt.port_lo > 0) {
            long span = (long)(opt.port_hi - opt.port_lo + 1);
            long k = atomic_fetch_add(&pair_next, 1);
            if (k >= span * opt.nsrc) return -2;
            src = opt.src[k / span];
            set_port(&src, opt.port_lo + (int)(k % span));
            have_src = 1;
        } else if (opt.nsrc > 0) {
            src = opt.src[seq % opt.nsrc];
            have_src = 1;
        }
        fd = socket(opt.target.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        set_timeouts(fd);
        if (opt.linger0) {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        if (have_src) {
            if (opt.port_lo > 0) {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            } else {
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
            }
            if (bind(fd, (struct sockaddr *)&src.sa, src.len) != 0) {
                close(fd);
                if (opt.port_lo > 0 && errno == EADDRINUSE) {
                    w->bind_skips++;
                    continue;           /* that pair is busy: take the next one */
                }
                return -1;
            }
        }
        if (connect(fd, (struct sockaddr *)&opt.target.sa, opt.target.len) != 0) {
            int e = errno;
            close(fd);
            if (opt.port_lo > 0 && (e == EADDRINUSE || e == EADDRNOTAVAIL)) {
                w->bind_skips++;
                continue;
            }
            return -1;
        }
        return fd;
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Parse a chunked body in buf[0..n); returns bytes consumed when complete,
 * 0 when more data is needed, -1 on a malformed body. */
static long chunked_done(const char *buf, size_t n)
{
    size_t i = 0;
    for (;;) {
        const char *eol = memmem(buf + i, n - i, "\r\n", 2);
        if (!eol) return 0;
        char *endp;
        unsigned long sz = strtoul(buf + i, &endp, 16);
        if (endp == buf + i) return -1;
        i = (size_t)(eol - buf) + 2;
        if (sz == 0) {
            /* trailers end with an empty line */
            for (;;) {
                const char *e2 = memmem(buf + i, n - i, "\r\n", 2);
                if (!e2) return 0;
                if (e2 == buf + i) return (long)(i + 2);
                i = (size_t)(e2 - buf) + 2;
            }
        }
        if (n - i < sz + 2) return 0;
        i += sz + 2;
    }
}

/* Read one response; returns the status code, or -1 on error.  *closed is
 * set when the server closes the connection (or asked to). */
static int read_response(int fd, char *buf, int *closed)
{
    size_t n = 0;
    long hdr_end = -1, clen = -1;
    int chunked = 0, status = -1, conn_close = 0;
    *closed = 0;
    for (;;) {
        if (hdr_end >= 0) {
            size_t body = n - (size_t)hdr_end;
            if (clen >= 0 && body >= (size_t)clen) break;
            if (chunked) {
                long c = chunked_done(buf + hdr_end, body);
                if (c < 0) return -1;
                if (c > 0) break;
            }
        }
        if (n >= BUFSZ - 1) {
            if (hdr_end < 0) return -1;
            /* a big body: keep only the headers' worth of accounting */
            if (clen >= 0) { clen -= (long)(n - (size_t)hdr_end); n = (size_t)hdr_end; }
            else if (!chunked) n = (size_t)hdr_end;
            else return -1;
        }
        ssize_t k = recv(fd, buf + n, BUFSZ - 1 - n, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            *closed = 1;
            if (hdr_end >= 0 && clen < 0 && !chunked) break;   /* body to EOF */
            return -1;
        }
        n += (size_t)k;
        buf[n] = 0;
        if (hdr_end < 0) {
            char *e = memmem(buf, n, "\r\n\r\n", 4);
            if (!e) continue;
            hdr_end = (long)(e - buf) + 4;
            if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) return -1;
            for (char *line = strstr(buf, "\r\n") + 2; line < e; line = strstr(line, "\r\n") + 2) {
                if (!strncasecmp(line, "Content-Length:", 15)) clen = strtol(line + 15, NULL, 10);
                else if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line, "chunked")
                         && strcasestr(line, "chunked") < strstr(line, "\r\n")) chunked = 1;
                else if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "close")
                         && strcasestr(line, "close") < strstr(line, "\r\n")) conn_close = 1;
            }
            if (status == 204 || status == 304 || (status >= 100 && status < 200)) clen = 0;
        }
    }
    if (conn_close) *closed = 1;
    return status;
}

static void record(worker_t *w, double t0, int status)
{
    double us = (now_s() - t0) * 1e6;
    if (w->nlat == w->caplat) {
        w->caplat = w->caplat ? w->caplat * 2 : 65536;
        w->lat = realloc(w->lat, w->caplat * sizeof(*w->lat));
        if (!w->lat) { perror("realloc"); exit(2); }
    }
    w->lat[w->nlat++] = us > 4e9 ? 4000000000u : (uint32_t)us;
    w->requests++;
    if (status >= 0 && status < 600) w->status[status]++;
    if (status == opt.expect) w->ok++;
    else w->errors++;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char req[MAX_PATHS][2048];
    size_t reqlen[MAX_PATHS];
    long seq = w->idx;
    int fd = -1;

    for (int i = 0; i < opt.npaths; i++) {
        int k = snprintf(req[i], sizeof(req[i]),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tsl_load/1\r\n%s%s\r\n",
                         opt.paths[i], opt.host,
                         opt.keepalive ? "" : "Connection: close\r\n",
                         opt.extra_headers ? opt.extra_headers : "");
        if (k < 0 || (size_t)k >= sizeof(req[i])) { fprintf(stderr, "request too long\n"); exit(2); }
        reqlen[i] = (size_t)k;
    }
    while (!atomic_load(&stop_flag)) {
        if (now_s() >= t_end) break;
        if (opt.max_requests > 0 && atomic_fetch_add(&issued, 1) >= opt.max_requests) break;
        int pi = (int)(seq % opt.npaths);
        double t0 = now_s();
        if (fd < 0) {
            fd = open_conn(w, seq);
            if (fd == -2) { atomic_store(&stop_flag, 1); break; }
            if (fd < 0) {
                w->conn_errors++;
                record(w, t0, -1);
                usleep(1000);
                seq += opt.concurrency;
                continue;
            }
        }
        int closed = 0, status = -1;
        if (send_all(fd, req[pi], reqlen[pi]) == 0) status = read_response(fd, w->buf, &closed);
        record(w, t0, status);
        if (status < 0 || closed || !opt.keepalive) {
            close(fd);
            fd = -1;
        }
        seq += opt.concurrency;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tsl_load (--connect HOST:PORT | --unix PATH) [--src A,B,...] [--src-ports LO-HI]\n"
            "                [--keepalive] [--no-linger0] [--path P]... [--host H] [--header 'K: V']...\n"
            "                [--concurrency N] [--duration S] [--requests N] [--expect CODE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static char headers[4096];
    opt.concurrency = 8;
    opt.duration = 5;
    opt.expect = 200;
    opt.linger0 = 1;
    opt.host = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) usage(); i++; } while (0)
        if (!strcmp(a, "--connect")) {
            NEEDV();
            if (parse_hostport(v, &opt.target) != 0) { fprintf(stderr, "bad --connect %s\n", v); return 2; }
        } else if (!strcmp(a, "--unix")) {
            NEEDV();
            struct sockaddr_un *un = (struct sockaddr_un *)&opt.target.sa;
            if (strlen(v) >= sizeof(un->sun_path)) { fprintf(stderr, "socket path too long\n"); return 2; }
            un->sun_family = AF_UNIX;
            strcpy(un->sun_path, v);
            opt.target.len = sizeof(*un);
            opt.unix_target = 1;
        } else if (!strcmp(a, "--src")) {
            NEEDV();
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (opt.nsrc == MAX_SRC || parse_addr(t, 0, &opt.src[opt.nsrc]) != 0) {
                    fprintf(stderr, "bad --src %s\n", t);
                    return 2;
                }
                opt.nsrc++;
            }
            free(copy);
        } else if (!strcmp(a, "--src-ports")) {
            NEEDV();
            if (sscanf(v, "%d-%d", &opt.port_lo, &opt.port_hi) != 2 || opt.port_lo < 1
                || opt.port_hi > 65535 || opt.port_hi < opt.port_lo) usage();
        } else if (!strcmp(a, "--keepalive")) {
            opt.keepalive = 1;
        } else if (!strcmp(a, "--no-linger0")) {
            opt.linger0 = 0;
        } else if (!strcmp(a, "--path")) {
            NEEDV();
            if (opt.npaths == MAX_PATHS) usage();
            opt.paths[opt.npaths++] = v;
        } else if (!strcmp(a, "--host")) {
            NEEDV();
            opt.host = v;
        } else if (!strcmp(a, "--header")) {
            NEEDV();
            if (strlen(headers) + strlen(v) + 3 >= sizeof(headers)) usage();
            strcat(headers, v);
            strcat(headers, "\r\n");
            opt.extra_headers = headers;
        } else if (!strcmp(a, "--concurrency")) {
            NEEDV();
            opt.concurrency = atoi(v);
        } else if (!strcmp(a, "--duration")) {
            NEEDV();
            opt.duration = atof(v);
        } else if (!strcmp(a, "--requests")) {
            NEEDV();
            opt.max_requests = atol(v);
        } else if (!strcmp(a, "--expect")) {
            NEEDV();
            opt.expect = atoi(v);
        } else {
            usage();
        }
    }
    if (!opt.target.len || opt.concurrency < 1 || opt.concurrency > 4096 || opt.duration <= 0) usage();
    if (opt.port_lo > 0 && opt.nsrc == 0) { fprintf(stderr, "--src-ports needs --src\n"); return 2; }
    if (opt.npaths == 0) opt.paths[opt.npaths++] = "/";
    if (!opt.host) opt.host = opt.unix_target ? "localhost" : "bench";

    worker_t *w = calloc((size_t)opt.concurrency, sizeof(*w));
    double t0 = now_s();
    t_end = t0 + opt.duration;
    for (int i = 0; i < opt.concurrency; i++) {
        w[i].idx = i;
        w[i].buf = malloc(BUFSZ);
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) { perror("pthread_create"); return 2; }
    }
    long requests = 0, ok = 0, errors = 0, skips = 0, cerr = 0, status[600] = {0};
    size_t nlat = 0;
    for (int i = 0; i < opt.concurrency; i++) {
        pthread_join(w[i].tid, NULL);
        requests += w[i].requests;
        ok += w[i].ok;
        errors += w[i].errors;
        skips += w[i].bind_skips;
        cerr += w[i].conn_errors;
        nlat += w[i].nlat;
        for (int s = 0; s < 600; s++) status[s] += w[i].status[s];
    }
    double elapsed = now_s() - t0;
    uint32_t *lat = malloc((nlat ? nlat : 1) * sizeof(*lat));
    size_t k = 0;
    for (int i = 0; i < opt.concurrency; i++) {
        memcpy(lat + k, w[i].lat, w[i].nlat * sizeof(*lat));
        k += w[i].nlat;
    }
    qsort(lat, nlat, sizeof(*lat), cmp_u32);
#define PCT(p) (nlat ? lat[(size_t)((double)(nlat - 1) * (p))] : 0)
    printf("{\"requests\": %ld, \"ok\": %ld, \"errors\": %ld, \"connect_errors\": %ld, "
           "\"bind_skips\": %ld, \"elapsed\": %.3f, \"rps\": %.1f, \"status\": {",
           requests, ok, errors, cerr, skips, elapsed, elapsed > 0 ? (double)ok / elapsed : 0.0);
    int first = 1;
    for (int s = 0; s < 600; s++) {
        if (status[s]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, status[s]);
            first = 0;
        }
    }
    printf("}, \"lat_us\": {\"p50\": %u, \"p90\": %u, \"p99\": %u, \"max\": %u}}\n",
           PCT(0.50), PCT(0.90), PCT(0.99), nlat ? lat[nlat - 1] : 0);
    return 0;
}
