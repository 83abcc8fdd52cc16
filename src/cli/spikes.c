/*
 * spikes.c — `pikoc spikes`: the events at which RSS or VMS jumped by at
 * least a threshold since the event before, and where the program was when
 * it grew (the question Pikos' memory plot answers). Read-only.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc spikes [OPTIONS]\n"
    "\n"
    "Walks the events of a run in order and prints each one at which the resident\n"
    "set (rss) or the virtual size (vms) grew by at least the threshold since the\n"
    "previous event (--threshold 0: by anything). function, file and line say\n"
    "where the program was while it grew: before a call, the caller, at the line\n"
    "of that call; before a return, the returning function (file and line are\n"
    "where it starts). type and event_function name the event that saw the jump.\n"
    "\n"
    "options:\n" PK_RUN_HELP
    "  --threshold SIZE     the smallest jump reported, in bytes; binary multiples\n"
    "                       allowed: 4096, 64k, 1.5MiB (default: 1MiB)\n"
    "  -h, --help           this help\n"
    "\n"
    "The run must have been recorded with the function-memory monitor.\n"
    "\n"
    "example:\n"
    "  pikoc spikes --threshold 256k\n";

static int spikes_main(int argc, char **argv);

const pk_cli_command pk_cmd_spikes = {
    .name = "spikes",
    .summary = "where RSS or VMS jumped, with the function and line",
    .help = help,
    .main = spikes_main,
};

enum { OPT_THRESHOLD = PK_RUN_OPTION_COUNT };

static const pk_cli_option options[] = {PK_RUN_OPTIONS, [OPT_THRESHOLD] = {"threshold", 0, "SIZE"}};

static const pk_column columns[] = {
    {"index", PK_COLUMN_INTEGER},       {"time_ns", PK_COLUMN_NS},
    {"thread", PK_COLUMN_INTEGER},      {"rss_growth", PK_COLUMN_BYTES},
    {"vms_growth", PK_COLUMN_BYTES},    {"rss", PK_COLUMN_BYTES},
    {"vms", PK_COLUMN_BYTES},           {"type", PK_COLUMN_TEXT},
    {"event_function", PK_COLUMN_TEXT}, {"function", PK_COLUMN_TEXT},
    {"file", PK_COLUMN_TEXT},           {"line", PK_COLUMN_INTEGER},
};

enum {
    COL_INDEX,
    COL_TIME,
    COL_THREAD,
    COL_RSS,
    COL_VMS,
    COL_TYPE,
    COL_FUNCTION,
    COL_FILE,
    COL_LINE,
    COL_CALLER,
    COL_CALLER_FILE,
    COL_CALLER_LINE,
    COL_ALLOCATED,
    COL_FREED
};

int pk_memory_check(pk_query *q)
{
    pk_run_facts facts;
    int status = pk_query_run_facts(q, &facts);
    if (status == 0 && !(facts.flags & PK_RECORD_MEMORY)) {
        pk_cli_error(q->command->name,
                     "run %lld has no RSS/VMS samples (monitor %s): record it with --monitor "
                     "function-memory",
                     (long long)q->run_id, facts.monitor);
        status = PK_EXIT_USAGE;
    }
    return status;
}

/* Each thread's last counters: jemalloc's are per thread, the heap is their sum. */
typedef struct heap_thread {
    int64_t thread, allocated, freed;
} heap_thread;

typedef struct heap_state {
    heap_thread *threads;
    size_t count, capacity;
    int64_t heap;
} heap_state;

static int64_t heap_update(heap_state *h, int64_t thread, int64_t allocated, int64_t freed)
{
    heap_thread *t = NULL;
    for (size_t i = 0; i < h->count && !t; i++)
        if (h->threads[i].thread == thread)
            t = &h->threads[i];
    if (!t) {
        pk_grow(&h->threads, &h->capacity, h->count, sizeof *h->threads);
        t = &h->threads[h->count++];
        *t = (heap_thread){thread, 0, 0};
    }
    h->heap += (allocated - t->allocated) - (freed - t->freed);
    t->allocated = allocated;
    t->freed = freed;
    return h->heap;
}

static const char *text_or_null(sqlite3_stmt *stmt, int column)
{
    return (const char *)sqlite3_column_text(stmt, column);
}

