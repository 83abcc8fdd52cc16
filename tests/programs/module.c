/*
 * module.c — a library tests/programs/crashes.c loads with dlopen once its
 * run has started, so that its allocation site is in no module the drainer
 * process saw when it was forked.
 */
#include <stdlib.h>

void *module_allocate(void);

void *module_allocate(void)
{
    return malloc(100);
}
