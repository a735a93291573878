/* mod_authnz_tailscale: who is behind this request (see azt_lookup.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_request.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "tsl.h"
#include "azt_config.h"
#include "azt_cache.h"
#include "azt_breaker.h"
#include "azt_stats.h"
#include "azt_sockuid.h"
#include "azt_services.h"
#include "azt_lookup.h"

#include <sys/stat.h>

APLOG_USE_MODULE(authnz_tailscale);

/* At most one error line per cause per minute (all processes together). */
#define AZT_LOG_INTERVAL apr_time_from_sec(60)

/* Per-process state for one tailscaled socket. */
typedef struct azt_sock {
    const char *path;
    tsl_client *client;
    azt_breaker *breaker;           /* open while tailscaled does not answer */
    azt_services *services;         /* the Tailscale Services this node hosts */
} azt_sock;

static apr_hash_t *socks;           /* path -> azt_sock, read-only after child_init */
static azt_cache *cache;

/* The connection's memory of its peer: one slot for the socket peer and
 * one for a forwarded client. */
typedef struct {
    const azt_sock *sk;         /* the tailscaled asked (vhosts may differ) */
    const char *raw_ip;         /* the address as the caller gave it, and ... */
    int port;                   /* ... its port: the fast path compares these */
    const char *addr;           /* the whois addr, formatted once */
    const char *key;
    tsl_code code;
    tsl_identity *id;
    apr_time_t fetched;         /* when tailscaled gave the answer */
    unsigned char sa_raw[16];   /* the socket peer's binary address, ... */
    int sa_len;                 /* ... its length (0: not from a socket) */
    int filled;                 /* has held an answer before */
    apr_pool_t *pool;           /* NULL until the slot is refilled */
} azt_conn_slot;

typedef struct {
    azt_conn_slot slot[2];
    int serve_peer;             /* 0 not asked, 1 tailscaled's serve, -1 anyone else */
    int dst_known;              /* dst below has been worked out */
    const char *dst;            /* the socket's own address when it is a tailnet one */
} azt_conn_cache;

enum { SLOT_PEER = 0, SLOT_FORWARDED = 1 };

/* The connection's memory, made on first use. */
static azt_conn_cache *conn_cache(conn_rec *c)
{
    azt_conn_cache *cc = ap_get_module_config(c->conn_config, &authnz_tailscale_module);

    if (!cc) {
        cc = apr_pcalloc(c->pool, sizeof(*cc));
        ap_set_module_config(c->conn_config, &authnz_tailscale_module, cc);
    }
    return cc;
}

int azt_lookup_unavailable(tsl_code code)
{
    return code != TSL_OK && code != TSL_ERR_NOT_FOUND && code != TSL_ERR_INVALID;
}

void azt_lookup_child_init(apr_pool_t *pchild, server_rec *s)
{
    int max_entries = 0;
    server_rec *sv;

    socks = apr_hash_make(pchild);
    for (sv = s; sv; sv = sv->next) {
        azt_server_conf *sc = azt_server_conf_get(sv);
        const char *path = azt_conf_socket(sc);
        tsl_client_options opts;

        if (azt_conf_cache_size(sc) > max_entries) {
            max_entries = azt_conf_cache_size(sc);
        }
        if (apr_hash_get(socks, path, APR_HASH_KEY_STRING)) {
            continue;
        }
        azt_sock *sk = apr_pcalloc(pchild, sizeof(*sk));
        tsl_client_options_default(&opts);
        opts.timeout = azt_conf_timeout(sc);
        if (opts.connect_timeout > opts.timeout) {
            opts.connect_timeout = opts.timeout;
        }
        opts.max_response = 256 * 1024;     /* a whois answer is a few KiB */
        sk->path = path;
        sk->client = tsl_client_create(pchild, path, &opts);
        sk->breaker = azt_breaker_create(pchild);
        sk->services = azt_services_create(pchild, path, sk->client, sk->breaker);
        apr_hash_set(socks, path, APR_HASH_KEY_STRING, sk);
    }
    cache = azt_cache_create(pchild, max_entries, azt_shared_get());
}

int azt_lookup_cache_count(void)
{
    return cache ? azt_cache_count(cache) : 0;
}

/* The address:port of the socket itself: with mod_remoteip, c->client_addr
 * may already be the PROXY-protocol source, which tailscaled never saw.  An
 * HTTP/2 stream has a dummy socket, so this reads the primary connection's;
 * *sa belongs to that connection and other threads: read it, never allocate
 * from its pool. */
