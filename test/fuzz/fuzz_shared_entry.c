/* Fuzz target: shared identity cache entries (mod_authnz_tailscale's
 * azt_entry.c), the bytes one httpd process reads from memory any other
 * could have written.
 *
 * The input is decoded as an entry stored under a fixed key, and parsed as a
 * whois answer whose identity is encoded and decoded again.  Invariants
 * beyond "no crash, no leak, no UB":
 *  - decoding never yields an identity with a kind other than an answer,
 *    and an entry that decodes re-encodes to the same bytes;
 *  - an encoded identity decodes to the same identity (login, names, tags,
 *    groups, addresses, CapMap text) and the same time;
 *  - the same bytes with one byte changed, one byte fewer or under another
 *    key are never an identity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "../../mod_authnz_tailscale/azt_entry.c"
#include "fuzz_common.h"

#define KEY "/run/tailscale/tailscaled.sock|100.64.0.2|dst=100.100.0.1"

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_list(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;

    if (a->nelts != b->nelts) {
        return 0;
    }
    for (i = 0; i < a->nelts; i++) {
        if (!same(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

static void never_an_identity(apr_pool_t *p, const char *key, const unsigned char *b,
                              apr_size_t len, const char *what)
{
    tsl_identity *id = NULL;
    azt_outcome code;
    apr_time_t stamp;
    apr_uint32_t pid;
    const char *why;

    FZ_CHECK(azt_entry_decode(p, key, b, len, &code, &id, &stamp, &pid, &why) == AZT_ENTRY_BAD
             && !id, "%s was still usable", what);
}

static void decode_input(apr_pool_t *p, const unsigned char *data, size_t size)
{
    tsl_identity *id = NULL;
    azt_outcome code = AZT_UNAVAILABLE;
    apr_time_t stamp = 0;
    apr_uint32_t pid = 0;
    const char *why = NULL;
    const unsigned char *again;
    apr_size_t len = 0;
    azt_entry_kind kind = azt_entry_decode(p, KEY, data, size, &code, &id, &stamp, &pid, &why);

    if (kind == AZT_ENTRY_BAD) {
        FZ_CHECK(id == NULL && why != NULL, "a bad entry without a reason, or with an identity");
        return;
    }
    FZ_CHECK(stamp > 0, "an entry without a time");
    if (kind == AZT_ENTRY_PENDING) {
        FZ_CHECK(id == NULL, "a pending marker with an identity");
        again = azt_entry_encode_pending(p, KEY, stamp, pid, &len);
    }
    else {
        FZ_CHECK((code == AZT_IDENTIFIED) == (id != NULL), "answer code and identity disagree");
        again = azt_entry_encode_answer(p, KEY, code, id, stamp, &len);
    }
    /* An identity that decodes may encode differently (JSON spelling); the
     * other kinds have one encoding. */
    if (!id) {
        FZ_CHECK(again && len == size && !memcmp(again, data, size),
                 "a decoded entry does not re-encode to its bytes");
    }
}

static void round_trip(apr_pool_t *p, const char *json, size_t size)
{
    tsl_identity *id = NULL, *back = NULL;
    tsl_result res;
    const unsigned char *b;
    unsigned char *copy;
    apr_size_t len = 0, at;
    azt_outcome code;
    apr_time_t stamp = 0;
    apr_uint32_t pid;
    const char *why;

    tsl_result_init(&res);
    if (tsl_identity_parse(p, json, size, &id, &res) != TSL_OK) {
        return;
    }
    tsl_identity_clean(id);
    b = azt_entry_encode_answer(p, KEY, AZT_IDENTIFIED, id, 1700000000000000, &len);
    if (!b) {
        return;      /* not shareable (a required field emptied, too large) */
    }
    FZ_CHECK(azt_entry_decode(p, KEY, b, len, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_ANSWER, "an encoded identity does not decode: %s", why);
    FZ_CHECK(code == AZT_IDENTIFIED && back && stamp == 1700000000000000, "decoded answer differs");
    FZ_CHECK(same(id->login_name, back->login_name) && same(id->display_name, back->display_name)
             && same(id->profile_pic_url, back->profile_pic_url)
             && same(id->node_name, back->node_name) && same(id->node_short, back->node_short)
             && same(id->tailnet, back->tailnet) && same(id->node_stable_id, back->node_stable_id)
             && id->user_id == back->user_id && id->node_id == back->node_id
             && id->is_tagged == back->is_tagged && id->is_shared_in == back->is_shared_in
             && same(id->capmap_json, back->capmap_json) && same_list(id->tags, back->tags)
             && same_list(id->groups, back->groups) && same_list(id->addresses, back->addresses),
             "the identity read back differs from the one stored (login %s / %s)",
             id->login_name, back->login_name);
    never_an_identity(p, KEY, b, len - 1, "the entry one byte short");
    never_an_identity(p, "/run/tailscale/tailscaled.sock|100.64.0.3|dst=100.100.0.1", b, len,
                      "the entry under another key");
    copy = apr_pmemdup(p, b, len);
    at = (size * 7919u) % len;
    copy[at] ^= (unsigned char)(1u << (size % 8));
    never_an_identity(p, KEY, copy, len, "the entry with one byte changed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    char *buf;

    fz_init();
    p = fz_begin();
    buf = fz_buf(data, size);
    decode_input(p, (const unsigned char *)buf, size);
    if (buf) {
        round_trip(p, buf, size);
    }
    free(buf);
    fz_end(p);
    return 0;
}
