/* mod_authnz_tailscale: shared cache entries as bytes (see azt_entry.h).
 *
 * Layout, integers big-endian:
 *   0  4  magic "TSLI"
 *   4  1  format version (AZT_ENTRY_VERSION)
 *   5  1  kind: 'I' identity, 'N' not a tailnet peer, 'P' pending
 *   6  2  key length K
 *   8  8  stamp: when tailscaled answered ('I', 'N'); end of the wait ('P')
 *  16  4  pid of the asking process ('P'), else 0
 *  20  4  payload length L
 *  24  4  FNV-1a checksum of every other byte (memory corrupted in place)
 *  28  K  the key the entry was stored under
 *  28+K L payload: for 'I' the identity as compact whois-shaped JSON (read
 *         back by tsl_identity_parse, the parser of tailscaled's answers)
 * The entry is exactly 28+K+L bytes long.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <apr_strings.h>

#include "tsl_json.h"
#include "azt_entry.h"

#define HEAD 28
#define SUM_AT 24
#define MAGIC "TSLI"

static void put_be(unsigned char *o, apr_uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        o[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static apr_uint64_t get_be(const unsigned char *s, int n)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | s[i];
    }
    return v;
}

static apr_uint32_t checksum(const unsigned char *b, apr_size_t len)
{
    apr_uint32_t h = 2166136261u;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (i < SUM_AT || i >= SUM_AT + 4) {
            h = (h ^ b[i]) * 16777619u;
        }
    }
    return h;
}

static const unsigned char *encode(apr_pool_t *p, const char *key, char kind,
                                   apr_time_t stamp, apr_uint32_t pid, const char *payload,
                                   apr_size_t plen, apr_size_t *len)
{
    apr_size_t klen = strlen(key);
    unsigned char *b;

    if (klen > 0xffff || HEAD + klen + plen > AZT_ENTRY_MAX) {
        return NULL;
    }
    *len = HEAD + klen + plen;
    b = apr_palloc(p, *len);
    memcpy(b, MAGIC, 4);
    b[4] = AZT_ENTRY_VERSION;
    b[5] = (unsigned char)kind;
    put_be(b + 6, klen, 2);
    put_be(b + 8, (apr_uint64_t)stamp, 8);
    put_be(b + 16, pid, 4);
    put_be(b + 20, plen, 4);
    memcpy(b + HEAD, key, klen);
    if (plen) {
        memcpy(b + HEAD + klen, payload, plen);
    }
    put_be(b + SUM_AT, checksum(b, *len), 4);
    return b;
}

/* The identity as the whois answer that parses back into it; CapMap is
 * spliced in as the text tailscaled sent (compacted), so that numbers keep
 * their spelling (1.10 stays 1.10 in exported capabilities). */
static const char *identity_json(apr_pool_t *p, const tsl_identity *id)
{
    json_t *root, *node, *up;
    char *text;
    const char *out = NULL;
    size_t n;

    node = json_pack("{s:I, s:s, s:s, s:s, s:i}",
                     "ID", (json_int_t)id->node_id,
                     "StableID", id->node_stable_id ? id->node_stable_id : "",
                     "Name", apr_pstrcat(p, id->node_name, ".", NULL),
                     "ComputedName", id->node_short,
                     "Sharer", id->is_shared_in ? 1 : 0);
    up = json_pack("{s:I, s:s, s:s, s:s}",
                   "ID", (json_int_t)id->user_id,
                   "LoginName", id->login_name,
                   "DisplayName", id->display_name ? id->display_name : "",
                   "ProfilePicURL", id->profile_pic_url ? id->profile_pic_url : "");
    if (!node || !up) {
        json_decref(node);
        json_decref(up);
        return NULL;
    }
    json_object_set_new(node, "Tags", tsl_json_string_array(id->tags));
    json_object_set_new(node, "Addresses", tsl_json_string_array(id->addresses));
    json_object_set_new(up, "Groups", tsl_json_string_array(id->groups));
    root = json_object();
    json_object_set_new(root, "Node", node);
    json_object_set_new(root, "UserProfile", up);
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text && (n = strlen(text)) > 1 && text[n - 1] == '}') {
        out = apr_pstrcat(p, apr_pstrmemdup(p, text, n - 1), ",\"CapMap\":",
                          id->capmap_json ? id->capmap_json : "null", "}", NULL);
    }
    free(text);
    return out;
}

