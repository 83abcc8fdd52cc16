/*
 * report.c — `pikoc report`: one self-contained HTML page about a run (its
 * facts, the memory timeline, the time and allocation flame graphs, the top
 * functions and call paths, leaks and the peak, and with --vs the changes
 * from another run). Inline CSS, JS and SVG only: it opens without network.
 * What is drawn is capped, and the page says where. Read-only on databases.
 */
#include "pictures.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char help[] =
    "usage: pikoc report [OPTIONS] [DB]\n"
    "\n"
    "Writes one HTML file about a run that any browser opens without network\n"
    "access: the run's summary, the memory timeline (pikoc plot), the time and\n"
    "allocation flame graphs (pikoc flame), the top functions and call paths in\n"
    "sortable tables (click a heading), the leaks and the heap's peak when the run\n"
    "has allocation records, and with --vs the change per function from another\n"
    "run (pikoc diff). Large runs are capped: the tables show the first 50 rows,\n"
    "the timeline is downsampled to its pixel columns, frames under a pixel merge;\n"
    "the page says so where it happens.\n"
    "\n"
    "options:\n"
    "  -d, --db FILE        the database (default: pikoc.db; also the DB operand)\n"
    "  -r, --run N          the run (default: the latest; see pikoc runs)\n"
    "  -o, --output FILE    the HTML to write (default: report.html; - for stdout)\n"
    "  --vs RUN             compare with RUN: N, FILE:N or FILE (as pikoc diff's A)\n"
    "  -h, --help           this help\n"
    "\n"
    "example:\n"
    "  pikoc report --vs 1 -o report.html\n";

static int report_main(int argc, char **argv);

const pk_cli_command pk_cmd_report = {
    .name = "report",
    .summary = "one self-contained HTML page: timeline, flame graphs, tables",
    .help = help,
    .main = report_main,
};

enum { OPT_VS = PK_PICTURE_OPTION_COUNT };

static const pk_cli_option options[] = {PK_PICTURE_OPTIONS, [OPT_VS] = {"vs", 0, "RUN"}};

/* The most rows a table shows: more would make a large run's page slow. */
enum { TABLE_ROWS = 50 };

typedef struct report {
    pk_query *q;
    pk_query *vs; /* NULL without --vs */
    FILE *out;
    pk_run_facts facts;
} report;

/* ---- cells ---------------------------------------------------------------------------- */

static void cell_text(FILE *out, const char *text)
{
    fputs("<td>", out);
    pk_markup_escape(out, text);
    fputs("</td>", out);
}

/* A number: readable in the cell, exact in data-v for sorting and in the hover title. */
static void cell_number(FILE *out, pk_column_kind kind, int64_t value, bool known)
{
    if (!known) {
        fputs("<td class=\"n\">-</td>", out);
        return;
    }
    char shown[32];
    if (kind == PK_COLUMN_NS)
        pk_readable_ns(value, shown, sizeof shown);
    else if (kind == PK_COLUMN_BYTES)
        pk_readable_bytes(value, shown, sizeof shown);
    else
        snprintf(shown, sizeof shown, "%lld", (long long)value);
    fprintf(out, "<td class=\"n\" data-v=\"%lld\" title=\"%lld\">%s</td>", (long long)value,
            (long long)value, shown);
}

static void cell_column(FILE *out, sqlite3_stmt *stmt, int i, pk_column_kind kind)
{
    cell_number(out, kind, sqlite3_column_int64(stmt, i),
                sqlite3_column_type(stmt, i) != SQLITE_NULL);
}

static void table_head(FILE *out, const char *const *names, size_t count)
{
    fputs("<table class=\"sortable\"><thead><tr>", out);
    for (size_t i = 0; i < count; i++) {
        fputs("<th>", out);
        pk_markup_escape(out, names[i]);
        fputs("</th>", out);
    }
    fputs("</tr></thead><tbody>\n", out);
}

/*
 * The rows of stmt as a sortable table, headed by the columns' names, each
 * cell by its column's kind (the same columns the query commands print);
 * finalizes stmt. 0, or the exit status after a read error.
 */
