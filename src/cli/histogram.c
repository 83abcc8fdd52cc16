/*
 * histogram.c — `pikoc histogram`: how many allocations asked for how many
 * bytes, in power-of-two ranges, from the alloc_sizes table (exact sizes,
 * docs/schema.md "Allocations"). Read-only.
 */
#include "cli.h"

#include <stdio.h>

static const char help[] =
    "usage: pikoc histogram [OPTIONS]\n"
    "\n"
    "Counts a run's allocations (malloc, calloc, new, realloc, ...) by requested\n"
    "size, in ranges of powers of two: 0, 1, 2-3, 4-7, 8-15, ... Only ranges that\n"
    "occur are shown; share is the percentage of all allocations. The exact sizes\n"
    "are in the alloc_sizes table (pikoc sql). The run must have been recorded\n"
    "with pikoc run --monitor alloc.\n"
    "\n"
    "options:\n" PK_RUN_HELP "  -h, --help           this help\n"
    "\n"
    "JSON fields: from, to, allocations, bytes, share.\n"
    "\n"
    "example:\n"
    "  pikoc histogram --format csv\n";

static int histogram_main(int argc, char **argv);

const pk_cli_command pk_cmd_histogram = {
    .name = "histogram",
    .summary = "allocations by requested size",
    .help = help,
    .main = histogram_main,
};

static const pk_cli_option options[] = {PK_RUN_OPTIONS};

static const pk_column columns[] = {
    {"from", PK_COLUMN_INTEGER}, {"to", PK_COLUMN_INTEGER}, {"allocations", PK_COLUMN_INTEGER},
    {"bytes", PK_COLUMN_BYTES},  {"share", PK_COLUMN_REAL},
};

/* Range 0 holds size 0; range k >= 1 holds sizes 2^(k-1) .. 2^k - 1. */
#define RANGES 65

static unsigned range_of(uint64_t size)
{
    return size ? 64u - (unsigned)__builtin_clzll(size) : 0;
}

static int print_ranges(pk_query *q)
{
    sqlite3_stmt *stmt =
        pk_query_prepare(q, "SELECT size, count FROM alloc_sizes WHERE run_id = ? ORDER BY size");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    uint64_t counts[RANGES] = {0}, bytes[RANGES] = {0}, total = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        uint64_t size = (uint64_t)sqlite3_column_int64(stmt, 0);
        uint64_t count = (uint64_t)sqlite3_column_int64(stmt, 1);
        counts[range_of(size)] += count;
        bytes[range_of(size)] += size * count;
        total += count;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return pk_query_fail(q);
    pk_table *t = pk_table_new(q->out, q->format, columns, PK_ARRAY_SIZE(columns));
    for (unsigned k = 0; k < RANGES; k++) {
        if (!counts[k])
            continue;
        uint64_t from = k ? 1ull << (k - 1) : 0;
        pk_table_int(t, (int64_t)from);
        pk_table_int(t, k ? (int64_t)(from * 2 - 1) : 0);
        pk_table_int(t, (int64_t)counts[k]);
        pk_table_int(t, (int64_t)bytes[k]);
        pk_table_real(t, 100.0 * (double)counts[k] / (double)total);
    }
    return pk_table_finish(t) == 0 ? 0 : pk_query_write_failed(q, "the output");
}

static int histogram_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_histogram);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_histogram, options, PK_ARRAY_SIZE(options), argc, argv);
    int status = pk_query_args(&p, &q, NULL, 0);
    if (status >= 0)
        return status;
    status = pk_query_open(&q, true);
    if (status == 0)
        status = pk_query_alloc_run(&q);
    if (status == 0)
        status = print_ranges(&q);
    pk_query_close(&q);
    return status;
}
