/* Unit tests of the LocalAPI client core (localapi/).
 *
 * Everything runs in-process: JSON fixtures for whois/status, certificates
 * made here with OpenSSL, and a small scripted HTTP server on a unix socket
 * in a thread for the transport.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "tsl.h"
#include "tsl_conf.h"
#include "tu.h"

static apr_pool_t *pool;
static char tmpdir[256];

/* ================================================================ result */

static void test_result(void)
{
    tsl_result r;
    int c;

    tsl_result_init(&r);
    TU_CHECK(r.code == TSL_OK && r.text && !*r.text && r.retry_after == -1,
             "result_init resets");
    TU_CHECK(tsl_result_set(&r, pool, TSL_ERR_PARSE, "x=%d", 5) == TSL_ERR_PARSE,
             "result_set returns its code");
    TU_STR(r.text, "x=5", "result_set formats text");
    TU_STR(tsl_code_name(TSL_ERR_SOCKET_MISSING), "socket-missing", "code name socket-missing");
    TU_STR(tsl_code_name(TSL_ERR_RATE_LIMITED), "rate-limited", "code name rate-limited");
    TU_STR(tsl_code_name(TSL_ERR_TOO_LARGE), "too-large", "code name too-large");
    TU_STR(tsl_code_name(TSL_OK), "ok", "code name ok");
    for (c = TSL_OK; c <= TSL_ERR_CERT; c++) {
        if (!tsl_code_hint((tsl_code)c) || !*tsl_code_hint((tsl_code)c)) break;
    }
    TU_CHECK(c > TSL_ERR_CERT, "every code has a hint");
    TU_CHECK(strstr(tsl_code_hint(TSL_ERR_SOCKET_MISSING), "is tailscaled running?") != NULL,
             "socket-missing hint asks whether tailscaled runs");
    TU_CHECK(strstr(tsl_code_hint(TSL_ERR_SOCKET_MISSING), "tailscale status") == NULL
             && strstr(tsl_code_hint(TSL_ERR_SOCKET_MISSING), "--socket flag") != NULL
             && strstr(tsl_code_hint(TSL_ERR_SOCKET_MISSING), TSL_SOCKET_DEFAULT) != NULL,
             "socket-missing hint names tailscaled's --socket flag and the default path, "
             "not tailscale status (which does not show the path)");
    TU_CHECK(strstr(tsl_code_hint(TSL_ERR_DENIED), "TS_PERMIT_CERT_UID") != NULL
             && strstr(tsl_code_hint(TSL_ERR_DENIED), "--operator=USER") != NULL,
             "denied hint names operator and TS_PERMIT_CERT_UID");
    TU_CHECK(tsl_code_is_unavailable(TSL_ERR_SOCKET_MISSING)
             && tsl_code_is_unavailable(TSL_ERR_CONNECT)
             && tsl_code_is_unavailable(TSL_ERR_TIMEOUT)
             && tsl_code_is_unavailable(TSL_ERR_TRANSPORT)
             && tsl_code_is_unavailable(TSL_ERR_TOO_LARGE)
             && tsl_code_is_unavailable(TSL_ERR_HTTP)
             && tsl_code_is_unavailable(TSL_ERR_PARSE),
             "unavailable codes");
    TU_CHECK(!tsl_code_is_unavailable(TSL_OK) && !tsl_code_is_unavailable(TSL_ERR_NOT_FOUND)
             && !tsl_code_is_unavailable(TSL_ERR_DENIED)
             && !tsl_code_is_unavailable(TSL_ERR_INVALID)
             && !tsl_code_is_unavailable(TSL_ERR_CERT),
             "definite answers are not unavailable");
    TU_STR(tsl_printable(pool, "a\nb\rc\x1b", 100), "a b c ", "printable replaces control characters");
    TU_STR(tsl_printable(pool, "abcdef", 3), "abc...", "printable cuts long text");
    TU_STR(tsl_printable(pool, NULL, 3), "", "printable NULL");
    r.code = TSL_ERR_HTTP; r.http_status = 400;
    TU_CHECK(!tsl_result_is_unavailable(&r), "HTTP 400 is a definite answer");
    r.http_status = 502;
    TU_CHECK(tsl_result_is_unavailable(&r), "HTTP 502 is unavailable");
}

/* ================================================================ addr */

static void test_conf(void)
{
    const char *c;
    tsl_hint_settings set = { "AuthTailscaleURL", "AuthTailscaleTimeout" };

    TU_CHECK(tsl_conf_trailing_comment("/run/x.sock") == NULL, "no comment");
    TU_CHECK(tsl_conf_trailing_comment("") == NULL && tsl_conf_trailing_comment(NULL) == NULL,
             "empty and NULL arguments hold no comment");
    c = tsl_conf_trailing_comment("/run/x.sock   # the default");
    TU_STR(c ? c : "(null)", "# the default", "a trailing comment after spaces");
    c = tsl_conf_trailing_comment("#only");
    TU_STR(c ? c : "(null)", "#only", "a comment as the first word");
    TU_CHECK(tsl_conf_trailing_comment("\"#quoted\" 'x # y' a#b") == NULL,
             "a quoted '#' and one inside a word are values, not comments");
    c = tsl_conf_trailing_comment("\"say \\\"hi\\\"\" #x");
    TU_STR(c ? c : "(null)", "#x", "an escaped quote does not end the quoted word");
    TU_CHECK(strstr(tsl_conf_comment_error(pool, "AuthTailscaleURL", "# x"),
                    "AuthTailscaleURL: '# x' looks like a comment") != NULL,
             "the error names the directive and the comment");
    TU_CHECK(strstr(tsl_socket_hint(pool, TSL_ERR_TIMEOUT, "/x.sock", &set),
                    "AuthTailscaleTimeout") != NULL
             && strstr(tsl_socket_hint(pool, TSL_ERR_TIMEOUT, "/x.sock", &set),
                       "certificate") == NULL,
             "timeout hint names the caller's timeout setting, not certificates");
    TU_CHECK(strstr(tsl_socket_hint(pool, TSL_ERR_SOCKET_MISSING, "/x.sock", &set),
                    "set AuthTailscaleURL") != NULL,
             "socket-missing hint names the caller's socket setting");
    TU_CHECK(strstr(tsl_socket_hint(pool, TSL_ERR_CONNECT, "/etc/passwd", &set),
                    "/etc/passwd is not a unix socket") != NULL,
             "a path that is not a socket is named as such");
    TU_CHECK(tsl_socket_same("/a/b.sock", "/a/b.sock") && !tsl_socket_same("/a/b", "/a/c")
             && tsl_socket_same("/etc/passwd", "/etc/../etc/passwd"),
             "same socket by string or by file");
}

static void test_addr(void)
{
    TU_STR(tsl_addr_format(pool, "100.101.102.103", 443), "100.101.102.103:443", "addr v4:port");
    TU_STR(tsl_addr_format(pool, "100.101.102.103", 0), "100.101.102.103", "addr port 0 is bare v4");
    TU_STR(tsl_addr_format(pool, "fd7a:115c:a1e0::1", 443), "[fd7a:115c:a1e0::1]:443", "addr v6 bracketed");
    TU_STR(tsl_addr_format(pool, "[FD7A:115C:A1E0:0::1]", 8443), "[fd7a:115c:a1e0::1]:8443",
           "addr bracketed upper-case v6 normalised");
    TU_STR(tsl_addr_format(pool, "fd7a:115c:a1e0::1", 0), "fd7a:115c:a1e0::1", "addr v6 port 0 bare");
    TU_STR(tsl_addr_format(pool, "::ffff:100.64.1.2", 80), "100.64.1.2:80", "addr v4-mapped unmapped");
    TU_STR(tsl_addr_format(pool, "::FFFF:100.64.1.2", 0), "100.64.1.2", "addr v4-mapped upper-case");
    TU_STR(tsl_addr_format(pool, "fe80::1%eth0", 80), NULL, "addr zone rejected");
    TU_STR(tsl_addr_format(pool, "web1.example", 80), NULL, "addr host name rejected");
    TU_STR(tsl_addr_format(pool, "100.64.1.2:80", 0), NULL, "addr with port rejected as ip");
    TU_STR(tsl_addr_format(pool, "100.064.1.2", 80), NULL, "addr leading zero rejected");
    TU_STR(tsl_addr_format(pool, "1.2.3", 80), NULL, "addr short v4 rejected");
    TU_STR(tsl_addr_format(pool, "", 80), NULL, "addr empty rejected");
    TU_STR(tsl_addr_format(pool, NULL, 80), NULL, "addr NULL rejected");
    TU_STR(tsl_addr_format(pool, "[100.64.1.2]", 80), NULL, "addr bracketed v4 rejected");
    TU_STR(tsl_addr_format(pool, "[::1", 80), NULL, "addr unbalanced bracket rejected");
    TU_STR(tsl_addr_format(pool, "100.64.1.2", 65536), NULL, "addr port out of range");
    TU_STR(tsl_addr_format(pool, "100.64.1.2", -1), NULL, "addr negative port");
    TU_STR(tsl_addr_normalize(pool, "::1"), "::1", "normalize ::1");
    TU_STR(tsl_addr_normalize(pool, "2001:DB8:0:0:0:0:0:1"), "2001:db8::1", "normalize compresses v6");
    TU_CHECK(tsl_addr_is_tailnet("100.64.0.0") && tsl_addr_is_tailnet("100.127.255.255")
             && !tsl_addr_is_tailnet("100.128.0.1") && !tsl_addr_is_tailnet("100.63.255.255"),
             "tailnet v4 range 100.64.0.0/10");
    TU_CHECK(tsl_addr_is_tailnet("fd7a:115c:a1e0::1") && tsl_addr_is_tailnet("[fd7a:115c:a1e0:ffff::1]")
             && !tsl_addr_is_tailnet("fd7a:115c:a1e1::1"),
             "tailnet v6 range fd7a:115c:a1e0::/48");
    TU_CHECK(tsl_addr_is_tailnet("::ffff:100.100.1.1"), "tailnet via v4-mapped");
    TU_CHECK(!tsl_addr_is_tailnet("garbage") && !tsl_addr_is_tailnet(NULL), "tailnet rejects garbage");
    TU_CHECK(tsl_addr_is_loopback("127.0.0.1") && tsl_addr_is_loopback("127.9.9.9")
             && tsl_addr_is_loopback("::1") && tsl_addr_is_loopback("::ffff:127.0.0.1")
             && !tsl_addr_is_loopback("100.64.1.1") && !tsl_addr_is_loopback("::2"),
             "loopback checks");
}