static int socket_addr(conn_rec *c, apr_interface_e which, apr_sockaddr_t **sa)
{
    conn_rec *primary = c->master ? c->master : c;
    apr_socket_t *sock = ap_get_conn_socket(primary);

    return sock && apr_socket_addr_get(sa, which, sock) == APR_SUCCESS;
}

static int socket_peer(conn_rec *c, apr_sockaddr_t **sa)
{
    return socket_addr(c, APR_REMOTE, sa);
}

/* What identifies the peer to tailscaled.  A tailnet address names one node
 * whatever the port and for every connection: its answer may be kept in the
 * process cache.  Anything else with a port (userspace networking proxies
 * tailnet connections to 127.0.0.1:ephemeral) is an ip:port that tailscaled
 * maps only while this connection lives: its answer stays in the
 * connection's slot and nowhere else (a later connection reusing the port
 * may be any local process).  The text is socket|ip[|port][|dst=address]:
 * a tailnet destination scopes the grants (conn_dst). */
typedef struct {
    const char *text;
    int conn_only;
} azt_peer_key;

static azt_peer_key peer_key(apr_pool_t *p, const azt_sock *sk, const char *ip, int port,
                             const char *dst)
{
    azt_peer_key k;

    k.conn_only = !tsl_addr_is_tailnet(ip) && port != 0;
    k.text = k.conn_only ? apr_psprintf(p, "%s|%s|%d", sk->path, ip, port)
                         : apr_pstrcat(p, sk->path, "|", ip, NULL);
    if (dst) {
        /* The grants depend on the destination too. */
        k.text = apr_pstrcat(p, k.text, "|dst=", dst, NULL);
    }
    return k;
}

/* The one rule for every remembered answer (connection slot and process
 * cache): it serves a request only while younger than the serving vhost's
 * timeout for its kind (ttl_for), whichever vhost asked tailscaled. */
static apr_interval_time_t ttl_for(const azt_server_conf *sc, tsl_code code)
{
    return code == TSL_OK ? azt_conf_ttl(sc) : azt_conf_negative_ttl(sc);
}

static int fresh(const azt_server_conf *sc, tsl_code code, apr_time_t fetched,
                 apr_time_t now)
{
    return now < fetched + ttl_for(sc, code);
}

static void log_failure(request_rec *r, const azt_sock *sk, const char *addr,
                        tsl_code code, const char *text)
{
    azt_stats *st = azt_stats_get();

    azt_stats_error(st, code, text);
    if (!azt_stats_may_log(st, code, AZT_LOG_INTERVAL)) {
        return;
    }
    if (code == TSL_ERR_PARSE) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01002: tailscaled at %s gave a malformed whois answer for %s "
                      "(vhost %s): %s; requests needing a tailnet identity get 503. "
                      "Check that the socket belongs to tailscaled and its version "
                      "(tailscale version).",
                      sk->path, addr, r->server->server_hostname, text);
    }
    else if (code == TSL_ERR_HTTP || code == TSL_ERR_DENIED || code == TSL_ERR_RATE_LIMITED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01003: tailscaled at %s refused the whois for %s (vhost %s): "
                      "%s; requests needing a tailnet identity get 503. %s",
                      sk->path, addr, r->server->server_hostname, text,
                      tsl_code_hint(code));
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "TS01001: tailscaled at %s could not be asked who %s is "
                      "(vhost %s): %s [%s]; requests needing a tailnet identity get "
                      "503 until it answers. Hint: %s",
                      sk->path, addr, r->server->server_hostname, text,
                      tsl_code_name(code), tsl_code_hint(code));
    }
}

/* Before an answer is kept or used: a field holding a control character is
 * dropped (tailscaled passes through what an identity provider or an admin
 * set), with one warning per field and answer, so that no exported value -
 * variable, note, header, r->user, log line - can carry one. */
static void clean_identity(request_rec *r, const azt_sock *sk, const char *addr,
                           tsl_identity *id)
{
    unsigned dropped = tsl_identity_clean(id), bit;

    for (bit = 1; dropped && bit <= TSL_FIELD_GROUPS; bit <<= 1) {
        if (dropped & bit) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "TS01013: tailscaled at %s: %s of %s (vhost %s) holds a control "
                          "character; not used or exported. Fix it where it is set (identity "
                          "provider, admin console, headscale).",
                          sk->path, tsl_identity_field_name(bit), addr,
                          r->server->server_hostname);
        }
    }
}

