/* Fuzz target: AuthTailscaleURL / MDTailscaleURL socket specs
 * (tsl_socket_parse): plain absolute paths and file:// URLs with
 * percent-escapes.
 *
 * Invariants: success gives an absolute path other than "/", a plain path
 * comes back unchanged, a file:// URL has no query or fragment and decodes
 * to a path no longer than the spec; failure gives TSL_ERR_INVALID with a
 * reason and *path NULL.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tsl_client.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *spec = fz_cstr(data, size);
    const char *path = (const char *)1;
    tsl_result res;
    tsl_code code = tsl_socket_parse(p, spec, &path, &res);

    FZ_CHECK(res.text != NULL, "result text is NULL");
    if (code == TSL_OK) {
        FZ_CHECK(path && path[0] == '/' && path[1] != '\0', "bad path %s", path ? path : "NULL");
        FZ_CHECK(strlen(path) <= strlen(spec), "path %s longer than spec %s", path, spec);
        if (spec[0] == '/') {
            FZ_CHECK(strcmp(path, spec) == 0, "plain path changed: %s -> %s", spec, path);
        }
        else {
            FZ_CHECK(strncasecmp(spec, "file://", 7) == 0, "accepted %s", spec);
            FZ_CHECK(!strchr(spec, '?') && !strchr(spec, '#'), "query kept: %s", spec);
        }
    }
    else {
        FZ_CHECK(code == TSL_ERR_INVALID && path == NULL && *res.text, "bad failure %d",
                 (int)code);
    }
    (void)tsl_socket_parse(p, NULL, &path, &res);
    free(spec);
    fz_end(p);
    return 0;
}
