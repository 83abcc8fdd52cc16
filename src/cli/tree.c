/*
 * tree.c — `pikoc tree`: the calling-context tree of a run from its
 * call-path aggregates (threads merged), heaviest child first, with
 * inclusive time, its share of the run and the bytes allocated and freed.
 * Read-only.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc tree [OPTIONS]\n"
    "\n"
    "Prints the call tree of a run: one node per call path (main > parse > read is\n"
    "not main > eval > read), children under their caller, the heaviest first.\n"
    "total is inclusive time, percent its share of the time in recorded calls, alloc\n"
    "and free the bytes allocated and freed during the calls, callees included.\n"
    "\n"
    "options:\n" PK_RUN_HELP
    "  --depth N            show paths down to depth N (0: the outermost calls only)\n"
    "  --min-percent P      hide paths (and what they call) under P percent of the\n"
    "                       time\n"
    "  -h, --help           this help\n"
    "\n"
    "CSV and JSON carry id, parent_id and depth instead of the indentation. JSON\n"
    "fields: calls, total_ns, percent, self_ns, alloc_bytes, free_bytes, rss_growth,\n"
    "function, file, line, depth, id, parent_id.\n"
    "\n"
    "example:\n"
    "  pikoc tree --depth 3 --min-percent 1\n";

static int tree_main(int argc, char **argv);

const pk_cli_command pk_cmd_tree = {
    .name = "tree",
    .summary = "the call tree with inclusive time and bytes",
    .help = help,
    .main = tree_main,
};

enum { OPT_DEPTH = PK_RUN_OPTION_COUNT, OPT_MIN_PERCENT };

static const pk_cli_option options[] = {
    PK_RUN_OPTIONS, [OPT_DEPTH] = {"depth", 0, "N"}, [OPT_MIN_PERCENT] = {"min-percent", 0, "P"}};

/* The table shows the first TABLE_COLUMNS; CSV and JSON all of them. */
#define TABLE_COLUMNS 10
static const pk_column columns[] = {
    {"calls", PK_COLUMN_INTEGER},     {"total_ns", PK_COLUMN_NS},
    {"percent", PK_COLUMN_REAL},      {"self_ns", PK_COLUMN_NS},
    {"alloc_bytes", PK_COLUMN_BYTES}, {"free_bytes", PK_COLUMN_BYTES},
    {"rss_growth", PK_COLUMN_BYTES},  {"function", PK_COLUMN_TEXT},
    {"file", PK_COLUMN_TEXT},         {"line", PK_COLUMN_INTEGER},
    {"depth", PK_COLUMN_INTEGER},     {"id", PK_COLUMN_INTEGER},
    {"parent_id", PK_COLUMN_INTEGER},
};

static void add_child(size_t **list, size_t *count, size_t child)
{
    *list = realloc(*list, (*count + 1) * sizeof **list);
    if (!*list)
        abort();
    (*list)[(*count)++] = child;
}

/* The index of the node with this id among the first `count` (ids ascend), or SIZE_MAX. */
static size_t find_node(const pk_call_tree *t, size_t count, int64_t id)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->nodes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < count && t->nodes[lo].id == id ? lo : SIZE_MAX;
}

int pk_call_tree_load(pk_query *q, pk_call_tree *t)
{
    memset(t, 0, sizeof *t);
    sqlite3_stmt *stmt = pk_query_prepare(
        q, "SELECT c.id, c.parent_id, c.depth, c.calls, c.total_ns, c.self_ns, c.alloc_bytes,"
           " c.free_bytes, c.rss_growth, s.function, s.file, s.line"
           " FROM call_paths c JOIN symbols s ON s.run_id = c.run_id AND s.id = c.symbol_id"
           " WHERE c.run_id = ? ORDER BY c.id");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    size_t capacity = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (t->count == capacity) {
            capacity = capacity ? capacity * 2 : 256;
            t->nodes = realloc(t->nodes, capacity * sizeof *t->nodes);
            if (!t->nodes)
                abort();
        }
        pk_path_node *n = &t->nodes[t->count];
        memset(n, 0, sizeof *n);
        n->id = sqlite3_column_int64(stmt, 0);
        n->depth = sqlite3_column_int64(stmt, 2);
        n->calls = sqlite3_column_int64(stmt, 3);
        n->total_ns = sqlite3_column_int64(stmt, 4);
        n->self_ns = sqlite3_column_int64(stmt, 5);
        for (int m = 0; m < PK_PATH_MEASURES; m++) {
            n->measured[m] = sqlite3_column_type(stmt, 6 + m) != SQLITE_NULL;
            n->bytes[m] = sqlite3_column_int64(stmt, 6 + m);
        }
        n->function = pk_xstrdup((const char *)sqlite3_column_text(stmt, 9));
        n->file = pk_xstrdup((const char *)sqlite3_column_text(stmt, 10));
        n->line = sqlite3_column_int64(stmt, 11);
        n->parent = sqlite3_column_type(stmt, 1) == SQLITE_NULL
                        ? SIZE_MAX
                        : find_node(t, t->count, sqlite3_column_int64(stmt, 1));
        size_t self = t->count++;
        /* A node whose parent is missing still shows, as a root. */
        if (t->nodes[self].parent == SIZE_MAX)
            add_child(&t->roots, &t->root_count, self);
        else
            add_child(&t->nodes[t->nodes[self].parent].children,
                      &t->nodes[t->nodes[self].parent].child_count, self);
    }
    int status = rc == SQLITE_DONE ? 0 : pk_query_fail(q);
    sqlite3_finalize(stmt);
    return status;
}

