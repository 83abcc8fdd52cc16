/*
 * top.c — `pikoc top`: functions ranked by calls, time, bytes or RSS growth,
 * straight from the per-function aggregates (exact whatever the recorder's
 * filters kept out of the detailed events); or, --by allocations, bytes or
 * temporary, the call sites of allocations (alloc_sites) or their stacks
 * (alloc_stacks, with --stack N). Read-only.
 */
#include "cli.h"

#include <stdio.h>

static const char help[] =
    "usage: pikoc top [OPTIONS]\n"
    "\n"
    "Ranks the functions of a run. total is inclusive time (recursion counted\n"
    "once), self the time outside recorded callees; alloc and free are the bytes\n"
    "allocated and freed during the calls (callees included), rss the growth of\n"
    "the resident set over them. '-' marks what was not measured.\n"
    "\n"
    "options:\n" PK_RUN_HELP
    "  --by KEY             calls, total (the default), self, alloc, free or rss;\n"
    "                       or, for a run recorded with --monitor alloc, the call\n"
    "                       sites of allocations by allocations (calls), bytes\n"
    "                       (requested) or temporary (blocks freed before the\n"
    "                       thread allocated anything else, as heaptrack counts them)\n"
    "  --group GROUP        with allocations, bytes or temporary: site (a line of a\n"
    "                       function, the default), function, or stack (each stack\n"
    "                       recorded with pikoc run --stack N, innermost frame first)\n"
    "  --limit N            the first N functions or sites (default 20; 0 for all)\n"
    "  -h, --help           this help\n"
    "\n"
    "JSON fields: function, file, line, calls, total_ns, self_ns, min_ns, max_ns,\n"
    "alloc_bytes, free_bytes, rss_growth; for allocation sites: function, line\n"
    "(null when grouped by function), allocations, bytes, temporary, leaked_bytes,\n"
    "peak_bytes, file; by stack: allocations, bytes, temporary, leaked_bytes,\n"
    "peak_bytes, stack.\n"
    "\n"
    "examples:\n"
    "  pikoc top --by alloc --limit 10\n"
    "  pikoc top --by temporary --group function\n";

static int top_main(int argc, char **argv);

const pk_cli_command pk_cmd_top = {
    .name = "top",
    .summary = "functions by calls, time, bytes or RSS growth; allocation sites",
    .help = help,
    .main = top_main,
};

enum { OPT_BY = PK_RUN_OPTION_COUNT, OPT_LIMIT, OPT_GROUP };

static const pk_cli_option options[] = {
    PK_RUN_OPTIONS, [OPT_BY] = {"by", 0, "KEY"}, [OPT_LIMIT] = {"limit", 0, "N"},
    [OPT_GROUP] = {"group", 0, "GROUP"}};

/* The ranking keys and the aggregate column each sorts on; from KEY_ALLOCATIONS on, sites. */
static const char *const keys[] = {"calls", "total",       "self",  "alloc",    "free",
                                   "rss",   "allocations", "bytes", "temporary"};
static const char *const key_columns[] = {"f.calls",       "f.total_ns",   "f.self_ns",
                                          "f.alloc_bytes", "f.free_bytes", "f.rss_growth",
                                          "allocations",   "bytes",        "temporary"};
enum { KEY_ALLOCATIONS = 6 };
enum { GROUP_SITE, GROUP_FUNCTION, GROUP_STACK };
static const char *const groups[] = {"site", "function", "stack"};

const pk_column pk_site_columns[PK_SITE_COLUMNS] = {
    {"function", PK_COLUMN_TEXT},       {"line", PK_COLUMN_INTEGER},
    {"allocations", PK_COLUMN_INTEGER}, {"bytes", PK_COLUMN_BYTES},
    {"temporary", PK_COLUMN_INTEGER},   {"leaked_bytes", PK_COLUMN_BYTES},
    {"peak_bytes", PK_COLUMN_BYTES},    {"file", PK_COLUMN_TEXT},
};

sqlite3_stmt *pk_sites_prepare(pk_query *q, const char *order, bool by_function, uint64_t limit)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT s.function, %s, sum(a.allocations) AS allocations, sum(a.bytes) AS bytes,"
             " sum(a.temporary) AS temporary, sum(a.leaked_bytes), sum(a.peak_bytes), s.file"
             " FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id"
             " WHERE a.run_id = ?1 GROUP BY s.function, s.file%s"
             " ORDER BY %s DESC, s.function, s.file, 2 LIMIT ?2",
             by_function ? "NULL" : "a.caller_line", by_function ? "" : ", a.caller_line", order);
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    pk_query_bind_run_limit(q, stmt, limit);
    return stmt;
}

