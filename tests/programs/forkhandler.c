/*
 * forkhandler.c — a library whose fork handler allocates in the child.
 * Registered as the library loads, before pikoc's own handlers, it runs in
 * a forked child while the child still maps its parent's rings
 * (tests/crash.sh links tests/alloc_forkhandler with it).
 */
#include <pthread.h>
#include <stdlib.h>

static void allocate_in_child(void)
{
    for (int i = 0; i < 100; i++) {
        void *volatile block = malloc(77);
        (void)block;
    }
}

__attribute__((constructor)) static void register_handler(void)
{
    pthread_atfork(NULL, NULL, allocate_in_child);
}
