/* whois answer -> tsl_identity.
 *
 * jansson validates the document and reads Node and UserProfile.  CapMap
 * values are Go json.RawMessage: tailscale passes them on as the text it
 * got, so their JSON is taken from the raw answer text and compacted the way
 * Go's encoding/json compacts a RawMessage (whitespace dropped, <, >, &,
 * U+2028 and U+2029 escaped), keeping number spellings and key order.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <apr_strings.h>
#include "tsl_identity.h"
#include "tsl_json.h"

/* ------------------------------------------------------------ raw JSON */

typedef struct rj_span {
    const char *s;
    const char *e;
} rj_span;

static const char *rj_ws(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
    }
    return s;
}

static const char *rj_skip_string(const char *s, const char *e)
{
    if (s >= e || *s != '"') {
        return NULL;
    }
    for (s++; s < e; s++) {
        if (*s == '\\') {
            s++;
        }
        else if (*s == '"') {
            return s + 1;
        }
    }
    return NULL;
}

static const char *rj_skip_value(const char *s, const char *e, int depth)
{
    s = rj_ws(s, e);
    if (s >= e || depth > 512) {
        return NULL;
    }
    if (*s == '"') {
        return rj_skip_string(s, e);
    }
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        int first = 1;
        s++;
        for (;;) {
            s = rj_ws(s, e);
            if (s < e && *s == close && first) {
                return s + 1;
            }
            if (close == '}') {
                s = rj_skip_string(s, e);
                if (!s) return NULL;
                s = rj_ws(s, e);
                if (s >= e || *s != ':') return NULL;
                s++;
            }
            s = rj_skip_value(s, e, depth + 1);
            if (!s) return NULL;
            s = rj_ws(s, e);
            if (s >= e) return NULL;
            if (*s == close) return s + 1;
            if (*s != ',') return NULL;
            s++;
            first = 0;
        }
    }
    {
        const char *start = s;
        while (s < e && !strchr(",]} \t\r\n", *s)) {
            s++;
        }
        return s > start ? s : NULL;
    }
}

static int hex4(const char *s, const char *e, unsigned *out)
{
    unsigned v = 0;
    int i;

    if (e - s < 4) return 0;
    for (i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    }
    else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Decode the JSON string starting at s (a '"'); NULL if malformed. A lone
 * surrogate becomes U+FFFD as in Go. Sets *next past the closing quote. */
static const char *rj_string(apr_pool_t *p, const char *s, const char *e,
                             const char **next)
{
    const char *end = rj_skip_string(s, e);
    char *out, *o;

    if (!end) return NULL;
    *next = end;
    out = o = apr_palloc(p, (apr_size_t)(end - s) + 1);
    for (s++; s < end - 1; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        s++;
        switch (*s) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(s + 1, end, &cp)) return NULL;
            s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && s + 6 < end && s[1] == '\\'
                && s[2] == 'u' && hex4(s + 3, end, &lo) && lo >= 0xdc00
                && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            }
            else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            if (cp == 0) return NULL;   /* keep C strings intact */
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = *s; break;   /* \" \\ \/ */
        }
    }
    *o = '\0';
    return out;
}

/* Compact JSON text as Go's json.Compact with HTML escaping does. */
static const char *rj_compact(apr_pool_t *p, const char *s, const char *e)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(p, 6 * (apr_size_t)(e - s) + 1), *o = out;
    int in_str = 0;

    for (; s < e; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '<' || c == '>' || c == '&') {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 0xf];
            o += 6;
            continue;
        }
        if (c == 0xe2 && e - s > 2 && (unsigned char)s[1] == 0x80
            && ((unsigned char)s[2] & ~1u) == 0xa8) {
            memcpy(o, "\\u202", 5);
            o[5] = hex[(unsigned char)s[2] & 0xf];
            o += 6;
            s += 2;
            continue;
        }
        if (in_str) {
            *o++ = (char)c;
            if (c == '\\' && s + 1 < e) {
                *o++ = *++s;
            }
            else if (c == '"') {
                in_str = 0;
            }
        }
        else if (c == '"') {
            in_str = 1;
            *o++ = (char)c;
        }
        else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

