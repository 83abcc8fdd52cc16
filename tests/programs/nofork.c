/*
 * nofork.c — a preload library under which fork fails (EAGAIN, as when
 * RLIMIT_NPROC is reached) in every process forked from the one that loaded
 * it: a program's first fork succeeds, its child's fails. tests/crash.sh
 * preloads it so that the drainer's second fork fails.
 */
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

/* The process that loaded it makes the first call: its children inherit this. */
static pid_t loaded_by;

pid_t fork(void)
{
    if (!loaded_by)
        loaded_by = getpid();
    if (getpid() != loaded_by) {
        errno = EAGAIN;
        return -1;
    }
    pid_t (*real_fork)(void) = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    return real_fork();
}