/* ================================================================ escape/socket */

static void test_escape_socket(void)
{
    const char *path = NULL;
    tsl_result r;

    TU_STR(tsl_query_escape(pool, "[fd7a:115c:a1e0::1]:443"), "%5Bfd7a%3A115c%3Aa1e0%3A%3A1%5D%3A443",
           "query escape v6 addr");
    TU_STR(tsl_query_escape(pool, "a b+c~d_e-f.g/h?&=%"), "a+b%2Bc~d_e-f.g%2Fh%3F%26%3D%25",
           "query escape like url.QueryEscape");
    TU_STR(tsl_query_escape(pool, "\xc3\xbc*"), "%C3%BC%2A", "query escape UTF-8 and *");
    TU_STR(tsl_query_escape(pool, ""), "", "query escape empty");

    TU_CHECK(tsl_socket_parse(pool, "/run/tailscale/tailscaled.sock", &path, &r) == TSL_OK
             && strcmp(path, "/run/tailscale/tailscaled.sock") == 0, "socket plain path");
    TU_CHECK(tsl_socket_parse(pool, "file://localhost/var/run/tailscale/tailscaled.sock", &path, &r) == TSL_OK
             && strcmp(path, "/var/run/tailscale/tailscaled.sock") == 0, "socket file://localhost/");
    TU_CHECK(tsl_socket_parse(pool, "file:///tmp/ts%20x.sock", &path, &r) == TSL_OK
             && strcmp(path, "/tmp/ts x.sock") == 0, "socket file:/// with escape");
    {
        /* 107 bytes fit sun_path (108 with the NUL); 108 never connects. */
        char longp[200];
        memset(longp, 'a', sizeof(longp));
        longp[0] = '/';
        longp[107] = '\0';
        TU_CHECK(tsl_socket_parse(pool, longp, &path, &r) == TSL_OK, "107-byte socket path");
        longp[107] = 'a';
        longp[108] = '\0';
        TU_CHECK(tsl_socket_parse(pool, longp, &path, &r) == TSL_ERR_INVALID
                 && strstr(r.text, "at most 107"), "108-byte socket path refused");
    }
    TU_CHECK(tsl_socket_parse(pool, "tailscaled.sock", &path, &r) == TSL_ERR_INVALID
             && path == NULL && strstr(r.text, "file://localhost/") != NULL,
             "socket relative path rejected, message lists forms");
    TU_CHECK(tsl_socket_parse(pool, "file://otherhost/x.sock", &path, &r) == TSL_ERR_INVALID,
             "socket other host rejected");
    TU_CHECK(tsl_socket_parse(pool, "http://localhost/x.sock", &path, &r) == TSL_ERR_INVALID,
             "socket http:// rejected");
    TU_CHECK(tsl_socket_parse(pool, "", &path, &r) == TSL_ERR_INVALID, "socket empty rejected");
    TU_CHECK(tsl_socket_parse(pool, NULL, &path, &r) == TSL_ERR_INVALID, "socket NULL rejected");
    TU_CHECK(tsl_socket_parse(pool, "file://localhost", &path, &r) == TSL_ERR_INVALID,
             "socket file://localhost without path rejected");
    TU_CHECK(tsl_socket_parse(pool, "file:///", &path, &r) == TSL_ERR_INVALID,
             "socket file:/// without path rejected");
    TU_CHECK(tsl_socket_parse(pool, "file:///a%00b", &path, &r) == TSL_ERR_INVALID,
             "socket %00 rejected");
    TU_CHECK(tsl_socket_default() != NULL && tsl_socket_default()[0] == '/', "default socket is absolute");
}

/* ================================================================ whois */

#define USER_JSON \
    "{\n\t\"Node\": {\n\t\t\"ID\": 5207519264561923,\n\t\t\"StableID\": \"nQ7rW2kCNTRL\",\n" \
    "\t\t\"Name\": \"laptop.tail1234.ts.net.\",\n\t\t\"User\": 6218839120349811,\n" \
    "\t\t\"Key\": \"nodekey:5f0e\",\n\t\t\"Addresses\": [\n\t\t\t\"100.101.102.103/32\",\n" \
    "\t\t\t\"fd7a:115c:a1e0::e901:6667/128\"\n\t\t],\n\t\t\"Hostinfo\": {\"OS\": \"linux\"},\n" \
    "\t\t\"Online\": true,\n\t\t\"ComputedName\": \"laptop\",\n\t\t\"ComputedNameWithHost\": \"laptop\",\n" \
    "\t\t\"FutureField\": {\"x\": [1, 2]}\n\t},\n" \
    "\t\"UserProfile\": {\n\t\t\"ID\": 6218839120349811,\n\t\t\"LoginName\": \"alice@example.com\",\n" \
    "\t\t\"DisplayName\": \"Alice Example\",\n\t\t\"ProfilePicURL\": \"https://example.com/alice.png\",\n" \
    "\t\t\"Groups\": [\n\t\t\t\"eng@example.com\",\n\t\t\t\"group:eng\"\n\t\t],\n" \
    "\t\t\"Roles\": []\n\t},\n" \
    "\t\"CapMap\": {\n\t\t\"example.com/cap/web\": [\n\t\t\t{\n\t\t\t\t\"role\": \"admin\",\n" \
    "\t\t\t\t\"level\": 1.10,\n\t\t\t\t\"ok\": true,\n\t\t\t\t\"none\": null,\n" \
    "\t\t\t\t\"groups\": [\"eng\", 7, \"ops\"],\n\t\t\t\t\"nested\": {\"a\": \"b\"},\n" \
    "\t\t\t\t\"html\": \"<b>&\\u00e9\"\n\t\t\t},\n\t\t\t{\"role\": \"viewer\"}\n\t\t],\n" \
    "\t\t\"a.example/cap/null\": null,\n\t\t\"tailscale.com/cap/webui\": [\"plain\", 3]\n\t}\n}"

#define TAGGED_JSON \
    "{\"Node\":{\"ID\":733,\"StableID\":\"nT4gg3dCNTRL\",\"Name\":\"ci-runner.tail1234.ts.net.\"," \
    "\"User\":9001,\"Addresses\":[\"100.88.1.2/32\",\"fd7a:115c:a1e0::5801:102/128\"]," \
    "\"Tags\":[\"tag:ci\",\"tag:prod\"],\"ComputedName\":\"ci-runner\",\"ComputedNameWithHost\":\"ci-runner\"}," \
    "\"UserProfile\":{\"ID\":9001,\"LoginName\":\"tagged-devices\",\"DisplayName\":\"Tagged Devices\"}," \
    "\"CapMap\":null}"

#define SHARED_JSON \
    "{\"Node\":{\"ID\":88,\"StableID\":\"nS\",\"Name\":\"box.other-net.ts.net.\",\"User\":77,\"Sharer\":55," \
    "\"ComputedName\":\"box.other-net.ts.net\"}," \
    "\"UserProfile\":{\"ID\":77,\"LoginName\":\"bob@other.example\",\"DisplayName\":\"Bob\"}}"

static tsl_code parse_id(const char *json, tsl_identity **id, tsl_result *r)
{
    return tsl_identity_parse(pool, json, strlen(json), id, r);
}

