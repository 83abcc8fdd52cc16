/*
 * notmpfile.c — a preload library under which open() refuses O_TMPFILE
 * with EOPNOTSUPP, as a file system without unnamed files does.
 * tests/cli.sh preloads it into pikoc export, whose -o file is then a named
 * temporary file beside its path.
 */
#undef _FILE_OFFSET_BITS /* open is open here, not a redirect to open64 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

static int refuse_tmpfile(const char *symbol, const char *path, int flags, va_list args)
{
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        mode = va_arg(args, mode_t);
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int (*real_open)(const char *, int, ...) =
        (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, symbol);
    return real_open(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    int fd = refuse_tmpfile("open", path, flags, args);
    va_end(args);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    int fd = refuse_tmpfile("open64", path, flags, args);
    va_end(args);
    return fd;
}
