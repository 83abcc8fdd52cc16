/*
 * clock.c — choosing the clock and turning raw timestamps into nanoseconds.
 * The TSC is used only when the CPU says it is invariant (CPUID
 * 0x80000007 EDX bit 8) and PIKOC_CLOCK does not ask for "monotonic"
 * ("tsc", the default, asks for the TSC when it is invariant).
 * Calibration pairs TSC reads with CLOCK_MONOTONIC over about 2 ms.
 */
#include "clock.h"
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if PK_HAVE_TSC
#include <cpuid.h>
#endif

bool pk_clock_use_tsc;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Without a TSC, raw times are nanoseconds already: the identity. */
struct pk_clock_scale pk_clock_scale = {.mult = (uint64_t)1 << 32};

#if PK_HAVE_TSC
static bool tsc_usable(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d >> 8) & 1u;
}

/* A (tsc, ns) pair read as close together as the machine allows. */
static void paired_read(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best_gap = UINT64_MAX;
    for (int i = 0; i < 8; i++) {
        uint64_t t0 = __rdtsc();
        uint64_t n = pk_clock_monotonic_ns();
        uint64_t t1 = __rdtsc();
        if (t1 - t0 < best_gap) {
            best_gap = t1 - t0;
            *tsc = t0 + (t1 - t0) / 2;
            *ns = n;
        }
    }
}

static void calibrate(void)
{
    uint64_t tsc0, ns0, tsc1, ns1;
    paired_read(&tsc0, &ns0);
    do
        paired_read(&tsc1, &ns1);
    while (ns1 - ns0 < 2000000u);
    pk_clock_scale.base_tsc = tsc0;
    pk_clock_scale.base_ns = ns0;
    pk_clock_scale.mult = (uint64_t)(((unsigned __int128)(ns1 - ns0) << 32) / (tsc1 - tsc0));
}
#endif

int pk_clock_parse(const char *text, bool *monotonic, pk_error *err)
{
    if (strcmp(text, "tsc") == 0)
        *monotonic = false;
    else if (strcmp(text, "monotonic") == 0)
        *monotonic = true;
    else
        return pk_fail(err, "PIKOC_CLOCK '%s': unknown clock (known: tsc, monotonic)", text);
    return 0;
}

static void choose_clock(void)
{
    const char *want = pk_setting("PIKOC_CLOCK");
    bool monotonic = false;
    pk_error err;
    if (want && pk_clock_parse(want, &monotonic, &err) != 0)
        pk_warn("%s; using the TSC when it is invariant, else CLOCK_MONOTONIC", err.message);
    pk_clock_use_tsc = false;
#if PK_HAVE_TSC
    if (!monotonic && tsc_usable()) {
        calibrate();
        pk_clock_use_tsc = true;
    }
#endif
}

void pk_clock_init(void)
{
    pthread_once(&init_once, choose_clock);
}

const char *pk_clock_name(void)
{
    return pk_clock_use_tsc ? "tsc" : "monotonic";
}