static void test_identity_user(void)
{
    tsl_identity *id = NULL, *cp;
    tsl_result r;
    const tsl_cap *cap;
    const tsl_cap_value *v;
    apr_array_header_t *names;

    TU_CHECK(parse_id(USER_JSON, &id, &r) == TSL_OK && id, "whois user parses");
    if (!id) { printf("#   %s\n", r.text); return; }
    TU_STR(id->login_name, "alice@example.com", "user login");
    TU_STR(id->display_name, "Alice Example", "user display name");
    TU_STR(id->profile_pic_url, "https://example.com/alice.png", "user picture");
    TU_CHECK(id->user_id == 6218839120349811LL, "user id");
    TU_CHECK(id->node_id == 5207519264561923LL, "node id");
    TU_STR(id->node_stable_id, "nQ7rW2kCNTRL", "node stable id");
    TU_STR(id->node_name, "laptop.tail1234.ts.net", "node name without dot");
    TU_STR(id->node_short, "laptop", "node short name");
    TU_STR(id->tailnet, "tail1234.ts.net", "tailnet from name");
    TU_CHECK(!id->is_tagged && !id->is_shared_in && id->tags->nelts == 0, "user not tagged/shared");
    TU_CHECK(id->groups->nelts == 2 && tsl_identity_has_group(id, "group:eng")
             && tsl_identity_has_group(id, "eng@example.com")
             && !tsl_identity_has_group(id, "group:Eng") && !tsl_identity_has_group(id, "group:"),
             "UserProfile.Groups parsed, exact names");
    TU_STR(id->groups_json, "[\"eng@example.com\",\"group:eng\"]", "groups as JSON, made at parse");
    TU_STR(id->tags_json, "[]", "no tags: an empty JSON array");
    TU_CHECK(id->addresses->nelts == 2
             && strcmp(APR_ARRAY_IDX(id->addresses, 1, const char *), "fd7a:115c:a1e0::e901:6667/128") == 0,
             "node addresses");
    TU_CHECK(id->caps->nelts == 3, "three caps");
    TU_STR(APR_ARRAY_IDX(id->caps, 0, tsl_cap).name, "a.example/cap/null", "caps sorted by name");
    TU_STR(id->capmap_json,
           "{\"a.example/cap/null\":null,"
           "\"example.com/cap/web\":[{\"role\":\"admin\",\"level\":1.10,\"ok\":true,\"none\":null,"
           "\"groups\":[\"eng\",7,\"ops\"],\"nested\":{\"a\":\"b\"},\"html\":\"\\u003cb\\u003e\\u0026\\u00e9\"},"
           "{\"role\":\"viewer\"}],"
           "\"tailscale.com/cap/webui\":[\"plain\",3]}",
           "capmap_json compact, sorted keys, Go escaping, number text kept");
    cap = tsl_identity_cap(id, "a.example/cap/null");
    TU_CHECK(cap && strcmp(cap->values_json, "null") == 0 && cap->values->nelts == 0,
             "null cap value: values_json null, no values");
    cap = tsl_identity_cap(id, "example.com/cap/web");
    TU_CHECK(cap && cap->values->nelts == 2, "web cap has two values");
    if (cap && cap->values->nelts == 2) {
        v = &APR_ARRAY_IDX(cap->values, 1, tsl_cap_value);
        TU_STR(v->json, "{\"role\":\"viewer\"}", "cap value json");
        v = &APR_ARRAY_IDX(cap->values, 0, tsl_cap_value);
        TU_CHECK(v->fields->nelts == 7, "cap value flattened into 7 fields");
        TU_STR(APR_ARRAY_IDX(v->fields, 1, tsl_cap_field).value, "1.10", "number field keeps its text");
        TU_STR(APR_ARRAY_IDX(v->fields, 2, tsl_cap_field).value, "true", "bool field");
        TU_STR(APR_ARRAY_IDX(v->fields, 3, tsl_cap_field).value, "null", "null field");
        TU_STR(APR_ARRAY_IDX(v->fields, 6, tsl_cap_field).value, "<b>&\xc3\xa9", "string field decoded");
    }
    TU_CHECK(tsl_identity_has_cap(id, "example.com/cap/web", NULL, NULL), "has_cap by name");
    TU_CHECK(tsl_identity_has_cap(id, "example.com/cap/web", "role", "viewer"), "has_cap role=viewer (2nd value)");
    TU_CHECK(tsl_identity_has_cap(id, "example.com/cap/web", "groups", "ops"), "has_cap array element");
    TU_CHECK(!tsl_identity_has_cap(id, "example.com/cap/web", "groups", "7"), "has_cap ignores non-string elements");
    TU_CHECK(tsl_identity_has_cap(id, "example.com/cap/web", "level", "1.10"), "has_cap number text");
    TU_CHECK(!tsl_identity_has_cap(id, "example.com/cap/web", "role", "root"), "has_cap wrong value");
    TU_CHECK(!tsl_identity_has_cap(id, "example.com/cap/web", "a", "b"), "has_cap nested objects not flattened");
    TU_CHECK(tsl_identity_has_cap(id, "a.example/cap/null", NULL, NULL), "has_cap null-valued cap");
    TU_CHECK(!tsl_identity_has_cap(id, "a.example/cap/null", "x", "y"), "null-valued cap has no fields");
    TU_CHECK(!tsl_identity_has_cap(id, "missing/cap", NULL, NULL), "has_cap missing");
    TU_CHECK(!tsl_identity_has_tag(id, "tag:ci"), "user has no tag");

    names = apr_array_make(pool, 3, sizeof(const char *));
    TU_STR(tsl_identity_caps_filtered(pool, id, names), "{}", "caps_filtered nothing accepted");
    APR_ARRAY_PUSH(names, const char *) = "tailscale.com/cap/webui";
    APR_ARRAY_PUSH(names, const char *) = "nope";
    APR_ARRAY_PUSH(names, const char *) = "a.example/cap/null";
    TU_STR(tsl_identity_caps_filtered(pool, id, names),
           "{\"a.example/cap/null\":null,\"tailscale.com/cap/webui\":[\"plain\",3]}",
           "caps_filtered sorted subset");

    {
        apr_pool_t *sub;
        apr_pool_create(&sub, pool);
        cp = tsl_identity_copy(sub, id);
        TU_CHECK(cp != id && cp->login_name != id->login_name
                 && strcmp(cp->login_name, id->login_name) == 0
                 && strcmp(cp->capmap_json, id->capmap_json) == 0
                 && cp->caps != id->caps && cp->caps->nelts == 3
                 && tsl_identity_has_cap(cp, "example.com/cap/web", "groups", "eng")
                 && cp->addresses->nelts == 2
                 && APR_ARRAY_IDX(cp->addresses, 0, const char *)
                    != APR_ARRAY_IDX(id->addresses, 0, const char *),
                 "identity_copy is deep");
        {
            apr_pool_t *p2;
            tsl_identity *cp2;
            apr_pool_create(&p2, pool);
            cp2 = tsl_identity_copy(p2, cp);
            apr_pool_destroy(sub);   /* the copy must not point into sub */
            TU_CHECK(strcmp(cp2->node_name, "laptop.tail1234.ts.net") == 0
                     && tsl_identity_has_cap(cp2, "example.com/cap/web", "role", "admin")
                     && cp2->groups->nelts == 2 && tsl_identity_has_group(cp2, "group:eng")
                     && strcmp(cp2->groups_json, id->groups_json) == 0
                     && cp2->groups_json != id->groups_json
                     && strcmp(tsl_identity_caps_filtered(p2, cp2, names),
                               "{\"a.example/cap/null\":null,\"tailscale.com/cap/webui\":[\"plain\",3]}") == 0,
                     "copy survives its source pool");
            apr_pool_destroy(p2);
        }
    }
}

static void test_identity_others(void)
{
    tsl_identity *id = NULL;
    tsl_result r;
    char *huge;
    size_t i;
    apr_array_header_t *names = apr_array_make(pool, 1, sizeof(const char *));

    APR_ARRAY_PUSH(names, const char *) = "x";

    TU_CHECK(parse_id(TAGGED_JSON, &id, &r) == TSL_OK, "whois tagged parses");
    if (id) {
        TU_CHECK(id->is_tagged && id->tags->nelts == 2 && tsl_identity_has_tag(id, "tag:prod")
                 && !tsl_identity_has_tag(id, "tag:other"), "tagged node tags");
        TU_STR(id->tags_json, "[\"tag:ci\",\"tag:prod\"]", "tags as JSON, made at parse");
        TU_STR(id->login_name, TSL_TAGGED_LOGIN, "tagged login is tagged-devices");
        TU_STR(id->profile_pic_url, "", "absent picture is empty");
        TU_CHECK(id->capmap_json == NULL && id->caps->nelts == 0, "CapMap null: no caps");
        TU_CHECK(tsl_identity_caps_filtered(pool, id, names) == NULL, "caps_filtered NULL without CapMap");
        TU_STR(id->tailnet, "tail1234.ts.net", "tagged tailnet");
        TU_CHECK(!id->is_shared_in, "tagged not shared");
        TU_CHECK(id->groups->nelts == 0 && !tsl_identity_has_group(id, "group:eng"),
                 "absent Groups: none");
    }
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\",\"Tags\":[\"tag:x\\n\",\"tag:y\"]},"
                      "\"UserProfile\":{\"LoginName\":\"a@b\",\"Groups\":[\"g\\r\",\"h\"]}}",
                      &id, &r) == TSL_OK, "whois with control characters in lists parses");
    if (id) {
        TU_CHECK(tsl_identity_clean(id) == (TSL_FIELD_TAGS | TSL_FIELD_GROUPS),
                 "clean drops list elements with control characters");
        TU_STR(id->tags_json, "[\"tag:y\"]", "tags JSON follows the cleaned list");
        TU_STR(id->groups_json, "[\"h\"]", "groups JSON follows the cleaned list");
    }
    TU_CHECK(parse_id(SHARED_JSON, &id, &r) == TSL_OK, "whois shared-in parses");
    if (id) {
        TU_STR(id->tailnet, "", "shared-in tailnet empty");
        TU_STR(id->node_short, "box.other-net.ts.net", "shared-in short name is the FQDN");
        TU_CHECK(id->is_shared_in && !id->is_tagged, "shared-in flagged");
        TU_CHECK(id->capmap_json == NULL, "absent CapMap is NULL");
        TU_STR(id->display_name, "Bob", "shared-in display");
    }
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"box.other.ts.net.\",\"ComputedName\":\"box.other.ts.net\"},"
                      "\"UserProfile\":{\"LoginName\":\"bob@x\"},\"CapMap\":{}}", &id, &r) == TSL_OK
             && id->is_shared_in && strcmp(id->capmap_json, "{}") == 0,
             "shared-in without Sharer; empty CapMap is {}");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"n.t.ts.net.\"},\"UserProfile\":{\"LoginName\":\"a@b\"},"
                      "\"Caps\":[\"https://tailscale.com/cap/file-sharing\"]}", &id, &r) == TSL_OK
             && id->capmap_json == NULL && id->caps->nelts == 0
             && strcmp(id->node_short, "n") == 0 && strcmp(id->tailnet, "t.ts.net") == 0,
             "pre-1.48 Caps ignored; short name from Name");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"n.t.ts.net.\"},\"UserProfile\":{\"LoginName\":\"a@b\"},"
                      "\"CapMap\":{\"x\":[1],\"x\":[2]}}", &id, &r) == TSL_OK
             && id->caps->nelts == 1 && strcmp(id->capmap_json, "{\"x\":[2]}") == 0,
             "duplicate CapMap key: last wins");

    /* malformed answers */
    TU_CHECK(parse_id("{\"UserProfile\":{\"LoginName\":\"a@b\"}}", &id, &r) == TSL_ERR_PARSE
             && strcmp(r.text, "whois answer has no Node") == 0 && id == NULL, "missing Node");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"}}", &id, &r) == TSL_ERR_PARSE
             && strcmp(r.text, "whois answer has no UserProfile") == 0, "missing UserProfile");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"ID\":1}}", &id, &r) == TSL_ERR_PARSE
             && strcmp(r.text, "whois answer has no UserProfile.LoginName") == 0, "missing LoginName");
    TU_CHECK(parse_id("{\"Node\":{\"ID\":1},\"UserProfile\":{\"LoginName\":\"a@b\"}}", &id, &r) == TSL_ERR_PARSE
             && strcmp(r.text, "whois answer has no Node.Name") == 0, "missing Node.Name");
    TU_CHECK(parse_id("{\"Node\":\"x\",\"UserProfile\":{\"LoginName\":\"a@b\"}}", &id, &r) == TSL_ERR_PARSE
             && strstr(r.text, "Node is not an object"), "Node wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\",\"ID\":\"7\"},\"UserProfile\":{\"LoginName\":\"a@b\"}}",
                      &id, &r) == TSL_ERR_PARSE && strstr(r.text, "Node.ID is not an integer"),
             "Node.ID wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\",\"Groups\":\"group:x\"}}",
                      &id, &r) == TSL_ERR_PARSE && strstr(r.text, "UserProfile.Groups is not an array"),
             "Groups wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\",\"Tags\":\"tag:x\"},\"UserProfile\":{\"LoginName\":\"a@b\"}}",
                      &id, &r) == TSL_ERR_PARSE && strstr(r.text, "Node.Tags is not an array"),
             "Tags wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\",\"Tags\":[1]},\"UserProfile\":{\"LoginName\":\"a@b\"}}",
                      &id, &r) == TSL_ERR_PARSE && strstr(r.text, "non-string"), "Tags element wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":5}}", &id, &r) == TSL_ERR_PARSE
             && strstr(r.text, "LoginName is not a string"), "LoginName wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\"},\"CapMap\":[]}",
                      &id, &r) == TSL_ERR_PARSE && strstr(r.text, "CapMap is not an object"),
             "CapMap wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\"},"
                      "\"CapMap\":{\"c\":\"v\"}}", &id, &r) == TSL_ERR_PARSE
             && strstr(r.text, "CapMap value of \"c\" is not an array"), "CapMap value wrong type");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\"", &id, &r)
             == TSL_ERR_PARSE && strstr(r.text, "not valid JSON"), "truncated JSON");
    TU_CHECK(parse_id("{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\"}} x", &id, &r)
             == TSL_ERR_PARSE, "trailing garbage");
    TU_CHECK(parse_id("[1,2]", &id, &r) == TSL_ERR_PARSE && strstr(r.text, "not a JSON object"), "array answer");
    TU_CHECK(parse_id("", &id, &r) == TSL_ERR_PARSE, "empty answer");
    TU_CHECK(parse_id("no match for IP:port\n", &id, &r) == TSL_ERR_PARSE, "text answer");

    /* a huge display name still parses (the size limit lives in the transport) */
    huge = apr_palloc(pool, 300000);
    strcpy(huge, "{\"Node\":{\"Name\":\"a.b.\"},\"UserProfile\":{\"LoginName\":\"a@b\",\"DisplayName\":\"");
    i = strlen(huge);
    memset(huge + i, 'x', 200000);
    strcpy(huge + i + 200000, "\"}}");
    TU_CHECK(parse_id(huge, &id, &r) == TSL_OK && strlen(id->display_name) == 200000, "huge string");
}