const char *const pk_weight_names[PK_WEIGHT_COUNT] = {"time", "alloc", "leaked", "peak"};
const char *const pk_weight_site_columns[PK_WEIGHT_COUNT] = {NULL, "bytes", "leaked_bytes",
                                                             "peak_bytes"};

size_t pk_call_tree_index(const pk_call_tree *t, int64_t id)
{
    return find_node(t, t->count, id);
}

void pk_call_tree_free(pk_call_tree *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->nodes[i].function);
        free(t->nodes[i].file);
        free(t->nodes[i].children);
    }
    free(t->nodes);
    free(t->roots);
    memset(t, 0, sizeof *t);
}

static const pk_path_node *sort_base;

/* Heaviest first; equal ones in the order they were first seen (node id). */
static int by_weight(const void *a, const void *b)
{
    const pk_path_node *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    if (x->total_ns != y->total_ns)
        return x->total_ns > y->total_ns ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* n's row; paths_count bounds the indentation (a damaged file may say any depth). */
static void print_node(pk_table *out, const pk_path_node *n, double run_total, bool table,
                       size_t paths_count)
{
    pk_table_int(out, n->calls);
    pk_table_int(out, n->total_ns);
    pk_table_real(out, run_total > 0 ? 100.0 * (double)n->total_ns / run_total : NAN);
    pk_table_int(out, n->self_ns);
    for (int m = 0; m < PK_PATH_MEASURES; m++) {
        if (n->measured[m])
            pk_table_int(out, n->bytes[m]);
        else
            pk_table_null(out);
    }
    if (table) {
        /* Two spaces a level: the tree's shape, in the table only. */
        size_t level = n->depth > 0 ? (size_t)n->depth : 0;
        size_t indent = (level < paths_count ? level : paths_count) * 2;
        char *text = pk_xcalloc(indent + strlen(n->function) + 1, 1);
        memset(text, ' ', indent);
        strcpy(text + indent, n->function);
        pk_table_text(out, text);
        free(text);
    } else {
        pk_table_text(out, n->function);
    }
    pk_table_text(out, n->file);
    pk_table_int(out, n->line);
    if (table)
        return;
    pk_table_int(out, n->depth);
    pk_table_int(out, n->id);
    if (n->parent == SIZE_MAX)
        pk_table_null(out);
    else
        pk_table_int(out, sort_base[n->parent].id);
}

static int tree_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_tree);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_tree, options, PK_ARRAY_SIZE(options), argc, argv);
    uint64_t max_depth = UINT64_MAX;
    double min_percent = 0;
    const pk_cli_value values[] = {PK_VALUE(OPT_DEPTH, PK_VALUE_UINT, &max_depth),
                                   PK_VALUE(OPT_MIN_PERCENT, PK_VALUE_REAL, &min_percent)};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    status = pk_query_open(&q, true);
    if (status != 0)
        return status;
    if ((status = pk_query_call_run(&q)) != 0) {
        pk_query_close(&q);
        return status;
    }
    pk_call_tree t;
    status = pk_call_tree_load(&q, &t);
    if (status == 0) {
        sort_base = t.nodes;
        double run_total = 0;
        for (size_t i = 0; i < t.root_count; i++)
            run_total += (double)t.nodes[t.roots[i]].total_ns;
        for (size_t i = 0; i < t.count; i++)
            if (t.nodes[i].child_count > 1)
                qsort(t.nodes[i].children, t.nodes[i].child_count, sizeof(size_t), by_weight);
        if (t.root_count > 1)
            qsort(t.roots, t.root_count, sizeof(size_t), by_weight);

        bool table = q.format == PK_FORMAT_TABLE;
        pk_table *out =
            pk_table_new(q.out, q.format, columns, table ? TABLE_COLUMNS : PK_ARRAY_SIZE(columns));
        /* Depth first with an explicit stack: deep recursion makes deep trees. */
        size_t *stack = pk_xcalloc(t.count + 1, sizeof *stack);
        size_t top = 0;
        for (size_t i = t.root_count; i-- > 0;)
            stack[top++] = t.roots[i];
        while (top > 0) {
            const pk_path_node *n = &t.nodes[stack[--top]];
            if (run_total > 0 && 100.0 * (double)n->total_ns / run_total < min_percent)
                continue;
            print_node(out, n, run_total, table, t.count);
            if ((uint64_t)n->depth >= max_depth)
                continue;
            for (size_t i = n->child_count; i-- > 0;)
                stack[top++] = n->children[i];
        }
        free(stack);
        if (pk_table_finish(out) != 0)
            status = pk_query_write_failed(&q, "the output");
    }
    pk_call_tree_free(&t);
    pk_query_close(&q);
    return status;
}
