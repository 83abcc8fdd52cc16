/*
 * stream.h — what the streaming recorders (text and csv) share: a buffered
 * output, the value of one column, the auto-flush default for a terminal, and
 * the flush/finish/close callbacks. Drain thread only.
 */
#ifndef PK_RECORDERS_STREAM_H
#define PK_RECORDERS_STREAM_H

#include "internal.h"

/* A growable buffer for one formatted value, reused from record to record. */
typedef struct pk_value_buf {
    char *text;
    size_t size;
    size_t len;
} pk_value_buf;

/* Must be the first member of a streaming recorder's state. */
typedef struct pk_stream {
    pk_out out;
    pk_value_buf value;
} pk_stream;

PK_HIDDEN pk_stream *pk_stream_of(pk_recorder *r);
/* Opens PATH (truncating); the error names the path and says why. */
PK_HIDDEN int pk_stream_open_path(pk_recorder *r, const char *path, pk_error *err);
/* Writes to fd 1 or 2, which is never closed. */
PK_HIDDEN void pk_stream_attach(pk_recorder *r, int fd);

/*
 * Formats the field into s->value and returns true, or returns false when
 * the record has no value to show: the field was not measured, or it counts
 * "since the matching call" (duration, alloc and free deltas) and the record
 * is the call itself. Text shows "-" for that, CSV an empty cell.
 */
PK_HIDDEN bool pk_stream_value(pk_stream *s, const pk_record *rec, pk_field_id field);

/* At start: unless the user chose, flush every record when writing to a terminal. */
PK_HIDDEN void pk_stream_default_flush(pk_recorder *r);
/* After the header: flushes when auto-flushing, so a terminal shows it at once. */
PK_HIDDEN int pk_stream_started(pk_recorder *r, pk_error *err);
/* After a write: 0, or -1 with the reason the output failed. */
PK_HIDDEN int pk_stream_status(pk_recorder *r, pk_error *err);

PK_HIDDEN int pk_stream_flush(pk_recorder *r, pk_error *err);
PK_HIDDEN int pk_stream_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err);
PK_HIDDEN void pk_stream_close(pk_recorder *r);

#endif
