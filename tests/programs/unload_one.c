/*
 * unload_one.c — one of two libraries tests/programs/crashes.c loads,
 * closes and loads again in turn (its mode "unload"): the same code and
 * lines as unload_two.c, so that the loader puts the other where this one
 * was, with its call site at the same address, on the same line, in
 * another file.
 */
#include <stdlib.h>

void *module_allocate(void);

void *module_allocate(void)
{
    return malloc(100);
}
