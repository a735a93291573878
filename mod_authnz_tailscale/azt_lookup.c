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
#include "azt_services.h"
#include "azt_peerkind.h"
#include "azt_forwarded.h"
#include "azt_serve.h"
#include "azt_lookup.h"

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
    azt_outcome outcome;        /* identified or not a peer: nothing else is kept */
    tsl_identity *id;
    apr_time_t fetched;         /* when tailscaled gave the answer */
    unsigned char sa_raw[16];   /* the socket peer's binary address, ... */
    int sa_len;                 /* ... its length (0: not from a socket) */
    int filled;                 /* has held an answer before */
    apr_pool_t *pool;           /* NULL until the slot is refilled */
} azt_conn_slot;

typedef struct {
    azt_conn_slot slot[2];
    azt_peer_kind kind;         /* who the socket peer is, once known ... */
    int kind_known;
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
static apr_interval_time_t ttl_for(const azt_server_conf *sc, azt_outcome outcome)
{
    return outcome == AZT_IDENTIFIED ? azt_conf_ttl(sc) : azt_conf_negative_ttl(sc);
}

static int fresh(const azt_server_conf *sc, azt_outcome outcome, apr_time_t fetched,
                 apr_time_t now)
{
    return azt_cache_fresh(outcome, fetched, now, azt_conf_ttl(sc), azt_conf_negative_ttl(sc));
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
                      tsl_code_name(code), azt_conf_socket_hint(r->pool, sk->path, code));
    }
}

/* ------------------------------------------------------------ answers */

/* One answer about one address: what the pipeline steps pass around. */
typedef struct {
    azt_outcome outcome;
    tsl_identity *id;           /* exactly when identified */
    const char *addr;
    const char *error;
} azt_answer;

/* The one place an address itself says "not a tailnet peer": it can never
 * be one (public, this node's own, a Funnel client).  tailscaled's own
 * no-match answer is the other (azt_outcome_of). */
static void not_a_peer_address(azt_answer *a, const char *addr, const char *why)
{
    a->outcome = AZT_NOT_A_PEER;
    a->id = NULL;
    a->addr = addr;
    a->error = why;
}

/* Everything that is neither an identity nor a definite "not a peer". */
static void unavailable(azt_answer *a, const char *addr, const char *why)
{
    a->outcome = AZT_UNAVAILABLE;
    a->id = NULL;
    a->addr = addr;
    a->error = why;
}

/* Fields rules match by pattern: an answer missing one of them (dropped for
 * a control character) cannot say who this is.  A dropped tag or group
 * changes no decision: rules name them exactly, and no configured name
 * holds a control character. */
#define MATCHED_FIELDS (TSL_FIELD_LOGIN | TSL_FIELD_NODE_NAME | TSL_FIELD_NODE_SHORT \
                        | TSL_FIELD_TAILNET)

/* Before an answer is kept or used: a field holding a control character is
 * dropped (tailscaled passes through what an identity provider or an admin
 * set), so that no exported value - variable, note, header, r->user, log
 * line - can carry one.  An answer that lost a field rules match on is
 * unusable: without its login, `Require not tailscale-user x` would grant.
 * Returns 0 for such an answer. */
static int usable_identity(request_rec *r, const azt_sock *sk, const char *addr,
                           tsl_identity *id)
{
    unsigned dropped = tsl_identity_clean(id), bit;

    for (bit = 1; dropped && bit <= TSL_FIELD_GROUPS; bit <<= 1) {
        if (dropped & bit) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "TS01013: tailscaled at %s: %s of %s (vhost %s) holds a control "
                          "character; %s. Fix it where it is set (identity provider, admin "
                          "console, headscale).", sk->path, tsl_identity_field_name(bit),
                          addr, r->server->server_hostname,
                          (bit & MATCHED_FIELDS) ? "rules cannot be checked, requests "
                          "needing this identity get 503" : "not used or exported");
        }
    }
    return (dropped & MATCHED_FIELDS) == 0;
}

/* Does the node tailscaled named own dst, the address the client reached?
 * Then it is this node itself: a process on this host. */
