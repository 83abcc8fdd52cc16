/*
 * zone_module.c — a library tests/programs/zones.c loads with dlopen once
 * its run has started: its zone descriptor is in no module the drainer
 * process saw when it was forked, so the drainer reads it in the program.
 */
#include <pikoc.h>

int module_zone(int x);

int module_zone(int x)
{
    PK_ZONE("late zone");
    return x * 2;
}
