/*
 * diff.c — `pikoc diff A B`: per function, how calls, time and bytes changed
 * from run A to run B (in one database or two), largest changes first.
 * Functions are matched by name and source file. Read-only.
 */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc diff [OPTIONS] A B\n"
    "\n"
    "Compares two runs function by function (matched by name and source file):\n"
    "calls, total and self time, bytes allocated and freed, each as A, B and the\n"
    "change B - A, the largest changes first. A function one run does not have\n"
    "counts as never called there.\n"
    "\n"
    "A and B are each:\n"
    "  N          run N of the database (--db, default pikoc.db)\n"
    "  FILE:N     run N of another database\n"
    "  FILE       the latest run of another database\n"
    "\n"
    "options:\n" PK_DB_HELP
    "  --by KEY             rank by the change in calls, total (the default), self,\n"
    "                       alloc or free\n"
    "  --limit N            the first N functions (default 20; 0 for all)\n"
    "  -h, --help           this help\n"
    "\n"
    "JSON fields: function, file, calls_a, calls_b, calls_delta, total_ns_a,\n"
    "total_ns_b, total_ns_delta, self_ns_a, self_ns_b, self_ns_delta, alloc_bytes_a,\n"
    "alloc_bytes_b, alloc_bytes_delta, free_bytes_a, free_bytes_b, free_bytes_delta.\n"
    "\n"
    "examples:\n"
    "  pikoc diff 1 2\n"
    "  pikoc diff before.db after.db:3 --by alloc\n";

static int diff_main(int argc, char **argv);

const pk_cli_command pk_cmd_diff = {
    .name = "diff",
    .summary = "what changed per function between two runs (or two files)",
    .help = help,
    .main = diff_main,
};

enum { OPT_BY = PK_DB_OPTION_COUNT, OPT_LIMIT };

static const pk_cli_option options[] = {
    PK_DB_OPTIONS, [OPT_BY] = {"by", 0, "KEY"}, [OPT_LIMIT] = {"limit", 0, "N"}};

/* The compared measures, in output order; --by names one. */
enum {
    M_CALLS = PK_DIFF_CALLS,
    M_TOTAL = PK_DIFF_TOTAL,
    M_SELF = PK_DIFF_SELF,
    M_ALLOC = PK_DIFF_ALLOC,
    M_FREE = PK_DIFF_FREE,
    MEASURES = PK_DIFF_MEASURES
};
static const char *const keys[MEASURES] = {"calls", "total", "self", "alloc", "free"};
const char *const pk_diff_measure_names[PK_DIFF_MEASURES] = {"calls", "total_ns", "self_ns",
                                                             "alloc_bytes", "free_bytes"};
const pk_column_kind pk_diff_measure_kinds[PK_DIFF_MEASURES] = {
    PK_COLUMN_INTEGER, PK_COLUMN_NS, PK_COLUMN_NS, PK_COLUMN_BYTES, PK_COLUMN_BYTES};

typedef pk_diff_side side;
typedef pk_diff_row row;

typedef struct run_side {
    pk_query *q;
    bool measures_alloc; /* the run's flags say allocation counters */
    sqlite3_stmt *stmt;  /* functions, by name and file */
} run_side;