/* Is the slot's answer one this request may use?  The slot must be for
 * the same tailscaled, port and address text (the caller's raw form or the
 * full key), and fresh for the serving vhost. */
static int slot_live(const azt_conn_slot *cs, const azt_sock *sk,
                     const azt_server_conf *sc, int port, apr_time_t now)
{
    return cs->key && cs->sk == sk && cs->port == port && fresh(sc, cs->code, cs->fetched, now);
}

/* The connection's peer slot when it holds a live answer for exactly this
 * socket address, compared in binary so that nothing is formatted: the
 * common case of every request after a connection's first. */
static const azt_conn_slot *slot_for_sockaddr(conn_rec *c, const azt_sock *sk,
                                              const azt_server_conf *sc,
                                              const apr_sockaddr_t *sa, apr_time_t now)
{
    const azt_conn_cache *cc = ap_get_module_config(c->conn_config,
                                                    &authnz_tailscale_module);
    const azt_conn_slot *cs;

    if (!cc) {
        return NULL;
    }
    cs = &cc->slot[SLOT_PEER];
    if (slot_live(cs, sk, sc, sa->port, now) && cs->sa_len > 0 && cs->sa_len == sa->ipaddr_len
        && !memcmp(cs->sa_raw, sa->ipaddr_ptr, (size_t)cs->sa_len)) {
        return cs;
    }
    return NULL;
}

/* The address the client connected to, when it is a tailnet address (this
 * node's own or a Tailscale Services VIP it hosts): whois then scopes the
 * grants to it.  A loopback or LAN address (userspace networking, subnet
 * routes) gets none, as tailscaled would grant nothing there.  The socket's
 * own address, also behind a PROXY preamble; worked out once per connection. */
static const char *conn_dst(conn_rec *c, azt_conn_cache *cc)
{
    apr_sockaddr_t *la;
    char buf[64];

    if (!cc->dst_known) {
        cc->dst_known = 1;
        if (socket_addr(c, APR_LOCAL, &la)
            && apr_sockaddr_ip_getbuf(buf, sizeof(buf), la) == APR_SUCCESS) {
            const char *norm = tsl_addr_normalize(c->pool, buf);
            if (norm && tsl_addr_is_tailnet(norm)) {
                cc->dst = norm;
            }
        }
    }
    return cc->dst;
}

/* The pool a slot's next answer lives in.  A connection's first answer
 * lives in the connection's pool (most connections never need another); a
 * refill goes to a subpool cleared each time (dropping the old answer), so
 * long connections do not grow. */
static apr_pool_t *slot_pool(conn_rec *c, azt_conn_slot *cs)
{
    cs->key = NULL;
    if (!cs->filled) {
        return c->pool;
    }
    if (cs->pool) {
        apr_pool_clear(cs->pool);
    }
    else {
        apr_pool_create(&cs->pool, c->pool);
    }
    return cs->pool;
}

/* Keep an answer in the slot for the rest of the connection (while fresh).
 * fetched is when tailscaled gave it: a copy of a cache entry ages with it
 * (else a keep-alive connection could serve it for twice the timeout).  A
 * cache hit's identity is already held for sp; tailscaled's is copied. */
static void slot_fill(azt_conn_slot *cs, apr_pool_t *sp, const azt_sock *sk,
                      const apr_sockaddr_t *sa, const char *ip, int port, const char *addr,
                      const char *key, tsl_code code, tsl_identity *id, int from_cache,
                      apr_time_t fetched)
{
    cs->fetched = fetched;
    cs->filled = 1;
    cs->sk = sk;
    cs->raw_ip = apr_pstrdup(sp, ip);
    cs->port = port;
    cs->addr = apr_pstrdup(sp, addr);
    cs->key = apr_pstrdup(sp, key);
    cs->code = code;
    cs->sa_len = 0;
    if (sa && sa->ipaddr_len > 0 && (size_t)sa->ipaddr_len <= sizeof(cs->sa_raw)) {
        memcpy(cs->sa_raw, sa->ipaddr_ptr, (size_t)sa->ipaddr_len);
        cs->sa_len = sa->ipaddr_len;
    }
    cs->id = !id || from_cache ? id : tsl_identity_copy(sp, id);
}

