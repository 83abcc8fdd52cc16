/*
 * unload_second.c — the library tests/programs/crashes.c loads where
 * unload_first.c was (its mode "unload"): the same code, so its call site
 * lies at the same address, but in another file and on another line.
 *
 * (These lines only move the call down the file.)
 */
#include <stdlib.h>

void *module_allocate(void);

void *module_allocate(void)
{
    return malloc(100);
}
