/* mod_md_tailscale: durations and time windows in mod_md's notation
 * ("30d", "12h", "5mi", "30s", "500ms", "33%"), and time formatting. */
#ifndef MDT_TIME_H
#define MDT_TIME_H

#include <apr_pools.h>
#include <apr_time.h>

/* A window before expiry: an absolute duration or a share of the lifetime. */
typedef struct mdt_window {
    int set;                      /* 0: not configured */
    int percent;                  /* 1..99 when relative, 0 when absolute */
    apr_interval_time_t len;      /* absolute length */
} mdt_window;

/* Parse "<number>[d|h|mi|s|ms]"; a bare number uses def_unit ("d", "s"...).
 * Returns NULL or an error text. */
const char *mdt_duration_parse(apr_pool_t *p, const char *s, const char *def_unit,
                               apr_interval_time_t *out);

/* Parse a window: a duration (default unit days) or "<1..99>%". */
const char *mdt_window_parse(apr_pool_t *p, const char *s, mdt_window *out);

/* The window's length for a certificate of the given lifetime. */
apr_interval_time_t mdt_window_length(const mdt_window *w, apr_interval_time_t lifetime);

/* "33%" or "30d" / "12h" / "90s" style text. */
const char *mdt_window_str(apr_pool_t *p, const mdt_window *w);

/* Compact duration text, e.g. "2d3h", "40s", "0s". */
const char *mdt_duration_str(apr_pool_t *p, apr_interval_time_t d);

/* RFC 3339 UTC ("2026-01-02T03:04:05Z"); "" for 0. */
const char *mdt_time_rfc3339(apr_pool_t *p, apr_time_t t);

/* Parse what mdt_time_rfc3339() wrote; 0 when empty or invalid. */
apr_time_t mdt_time_parse_rfc3339(const char *s);

#endif