static int statement_table(report *r, sqlite3_stmt *stmt, const pk_column *columns, size_t count)
{
    const char *names[16];
    for (size_t i = 0; i < count && i < PK_ARRAY_SIZE(names); i++)
        names[i] = columns[i].name;
    table_head(r->out, names, count);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        fputs("<tr>", r->out);
        for (size_t i = 0; i < count; i++) {
            if (columns[i].kind == PK_COLUMN_TEXT)
                cell_text(r->out, (const char *)sqlite3_column_text(stmt, (int)i));
            else
                cell_column(r->out, stmt, (int)i, columns[i].kind);
        }
        fputs("</tr>\n", r->out);
    }
    fputs("</tbody></table>\n", r->out);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(r->q);
}

static void note(FILE *out, const char *text)
{
    fputs("<p class=\"note\">", out);
    pk_markup_escape(out, text);
    fputs("</p>\n", out);
}

/* "The first 50 of 812 functions, by total time." when capped. */
static void cap_note(FILE *out, int64_t shown, int64_t all, const char *what, const char *order)
{
    char text[160];
    if (shown < all)
        snprintf(text, sizeof text, "The first %lld of %lld %s, %s.", (long long)shown,
                 (long long)all, what, order);
    else
        snprintf(text, sizeof text, "All %lld %s, %s.", (long long)all, what, order);
    note(out, text);
}

/* ---- sections ------------------------------------------------------------------------- */

static int summary(report *r)
{
    sqlite3_stmt *stmt = pk_query_prepare(
        r->q, "SELECT command_line, host, pid, start_ns, duration_ns, monitor, clock,"
              " alloc_source, status, events, calls, written, dropped, unmatched, unfinished"
              " FROM runs WHERE id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, r->q->run_id);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        return pk_query_fail(r->q);
    }
    FILE *out = r->out;
    fprintf(out, "<h1>pikoc run <span id=\"run-id\">%lld</span>: ", (long long)r->q->run_id);
    pk_markup_escape(out, (const char *)sqlite3_column_text(stmt, 0));
    fputs("</h1>\n<section id=\"summary\"><h2>Summary</h2><table class=\"facts\">\n", out);
    static const char *const text_facts[] = {"command line", "host"};
    for (int i = 0; i < 2; i++) {
        fprintf(out, "<tr><th>%s</th>", text_facts[i]);
        cell_text(out, (const char *)sqlite3_column_text(stmt, i));
        fputs("</tr>\n", out);
    }
    fputs("<tr><th>pid</th>", out);
    cell_column(out, stmt, 2, PK_COLUMN_INTEGER);
    time_t start = (time_t)(sqlite3_column_int64(stmt, 3) / 1000000000);
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&start, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fputs("</tr>\n<tr><th>started</th>", out);
    cell_text(out, when);
    fputs("</tr>\n<tr><th>duration</th>", out);
    cell_column(out, stmt, 4, PK_COLUMN_NS);
    fputs("</tr>\n", out);
    static const char *const labels[] = {"monitor", "clock", "allocation counters", "status"};
    for (int i = 0; i < 4; i++) {
        fprintf(out, "<tr><th>%s</th>", labels[i]);
        cell_text(out, (const char *)sqlite3_column_text(stmt, 5 + i));
        fputs("</tr>\n", out);
    }
    static const char *const counts[] = {
        "events", "calls", "events stored", "dropped", "unmatched returns", "unfinished calls"};
    for (int i = 0; i < 6; i++) {
        fprintf(out, "<tr><th>%s</th>", counts[i]);
        cell_column(out, stmt, 9 + i, PK_COLUMN_INTEGER);
        fputs("</tr>\n", out);
    }
    fputs("</table></section>\n", out);
    sqlite3_finalize(stmt);
    return 0;
}