void pk_diff_operand(const char *text, pk_query *q, char **owned)
{
    *owned = NULL;
    bool digits = *text != '\0';
    for (const char *p = text; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (digits) {
        q->run_arg = text;
        return;
    }
    const char *colon = strrchr(text, ':');
    bool run_after = colon && colon[1] != '\0' && colon > text;
    for (const char *p = colon ? colon + 1 : ""; run_after && *p; p++)
        run_after = isdigit((unsigned char)*p);
    if (!run_after) {
        q->path = text;
        return;
    }
    *owned = pk_xstrdup(text);
    (*owned)[colon - text] = '\0';
    q->path = *owned;
    q->run_arg = *owned + (colon - text) + 1;
}

/* The side's functions, by name and file, ready to step. */
static int open_side(run_side *s)
{
    pk_run_facts facts;
    int status = pk_query_run_facts(s->q, &facts);
    if (status == 0)
        status = pk_query_call_facts(s->q, &facts);
    if (status != 0)
        return status;
    s->measures_alloc = facts.flags & PK_RECORD_ALLOC;
    /* One row per (function, file): a function may have several symbols (lines). */
    s->stmt = pk_query_prepare(
        s->q, "SELECT s.function, s.file, sum(f.calls), sum(f.total_ns), sum(f.self_ns),"
              " sum(f.alloc_bytes), sum(f.free_bytes)"
              " FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id"
              " WHERE f.run_id = ? GROUP BY s.function, s.file ORDER BY s.function, s.file");
    if (!s->stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(s->stmt, 1, s->q->run_id);
    return 0;
}

/* Steps a side; 1 on a row, 0 at the end, -1 on a read error (reported). */
static int step(run_side *s)
{
    int rc = sqlite3_step(s->stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    pk_query_fail(s->q);
    return -1;
}

static void take(side *out, sqlite3_stmt *stmt)
{
    for (int m = 0; m < MEASURES; m++) {
        out->known[m] = sqlite3_column_type(stmt, 2 + m) != SQLITE_NULL;
        out->value[m] = sqlite3_column_int64(stmt, 2 + m);
    }
}

/* A function the run never called: zero of everything the run measured. */
static void absent(side *out, const run_side *s)
{
    for (int m = 0; m < MEASURES; m++) {
        out->value[m] = 0;
        out->known[m] = m < M_ALLOC || s->measures_alloc;
    }
}

static int sort_measure;

static int64_t magnitude(const row *r, bool *known)
{
    *known = r->a.known[sort_measure] && r->b.known[sort_measure];
    int64_t d = r->b.value[sort_measure] - r->a.value[sort_measure];
    return d < 0 ? -d : d;
}

/* Largest change first; unmeasured changes last; then by name. */
static int by_change(const void *x, const void *y)
{
    const row *a = x, *b = y;
    bool ka, kb;
    int64_t ma = magnitude(a, &ka), mb = magnitude(b, &kb);
    if (ka != kb)
        return ka ? -1 : 1;
    if (ma != mb)
        return ma > mb ? -1 : 1;
    int c = strcmp(a->function, b->function);
    return c ? c : strcmp(a->file, b->file);
}

/* Merges the two sorted lists of functions. */
static int load_rows(run_side *a, run_side *b, row **rows_out, size_t *count_out)
{
    row *rows = NULL;
    size_t count = 0, capacity = 0;
    int has_a = step(a), has_b = step(b);
    while (has_a > 0 || has_b > 0) {
        int order;
        if (has_a <= 0)
            order = 1;
        else if (has_b <= 0)
            order = -1;
        else {
            order = strcmp((const char *)sqlite3_column_text(a->stmt, 0),
                           (const char *)sqlite3_column_text(b->stmt, 0));
            if (order == 0)
                order = strcmp((const char *)sqlite3_column_text(a->stmt, 1),
                               (const char *)sqlite3_column_text(b->stmt, 1));
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            rows = realloc(rows, capacity * sizeof *rows);
            if (!rows)
                abort();
        }
        row *r = &rows[count++];
        sqlite3_stmt *named = order <= 0 ? a->stmt : b->stmt;
        r->function = pk_xstrdup((const char *)sqlite3_column_text(named, 0));
        r->file = pk_xstrdup((const char *)sqlite3_column_text(named, 1));
        if (order <= 0) {
            take(&r->a, a->stmt);
            has_a = step(a);
        } else {
            absent(&r->a, a);
        }
        if (order >= 0) {
            take(&r->b, b->stmt);
            has_b = step(b);
        } else {
            absent(&r->b, b);
        }
    }
    *rows_out = rows;
    *count_out = count;
    return has_a < 0 || has_b < 0 ? PK_EXIT_USAGE : 0;
}

int pk_diff_load(pk_query *a, pk_query *b, int measure, pk_diff_row **rows, size_t *count)
{
    run_side sides[2] = {{.q = a}, {.q = b}};
    *rows = NULL;
    *count = 0;
    int status = 0;
    for (int i = 0; i < 2 && status == 0; i++)
        status = open_side(&sides[i]);
    if (status == 0)
        status = load_rows(&sides[0], &sides[1], rows, count);
    if (status == 0 && *count > 1) {
        sort_measure = measure;
        qsort(*rows, *count, sizeof **rows, by_change);
    }
    for (int i = 0; i < 2; i++)
        sqlite3_finalize(sides[i].stmt);
    return status;
}

void pk_diff_free(pk_diff_row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(rows[i].function);
        free(rows[i].file);
    }
    free(rows);
}

static int print_rows(pk_query *q, row *rows, size_t count, uint64_t limit)
{
    pk_column columns[2 + 3 * MEASURES];
    char names[3 * MEASURES][32];
    size_t n = 0;
    columns[n++] = (pk_column){"function", PK_COLUMN_TEXT};
    for (int m = 0; m < MEASURES; m++) {
        static const char *const suffixes[] = {"_a", "_b", "_delta"};
        for (int s = 0; s < 3; s++) {
            char *name = names[m * 3 + s];
            snprintf(name, sizeof names[0], "%s%s", pk_diff_measure_names[m], suffixes[s]);
            columns[n++] = (pk_column){name, pk_diff_measure_kinds[m]};
        }
    }
    columns[n++] = (pk_column){"file", PK_COLUMN_TEXT};
    pk_table *out = pk_table_new(q->out, q->format, columns, n);
    for (size_t i = 0; i < count && (limit == 0 || i < limit); i++) {
        const row *r = &rows[i];
        pk_table_text(out, r->function);
        for (int m = 0; m < MEASURES; m++) {
            const side *sides[] = {&r->a, &r->b};
            for (int s = 0; s < 2; s++) {
                if (sides[s]->known[m])
                    pk_table_int(out, sides[s]->value[m]);
                else
                    pk_table_null(out);
            }
            if (r->a.known[m] && r->b.known[m])
                pk_table_int(out, r->b.value[m] - r->a.value[m]);
            else
                pk_table_null(out);
        }
        pk_table_text(out, r->file);
    }
    return pk_table_finish(out) == 0 ? 0 : pk_query_write_failed(q, "the output");
}

static int diff_main(int argc, char **argv)
{
    pk_query shared;
    pk_query_init(&shared, &pk_cmd_diff);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_diff, options, PK_ARRAY_SIZE(options), argc, argv);
    const char *operands[2];
    size_t operand_count = 0;
    uint64_t limit = 20;
    int by = M_TOTAL;
    const pk_cli_value values[] = {PK_CHOICE(OPT_BY, &by, "key", keys, MEASURES),
                                   PK_VALUE(OPT_LIMIT, PK_VALUE_UINT, &limit)};
    const char *value;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (o) {
        case PK_CLI_EXIT:
            return p.status;
        case PK_CLI_OPERAND:
            if (operand_count == 2)
                return pk_cli_usage(&p, "unexpected argument '%s' (diff compares two runs)", value);
            operands[operand_count++] = value;
            break;
        default: {
            int taken = pk_cli_take(&p, values, PK_ARRAY_SIZE(values), o, value);
            if (taken < 0 || (taken == 0 && pk_query_option(&p, &shared, o, value) != 0))
                return PK_EXIT_USAGE;
        }
        }
    }
    if (operand_count != 2)
        return pk_cli_usage(&p, "two runs to compare are needed (usage: pikoc diff [OPTIONS] A B)");

    pk_query queries[2];
    char *owned[2];
    int status = 0;
    for (int i = 0; i < 2; i++) {
        queries[i] = shared;
        pk_diff_operand(operands[i], &queries[i], &owned[i]);
    }
    for (int i = 0; i < 2 && status == 0; i++)
        status = pk_query_open(&queries[i], true);
    row *rows = NULL;
    size_t count = 0;
    if (status == 0)
        status = pk_diff_load(&queries[0], &queries[1], by, &rows, &count);
    if (status == 0)
        status = print_rows(&shared, rows, count, limit);
    pk_diff_free(rows, count);
    for (int i = 0; i < 2; i++) {
        pk_query_close(&queries[i]);
        free(owned[i]);
    }
    return status;
}
