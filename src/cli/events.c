/*
 * events.c — `pikoc events`: the Pikos-style record table of a run, decoded
 * from its event batches by the pikoc_events virtual table, optionally
 * narrowed to a function, an event type or a thread. `pikoc export --format
 * csv` prints the same rows. Read-only.
 */
#include "cli.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

static const char help[] =
    "usage: pikoc events [OPTIONS]\n"
    "\n"
    "Prints the events of a run that the recorder's filters kept, in the order\n"
    "they were recorded: index, type (call, return or checkpoint), function,\n"
    "depth, thread, time_ns since the start of the run, duration_ns on returns,\n"
    "rss and vms, the thread's allocated and freed bytes and, on returns,\n"
    "alloc_delta and free_delta since the call; then the caller with the line of\n"
    "the call, and the function's own line and file. A checkpoint (a profiler's\n"
    "mark) names its profiler as the function and adds its label; its\n"
    "duration_ns, alloc_delta and free_delta count since the previous mark, and\n"
    "total_ns since the profiler started. The table leaves out what the run did\n"
    "not measure; CSV and JSON always carry every field (empty or null).\n"
    "\n"
    "options:\n" PK_RUN_HELP
    "  --function NAME      only this function's events (a glob: 'parse_*')\n"
    "  --type TYPE          only one type of event (call, return, checkpoint)\n"
    "  --thread TID         only this thread's events (a kernel thread id)\n"
    "  --limit N            the first N events (default 0: all)\n"
    "  -h, --help           this help\n"
    "\n"
    "example:\n"
    "  pikoc events --function compute --type return --format csv\n";

static int events_main(int argc, char **argv);

const pk_cli_command pk_cmd_events = {
    .name = "events",
    .summary = "the record table: every event, filterable",
    .help = help,
    .main = events_main,
};

enum { OPT_FUNCTION = PK_RUN_OPTION_COUNT, OPT_TYPE, OPT_THREAD, OPT_LIMIT };

static const pk_cli_option options[] = {
    PK_RUN_OPTIONS,
    [OPT_FUNCTION] = {"function", 0, "NAME"},
    [OPT_TYPE] = {"type", 0, "TYPE"},
    [OPT_THREAD] = {"thread", 0, "TID"},
    [OPT_LIMIT] = {"limit", 0, "N"},
};

/* needs: the run flags (pk_record_flags) a column needs to hold values;
 * PK_RECORD_SPAN: the run has checkpoints. */

static const struct {
    pk_column column;
    unsigned needs;
} event_columns[] = {
    {{"index", PK_COLUMN_INTEGER}, 0},
    {{"type", PK_COLUMN_TEXT}, 0},
    {{"function", PK_COLUMN_TEXT}, 0},
    {{"depth", PK_COLUMN_INTEGER}, 0},
    {{"thread", PK_COLUMN_INTEGER}, 0},
    {{"time_ns", PK_COLUMN_INTEGER}, 0},
    {{"duration_ns", PK_COLUMN_INTEGER}, 0},
    {{"rss", PK_COLUMN_INTEGER}, PK_RECORD_MEMORY},
    {{"vms", PK_COLUMN_INTEGER}, PK_RECORD_MEMORY},
    {{"allocated", PK_COLUMN_INTEGER}, PK_RECORD_ALLOC},
    {{"freed", PK_COLUMN_INTEGER}, PK_RECORD_ALLOC},
    {{"alloc_delta", PK_COLUMN_INTEGER}, PK_RECORD_ALLOC},
    {{"free_delta", PK_COLUMN_INTEGER}, PK_RECORD_ALLOC},
    {{"caller", PK_COLUMN_TEXT}, 0},
    {{"caller_line", PK_COLUMN_INTEGER}, 0},
    {{"caller_file", PK_COLUMN_TEXT}, 0},
    {{"line", PK_COLUMN_INTEGER}, 0},
    {{"file", PK_COLUMN_TEXT}, 0},
    /* Last, so that scripts reading columns by position see the same ones. */
    {{"label", PK_COLUMN_TEXT}, PK_RECORD_SPAN},
    {{"total_ns", PK_COLUMN_INTEGER}, PK_RECORD_SPAN},
};

#define EVENT_COLUMNS PK_ARRAY_SIZE(event_columns)

/* Whether the run has checkpoints (a version-1 file has no such table); as pk_query_run_has. */
static int run_has_checkpoints(pk_query *q, bool *found)
{
    *found = false;
    if (q->version < PK_STORE_SPANS_VERSION)
        return 0;
    return pk_query_run_has(q, "SELECT 1 FROM checkpoints WHERE run_id = ? LIMIT 1", found);
}

