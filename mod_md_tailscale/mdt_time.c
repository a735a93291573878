/* mod_md_tailscale: durations, windows and timestamps. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <apr_strings.h>
#include "mdt_time.h"

#define SEC  ((apr_interval_time_t)APR_USEC_PER_SEC)

static int unit_factor(const char *unit, apr_interval_time_t *f)
{
    if (!strcasecmp(unit, "d")) {
        *f = 86400 * SEC;
    }
    else if (!strcasecmp(unit, "h")) {
        *f = 3600 * SEC;
    }
    else if (!strcasecmp(unit, "mi")) {
        *f = 60 * SEC;
    }
    else if (!strcasecmp(unit, "s")) {
        *f = SEC;
    }
    else if (!strcasecmp(unit, "ms")) {
        *f = 1000;
    }
    else {
        return 0;
    }
    return 1;
}

const char *mdt_duration_parse(apr_pool_t *p, const char *s, const char *def_unit,
                               apr_interval_time_t *out)
{
    const char *unit;
    char *end;
    apr_int64_t n;
    apr_interval_time_t f;

    if (!s || !*s) {
        return "empty duration";
    }
    if (!isdigit((unsigned char)*s)) {
        return apr_psprintf(p, "'%s' is not a duration (e.g. 30d, 12h, 5mi, 30s, 500ms)", s);
    }
    n = apr_strtoi64(s, &end, 10);
    if (n < 0 || n > 100000000) {
        return apr_psprintf(p, "'%s' is out of range", s);
    }
    unit = *end ? end : def_unit;
    if (!unit_factor(unit, &f)) {
        return apr_psprintf(p, "'%s': unknown unit '%s' (use d, h, mi, s or ms)", s, end);
    }
    if (n > 0 && f > APR_INT64_MAX / n) {
        return apr_psprintf(p, "'%s' is out of range", s);
    }
    *out = (apr_interval_time_t)n * f;
    return NULL;
}

const char *mdt_window_parse(apr_pool_t *p, const char *s, mdt_window *out)
{
    size_t len = s ? strlen(s) : 0;

    memset(out, 0, sizeof(*out));
    if (len > 1 && s[len - 1] == '%') {
        char *end;
        apr_int64_t n = apr_strtoi64(s, &end, 10);

        if (end != s + len - 1 || !isdigit((unsigned char)*s) || n < 1 || n > 99) {
            return apr_psprintf(p, "'%s': a percentage must be between 1%% and 99%%", s);
        }
        out->set = 1;
        out->percent = (int)n;
        return NULL;
    }
    {
        const char *err = mdt_duration_parse(p, s, "d", &out->len);
        if (err) {
            return err;
        }
        if (out->len <= 0) {
            return apr_psprintf(p, "'%s': the window must be longer than 0", s);
        }
    }
    out->set = 1;
    return NULL;
}

apr_interval_time_t mdt_window_length(const mdt_window *w, apr_interval_time_t lifetime)
{
    if (w->percent > 0) {
        return lifetime > 0 ? (lifetime / 100) * w->percent : 0;
    }
    return w->len;
}

const char *mdt_duration_str(apr_pool_t *p, apr_interval_time_t d)
{
    apr_int64_t s;
    char *out = "";

    if (d < 0) {
        return apr_pstrcat(p, "-", mdt_duration_str(p, -d), NULL);
    }
    if (d < SEC && d > 0) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "ms", (apr_int64_t)(d / 1000));
    }
    s = d / SEC;
    if (s >= 86400) {
        out = apr_psprintf(p, "%" APR_INT64_T_FMT "d", s / 86400);
        s %= 86400;
    }
    if (s >= 3600) {
        out = apr_psprintf(p, "%s%" APR_INT64_T_FMT "h", out, s / 3600);
        s %= 3600;
    }
    if (s >= 60) {
        out = apr_psprintf(p, "%s%" APR_INT64_T_FMT "mi", out, s / 60);
        s %= 60;
    }
    if (s > 0 || !*out) {
        out = apr_psprintf(p, "%s%" APR_INT64_T_FMT "s", out, s);
    }
    return out;
}

const char *mdt_window_str(apr_pool_t *p, const mdt_window *w)
{
    if (w->percent > 0) {
        return apr_psprintf(p, "%d%%", w->percent);
    }
    return mdt_duration_str(p, w->len);
}

const char *mdt_time_rfc3339(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;

    if (t <= 0 || apr_time_exp_gmt(&x, t) != APR_SUCCESS) {
        return "";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ", x.tm_year + 1900,
                        x.tm_mon + 1, x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec);
}

apr_time_t mdt_time_parse_rfc3339(const char *s)
{
    apr_time_exp_t x;
    apr_time_t t;
    int y, mo, d, h, mi, se;

    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &se) != 6) {
        return 0;
    }
    memset(&x, 0, sizeof(x));
    x.tm_year = y - 1900;
    x.tm_mon = mo - 1;
    x.tm_mday = d;
    x.tm_hour = h;
    x.tm_min = mi;
    x.tm_sec = se;
    if (apr_time_exp_gmt_get(&t, &x) != APR_SUCCESS) {
        return 0;
    }
    return t;
}
