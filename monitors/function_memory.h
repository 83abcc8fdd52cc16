/*
 * function_memory.h — the "function-memory" monitor's sample, inline: the
 * hooks (src/hooks.c) take it in their own body rather than through
 * pk_rt.sample. Its system call comes back with the return-stack predictor
 * full of the kernel's addresses (the return thunk of the SRSO mitigation
 * leaves one behind for every return it makes), so each `ret` after it that
 * was called before it is mispredicted, about 10 ns apiece here: inline,
 * the hook returns once per event, not twice. The parse is branch-free for
 * the same reason (the predictors are cold after a microsecond in the
 * kernel).
 */
#ifndef PK_FUNCTION_MEMORY_H
#define PK_FUNCTION_MEMORY_H

#include "hot.h"
#include "internal.h"

#include <string.h>
#include <sys/syscall.h>

#define PK_UNMEASURED UINT64_MAX

enum { PK_VALUE_RSS_PAGES, PK_VALUE_VMS_PAGES, PK_VALUE_ALLOCATED, PK_VALUE_FREED };

typedef int (*pk_mallctl_fn)(const char *, void *, size_t *, void *, size_t);

/* Set by the monitor's open (monitors/function_memory.c), read by its sample. */
struct pk_memory_source {
    int statm_fd;                  /* /proc/self/statm, -1 until opened (and after fork) */
    pk_mallctl_fn jemalloc_mallctl; /* set when jemalloc is the allocator */
};
PK_HIDDEN extern struct pk_memory_source pk_memory_source;

/* Where jemalloc keeps this thread's counters (asked at its first event). */
PK_HIDDEN extern PK_TLS const uint64_t *pk_thread_allocated;
PK_HIDDEN extern PK_TLS const uint64_t *pk_thread_freed;

/* The sample out of line: the monitor's ops, and what the hooks compare pk_rt.sample with. */
PK_HIDDEN void pk_function_memory_sample(uint64_t values[PK_SAMPLE_VALUES]);
/* Opens /proc/self/statm (the first event after a fork); -1 when it cannot. */
PK_HIDDEN int pk_statm_open(int *fd);
PK_HIDDEN void pk_find_thread_counters(void);

/* The bytes of w that are not ASCII digits, as their high bits. Only the
 * lowest such byte is exact (a carry or borrow runs into the ones above),
 * and only the lowest is looked at. */
PK_HOT_FN static inline uint64_t pk_non_digits(uint64_t w)
{
    return ((w + 0x4646464646464646ull) | (w - 0x3030303030303030ull)) & 0x8080808080808080ull;
}

/* Eight digit values, one per byte in text order (byte 0 the first) -> the number. */
PK_HOT_FN static inline uint64_t pk_eight_digits(uint64_t d)
{
    d = d * 10 + (d >> 8);
    return (((d & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
            (((d >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
           32;
}

/*
 * The decimal number at *p (one to sixteen digits, which holds every page
 * count) followed by a space; *p moves past the space. PK_UNMEASURED for
 * anything else. Reads 17 bytes from *p, which the caller's buffer has.
 * The sixteen bytes are one 128-bit number: shifted so that the digits end
 * at its top, zeros before them, they are two groups of eight.
 */
PK_HOT_FN static inline __attribute__((always_inline)) uint64_t pk_statm_number(const char **p)
{
    uint64_t w[2];
    memcpy(w, *p, sizeof w);
    uint64_t ends[2] = {pk_non_digits(w[0]), pk_non_digits(w[1])};
    unsigned count = ends[0]   ? (unsigned)__builtin_ctzll(ends[0]) / 8
                     : ends[1] ? 8 + (unsigned)__builtin_ctzll(ends[1]) / 8
                               : 16;
    const char *end = *p + count;
    if (PK_UNLIKELY(count == 0 || *end != ' '))
        return PK_UNMEASURED;
    *p = end + 1;
    const uint64_t zeros = 0x3030303030303030ull; /* per word: no borrow between them */
    unsigned __int128 digits = (unsigned __int128)(w[1] - zeros) << 64 | (w[0] - zeros);
    digits <<= 8 * (16 - count);
    return pk_eight_digits((uint64_t)digits) * 100000000 + pk_eight_digits((uint64_t)(digits >> 64));
}

/* "VMS RSS ..." (statm's first two numbers, in pages) -> pages[0] RSS, pages[1] VMS. */
PK_HOT_FN static inline __attribute__((always_inline)) void pk_parse_statm(const char *text, uint64_t pages[2])
{
    const char *p = text;
    uint64_t vms = pk_statm_number(&p);
    uint64_t rss = vms != PK_UNMEASURED ? pk_statm_number(&p) : PK_UNMEASURED;
    bool ok = rss != PK_UNMEASURED;
    pages[0] = rss;
    pages[1] = ok ? vms : PK_UNMEASURED;
}

/*
 * pread(2) itself, not libc's: in a process of several threads libc's is a
 * cancellation point, which switches the thread's cancellation type on and
 * off around the call (two atomic updates), and a pthread_cancel could
 * unwind through the hook with its guard still set.
 */
PK_HOT_FN static inline __attribute__((always_inline)) long pk_read_at_start(int fd, char *buf,
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

/* The size of a statm read: both numbers fit (sixteen digits each), and the
 * parse may read seventeen bytes from the second. */
#define PK_STATM_READ 48

/*
 * RSS and VMS in pages from /proc/self/statm, opened into *fd when it is
 * -1. The rings' unused pages are read before the system call, so that
 * after it only the parse is left.
 */
PK_HOT_FN static inline __attribute__((always_inline)) void pk_read_statm_inline(int *fd,
                                                                                uint64_t pages[2])
{
    char buf[PK_STATM_READ + 16] = {0}; /* zeros after the text: no digits, no spaces */
    uint64_t unused = pk_rings_unused_pages();
    long n = PK_LIKELY(*fd >= 0) || pk_statm_open(fd) >= 0
                 ? pk_read_at_start(*fd, buf, PK_STATM_READ)
                 : -1;
    if (PK_UNLIKELY(n <= 0)) {
        pages[0] = pages[1] = PK_UNMEASURED;
        return;
    }
    pk_parse_statm(buf, pages);
    if (pages[1] != PK_UNMEASURED)
        pages[1] -= unused;
}

/*
 * What the monitor records at each event: jemalloc's two counters, then RSS
 * and VMS. The counters are this thread's and it allocates nothing in
 * between: read first, they are what they would be after the read.
 */
PK_HOT_FN static inline __attribute__((always_inline)) void
pk_memory_sample(uint64_t values[PK_SAMPLE_VALUES])
{
    if (pk_memory_source.jemalloc_mallctl) {
        if (PK_UNLIKELY(!pk_thread_allocated || !pk_thread_freed))
            pk_find_thread_counters();
        values[PK_VALUE_ALLOCATED] = pk_thread_allocated ? *pk_thread_allocated : PK_UNMEASURED;
        values[PK_VALUE_FREED] = pk_thread_freed ? *pk_thread_freed : PK_UNMEASURED;
    } else {
        values[PK_VALUE_ALLOCATED] = values[PK_VALUE_FREED] = PK_UNMEASURED;
    }
    pk_read_statm_inline(&pk_memory_source.statm_fd, &values[PK_VALUE_RSS_PAGES]);
}

#endif