static int timeline(report *r)
{
    fputs("<section id=\"timeline\"><h2>Memory timeline</h2>\n", r->out);
    int status = 0;
    if (r->facts.flags & PK_RECORD_MEMORY) {
        pk_plot_options o = pk_plot_defaults();
        o.id = "plot";
        status = pk_plot_write(r->q, r->out, &o);
    } else {
        char text[160];
        snprintf(text, sizeof text,
                 "No RSS/VMS samples (monitor %s): record with --monitor function-memory.",
                 r->facts.monitor);
        note(r->out, text);
    }
    fputs("</section>\n", r->out);
    return status;
}

/* A section holding a flame graph: ids differ, the graph's zoom script finds its <svg> by id. */
static int flame(report *r, int weight, const char *section, const char *id, const char *heading)
{
    fprintf(r->out, "<section id=\"%s\"><h2>%s</h2>\n", section, heading);
    bool weighable;
    int status = pk_flame_check(r->q, weight, &weighable);
    if (status == 0 && weighable) {
        pk_flame_options o = pk_flame_defaults(weight);
        o.id = id;
        o.width = 1100;
        status = pk_flame_write(r->q, r->out, &o);
    } else if (status == 0) {
        char text[256];
        snprintf(text, sizeof text, "No allocation counters in this run (%s).",
                 r->facts.alloc_source);
        note(r->out, text);
    }
    fputs("</section>\n", r->out);
    return status;
}

static int64_t count_rows(pk_query *q, const char *sql)
{
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (n < 0)
        pk_query_fail(q);
    return n;
}