const unsigned char *azt_entry_encode_answer(apr_pool_t *p, const char *key, azt_outcome code,
                                             const tsl_identity *id, apr_time_t fetched,
                                             apr_size_t *len)
{
    const char *json;

    if (code == AZT_NOT_A_PEER) {
        return encode(p, key, 'N', fetched, 0, NULL, 0, len);
    }
    /* A field tsl_identity_clean() emptied that the parser requires would
     * not read back: such an identity stays in its process. */
    if (code != AZT_IDENTIFIED || !id || !id->login_name || !*id->login_name || !id->node_name
        || !*id->node_name || !id->node_short || !*id->node_short) {
        return NULL;
    }
    json = identity_json(p, id);
    if (!json) {
        return NULL;
    }
    return encode(p, key, 'I', fetched, 0, json, strlen(json), len);
}

const unsigned char *azt_entry_encode_pending(apr_pool_t *p, const char *key,
                                              apr_time_t until, apr_uint32_t pid,
                                              apr_size_t *len)
{
    return encode(p, key, 'P', until, pid, NULL, 0, len);
}

azt_entry_kind azt_entry_decode(apr_pool_t *p, const char *key, const unsigned char *data,
                                apr_size_t len, azt_outcome *code, tsl_identity **id,
                                apr_time_t *stamp, apr_uint32_t *pid, const char **why)
{
    apr_size_t klen = strlen(key), elen, plen;
    apr_int64_t t;
    tsl_result res;

    *id = NULL;
    *why = NULL;
    if (!data || len < HEAD) {
        *why = "shorter than an entry's header";
        return AZT_ENTRY_BAD;
    }
    if (memcmp(data, MAGIC, 4) != 0) {
        *why = "not an identity entry (foreign data)";
        return AZT_ENTRY_BAD;
    }
    if (data[4] != AZT_ENTRY_VERSION) {
        *why = apr_psprintf(p, "entry format version %u, this module reads %u",
                            data[4], AZT_ENTRY_VERSION);
        return AZT_ENTRY_BAD;
    }
    elen = (apr_size_t)get_be(data + 6, 2);
    plen = (apr_size_t)get_be(data + 20, 4);
    t = (apr_int64_t)get_be(data + 8, 8);
    if (elen != klen || len - HEAD < elen || len - HEAD - elen != plen) {
        *why = "lengths do not add up";
        return AZT_ENTRY_BAD;
    }
    if ((apr_uint32_t)get_be(data + SUM_AT, 4) != checksum(data, len)) {
        *why = "checksum mismatch (corrupt)";
        return AZT_ENTRY_BAD;
    }
    if (memcmp(data + HEAD, key, klen) != 0) {
        *why = "stored for another key";
        return AZT_ENTRY_BAD;
    }
    if (t <= 0) {
        *why = "no time";
        return AZT_ENTRY_BAD;
    }
    *stamp = (apr_time_t)t;
    *pid = (apr_uint32_t)get_be(data + 16, 4);
    switch (data[5]) {
    case 'P':
    case 'N':
        if (plen != 0) {
            *why = "unexpected payload";
            return AZT_ENTRY_BAD;
        }
        *code = AZT_NOT_A_PEER;
        return data[5] == 'P' ? AZT_ENTRY_PENDING : AZT_ENTRY_ANSWER;
    case 'I':
        if (plen == 0 || tsl_identity_parse(p, (const char *)data + HEAD + klen, plen, id,
                                            &res) != TSL_OK) {
            *id = NULL;
            *why = plen ? apr_pstrcat(p, "identity unreadable: ", res.text, NULL)
                        : "identity missing";
            return AZT_ENTRY_BAD;
        }
        *code = AZT_IDENTIFIED;
        return AZT_ENTRY_ANSWER;
    default:
        *why = "unknown kind";
        return AZT_ENTRY_BAD;
    }
}
