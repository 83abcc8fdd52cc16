/*
 * exec.c — libc's exec functions, wrapped in both libraries a program runs
 * with (libpikoc.so and libpikoc-preload.so): a run drained in the
 * program's own process ends 'executed' before the program becomes another,
 * every record made until then recorded (pk_monitor_before_exec). Under
 * `pikoc run` the drainer process sees the exec itself and these only pass
 * the call on.
 *
 * A run ends only for an exec that can succeed: the file is there and
 * executable (for the effective ids), or, for a name the p-variants look up
 * in PATH, one of its directories has such a file, as libc would find it
 * (shells and Python's os.execvp try every directory in turn). Should the
 * exec fail all the same, the program goes on unrecorded, and a warning says
 * so (pk_monitor_exec_failed).
 *
 * The real functions, the next in load order, are found as the library
 * loads (a vfork child, which shares its parent's memory, should not take
 * the loader's lock), or at the first call when a library's constructor
 * executes before this library's. execl, execle and execlp gather their
 * arguments and go the way of execv, execve and execvp, as libc's do.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PK_EXEC_API __attribute__((visibility("default"), no_instrument_function))

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

static struct {
    bool found;
    execve_fn execve, execvpe;
    execv_fn execv, execvp;
    fexecve_fn fexecve;
    execveat_fn execveat;
} real;

__attribute__((constructor, no_instrument_function)) static void find_real(void)
{
    if (real.found)
        return;
    real.execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real.execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    real.execv = (execv_fn)dlsym(RTLD_NEXT, "execv");
    real.execvp = (execv_fn)dlsym(RTLD_NEXT, "execvp");
    real.fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    real.execveat = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
    real.found = true;
}

/* An exec function libc does not have (execveat before glibc 2.34). */
PK_NOINSTR static int missing(void)
{
    errno = ENOSYS;
    return -1;
}

/* Whether path names a file the effective ids may execute, from dirfd. */
PK_NOINSTR static bool executable_at(int dirfd, const char *path)
{
    return faccessat(dirfd, path, X_OK, AT_EACCESS) == 0;
}

/* Whether execvp would find `file`: itself when it has a slash, else in PATH. */
PK_NOINSTR static bool found_in_path(const char *file)
{
    if (!file || !*file)
        return false;
    if (strchr(file, '/'))
        return executable_at(AT_FDCWD, file);
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin"; /* libc's default */
    size_t length = strlen(file);
    for (const char *dir = path;; dir++) {
        const char *end = strchrnul(dir, ':');
        size_t n = (size_t)(end - dir);
        char candidate[PATH_MAX];
        if (n + 1 + length >= sizeof candidate)
            return true; /* cannot tell: it may run */
        memcpy(candidate, dir, n);
        if (n == 0)
            candidate[n++] = '.'; /* an empty entry is the current directory */
        candidate[n] = '/';
        memcpy(candidate + n + 1, file, length + 1);
        if (executable_at(AT_FDCWD, candidate))
            return true;
        if (!*end)
            return false;
        dir = end;
    }
}

/* The run, ended for an exec that can succeed; NULL otherwise (see the top). */
PK_NOINSTR static pk_monitor *end_for(bool may_run)
{
    if (!real.found)
        find_real();
    return may_run ? pk_monitor_before_exec() : NULL;
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

PK_NOINSTR static int do_execve(const char *path, char *const argv[], char *const envp[])
{
    pk_monitor *m = end_for(executable_at(AT_FDCWD, path));
    return failed(m, path, real.execve ? real.execve(path, argv, envp) : missing());
}

PK_NOINSTR static int do_execvp(const char *file, char *const argv[])
{
    pk_monitor *m = end_for(found_in_path(file));
    return failed(m, file, real.execvp ? real.execvp(file, argv) : missing());
}

PK_EXEC_API int execve(const char *path, char *const argv[], char *const envp[])
{
    return do_execve(path, argv, envp);
}

PK_EXEC_API int execv(const char *path, char *const argv[])
{
    pk_monitor *m = end_for(executable_at(AT_FDCWD, path));
    return failed(m, path, real.execv ? real.execv(path, argv) : missing());
}

PK_EXEC_API int execvp(const char *file, char *const argv[])
{
    return do_execvp(file, argv);
}

PK_EXEC_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    pk_monitor *m = end_for(found_in_path(file));
    return failed(m, file, real.execvpe ? real.execvpe(file, argv, envp) : missing());
}

PK_EXEC_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    pk_monitor *m = end_for(fcntl(fd, F_GETFD) != -1);
    return failed(m, "a program by its descriptor",
                  real.fexecve ? real.fexecve(fd, argv, envp) : missing());
}

PK_EXEC_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    /* An empty path with AT_EMPTY_PATH is dirfd's own file, as fexecve's. */
    bool may_run = !*path && (flags & AT_EMPTY_PATH) ? fcntl(dirfd, F_GETFD) != -1
                                                     : executable_at(dirfd, path);
    pk_monitor *m = end_for(may_run);
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

/*
 * Declares argv, the arguments from `arg` up to the NULL that ends them, on
 * the caller's stack, and leaves ap open after that NULL for va_end.
 */
#define GATHER_ARGUMENTS(argv, arg, ap)                                                            \
    va_list ap;                                                                                    \
    va_start(ap, arg);                                                                             \
    size_t count_ = count_arguments(ap);                                                           \
    va_end(ap);                                                                                    \
    char *argv[count_ + 1];                                                                        \
    va_start(ap, arg);                                                                             \
    gather_arguments(argv, count_, arg, ap);                                                       \
    (void)va_arg(ap, char *)

PK_EXEC_API int execl(const char *path, const char *arg, ...)
{
    GATHER_ARGUMENTS(argv, arg, ap);
    va_end(ap);
    return do_execve(path, argv, environ);
}

PK_EXEC_API int execlp(const char *file, const char *arg, ...)
{
    GATHER_ARGUMENTS(argv, arg, ap);
    va_end(ap);
    return do_execvp(file, argv);
}

/* The environment comes after the NULL that ends the arguments. */
PK_EXEC_API int execle(const char *path, const char *arg, ...)
{
    GATHER_ARGUMENTS(argv, arg, ap);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return do_execve(path, argv, envp);
}
