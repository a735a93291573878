/* mod_md_tailscale: status documents in shared memory (see mdt_live.h). */
#include <string.h>
#include <apr_shm.h>
#include "mdt_live.h"

#define SLOT_TEXT (16 * 1024)
#define READ_TRIES 1000

typedef struct slot {
    unsigned int seq;       /* even: stable; odd: being written; 0: empty */
    unsigned int len;
    char text[SLOT_TEXT];
} slot;

struct mdt_live {
    apr_shm_t *shm;
    slot *slots;
    int n;
};

static apr_status_t live_cleanup(void *data)
{
    mdt_live *l = data;

    if (l->shm) {
        (void)apr_shm_destroy(l->shm);
        l->shm = NULL;
    }
    return APR_SUCCESS;
}

mdt_live *mdt_live_create(apr_pool_t *pconf, int n)
{
    mdt_live *l = apr_pcalloc(pconf, sizeof(*l));

    if (n <= 0 || apr_shm_create(&l->shm, sizeof(slot) * (apr_size_t)n, NULL, pconf)
                  != APR_SUCCESS) {
        return NULL;
    }
    l->slots = apr_shm_baseaddr_get(l->shm);
    memset(l->slots, 0, sizeof(slot) * (apr_size_t)n);
    l->n = n;
    apr_pool_cleanup_register(pconf, l, live_cleanup, apr_pool_cleanup_null);
    return l;
}

void mdt_live_put(mdt_live *l, int i, const char *text)
{
    slot *s;
    apr_size_t len = strlen(text);

    if (!l || !l->slots || i < 0 || i >= l->n || len >= SLOT_TEXT) {
        return;
    }
    s = &l->slots[i];
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);      /* odd: writing */
    memcpy(s->text, text, len);
    s->len = (unsigned int)len;
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);      /* even: done */
}

char *mdt_live_get(const mdt_live *l, int i, apr_pool_t *p)
{
    const slot *s;
    char *buf;
    int tries;

    if (!l || !l->slots || i < 0 || i >= l->n) {
        return NULL;
    }
    s = &l->slots[i];
    buf = apr_palloc(p, SLOT_TEXT);
    for (tries = 0; tries < READ_TRIES; ++tries) {
        unsigned int before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE), len;

        if (before == 0) {
            return NULL;
        }
        if (before & 1) {
            continue;
        }
        len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
        if (len >= SLOT_TEXT) {
            continue;
        }
        memcpy(buf, s->text, len);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == before) {
            buf[len] = '\0';
            return buf;
        }
    }
    return NULL;
}