/* ================================================================ status */

#define STATUS_JSON \
    "{\n\t\"Version\": \"1.98.1-t0123abcd-g4567ef89\",\n\t\"TUN\": true,\n\t\"BackendState\": \"Running\",\n" \
    "\t\"HaveNodeKey\": true,\n\t\"AuthURL\": \"\",\n" \
    "\t\"TailscaleIPs\": [\"100.101.102.103\", \"fd7a:115c:a1e0::e901:6667\"],\n" \
    "\t\"Self\": {\"ID\": \"nQ7\", \"HostName\": \"web1\", \"DNSName\": \"web1.tail1234.ts.net.\", \"Online\": true},\n" \
    "\t\"Health\": null,\n\t\"MagicDNSSuffix\": \"tail1234.ts.net\",\n" \
    "\t\"CurrentTailnet\": {\"Name\": \"example.com\", \"MagicDNSSuffix\": \"tail1234.ts.net\", \"MagicDNSEnabled\": true},\n" \
    "\t\"CertDomains\": [\"web1.tail1234.ts.net\", \"web1-alias.tail1234.ts.net\"],\n" \
    "\t\"ExtraRecords\": null,\n\t\"User\": {},\n\t\"ClientVersion\": null\n}\n"

static tsl_code parse_st(const char *json, tsl_status **st, tsl_result *r)
{
    return tsl_status_parse(pool, json, strlen(json), st, r);
}

static void test_status(void)
{
    tsl_status *st = NULL;
    tsl_result r;

    TU_CHECK(parse_st(STATUS_JSON, &st, &r) == TSL_OK && st, "status parses");
    if (st) {
        TU_STR(st->version, "1.98.1-t0123abcd-g4567ef89", "status version");
        TU_STR(st->backend_state, "Running", "status backend state");
        TU_STR(st->self_dns_name, "web1.tail1234.ts.net", "status self name without dot");
        TU_STR(st->tailnet_name, "example.com", "status tailnet name");
        TU_STR(st->magic_dns_suffix, "tail1234.ts.net", "status suffix");
        TU_CHECK(st->cert_domains->nelts == 2 && st->self_ips->nelts == 2, "status domains and ips");
        TU_CHECK(tsl_status_cert_domain_ok(st, "web1.tail1234.ts.net")
                 && tsl_status_cert_domain_ok(st, "WEB1.tail1234.ts.net.")
                 && tsl_status_cert_domain_ok(st, "*.web1.tail1234.ts.net")
                 && !tsl_status_cert_domain_ok(st, "app.web1.tail1234.ts.net")
                 && !tsl_status_cert_domain_ok(st, "tail1234.ts.net")
                 && !tsl_status_cert_domain_ok(st, "*.tail1234.ts.net")
                 && !tsl_status_cert_domain_ok(st, "*.")
                 && !tsl_status_cert_domain_ok(st, ""),
                 "cert_domain_ok exact, wildcard, rejects subdomains");
        TU_STR(tsl_status_cert_domains_str(pool, st),
               "[\"web1.tail1234.ts.net\" \"web1-alias.tail1234.ts.net\"]", "cert domains like Go %q");
    }
    TU_CHECK(parse_st("{\"Version\":\"1.50.0\",\"BackendState\":\"NeedsLogin\",\"TailscaleIPs\":null,"
                      "\"Self\":null,\"MagicDNSSuffix\":\"old.ts.net\",\"CurrentTailnet\":null,"
                      "\"CertDomains\":null}", &st, &r) == TSL_OK
             && st->cert_domains->nelts == 0 && st->self_ips->nelts == 0
             && strcmp(st->self_dns_name, "") == 0 && strcmp(st->tailnet_name, "") == 0
             && strcmp(st->magic_dns_suffix, "old.ts.net") == 0
             && strcmp(st->backend_state, "NeedsLogin") == 0,
             "status nulls: CertDomains null is empty, suffix falls back");
    TU_STR(tsl_status_cert_domains_str(pool, st), "[]", "empty cert domains str");
    TU_CHECK(!tsl_status_cert_domain_ok(st, "web1.tail1234.ts.net"), "no cert domain ok when empty");
    TU_CHECK(parse_st("{\"Version\":\"1\",\"TUN\":true}", &st, &r) == TSL_ERR_PARSE
             && strcmp(r.text, "status answer has no BackendState") == 0, "status without BackendState");
    TU_CHECK(parse_st("{\"BackendState\":\"Running\",\"CertDomains\":\"a\"}", &st, &r) == TSL_ERR_PARSE
             && strstr(r.text, "CertDomains is not an array"), "status CertDomains wrong type");
    TU_CHECK(parse_st("{\"BackendState\":\"Running\",\"Self\":[]}", &st, &r) == TSL_ERR_PARSE
             && strstr(r.text, "Self is not an object"), "status Self wrong type");
    TU_CHECK(parse_st("{\"BackendState\":\"Running\",\"Self\":{\"DNSName\":1}}", &st, &r) == TSL_ERR_PARSE
             && strstr(r.text, "Self.DNSName is not a string"), "status DNSName wrong type");
    TU_CHECK(parse_st("{\"BackendState\":", &st, &r) == TSL_ERR_PARSE, "status truncated");
    TU_CHECK(parse_st("{\"BackendState\":\"Running\",\"Self\":{\"CapMap\":{\"service-host\":"
                      "[{\"svc:web\":[\"100.100.100.50\",\"FD7A:115C:A1E0:0::50\"]},"
                      "{\"svc:db\":[\"100.100.100.51\"]}],\"funnel\":null}}}", &st, &r) == TSL_OK
             && !st->services_error && st->services->nelts == 2,
             "status service-host: two services");
    TU_CHECK(st && tsl_status_service_at(st, "100.100.100.50")
             && !strcmp(tsl_status_service_at(st, "100.100.100.50"), "svc:web")
             && tsl_status_service_at(st, "fd7a:115c:a1e0::50")
             && !strcmp(tsl_status_service_at(st, "fd7a:115c:a1e0::50"), "svc:web")
             && tsl_status_service_at(st, "100.100.100.51")
             && !strcmp(tsl_status_service_at(st, "100.100.100.51"), "svc:db")
             && !tsl_status_service_at(st, "100.101.102.103") && !tsl_status_service_at(st, NULL),
             "service_at: VIPs (IPv6 compared in canonical form), not the node's own address");
    TU_CHECK(parse_st(STATUS_JSON, &st, &r) == TSL_OK && st->services->nelts == 0
             && !st->services_error && !tsl_status_service_at(st, "100.100.100.50"),
             "status without CapMap: no services");
    {
        static const char *bad[] = {
            "\"service-host\":{\"svc:web\":[]}", "is not an array",
            "\"service-host\":[[\"svc:web\"]]", "is not an object",
            "\"service-host\":[{\"web\":[\"100.100.100.50\"]}]", "svc:<DNS label>",
            "\"service-host\":[{\"svc:we\\r\\nb\":[\"100.100.100.50\"]}]", "svc:<DNS label>",
            "\"service-host\":[{\"svc:web\":\"100.100.100.50\"}]", "are not an array",
            "\"service-host\":[{\"svc:web\":[\"100.100.100.50:80\"]}]", "not an IP address",
            "\"service-host\":[{\"svc:web\":[\"100.100.100.50\"],\"svc:-x\":[]}]", "svc:<DNS label>",
        };
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 2) {
            const char *json = apr_psprintf(pool, "{\"BackendState\":\"Running\",\"CertDomains\":"
                                            "[\"a.ts.net\"],\"Self\":{\"CapMap\":{%s}}}", bad[i]);
            TU_CHECK(parse_st(json, &st, &r) == TSL_OK && st->services->nelts == 0
                     && st->services_error && strstr(st->services_error, bad[i + 1])
                     && st->cert_domains->nelts == 1,
                     apr_psprintf(pool, "service-host %s: refused (%s), rest of status kept",
                                  bad[i], st && st->services_error ? st->services_error : "-"));
        }
    }
}