static const pk_column stack_columns[] = {
    {"allocations", PK_COLUMN_INTEGER}, {"bytes", PK_COLUMN_BYTES},
    {"temporary", PK_COLUMN_INTEGER},   {"leaked_bytes", PK_COLUMN_BYTES},
    {"peak_bytes", PK_COLUMN_BYTES},    {"stack", PK_COLUMN_TEXT},
};

/* Allocation stacks (--stack N), each with its frames; bound like pk_sites_prepare. */
static sqlite3_stmt *prepare_stacks(pk_query *q, const char *order, uint64_t limit)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT a.allocations AS allocations, a.bytes AS bytes, a.temporary AS temporary,"
             " a.leaked_bytes, a.peak_bytes, %s AS stack FROM alloc_stacks a"
             " WHERE a.run_id = ?1 ORDER BY %s DESC, stack LIMIT ?2",
             pk_query_stack_text(false), order);
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    pk_query_bind_run_limit(q, stmt, limit);
    return stmt;
}

static const pk_column columns[] = {
    {"function", PK_COLUMN_TEXT},     {"calls", PK_COLUMN_INTEGER},
    {"total_ns", PK_COLUMN_NS},       {"self_ns", PK_COLUMN_NS},
    {"min_ns", PK_COLUMN_NS},         {"max_ns", PK_COLUMN_NS},
    {"alloc_bytes", PK_COLUMN_BYTES}, {"free_bytes", PK_COLUMN_BYTES},
    {"rss_growth", PK_COLUMN_BYTES},  {"file", PK_COLUMN_TEXT},
    {"line", PK_COLUMN_INTEGER},
};

static int top_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_top);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_top, options, PK_ARRAY_SIZE(options), argc, argv);
    int key = 1, group = -1;
    uint64_t limit = 20;
    const pk_cli_value values[] = {
        PK_CHOICE(OPT_BY, &key, "key", keys, PK_ARRAY_SIZE(keys)),
        PK_VALUE(OPT_LIMIT, PK_VALUE_UINT, &limit),
        PK_CHOICE(OPT_GROUP, &group, "group", groups, PK_ARRAY_SIZE(groups))};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    bool sites = key >= KEY_ALLOCATIONS;
    if (group >= 0 && !sites)
        return pk_cli_usage(&p, "--group applies to --by allocations, bytes or temporary only");
    status = pk_query_open(&q, true);
    if (status != 0)
        return status;
    if (sites) {
        sqlite3_stmt *stmt = NULL;
        bool stacks = group == GROUP_STACK;
        if ((status = pk_query_alloc_run(&q)) == 0 && stacks)
            status = pk_query_stack_run(&q);
        if (status == 0 && !(stmt = stacks ? prepare_stacks(&q, key_columns[key], limit)
                                           : pk_sites_prepare(&q, key_columns[key],
                                                              group == GROUP_FUNCTION, limit)))
            status = PK_EXIT_USAGE;
        if (stmt && stacks)
            status = pk_query_print(&q, stmt, stack_columns, PK_ARRAY_SIZE(stack_columns));
        else if (stmt)
            status = pk_query_print(&q, stmt, pk_site_columns, PK_SITE_COLUMNS);
        pk_query_close(&q);
        return status;
    }
    if ((status = pk_query_call_run(&q)) != 0) {
        pk_query_close(&q);
        return status;
    }
    /* Unmeasured values (NULL) rank last; ties go by name so the order is stable. */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT s.function, f.calls, f.total_ns, f.self_ns, f.min_ns, f.max_ns,"
             " f.alloc_bytes, f.free_bytes, f.rss_growth, s.file, s.line"
             " FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id"
             " WHERE f.run_id = ?1 ORDER BY %s IS NULL, %s DESC, s.function, s.file"
             " LIMIT ?2",
             key_columns[key], key_columns[key]);
    sqlite3_stmt *stmt = pk_query_prepare(&q, sql);
    pk_query_bind_run_limit(&q, stmt, limit);
    status = stmt ? pk_query_print(&q, stmt, columns, PK_ARRAY_SIZE(columns)) : PK_EXIT_USAGE;
    pk_query_close(&q);
    return status;
}