/* Ask tailscaled itself, unless its breaker says it did not answer lately
 * (then answer at once rather than queue on a dead or hanging daemon, while
 * one probe at a time asks again).  A definite answer goes into the process
 * cache when the caller reserved the entry (outcome AZT_CACHE_MISS); an
 * entry reserved for nothing is given up. */
static tsl_code ask_tailscaled(request_rec *r, azt_sock *sk, const char *norm, int port,
                               const char *dst, const char *addr, const char *key,
                               azt_cache_outcome outcome, apr_time_t now,
                               tsl_identity **id, const char **error)
{
    azt_stats *st = azt_stats_get();
    azt_breaker_verdict verdict;
    char down_text[256];
    tsl_code code;
    tsl_result res;

    verdict = azt_breaker_enter(sk->breaker, now, &code, down_text, sizeof(down_text));
    if (verdict == AZT_BREAKER_FAIL) {
        *error = apr_pstrdup(r->pool, down_text);
        azt_stats_inc(&st->errors);
        goto give_up;
    }
    tsl_result_init(&res);
    azt_stats_inc(&st->whois_calls);
    code = tsl_whois_dst(sk->client, r->pool, norm, port, dst, id, &res);
    azt_breaker_report(sk->breaker, verdict, !azt_lookup_unavailable(code), code, res.text,
                       now, apr_time_now());
    if (code == TSL_OK) {
        clean_identity(r, sk, addr, *id);
    }
    if (code == TSL_OK || code == TSL_ERR_NOT_FOUND) {
        azt_stats_inc(code == TSL_OK ? &st->identified : &st->not_found);
        if (outcome == AZT_CACHE_MISS) {
            azt_cache_put(cache, key, code, *id, now);
        }
        if (code == TSL_ERR_NOT_FOUND) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "TS01004: %s is not a tailnet peer (tailscaled at %s: %s)",
                          addr, sk->path, res.text);
        }
        return code;
    }
    *error = res.text;
    log_failure(r, sk, addr, code, res.text);
give_up:
    if (outcome == AZT_CACHE_MISS) {
        azt_cache_abandon(cache, key);
    }
    *id = NULL;
    return code;
}

/* Ask about ip:port, through the connection slot, the process cache and
 * finally tailscaled; sa is the socket address ip:port came from (NULL for
 * a forwarded client).  Returns the code; *id set for TSL_OK. */
static tsl_code ask(request_rec *r, azt_sock *sk, int slot, const apr_sockaddr_t *sa,
                    const char *ip, int port, tsl_identity **id, const char **addr,
                    const char **error)
{
    conn_rec *c = r->connection;
    azt_server_conf *sc = azt_server_conf_get(r->server);
    azt_stats *st = azt_stats_get();
    azt_conn_cache *cc = conn_cache(c);
    azt_conn_slot *cs = &cc->slot[slot];
    apr_time_t now = apr_time_now(), fetched = now;
    azt_cache_outcome outcome;
    azt_peer_key key;
    const char *norm, *dst;
    apr_pool_t *sp;
    tsl_code code;

    *id = NULL;
    *error = NULL;
    azt_stats_inc(&st->lookups);
    /* 1. The connection's slot.  A connection's peer does not change: the
     * same raw address answers without formatting anything. */
    if (slot_live(cs, sk, sc, port, now) && !strcmp(cs->raw_ip, ip)) {
        azt_stats_inc(&st->conn_hits);
        *addr = cs->addr;
        *id = cs->id;
        return cs->code;
    }
    norm = tsl_addr_normalize(r->pool, ip);
    if (!norm) {
        *addr = ip;
        *error = apr_psprintf(r->pool, "peer address '%s' is not an IP address", ip);
        return TSL_ERR_INVALID;
    }
    *addr = tsl_addr_format(r->pool, norm, port);
    dst = conn_dst(c, cc);
    key = peer_key(r->pool, sk, norm, port, dst);
    if (slot_live(cs, sk, sc, port, now) && !strcmp(cs->key, key.text)) {
        azt_stats_inc(&st->conn_hits);
        *id = cs->id;
        return cs->code;
    }

    /* 2. The process cache (never for an ip:port answer), 3. tailscaled. */
    sp = slot_pool(c, cs);
    outcome = key.conn_only ? AZT_CACHE_BYPASS
              : azt_cache_get(cache, key.text, now, azt_conf_timeout(sc), azt_conf_ttl(sc),
                              azt_conf_negative_ttl(sc), sp, &code, id, &fetched);
    if (outcome == AZT_CACHE_HIT) {
        azt_stats_inc(&st->cache_hits);
    }
    else {
        code = ask_tailscaled(r, sk, norm, port, dst, *addr, key.text, outcome, now, id,
                              error);
        if (code != TSL_OK && code != TSL_ERR_NOT_FOUND) {
            return code;        /* no definite answer: nothing to remember */
        }
    }

    /* 4. Remember the definite answer for this connection. */
    if (ttl_for(sc, code) > 0) {
        slot_fill(cs, sp, sk, sa, ip, port, *addr, key.text, code, *id,
                  outcome == AZT_CACHE_HIT, fetched);
    }
    return code;
}

