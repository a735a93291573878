/* Reading tailscaled's JSON answers (see tsl_json.h). */
#include <apr_strings.h>
#include "tsl_json.h"

tsl_code tsl_json_load(apr_pool_t *p, const char *what, const char *json,
                       apr_size_t len, json_t **root, tsl_result *res)
{
    json_error_t jerr;

    *root = NULL;
    if (!json || len == 0) {
        return tsl_result_set(res, p, TSL_ERR_PARSE, "%s answer is empty", what);
    }
    *root = json_loadb(json, len, 0, &jerr);
    if (!*root) {
        return tsl_result_set(res, p, TSL_ERR_PARSE,
                              "%s answer is not valid JSON: %s (line %d, column %d)",
                              what, tsl_printable(p, jerr.text, 200), jerr.line,
                              jerr.column);
    }
    return TSL_OK;
}

const char *tsl_json_string(apr_pool_t *p, const char *what, json_t *obj,
                            const char *prefix, const char *key, int required,
                            const char **out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;

    *out = "";
    if (!v || json_is_null(v)) {
        return required ? apr_psprintf(p, "%s answer has no %s%s", what, prefix, key)
                        : NULL;
    }
    if (!json_is_string(v)) {
        return apr_psprintf(p, "%s answer: %s%s is not a string", what, prefix, key);
    }
    *out = apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    if (required && !**out) {
        return apr_psprintf(p, "%s answer has an empty %s%s", what, prefix, key);
    }
    return NULL;
}

const char *tsl_json_strings(apr_pool_t *p, const char *what, json_t *obj,
                             const char *prefix, const char *key,
                             apr_array_header_t **out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL, *e;
    size_t i;

    *out = apr_array_make(p, 4, sizeof(const char *));
    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_array(v)) {
        return apr_psprintf(p, "%s answer: %s%s is not an array", what, prefix, key);
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            return apr_psprintf(p, "%s answer: %s%s has a non-string element",
                                what, prefix, key);
        }
        APR_ARRAY_PUSH(*out, const char *) =
            apr_pstrmemdup(p, json_string_value(e), json_string_length(e));
    }
    return NULL;
}

json_t *tsl_json_string_array(const apr_array_header_t *list)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; list && i < list->nelts; i++) {
        json_array_append_new(arr, json_string(APR_ARRAY_IDX(list, i, const char *)));
    }
    return arr;
}
