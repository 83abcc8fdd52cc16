/*
 * unload_two.c — the library tests/programs/crashes.c loads where
 * unload_one.c was (its mode "unload"): the same code and lines, so that
 * its call site lies at the same address and on the same line, in another
 * file: only the file tells them apart.
 *
 */
#include <stdlib.h>

void *module_allocate(void);

void *module_allocate(void)
{
    return malloc(100);
}
