/*
 * alloc.c — the "alloc" monitor: every allocation call of the program, as
 * seen by the interposer of libpikoc-preload.so (src/interpose.c), with the
 * allocator behind it being jemalloc, and the process's RSS and VMS taken on
 * a timer by a thread of pikoc's own. What an allocation event means (its
 * record type, the function's name, the block's usable size) is said here;
 * the drain thread asks. Nothing here runs on a monitored thread.
 */
#include "alloc.h"
#include "clock.h"
#include "hot.h"
#include "internal.h"

#include <dlfcn.h>
#include <signal.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SAMPLE_INTERVAL_NS 10000000ull /* 10 ms */

/* Defined only in libpikoc-preload.so (src/interpose.c). */
PK_HIDDEN int pk_interposer_status(const char **next_library) __attribute__((weak));
PK_HIDDEN void pk_interposer_stacks(uint32_t depth) __attribute__((weak));

typedef size_t (*nallocx_fn)(size_t size, int flags);
static nallocx_fn jemalloc_nallocx;

const char *const pk_alloc_call_names[PK_CALL_COUNT] = {
    [PK_CALL_MALLOC] = "malloc",
    [PK_CALL_CALLOC] = "calloc",
    [PK_CALL_REALLOC] = "realloc",
    [PK_CALL_REALLOCARRAY] = "reallocarray",
    [PK_CALL_POSIX_MEMALIGN] = "posix_memalign",
    [PK_CALL_ALIGNED_ALLOC] = "aligned_alloc",
    [PK_CALL_MEMALIGN] = "memalign",
    [PK_CALL_VALLOC] = "valloc",
    [PK_CALL_PVALLOC] = "pvalloc",
    [PK_CALL_NEW] = "operator new",
    [PK_CALL_NEW_ARRAY] = "operator new[]",
    [PK_CALL_NEW_NOTHROW] = "operator new nothrow",
    [PK_CALL_NEW_ARRAY_NOTHROW] = "operator new[] nothrow",
    [PK_CALL_NEW_ALIGNED] = "operator new aligned",
    [PK_CALL_NEW_ARRAY_ALIGNED] = "operator new[] aligned",
    [PK_CALL_NEW_ALIGNED_NOTHROW] = "operator new aligned nothrow",
    [PK_CALL_NEW_ARRAY_ALIGNED_NOTHROW] = "operator new[] aligned nothrow",
    [PK_CALL_FREE] = "free",
    [PK_CALL_DELETE] = "operator delete",
    [PK_CALL_DELETE_ARRAY] = "operator delete[]",
    [PK_CALL_DELETE_SIZED] = "operator delete sized",
    [PK_CALL_DELETE_ARRAY_SIZED] = "operator delete[] sized",
    [PK_CALL_DELETE_NOTHROW] = "operator delete nothrow",
    [PK_CALL_DELETE_ARRAY_NOTHROW] = "operator delete[] nothrow",
    [PK_CALL_DELETE_ALIGNED] = "operator delete aligned",
    [PK_CALL_DELETE_ARRAY_ALIGNED] = "operator delete[] aligned",
    [PK_CALL_DELETE_SIZED_ALIGNED] = "operator delete sized aligned",
    [PK_CALL_DELETE_ARRAY_SIZED_ALIGNED] = "operator delete[] sized aligned",
    [PK_CALL_DELETE_ALIGNED_NOTHROW] = "operator delete aligned nothrow",
    [PK_CALL_DELETE_ARRAY_ALIGNED_NOTHROW] = "operator delete[] aligned nothrow",
};

uint32_t pk_alloc_usable_cache[PK_USABLE_CACHE_SIZES];

/* What jemalloc gives for a request: the same number malloc_usable_size says. */
uint64_t pk_alloc_usable_size_asked(uint64_t asked, uint64_t alignment)
{
    if (!jemalloc_nallocx)
        return asked;
    if (alignment <= 1 && asked < PK_USABLE_CACHE_SIZES)
        return pk_alloc_usable_cache[asked] = (uint32_t)jemalloc_nallocx(asked ? asked : 1, 0);
    int flags = 0;
    if (alignment > 1)
        flags = __builtin_ctzll(alignment); /* MALLOCX_LG_ALIGN */
    return jemalloc_nallocx(asked ? asked : 1, flags);
}

int pk_alloc_parse_stack(const char *what, const char *text, uint32_t *depth, pk_error *err)
{
    uint64_t n;
    pk_error inner;
    if (pk_parse_uint(what, text, &n, &inner) != 0 || n > PK_STACK_MAX)
        return pk_fail(err, "%s '%s': expected a number of frames from 0 to %d", what,
                       text ? text : "", PK_STACK_MAX);
    *depth = (uint32_t)n;
    return 0;
}

/* PIKOC_STACK: frames per allocation; 0 (the call site only) when unset. */
static int stack_depth(uint32_t *depth, pk_error *err)
{
    const char *text = pk_setting("PIKOC_STACK");
    *depth = 0;
    pk_error inner;
    if (text && pk_alloc_parse_stack("PIKOC_STACK", text, depth, &inner) != 0)
        return pk_fail(err, "monitor 'alloc': %s", inner.message);
    return 0;
}

/* ---- RSS and VMS on a timer ------------------------------------------------------ */

