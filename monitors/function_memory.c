/*
 * function_memory.c — the "function-memory" monitor: entry and exit with
 * time, RSS and VMS (one pread of /proc/self/statm on a descriptor opened
 * once, reopened after fork) and the thread's allocation counters from
 * jemalloc (thread.allocatedp / thread.deallocatedp: one load each) when
 * jemalloc is the allocator. sample() runs on monitored threads.
 */
#include "function_memory.h"
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <unistd.h>

struct pk_memory_source pk_memory_source = {.statm_fd = -1};
PK_TLS const uint64_t *pk_thread_allocated;
PK_TLS const uint64_t *pk_thread_freed;

static uint64_t page_size;
static char alloc_source[160];

/* ---- hot path (the rest is inline in function_memory.h) ----------------------- */

PK_HOT_FN int pk_statm_open(int *fd)
{
    *fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    return *fd;
}

/* Also the alloc monitor's sampler thread (monitors/alloc.c). */
PK_HOT_FN void pk_read_statm(int *fd, uint64_t pages[2])
{
    pk_read_statm_inline(fd, pages);
}

/* The first event of a thread asks jemalloc where its counters live. */
PK_HOT_FN void pk_find_thread_counters(void)
{
    size_t size = sizeof pk_thread_allocated;
    pk_mallctl_fn ctl = pk_memory_source.jemalloc_mallctl;
    if (ctl("thread.allocatedp", &pk_thread_allocated, &size, NULL, 0) != 0)
        pk_thread_allocated = NULL;
    size = sizeof pk_thread_freed;
    if (ctl("thread.deallocatedp", &pk_thread_freed, &size, NULL, 0) != 0)
        pk_thread_freed = NULL;
}

PK_HOT_FN void pk_function_memory_sample(uint64_t values[PK_SAMPLE_VALUES])
{
    pk_memory_sample(values);
}

/* ---- off the hot path ------------------------------------------------------- */

static void function_memory_decode(const uint64_t values[PK_SAMPLE_VALUES], pk_record *rec)
{
    if (values[PK_VALUE_RSS_PAGES] != PK_UNMEASURED) {
        rec->flags |= PK_RECORD_MEMORY;
        rec->rss = values[PK_VALUE_RSS_PAGES] * page_size;
        rec->vms = values[PK_VALUE_VMS_PAGES] * page_size;
    }
    if (values[PK_VALUE_ALLOCATED] != PK_UNMEASURED && values[PK_VALUE_FREED] != PK_UNMEASURED) {
        rec->flags |= PK_RECORD_ALLOC;
        rec->allocated = values[PK_VALUE_ALLOCATED];
        rec->freed = values[PK_VALUE_FREED];
    }
}

/*
 * jemalloc may be loaded without being the allocator (glibc's malloc found
 * first): allocate and see whether jemalloc's counter moved.
 */
static const char *detect_jemalloc(void)
{
    pk_mallctl_fn ctl = (pk_mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");
    if (!ctl)
        return "unavailable: jemalloc is not loaded (link with -ljemalloc or use pikoc run)";
    const uint64_t *allocated = NULL;
    size_t size = sizeof allocated;
    if (ctl("thread.allocatedp", &allocated, &size, NULL, 0) != 0 || !allocated)
        return "unavailable: jemalloc was built without thread statistics";
    /* Volatile reads: the compiler assumes malloc writes no memory it can see, and
     * would otherwise reuse the first read for the second. */
    const volatile uint64_t *counter = allocated;
    uint64_t before = *counter;
    void *volatile probe = malloc(4096);
    uint64_t after = *counter;
    free(probe);
    if (after - before < 4096)
        return "unavailable: jemalloc is loaded but is not the allocator (malloc comes from "
               "another library)";
    pk_memory_source.jemalloc_mallctl = ctl;
    return NULL;
}

static int function_memory_open(pk_monitor *m, pk_run_info *run, pk_error *err)
{
    (void)m;
    page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    if (pk_memory_source.statm_fd < 0 && pk_statm_open(&pk_memory_source.statm_fd) < 0)
        return pk_fail(err, "monitor 'function-memory': cannot open /proc/self/statm");
    run->flags = PK_RECORD_MEMORY;
    pk_memory_source.jemalloc_mallctl = NULL;
    const char *why = detect_jemalloc();
    if (why) {
        snprintf(alloc_source, sizeof alloc_source, "%s", why);
        pk_warn("allocation counters %s", why);
    } else {
        snprintf(alloc_source, sizeof alloc_source, "jemalloc");
        run->flags |= PK_RECORD_ALLOC;
    }
    run->alloc_source = alloc_source;
    return 0;
}

static void function_memory_after_fork(void)
{
    /* The child's /proc/self is another process: reopen on its next event. */
    if (pk_memory_source.statm_fd >= 0)
        close(pk_memory_source.statm_fd);
    pk_memory_source.statm_fd = -1;
}

const pk_monitor_ops pk_monitor_function_memory = {
    .name = "function-memory",
    .summary = "function entry and exit with time, RSS/VMS and allocation deltas",
    .open = function_memory_open,
    .sample = pk_function_memory_sample,
    .decode = function_memory_decode,
    .after_fork = function_memory_after_fork,
};
