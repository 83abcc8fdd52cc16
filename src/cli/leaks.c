/*
 * leaks.c — `pikoc leaks`: the blocks still live when the run ended,
 * grouped by the call site that allocated them (alloc_sites) or, for a run
 * recorded with --stack N, by stack (alloc_stacks and alloc_frames; see
 * docs/schema.md, "Allocations"). Read-only.
 */
#include "cli.h"

#include <stdio.h>

static const char help[] =
    "usage: pikoc leaks [OPTIONS]\n"
    "\n"
    "Lists the blocks a run allocated and never freed, by call site (the function\n"
    "and line that called malloc, new, ...): how many, and the bytes they asked\n"
    "for. The run must have been recorded with pikoc run --monitor alloc. Blocks\n"
    "freed by exit-time destructors after the run ended count as leaked.\n"
    "\n"
    "options:\n" PK_RUN_HELP
    "  --group GROUP        site or stack: each stack recorded with pikoc run\n"
    "                       --stack N, its frames innermost first as function:line\n"
    "                       (default: stack when the run has stacks, else site)\n"
    "  --limit N            the first N sites or stacks (default 20; 0 for all)\n"
    "  -h, --help           this help\n"
    "\n"
    "JSON fields: function, line, blocks, bytes, file; by stack: blocks, bytes,\n"
    "stack.\n"
    "\n"
    "example:\n"
    "  pikoc run --monitor alloc -- ./app && pikoc leaks\n";

static int leaks_main(int argc, char **argv);

const pk_cli_command pk_cmd_leaks = {
    .name = "leaks",
    .summary = "blocks still allocated at the end, by call site",
    .help = help,
    .main = leaks_main,
};

enum { OPT_LIMIT = PK_RUN_OPTION_COUNT, OPT_GROUP };

static const pk_cli_option options[] = {
    PK_RUN_OPTIONS, [OPT_LIMIT] = {"limit", 0, "N"}, [OPT_GROUP] = {"group", 0, "GROUP"}};

enum { GROUP_SITE, GROUP_STACK };
static const char *const groups[] = {"site", "stack"};

const pk_column pk_leak_columns[PK_LEAK_COLUMNS] = {
    {"function", PK_COLUMN_TEXT}, {"line", PK_COLUMN_INTEGER}, {"blocks", PK_COLUMN_INTEGER},
    {"bytes", PK_COLUMN_BYTES},   {"file", PK_COLUMN_TEXT},
};

static const pk_column stack_columns[] = {
    {"blocks", PK_COLUMN_INTEGER},
    {"bytes", PK_COLUMN_BYTES},
    {"stack", PK_COLUMN_TEXT},
};

sqlite3_stmt *pk_leaks_prepare(pk_query *q, uint64_t limit)
{
    /* A site is a line of a function: call paths and return addresses merge. */
    sqlite3_stmt *stmt = pk_query_prepare(
        q, "SELECT s.function, a.caller_line, sum(a.leaked_blocks) AS blocks,"
           " sum(a.leaked_bytes) AS bytes, s.file"
           " FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id"
           " WHERE a.run_id = ?1 AND a.leaked_blocks > 0"
           " GROUP BY s.function, s.file, a.caller_line"
           " ORDER BY bytes DESC, blocks DESC, s.function, a.caller_line LIMIT ?2");
    pk_query_bind_run_limit(q, stmt, limit);
    return stmt;
}

/* The leaking stacks (--stack N), each with its frames. */
static sqlite3_stmt *by_stack(pk_query *q, uint64_t limit)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT a.leaked_blocks AS blocks, a.leaked_bytes AS bytes, %s AS stack"
             " FROM alloc_stacks a WHERE a.run_id = ?1 AND a.leaked_blocks > 0"
             " ORDER BY bytes DESC, blocks DESC, stack LIMIT ?2",
             pk_query_stack_text(false));
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    pk_query_bind_run_limit(q, stmt, limit);
    return stmt;
}

static int leaks_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_leaks);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_leaks, options, PK_ARRAY_SIZE(options), argc, argv);
    uint64_t limit = 20;
    int group = -1;
    const pk_cli_value values[] = {
        PK_VALUE(OPT_LIMIT, PK_VALUE_UINT, &limit),
        PK_CHOICE(OPT_GROUP, &group, "group", groups, PK_ARRAY_SIZE(groups))};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    status = pk_query_open(&q, true);
    if (status == 0)
        status = pk_query_alloc_run(&q);
    if (status != 0) {
        pk_query_close(&q);
        return status;
    }
    if (group < 0) {
        bool stacks;
        status = pk_query_has_stacks(&q, &stacks);
        group = stacks ? GROUP_STACK : GROUP_SITE;
    }
    if (status == 0 && group == GROUP_STACK)
        status = pk_query_stack_run(&q);
    if (status != 0) {
        pk_query_close(&q);
        return status;
    }
    sqlite3_stmt *stmt = group == GROUP_STACK ? by_stack(&q, limit) : pk_leaks_prepare(&q, limit);
    if (!stmt)
        status = PK_EXIT_USAGE;
    else if (group == GROUP_STACK)
        status = pk_query_print(&q, stmt, stack_columns, PK_ARRAY_SIZE(stack_columns));
    else
        status = pk_query_print(&q, stmt, pk_leak_columns, PK_LEAK_COLUMNS);
    pk_query_close(&q);
    return status;
}
