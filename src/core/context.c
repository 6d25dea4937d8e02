/* upres_ctx: limits, error detail, progress, and the thread pool.
 *
 * The pool runs one job at a time (a context is used by one calling thread at
 * a time). Work is split into chunks handed out through an atomic counter; the
 * calling thread takes chunks too and reports progress between its chunks, so
 * the progress callback only ever runs on the caller's thread. Every worker
 * takes part in every job (possibly finding no chunk left) and checks out of
 * it before the caller returns: so no worker can still be looking at a job's
 * fields when the next job overwrites them.
 *
 * A network runs dozens of short jobs back to back, and waking a sleeping
 * thread costs tens of microseconds (more in a VM), so both sides first
 * spin briefly (POOL_SPIN_NS, yielding after the first microseconds) on the
 * atomic they wait for before sleeping on the condition variable; the mutex
 * still orders the job's fields. */
#include "core_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a thread spins before sleeping: longer than the gap between two
 * jobs of a network (the caller's serial work between its layers), short
 * enough that an idle pool stops using CPU at once. */
#define POOL_SPIN_NS 200000

struct upres_ctx {
    upres_limits limits;
    upres_progress_fn progress;
    void *progress_user;
    char error[1024];

    int nthreads;          /* including the caller */
    pthread_t *workers;    /* nthreads - 1 */
    pthread_mutex_t mu;
    pthread_cond_t wake;   /* workers wait here for a new job */
    pthread_cond_t idle;   /* the caller waits here for chunks to finish */
    atomic_uint_fast64_t generation; /* bumped for every job (under mu) */
    int quit;

    /* the current job */
    upres_range_fn fn;
    void *user;
    uint64_t n, chunk, nchunks;
    atomic_uint_fast64_t next;      /* next chunk to hand out */
    atomic_uint_fast64_t finished;  /* chunks completed */
    atomic_int cancel;
    atomic_int checked_out;         /* workers done with the current job (under mu) */
};

upres_ctx_desc upres_ctx_desc_defaults(void)
{
    upres_ctx_desc d;
    memset(&d, 0, sizeof d);
    d.threads = 0;
    d.limits = upres_limits_defaults();
    return d;
}

/* Takes chunks of the current job until none is left. */
static void run_chunks(upres_ctx *c)
{
    for (;;) {
        if (atomic_load(&c->cancel)) return;
        uint64_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->nchunks) return;
        uint64_t b = i * c->chunk, e = b + c->chunk;
        if (e > c->n) e = c->n;
        c->fn(c->user, b, e);
        atomic_fetch_add(&c->finished, 1);
    }
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One step of a wait: a pause for the first few microseconds, then a
 * yield, so a spinning thread gives its CPU to any other runnable thread
 * (more threads than CPUs, or other processes) instead of taking it from
 * the workers it waits for. Returns 0 once POOL_SPIN_NS have passed. */
static int spin_step(unsigned i, uint64_t t0)
{
    if (i < 256) {
        cpu_relax();
        return 1;
    }
    sched_yield();
    return now_ns() - t0 <= POOL_SPIN_NS;
}

/* Spins up to POOL_SPIN_NS until *gen differs from seen. */
static void spin_for_job(const atomic_uint_fast64_t *gen, uint64_t seen)
{
    const uint64_t t0 = now_ns();
    for (unsigned i = 0; atomic_load(gen) == seen; i++)
        if (!spin_step(i, t0)) return;
}

/* Spins up to POOL_SPIN_NS until *n reaches want. */
static void spin_for_count(const atomic_int *n, int want)
{
    const uint64_t t0 = now_ns();
    for (unsigned i = 0; atomic_load(n) < want; i++)
        if (!spin_step(i, t0)) return;
}

static void *worker_main(void *arg)
{
    upres_ctx *c = arg;
    uint64_t seen = 0;
    for (;;) {
        spin_for_job(&c->generation, seen);
        pthread_mutex_lock(&c->mu);
        while (!c->quit && atomic_load(&c->generation) == seen) pthread_cond_wait(&c->wake, &c->mu);
        if (c->quit) break;
        seen = atomic_load(&c->generation);
        pthread_mutex_unlock(&c->mu);
        run_chunks(c);
        pthread_mutex_lock(&c->mu);
        atomic_fetch_add(&c->checked_out, 1);
        pthread_cond_broadcast(&c->idle);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int upres_ctx_new(const upres_ctx_desc *desc, upres_ctx **out)
{
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    upres_ctx_desc d = desc ? *desc : upres_ctx_desc_defaults();
    if (d.threads < 0) return UPRES_ERR_INVALID_ARG;
    upres_ctx *c = calloc(1, sizeof *c);
    if (!c) return UPRES_ERR_NOMEM;
    c->limits = d.limits;
    c->progress = d.progress;
    c->progress_user = d.progress_user;
    int n = d.threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    if (n > 256) n = 256;
    c->nthreads = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->idle, NULL);
    if (n > 1) {
        c->workers = calloc((size_t)n - 1, sizeof *c->workers);
        if (!c->workers) {
            upres_ctx_free(c);
            return UPRES_ERR_NOMEM;
        }
        for (int i = 0; i < n - 1; i++) {
            if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0) {
                upres_ctx_free(c);
                return UPRES_ERR_THREAD;
            }
            c->nthreads++;
        }
    }
    *out = c;
    return UPRES_OK;
}

void upres_ctx_free(upres_ctx *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nthreads - 1; i++) pthread_join(c->workers[i], NULL);
    free(c->workers);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int upres_ctx_threads(const upres_ctx *c) { return c ? c->nthreads : 1; }

const upres_limits *upres_ctx_limits(const upres_ctx *c) { return upres__limits(c); }

const upres_limits *upres__limits(const upres_ctx *c)
{
    /* Must equal upres_limits_defaults(). */
    static const upres_limits def = {268435456u, 65535u, (size_t)16 << 20,
                                      (uint64_t)4 << 30, (uint64_t)16 << 30, (uint64_t)2 << 30};
    return c ? &c->limits : &def;
}

const char *upres_ctx_error(const upres_ctx *c) { return c ? c->error : ""; }

void upres__clear_error(upres_ctx *c)
{
    if (c) c->error[0] = 0;
}

int upres__fail(upres_ctx *c, int status, const char *fmt, ...)
{
    /* Keep the first (innermost) detail: it is the most specific one. */
    if (c && c->error[0] == 0 && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
        /* Details quote names from untrusted files (tensor and layer
         * names); control characters must not break the one-line message. */
        for (char *p = c->error; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    return status;
}

int upres__parallel_for(upres_ctx *c, const char *what, uint64_t n, uint64_t chunk,
                        upres_range_fn fn, void *user)
{
    if (n == 0) return UPRES_OK;
    if (chunk == 0) chunk = 1;
    uint64_t nchunks = n / chunk + (n % chunk != 0);
    int report = c && c->progress && what;
    if (!c || c->nthreads <= 1 || nchunks == 1) {
        for (uint64_t i = 0; i < nchunks; i++) {
            uint64_t b = i * chunk, e = b + chunk < n ? b + chunk : n;
            fn(user, b, e);
            if (report && c->progress(c->progress_user, what, e, n)) return UPRES_ERR_CANCELLED;
        }
        return UPRES_OK;
    }
    pthread_mutex_lock(&c->mu);
    c->fn = fn;
    c->user = user;
    c->n = n;
    c->chunk = chunk;
    c->nchunks = nchunks;
    atomic_store(&c->next, 0);
    atomic_store(&c->finished, 0);
    atomic_store(&c->cancel, 0);
    atomic_store(&c->checked_out, 0);
    atomic_fetch_add(&c->generation, 1);
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);

    int cancelled = 0;
    for (;;) {
        if (atomic_load(&c->cancel)) break;
        uint64_t i = atomic_fetch_add(&c->next, 1);
        if (i >= nchunks) break;
        uint64_t b = i * chunk, e = b + chunk < n ? b + chunk : n;
        fn(user, b, e);
        uint64_t done = atomic_fetch_add(&c->finished, 1) + 1;
        if (report) {
            uint64_t units = done * chunk < n ? done * chunk : n;
            if (c->progress(c->progress_user, what, units, n)) {
                atomic_store(&c->cancel, 1);
                cancelled = 1;
            }
        }
    }
    /* Wait until every worker has checked out of this job: only then may the
     * job fields (and the caller's `user` data) be reused. */
    spin_for_count(&c->checked_out, c->nthreads - 1);
    pthread_mutex_lock(&c->mu);
    while (atomic_load(&c->checked_out) < c->nthreads - 1) pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (report && !cancelled) c->progress(c->progress_user, what, n, n);
    return cancelled ? UPRES_ERR_CANCELLED : UPRES_OK;
}

int upres__progress(upres_ctx *ctx, const char *what, uint64_t done, uint64_t total)
{
    if (!ctx || !ctx->progress) return UPRES_OK;
    return ctx->progress(ctx->progress_user, what, done, total) ? UPRES_ERR_CANCELLED : UPRES_OK;
}
