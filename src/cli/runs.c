/*
 * runs.c — `pikoc runs`: the runs a database holds, oldest first, with how
 * each ended and how much it recorded. Read-only.
 */
#include "cli.h"

static const char help[] =
    "usage: pikoc runs [OPTIONS]\n"
    "\n"
    "Lists the runs in the database, oldest first: id, start (UTC), status\n"
    "(running, complete, crashed, killed, incomplete), the signal or exit status,\n"
    "duration, events and calls recorded, events dropped, monitor, pid and\n"
    "command line.\n"
    "\n"
    "options:\n" PK_DB_HELP "  -h, --help           this help\n"
    "\n"
    "example:\n"
    "  pikoc runs --format json\n";

static int runs_main(int argc, char **argv);

const pk_cli_command pk_cmd_runs = {
    .name = "runs",
    .summary = "list the runs in a database",
    .help = help,
    .main = runs_main,
};

static const pk_cli_option options[] = {PK_DB_OPTIONS};

static const pk_column columns[] = {
    {"id", PK_COLUMN_INTEGER},          {"started", PK_COLUMN_TEXT},
    {"status", PK_COLUMN_TEXT},         {"signal", PK_COLUMN_INTEGER},
    {"exit_status", PK_COLUMN_INTEGER}, {"duration_ns", PK_COLUMN_NS},
    {"events", PK_COLUMN_INTEGER},      {"calls", PK_COLUMN_INTEGER},
    {"dropped", PK_COLUMN_INTEGER},     {"monitor", PK_COLUMN_TEXT},
    {"pid", PK_COLUMN_INTEGER},         {"command_line", PK_COLUMN_TEXT},
};

static int runs_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_runs);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_runs, options, PK_ARRAY_SIZE(options), argc, argv);
    int status = pk_query_args(&p, &q, NULL, 0);
    if (status >= 0)
        return status;
    status = pk_query_open(&q, false);
    if (status != 0)
        return status;
    sqlite3_stmt *stmt = pk_query_prepare(
        &q, "SELECT id, strftime('%Y-%m-%dT%H:%M:%SZ', start_ns / 1000000000, 'unixepoch'),"
            " status, signal, exit_status, duration_ns, events, calls, dropped, monitor, pid,"
            " command_line FROM runs ORDER BY id");
    status = stmt ? pk_query_print(&q, stmt, columns, PK_ARRAY_SIZE(columns)) : PK_EXIT_USAGE;
    pk_query_close(&q);
    return status;
}
