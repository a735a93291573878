/* Unit tests of mod_authnz_tailscale's shared last-error record: no process
 * ever waits for another, not even for one that died while writing. */
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "azt_stats.h"
#include "tu.h"

/* Concurrent writers and readers (threads of one process, as in the event
 * MPM; ThreadSanitizer checks this under build/check-sanitizers --thread):
 * a reader gets no text or one writer's whole text, never a mix. */
#define WRITERS 4
#define READERS 2
#define ROUNDS 2000

typedef struct {
    azt_stats *st;
    int id;
    int torn;         /* readers: texts that were not one writer's */
    int seen;         /* readers: texts read */
} worker;

static void *APR_THREAD_FUNC write_errors(apr_thread_t *t, void *data)
{
    worker *w = data;
    char text[400];
    int i;

    memset(text, 'a' + w->id, sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (i = 0; i < ROUNDS; i++) {
        azt_stats_error(w->st, TSL_ERR_TIMEOUT, text);
    }
    (void)t;
    return NULL;   /* not apr_thread_exit(): pthread_exit leaves ASan's stack shadow poisoned */
}

static void *APR_THREAD_FUNC read_errors(apr_thread_t *t, void *data)
{
    worker *w = data;
    apr_pool_t *p;
    int i;

    apr_pool_create(&p, NULL);
    for (i = 0; i < ROUNDS; i++) {
        const char *text = azt_stats_last_error(w->st, p, NULL);
        if (text) {
            w->seen++;
            if (strlen(text) != 399 || strspn(text, (char[]){ text[0], 0 }) != 399) {
                w->torn++;
            }
        }
        if (i % 64 == 0) {
            apr_pool_clear(p);
        }
    }
    apr_pool_destroy(p);
    (void)t;
    return NULL;   /* not apr_thread_exit(): pthread_exit leaves ASan's stack shadow poisoned */
}

static void concurrent(apr_pool_t *p)
{
    azt_stats *st = azt_stats_create(p);
    apr_thread_t *th[WRITERS + READERS];
    worker w[WRITERS + READERS];
    apr_status_t rv;
    int i, torn = 0, seen = 0;

    for (i = 0; i < WRITERS + READERS; i++) {
        w[i] = (worker){ st, i, 0, 0 };
        apr_thread_create(&th[i], NULL, i < WRITERS ? write_errors : read_errors, &w[i], p);
    }
    for (i = 0; i < WRITERS + READERS; i++) {
        apr_thread_join(&rv, th[i]);
        if (i >= WRITERS) {
            torn += w[i].torn;
            seen += w[i].seen - w[i].torn;
        }
    }
    printf("# concurrent: %d whole texts read, %d torn, %llu errors counted\n", seen, torn,
           (unsigned long long)st->errors);
    TU_CHECK(torn == 0, "concurrent readers never get a mix of two writers' texts");
    TU_CHECK(st->errors == WRITERS * ROUNDS, "concurrent writers: every error is counted");
}

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

    /* A writer that claimed the record after this one read the clock (its
     * claim time is later than our "now"): recent, not taken over. */
    st->claimed = (apr_uint64_t)(apr_time_now() + apr_time_from_msec(100));
    azt_stats_error(st, TSL_ERR_TIMEOUT, "second");
    TU_CHECK(st->seq & 1, "a writer that claimed after our clock read is not overtaken");

    /* The same writer, gone for longer than a second: taken over. */
    st->claimed = (apr_uint64_t)(apr_time_now() - apr_time_from_sec(5));
    azt_stats_error(st, TSL_ERR_TIMEOUT, "third");
    TU_CHECK(!(st->seq & 1), "a dead writer's record is taken over");
    TU_STR(azt_stats_last_error(st, p, NULL), "third", "and written");
    TU_CHECK(st->errors == 4, "every error is counted");

    concurrent(p);

    apr_pool_destroy(p);
    apr_terminate();
    return tu_done();
}