static int proxy_trusted(const azt_server_conf *sc, apr_sockaddr_t *sa,
                         const azt_lookup *lk)
{
    int i;

    if (!sc->proxies) {
        return 0;
    }
    for (i = 0; i < sc->proxies->nelts; i++) {
        const azt_proxy *px = &APR_ARRAY_IDX(sc->proxies, i, azt_proxy);

        if (px->subnet && apr_ipsubnet_test(px->subnet, sa)) {
            return 1;
        }
        if (px->tag && lk->peer_code == TSL_OK && tsl_identity_has_tag(lk->peer_id, px->tag)) {
            return 1;
        }
    }
    return 0;
}

#define AZT_HEADERS_KEY "authnz_tailscale:headers_in"

int azt_lookup_post_read(request_rec *r)
{
    if (azt_server_conf_get(r->server)->proxies) {
        apr_pool_userdata_setn(apr_table_copy(r->pool, r->headers_in), AZT_HEADERS_KEY,
                               NULL, r->pool);
    }
    return DECLINED;
}

/* The last comma-separated entry of a forwarding header, trimmed: the one
 * the nearest hop added. */
static const char *last_hop(apr_pool_t *p, const char *v)
{
    const char *comma = ap_strrchr_c(v, ',');
    const char *b = comma ? comma + 1 : v, *e;

    while (apr_isspace(*b)) {
        b++;
    }
    for (e = b + strlen(b); e > b && apr_isspace(e[-1]); e--) {
    }
    return apr_pstrmemdup(p, b, (apr_size_t)(e - b));
}

/* The client a trusted proxy forwarded, as it came from exactly one hop:
 * the single entry the proxy added to the header mod_remoteip read - the
 * last entry of the one header mod_remoteip rewrote or removed, whatever
 * mod_remoteip then made of the entries before it (it walks every hop when
 * it trusts them all) - else, with no header rewritten, the source of the
 * PROXY protocol preamble mod_remoteip used.  NULL: the proxy forwarded no
 * address, or which one cannot be told. */
static const char *forwarded_client(request_rec *r, const char *peer)
{
    const char *cip = r->connection->client_ip
                      ? tsl_addr_normalize(r->pool, r->connection->client_ip) : NULL;
    const char *uip;
    apr_table_t *before = NULL;
    const apr_array_header_t *arr;
    const apr_table_entry_t *te;
    const char *found = NULL;
    int i, changed = 0;

    if (cip && strcmp(cip, peer) != 0) {
        return cip;
    }
    uip = r->useragent_ip ? tsl_addr_normalize(r->pool, r->useragent_ip) : NULL;
    if (!uip || !strcmp(uip, peer)) {
        return NULL;
    }
    apr_pool_userdata_get((void **)&before, AZT_HEADERS_KEY, r->pool);
    if (!before) {
        return NULL;
    }
    arr = apr_table_elts(before);
    te = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        const char *now = apr_table_get(r->headers_in, te[i].key);

        if (te[i].val && (!now || strcmp(now, te[i].val) != 0)) {
            changed++;
            found = tsl_addr_normalize(r->pool, last_hop(r->pool, te[i].val));
        }
    }
    /* No header rewritten: mod_remoteip took the address from the PROXY
     * preamble (it sets the request's client, not the connection's). */
    return changed == 0 ? uip : changed == 1 ? found : NULL;
}

#define NOTE_SERVE_CLIENT "tailscale-serve-client"
#define NOTE_SERVE_FUNNEL "tailscale-serve-funnel"

