/*
 * zone_module.c — a library tests/programs/zones.c loads with dlopen once
 * its run has started: its zone descriptor and its profiler's site are in
 * no module the drainer process saw when it was forked, so the drainer
 * reads them in the program.
 */
#include <pikoc.h>

int module_zone(int x);

int module_zone(int x)
{
    PK_ZONE("late zone");
    PK_PROFILER(span, "late span");
    return x * 2;
}
