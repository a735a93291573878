/* Unit tests of mod_authnz_tailscale's shared cache entries (azt_entry.c):
 * an answer reads back as the same identity; a short, foreign, wrong-version,
 * other-key or corrupt entry is never one. */
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "tsl.h"
#include "azt_entry.h"
#include "tu.h"

#define KEY "/run/tailscale/tailscaled.sock|100.101.102.103|dst=100.100.0.1"

#define USER_JSON \
    "{\"Node\":{\"ID\":5207519264561923,\"StableID\":\"nQ7rW2kCNTRL\"," \
    "\"Name\":\"laptop.tail1234.ts.net.\",\"Addresses\":[\"100.101.102.103/32\"," \
    "\"fd7a:115c:a1e0::e901:6667/128\"],\"ComputedName\":\"laptop\"}," \
    "\"UserProfile\":{\"ID\":6218839120349811,\"LoginName\":\"alice@example.com\"," \
    "\"DisplayName\":\"Alice \\u00c9xample\",\"ProfilePicURL\":\"https://example.com/a.png\"," \
    "\"Groups\":[\"group:eng\",\"eng@example.com\"]}," \
    "\"CapMap\":{\"example.com/cap/web\":[{\"role\":\"admin\",\"level\":1.10," \
    "\"groups\":[\"eng\",7]},{\"role\":\"viewer\"}],\"a.example/cap/null\":null," \
    "\"tailscale.com/cap/webui\":[\"plain\",3]}}"

#define TAGGED_JSON \
    "{\"Node\":{\"ID\":733,\"StableID\":\"nT\",\"Name\":\"ci-runner.tail1234.ts.net.\"," \
    "\"Tags\":[\"tag:ci\",\"tag:prod\"],\"ComputedName\":\"ci-runner\"}," \
    "\"UserProfile\":{\"ID\":9001,\"LoginName\":\"tagged-devices\"},\"CapMap\":null}"

#define SHARED_JSON \
    "{\"Node\":{\"ID\":88,\"StableID\":\"nS\",\"Name\":\"box.other-net.ts.net.\",\"Sharer\":55," \
    "\"ComputedName\":\"box.other-net.ts.net\"}," \
    "\"UserProfile\":{\"ID\":77,\"LoginName\":\"bob@other.example\",\"DisplayName\":\"Bob\"}}"

static apr_pool_t *pool;

static tsl_identity *parse(const char *json)
{
    tsl_identity *id = NULL;
    tsl_result r;

    tsl_result_init(&r);
    if (tsl_identity_parse(pool, json, strlen(json), &id, &r) != TSL_OK) {
        printf("# parse failed: %s\n", r.text);
        abort();
    }
    return id;
}