static int functions(report *r)
{
    FILE *out = r->out;
    fputs("<section id=\"functions\"><h2>Top functions</h2>\n", out);
    int64_t all = count_rows(r->q, "SELECT count(*) FROM functions WHERE run_id = ?");
    sqlite3_stmt *stmt =
        all < 0
            ? NULL
            : pk_query_prepare(r->q,
                               "SELECT s.function, f.calls, f.total_ns, f.self_ns, f.alloc_bytes,"
                               " f.free_bytes, f.rss_growth, s.file, s.line FROM functions f"
                               " JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id"
                               " WHERE f.run_id = ? ORDER BY f.total_ns DESC, s.function LIMIT ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, r->q->run_id);
    sqlite3_bind_int(stmt, 2, TABLE_ROWS);
    cap_note(out, all < TABLE_ROWS ? all : TABLE_ROWS, all, "functions", "by total time");
    static const pk_column columns[] = {
        {"function", PK_COLUMN_TEXT},    {"calls", PK_COLUMN_INTEGER}, {"total", PK_COLUMN_NS},
        {"self", PK_COLUMN_NS},          {"alloc", PK_COLUMN_BYTES},   {"free", PK_COLUMN_BYTES},
        {"RSS growth", PK_COLUMN_BYTES}, {"file", PK_COLUMN_TEXT},     {"line", PK_COLUMN_INTEGER},
    };
    int status = statement_table(r, stmt, columns, PK_ARRAY_SIZE(columns));
    fputs("</section>\n", out);
    return status;
}

static const pk_path_node *path_base;

static int by_total(const void *a, const void *b)
{
    const pk_path_node *x = &path_base[*(const size_t *)a], *y = &path_base[*(const size_t *)b];
    if (x->total_ns != y->total_ns)
        return x->total_ns > y->total_ns ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* "main > parse > read_line": the node's callers from the outermost. */
static void path_text(FILE *out, const pk_call_tree *t, size_t node)
{
    if (t->nodes[node].parent != SIZE_MAX) {
        path_text(out, t, t->nodes[node].parent);
        fputs(" &gt; ", out);
    }
    pk_markup_escape(out, t->nodes[node].function);
}

static int call_paths(report *r)
{
    FILE *out = r->out;
    pk_call_tree t;
    int status = pk_call_tree_load(r->q, &t);
    if (status != 0) {
        pk_call_tree_free(&t);
        return status;
    }
    fputs("<section id=\"paths\"><h2>Heaviest call paths</h2>\n", out);
    size_t *order = pk_xcalloc(t.count ? t.count : 1, sizeof *order);
    for (size_t i = 0; i < t.count; i++)
        order[i] = i;
    path_base = t.nodes;
    qsort(order, t.count, sizeof *order, by_total);
    size_t shown = t.count < TABLE_ROWS ? t.count : TABLE_ROWS;
    cap_note(out, (int64_t)shown, (int64_t)t.count, "call paths", "by inclusive time");
    static const char *const names[] = {"call path", "calls", "total", "self", "alloc", "free"};
    table_head(out, names, PK_ARRAY_SIZE(names));
    for (size_t i = 0; i < shown; i++) {
        const pk_path_node *n = &t.nodes[order[i]];
        fputs("<tr><td class=\"path\">", out);
        path_text(out, &t, order[i]);
        fputs("</td>", out);
        cell_number(out, PK_COLUMN_INTEGER, n->calls, true);
        cell_number(out, PK_COLUMN_NS, n->total_ns, true);
        cell_number(out, PK_COLUMN_NS, n->self_ns, true);
        cell_number(out, PK_COLUMN_BYTES, n->bytes[PK_PATH_ALLOC], n->measured[PK_PATH_ALLOC]);
        cell_number(out, PK_COLUMN_BYTES, n->bytes[PK_PATH_FREE], n->measured[PK_PATH_FREE]);
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table></section>\n", out);
    free(order);
    pk_call_tree_free(&t);
    return 0;
}

/* Leaks and the peak come from the allocation tables (pikoc run --monitor alloc). */
static int allocations(report *r)
{
    FILE *out = r->out;
    static const char *const sections[][2] = {
        {"sites", "Allocation sites"}, {"leaks", "Leaks"}, {"peak", "Peak heap"}};
    bool recorded;
    int status = pk_query_has_alloc(r->q, &recorded);
    if (status != 0)
        return status;
    if (!recorded) {
        char text[160];
        snprintf(text, sizeof text,
                 "Run %lld has no allocation records (record them with pikoc run --monitor "
                 "alloc).",
                 (long long)r->q->run_id);
        for (size_t i = 0; i < PK_ARRAY_SIZE(sections); i++) {
            fprintf(out, "<section id=\"%s\"><h2>%s</h2>\n", sections[i][0], sections[i][1]);
            note(out, text);
            fputs("</section>\n", out);
        }
        return 0;
    }
    /* pikoc top --by bytes --group site, then pikoc leaks, then pikoc peak's moment. */
    fprintf(out, "<section id=\"%s\"><h2>%s</h2>\n", sections[0][0], sections[0][1]);
    note(out, "The call sites of malloc, new, ... by bytes requested (the first 50).");
    sqlite3_stmt *stmt = pk_sites_prepare(r->q, "bytes", false, TABLE_ROWS);
    status = stmt ? statement_table(r, stmt, pk_site_columns, PK_SITE_COLUMNS) : PK_EXIT_USAGE;
    fprintf(out, "</section>\n<section id=\"%s\"><h2>%s</h2>\n", sections[1][0], sections[1][1]);
    if (status == 0) {
        note(out, "Blocks never freed, by the call site that allocated them (the first 50).");
        stmt = pk_leaks_prepare(r->q, TABLE_ROWS);
        status = stmt ? statement_table(r, stmt, pk_leak_columns, PK_LEAK_COLUMNS) : PK_EXIT_USAGE;
    }
    fprintf(out, "</section>\n<section id=\"%s\"><h2>%s</h2>\n", sections[2][0], sections[2][1]);
    stmt = status ? NULL
                  : pk_query_prepare(r->q, "SELECT peak_bytes, peak_time_ns FROM alloc_runs"
                                           " WHERE run_id = ?");
    if (stmt) {
        sqlite3_bind_int64(stmt, 1, r->q->run_id);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            char bytes[32], when[32], text[160];
            pk_readable_bytes(sqlite3_column_int64(stmt, 0), bytes, sizeof bytes);
            pk_readable_ns(sqlite3_column_int64(stmt, 1), when, sizeof when);
            snprintf(text, sizeof text, "The heap peaked at %s (%lld bytes), %s after the start.",
                     bytes, (long long)sqlite3_column_int64(stmt, 0), when);
            note(out, text);
        } else if (rc != SQLITE_DONE) {
            status = pk_query_fail(r->q);
        }
        sqlite3_finalize(stmt);
    } else if (status == 0) {
        status = PK_EXIT_USAGE;
    }
    fputs("</section>\n", out);
    return status;
}

static int comparison(report *r)
{
    pk_diff_row *rows;
    size_t count;
    int status = pk_diff_load(r->vs, r->q, PK_DIFF_TOTAL, &rows, &count);
    if (status != 0)
        return status;
    FILE *out = r->out;
    fprintf(out, "<section id=\"diff\"><h2>Compared with run %lld", (long long)r->vs->run_id);
    if (strcmp(r->vs->path, r->q->path) != 0) {
        fputs(" of ", out);
        pk_markup_escape(out, r->vs->path);
    }
    fputs("</h2>\n", out);
    char text[200];
    snprintf(text, sizeof text,
             "Per function (by name and file), A is run %lld, B this run; the largest changes "
             "of total time first.",
             (long long)r->vs->run_id);
    note(out, text);
    size_t shown = count < TABLE_ROWS ? count : TABLE_ROWS;
    cap_note(out, (int64_t)shown, (int64_t)count, "functions", "by the change of total time");
    const char *names[2 + 3 * PK_DIFF_MEASURES];
    char labels[3 * PK_DIFF_MEASURES][32];
    size_t n = 0;
    names[n++] = "function";
    for (int m = 0; m < PK_DIFF_MEASURES; m++) {
        static const char *const suffixes[] = {" A", " B", " change"};
        for (int s = 0; s < 3; s++) {
            snprintf(labels[m * 3 + s], sizeof labels[0], "%s%s", pk_diff_measure_names[m],
                     suffixes[s]);
            names[n++] = labels[m * 3 + s];
        }
    }
    names[n++] = "file";
    table_head(out, names, n);
    for (size_t i = 0; i < shown; i++) {
        const pk_diff_row *row = &rows[i];
        fputs("<tr>", out);
        cell_text(out, row->function);
        for (int m = 0; m < PK_DIFF_MEASURES; m++) {
            pk_column_kind kind = pk_diff_measure_kinds[m];
            cell_number(out, kind, row->a.value[m], row->a.known[m]);
            cell_number(out, kind, row->b.value[m], row->b.known[m]);
            cell_number(out, kind, row->b.value[m] - row->a.value[m],
                        row->a.known[m] && row->b.known[m]);
        }
        cell_text(out, row->file);
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table></section>\n", out);
    pk_diff_free(rows, count);
    return 0;
}

/* ---- the page ------------------------------------------------------------------------- */

static const char style[] =
    "body{font-family:Verdana,DejaVu Sans,sans-serif;font-size:13px;margin:16px 24px;"
    "color:#222}\n"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}\n"
    "table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 8px;border-bottom:1px solid "
    "#eee;text-align:left}\n"
    "td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}td.path{font-"
    "family:monospace}\n"
    "table.sortable th{cursor:pointer;background:#f2f2f2}table.sortable th[data-dir=a]:after"
    "{content:' \\25B2'}table.sortable th[data-dir=d]:after{content:' \\25BC'}\n"
    ".facts th{background:none;font-weight:normal;color:#555}.note{color:#555}\n"
    "#errors{color:#b00}\n";

/* Runs first: any later script error lands in the page, where a test can read it. */
static const char error_script[] =
    "window.onerror = function (message, source, line) {\n"
    "  var root = document.documentElement;\n"
    "  root.setAttribute('data-errors', String(Number(root.getAttribute('data-errors') || 0) + "
    "1));\n"
    "  var list = document.getElementById('errors');\n"
    "  if (list) list.textContent += message + ' (line ' + line + ')\\n';\n"
    "};\n";

/* Click a heading to sort by it; numbers sort by their exact value (data-v). */
static const char sort_script[] =
    "(function () {\n"
    "  var tables = document.querySelectorAll('table.sortable');\n"
    "  function key(cell) {\n"
    "    var v = cell.getAttribute('data-v');\n"
    "    return v === null ? null : Number(v);\n"
    "  }\n"
    "  function compare(i, up) {\n"
    "    return function (x, y) {\n"
    "      var a = key(x.cells[i]), b = key(y.cells[i]), r;\n"
    "      if (a !== null && b !== null) r = a - b;\n"
    "      else if (a !== null || b !== null) r = a === null ? -1 : 1;\n"
    "      else r = x.cells[i].textContent.localeCompare(y.cells[i].textContent);\n"
    "      return up ? r : -r;\n"
    "    };\n"
    "  }\n"
    "  Array.prototype.forEach.call(tables, function (table) {\n"
    "    var heads = table.querySelectorAll('th');\n"
    "    Array.prototype.forEach.call(heads, function (th, i) {\n"
    "      th.addEventListener('click', function () {\n"
    "        var up = th.getAttribute('data-dir') === 'd';\n"
    "        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); "
    "});\n"
    "        th.setAttribute('data-dir', up ? 'a' : 'd');\n"
    "        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);\n"
    "        rows.sort(compare(i, up));\n"
    "        rows.forEach(function (row) { body.appendChild(row); });\n"
    "      });\n"
    "    });\n"
    "  });\n"
    /* Where the timeline landed, in CSS pixels: what a screenshot of the page should show. */
    "  var plot = document.getElementById('plot');\n"
    "  if (plot) {\n"
    "    var box = plot.getBoundingClientRect();\n"
    "    document.documentElement.setAttribute('data-plot-box', [box.left, box.top, box.width,\n"
    "      box.height].map(Math.round).join(','));\n"
    "  }\n"
    "  document.documentElement.setAttribute('data-ready', 'true');\n"
    "})();\n";

int pk_report_write(pk_query *q, FILE *out, pk_query *vs)
{
    report r = {.q = q, .vs = vs, .out = out};
    int status = pk_query_run_facts(q, &r.facts);
    if (status != 0)
        return status;
    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>pikoc run %lld</title>\n<style>\n%s</style>\n<script>\n%s</script>\n"
            "</head>\n<body data-run=\"%lld\">\n",
            (long long)q->run_id, style, error_script, (long long)q->run_id);
    status = summary(&r);
    if (status == 0)
        status = timeline(&r);
    if (status == 0)
        status = flame(&r, PK_WEIGHT_TIME, "time", "flame-time", "Time by call path");
    if (status == 0)
        status =
            flame(&r, PK_WEIGHT_ALLOC, "allocations", "flame-alloc", "Allocations by call path");
    if (status == 0)
        status = functions(&r);
    if (status == 0)
        status = call_paths(&r);
    if (status == 0)
        status = allocations(&r);
    if (status == 0 && r.vs)
        status = comparison(&r);
    fprintf(out, "<pre id=\"errors\"></pre>\n<script>\n%s</script>\n</body>\n</html>\n",
            sort_script);
    return status;
}

static int write_report(pk_query *q, FILE *out, void *context)
{
    return pk_report_write(q, out, context);
}

static int report_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_report);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_report, options, PK_ARRAY_SIZE(options), argc, argv);
    pk_picture_args args = {.output = "report.html", .writes = "HTML"};
    const char *vs_arg = NULL;
    const char *value;
    for (int opt; (opt = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (opt) {
        case PK_CLI_EXIT:
            return p.status;
        case OPT_VS:
            vs_arg = value;
            break;
        default:
            if (pk_picture_option(&p, &q, &args, opt, value) != 0)
                return PK_EXIT_USAGE;
        }
    }
    /* --vs N reads this database; FILE:N and FILE another (pikoc diff's operands). */
    pk_query vs = q;
    vs.run_arg = NULL;
    char *owned = NULL;
    if (vs_arg)
        pk_diff_operand(vs_arg, &vs, &owned);
    int status = pk_query_open(&q, true);
    if (status == 0 && vs_arg)
        status = pk_query_open(&vs, true);
    if (status == 0 && vs_arg)
        status = pk_output_check(&vs, args.output, "--vs");
    if (status == 0)
        status = pk_picture_save(&q, args.output, write_report, vs_arg ? &vs : NULL);
    pk_query_close(&vs);
    pk_query_close(&q);
    free(owned);
    return status;
}
