/*
 * peak.c — `pikoc peak`: the moment the run's heap was largest and what each
 * call site held then, from alloc_runs and alloc_sites (docs/schema.md,
 * "Allocations"), and the process's peak resident set. Read-only.
 */
#include "cli.h"

#include <stdio.h>

static const char help[] =
    "usage: pikoc peak [OPTIONS]\n"
    "\n"
    "Shows the peak of a run's heap (the bytes of live blocks, as requested) and\n"
    "the call sites that held them at that moment, largest first, with their\n"
    "share of the peak. The table starts with the peak, when it happened (since\n"
    "the start of the run) and the peak resident set (RSS) of the process, then\n"
    "the largest RSS the timer sampled and when; csv and json give the sites only\n"
    "(the run's figures are in the alloc_runs and memory_samples tables: pikoc\n"
    "sql). The run must have been recorded with pikoc run --monitor alloc.\n"
    "\n"
    "options:\n" PK_RUN_HELP "  --limit N            the first N sites (default 20; 0 for all)\n"
    "  -h, --help           this help\n"
    "\n"
    "JSON fields: function, line, bytes, share, file.\n"
    "\n"
    "example:\n"
    "  pikoc run --monitor alloc -- ./app && pikoc peak\n";

static int peak_main(int argc, char **argv);

const pk_cli_command pk_cmd_peak = {
    .name = "peak",
    .summary = "the moment of peak heap and what each call site held then",
    .help = help,
    .main = peak_main,
};

enum { OPT_LIMIT = PK_RUN_OPTION_COUNT };

static const pk_cli_option options[] = {PK_RUN_OPTIONS, [OPT_LIMIT] = {"limit", 0, "N"}};

static const pk_column columns[] = {
    {"function", PK_COLUMN_TEXT}, {"line", PK_COLUMN_INTEGER}, {"bytes", PK_COLUMN_BYTES},
    {"share", PK_COLUMN_REAL},    {"file", PK_COLUMN_TEXT},
};

/*
 * "peak heap 1.2 MiB (1234567 bytes) at 35.20 ms; peak RSS 7.0 MiB", and
 * "sampled RSS peak 6.9 MiB at 30.00 ms" when RSS was sampled.
 */
static int print_moment(pk_query *q)
{
    sqlite3_stmt *stmt = pk_query_prepare(
        q, "SELECT peak_bytes, peak_time_ns, peak_rss,"
           " (SELECT rss FROM memory_samples WHERE run_id = ?1 ORDER BY rss DESC, time_ns"
           " LIMIT 1),"
           " (SELECT time_ns FROM memory_samples WHERE run_id = ?1 ORDER BY rss DESC, time_ns"
           " LIMIT 1)"
           " FROM alloc_runs WHERE run_id = ?1");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        char heap[32], when[32], rss[32] = "-";
        int64_t bytes = sqlite3_column_int64(stmt, 0);
        pk_readable_bytes(bytes, heap, sizeof heap);
        pk_readable_ns(sqlite3_column_int64(stmt, 1), when, sizeof when);
        if (sqlite3_column_type(stmt, 2) != SQLITE_NULL)
            pk_readable_bytes(sqlite3_column_int64(stmt, 2), rss, sizeof rss);
        fprintf(q->out, "peak heap %s (%lld bytes) at %s; peak RSS %s\n", heap, (long long)bytes,
                when, rss);
        if (sqlite3_column_type(stmt, 3) != SQLITE_NULL) {
            pk_readable_bytes(sqlite3_column_int64(stmt, 3), rss, sizeof rss);
            pk_readable_ns(sqlite3_column_int64(stmt, 4), when, sizeof when);
            fprintf(q->out, "sampled RSS peak %s at %s\n", rss, when);
        }
        fputc('\n', q->out);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

static int peak_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_peak);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_peak, options, PK_ARRAY_SIZE(options), argc, argv);
    uint64_t limit = 20;
    const pk_cli_value values[] = {PK_VALUE(OPT_LIMIT, PK_VALUE_UINT, &limit)};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    status = pk_query_open(&q, true);
    if (status == 0)
        status = pk_query_alloc_run(&q);
    if (status == 0 && q.format == PK_FORMAT_TABLE)
        status = print_moment(&q);
    if (status != 0) {
        pk_query_close(&q);
        return status;
    }
    sqlite3_stmt *stmt = pk_query_prepare(
        &q, "SELECT s.function, a.caller_line, sum(a.peak_bytes) AS bytes,"
            " round(100.0 * sum(a.peak_bytes) / max(r.peak_bytes, 1), 2), s.file"
            " FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id"
            " JOIN alloc_runs r ON r.run_id = a.run_id"
            " WHERE a.run_id = ?1 AND a.peak_bytes > 0"
            " GROUP BY s.function, s.file, a.caller_line"
            " ORDER BY bytes DESC, s.function, a.caller_line LIMIT ?2");
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, q.run_id);
        sqlite3_bind_int64(stmt, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
        status = pk_query_print(&q, stmt, columns, PK_ARRAY_SIZE(columns));
    } else {
        status = PK_EXIT_USAGE;
    }
    pk_query_close(&q);
    return status;
}