static int same_strings(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;

    if (a->nelts != b->nelts) {
        return 0;
    }
    for (i = 0; i < a->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

static int same_identity(const tsl_identity *a, const tsl_identity *b)
{
    return a->user_id == b->user_id && !strcmp(a->login_name, b->login_name)
           && !strcmp(a->display_name, b->display_name)
           && !strcmp(a->profile_pic_url, b->profile_pic_url)
           && same_strings(a->groups, b->groups) && !strcmp(a->groups_json, b->groups_json)
           && !strcmp(a->tags_json, b->tags_json) && a->node_id == b->node_id
           && !strcmp(a->node_stable_id, b->node_stable_id)
           && !strcmp(a->node_name, b->node_name) && !strcmp(a->node_short, b->node_short)
           && !strcmp(a->tailnet, b->tailnet) && same_strings(a->tags, b->tags)
           && same_strings(a->addresses, b->addresses) && a->is_tagged == b->is_tagged
           && a->is_shared_in == b->is_shared_in
           && ((!a->capmap_json && !b->capmap_json)
               || (a->capmap_json && b->capmap_json && !strcmp(a->capmap_json, b->capmap_json)))
           && a->caps->nelts == b->caps->nelts;
}

static void round_trip(const char *json, const char *name)
{
    tsl_identity *id = parse(json), *back = NULL;
    const unsigned char *b;
    apr_size_t len = 0;
    azt_outcome code = AZT_UNAVAILABLE;
    apr_time_t stamp = 0;
    apr_uint32_t pid = 1;
    const char *why;

    b = azt_entry_encode_answer(pool, KEY, AZT_IDENTIFIED, id, 1234567890123, &len);
    TU_CHECK(b != NULL, apr_psprintf(pool, "%s: encoded", name));
    TU_CHECK(azt_entry_decode(pool, KEY, b, len, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_ANSWER, apr_psprintf(pool, "%s: decodes as an answer", name));
    TU_CHECK(code == AZT_IDENTIFIED && back && same_identity(id, back),
             apr_psprintf(pool, "%s: the same identity", name));
    TU_CHECK(stamp == 1234567890123, apr_psprintf(pool, "%s: when tailscaled answered", name));
}

/* Every proper prefix, every single changed byte and one byte more: BAD. */
static void never_from_damage(const unsigned char *b, apr_size_t len, const char *name)
{
    unsigned char *copy = malloc(len + 1);
    tsl_identity *id;
    azt_outcome code;
    apr_time_t stamp;
    apr_uint32_t pid;
    const char *why;
    apr_size_t i;
    int bad_prefix = 0, bad_flip = 0;

    for (i = 0; i < len; i++) {
        if (azt_entry_decode(pool, KEY, b, i, &code, &id, &stamp, &pid, &why) != AZT_ENTRY_BAD
            || id) {
            bad_prefix++;
        }
    }
    TU_CHECK(bad_prefix == 0, apr_psprintf(pool, "%s: no truncation is usable", name));
    for (i = 0; i < len; i++) {
        memcpy(copy, b, len);
        copy[i] ^= 0x20;
        if (azt_entry_decode(pool, KEY, copy, len, &code, &id, &stamp, &pid, &why)
            != AZT_ENTRY_BAD || id) {
            bad_flip++;
        }
    }
    TU_CHECK(bad_flip == 0, apr_psprintf(pool, "%s: no changed byte is usable", name));
    memcpy(copy, b, len);
    copy[len] = 0;
    TU_CHECK(azt_entry_decode(pool, KEY, copy, len + 1, &code, &id, &stamp, &pid, &why)
             == AZT_ENTRY_BAD, apr_psprintf(pool, "%s: a trailing byte is corrupt", name));
    free(copy);
}

int main(void)
{
    tsl_identity *id, *back;
    const unsigned char *b;
    unsigned char *copy;
    apr_size_t len;
    azt_outcome code;
    apr_time_t stamp;
    apr_uint32_t pid;
    const char *why;

    apr_initialize();
    apr_pool_create(&pool, NULL);

    round_trip(USER_JSON, "user with groups and caps");
    round_trip(TAGGED_JSON, "tagged node, CapMap null");
    round_trip(SHARED_JSON, "shared-in node");

    b = azt_entry_encode_answer(pool, KEY, AZT_NOT_A_PEER, NULL, 42, &len);
    TU_CHECK(b && azt_entry_decode(pool, KEY, b, len, &code, &back, &stamp, &pid, &why)
                  == AZT_ENTRY_ANSWER && code == AZT_NOT_A_PEER && !back && stamp == 42,
             "not a peer reads back, with its time");
    never_from_damage(b, len, "not a peer");

    b = azt_entry_encode_pending(pool, KEY, 777, 4321, &len);
    TU_CHECK(b && azt_entry_decode(pool, KEY, b, len, &code, &back, &stamp, &pid, &why)
                  == AZT_ENTRY_PENDING && stamp == 777 && pid == 4321 && !back,
             "a pending marker reads back with its deadline and pid");
    never_from_damage(b, len, "pending");

    id = parse(USER_JSON);
    b = azt_entry_encode_answer(pool, KEY, AZT_IDENTIFIED, id, 99, &len);
    printf("# a user's entry with three capabilities: %lu bytes\n", (unsigned long)len);
    never_from_damage(b, len, "identity");
    TU_CHECK(azt_entry_decode(pool, KEY "x", b, len, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_BAD && !back && strstr(why, "length"),
             "stored under another (longer) key: a miss");
    TU_CHECK(azt_entry_decode(pool, "/run/tailscale/tailscaled.sock|100.101.102.104|dst=100."
                              "100.0.1", b, len, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_BAD && !back && strstr(why, "another key"),
             "stored under another key of the same length: a miss");
    copy = apr_pmemdup(pool, b, len);
    copy[4] = AZT_ENTRY_VERSION + 1;
    TU_CHECK(azt_entry_decode(pool, KEY, copy, len, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_BAD && strstr(why, "version"), "another format version: a miss");
    TU_CHECK(azt_entry_decode(pool, KEY, (const unsigned char *)"+OK some other program's data "
                              "stored under our key, long enough", 60, &code, &back, &stamp,
                              &pid, &why) == AZT_ENTRY_BAD && strstr(why, "foreign"),
             "foreign data: a miss");
    TU_CHECK(azt_entry_decode(pool, KEY, NULL, 0, &code, &back, &stamp, &pid, &why)
             == AZT_ENTRY_BAD, "nothing: a miss");
    TU_STR(why, "shorter than an entry's header", "nothing: said so");

    id = parse(USER_JSON);
    id->login_name = "";
    TU_CHECK(azt_entry_encode_answer(pool, KEY, AZT_IDENTIFIED, id, 1, &len) == NULL,
             "an identity whose login was dropped is not shared (it would not read back)");
    TU_CHECK(azt_entry_encode_answer(pool, KEY, AZT_UNAVAILABLE, NULL, 1, &len) == NULL,
             "nothing an error produced is encoded");
    id = parse(USER_JSON);
    id->display_name = apr_pstrcat(pool, apr_psprintf(pool, "%0*d", AZT_ENTRY_MAX, 0), NULL);
    TU_CHECK(azt_entry_encode_answer(pool, KEY, AZT_IDENTIFIED, id, 1, &len) == NULL,
             "an identity larger than an entry may be is not shared");

    apr_pool_destroy(pool);
    apr_terminate();
    return tu_done();
}