/* ================================================================ header */

static const char *repeat(const char *s, int n)
{
    const char *out = "";
    int i;
    for (i = 0; i < n; i++) out = apr_pstrcat(pool, out, s, NULL);
    return out;
}

static void test_header(void)
{
    const char *w10 = apr_pstrcat(pool, "=?utf-8?q?", repeat("=C3=BC", 10), "?=", NULL);

    TU_STR(tsl_header_encode(pool, "alice@example.com"), "alice@example.com", "header ASCII unchanged");
    TU_STR(tsl_header_encode(pool, "=?utf-8?q?x?= a_b {\"k\":[1]}"), "=?utf-8?q?x?= a_b {\"k\":[1]}",
           "header ASCII with =? _ and JSON unchanged");
    TU_STR(tsl_header_encode(pool, "a\tb"), "a\tb", "header tab unchanged");
    TU_STR(tsl_header_encode(pool, ""), "", "header empty");
    TU_STR(tsl_header_encode(pool, "J\xc3\xbcrgen M\xc3\xbcller"), "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=",
           "header Juergen Mueller");
    TU_STR(tsl_header_encode(pool, "\xc3\xa9 = ?_\t!"), "=?utf-8?q?=C3=A9_=3D_=3F=5F=09!?=",
           "header specials encoded inside a word");
    TU_STR(tsl_header_encode(pool, "a\nb"), "=?utf-8?q?a=0Ab?=", "header control char encoded");
    TU_STR(tsl_header_encode(pool, "x\x7f"), "=?utf-8?q?x=7F?=", "header DEL encoded");
    TU_STR(tsl_header_encode(pool, repeat("\xc3\xbc", 30)),
           apr_pstrcat(pool, w10, " ", w10, " ", w10, NULL), "header 30 runes in 3 words of 10");
    TU_STR(tsl_header_encode(pool, apr_pstrcat(pool, repeat("a", 57), "\xc3\xbc", NULL)),
           apr_pstrcat(pool, "=?utf-8?q?", repeat("a", 57), "=C3=BC?=", NULL), "header exactly 63 in one word");
    TU_STR(tsl_header_encode(pool, apr_pstrcat(pool, repeat("a", 58), "\xc3\xbc", NULL)),
           apr_pstrcat(pool, "=?utf-8?q?", repeat("a", 58), "?= =?utf-8?q?=C3=BC?=", NULL),
           "header rune moves to next word, never split");
    TU_STR(tsl_header_encode(pool, apr_pstrcat(pool, repeat("a", 64), "\xc3\xbc", NULL)),
           apr_pstrcat(pool, "=?utf-8?q?", repeat("a", 63), "?= =?utf-8?q?a=C3=BC?=", NULL),
           "header ASCII split at 63");
    TU_STR(tsl_header_encode(pool, repeat("\xf0\x9f\x98\x80", 6)),
           apr_pstrcat(pool, "=?utf-8?q?", repeat("=F0=9F=98=80", 5), "?= =?utf-8?q?=F0=9F=98=80?=", NULL),
           "header 4-byte runes: 5 per word");
    TU_STR(tsl_header_encode(pool, "\xff"), "", "header invalid byte gives empty");
    TU_STR(tsl_header_encode(pool, "ok\xc3"), "", "header truncated sequence gives empty");
    TU_STR(tsl_header_encode(pool, "\xc0\xaf"), "", "header overlong gives empty");
    TU_STR(tsl_header_encode(pool, "\xed\xa0\x80"), "", "header surrogate gives empty");
    TU_STR(tsl_header_encode(pool, "\xf4\x90\x80\x80"), "", "header above U+10FFFF gives empty");
    TU_STR(tsl_header_encode(pool, NULL), "", "header NULL gives empty");
    TU_CHECK(tsl_utf8_valid("J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80") && tsl_utf8_valid("")
             && !tsl_utf8_valid("\xe2\x82") && !tsl_utf8_valid("\x80"), "utf8_valid");
}

/* ================================================================ certificates */

static EVP_PKEY *gen_ec(void)
{
    return EVP_EC_gen("P-256");
}

/* A certificate for key, signed by signer (self-signed when issuer NULL).
 * san like "DNS:a,DNS:b" or NULL; validity now+nb .. now+na seconds. */
static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn,
                       const char *san, long nb, long na, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    static long serial = 1;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (san) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (ca) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, signer, EVP_sha256());
    return x;
}

static const char *bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    const char *s = apr_pstrmemdup(pool, data, (apr_size_t)n);
    BIO_free(b);
    return s;
}

static const char *key_pem(EVP_PKEY *k, int traditional)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (traditional) PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
    else PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    return bio_text(b);
}

static const char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    return bio_text(b);
}

static tsl_code parse_pair(const char *s, tsl_cert_pair **pair, tsl_result *r)
{
    return tsl_cert_pair_parse(pool, s, strlen(s), pair, r);
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(data, f);
        fclose(f);
    }
}

/* shared with the transport tests */
static const char *good_pair_text;

static void test_cert(void)
{
    EVP_PKEY *ca_key = gen_ec(), *leaf_key = gen_ec(), *other_key = gen_ec(), *rsa_key;
    X509 *ca = make_cert(ca_key, ca_key, NULL, "Test CA", NULL, -3600, 86400 * 365, 1);
    X509 *leaf = make_cert(leaf_key, ca_key, ca, "web1.tail1234.ts.net", "DNS:web1.tail1234.ts.net",
                           -3600, 86400 * 90, 0);
    X509 *wild = make_cert(leaf_key, ca_key, ca, "wild", "DNS:*.web1.tail1234.ts.net,DNS:web1.tail1234.ts.net",
                           -3600, 86400 * 90, 0);
    X509 *cn_only = make_cert(leaf_key, ca_key, ca, "cn.tail1234.ts.net", NULL, -3600, 86400, 0);
    X509 *rsa_leaf;
    const char *k_trad = key_pem(leaf_key, 1), *k_pkcs8 = key_pem(leaf_key, 0);
    const char *leaf_s = cert_pem(leaf), *ca_s = cert_pem(ca);
    const char *pair_s = apr_pstrcat(pool, k_trad, leaf_s, ca_s, NULL);
    tsl_cert_pair *pair = NULL;
    tsl_result r;
    unsigned char md[32];
    unsigned int mdlen;
    char want_fp[65];
    unsigned int i;
    apr_time_t now = apr_time_now();

    rsa_key = EVP_RSA_gen(1024);
    rsa_leaf = make_cert(rsa_key, ca_key, ca, "rsa", "DNS:rsa.tail1234.ts.net", -60, 3600, 0);

    good_pair_text = pair_s;
    TU_CHECK(strstr(k_trad, "-----BEGIN EC PRIVATE KEY-----") == k_trad, "fixture: SEC1 EC key");
    TU_CHECK(parse_pair(pair_s, &pair, &r) == TSL_OK && pair, "pair parses (EC key + leaf + intermediate)");
    if (pair) {
        TU_STR(pair->key_pem, k_trad, "pair key part is the key block");
        TU_STR(pair->chain_pem, apr_pstrcat(pool, leaf_s, ca_s, NULL), "pair chain part is leaf + CA");
        TU_CHECK(pair->names->nelts == 1
                 && strcmp(APR_ARRAY_IDX(pair->names, 0, const char *), "web1.tail1234.ts.net") == 0,
                 "pair names from SAN");
        X509_digest(leaf, EVP_sha256(), md, &mdlen);
        for (i = 0; i < mdlen; i++) sprintf(want_fp + 2 * i, "%02x", md[i]);
        TU_STR(pair->fingerprint, want_fp, "pair fingerprint is SHA-256 of leaf DER");
        TU_CHECK(pair->not_before <= now - apr_time_from_sec(3590)
                 && pair->not_before >= now - apr_time_from_sec(3610)
                 && pair->not_after >= now + apr_time_from_sec(86400 * 90 - 10)
                 && pair->not_after <= now + apr_time_from_sec(86400 * 90 + 10),
                 "pair dates");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "web1.tail1234.ts.net", now, &r) == TSL_OK,
                 "check: name and date ok");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "WEB1.Tail1234.ts.net.", now, &r) == TSL_OK,
                 "check: case and trailing dot ignored");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "other.tail1234.ts.net", now, &r) == TSL_ERR_CERT
                 && strcmp(r.text, "certificate names [web1.tail1234.ts.net] do not cover "
                                   "other.tail1234.ts.net") == 0, "check: wrong name");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "web1.tail1234.ts.net",
                                     pair->not_after + apr_time_from_sec(1), &r) == TSL_ERR_CERT
                 && strstr(r.text, "certificate for web1.tail1234.ts.net expired at ") == r.text,
                 "check: expired");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "web1.tail1234.ts.net",
                                     pair->not_before - apr_time_from_sec(1), &r) == TSL_ERR_CERT
                 && strstr(r.text, "is not valid before"), "check: not yet valid");
    }
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_pkcs8, leaf_s, NULL), &pair, &r) == TSL_OK, "pair with PKCS#8 key");
    TU_CHECK(parse_pair(apr_pstrcat(pool, key_pem(rsa_key, 1), cert_pem(rsa_leaf), NULL), &pair, &r) == TSL_OK
             && strcmp(APR_ARRAY_IDX(pair->names, 0, const char *), "rsa.tail1234.ts.net") == 0,
             "pair with RSA key");
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_trad, cert_pem(cn_only), NULL), &pair, &r) == TSL_OK
             && pair->names->nelts == 1
             && strcmp(APR_ARRAY_IDX(pair->names, 0, const char *), "cn.tail1234.ts.net") == 0,
             "names fall back to CN");
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_trad, cert_pem(wild), NULL), &pair, &r) == TSL_OK, "wildcard pair");
    if (pair) {
        TU_CHECK(tsl_cert_pair_check(pair, pool, "app.web1.tail1234.ts.net", now, &r) == TSL_OK,
                 "wildcard covers one label");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "*.web1.tail1234.ts.net", now, &r) == TSL_OK,
                 "wildcard covers its literal name");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "a.b.web1.tail1234.ts.net", now, &r) == TSL_ERR_CERT,
                 "wildcard does not cover two labels");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "web1.tail1234.ts.net", now, &r) == TSL_OK,
                 "second SAN covers the base name");
        TU_CHECK(tsl_cert_pair_check(pair, pool, "x.tail1234.ts.net", now, &r) == TSL_ERR_CERT,
                 "wildcard does not cover a sibling");
    }

    /* broken pairs */
    TU_CHECK(parse_pair(apr_pstrcat(pool, leaf_s, ca_s, NULL), &pair, &r) == TSL_ERR_PARSE
             && strstr(r.text, "no private key"), "pair without key");
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_trad, key_pem(other_key, 1), leaf_s, NULL), &pair, &r)
             == TSL_ERR_CERT && strstr(r.text, "unexpected private key"), "pair with two keys");
    TU_CHECK(parse_pair(apr_pstrcat(pool, key_pem(other_key, 1), leaf_s, NULL), &pair, &r) == TSL_ERR_CERT
             && strcmp(r.text, "certificate for web1.tail1234.ts.net does not match its private key") == 0,
             "key does not match leaf");
    TU_CHECK(parse_pair(k_trad, &pair, &r) == TSL_ERR_CERT && strstr(r.text, "no certificate"),
             "key without certificate");
    TU_CHECK(parse_pair("garbage", &pair, &r) == TSL_ERR_PARSE, "garbage pair");
    TU_CHECK(parse_pair("", &pair, &r) == TSL_ERR_PARSE, "empty pair");
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_trad, "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n"
                                    "-----END CERTIFICATE-----\n", NULL), &pair, &r) == TSL_ERR_CERT
             && strstr(r.text, "does not parse"), "garbage certificate");
    TU_CHECK(parse_pair(apr_pstrcat(pool, "-----BEGIN EC PRIVATE KEY-----\nZ2FyYmFnZQ==\n"
                                    "-----END EC PRIVATE KEY-----\n", leaf_s, NULL), &pair, &r) == TSL_ERR_CERT
             && strstr(r.text, "cannot parse the private key"), "garbage key");
    TU_CHECK(parse_pair(apr_pstrcat(pool, k_trad, leaf_s, "-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n",
                                    NULL), &pair, &r) == TSL_ERR_CERT && strstr(r.text, "other than"),
             "non-certificate block in chain");
    TU_CHECK(parse_pair(apr_pstrcat(pool, leaf_s, k_trad, NULL), &pair, &r) == TSL_ERR_CERT,
             "certificate before key rejected");

    /* files */
    {
        const char *kf = apr_pstrcat(pool, tmpdir, "/key.pem", NULL);
        const char *cf = apr_pstrcat(pool, tmpdir, "/chain.pem", NULL);
        write_file(kf, k_pkcs8);
        write_file(cf, apr_pstrcat(pool, leaf_s, ca_s, NULL));
        TU_CHECK(tsl_cert_pair_load(pool, kf, cf, &pair, &r) == TSL_OK && pair
                 && strcmp(pair->fingerprint, want_fp) == 0, "pair_load from files");
        TU_CHECK(tsl_cert_pair_load(pool, kf, apr_pstrcat(pool, tmpdir, "/nope.pem", NULL), &pair, &r)
                 == TSL_ERR_CERT && strstr(r.text, "nope.pem"), "pair_load missing file");
        unlink(kf);
        unlink(cf);
    }

    X509_free(ca); X509_free(leaf); X509_free(wild); X509_free(cn_only); X509_free(rsa_leaf);
    EVP_PKEY_free(ca_key); EVP_PKEY_free(leaf_key); EVP_PKEY_free(other_key); EVP_PKEY_free(rsa_key);
}

