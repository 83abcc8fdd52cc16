/*
 * text.c — the stdout, stderr and text:PATH recorders: Pikos-style aligned
 * columns, a header line, a rule of dashes, then one line per record.
 * Records stream, so column widths are fixed: a longer value pushes the rest
 * of its line right, still one space apart. Drain thread only; no stdio.
 */
#include "stream.h"

#include <string.h>
#include <unistd.h>

/*
 * Every column in display order with its width. A run shows those its
 * records can carry (pk_field_desc's needs against the run's flags). The file
 * comes last and unpadded, after the line it belongs to.
 */
typedef struct text_column {
    pk_field_id field;
    int width;
} text_column;

static const text_column all_columns[] = {
    {PK_FIELD_INDEX, 8},        {PK_FIELD_TYPE, 10},        {PK_FIELD_FUNCTION, 30},
    {PK_FIELD_LABEL, 20},       {PK_FIELD_DEPTH, 5},        {PK_FIELD_THREAD, 7},
    {PK_FIELD_TIME, 13},        {PK_FIELD_DURATION, 12},    {PK_FIELD_RSS, 11},
    {PK_FIELD_VMS, 13},         {PK_FIELD_ALLOCATED, 12},   {PK_FIELD_FREED, 12},
    {PK_FIELD_ALLOC_DELTA, 11}, {PK_FIELD_FREE_DELTA, 11},  {PK_FIELD_ALLOC_FUNCTION, 16},
    {PK_FIELD_POINTER, 14},     {PK_FIELD_OLD_POINTER, 14}, {PK_FIELD_SIZE, 10},
    {PK_FIELD_USABLE_SIZE, 11}, {PK_FIELD_CALLER, 20},      {PK_FIELD_CALLER_LINE, 11},
    {PK_FIELD_LINE, 6},         {PK_FIELD_FILE, 0},
};

#define MAX_COLUMNS PK_ARRAY_SIZE(all_columns)

typedef struct text_state {
    pk_stream stream; /* first: the shared stream callbacks cast to it */
    const text_column *columns[MAX_COLUMNS];
    size_t count;
} text_state;

static void choose_columns(text_state *s, unsigned run_flags)
{
    s->count = 0;
    for (size_t i = 0; i < MAX_COLUMNS; i++) {
        unsigned needs = pk_field_desc_of(all_columns[i].field)->needs;
        if ((run_flags & needs) == needs)
            s->columns[s->count++] = &all_columns[i];
    }
}

/* Numbers line up on the right, names on the left. */
static bool is_number(pk_field_id field)
{
    pk_field_kind kind = pk_field_desc_of(field)->kind;
    return kind == PK_KIND_UINT || kind == PK_KIND_ADDRESS;
}

static void put_cell(pk_out *o, const text_column *c, const char *text, bool last)
{
    if (last)
        pk_out_printf(o, "%s\n", text);
    else if (is_number(c->field))
        pk_out_printf(o, "%*s ", c->width, text);
    else
        pk_out_printf(o, "%-*s ", c->width, text);
}

static size_t header_length(const text_state *s)
{
    size_t len = 0;
    for (size_t i = 0; i < s->count; i++) {
        size_t name = strlen(pk_field_name(s->columns[i]->field));
        size_t width = (size_t)s->columns[i]->width;
        bool last = i + 1 == s->count;
        len += last ? name : (name > width ? name : width) + 1;
    }
    return len;
}

static void put_rule(pk_out *o, size_t len)
{
    static const char dashes[] = "----------------------------------------";
    while (len > 0) {
        size_t n = len < sizeof dashes - 1 ? len : sizeof dashes - 1;
        pk_out_write(o, dashes, n);
        len -= n;
    }
    pk_out_write(o, "\n", 1);
}

static void put_header(text_state *s)
{
    pk_out *o = &s->stream.out;
    for (size_t i = 0; i < s->count; i++)
        put_cell(o, s->columns[i], pk_field_name(s->columns[i]->field), i + 1 == s->count);
    put_rule(o, header_length(s));
}

/* Until start names the run's measures, columns are those of a run with none,
 * so a record written before start still prints. */
static int text_open_path(pk_recorder *r, const char *arg, pk_error *err)
{
    choose_columns(pk_recorder_state(r), 0);
    return pk_stream_open_path(r, arg, err);
}

static int stdout_open(pk_recorder *r, const char *arg, pk_error *err)
{
    choose_columns(pk_recorder_state(r), 0);
    pk_stream_attach(r, STDOUT_FILENO);
    return 0;
}

static int stderr_open(pk_recorder *r, const char *arg, pk_error *err)
{
    choose_columns(pk_recorder_state(r), 0);
    pk_stream_attach(r, STDERR_FILENO);
    return 0;
}

/* Each start prints a header: a new run may carry other columns. */
static int text_start(pk_recorder *r, const pk_run_info *run, pk_error *err)
{
    text_state *s = pk_recorder_state(r);
    pk_stream_default_flush(r);
    choose_columns(s, run->flags);
    put_header(s);
    return pk_stream_started(r, err);
}

/* An unmeasured or empty value shows as "-" so every column holds a word. */
static int text_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    text_state *s = pk_recorder_state(r);
    for (size_t i = 0; i < s->count; i++) {
        const text_column *c = s->columns[i];
        bool shown = pk_stream_value(&s->stream, rec, c->field) && s->stream.value.len > 0;
        put_cell(&s->stream.out, c, shown ? s->stream.value.text : "-", i + 1 == s->count);
    }
    return pk_stream_status(r, err);
}

#define TEXT_RECORDER(kind, spec_form, takes_path, open_fn)                                        \
    {                                                                                              \
        .name = kind, .usage = spec_form, .needs_arg = takes_path, .size = sizeof(text_state),     \
        .open = open_fn, .start = text_start, .write = text_write, .flush = pk_stream_flush,       \
        .finish = pk_stream_finish, .close = pk_stream_close,                                      \
    }

const pk_recorder_ops pk_recorder_stdout = TEXT_RECORDER("stdout", "stdout", false, stdout_open);
const pk_recorder_ops pk_recorder_stderr = TEXT_RECORDER("stderr", "stderr", false, stderr_open);
const pk_recorder_ops pk_recorder_text = TEXT_RECORDER("text", "text:PATH", true, text_open_path);
