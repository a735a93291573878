/* Unit tests of mod_authnz_tailscale's shared last-error record: no process
 * ever waits for another, not even for one that died while writing. */
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "azt_stats.h"
#include "tu.h"

int main(void)
{
    apr_pool_t *p;
    azt_stats *st;
    apr_time_t when = 0;
    const char *text;

    apr_initialize();
    apr_pool_create(&p, NULL);
    st = azt_stats_create(p);

    TU_CHECK(azt_stats_last_error(st, p, NULL) == NULL, "no error recorded yet");
    azt_stats_error(st, TSL_ERR_CONNECT, "first");
    text = azt_stats_last_error(st, p, &when);
    TU_STR(text, "first", "the error is recorded");
    TU_CHECK(when > 0, "with its time");

    /* A writer that died holding the record, just now: readers do not
     * wait, a new report is skipped (one as recent is being written). */
    st->seq |= 1;
    st->claimed = (apr_uint64_t)apr_time_now();
    TU_CHECK(azt_stats_last_error(st, p, NULL) == NULL, "a reader does not wait for a writer");
    azt_stats_error(st, TSL_ERR_TIMEOUT, "second");
    TU_CHECK(st->seq & 1, "a recent writer is not overtaken");

    /* The same writer, gone for longer than a second: taken over. */
    st->claimed = (apr_uint64_t)(apr_time_now() - apr_time_from_sec(5));
    azt_stats_error(st, TSL_ERR_TIMEOUT, "third");
    TU_CHECK(!(st->seq & 1), "a dead writer's record is taken over");
    TU_STR(azt_stats_last_error(st, p, NULL), "third", "and written");
    TU_CHECK(st->errors == 3, "every error is counted");

    apr_pool_destroy(p);
    apr_terminate();
    return tu_done();
}