/* A Go-encoded JSON string (encoding/json with HTML escaping). */
static const char *go_json_string(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(p, 6 * strlen(s) + 3), *o = out;
    const unsigned char *u;

    *o++ = '"';
    for (u = (const unsigned char *)s; *u; u++) {
        switch (*u) {
        case '"':  *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
            if (*u < 0x20 || *u == '<' || *u == '>' || *u == '&') {
                memcpy(o, "\\u00", 4);
                o[4] = hex[*u >> 4];
                o[5] = hex[*u & 0xf];
                o += 6;
            }
            else if (*u == 0xe2 && u[1] == 0x80 && (u[2] & ~1u) == 0xa8) {
                memcpy(o, "\\u202", 5);
                o[5] = hex[u[2] & 0xf];
                o += 6;
                u += 2;
            }
            else {
                *o++ = (char)*u;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void add_field(apr_array_header_t *fields, const char *key,
                      const char *value)
{
    tsl_cap_field *f = apr_array_push(fields);
    f->key = key;
    f->value = value;
}

/* Flatten one capability value: for an object, scalar members become
 * key=value fields and string elements of array members key=element. */
static int cap_value_fields(apr_pool_t *p, const char *s, const char *e,
                            apr_array_header_t *fields)
{
    const char *key, *v, *ve;

    s = rj_ws(s, e);
    if (s >= e || *s != '{') {
        return 0;   /* strings, numbers, arrays: no named fields */
    }
    s = rj_ws(s + 1, e);
    if (s < e && *s == '}') {
        return 0;
    }
    for (;;) {
        key = rj_string(p, rj_ws(s, e), e, &s);
        if (!key) return -1;
        s = rj_ws(s, e);
        if (s >= e || *s != ':') return -1;
        v = rj_ws(s + 1, e);
        ve = rj_skip_value(v, e, 0);
        if (!ve) return -1;
        if (*v == '"') {
            const char *dummy;
            const char *str = rj_string(p, v, ve, &dummy);
            if (!str) return -1;
            add_field(fields, key, str);
        }
        else if (*v == '[') {
            const char *a = rj_ws(v + 1, ve);
            while (a < ve && *a != ']') {
                const char *ae = rj_skip_value(a, ve, 0);
                if (!ae) return -1;
                if (*a == '"') {
                    const char *dummy;
                    const char *str = rj_string(p, a, ae, &dummy);
                    if (!str) return -1;
                    add_field(fields, key, str);
                }
                a = rj_ws(ae, ve);
                if (a < ve && *a == ',') a = rj_ws(a + 1, ve);
            }
        }
        else if (*v != '{') {
            add_field(fields, key, apr_pstrndup(p, v, (apr_size_t)(ve - v)));
        }
        s = rj_ws(ve, e);
        if (s < e && *s == ',') {
            s++;
            continue;
        }
        return (s < e && *s == '}') ? 0 : -1;
    }
}

static int cap_cmp(const void *a, const void *b)
{
    return strcmp(((const tsl_cap *)a)->name, ((const tsl_cap *)b)->name);
}

/* Find the raw text of the top-level member key in the object at s..e. */
static int rj_member(apr_pool_t *p, const char *s, const char *e,
                     const char *key, rj_span *out)
{
    int found = 0;

    s = rj_ws(s, e);
    if (s >= e || *s != '{') return -1;
    s = rj_ws(s + 1, e);
    if (s < e && *s == '}') return 0;
    for (;;) {
        const char *k = rj_string(p, rj_ws(s, e), e, &s), *v, *ve;
        if (!k) return -1;
        s = rj_ws(s, e);
        if (s >= e || *s != ':') return -1;
        v = rj_ws(s + 1, e);
        ve = rj_skip_value(v, e, 0);
        if (!ve) return -1;
        if (strcmp(k, key) == 0) {   /* last one wins, as in jansson and Go */
            out->s = v;
            out->e = ve;
            found = 1;
        }
        s = rj_ws(ve, e);
        if (s < e && *s == ',') {
            s++;
            continue;
        }
        if (s < e && *s == '}') return found;
        return -1;
    }
}

/* Fill id->caps and id->capmap_json from the CapMap member's raw text. */
static const char *parse_capmap(apr_pool_t *p, const char *json, apr_size_t len,
                                tsl_identity *id)
{
    const char *e = json + len, *s;
    rj_span cm = { NULL, NULL };
    int i, rv;

    rv = rj_member(p, json, e, "CapMap", &cm);
    if (rv < 0) return "whois answer: cannot read CapMap";
    if (rv == 0 || *cm.s == 'n') {
        id->capmap_json = NULL;
        return NULL;
    }
    if (*cm.s != '{') return "whois answer: CapMap is not an object";
    s = rj_ws(cm.s + 1, cm.e);
    while (s < cm.e && *s != '}') {
        const char *name = rj_string(p, s, cm.e, &s), *v, *ve;
        tsl_cap *cap = NULL;
        if (!name) return "whois answer: bad CapMap key";
        s = rj_ws(s, cm.e);
        if (s >= cm.e || *s != ':') return "whois answer: bad CapMap";
        v = rj_ws(s + 1, cm.e);
        ve = rj_skip_value(v, cm.e, 0);
        if (!ve) return "whois answer: bad CapMap";
        for (i = 0; i < id->caps->nelts; i++) {
            tsl_cap *c = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
            if (strcmp(c->name, name) == 0) {
                cap = c;    /* duplicate key: the last one wins */
                break;
            }
        }
        if (!cap) cap = apr_array_push(id->caps);
        cap->name = name;
        cap->values = apr_array_make(p, 2, sizeof(tsl_cap_value));
        if (*v == 'n') {
            cap->values_json = "null";
        }
        else if (*v == '[') {
            const char *a = rj_ws(v + 1, ve);
            cap->values_json = rj_compact(p, v, ve);
            while (a < ve && *a != ']') {
                const char *ae = rj_skip_value(a, ve, 0);
                tsl_cap_value *cv;
                if (!ae) return "whois answer: bad CapMap value";
                cv = apr_array_push(cap->values);
                cv->json = rj_compact(p, a, ae);
                cv->fields = apr_array_make(p, 4, sizeof(tsl_cap_field));
                if (cap_value_fields(p, a, ae, cv->fields) < 0) {
                    return "whois answer: bad CapMap value";
                }
                a = rj_ws(ae, ve);
                if (a < ve && *a == ',') a = rj_ws(a + 1, ve);
            }
        }
        else {
            return apr_psprintf(p, "whois answer: CapMap value of \"%s\" is not "
                                "an array", name);
        }
        s = rj_ws(ve, cm.e);
        if (s < cm.e && *s == ',') s = rj_ws(s + 1, cm.e);
    }
    qsort(id->caps->elts, (size_t)id->caps->nelts, sizeof(tsl_cap), cap_cmp);
    {
        /* Go marshals a map with sorted keys */
        const char *j = "{";
        for (i = 0; i < id->caps->nelts; i++) {
            tsl_cap *c = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
            j = apr_pstrcat(p, j, i ? "," : "", go_json_string(p, c->name), ":",
                            c->values_json, NULL);
        }
        id->capmap_json = apr_pstrcat(p, j, "}", NULL);
    }
    return NULL;
}

/* ------------------------------------------------------------ jansson */

static const char *get_int(apr_pool_t *p, json_t *obj, const char *obj_name,
                           const char *key, apr_int64_t *out)
{
    json_t *v = json_object_get(obj, key);

    *out = 0;
    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_integer(v)) {
        return apr_psprintf(p, "whois answer: %s.%s is not an integer", obj_name, key);
    }
    *out = (apr_int64_t)json_integer_value(v);
    return NULL;
}

static const char *fill_identity(apr_pool_t *p, json_t *root, tsl_identity *id)
{
    json_t *node, *up;
    const char *err, *name, *computed;
    apr_int64_t sharer;
    size_t n;

    if (!json_is_object(root)) {
        return "whois answer is not a JSON object";
    }
    node = json_object_get(root, "Node");
    if (!node || json_is_null(node)) return "whois answer has no Node";
    if (!json_is_object(node)) return "whois answer: Node is not an object";
    up = json_object_get(root, "UserProfile");
    if (!up || json_is_null(up)) return "whois answer has no UserProfile";
    if (!json_is_object(up)) return "whois answer: UserProfile is not an object";

    if ((err = get_int(p, up, "UserProfile", "ID", &id->user_id))
        || (err = tsl_json_string(p, "whois", up, "UserProfile.", "LoginName", 1, &id->login_name))
        || (err = tsl_json_string(p, "whois", up, "UserProfile.", "DisplayName", 0, &id->display_name))
        || (err = tsl_json_string(p, "whois", up, "UserProfile.", "ProfilePicURL", 0,
                             &id->profile_pic_url))
        || (err = tsl_json_strings(p, "whois", up, "UserProfile.", "Groups", &id->groups))
        || (err = get_int(p, node, "Node", "ID", &id->node_id))
        || (err = tsl_json_string(p, "whois", node, "Node.", "StableID", 0, &id->node_stable_id))
        || (err = tsl_json_string(p, "whois", node, "Node.", "Name", 1, &name))
        || (err = tsl_json_string(p, "whois", node, "Node.", "ComputedName", 0, &computed))
        || (err = get_int(p, node, "Node", "Sharer", &sharer))
        || (err = tsl_json_strings(p, "whois", node, "Node.", "Tags", &id->tags))
        || (err = tsl_json_strings(p, "whois", node, "Node.", "Addresses", &id->addresses))) {
        return err;
    }
    n = strlen(name);
    if (n > 0 && name[n - 1] == '.') {
        n--;
    }
    if (n == 0) {
        return "whois answer has an empty Node.Name";
    }
    id->node_name = apr_pstrndup(p, name, n);
    if (!*computed) {
        const char *dot = strchr(id->node_name, '.');
        computed = dot ? apr_pstrndup(p, id->node_name,
                                      (apr_size_t)(dot - id->node_name))
                       : id->node_name;
    }
    id->node_short = computed;
    n = strlen(computed);
    if (strncasecmp(id->node_name, computed, n) == 0 && id->node_name[n] == '.') {
        id->tailnet = id->node_name + n + 1;
    }
    else {
        /* shared-in: ComputedName is the whole FQDN, the tailnet withheld */
        id->tailnet = "";
    }
    id->is_tagged = id->tags->nelts > 0;
    id->is_shared_in = sharer != 0 || !*id->tailnet;
    return NULL;
}

tsl_code tsl_identity_parse(apr_pool_t *p, const char *json, apr_size_t len,
                            tsl_identity **out, tsl_result *res)
{
    json_t *root;
    tsl_identity *id;
    const char *err;

    tsl_result_init(res);
    *out = NULL;
    if (tsl_json_load(p, "whois", json, len, &root, res) != TSL_OK) {
        return res->code;
    }
    id = apr_pcalloc(p, sizeof(*id));
    id->caps = apr_array_make(p, 4, sizeof(tsl_cap));
    err = fill_identity(p, root, id);
    json_decref(root);
    if (!err) {
        err = parse_capmap(p, json, len, id);
    }
    if (err) {
        return tsl_result_set(res, p, TSL_ERR_PARSE, "%s", err);
    }
    id->groups_json = tsl_json_string_list(p, id->groups);
    id->tags_json = tsl_json_string_list(p, id->tags);
    *out = id;
    return TSL_OK;
}

/* ------------------------------------------------------------ queries */

static apr_array_header_t *copy_strings(apr_pool_t *p,
                                        const apr_array_header_t *a)
{
    apr_array_header_t *c = apr_array_make(p, a && a->nelts ? a->nelts : 1,
                                           sizeof(const char *));
    int i;

    for (i = 0; a && i < a->nelts; i++) {
        APR_ARRAY_PUSH(c, const char *) =
            apr_pstrdup(p, APR_ARRAY_IDX(a, i, const char *));
    }
    return c;
}

tsl_identity *tsl_identity_copy(apr_pool_t *p, const tsl_identity *id)
{
    tsl_identity *c;
    int i, j, k;

    if (!id) {
        return NULL;
    }
    c = apr_pmemdup(p, id, sizeof(*id));
    c->login_name = apr_pstrdup(p, id->login_name);
    c->display_name = apr_pstrdup(p, id->display_name);
    c->profile_pic_url = apr_pstrdup(p, id->profile_pic_url);
    c->node_stable_id = apr_pstrdup(p, id->node_stable_id);
    c->node_name = apr_pstrdup(p, id->node_name);
    c->node_short = apr_pstrdup(p, id->node_short);
    c->tailnet = apr_pstrdup(p, id->tailnet);
    c->tags = copy_strings(p, id->tags);
    c->groups = copy_strings(p, id->groups);
    c->tags_json = apr_pstrdup(p, id->tags_json);
    c->groups_json = apr_pstrdup(p, id->groups_json);
    c->addresses = copy_strings(p, id->addresses);
    c->capmap_json = id->capmap_json ? apr_pstrdup(p, id->capmap_json) : NULL;
    c->caps = apr_array_make(p, id->caps && id->caps->nelts ? id->caps->nelts : 1,
                             sizeof(tsl_cap));
    for (i = 0; id->caps && i < id->caps->nelts; i++) {
        const tsl_cap *src = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
        tsl_cap *dst = apr_array_push(c->caps);
        dst->name = apr_pstrdup(p, src->name);
        dst->values_json = apr_pstrdup(p, src->values_json);
        dst->values = apr_array_make(p, src->values && src->values->nelts
                                        ? src->values->nelts : 1,
                                     sizeof(tsl_cap_value));
        for (j = 0; src->values && j < src->values->nelts; j++) {
            const tsl_cap_value *sv = &APR_ARRAY_IDX(src->values, j, tsl_cap_value);
            tsl_cap_value *dv = apr_array_push(dst->values);
            dv->json = apr_pstrdup(p, sv->json);
            dv->fields = apr_array_make(p, sv->fields && sv->fields->nelts
                                           ? sv->fields->nelts : 1,
                                        sizeof(tsl_cap_field));
            for (k = 0; sv->fields && k < sv->fields->nelts; k++) {
                const tsl_cap_field *sf = &APR_ARRAY_IDX(sv->fields, k, tsl_cap_field);
                add_field(dv->fields, apr_pstrdup(p, sf->key),
                          apr_pstrdup(p, sf->value));
            }
        }
    }
    return c;
}

const tsl_cap *tsl_identity_cap(const tsl_identity *id, const char *name)
{
    int i;

    if (!id || !id->caps || !name) {
        return NULL;
    }
    for (i = 0; i < id->caps->nelts; i++) {
        const tsl_cap *c = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

int tsl_identity_has_cap(const tsl_identity *id, const char *name,
                         const char *field, const char *value)
{
    const tsl_cap *c = tsl_identity_cap(id, name);
    int i, j;

    if (!c) {
        return 0;
    }
    if (!field) {
        return 1;
    }
    for (i = 0; c->values && i < c->values->nelts; i++) {
        const tsl_cap_value *v = &APR_ARRAY_IDX(c->values, i, tsl_cap_value);
        for (j = 0; v->fields && j < v->fields->nelts; j++) {
            const tsl_cap_field *f = &APR_ARRAY_IDX(v->fields, j, tsl_cap_field);
            if (strcmp(f->key, field) == 0
                && strcmp(f->value, value ? value : "") == 0) {
                return 1;
            }
        }
    }
    return 0;
}

static int has_string(const apr_array_header_t *a, const char *s)
{
    int i;

    if (!a || !s) {
        return 0;
    }
    for (i = 0; i < a->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(a, i, const char *), s) == 0) {
            return 1;
        }
    }
    return 0;
}

int tsl_identity_has_tag(const tsl_identity *id, const char *tag)
{
    return id && has_string(id->tags, tag);
}

int tsl_identity_has_group(const tsl_identity *id, const char *group)
{
    return id && has_string(id->groups, group);
}

const char *tsl_identity_caps_filtered(apr_pool_t *p, const tsl_identity *id,
                                       const apr_array_header_t *names)
{
    const char *j = "{";
    int i, k, n = 0;

    if (!id || !id->capmap_json) {
        return NULL;
    }
    /* caps are sorted by name, so the output has Go's sorted map keys */
    for (i = 0; id->caps && i < id->caps->nelts; i++) {
        const tsl_cap *c = &APR_ARRAY_IDX(id->caps, i, tsl_cap);
        for (k = 0; names && k < names->nelts; k++) {
            if (strcmp(APR_ARRAY_IDX(names, k, const char *), c->name) == 0) {
                j = apr_pstrcat(p, j, n++ ? "," : "", go_json_string(p, c->name),
                                ":", c->values_json, NULL);
                break;
            }
        }
    }
    return apr_pstrcat(p, j, "}", NULL);
}

const char *tsl_json_string_list(apr_pool_t *p, const apr_array_header_t *list)
{
    const char *j = "[";
    int i;

    for (i = 0; list && i < list->nelts; i++) {
        j = apr_pstrcat(p, j, i ? "," : "", go_json_string(p, APR_ARRAY_IDX(list, i,
                                                                            const char *)),
                        NULL);
    }
    return apr_pstrcat(p, j, "]", NULL);
}

static int has_control(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    for (; u && *u; u++) {
        if (*u < 0x20 || *u == 0x7f) {
            return 1;
        }
    }
    return 0;
}

static unsigned clean_field(const char **f, unsigned bit)
{
    if (*f && has_control(*f)) {
        *f = "";
        return bit;
    }
    return 0;
}

/* Drop the elements of a string list that hold a control character: bit,
 * or 0 when none did. */
static unsigned clean_list(apr_array_header_t *list, unsigned bit)
{
    unsigned dropped = 0;
    int i, n = 0;

    for (i = 0; list && i < list->nelts; i++) {
        const char *t = APR_ARRAY_IDX(list, i, const char *);
        if (has_control(t)) {
            dropped = bit;
        }
        else {
            APR_ARRAY_IDX(list, n++, const char *) = t;
        }
    }
    if (list) {
        list->nelts = n;
    }
    return dropped;
}

unsigned tsl_identity_clean(tsl_identity *id)
{
    unsigned dropped = 0;

    dropped |= clean_field(&id->login_name, TSL_FIELD_LOGIN);
    dropped |= clean_field(&id->display_name, TSL_FIELD_DISPLAY_NAME);
    dropped |= clean_field(&id->profile_pic_url, TSL_FIELD_PROFILE_PIC);
    dropped |= clean_field(&id->node_name, TSL_FIELD_NODE_NAME);
    dropped |= clean_field(&id->node_short, TSL_FIELD_NODE_SHORT);
    dropped |= clean_field(&id->tailnet, TSL_FIELD_TAILNET);
    dropped |= clean_field(&id->node_stable_id, TSL_FIELD_NODE_ID);
    dropped |= clean_list(id->tags, TSL_FIELD_TAGS);
    dropped |= clean_list(id->groups, TSL_FIELD_GROUPS);
    /* the JSON forms follow their lists (made in the lists' pool) */
    if (dropped & TSL_FIELD_TAGS) {
        id->tags_json = tsl_json_string_list(id->tags->pool, id->tags);
    }
    if (dropped & TSL_FIELD_GROUPS) {
        id->groups_json = tsl_json_string_list(id->groups->pool, id->groups);
    }
    return dropped;
}

const char *tsl_identity_field_name(unsigned bit)
{
    switch (bit) {
    case TSL_FIELD_LOGIN: return "UserProfile.LoginName";
    case TSL_FIELD_DISPLAY_NAME: return "UserProfile.DisplayName";
    case TSL_FIELD_PROFILE_PIC: return "UserProfile.ProfilePicURL";
    case TSL_FIELD_NODE_NAME: return "Node.Name";
    case TSL_FIELD_NODE_SHORT: return "Node.ComputedName";
    case TSL_FIELD_TAILNET: return "Node.Name (tailnet)";
    case TSL_FIELD_NODE_ID: return "Node.StableID";
    case TSL_FIELD_TAGS: return "Node.Tags";
    case TSL_FIELD_GROUPS: return "UserProfile.Groups";
    }
    return "field";
}
