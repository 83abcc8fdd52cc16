/*
 * output.c — a buffered file descriptor for recorders. No stdio: a forked
 * child can forget the parent's buffered bytes, and the first write error is
 * kept (with its errno) for the single report the core makes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pk_out_open(pk_out *o, const char *path, pk_error *err)
{
    memset(o, 0, sizeof *o);
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0)
        return pk_fail(err, "cannot open '%s' for writing: %s", path, strerror(errno));
    o->owns_fd = true;
    return 0;
}

void pk_out_attach(pk_out *o, int fd)
{
    memset(o, 0, sizeof *o);
    o->fd = fd;
    o->owns_fd = false;
}

static void write_all(pk_out *o, const char *data, size_t len)
{
    while (len > 0 && o->error == 0) {
        ssize_t w = write(o->fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            o->error = errno;
            return;
        }
        data += w;
        len -= (size_t)w;
    }
}

static void drain_buffer(pk_out *o)
{
    if (o->used) {
        write_all(o, o->buf, o->used);
        o->used = 0;
    }
}

void pk_out_write(pk_out *o, const char *data, size_t len)
{
    if (o->error)
        return;
    if (len > sizeof o->buf - o->used) {
        drain_buffer(o);
        if (len >= sizeof o->buf) {
            write_all(o, data, len);
            return;
        }
    }
    memcpy(o->buf + o->used, data, len);
    o->used += len;
}

void pk_out_puts(pk_out *o, const char *s)
{
    pk_out_write(o, s, strlen(s));
}

void pk_out_printf(pk_out *o, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        pk_out_write(o, line, (size_t)n);
        return;
    }
    /* Rare: a line longer than the stack buffer. */
    char *big = pk_xcalloc(1, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pk_out_write(o, big, (size_t)n);
    free(big);
}

int pk_out_flush(pk_out *o, pk_error *err)
{
    drain_buffer(o);
    if (o->error)
        return pk_fail(err, "%s", strerror(o->error));
    return 0;
}

int pk_out_close(pk_out *o, pk_error *err)
{
    int rc = pk_out_flush(o, err);
    if (o->owns_fd && o->fd >= 0) {
        if (close(o->fd) != 0 && rc == 0)
            rc = pk_fail(err, "%s", strerror(errno));
    }
    o->fd = -1;
    return rc;
}

void pk_out_forget(pk_out *o)
{
    o->used = 0;
}
