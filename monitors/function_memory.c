/*
 * function_memory.c — the "function-memory" monitor: entry and exit with
 * time, RSS and VMS (one pread of /proc/self/statm on a descriptor opened
 * once, reopened after fork) and the thread's allocation counters from
 * jemalloc (thread.allocatedp / thread.deallocatedp: one load each) when
 * jemalloc is the allocator. sample() runs on monitored threads.
 */
#include "hot.h"
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UNMEASURED UINT64_MAX

enum { VALUE_RSS_PAGES, VALUE_VMS_PAGES, VALUE_ALLOCATED, VALUE_FREED };

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static int statm_fd = -1;
static uint64_t page_size;
static mallctl_fn jemalloc_mallctl; /* set when jemalloc is the allocator */
static char alloc_source[160];

static PK_TLS const uint64_t *thread_allocated;
static PK_TLS const uint64_t *thread_freed;

/* ---- hot path ----------------------------------------------------------------- */

/* "12345 678 ..." -> the first two numbers; no stdio, no locale. */
PK_HOT_FN static inline __attribute__((always_inline)) void parse_statm(const char *p, const char *end, uint64_t out[2])
{
    for (int i = 0; i < 2; i++) {
        uint64_t v = 0;
        while (p < end && *p == ' ')
            p++;
        if (p == end || *p < '0' || *p > '9') {
            out[0] = out[1] = UNMEASURED;
            return;
        }
        while (p < end && *p >= '0' && *p <= '9')
            v = v * 10 + (uint64_t)(*p++ - '0');
        out[i] = v;
    }
    /* statm is "size resident ...": VMS first, RSS second. */
    uint64_t vms = out[0];
    out[0] = out[1];
    out[1] = vms;
}

/*
 * pread(2) itself, not libc's: in a process of several threads libc's is a
 * cancellation point, which switches the thread's cancellation type on and
 * off around the call (two atomic updates), and a pthread_cancel could
 * unwind through the hook with its guard still set. Inline on x86-64: the
 * hook's code right after a microsecond in the kernel is cold, every line
 * of it a miss.
 */
PK_HOT_FN static inline __attribute__((always_inline)) long read_at_start(int fd, char *buf,
                                                                         size_t size)
{
#ifdef __x86_64__
    long ret;
    register long offset __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_pread64), "D"((long)fd), "S"(buf), "d"(size), "r"(offset)
                     : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(SYS_pread64, fd, buf, size, (off_t)0);
#endif
}

PK_HOT_FN static inline __attribute__((always_inline)) void read_statm_of(int *fd,
                                                                         uint64_t pages[2])
{
    char buf[96];
    if (PK_UNLIKELY(*fd < 0))
        *fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    long n = *fd >= 0 ? read_at_start(*fd, buf, sizeof buf) : -1;
    if (n <= 0) {
        pages[0] = pages[1] = UNMEASURED;
        return;
    }
    parse_statm(buf, buf + n, pages);
    if (pages[1] != UNMEASURED)
        pages[1] -= pk_rings_unused_pages();
}

/* Also the alloc monitor's sampler thread (monitors/alloc.c). */
PK_HOT_FN void pk_read_statm(int *fd, uint64_t pages[2])
{
    read_statm_of(fd, pages);
}

PK_HOT_FN static void read_statm(uint64_t values[PK_SAMPLE_VALUES])
{
    read_statm_of(&statm_fd, &values[VALUE_RSS_PAGES]);
}

/* The first event of a thread asks jemalloc where its counters live. */
PK_HOT_FN static void find_thread_counters(void)
{
    size_t size = sizeof thread_allocated;
    if (jemalloc_mallctl("thread.allocatedp", &thread_allocated, &size, NULL, 0) != 0)
        thread_allocated = NULL;
    size = sizeof thread_freed;
    if (jemalloc_mallctl("thread.deallocatedp", &thread_freed, &size, NULL, 0) != 0)
        thread_freed = NULL;
}

PK_HOT_FN static void function_memory_sample(uint64_t values[PK_SAMPLE_VALUES])
{
    read_statm(values);
    if (jemalloc_mallctl) {
        if (PK_UNLIKELY(!thread_allocated || !thread_freed))
            find_thread_counters();
        values[VALUE_ALLOCATED] = thread_allocated ? *thread_allocated : UNMEASURED;
        values[VALUE_FREED] = thread_freed ? *thread_freed : UNMEASURED;
    } else {
        values[VALUE_ALLOCATED] = values[VALUE_FREED] = UNMEASURED;
    }
}

/* ---- off the hot path ------------------------------------------------------- */

static void function_memory_decode(const uint64_t values[PK_SAMPLE_VALUES], pk_record *rec)
{
    if (values[VALUE_RSS_PAGES] != UNMEASURED) {
        rec->flags |= PK_RECORD_MEMORY;
        rec->rss = values[VALUE_RSS_PAGES] * page_size;
        rec->vms = values[VALUE_VMS_PAGES] * page_size;
    }
    if (values[VALUE_ALLOCATED] != UNMEASURED && values[VALUE_FREED] != UNMEASURED) {
        rec->flags |= PK_RECORD_ALLOC;
        rec->allocated = values[VALUE_ALLOCATED];
        rec->freed = values[VALUE_FREED];
    }
}

/*
 * jemalloc may be loaded without being the allocator (glibc's malloc found
 * first): allocate and see whether jemalloc's counter moved.
 */
static const char *detect_jemalloc(void)
{
    mallctl_fn ctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");
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
    jemalloc_mallctl = ctl;
    return NULL;
}

static int function_memory_open(pk_monitor *m, pk_run_info *run, pk_error *err)
{
    (void)m;
    page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    if (statm_fd < 0)
        statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (statm_fd < 0)
        return pk_fail(err, "monitor 'function-memory': cannot open /proc/self/statm");
    run->flags = PK_RECORD_MEMORY;
    jemalloc_mallctl = NULL;
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
    if (statm_fd >= 0)
        close(statm_fd);
    statm_fd = -1;
}

const pk_monitor_ops pk_monitor_function_memory = {
    .name = "function-memory",
    .summary = "function entry and exit with time, RSS/VMS and allocation deltas",
    .open = function_memory_open,
    .sample = function_memory_sample,
    .decode = function_memory_decode,
    .after_fork = function_memory_after_fork,
};
