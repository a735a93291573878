/* Configuration text shared by the modules (see tsl_conf.h). */
#include <apr_lib.h>
#include <apr_strings.h>
#include "tsl_conf.h"

const char *tsl_conf_trailing_comment(const char *args)
{
    const char *s = args;

    while (s && *s) {
        while (apr_isspace(*s)) {
            s++;
        }
        if (*s == '#') {
            return s;
        }
        if (*s == '"' || *s == '\'') {
            char quote = *s++;
            while (*s && *s != quote) {
                s += (*s == '\\' && s[1] == quote) ? 2 : 1;
            }
            if (*s) {
                s++;
            }
        }
        else {
            while (*s && !apr_isspace(*s)) {
                s++;
            }
        }
    }
    return NULL;
}

const char *tsl_conf_comment_error(apr_pool_t *p, const char *directive,
                                   const char *comment)
{
    return apr_psprintf(p, "%s: '%s' looks like a comment, but Apache has no trailing "
                        "comments ('#' starts a comment only at the beginning of a line), "
                        "so its words would be read as values; move the comment to a "
                        "line of its own", directive, comment);
}
