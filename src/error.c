/*
 * error.c — error messages and allocation that must not fail.
 * Messages go to the caller's pk_error; warnings go to stderr through
 * write(2) so they never touch the program's stdio buffers.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pk_fail(pk_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void pk_warn(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "pikoc: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* Out of memory off the hot path is not recoverable in a monitor: say so and stop. */
static void out_of_memory(size_t bytes)
{
    pk_warn("out of memory (%zu bytes)", bytes);
    abort();
}

void *pk_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void pk_grow(void *array, size_t *capacity, size_t count, size_t element_size)
{
    if (count < *capacity)
        return;
    size_t grown_capacity = *capacity ? *capacity * 2 : 8;
    void **slot = array;
    void *grown = realloc(*slot, grown_capacity * element_size);
    if (!grown)
        out_of_memory(grown_capacity * element_size);
    *slot = grown;
    *capacity = grown_capacity;
}

char *pk_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        out_of_memory(strlen(s) + 1);
    return p;
}

char *pk_xdirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return pk_xstrdup(".");
    char *dir = pk_xstrdup(path);
    dir[slash - path + (slash == path)] = '\0'; /* "/x" is in "/" */
    return dir;
}