static struct {
    pthread_t thread;
    bool started;
    uint64_t interval_ns;
    int statm_fd;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
} sampler = {.statm_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* One sample into this thread's ring, as the hooks store their events. */
static void push_sample(void)
{
    uint64_t pages[2];
    pk_read_statm(&sampler.statm_fd, pages);
    uint64_t head;
    struct pk_ring *r = pk_ring_claim(&pk_self, &head);
    if (!r || !atomic_load_explicit(&pk_rt.running, memory_order_acquire))
        return;
    struct pk_raw_event *ev = pk_ring_slot(r, head, PK_SLOT_SHIFT_SAMPLED);
    ev->raw_time = pk_clock_raw();
    ev->fn = ev->site = 0;
    ev->kind = PK_RAW_SAMPLE;
    ev->payload = 0;
    ev->values[0] = pages[0];
    ev->values[1] = pages[1];
    pk_ring_publish(r, head);
}

static void *sampler_main(void *unused)
{
    (void)unused;
    pk_self.busy = 1; /* pikoc's own thread: nothing it does is the program's */
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&sampler.lock);
    while (!sampler.stopping) {
        pthread_mutex_unlock(&sampler.lock);
        push_sample();
        uint64_t ns = (uint64_t)next.tv_nsec + sampler.interval_ns;
        next.tv_sec += (time_t)(ns / 1000000000u);
        next.tv_nsec = (long)(ns % 1000000000u);
        pthread_mutex_lock(&sampler.lock);
        while (!sampler.stopping &&
               pthread_cond_timedwait(&sampler.wake, &sampler.lock, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sampler.lock);
    return NULL;
}

/* PIKOC_SAMPLE_INTERVAL: a duration, 0 for no samples; 10 ms when unset. */
static int sample_interval(uint64_t *ns, pk_error *err)
{
    const char *text = pk_setting("PIKOC_SAMPLE_INTERVAL");
    *ns = DEFAULT_SAMPLE_INTERVAL_NS;
    pk_error inner;
    if (text && pk_parse_duration("PIKOC_SAMPLE_INTERVAL", text, ns, &inner) != 0)
        return pk_fail(err, "monitor 'alloc': %s", inner.message);
    return 0;
}

static int start_sampler(pk_error *err)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sampler.wake, &attr);
    pthread_condattr_destroy(&attr);
    sampler.stopping = false;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to the program's threads */
    int rc = pthread_create(&sampler.thread, NULL, sampler_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return pk_fail(err, "monitor 'alloc': cannot start the sampler thread: %s", strerror(rc));
    pthread_setname_np(sampler.thread, "pikoc-sampler");
    sampler.started = true;
    return 0;
}

static void alloc_close(pk_monitor *m)
{
    (void)m;
    if (pk_interposer_stacks)
        pk_interposer_stacks(0);
    if (!sampler.started)
        return;
    pthread_mutex_lock(&sampler.lock);
    sampler.stopping = true;
    pthread_cond_signal(&sampler.wake);
    pthread_mutex_unlock(&sampler.lock);
    pthread_join(sampler.thread, NULL);
    sampler.started = false;
}

/* The thread is not in a forked child; its descriptor reads the parent. */
static void alloc_after_fork(void)
{
    sampler.started = false;
    pthread_mutex_init(&sampler.lock, NULL);
    if (sampler.statm_fd >= 0)
        close(sampler.statm_fd);
    sampler.statm_fd = -1;
}

/* ---- the monitor ------------------------------------------------------------------ */

static int alloc_open(pk_monitor *m, pk_run_info *run, pk_error *err)
{
    (void)m;
    const char *next = "";
    if (!pk_interposer_status)
        return pk_fail(err, "monitor 'alloc': the allocation interposer is not loaded (run the "
                            "program with pikoc run, which preloads libpikoc-preload.so)");
    if (pk_interposer_status(&next) != 0)
        return pk_fail(err, "monitor 'alloc': malloc does not reach pikoc's interposer (a "
                            "library defining malloc, such as a sanitizer's, comes first)");
    jemalloc_nallocx = (nallocx_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "nallocx");
    if (!strstr(next, "jemalloc") || !jemalloc_nallocx)
        return pk_fail(err,
                       "monitor 'alloc': the allocator behind the interposer is '%s', not "
                       "jemalloc (pikoc run preloads libjemalloc.so.2 after libpikoc-preload.so)",
                       next);
    uint32_t depth;
    if (sample_interval(&sampler.interval_ns, err) != 0 || stack_depth(&depth, err) != 0)
        return -1;
    /* The unwinder's first use allocates and takes locks: here, not on the hot path. */
    pk_interposer_stacks(depth);
    if (sampler.interval_ns) {
        if (start_sampler(err) != 0)
            return -1;
        run->flags |= PK_RECORD_MEMORY;
    }
    run->flags |= PK_RECORD_BLOCK | PK_RECORD_SIZE;
    run->alloc_source = "jemalloc";
    return 0;
}

const pk_monitor_ops pk_monitor_alloc = {
    .name = "alloc",
    .summary = "every allocation call (malloc family, C++ new/delete) with its call site",
    .open = alloc_open,
    .after_fork = alloc_after_fork,
    .close = alloc_close,
    .allocations = true,
};
