/*
 * csv.c — the csv:PATH recorder (RFC 4180): one header row naming every
 * record field in pk_field_id order, then one row per record, CRLF line
 * ends. An unmeasured value is an empty cell, never a made-up 0. Drain thread
 * only; no stdio.
 */
#include "stream.h"

#include <string.h>

typedef struct csv_state {
    pk_stream stream; /* first: the shared stream callbacks cast to it */
    bool header_written;
} csv_state;

static int csv_open(pk_recorder *r, const char *arg, pk_error *err)
{
    return pk_stream_open_path(r, arg, err);
}

static bool needs_quotes(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] == ',' || text[i] == '"' || text[i] == '\r' || text[i] == '\n')
            return true;
    return false;
}

/* Quoted cells double every embedded quote (RFC 4180, rule 7). */
static void put_cell(pk_out *o, const char *text, size_t len)
{
    if (!needs_quotes(text, len)) {
        pk_out_write(o, text, len);
        return;
    }
    pk_out_write(o, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            pk_out_write(o, "\"", 1);
        pk_out_write(o, &text[i], 1);
    }
    pk_out_write(o, "\"", 1);
}

/* The header only once: a second header row would break the file for readers. */
static int csv_start(pk_recorder *r, const pk_run_info *run, pk_error *err)
{
    csv_state *s = pk_recorder_state(r);
    pk_stream_default_flush(r);
    if (!s->header_written) {
        for (int f = 0; f < PK_FIELD_COUNT; f++) {
            const char *name = pk_field_name((pk_field_id)f);
            if (f > 0)
                pk_out_write(&s->stream.out, ",", 1);
            put_cell(&s->stream.out, name, strlen(name));
        }
        pk_out_write(&s->stream.out, "\r\n", 2);
        s->header_written = true;
    }
    return pk_stream_started(r, err);
}

static int csv_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    csv_state *s = pk_recorder_state(r);
    for (int f = 0; f < PK_FIELD_COUNT; f++) {
        if (f > 0)
            pk_out_write(&s->stream.out, ",", 1);
        if (pk_stream_value(&s->stream, rec, (pk_field_id)f))
            put_cell(&s->stream.out, s->stream.value.text, s->stream.value.len);
    }
    pk_out_write(&s->stream.out, "\r\n", 2);
    return pk_stream_status(r, err);
}

const pk_recorder_ops pk_recorder_csv = {
    .name = "csv",
    .usage = "csv:PATH",
    .needs_arg = true,
    .size = sizeof(csv_state),
    .open = csv_open,
    .start = csv_start,
    .write = csv_write,
    .flush = pk_stream_flush,
    .finish = pk_stream_finish,
    .close = pk_stream_close,
};
