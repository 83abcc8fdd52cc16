/*
 * stderr_capture.h — what a cmocka test's code under check writes to
 * standard error (pikoc's warnings), caught in a temporary file.
 */
#ifndef PK_TEST_STDERR_CAPTURE_H
#define PK_TEST_STDERR_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

typedef struct stderr_capture {
    int saved; /* standard error as it was */
    FILE *file;
} stderr_capture;

/* From here, standard error goes to a temporary file. */
static inline void stderr_capture_start(stderr_capture *c)
{
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    c->file = tmpfile();
    dup2(fileno(c->file), STDERR_FILENO);
}

/* Standard error as it was; out gets what was written meanwhile (cut to size - 1 bytes). */
static inline void stderr_capture_end(stderr_capture *c, char *out, size_t size)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    rewind(c->file);
    size_t got = fread(out, 1, size - 1, c->file);
    out[got] = '\0';
    fclose(c->file);
}

#endif
