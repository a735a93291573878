/* tailscaled's JSON answers with jansson: loading and typed member access
 * with error texts that name the answer and the member ("whois answer:
 * Node.Tags is not an array"), and string lists back into JSON. */
#ifndef TSL_JSON_H
#define TSL_JSON_H

#include <jansson.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include "tsl_result.h"

/* Parse len bytes of JSON; what names the answer ("whois", "status").
 * The caller json_decref()s *root. */
tsl_code tsl_json_load(apr_pool_t *p, const char *what, const char *json,
                       apr_size_t len, json_t **root, tsl_result *res);

/* String member prefix+key of obj (obj may be NULL). Absent or null gives ""
 * unless required, which also refuses "". Returns an error text or NULL. */
const char *tsl_json_string(apr_pool_t *p, const char *what, json_t *obj,
                            const char *prefix, const char *key, int required,
                            const char **out);

/* Array-of-strings member (absent or null: empty array). Error text or NULL. */
const char *tsl_json_strings(apr_pool_t *p, const char *what, json_t *obj,
                             const char *prefix, const char *key,
                             apr_array_header_t **out);

/* A new JSON array of the strings in list (NULL: empty); the caller owns
 * the reference. The inverse of tsl_json_strings(). */
json_t *tsl_json_string_array(const apr_array_header_t *list);

#endif
