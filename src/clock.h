/*
 * clock.h — timestamps for the hot path. On x86-64 with an invariant TSC a
 * timestamp is one rdtsc; elsewhere it is CLOCK_MONOTONIC. Conversion to
 * nanoseconds happens on the drain thread (clock.c), never here.
 */
#ifndef PK_CLOCK_H
#define PK_CLOCK_H

#include <pikoc.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define PK_HAVE_TSC 1
#else
#define PK_HAVE_TSC 0
#endif

extern bool pk_clock_use_tsc;

__attribute__((no_instrument_function, always_inline)) static inline uint64_t
pk_clock_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A raw timestamp: TSC ticks or monotonic ns, whichever pk_clock_init chose. */
__attribute__((no_instrument_function, always_inline)) static inline uint64_t pk_clock_raw(void)
{
#if PK_HAVE_TSC
    if (__builtin_expect(pk_clock_use_tsc, 1))
        return __rdtsc();
#endif
    return pk_clock_monotonic_ns();
}

/* Chooses the clock and calibrates the TSC (once per process; ~2 ms). */
void pk_clock_init(void);
/*
 * PIKOC_CLOCK's value: "tsc" (the TSC when it is invariant) or
 * "monotonic" (CLOCK_MONOTONIC). -1 and err for anything else.
 */
int pk_clock_parse(const char *text, bool *monotonic, pk_error *err);
/* "tsc" or "monotonic". */
const char *pk_clock_name(void);
/* TSC to ns, set by pk_clock_init: ns = base_ns + (tsc - base_tsc) * mult >> 32. */
struct pk_clock_scale {
    uint64_t base_tsc;
    uint64_t base_ns;
    uint64_t mult; /* ns per tick, 32.32 fixed point */
};
extern struct pk_clock_scale pk_clock_scale;

/* The calibration: nanoseconds per raw tick, 32.32 fixed point (1 << 32 for monotonic). */
static inline uint64_t pk_clock_ns_per_tick_q32(void)
{
    return pk_clock_use_tsc ? pk_clock_scale.mult : (uint64_t)1 << 32;
}

/*
 * A raw timestamp as CLOCK_MONOTONIC nanoseconds (inline: the drain converts
 * every event). Without a TSC the scale is the identity (clock.c): no test
 * of the clock's kind.
 */
static inline uint64_t pk_clock_to_ns(uint64_t raw)
{
    const struct pk_clock_scale *c = &pk_clock_scale;
    if (raw >= c->base_tsc)
        return c->base_ns + (uint64_t)(((unsigned __int128)(raw - c->base_tsc) * c->mult) >> 32);
    return c->base_ns - (uint64_t)(((unsigned __int128)(c->base_tsc - raw) * c->mult) >> 32);
}

#endif