static tsl_code chain_of(const char *key, const char *chain, tsl_result *r)
{
    tsl_cert_pair *pair = NULL;
    tsl_code code = parse_pair(apr_pstrcat(pool, key, chain, NULL), &pair, r);

    return code != TSL_OK ? code : tsl_cert_pair_check_chain(pair, pool, r);
}

static void test_cert_chain(void)
{
    EVP_PKEY *root_key = gen_ec(), *inter_key = gen_ec(), *leaf_key = gen_ec();
    EVP_PKEY *other_key = gen_ec();
    X509 *root = make_cert(root_key, root_key, NULL, "Root", NULL, -3600, 86400 * 365, 1);
    X509 *inter = make_cert(inter_key, root_key, root, "Intermediate", NULL, -3600,
                            86400 * 365, 1);
    X509 *other = make_cert(other_key, other_key, NULL, "Unrelated CA", NULL, -3600,
                            86400 * 365, 1);
    X509 *leaf = make_cert(leaf_key, inter_key, inter, "web1.tail1234.ts.net",
                           "DNS:web1.tail1234.ts.net", -3600, 86400 * 90, 0);
    X509 *cn_only = make_cert(leaf_key, inter_key, inter, "web1.tail1234.ts.net", NULL,
                              -3600, 86400 * 90, 0);
    /* the right names, but signed with another key: a forged issuer */
    X509 *forged = make_cert(leaf_key, other_key, inter, "web1.tail1234.ts.net",
                             "DNS:web1.tail1234.ts.net", -3600, 86400 * 90, 0);
    X509 *self = make_cert(leaf_key, leaf_key, NULL, "web1.tail1234.ts.net",
                           "DNS:web1.tail1234.ts.net", -3600, 86400, 0);
    const char *k = key_pem(leaf_key, 1);
    const char *leaf_s = cert_pem(leaf), *inter_s = cert_pem(inter), *root_s = cert_pem(root);
    tsl_result r;

    TU_CHECK(chain_of(k, apr_pstrcat(pool, leaf_s, inter_s, NULL), &r) == TSL_OK,
             "chain: leaf + its intermediate");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, leaf_s, inter_s, root_s, NULL), &r) == TSL_OK,
             "chain: leaf + intermediate + root");
    TU_CHECK(chain_of(k, cert_pem(self), &r) == TSL_OK, "chain: a self-signed leaf alone");
    TU_CHECK(chain_of(k, leaf_s, &r) == TSL_ERR_CERT
             && strstr(r.text, "only the leaf") && strstr(r.text, "Intermediate"),
             "chain: leaf without its intermediate rejected, naming the issuer");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, leaf_s, cert_pem(other), NULL), &r) == TSL_ERR_CERT
             && strstr(r.text, "certificate 1 of the chain")
             && strstr(r.text, "Unrelated CA"),
             "chain: leaf followed by an unrelated CA rejected");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, leaf_s, root_s, NULL), &r) == TSL_ERR_CERT
             && strstr(r.text, "not issued by certificate 2"),
             "chain: leaf followed by its root, skipping the intermediate, rejected");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, leaf_s, inter_s, cert_pem(other), NULL), &r)
             == TSL_ERR_CERT && strstr(r.text, "certificate 2 of the chain"),
             "chain: an unrelated certificate after the intermediate rejected");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, cert_pem(forged), inter_s, NULL), &r)
             == TSL_ERR_CERT && strstr(r.text, "signature"),
             "chain: a leaf naming the intermediate but signed by another key rejected");
    TU_CHECK(chain_of(k, apr_pstrcat(pool, cert_pem(cn_only), inter_s, NULL), &r)
             == TSL_ERR_CERT && strstr(r.text, "subjectAltName"),
             "chain: a leaf with only a CN rejected");
    TU_CHECK(tsl_cert_pair_check_chain(NULL, pool, &r) == TSL_ERR_INVALID,
             "chain: no pair");
    TU_CHECK(ERR_peek_error() == 0, "chain: OpenSSL error queue left empty");

    X509_free(root); X509_free(inter); X509_free(other); X509_free(leaf);
    X509_free(cn_only); X509_free(forged); X509_free(self);
    EVP_PKEY_free(root_key); EVP_PKEY_free(inter_key); EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
}

/* ================================================================ transport */

typedef struct fake_srv {
    int lfd;
    char path[108];
    pthread_t th;
    pthread_mutex_t mu;     /* guards the script and the observations: a
                               connection thread of an earlier step may
                               still be serving when the script changes */
    int stop;               /* __atomic */
    /* script */
    const char *resp;
    size_t resp_len;
    int delay_ms;
    int close_after;
    int drop_reused;    /* close a connection at its second request, unanswered */
    int reset;          /* close each new connection unread (ECONNRESET) */
    int drop_all;       /* close every connection at its next request, unanswered */
    int endless_ms;     /* after the answer, send body bytes until the peer goes,
                           one 4 KiB block every endless_ms (0: as fast as it can) */
    /* observations */
    int accepts;
    int requests;
    char last_req[4096];
    pthread_t conns[64];
    int n_conns;
} fake_srv;

#define ENDLESS_OFF (-1)

typedef struct conn_arg {
    fake_srv *s;
    int fd;
} conn_arg;

