/*
 * unload_first.c — one of two libraries tests/programs/crashes.c loads,
 * closes and loads again in turn (its mode "unload"): the same code as
 * unload_second.c, so that the loader puts the second where the first was
 * and its call site at the same address, under another file and line.
 */
#include <stdlib.h>

void *module_allocate(void);

void *module_allocate(void)
{
    return malloc(100);
}