void azt_lookup_note_serve(request_rec *r)
{
    const char *xff = apr_table_get(r->headers_in, "X-Forwarded-For");
    const char *funnel = apr_table_get(r->headers_in, "Tailscale-Funnel-Request");

    if (xff) {
        /* serve sets exactly one entry; a longer list came through another
         * hop, whose rightmost entry is the one serve wrote. */
        apr_table_setn(r->notes, NOTE_SERVE_CLIENT, last_hop(r->pool, xff));
    }
    if (funnel && !strcmp(funnel, "?1")) {
        apr_table_setn(r->notes, NOTE_SERVE_FUNNEL, "1");
    }
}

/* Is the connection's loopback peer tailscaled itself (tailscale serve)?
 * Its socket must belong to the uid that owns the LocalAPI socket; any
 * other local user could send serve's headers.  Asked once per connection. */
static int from_serve(request_rec *r, const azt_sock *sk, const apr_sockaddr_t *sa)
{
    conn_rec *c = r->connection;
    azt_conn_cache *cc;
    apr_sockaddr_t *la;
    struct stat st;
    uid_t uid = 0;
    apr_status_t rv = APR_EINVAL;

    if (!azt_sockuid_is_loopback(sa)) {
        return 0;
    }
    cc = conn_cache(c);
    if (cc->serve_peer) {
        return cc->serve_peer > 0;
    }
    cc->serve_peer = -1;
    if (stat(sk->path, &st) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, errno, r,
                      "TS01041: AuthTailscaleBehindServe (vhost %s): cannot stat "
                      "tailscaled's socket %s to learn its owner; the loopback peer is "
                      "treated as an ordinary local client", r->server->server_hostname,
                      sk->path);
        return 0;
    }
    if (!socket_addr(c, APR_LOCAL, &la)
        || (rv = azt_sockuid_of_peer(la, sa, &uid)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      "TS01042: AuthTailscaleBehindServe (vhost %s): the kernel did not "
                      "say who owns the loopback peer's socket (sock_diag); it is treated "
                      "as an ordinary local client", r->server->server_hostname);
        return 0;
    }
    if (uid != st.st_uid) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "TS01043: loopback peer owned by uid %ld, not tailscaled's uid %ld "
                      "(owner of %s): not tailscale serve, its X-Forwarded-For is ignored",
                      (long)uid, (long)st.st_uid, sk->path);
        return 0;
    }
    cc->serve_peer = 1;
    return 1;
}

/* The request came through tailscale serve: its client is the address
 * serve put in X-Forwarded-For, looked up by IP; a Funnel client is a
 * public address and never a tailnet peer. */
static void lookup_served(request_rec *r, azt_sock *sk, apr_sockaddr_t *sa,
                          azt_lookup *lk)
{
    request_rec *q;
    const char *client, *norm;
    char buf[64];

    for (q = r; q->main || q->prev; q = q->main ? q->main : q->prev) {
    }
    lk->via_serve = 1;
    lk->peer_code = TSL_ERR_NOT_FOUND;
    lk->peer_addr = apr_sockaddr_ip_getbuf(buf, sizeof(buf), sa) == APR_SUCCESS
                    ? apr_psprintf(r->pool, "%s:%d", buf, sa->port) : "loopback";
    lk->code = TSL_ERR_NOT_FOUND;
    lk->addr = lk->peer_addr;
    if (apr_table_get(q->notes, NOTE_SERVE_FUNNEL)) {
        lk->funnel = 1;
        client = apr_table_get(q->notes, NOTE_SERVE_CLIENT);
        lk->addr = client ? client : lk->peer_addr;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01044: tailscale serve forwarded a Funnel request from %s: a "
                      "public client, not a tailnet peer", lk->addr);
        return;
    }
    client = apr_table_get(q->notes, NOTE_SERVE_CLIENT);
    norm = client ? tsl_addr_normalize(r->pool, client) : NULL;
    if (!norm) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01045: tailscale serve connected from %s (vhost %s) without a "
                      "usable X-Forwarded-For (%s); no tailnet identity for this request",
                      lk->peer_addr, r->server->server_hostname, client ? client : "none");
        return;
    }
    lk->code = ask(r, sk, SLOT_FORWARDED, NULL, norm, 0, &lk->id, &lk->addr, &lk->error);
}

const char *azt_lookup_service(request_rec *r, const azt_lookup *lk)
{
    azt_sock *sk;

    if (!lk->dst || !socks) {
        return NULL;
    }
    sk = apr_hash_get(socks, azt_conf_socket(azt_server_conf_get(r->server)),
                      APR_HASH_KEY_STRING);
    return sk ? azt_services_at(sk->services, r, lk->dst) : NULL;
}