static void *conn_main(void *data)
{
    conn_arg *a = data;
    fake_srv *s = a->s;
    char buf[4096];
    size_t have = 0;
    int served = 0;
    int reset;

    pthread_mutex_lock(&s->mu);
    reset = s->reset;
    pthread_mutex_unlock(&s->mu);
    if (reset) {
        /* a unix socket closed with unread data makes the peer's recv()
         * fail with ECONNRESET */
        usleep(100 * 1000);
        pthread_mutex_lock(&s->mu);
        s->requests++;
        pthread_mutex_unlock(&s->mu);
        close(a->fd);
        free(a);
        return NULL;
    }
    for (;;) {
        char *end;
        const char *resp;
        size_t resp_len;
        int drop, delay_ms, endless_ms, close_after;
        ssize_t n = read(a->fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (!end) {
            if (have >= sizeof(buf) - 1) break;
            continue;
        }
        pthread_mutex_lock(&s->mu);
        s->requests++;
        memcpy(s->last_req, buf, (size_t)(end - buf) + 4);
        s->last_req[end - buf + 4] = '\0';
        drop = s->drop_all || (s->drop_reused && served++ > 0);
        delay_ms = s->delay_ms;
        resp = s->resp;
        resp_len = s->resp_len;
        endless_ms = s->endless_ms;
        close_after = s->close_after;
        pthread_mutex_unlock(&s->mu);
        have = 0;
        if (drop) break;
        if (delay_ms) usleep((useconds_t)delay_ms * 1000);
        if (resp_len && write(a->fd, resp, resp_len) < 0) break;
        if (endless_ms != ENDLESS_OFF) {
            char block[4096];
            memset(block, 'x', sizeof(block));
            while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)
                   && write(a->fd, block, sizeof(block)) > 0) {
                if (endless_ms) usleep((useconds_t)endless_ms * 1000);
            }
            break;
        }
        if (close_after) break;
    }
    close(a->fd);
    free(a);
    return NULL;
}

static void *srv_main(void *data)
{
    fake_srv *s = data;

    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd = { s->lfd, POLLIN, 0 };
        if (poll(&pfd, 1, 20) <= 0) continue;
        {
            int fd = accept(s->lfd, NULL, NULL);
            conn_arg *a;
            if (fd < 0) continue;
            a = malloc(sizeof(*a));
            a->s = s;
            a->fd = fd;
            pthread_mutex_lock(&s->mu);
            s->accepts++;
            if (s->n_conns < 64 && pthread_create(&s->conns[s->n_conns], NULL, conn_main, a) == 0) {
                s->n_conns++;
                a = NULL;
            }
            pthread_mutex_unlock(&s->mu);
            if (a) { close(fd); free(a); }
        }
    }
    return NULL;
}

static void srv_start(fake_srv *s, const char *name, int do_listen)
{
    struct sockaddr_un sa;

    memset(s, 0, sizeof(*s));
    s->endless_ms = ENDLESS_OFF;
    pthread_mutex_init(&s->mu, NULL);
    if (strlen(tmpdir) + strlen(name) + 2 > sizeof(s->path)) {
        fprintf(stderr, "socket path too long\n");
        exit(2);
    }
    strcpy(s->path, tmpdir);
    strcat(s->path, "/");
    strcat(s->path, name);
    unlink(s->path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, s->path, sizeof(sa.sun_path));
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) perror("bind");
    if (do_listen) {
        listen(s->lfd, 16);
        pthread_create(&s->th, NULL, srv_main, s);
    }
}

static void srv_script(fake_srv *s, const char *resp, int delay_ms, int close_after)
{
    pthread_mutex_lock(&s->mu);
    s->resp = resp;
    s->resp_len = strlen(resp);
    s->delay_ms = delay_ms;
    s->close_after = close_after;
    pthread_mutex_unlock(&s->mu);
}

/* Set one int of the script (under the lock). */
#define SRV_SET(s, field, value) do { \
        pthread_mutex_lock(&(s)->mu); (s)->field = (value); pthread_mutex_unlock(&(s)->mu); \
    } while (0)

