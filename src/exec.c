/*
 * exec.c — libc's exec functions, wrapped in both libraries a program runs
 * with (libpikoc.so and libpikoc-preload.so): a run drained in the
 * program's own process ends 'executed' before the program becomes another,
 * every record made until then recorded (pk_monitor_before_exec); should
 * the exec fail, the program goes on (pk_monitor_exec_failed). Under
 * `pikoc run` the drainer process sees the exec itself and these only pass
 * the call on.
 *
 * The real functions, the next in load order, are found as the library
 * loads: a vfork child (which shares its parent's memory) must not take
 * the loader's lock. execl, execle and execlp gather their arguments and
 * go the way of execv, execve and execvp, as libc's do.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#define PK_EXEC_API __attribute__((visibility("default"), no_instrument_function))

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

static struct {
    execve_fn execve, execvpe;
    execv_fn execv, execvp;
    fexecve_fn fexecve;
    execveat_fn execveat;
} real;

__attribute__((constructor, no_instrument_function)) static void find_real(void)
{
    real.execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real.execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    real.execv = (execv_fn)dlsym(RTLD_NEXT, "execv");
    real.execvp = (execv_fn)dlsym(RTLD_NEXT, "execvp");
    real.fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    real.execveat = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
}

/* An exec function libc does not have (execveat before glibc 2.34). */
PK_NOINSTR static int missing(void)
{
    errno = ENOSYS;
    return -1;
}

/*
 * What an exec returned, rc (it returns only when it failed), with errno
 * as it left it: the monitor m ended for it, when not NULL, hears so.
 */
PK_NOINSTR static int failed(pk_monitor *m, const char *program, int rc)
{
    int error = errno;
    if (m)
        pk_monitor_exec_failed(m, program, error);
    errno = error;
    return rc;
}

PK_EXEC_API int execve(const char *path, char *const argv[], char *const envp[])
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, path, real.execve ? real.execve(path, argv, envp) : missing());
}

PK_EXEC_API int execv(const char *path, char *const argv[])
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, path, real.execv ? real.execv(path, argv) : missing());
}

PK_EXEC_API int execvp(const char *file, char *const argv[])
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, file, real.execvp ? real.execvp(file, argv) : missing());
}

PK_EXEC_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, file, real.execvpe ? real.execvpe(file, argv, envp) : missing());
}

PK_EXEC_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, "a program by its descriptor",
                  real.fexecve ? real.fexecve(fd, argv, envp) : missing());
}

PK_EXEC_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    pk_monitor *m = pk_monitor_before_exec();
    return failed(m, path,
                  real.execveat ? real.execveat(dirfd, path, argv, envp, flags) : missing());
}

/* The arguments from the first (which libc's declarations say is not NULL) up to the NULL. */
PK_NOINSTR static size_t count_arguments(va_list ap)
{
    size_t n = 1;
    while (va_arg(ap, const char *))
        n++;
    return n;
}

/* argv: first, then the n - 1 arguments after it, then NULL. */
PK_NOINSTR static void gather_arguments(char **argv, size_t n, const char *first, va_list ap)
{
    argv[0] = (char *)first;
    for (size_t i = 1; i < n; i++)
        argv[i] = va_arg(ap, char *);
    argv[n] = NULL;
}

PK_EXEC_API int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    size_t n = count_arguments(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg);
    gather_arguments(argv, n, arg, ap);
    va_end(ap);
    return execv(path, argv);
}

PK_EXEC_API int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    size_t n = count_arguments(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg);
    gather_arguments(argv, n, arg, ap);
    va_end(ap);
    return execvp(file, argv);
}

/* The environment comes after the NULL that ends the arguments. */
PK_EXEC_API int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    size_t n = count_arguments(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg);
    gather_arguments(argv, n, arg, ap);
    (void)va_arg(ap, char *); /* the NULL that ends them */
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