static int is_self_node(apr_pool_t *p, const tsl_identity *id, const char *dst)
{
    int i;

    for (i = 0; dst && i < id->addresses->nelts; i++) {
        const char *cidr = APR_ARRAY_IDX(id->addresses, i, const char *);
        const char *slash = strchr(cidr, '/');
        const char *ip = tsl_addr_normalize(p, slash ? apr_pstrmemdup(p, cidr,
                                                                      (apr_size_t)(slash - cidr))
                                                     : cidr);
        if (ip && !strcmp(ip, dst)) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the connection slot */

/* Is the slot's answer one this request may use?  The slot must be for
 * the same tailscaled, port and address text (the caller's raw form or the
 * full key), and fresh for the serving vhost. */
static int slot_live(const azt_conn_slot *cs, const azt_sock *sk,
                     const azt_server_conf *sc, int port, apr_time_t now)
{
    return cs->key && cs->sk == sk && cs->port == port
           && fresh(sc, cs->outcome, cs->fetched, now);
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

/* What one ask() is about. */
typedef struct {
    azt_sock *sk;
    int slot;                   /* SLOT_PEER or SLOT_FORWARDED */
    const apr_sockaddr_t *sa;   /* the socket address it came from; NULL when forwarded */
    const char *ip;             /* the address as the caller has it */
    int port;                   /* 0: ask by IP */
} azt_question;

/* Keep a definite answer in the slot for the rest of the connection (while
 * fresh).  fetched is when tailscaled gave it: a copy of a cache entry ages
 * with it (else a keep-alive connection could serve it for twice the
 * timeout).  A cache hit's identity is already held for sp; tailscaled's
 * is copied. */
static void slot_fill(azt_conn_slot *cs, apr_pool_t *sp, const azt_question *q,
                      const char *key, const azt_answer *a, int from_cache,
                      apr_time_t fetched)
{
    const apr_sockaddr_t *sa = q->sa;

    cs->fetched = fetched;
    cs->filled = 1;
    cs->sk = q->sk;
    cs->raw_ip = apr_pstrdup(sp, q->ip);
    cs->port = q->port;
    cs->addr = apr_pstrdup(sp, a->addr);
    cs->key = apr_pstrdup(sp, key);
    cs->outcome = a->outcome;
    cs->sa_len = 0;
    if (sa && sa->ipaddr_len > 0 && (size_t)sa->ipaddr_len <= sizeof(cs->sa_raw)) {
        memcpy(cs->sa_raw, sa->ipaddr_ptr, (size_t)sa->ipaddr_len);
        cs->sa_len = sa->ipaddr_len;
    }
    cs->id = !a->id || from_cache ? a->id : tsl_identity_copy(sp, a->id);
}

/* ------------------------------------------------------------ asking */

/* Ask tailscaled itself, unless its breaker says it did not answer lately
 * (then answer at once rather than queue on a dead or hanging daemon, while
 * one probe at a time asks again).  A definite answer goes into the process
 * cache when the caller reserved the entry (outcome AZT_CACHE_MISS); an
 * entry reserved for nothing is given up. */
static void ask_tailscaled(request_rec *r, const azt_question *q, const char *norm,
                           const char *dst, const char *key, azt_cache_outcome reserved,
                           apr_time_t now, azt_answer *a)
{
    azt_sock *sk = q->sk;
    azt_stats *st = azt_stats_get();
    azt_breaker_verdict verdict;
    char down_text[256];
    tsl_identity *id = NULL;
    tsl_code code;
    tsl_result res;

    verdict = azt_breaker_enter(sk->breaker, now, &code, down_text, sizeof(down_text));
    if (verdict == AZT_BREAKER_FAIL) {
        azt_stats_inc(&st->errors);
        unavailable(a, a->addr, apr_pstrdup(r->pool, down_text));
        goto give_up;
    }
    tsl_result_init(&res);
    azt_stats_inc(&st->whois_calls);
    /* The serving vhost's time limit: one client serves every vhost of a socket. */
    code = tsl_whois_dst(sk->client, r->pool, norm, q->port, dst,
                         azt_conf_timeout(azt_server_conf_get(r->server)), &id, &res);
    a->outcome = azt_outcome_of(code);
    azt_breaker_report(sk->breaker, verdict, a->outcome != AZT_UNAVAILABLE, code, res.text,
                       now, apr_time_now());
    if (a->outcome == AZT_UNAVAILABLE) {
        log_failure(r, sk, a->addr, code, res.text);
        unavailable(a, a->addr, res.text);
        goto give_up;
    }
    if (a->outcome == AZT_IDENTIFIED && !usable_identity(r, sk, a->addr, id)) {
        unavailable(a, a->addr, "tailscaled's answer lacks a field rules match on "
                    "(it held a control character)");
        goto give_up;
    }
    if (a->outcome == AZT_IDENTIFIED && is_self_node(r->pool, id, dst)) {
        not_a_peer_address(a, a->addr, "tailscaled names this node itself: a process on "
                           "this host, not a tailnet peer");
    }
    a->id = a->outcome == AZT_IDENTIFIED ? id : NULL;
    if (a->outcome == AZT_NOT_A_PEER) {
        if (!a->error) {
            a->error = res.text;
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01004: %s is not a tailnet peer (tailscaled at %s: %s)",
                      a->addr, sk->path, a->error);
    }
    azt_stats_inc(a->outcome == AZT_IDENTIFIED ? &st->identified : &st->not_found);
    if (reserved == AZT_CACHE_MISS) {
        azt_cache_put(cache, key, a->outcome, a->id, now);
    }
    return;
give_up:
    if (reserved == AZT_CACHE_MISS) {
        azt_cache_abandon(cache, key);
    }
}

/* Ask about q's address, through the connection slot, the process cache
 * and finally tailscaled. */
static void ask(request_rec *r, const azt_question *q, azt_answer *a)
{
    conn_rec *c = r->connection;
    azt_server_conf *sc = azt_server_conf_get(r->server);
    azt_stats *st = azt_stats_get();
    azt_conn_cache *cc = conn_cache(c);
    azt_conn_slot *cs = &cc->slot[q->slot];
    apr_time_t now = apr_time_now(), fetched = now;
    azt_cache_outcome reserved;
    azt_peer_key key;
    const char *norm, *dst;
    apr_pool_t *sp;

    memset(a, 0, sizeof(*a));
    azt_stats_inc(&st->lookups);
    /* 1. The connection's slot.  A connection's peer does not change: the
     * same raw address answers without formatting anything. */
    if (slot_live(cs, q->sk, sc, q->port, now) && !strcmp(cs->raw_ip, q->ip)) {
        azt_stats_inc(&st->conn_hits);
        a->outcome = cs->outcome;
        a->addr = cs->addr;
        a->id = cs->id;
        return;
    }
    norm = tsl_addr_normalize(r->pool, q->ip);
    if (!norm) {
        unavailable(a, q->ip, apr_psprintf(r->pool, "peer address '%s' is not an IP address",
                                           q->ip));
        return;
    }
    a->addr = tsl_addr_format(r->pool, norm, q->port);
    dst = conn_dst(c, cc);
    key = peer_key(r->pool, q->sk, norm, q->port, dst);
    if (slot_live(cs, q->sk, sc, q->port, now) && !strcmp(cs->key, key.text)) {
        azt_stats_inc(&st->conn_hits);
        a->outcome = cs->outcome;
        a->id = cs->id;
        return;
    }

    /* 2. The process cache (never for an ip:port answer), 3. tailscaled. */
    sp = slot_pool(c, cs);
    reserved = key.conn_only ? AZT_CACHE_BYPASS
               : azt_cache_get(cache, key.text, now, azt_conf_timeout(sc), azt_conf_ttl(sc),
                               azt_conf_negative_ttl(sc), sp, &a->outcome, &a->id, &fetched);
    if (reserved == AZT_CACHE_HIT) {
        azt_stats_inc(&st->cache_hits);
    }
    else {
        ask_tailscaled(r, q, norm, dst, key.text, reserved, now, a);
        if (a->outcome == AZT_UNAVAILABLE) {
            return;             /* no definite answer: nothing to remember */
        }
    }

    /* 4. Remember the definite answer for this connection. */
    if (ttl_for(sc, a->outcome) > 0) {
        slot_fill(cs, sp, q, key.text, a, reserved == AZT_CACHE_HIT, fetched);
    }
}

/* A forwarded client (serve's or a trusted proxy's), by IP: only a tailnet
 * address can be a peer; its port belongs to another hop. */
static void ask_forwarded(request_rec *r, azt_sock *sk, const char *ip, azt_answer *a)
{
    azt_question q = { sk, SLOT_FORWARDED, NULL, ip, 0 };

    if (!tsl_addr_is_tailnet(ip)) {
        not_a_peer_address(a, ip, "the forwarded address is not a tailnet address");
        return;
    }
    ask(r, &q, a);
}

/* ------------------------------------------------------------ the pipeline */

/* Who the socket peer is, once per connection. */
static azt_peer_kind peer_kind(conn_rec *c, const char *ip)
{
    azt_conn_cache *cc = conn_cache(c);

    if (!cc->kind_known) {
        cc->kind = azt_peer_kind_of(ip);
        cc->kind_known = 1;
    }
    return cc->kind;
}

/* Step 1: the connection's socket peer, as tailscaled saw it. */
static void ask_socket_peer(request_rec *r, azt_sock *sk, apr_sockaddr_t *sa,
                            azt_answer *a)
{
    azt_server_conf *sc = azt_server_conf_get(r->server);
    const azt_conn_slot *cs = slot_for_sockaddr(r->connection, sk, sc, sa, apr_time_now());
    char buf[64];
    const char *ip, *norm;
    azt_peer_kind kind;

    if (cs) {
        azt_stats *st = azt_stats_get();

        azt_stats_inc(&st->lookups);
        azt_stats_inc(&st->conn_hits);
        a->outcome = cs->outcome;
        a->id = cs->id;
        a->addr = cs->addr;
        a->error = NULL;
        return;
    }
    /* Not apr_sockaddr_ip_get(): it allocates from the socket's pool, which
     * for an HTTP/2 stream is the primary connection's pool, in use by other
     * threads at the same time (pools are not thread-safe). */
    if (apr_sockaddr_ip_getbuf(buf, sizeof(buf), sa) != APR_SUCCESS) {
        unavailable(a, "the client", "the connection's peer address cannot be formatted");
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01080: %s (vhost %s); requests needing a tailnet identity get 503",
                      a->error, r->server->server_hostname);
        return;
    }
    ip = apr_pstrdup(r->pool, buf);
    norm = tsl_addr_normalize(r->pool, ip);
    kind = peer_kind(r->connection, norm);
    switch (kind) {
    case AZT_PEER_TAILNET:
    case AZT_PEER_LOCAL: {
        /* A tailnet address names a node whatever the port; a local one is
         * an ip:port tailscaled maps while the connection lives. */
        azt_question q = { sk, SLOT_PEER, sa, ip, sa->port };
        ask(r, &q, a);
        return;
    }
    case AZT_PEER_SELF:
    case AZT_PEER_PUBLIC:
        not_a_peer_address(a, tsl_addr_format(r->pool, norm, sa->port),
                           azt_peer_kind_reason(kind));
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01050: %s is %s; tailscaled is not asked", a->addr, a->error);
        return;
    case AZT_PEER_UNREADABLE:
        break;
    }
    unavailable(a, ip, azt_peer_kind_reason(kind));
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
        if (px->tag && lk->peer_outcome == AZT_IDENTIFIED
            && tsl_identity_has_tag(lk->peer_id, px->tag)) {
            return 1;
        }
    }
    return 0;
}

/* Step 2a: tailscale serve's client (the loopback peer is tailscaled's and
 * tailscaled said it maps no peer there). */
static void ask_served(request_rec *r, azt_sock *sk, azt_answer *a, azt_lookup *lk)
{
    const char *client;

    lk->via_serve = 1;
    switch (azt_serve_client(r, &client)) {
    case AZT_SERVED_FUNNEL:
        lk->funnel = 1;
        not_a_peer_address(a, client, "a public Funnel client");
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01044: tailscale serve forwarded a Funnel request from %s: a "
                      "public client, not a tailnet peer", client);
        return;
    case AZT_SERVED_CLIENT:
        ask_forwarded(r, sk, client, a);
        return;
    case AZT_SERVED_NONE:
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "TS01045: tailscale serve connected from %s (vhost %s) without a usable "
                  "X-Forwarded-For (%s); requests needing a tailnet identity get 503",
                  lk->peer_addr, r->server->server_hostname, client);
    unavailable(a, lk->peer_addr, "tailscale serve forwarded no usable X-Forwarded-For");
}