/* Read one int observation (accepts, requests) under the lock. */
static int srv_count(fake_srv *s, const int *field)
{
    int v;

    pthread_mutex_lock(&s->mu);
    v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* The head of the last request, copied under the lock. */
static const char *srv_last_req(fake_srv *s)
{
    const char *req;

    pthread_mutex_lock(&s->mu);
    req = apr_pstrdup(pool, s->last_req);
    pthread_mutex_unlock(&s->mu);
    return req;
}

/* Call after the clients talking to it are gone (their pool destroyed). */
static void srv_stop(fake_srv *s, int started)
{
    int i;

    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    if (started) pthread_join(s->th, NULL);
    for (i = 0; i < s->n_conns; i++) pthread_join(s->conns[i], NULL);
    close(s->lfd);
    unlink(s->path);
    pthread_mutex_destroy(&s->mu);
}

static const char *http_resp(int status, const char *reason, const char *extra, const char *body)
{
    return apr_psprintf(pool, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s", status, reason,
                        (int)strlen(body), extra ? extra : "", body);
}

static const char *chunked_resp(const char *body)
{
    size_t n = strlen(body), half = n / 2;
    return apr_psprintf(pool, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "%x\r\n%.*s\r\n%x\r\n%s\r\n0\r\n\r\n", (unsigned)half, (int)half, body,
                        (unsigned)(n - half), body + half);
}

typedef struct thr_arg {
    tsl_client *c;
    int ok;
} thr_arg;

static void *thr_main(void *data)
{
    thr_arg *a = data;
    apr_pool_t *p;
    int i;

    apr_pool_create_unmanaged(&p);
    for (i = 0; i < 25; i++) {
        tsl_status *st;
        tsl_result r;
        if (tsl_status_get(a->c, p, &st, &r) == TSL_OK && strcmp(st->backend_state, "Running") == 0) a->ok++;
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void test_transport(void)
{
    fake_srv s;
    apr_pool_t *cp;
    tsl_client *c;
    tsl_client_options o;
    tsl_response *resp = NULL;
    tsl_result r;
    tsl_status *st;
    tsl_identity *id;
    tsl_cert_pair *pair;
    const char *req;

    /* defaults */
    tsl_client_options_default(&o);
    TU_CHECK(o.connect_timeout == apr_time_from_sec(1) && o.timeout == apr_time_from_sec(5)
             && o.max_response == 1024 * 1024 && o.max_idle == 8, "option defaults");

    /* socket missing */
    apr_pool_create(&cp, pool);
    c = tsl_client_create(cp, apr_pstrcat(cp, tmpdir, "/missing.sock", NULL), NULL);
    TU_STR(tsl_client_socket(c), apr_pstrcat(cp, tmpdir, "/missing.sock", NULL), "client_socket");
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_SOCKET_MISSING && resp == NULL
             && strstr(r.text, "missing.sock") != NULL, "socket missing names the path");
    apr_pool_destroy(cp);

    /* bound but not listening: refused */
    srv_start(&s, "refused.sock", 0);
    apr_pool_create(&cp, pool);
    c = tsl_client_create(cp, s.path, NULL);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_CONNECT
             && strstr(r.text, s.path) && strstr(r.text, "refused"), "connection refused names path and errno");
    apr_pool_destroy(cp);
    srv_stop(&s, 0);

    /* not a socket */
    apr_pool_create(&cp, pool);
    c = tsl_client_create(cp, "/etc/hostname", NULL);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_CONNECT
             && strstr(r.text, "not a unix socket"), "regular file is not a socket");
    apr_pool_destroy(cp);

    srv_start(&s, "ts.sock", 1);
    apr_pool_create(&cp, pool);
    tsl_client_options_default(&o);
    o.max_response = 64 * 1024;
    o.timeout = apr_time_from_msec(2000);
    c = tsl_client_create(cp, s.path, &o);

    srv_script(&s, http_resp(200, "OK", "Content-Type: application/json\r\n", STATUS_JSON), 0, 0);
    TU_CHECK(tsl_status_get(c, cp, &st, &r) == TSL_OK && strcmp(st->self_dns_name, "web1.tail1234.ts.net") == 0,
             "status over the socket");
    req = apr_pstrdup(cp, srv_last_req(&s));
    TU_CHECK(strncmp(req, "GET /localapi/v0/status?peers=false HTTP/1.1\r\n", 46) == 0,
             "request line: status?peers=false, HTTP/1.1");
    TU_CHECK(strstr(req, "\r\nHost: local-tailscaled.sock\r\n") != NULL, "Host is exactly local-tailscaled.sock");
    TU_CHECK(!strcasestr(req, "\r\nOrigin:") && !strcasestr(req, "\r\nReferer:"), "no Origin or Referer");
    TU_CHECK(tsl_status_get(c, cp, &st, &r) == TSL_OK && srv_count(&s, &s.accepts) == 1, "keep-alive: connection reused");

    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp
             && resp->status == 200 && resp->content_type
             && strcmp(resp->content_type, "application/json") == 0
             && resp->retry_after == -1 && resp->body[resp->body_len] == '\0',
             "raw get: status, content type, NUL-terminated body");

    srv_script(&s, chunked_resp(good_pair_text), 0, 0);
    TU_CHECK(tsl_cert_fetch(c, cp, "*.web1.tail1234.ts.net.", apr_time_from_sec(3600), 0, &pair, &r)
             == TSL_ERR_CERT && strstr(r.text, "do not cover *.web1.tail1234.ts.net"),
             "cert fetch: chunked pair parsed, name check fails for wildcard");
    TU_CHECK(strncmp(srv_last_req(&s), "GET /localapi/v0/cert/*.web1.tail1234.ts.net?type=pair&min_validity=3600s "
                     "HTTP/1.1\r\n", 82) == 0, "cert request path, wildcard literal, min_validity");
    TU_CHECK(tsl_cert_fetch(c, cp, "web1.tail1234.ts.net", 0, apr_time_from_sec(60), &pair, &r) == TSL_OK
             && pair && strstr(srv_last_req(&s), "cert/web1.tail1234.ts.net?type=pair HTTP/1.1"),
             "cert fetch ok, no min_validity when 0");
    TU_CHECK(tsl_cert_fetch(c, cp, "", 0, 0, &pair, &r) == TSL_ERR_INVALID, "cert fetch empty domain");

    srv_script(&s, http_resp(403, "Forbidden", "Content-Type: text/plain; charset=utf-8\r\n",
                             "cert access denied\n"), 0, 0);
    TU_CHECK(tsl_cert_fetch(c, cp, "web1.tail1234.ts.net", 0, 0, &pair, &r) == TSL_ERR_DENIED
             && r.http_status == 403 && strcmp(r.text, "cert access denied") == 0 && pair == NULL,
             "403 cert access denied kept verbatim");
    srv_script(&s, http_resp(403, "Forbidden", NULL, "evil\nTS01001: forged\n"), 0, 0);
    TU_CHECK(tsl_cert_fetch(c, cp, "web1.tail1234.ts.net", 0, 0, &pair, &r) == TSL_ERR_DENIED
             && strcmp(r.text, "evil TS01001: forged") == 0, "error text cannot forge log lines");
    srv_script(&s, http_resp(429, "Too Many Requests", "Retry-After: 120\r\n", "rate limited\n"), 0, 0);
    TU_CHECK(tsl_cert_fetch(c, cp, "web1.tail1234.ts.net", 0, 0, &pair, &r) == TSL_ERR_RATE_LIMITED
             && r.retry_after == 120, "429 with Retry-After");
    srv_script(&s, http_resp(500, "Internal Server Error", NULL,
                             "invalid domain \"x.y\"; must be one of [\"web1.tail1234.ts.net\"]\n"), 0, 0);
    TU_CHECK(tsl_cert_fetch(c, cp, "x.y", 0, 0, &pair, &r) == TSL_ERR_HTTP && r.http_status == 500
             && strcmp(r.text, "invalid domain \"x.y\"; must be one of [\"web1.tail1234.ts.net\"]") == 0,
             "500 text kept");

    srv_script(&s, http_resp(404, "Not Found", NULL, "no match for IP:port\n"), 0, 0);
    TU_CHECK(tsl_whois(c, cp, "100.101.102.103", 443, &id, &r) == TSL_ERR_NOT_FOUND
             && strcmp(r.text, "no match for IP:port") == 0 && r.http_status == 404, "whois 404 not found");
    /* Only tailscaled's own text means "not a peer": another program's 404
     * (or tailscaled's router's) is an error like any other. */
    srv_script(&s, http_resp(404, "Not Found", NULL, "404 page not found\n"), 0, 0);
    TU_CHECK(tsl_whois(c, cp, "100.101.102.103", 443, &id, &r) == TSL_ERR_HTTP
             && r.code == TSL_ERR_HTTP && r.http_status == 404, "whois foreign 404 is an error");
    srv_script(&s, http_resp(404, "Not Found", NULL, "no match for IP:port, or is it\n"), 0, 0);
    TU_CHECK(tsl_whois(c, cp, "100.101.102.103", 443, &id, &r) == TSL_ERR_HTTP,
             "whois 404 with other text is an error");
    TU_CHECK(strstr(srv_last_req(&s), "GET /localapi/v0/whois?addr=100.101.102.103%3A443 HTTP/1.1") != NULL,
             "whois addr escaped");
    srv_script(&s, http_resp(200, "OK", "Content-Type: application/json\r\n", USER_JSON), 0, 0);
    TU_CHECK(tsl_whois(c, cp, "fd7a:115c:a1e0::1", 8443, &id, &r) == TSL_OK
             && strcmp(id->login_name, "alice@example.com") == 0, "whois 200 over the socket");
    TU_CHECK(strstr(srv_last_req(&s), "whois?addr=%5Bfd7a%3A115c%3Aa1e0%3A%3A1%5D%3A8443 ") != NULL,
             "whois v6 addr bracketed and escaped");
    TU_CHECK(tsl_whois(c, cp, "not-an-ip", 1, &id, &r) == TSL_ERR_INVALID, "whois bad address");
    srv_script(&s, http_resp(200, "OK", NULL, "{\"Node\":"), 0, 0);
    TU_CHECK(tsl_whois(c, cp, "100.101.102.103", 0, &id, &r) == TSL_ERR_PARSE && r.http_status == 200,
             "whois malformed 200");

    /* size limit, timeout, garbage, reset */
    {
        char *big = apr_palloc(cp, 100001);
        memset(big, 'a', 100000);
        big[100000] = '\0';
        srv_script(&s, http_resp(200, "OK", NULL, big), 0, 0);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TOO_LARGE && resp == NULL,
                 "Content-Length over the limit");
        srv_script(&s, chunked_resp(big), 0, 0);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TOO_LARGE
                 && strstr(r.text, "65536"), "chunked body over the limit");
    }
    srv_script(&s, http_resp(200, "OK", NULL, "{}"), 700, 0);
    TU_CHECK(tsl_client_get(c, cp, "status", apr_time_from_msec(200), &resp, &r) == TSL_ERR_TIMEOUT
             && strstr(r.text, "200 ms"), "per-call timeout");
    srv_script(&s, "garbage\r\n\r\n", 0, 1);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TRANSPORT
             && strstr(r.text, "invalid HTTP answer") && strstr(r.text, s.path), "garbage answer, named as such");
    srv_script(&s, "", 0, 1);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TRANSPORT
             && strstr(r.text, "without an answer"), "connection closed, no answer, named as such");
    srv_script(&s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 0, 1);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TRANSPORT
             && strstr(r.text, "middle of the answer"), "truncated body, named as such");
    SRV_SET(&s, reset, 1);
    srv_script(&s, "", 0, 1);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TRANSPORT
             && strcasestr(r.text, "reset"), "connection reset, named as such");
    SRV_SET(&s, reset, 0);
    srv_script(&s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", 0, 1);
    SRV_SET(&s, endless_ms, 0);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TOO_LARGE && resp == NULL
             && strstr(r.text, "65536"), "endless close-delimited body aborted at the limit");
    srv_script(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n", 0, 1);
    SRV_SET(&s, endless_ms, 50);
    TU_CHECK(tsl_client_get(c, cp, "status", apr_time_from_msec(300), &resp, &r) == TSL_ERR_TIMEOUT
             && strstr(r.text, "300 ms"), "a body that keeps trickling ends at the total timeout");
    SRV_SET(&s, endless_ms, ENDLESS_OFF);
    srv_script(&s, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                   "Content-Length: 0\r\n\r\n", 0, 0);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp->retry_after == 0,
             "Retry-After as a date in the past is 0");
    {
        char date[APR_RFC822_DATE_LEN];
        apr_rfc822_date(date, apr_time_now() + apr_time_from_sec(120));
        srv_script(&s, apr_psprintf(cp, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\n"
                                    "Content-Length: 0\r\n\r\n", date), 0, 0);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK
                 && resp->retry_after >= 115 && resp->retry_after <= 120, "Retry-After as an HTTP date");
    }
    srv_script(&s, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n", 0, 0);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp->retry_after == -1,
             "unreadable Retry-After is absent");
    srv_script(&s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", 0, 1);
    TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp->status == 404
             && strcmp(resp->body, "no\n") == 0, "1xx answer skipped");
    TU_CHECK(tsl_client_get(c, cp, "/status", 0, &resp, &r) == TSL_ERR_INVALID, "absolute path rejected");
    TU_CHECK(tsl_client_get(c, cp, "whois?addr=a b", 0, &resp, &r) == TSL_ERR_INVALID,
             "unescaped path rejected");

    /* connection handling */
    {
        int before;
        srv_script(&s, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 0, 1);
        before = srv_count(&s, &s.accepts);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK
                 && tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && srv_count(&s, &s.accepts) - before == 2,
                 "Connection: close answer: next request on a new connection");
        srv_script(&s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", 0, 1);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp->body_len == 10
                 && strcmp(resp->body, "to the end") == 0, "body delimited by the end of the connection");
        srv_script(&s, http_resp(200, "OK", NULL, "{}"), 0, 0);
        SRV_SET(&s, drop_reused, 1);
        before = srv_count(&s, &s.accepts);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK, "drop-reused server: first request");
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && resp->status == 200
                 && srv_count(&s, &s.accepts) - before == 2,
                 "kept connection closed by the daemon: GET sent again on a fresh connection");
        SRV_SET(&s, drop_reused, 0);
        srv_script(&s, http_resp(200, "OK", NULL, "{}"), 0, 0);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK, "drop-all server: first request");
        SRV_SET(&s, drop_all, 1);
        before = srv_count(&s, &s.accepts);
        {
            int reqs = srv_count(&s, &s.requests);
            TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_ERR_TRANSPORT
                     && strstr(r.text, "without an answer") && srv_count(&s, &s.accepts) - before == 1
                     && srv_count(&s, &s.requests) - reqs == 2,
                     "kept connection closed, fresh one closed too: sent again once, not more");
        }
        SRV_SET(&s, drop_all, 0);
        srv_script(&s, http_resp(200, "OK", NULL, "{}"), 0, 1);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK, "answer, then the daemon closes");
        usleep(50 * 1000);
        before = srv_count(&s, &s.accepts);
        TU_CHECK(tsl_client_get(c, cp, "status", 0, &resp, &r) == TSL_OK && srv_count(&s, &s.accepts) - before == 1,
                 "idle connection closed by the daemon is noticed and replaced");
    }

    /* threads share the client */
    srv_script(&s, http_resp(200, "OK", NULL, STATUS_JSON), 0, 0);
    {
        pthread_t th[4];
        thr_arg a[4];
        int i, ok = 1, before = srv_count(&s, &s.accepts);
        for (i = 0; i < 4; i++) { a[i].c = c; a[i].ok = 0; pthread_create(&th[i], NULL, thr_main, &a[i]); }
        for (i = 0; i < 4; i++) { pthread_join(th[i], NULL); ok = ok && a[i].ok == 25; }
        TU_CHECK(ok, "4 threads x 25 status calls on one client");
        TU_CHECK(srv_count(&s, &s.accepts) - before <= 4, "threads reuse pooled connections");
    }
    apr_pool_destroy(cp);   /* closes the pooled connections */
    srv_stop(&s, 1);
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    signal(SIGPIPE, SIG_IGN);
    apr_initialize();
    tsl_global_init();
    apr_pool_create(&pool, NULL);
    snprintf(tmpdir, sizeof(tmpdir), "%s/tsl-unit-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }

    test_result();
    test_conf();
    test_addr();
    test_escape_socket();
    test_identity_user();
    test_identity_others();
    test_status();
    test_header();
    test_cert();
    test_cert_chain();
    test_transport();

    rmdir(tmpdir);
    apr_pool_destroy(pool);
    apr_terminate();
    return tu_done();
}
