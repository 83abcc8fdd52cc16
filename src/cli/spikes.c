/*
 * spikes.c — `pikoc spikes`: the events at which RSS or VMS jumped by more
 * than a threshold since the event before, and where the program was when
 * it grew (the question Pikos' memory plot answers). Read-only.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char help[] =
    "usage: pikoc spikes [OPTIONS]\n"
    "\n"
    "Walks the events of a run in order and prints each one at which the resident\n"
    "set (rss) or the virtual size (vms) grew by more than the threshold since the\n"
    "previous event. function, file and line say where the program was while it\n"
    "grew: before a call, the caller, at the line of that call; before a return,\n"
    "the returning function (file and line are where it starts). type and\n"
    "event_function name the event that saw the jump.\n"
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
    COL_CALLER_LINE
};

/* 0 when the run sampled memory; else bad input, reported. */
static int check_memory(pk_query *q)
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

static int spikes_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_spikes);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_spikes, options, PK_ARRAY_SIZE(options), argc, argv);
    uint64_t threshold = 1u << 20;
    const char *value;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (o) {
        case PK_CLI_EXIT:
            return p.status;
        case OPT_THRESHOLD:
            if (pk_cli_size(&p, "--threshold", value, &threshold) != 0)
                return PK_EXIT_USAGE;
            break;
        default:
            if (pk_query_option(&p, &q, o, value) != 0)
                return PK_EXIT_USAGE;
        }
    }
    int status = pk_query_open(&q, true);
    if (status == 0)
        status = check_memory(&q);
    sqlite3_stmt *stmt =
        status
            ? NULL
            : pk_query_prepare(
                  &q,
                  "SELECT \"index\", time_ns, thread, rss, vms, type, function, file, line, caller,"
                  " caller_file, caller_line FROM pikoc_events WHERE run_id = ? AND rss IS NOT "
                  "NULL");
    if (!stmt) {
        pk_query_close(&q);
        return status ? status : PK_EXIT_USAGE;
    }
    sqlite3_bind_int64(stmt, 1, q.run_id);
    pk_table *out = pk_table_new(q.out, q.format, columns, PK_ARRAY_SIZE(columns));
    int64_t last_rss = 0, last_vms = 0;
    bool first = true;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t rss = sqlite3_column_int64(stmt, COL_RSS),
                vms = sqlite3_column_int64(stmt, COL_VMS);
        int64_t rss_growth = rss - last_rss, vms_growth = vms - last_vms;
        bool spike = !first && (rss_growth > (int64_t)threshold || vms_growth > (int64_t)threshold);
        last_rss = rss;
        last_vms = vms;
        first = false;
        if (!spike)
            continue;
        const char *type = (const char *)sqlite3_column_text(stmt, COL_TYPE);
        bool is_call = type && strcmp(type, "call") == 0;
        pk_table_value(out, stmt, COL_INDEX);
        pk_table_value(out, stmt, COL_TIME);
        pk_table_value(out, stmt, COL_THREAD);
        pk_table_int(out, rss_growth);
        pk_table_int(out, vms_growth);
        pk_table_int(out, rss);
        pk_table_int(out, vms);
        pk_table_value(out, stmt, COL_TYPE);
        pk_table_value(out, stmt, COL_FUNCTION);
        /* Before a call the caller was running; before a return, the function itself. */
        pk_table_value(out, stmt, is_call ? COL_CALLER : COL_FUNCTION);
        pk_table_value(out, stmt, is_call ? COL_CALLER_FILE : COL_FILE);
        pk_table_value(out, stmt, is_call ? COL_CALLER_LINE : COL_LINE);
    }
    if (rc != SQLITE_DONE)
        status = pk_query_fail(&q);
    if (pk_table_finish(out) != 0 && status == 0)
        status = pk_query_write_failed(&q, "the output");
    sqlite3_finalize(stmt);
    pk_query_close(&q);
    return status;
}
