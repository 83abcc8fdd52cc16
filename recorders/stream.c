/*
 * stream.c — the parts the text and csv recorders share (see stream.h).
 * Runs on the drain thread. Values grow their buffer rather than being cut,
 * so long (e.g. demangled C++) names come out whole.
 */
#include "stream.h"

#include <stdlib.h>
#include <unistd.h>

#define FIRST_VALUE_SIZE 256

pk_stream *pk_stream_of(pk_recorder *r)
{
    return pk_recorder_state(r);
}

int pk_stream_open_path(pk_recorder *r, const char *path, pk_error *err)
{
    return pk_out_open(&pk_stream_of(r)->out, path, err);
}

void pk_stream_attach(pk_recorder *r, int fd)
{
    pk_out_attach(&pk_stream_of(r)->out, fd);
}

/* Fields that only mean something on some records; elsewhere they hold a made-up 0. */
static bool not_applicable(const pk_record *rec, pk_field_id field)
{
    switch (field) {
    case PK_FIELD_DURATION:
    case PK_FIELD_ALLOC_DELTA:
    case PK_FIELD_FREE_DELTA: /* since the call, or a checkpoint's since the last mark */
        return rec->type != PK_EVENT_RETURN && rec->type != PK_EVENT_CHECKPOINT;
    case PK_FIELD_OLD_POINTER:
        return rec->type != PK_EVENT_REALLOC;
    default:
        return false;
    }
}

static void grow(pk_value_buf *v)
{
    size_t size = v->size ? v->size * 2 : FIRST_VALUE_SIZE;
    free(v->text);
    v->text = pk_xcalloc(1, size);
    v->size = size;
}

bool pk_stream_value(pk_stream *s, const pk_record *rec, pk_field_id field)
{
    pk_value_buf *v = &s->value;
    if (!pk_record_has_field(rec, field))
        return false;
    if (not_applicable(rec, field))
        return false;
    if (field == PK_FIELD_TOTAL && rec->type != PK_EVENT_CHECKPOINT)
        return false;
    if (!v->text)
        grow(v);
    /* pk_record_format_field truncates: a full buffer may hold a cut value. */
    for (;;) {
        v->len = pk_record_format_field(rec, field, v->text, v->size);
        if (v->len + 1 < v->size)
            return true;
        grow(v);
    }
}

void pk_stream_default_flush(pk_recorder *r)
{
    if (!r->auto_flush_set)
        r->auto_flush = isatty(pk_stream_of(r)->out.fd);
}

int pk_stream_started(pk_recorder *r, pk_error *err)
{
    return r->auto_flush ? pk_stream_flush(r, err) : pk_stream_status(r, err);
}

int pk_stream_status(pk_recorder *r, pk_error *err)
{
    pk_out *o = &pk_stream_of(r)->out;
    /* pk_out_flush words the kept errno; with an error set it writes nothing. */
    return o->error ? pk_out_flush(o, err) : 0;
}

int pk_stream_flush(pk_recorder *r, pk_error *err)
{
    return pk_out_flush(&pk_stream_of(r)->out, err);
}

int pk_stream_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    (void)totals;
    return pk_stream_flush(r, err);
}

void pk_stream_close(pk_recorder *r)
{
    pk_stream *s = pk_stream_of(r);
    /* In a forked child the buffered bytes are the parent's: never write them twice. */
    if (r->forked)
        pk_out_forget(&s->out);
    /* finish reported any error; this only writes what a caller never flushed. */
    pk_out_close(&s->out, NULL);
    free(s->value.text);
    s->value = (pk_value_buf){0};
}