int pk_memory_walk(pk_query *q, pk_memory_visit visit, void *context)
{
    sqlite3_stmt *stmt = pk_query_prepare(
        q, "SELECT \"index\", time_ns, thread, rss, vms, type, function, file, line, caller,"
           " caller_file, caller_line, allocated, freed FROM pikoc_events WHERE run_id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    heap_state heap = {0};
    int64_t last_rss = 0, last_vms = 0;
    bool first = true;
    int rc, status = 0;
    while (status == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        pk_memory_sample s = {
            .index = sqlite3_column_int64(stmt, COL_INDEX),
            .time_ns = sqlite3_column_int64(stmt, COL_TIME),
            .thread = sqlite3_column_int64(stmt, COL_THREAD),
            .has_rss = sqlite3_column_type(stmt, COL_RSS) != SQLITE_NULL,
            .has_heap = sqlite3_column_type(stmt, COL_ALLOCATED) != SQLITE_NULL,
            .type = text_or_null(stmt, COL_TYPE),
            .event_function = text_or_null(stmt, COL_FUNCTION),
        };
        if (s.has_rss) {
            s.rss = sqlite3_column_int64(stmt, COL_RSS);
            s.vms = sqlite3_column_int64(stmt, COL_VMS);
            s.rss_growth = first ? 0 : s.rss - last_rss;
            s.vms_growth = first ? 0 : s.vms - last_vms;
            last_rss = s.rss;
            last_vms = s.vms;
            first = false;
        }
        if (s.has_heap)
            s.heap = heap_update(&heap, s.thread, sqlite3_column_int64(stmt, COL_ALLOCATED),
                                 sqlite3_column_int64(stmt, COL_FREED));
        /* Before a call the caller was running; before a return, the function itself. */
        bool is_call = s.type && strcmp(s.type, "call") == 0;
        int where = is_call ? COL_CALLER : COL_FUNCTION;
        s.function = text_or_null(stmt, where);
        s.file = text_or_null(stmt, where + 1);
        s.line = sqlite3_column_type(stmt, where + 2) == SQLITE_NULL
                     ? -1
                     : sqlite3_column_int64(stmt, where + 2);
        status = visit(context, &s);
    }
    if (status == 0 && rc != SQLITE_DONE)
        status = pk_query_fail(q);
    sqlite3_finalize(stmt);
    free(heap.threads);
    return status;
}

static void text_cell(pk_table *out, const char *text)
{
    if (text)
        pk_table_text(out, text);
    else
        pk_table_null(out);
}

typedef struct spike_printer {
    pk_table *out;
    int64_t threshold;
} spike_printer;

/* A growth of at least the threshold, and of something. */
static bool jumped(const spike_printer *p, int64_t growth)
{
    return growth > 0 && growth >= p->threshold;
}

static int print_spike(void *context, const pk_memory_sample *s)
{
    spike_printer *p = context;
    if (!s->has_rss || !(jumped(p, s->rss_growth) || jumped(p, s->vms_growth)))
        return 0;
    pk_table_int(p->out, s->index);
    pk_table_int(p->out, s->time_ns);
    pk_table_int(p->out, s->thread);
    pk_table_int(p->out, s->rss_growth);
    pk_table_int(p->out, s->vms_growth);
    pk_table_int(p->out, s->rss);
    pk_table_int(p->out, s->vms);
    text_cell(p->out, s->type);
    text_cell(p->out, s->event_function);
    text_cell(p->out, s->function);
    text_cell(p->out, s->file);
    if (s->line >= 0)
        pk_table_int(p->out, s->line);
    else
        pk_table_null(p->out);
    return 0;
}

static int spikes_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_spikes);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_spikes, options, PK_ARRAY_SIZE(options), argc, argv);
    uint64_t threshold = 1u << 20;
    const pk_cli_value values[] = {PK_VALUE(OPT_THRESHOLD, PK_VALUE_SIZE, &threshold)};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    status = pk_query_open(&q, true);
    if (status != 0)
        return status;
    status = pk_memory_check(&q);
    if (status == 0) {
        spike_printer printer = {
            .out = pk_table_new(q.out, q.format, columns, PK_ARRAY_SIZE(columns)),
            .threshold = threshold > INT64_MAX ? INT64_MAX : (int64_t)threshold,
        };
        status = pk_memory_walk(&q, print_spike, &printer);
        if (pk_table_finish(printer.out) != 0 && status == 0)
            status = pk_query_write_failed(&q, "the output");
    }
    pk_query_close(&q);
    return status;
}
