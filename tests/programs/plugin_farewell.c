/*
 * plugin_farewell.c — an instrumented library whose code runs only as it
 * is closed: its destructor calls a function and allocates. By the time
 * the drain takes those events dlclose has unmapped the library, and
 * nothing of it was met before: its names must still be found. It is also
 * plugin_host.so's dependency, closed with it.
 */
#include <stdlib.h>

__attribute__((noinline)) static int farewell_twice(int x)
{
    return 2 * x;
}

__attribute__((destructor)) static void farewell(void)
{
    char *volatile block = malloc(40);
    block[0] = (char)farewell_twice(21);
    free(block);
}

/* What plugin_host.so names of it, so that the linker keeps it as a dependency. */
int plugin_farewell_present(void);

int plugin_farewell_present(void)
{
    return 1;
}
