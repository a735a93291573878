/* Configuration text both modules read the same way (no httpd types): where
 * a directive's arguments hold a trailing '#' comment, which Apache does not
 * have, and the error that says so. */
#ifndef TSL_CONF_H
#define TSL_CONF_H

#include <apr_pools.h>

/* The first unquoted word of args that starts with '#' (words split as
 * httpd's ap_getword_conf() splits them), or NULL. For a section, pass the
 * text after its closing '>'. */
const char *tsl_conf_trailing_comment(const char *args);

/* The configuration error for such a comment on directive. */
const char *tsl_conf_comment_error(apr_pool_t *p, const char *directive,
                                   const char *comment);

#endif
