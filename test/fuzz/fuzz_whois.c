/* Fuzz target: whois answer -> identity (tsl_identity_parse), then everything
 * the modules do with an identity: deep copy for the cache, capability
 * queries, the filtered CapMap JSON and header encoding of its strings.
 *
 * Invariants checked beyond "no crash, no leak, no UB":
 *  - the copy is equal to the original, field by field;
 *  - capmap_json, each values_json and each value's json are valid JSON;
 *  - caps are sorted by name and unique;
 *  - caps_filtered() with every cap name equals capmap_json, with no names
 *    is "{}", and is NULL exactly when capmap_json is NULL;
 *  - has_cap() holds for every (name, field, value) the parser reported and
 *    never for a name that is absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <apr_strings.h>
#include "tsl_identity.h"
#include "tsl_header.h"
#include "fuzz_common.h"

static int same(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static void check_json(const char *what, const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);

    FZ_CHECK(v != NULL, "%s is not valid JSON (%s): %s", what, err.text, text);
    json_decref(v);
}

static void check_strings_equal(const char *what, const apr_array_header_t *a,
                                const apr_array_header_t *b)
{
    int i;

    FZ_CHECK(a && b && a->nelts == b->nelts, "%s: copy has a different count", what);
    for (i = 0; i < a->nelts; i++) {
        FZ_CHECK(same(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *)),
                 "%s[%d] differs in the copy", what, i);
    }
}

static void check_copy(const tsl_identity *id, const tsl_identity *c)
{
    int i, j, k;

    FZ_CHECK(c && c != id, "copy failed");
    FZ_CHECK(c->user_id == id->user_id && c->node_id == id->node_id
             && c->is_tagged == id->is_tagged && c->is_shared_in == id->is_shared_in,
             "copy: scalar fields differ");
    FZ_CHECK(same(c->login_name, id->login_name) && same(c->display_name, id->display_name)
             && same(c->profile_pic_url, id->profile_pic_url)
             && same(c->node_stable_id, id->node_stable_id)
             && same(c->node_name, id->node_name) && same(c->node_short, id->node_short)
             && same(c->tailnet, id->tailnet) && same(c->capmap_json, id->capmap_json),
             "copy: string fields differ");
    check_strings_equal("tags", id->tags, c->tags);
    check_strings_equal("addresses", id->addresses, c->addresses);
    FZ_CHECK(c->caps->nelts == id->caps->nelts, "copy: cap count differs");
    for (i = 0; i < id->caps->nelts; i++) {
        const tsl_cap *a = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
        const tsl_cap *b = &APR_ARRAY_IDX(c->caps, i, tsl_cap);
        FZ_CHECK(same(a->name, b->name) && same(a->values_json, b->values_json)
                 && a->values->nelts == b->values->nelts, "copy: cap %d differs", i);
        for (j = 0; j < a->values->nelts; j++) {
            const tsl_cap_value *va = &APR_ARRAY_IDX(a->values, j, tsl_cap_value);
            const tsl_cap_value *vb = &APR_ARRAY_IDX(b->values, j, tsl_cap_value);
            FZ_CHECK(same(va->json, vb->json) && va->fields->nelts == vb->fields->nelts,
                     "copy: cap %d value %d differs", i, j);
            for (k = 0; k < va->fields->nelts; k++) {
                const tsl_cap_field *fa = &APR_ARRAY_IDX(va->fields, k, tsl_cap_field);
                const tsl_cap_field *fb = &APR_ARRAY_IDX(vb->fields, k, tsl_cap_field);
                FZ_CHECK(same(fa->key, fb->key) && same(fa->value, fb->value),
                         "copy: cap %d value %d field %d differs", i, j, k);
            }
        }
    }
}

static void exercise(apr_pool_t *p, const tsl_identity *id)
{
    apr_array_header_t *all = apr_array_make(p, 4, sizeof(const char *));
    apr_array_header_t *none = apr_array_make(p, 1, sizeof(const char *));
    apr_array_header_t *some = apr_array_make(p, 4, sizeof(const char *));
    const char *f;
    int i, j, k;

    FZ_CHECK(id->login_name && *id->login_name, "identity without a login");
    FZ_CHECK(id->node_name && *id->node_name, "identity without a node name");
    FZ_CHECK(id->node_short && id->tailnet && id->display_name && id->profile_pic_url
             && id->node_stable_id && id->tags && id->addresses && id->caps,
             "identity has a NULL member");
    FZ_CHECK(id->is_tagged == (id->tags->nelts > 0), "is_tagged disagrees with tags");

    for (i = 0; i < id->caps->nelts; i++) {
        const tsl_cap *c = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
        FZ_CHECK(c->name && c->values_json && c->values, "cap %d incomplete", i);
        if (i > 0) {
            FZ_CHECK(strcmp(APR_ARRAY_IDX(id->caps, i - 1, tsl_cap).name, c->name) < 0,
                     "caps not sorted/unique at %d: %s", i, c->name);
        }
        check_json("values_json", c->values_json);
        FZ_CHECK(tsl_identity_cap(id, c->name) == c, "tsl_identity_cap(%s) wrong", c->name);
        FZ_CHECK(tsl_identity_has_cap(id, c->name, NULL, NULL), "has_cap(%s) false", c->name);
        APR_ARRAY_PUSH(all, const char *) = c->name;
        if (i % 2 == 0) {
            APR_ARRAY_PUSH(some, const char *) = c->name;
        }
        for (j = 0; j < c->values->nelts; j++) {
            const tsl_cap_value *v = &APR_ARRAY_IDX(c->values, j, tsl_cap_value);
            check_json("value json", v->json);
            for (k = 0; k < v->fields->nelts; k++) {
                const tsl_cap_field *fl = &APR_ARRAY_IDX(v->fields, k, tsl_cap_field);
                FZ_CHECK(fl->key && fl->value, "field with NULL key or value");
                FZ_CHECK(tsl_identity_has_cap(id, c->name, fl->key, fl->value),
                         "has_cap(%s, %s=%s) false", c->name, fl->key, fl->value);
                (void)tsl_header_encode(p, fl->value);
            }
        }
        /* a name that cannot be present: a prefix of a real one plus NUL-free junk */
        (void)tsl_identity_has_cap(id, apr_pstrcat(p, c->name, "\x01", NULL), NULL, NULL);
        (void)tsl_identity_has_cap(id, c->name, "", NULL);
    }
    (void)tsl_identity_has_cap(id, "\x01no-such-cap", NULL, NULL);
    FZ_CHECK(!tsl_identity_cap(id, NULL), "cap(NULL) not NULL");

    if (id->capmap_json) {
        check_json("capmap_json", id->capmap_json);
    }
    f = tsl_identity_caps_filtered(p, id, all);
    FZ_CHECK((f == NULL) == (id->capmap_json == NULL), "caps_filtered NULL mismatch");
    if (f) {
        FZ_CHECK(strcmp(f, id->capmap_json) == 0,
                 "caps_filtered(all) != capmap_json:\n  %s\n  %s", f, id->capmap_json);
        f = tsl_identity_caps_filtered(p, id, none);
        FZ_CHECK(f && strcmp(f, "{}") == 0, "caps_filtered(none) = %s", f ? f : "NULL");
        f = tsl_identity_caps_filtered(p, id, some);
        check_json("caps_filtered(some)", f);
        f = tsl_identity_caps_filtered(p, id, NULL);
        FZ_CHECK(f && strcmp(f, "{}") == 0, "caps_filtered(NULL names) = %s", f ? f : "NULL");
    }

    for (i = 0; i < id->tags->nelts; i++) {
        FZ_CHECK(tsl_identity_has_tag(id, APR_ARRAY_IDX(id->tags, i, const char *)),
                 "has_tag false for a listed tag");
    }
    (void)tsl_identity_has_tag(id, "tag:ci");

    /* what the export code does with the strings */
    FZ_CHECK(fz_printable(tsl_header_encode(p, id->login_name)), "login header");
    FZ_CHECK(fz_printable(tsl_header_encode(p, id->display_name)), "name header");
    FZ_CHECK(fz_printable(tsl_header_encode(p, id->profile_pic_url)), "pic header");
    if (id->capmap_json) {
        FZ_CHECK(fz_printable(tsl_header_encode(p, id->capmap_json)), "caps header");
    }

    check_copy(id, tsl_identity_copy(p, id));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *buf = fz_buf(data, size);
    tsl_identity *id = NULL;
    tsl_result res;
    tsl_code code;

    code = tsl_identity_parse(p, buf, size, &id, &res);
    FZ_CHECK(res.text != NULL, "result text is NULL");
    if (code == TSL_OK) {
        FZ_CHECK(id != NULL, "TSL_OK without an identity");
        exercise(p, id);
    }
    else {
        FZ_CHECK(id == NULL && code == TSL_ERR_PARSE && *res.text,
                 "failure %d without PARSE code or reason", (int)code);
    }
    /* the NUL-terminated form the transport hands over */
    if (size) {
        char *s = fz_cstr(data, size);
        (void)tsl_identity_parse(p, s, size, &id, &res);
        free(s);
    }
    free(buf);
    fz_end(p);
    return 0;
}