const azt_lookup *azt_lookup_get(request_rec *r)
{
    request_rec *q;

    for (q = r; q; q = q->main ? q->main : q->prev) {
        const azt_lookup *lk = ap_get_module_config(q->request_config,
                                                    &authnz_tailscale_module);
        if (lk) {
            return lk;
        }
    }
    return NULL;
}

const azt_lookup *azt_lookup_request(request_rec *r)
{
    azt_server_conf *sc = azt_server_conf_get(r->server);
    const azt_lookup *found = azt_lookup_get(r);
    azt_lookup *lk;
    azt_sock *sk;
    apr_sockaddr_t *sa;
    char peer_buf[64];
    const char *peer_ip;
    const azt_conn_slot *cs;

    if (found) {
        return found;
    }
    lk = apr_pcalloc(r->pool, sizeof(*lk));
    ap_set_module_config(r->request_config, &authnz_tailscale_module, lk);

    sk = socks ? apr_hash_get(socks, azt_conf_socket(sc), APR_HASH_KEY_STRING) : NULL;
    if (!sk) {
        /* Cannot happen after child_init; fail closed (503) if it does. */
        lk->code = lk->peer_code = TSL_ERR_CONNECT;
        lk->error = "mod_authnz_tailscale was not initialised for this server";
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "TS01010: %s (vhost %s)", lk->error,
                      r->server->server_hostname);
        return lk;
    }
    if (!socket_peer(r->connection, &sa)) {
        lk->code = lk->peer_code = TSL_ERR_INVALID;
        lk->error = "the connection has no socket peer address";
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01011: %s; no tailnet identity for this request", lk->error);
        return lk;
    }
    if (sc->behind_serve == 1 && from_serve(r, sk, sa)) {
        lookup_served(r, sk, sa, lk);
        return lk;
    }
    if ((cs = slot_for_sockaddr(r->connection, sk, sc, sa, apr_time_now()))) {
        azt_stats *st = azt_stats_get();

        azt_stats_inc(&st->lookups);
        azt_stats_inc(&st->conn_hits);
        peer_ip = cs->raw_ip;
        lk->peer_code = cs->code;
        lk->peer_id = cs->id;
        lk->peer_addr = cs->addr;
    }
    /* Not apr_sockaddr_ip_get(): it allocates from the socket's pool, which
     * for an HTTP/2 stream is the primary connection's pool, in use by other
     * threads at the same time (pools are not thread-safe). */
    else if (apr_sockaddr_ip_getbuf(peer_buf, sizeof(peer_buf), sa) != APR_SUCCESS) {
        lk->code = lk->peer_code = TSL_ERR_INVALID;
        lk->error = "the connection's peer address cannot be formatted";
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01011: %s; no tailnet identity for this request", lk->error);
        return lk;
    }
    else {
        peer_ip = apr_pstrdup(r->pool, peer_buf);
        lk->peer_code = ask(r, sk, SLOT_PEER, sa, peer_ip, sa->port, &lk->peer_id,
                            &lk->peer_addr, &lk->error);
    }
    lk->code = lk->peer_code;
    lk->id = lk->peer_id;
    lk->addr = lk->peer_addr;
    lk->dst = conn_dst(r->connection, conn_cache(r->connection));

    if (proxy_trusted(sc, sa, lk)) {
        const char *peer = tsl_addr_normalize(r->pool, peer_ip);
        const char *fwd = peer ? forwarded_client(r, peer) : NULL;

        lk->via_proxy = 1;
        if (!fwd) {
            /* Never the proxy's own identity: the request has none. */
            lk->code = TSL_ERR_NOT_FOUND;
            lk->id = NULL;
            lk->error = "the trusted proxy forwarded no client address from one hop";
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "TS01012: trusted proxy %s: %s; the request has no tailnet "
                          "identity", lk->peer_addr, lk->error);
            return lk;
        }
        /* The proxy speaks for its client: the client's port belongs to
         * another hop, so ask by IP only. */
        lk->code = ask(r, sk, SLOT_FORWARDED, NULL, fwd, 0, &lk->id, &lk->addr,
                       &lk->error);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01006: trusted proxy %s forwarded client %s: %s",
                      lk->peer_addr, lk->addr,
                      lk->code == TSL_OK ? lk->id->login_name : tsl_code_name(lk->code));
    }
    return lk;
}
