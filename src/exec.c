/*
 * exec.c — libc's exec functions, wrapped in both libraries a program runs
 * with (libpikoc.so and libpikoc-preload.so): a run drained in the
 * program's own process ends 'executed' before the program becomes another,
 * every record made until then recorded (pk_monitor_before_exec). Under
 * `pikoc run` the drainer process sees the exec itself and these only pass
 * the call on.
 *
 * A run ends only for an exec that may succeed: not for a file that is not
 * there, not a regular file, or not executable for the effective ids, nor
 * for a name the p-variants look up in PATH that none of its directories
 * has (shells and Python's os.execvp try every directory in turn). When
 * the check itself fails for another reason (a sandbox that refuses
 * faccessat2), the exec may succeed: the run ends. Should the exec fail all
 * the same, the program goes on unrecorded, and a warning says so
 * (pk_monitor_exec_failed).
 *
 * The real functions, the next in load order, are found as the library
 * loads, or at the first call when a library's constructor executes before
 * this library's. execl, execle and execlp gather their arguments and go
 * the way of execve and execvpe, as libc's do.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PK_EXEC_API __attribute__((visibility("default"), no_instrument_function))

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

static struct {
    execve_fn execve, execvpe;
    fexecve_fn fexecve;
    execveat_fn execveat;
} real;
static _Atomic bool found; /* real is filled in */

__attribute__((constructor, no_instrument_function)) static void find_real(void)
{
    if (atomic_load_explicit(&found, memory_order_acquire))
        return;
    real.execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real.execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    real.fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    real.execveat = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
    atomic_store_explicit(&found, true, memory_order_release);
}

/* An exec function libc does not have (execveat before glibc 2.34). */
PK_NOINSTR static int missing(void)
{
    errno = ENOSYS;
    return -1;
}

/* What an exec is asked to run. */
struct target {
    int dirfd;        /* AT_FDCWD, or execveat's; with `path` "" and AT_EMPTY_PATH, the file */
    const char *path; /* the file, or a name to look up in PATH (`search`) */
    int flags;        /* execveat's: AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW */
    bool search;      /* the p-variants: a name without a slash is looked up in PATH */
};

/* The errors after which an exec cannot run the file; after any other, it may. */
PK_NOINSTR static bool cannot_run(int error)
{
    return error == ENOENT || error == ENOTDIR || error == ELOOP || error == ENAMETOOLONG ||
           error == EACCES;
}

/* Whether an exec may run path from dirfd (flags: execveat's). */
PK_NOINSTR static bool may_run_at(int dirfd, const char *path, int flags)
{
    struct stat st;
    int at = flags & (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (fstatat(dirfd, path, &st, at) != 0)
        return !cannot_run(errno);
    if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
        return false; /* a directory, a link not followed: EACCES, ELOOP */
    if (faccessat(dirfd, path, X_OK, AT_EACCESS | (flags & AT_EMPTY_PATH)) != 0)
        return !cannot_run(errno); /* EINVAL (an older kernel, flags it lacks) included */
    return true;
}

/* Whether execvp may run `file`: itself when it has a slash, else found in PATH. */
PK_NOINSTR static bool may_run_in_path(const char *file)
{
    size_t length = strlen(file);
    if (length == 0 || length > NAME_MAX)
        return false; /* ENOENT, ENAMETOOLONG */
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin"; /* glibc's default */
    for (const char *dir = path;; dir++) {
        const char *end = strchrnul(dir, ':');
        size_t n = (size_t)(end - dir);
        char candidate[PATH_MAX];
        if ((n ? n : 1) + 1 + length >= sizeof candidate)
            return true; /* cannot tell: it may run */
        if (n)
            memcpy(candidate, dir, n);
        else
            candidate[n++] = '.'; /* an empty entry is the current directory */
        candidate[n] = '/';
        memcpy(candidate + n + 1, file, length + 1);
        if (may_run_at(AT_FDCWD, candidate, 0))
            return true;
        if (!*end)
            return false;
        dir = end;
    }
}

/* pk_monitor_before_exec's check: whether the exec asked for may succeed. */
PK_NOINSTR static bool may_run(const void *what)
{
    const struct target *t = what;
    if (t->search && !strchr(t->path, '/'))
        return may_run_in_path(t->path);
    return may_run_at(t->dirfd, t->path, t->flags);
}

/* The run, ended for an exec of t that may succeed; NULL when none ends. */
PK_NOINSTR static pk_monitor *end_for(const struct target *t)
{
    if (!atomic_load_explicit(&found, memory_order_acquire))
        find_real();
    return pk_monitor_before_exec(may_run, t);
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
    pk_monitor *m = end_for(&(struct target){AT_FDCWD, path, 0, false});
    return failed(m, path, real.execve ? real.execve(path, argv, envp) : missing());
}

PK_NOINSTR static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
    pk_monitor *m = end_for(&(struct target){AT_FDCWD, file, 0, true});
    return failed(m, file, real.execvpe ? real.execvpe(file, argv, envp) : missing());
}

PK_EXEC_API int execve(const char *path, char *const argv[], char *const envp[])
{
    return do_execve(path, argv, envp);
}

/* execv and execvp are execve and execvpe with this environment, as in libc. */
PK_EXEC_API int execv(const char *path, char *const argv[])
{
    return do_execve(path, argv, environ);
}

PK_EXEC_API int execvp(const char *file, char *const argv[])
{
    return do_execvpe(file, argv, environ);
}

PK_EXEC_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return do_execvpe(file, argv, envp);
}

PK_EXEC_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    pk_monitor *m = end_for(&(struct target){fd, "", AT_EMPTY_PATH, false});
    return failed(m, "a program by its descriptor",
                  real.fexecve ? real.fexecve(fd, argv, envp) : missing());
}

PK_EXEC_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    pk_monitor *m = end_for(&(struct target){dirfd, path, flags, false});
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
    return do_execvpe(file, argv, environ);
}

/* The environment comes after the NULL that ends the arguments. */
PK_EXEC_API int execle(const char *path, const char *arg, ...)
{
    GATHER_ARGUMENTS(argv, arg, ap);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return do_execve(path, argv, envp);
}