/* Step 2b: the client a trusted proxy forwarded. */
static void ask_proxied(request_rec *r, azt_sock *sk, apr_sockaddr_t *sa,
                        azt_answer *a, azt_lookup *lk)
{
    char buf[64];
    const char *peer = apr_sockaddr_ip_getbuf(buf, sizeof(buf), sa) == APR_SUCCESS
                       ? tsl_addr_normalize(r->pool, buf) : NULL;
    const char *why = "its address cannot be read";
    const char *fwd = peer ? azt_forwarded_client(r, peer, &why) : NULL;

    lk->via_proxy = 1;
    if (!fwd) {
        /* Never the proxy's own identity, and never "not a peer": the
         * client may be anyone. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "TS01012: trusted proxy %s (vhost %s): %s; requests needing a "
                      "tailnet identity get 503", lk->peer_addr, r->server->server_hostname,
                      why);
        unavailable(a, lk->peer_addr, apr_pstrcat(r->pool, "the trusted proxy forwarded no "
                                                  "usable client: ", why, NULL));
        return;
    }
    ask_forwarded(r, sk, fwd, a);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "TS01006: trusted proxy %s forwarded client %s: %s", lk->peer_addr,
                  a->addr, a->outcome == AZT_IDENTIFIED ? a->id->login_name
                                                        : azt_outcome_name(a->outcome));
}

static void set_request(azt_lookup *lk, const azt_answer *a)
{
    lk->outcome = a->outcome;
    lk->id = a->id;
    lk->addr = a->addr;
    lk->error = a->error;
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

int azt_lookup_post_read(request_rec *r)
{
    if (azt_server_conf_get(r->server)->behind_serve == 1) {
        azt_serve_post_read(r);
    }
    return azt_forwarded_post_read(r);
}

const azt_lookup *azt_lookup_request(request_rec *r)
{
    azt_server_conf *sc = azt_server_conf_get(r->server);
    const azt_lookup *found = azt_lookup_get(r);
    azt_conn_cache *cc = conn_cache(r->connection);
    azt_answer peer, client;
    azt_lookup *lk;
    azt_sock *sk;
    apr_sockaddr_t *sa;

    if (found) {
        return found;
    }
    lk = apr_pcalloc(r->pool, sizeof(*lk));
    ap_set_module_config(r->request_config, &authnz_tailscale_module, lk);
    memset(&peer, 0, sizeof(peer));

    sk = socks ? apr_hash_get(socks, azt_conf_socket(sc), APR_HASH_KEY_STRING) : NULL;
    if (!sk) {
        /* Cannot happen after child_init; fail closed (503) if it does. */
        unavailable(&peer, "the client", "mod_authnz_tailscale was not initialised for this "
                    "server");
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "TS01010: %s (vhost %s)", peer.error,
                      r->server->server_hostname);
    }
    else if (!socket_peer(r->connection, &sa)) {
        unavailable(&peer, "the client", "the connection has no socket peer address");
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01011: %s (vhost %s); requests needing a tailnet identity get 503",
                      peer.error, r->server->server_hostname);
    }
    else {
        ask_socket_peer(r, sk, sa, &peer);
    }
    lk->peer_outcome = peer.outcome;
    lk->peer_id = peer.id;
    lk->peer_addr = peer.addr;
    set_request(lk, &peer);
    if (!sk || peer.outcome == AZT_UNAVAILABLE) {
        return lk;
    }
    lk->dst = conn_dst(r->connection, cc);

    if (sc->behind_serve == 1 && peer.outcome == AZT_NOT_A_PEER
        && cc->kind_known && cc->kind == AZT_PEER_LOCAL
        && azt_serve_is_tailscaled(r, sk->path, sa, &cc->serve_peer)) {
        ask_served(r, sk, &client, lk);
        set_request(lk, &client);
    }
    else if (proxy_trusted(sc, sa, lk)) {
        ask_proxied(r, sk, sa, &client, lk);
        set_request(lk, &client);
    }
    return lk;
}