/*
 * Calls and returns come from the event batches; checkpoints, from their own
 * table (with their profiler's file and line), merged in index order.
 */
static const char events_only[] =
    "(SELECT *, NULL AS label, NULL AS total_ns FROM pikoc_events WHERE run_id = :run)";
static const char events_and_checkpoints[] =
    "(SELECT \"index\", type, function, depth, thread, time_ns, duration_ns, rss, vms, "
    "allocated, freed, alloc_delta, free_delta, caller, caller_line, caller_file, line, file, "
    "NULL AS label, NULL AS total_ns FROM pikoc_events WHERE run_id = :run "
    "UNION ALL SELECT c.\"index\", 'checkpoint', c.function, c.depth, c.thread, c.time_ns, "
    "c.duration_ns, c.rss, c.vms, c.allocated, c.freed, c.alloc_delta, c.free_delta, NULL, "
    "NULL, NULL, s.line, s.file, c.label, c.total_ns FROM checkpoints c LEFT JOIN spans s "
    "ON s.run_id = c.run_id AND s.span = c.span WHERE c.run_id = :run)";

int pk_events_print(pk_query *q, const pk_event_filter *filter)
{
    /* A table hides the columns the run cannot hold; CSV and JSON keep every field. */
    pk_run_facts facts = {.flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC | PK_RECORD_SPAN};
    if (q->format == PK_FORMAT_TABLE && pk_query_run_facts(q, &facts) != 0)
        return PK_EXIT_USAGE;
    bool checkpoints;
    if (run_has_checkpoints(q, &checkpoints) != 0)
        return PK_EXIT_USAGE;
    unsigned flags = facts.flags | (checkpoints ? PK_RECORD_SPAN : 0);
    pk_column columns[EVENT_COLUMNS];
    size_t count = 0;
    char sql[2048] = "SELECT ";
    for (size_t i = 0; i < EVENT_COLUMNS; i++) {
        if ((event_columns[i].needs & flags) != event_columns[i].needs)
            continue;
        columns[count] = event_columns[i].column;
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "%s\"%s\"", count ? ", " : "",
                 columns[count].name);
        count++;
    }
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql), " FROM %s WHERE 1%s%s%s%s LIMIT :limit",
             checkpoints ? events_and_checkpoints : events_only,
             filter->function ? " AND function GLOB :function" : "",
             filter->type ? " AND type = :type" : "",
             filter->thread_given ? " AND thread = :thread" : "",
             checkpoints ? " ORDER BY \"index\"" : "");
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":run"), q->run_id);
    sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":limit"),
                       filter->limit == 0 || filter->limit > INT64_MAX ? -1
                                                                       : (int64_t)filter->limit);
    if (filter->function)
        sqlite3_bind_text(stmt, sqlite3_bind_parameter_index(stmt, ":function"), filter->function,
                          -1, SQLITE_STATIC);
    if (filter->type)
        sqlite3_bind_text(stmt, sqlite3_bind_parameter_index(stmt, ":type"), filter->type, -1,
                          SQLITE_STATIC);
    if (filter->thread_given)
        sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":thread"),
                           (int64_t)filter->thread);
    return pk_query_print(q, stmt, columns, count);
}

static int events_main(int argc, char **argv)
{
    static const char *const types[] = {"call", "return", "checkpoint"};
    pk_query q;
    pk_query_init(&q, &pk_cmd_events);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_events, options, PK_ARRAY_SIZE(options), argc, argv);
    pk_event_filter filter = {0};
    int type = -1;
    const pk_cli_value values[] = {
        PK_VALUE(OPT_FUNCTION, PK_VALUE_TEXT, &filter.function),
        PK_CHOICE(OPT_TYPE, &type, "event type", types, PK_ARRAY_SIZE(types)),
        {.option = OPT_THREAD,
         .kind = PK_VALUE_UINT,
         .to = &filter.thread,
         .given = &filter.thread_given},
        PK_VALUE(OPT_LIMIT, PK_VALUE_UINT, &filter.limit)};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    filter.type = type >= 0 ? types[type] : NULL;
    status = pk_query_open(&q, true);
    if (status == 0)
        status = pk_query_call_run(&q);
    if (status == 0)
        status = pk_events_print(&q, &filter);
    pk_query_close(&q);
    return status;
}
