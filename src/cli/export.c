/*
 * export.c — `pikoc export`: a run for other tools. CSV of the events (the
 * rows of `pikoc events`), Chrome Trace Event JSON for Perfetto and
 * chrome://tracing, folded stacks for flamegraph.pl. Read-only on the
 * database; writes stdout or -o FILE.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "usage: pikoc export [OPTIONS]\n"
    "\n"
    "Writes a run in a format other tools read:\n"
    "  chrome   Chrome Trace Event JSON (the default): a B/E slice per call on its\n"
    "           thread, counter tracks RSS, VMS and heap (bytes allocated minus bytes\n"
    "           freed since each thread's first event, summed over threads), process\n"
    "           and thread names. Open it in https://ui.perfetto.dev or\n"
    "           chrome://tracing.\n"
    "  folded   folded stacks, one line per call path: 'main;parse;read_line 1234',\n"
    "           weighted by the path's own time in ns or, with --weight alloc, the\n"
    "           bytes it allocated itself (callees excluded), for flamegraph.pl.\n"
    "           For a run recorded with --monitor alloc, one line per allocation\n"
    "           call site (the recorded calls open then, and the function that\n"
    "           called malloc, new, ...), weighted by the bytes it asked for\n"
    "           (alloc), still held at the end (leaked) or held at the peak (peak);\n"
    "           recorded with --stack N, one line per stack instead, all its frames.\n"
    "  csv      the events, as pikoc events --format csv prints them.\n"
    "\n"
    "options:\n"
    "  -d, --db FILE        the database (default: pikoc.db in the current directory)\n"
    "  -r, --run N          the run (default: the latest; see pikoc runs)\n"
    "  -f, --format FORMAT  chrome, folded or csv\n"
    "  --weight WEIGHT      folded stacks weighted by time (the default), alloc,\n"
    "                       leaked or peak (the last two: --monitor alloc runs)\n"
    "  -o, --output FILE    write FILE instead of stdout (- for stdout); it is\n"
    "                       replaced only when the export is whole\n"
    "  -h, --help           this help\n"
    "\n"
    "examples:\n"
    "  pikoc export -o trace.json\n"
    "  pikoc export --format folded --weight alloc | flamegraph.pl > alloc.svg\n"
    "  pikoc export --format folded --weight leaked | flamegraph.pl > leaks.svg\n";

static int export_main(int argc, char **argv);

const pk_cli_command pk_cmd_export = {
    .name = "export",
    .summary = "the run as Chrome trace JSON, folded stacks or CSV",
    .help = help,
    .main = export_main,
};

enum { OPT_WEIGHT = PK_RUN_OPTION_COUNT, OPT_OUTPUT };

static const pk_cli_option options[] = {
    PK_RUN_OPTIONS, [OPT_WEIGHT] = {"weight", 0, "WEIGHT"}, [OPT_OUTPUT] = {"output", 'o', "FILE"}};

enum { EXPORT_CHROME, EXPORT_FOLDED, EXPORT_CSV };
static const char *const formats[] = {"chrome", "folded", "csv"};

/* ---- Chrome Trace Event JSON ------------------------------------------------------ */

/* Per thread: the open slices (to end them if the run stopped inside them) and heap counters. */
typedef struct thread_state {
    int64_t thread;
    char **open;
    size_t depth, capacity;
    int64_t allocated, freed;
    bool counted;
    int64_t last_ns;
} thread_state;

typedef struct chrome {
    FILE *out;
    int64_t pid;
    bool first;
    thread_state *threads;
    size_t thread_count;
    int64_t rss, vms, heap; /* last values written, to write only changes */
    bool memory_written, heap_written;
} chrome;

static void separator(chrome *c)
{
    fputs(c->first ? "\n" : ",\n", c->out);
    c->first = false;
}

static thread_state *thread_of(chrome *c, int64_t thread)
{
    for (size_t i = 0; i < c->thread_count; i++)
        if (c->threads[i].thread == thread)
            return &c->threads[i];
    c->threads = realloc(c->threads, (c->thread_count + 1) * sizeof *c->threads);
    if (!c->threads)
        abort();
    thread_state *t = &c->threads[c->thread_count++];
    memset(t, 0, sizeof *t);
    t->thread = thread;
    return t;
}

static void slice(chrome *c, char phase, const char *name, int64_t thread, int64_t ns)
{
    separator(c);
    fputs("{\"name\":", c->out);
    pk_json_string(c->out, name);
    fprintf(c->out,
            ",\"cat\":\"function\",\"ph\":\"%c\",\"ts\":%lld.%03lld,\"pid\":%lld,\"tid\":%lld}",
            phase, (long long)(ns / 1000), (long long)(ns % 1000), (long long)c->pid,
            (long long)thread);
}

static void counter(chrome *c, const char *name, int64_t ns, int64_t bytes)
{
    separator(c);
    fprintf(
        c->out,
        "{\"name\":\"%s\",\"ph\":\"C\",\"ts\":%lld.%03lld,\"pid\":%lld,\"args\":{\"bytes\":%lld}}",
        name, (long long)(ns / 1000), (long long)(ns % 1000), (long long)c->pid, (long long)bytes);
}

static void push_open(thread_state *t, const char *name)
{
    if (t->depth == t->capacity) {
        t->capacity = t->capacity ? t->capacity * 2 : 16;
        t->open = realloc(t->open, t->capacity * sizeof *t->open);
        if (!t->open)
            abort();
    }
    t->open[t->depth++] = pk_xstrdup(name);
}

static int write_metadata(pk_query *q, chrome *c)
{
    sqlite3_stmt *stmt = pk_query_prepare(q, "SELECT pid, command_line FROM runs WHERE id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        c->pid = sqlite3_column_int64(stmt, 0);
        separator(c);
        fprintf(c->out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%lld,\"args\":{\"name\":",
                (long long)c->pid);
        pk_json_string(c->out, (const char *)sqlite3_column_text(stmt, 1));
        fputs("}}", c->out);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return pk_query_fail(q);
    stmt = pk_query_prepare(q, "SELECT thread FROM threads WHERE run_id = ? ORDER BY thread");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t tid = sqlite3_column_int64(stmt, 0);
        separator(c);
        fprintf(c->out,
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%lld,\"tid\":%lld,"
                "\"args\":{\"name\":\"",
                (long long)c->pid, (long long)tid);
        if (tid == c->pid)
            fputs("main", c->out);
        else
            fprintf(c->out, "thread %lld", (long long)tid);
        fputs("\"}}", c->out);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

enum { EV_TYPE, EV_FUNCTION, EV_THREAD, EV_TIME, EV_RSS, EV_VMS, EV_ALLOCATED, EV_FREED };

/* RSS and VMS are the process's; the heap in use sums each thread's allocated - freed. */
static void write_counters(chrome *c, thread_state *t, sqlite3_stmt *stmt, int64_t ns)
{
    if (sqlite3_column_type(stmt, EV_RSS) != SQLITE_NULL) {
        int64_t rss = sqlite3_column_int64(stmt, EV_RSS), vms = sqlite3_column_int64(stmt, EV_VMS);
        if (!c->memory_written || rss != c->rss)
            counter(c, "RSS", ns, rss);
        if (!c->memory_written || vms != c->vms)
            counter(c, "VMS", ns, vms);
        c->rss = rss;
        c->vms = vms;
        c->memory_written = true;
    }
    if (sqlite3_column_type(stmt, EV_ALLOCATED) != SQLITE_NULL) {
        int64_t allocated = sqlite3_column_int64(stmt, EV_ALLOCATED);
        int64_t freed = sqlite3_column_int64(stmt, EV_FREED);
        int64_t heap = c->heap + (allocated - t->allocated) - (freed - t->freed);
        if (!t->counted) /* counting starts at the thread's first event */
            heap = c->heap;
        t->allocated = allocated;
        t->freed = freed;
        t->counted = true;
        if (!c->heap_written || heap != c->heap)
            counter(c, "heap", ns, heap);
        c->heap = heap;
        c->heap_written = true;
    }
}

static int export_chrome(pk_query *q)
{
    chrome c = {.out = q->out, .first = true};
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", c.out);
    int status = write_metadata(q, &c);
    sqlite3_stmt *stmt =
        status
            ? NULL
            : pk_query_prepare(q,
                               "SELECT type, function, thread, time_ns, rss, vms, allocated, freed"
                               " FROM pikoc_events WHERE run_id = ?");
    if (!stmt)
        return status ? status : PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc;
    int64_t last_ns = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(stmt, EV_TYPE);
        const char *function = (const char *)sqlite3_column_text(stmt, EV_FUNCTION);
        int64_t thread = sqlite3_column_int64(stmt, EV_THREAD);
        int64_t ns = sqlite3_column_int64(stmt, EV_TIME);
        thread_state *t = thread_of(&c, thread);
        if (strcmp(type, "call") == 0) {
            slice(&c, 'B', function, thread, ns);
            push_open(t, function);
        } else if (t->depth > 0) {
            slice(&c, 'E', function, thread, ns);
            free(t->open[--t->depth]);
        }
        write_counters(&c, t, stmt, ns);
        t->last_ns = ns;
        if (ns > last_ns)
            last_ns = ns;
    }
    if (rc != SQLITE_DONE)
        status = pk_query_fail(q);
    sqlite3_finalize(stmt);
    /* A run that stopped inside calls (killed, crashed) still nests: end them at its last event. */
    for (size_t i = 0; i < c.thread_count; i++) {
        thread_state *t = &c.threads[i];
        while (t->depth > 0) {
            slice(&c, 'E', t->open[t->depth - 1], t->thread, last_ns);
            free(t->open[--t->depth]);
        }
        free(t->open);
    }
    free(c.threads);
    fputs("\n]}\n", c.out);
    return status;
}

/* ---- folded stacks ------------------------------------------------------------------- */

/* Each node's stack is its parent's plus its own name; parents come first. */
static char **path_stacks(const pk_call_tree *t)
{
    char **stacks = pk_xcalloc(t->count ? t->count : 1, sizeof *stacks);
    for (size_t i = 0; i < t->count; i++) {
        const pk_path_node *n = &t->nodes[i];
        const char *above = n->parent == SIZE_MAX ? NULL : stacks[n->parent];
        size_t size = (above ? strlen(above) + 1 : 0) + strlen(n->function) + 1;
        stacks[i] = pk_xcalloc(size, 1);
        snprintf(stacks[i], size, "%s%s%s", above ? above : "", above ? ";" : "", n->function);
    }
    return stacks;
}

static void free_stacks(char **stacks, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(stacks[i]);
    free(stacks);
}

/*
 * Allocation sites as stacks: the recorded calls open at the allocation,
 * then the function that called the allocator (when it is not the innermost
 * recorded call itself).
 */
static int export_alloc_sites(pk_query *q, int weight, const pk_call_tree *t, char **stacks)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT a.path_id, s.function, sum(a.%s) AS weight"
             " FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id"
             " WHERE a.run_id = ? GROUP BY a.path_id, s.function HAVING weight > 0"
             " ORDER BY a.path_id, s.function",
             pk_weight_site_columns[weight]);
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t node = sqlite3_column_type(stmt, 0) == SQLITE_NULL
                          ? SIZE_MAX
                          : pk_call_tree_index(t, sqlite3_column_int64(stmt, 0));
        const char *caller = (const char *)sqlite3_column_text(stmt, 1);
        long long value = sqlite3_column_int64(stmt, 2);
        if (node == SIZE_MAX)
            fprintf(q->out, "%s %lld\n", caller, value);
        else if (strcmp(t->nodes[node].function, caller) == 0)
            fprintf(q->out, "%s %lld\n", stacks[node], value);
        else
            fprintf(q->out, "%s;%s %lld\n", stacks[node], caller, value);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

/* With --stack N the recorded stacks themselves, outermost frame first. */
static int export_alloc_stacks(pk_query *q, int weight)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s AS stack, sum(a.%s) AS weight FROM alloc_stacks a"
             " WHERE a.run_id = ? GROUP BY stack HAVING weight > 0 ORDER BY stack",
             pk_query_stack_text(true), pk_weight_site_columns[weight]);
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        fprintf(q->out, "%s %lld\n", (const char *)sqlite3_column_text(stmt, 0),
                (long long)sqlite3_column_int64(stmt, 1));
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

static int export_folded(pk_query *q, int weight)
{
    bool sites = false, recorded_stacks = false;
    int status = weight == PK_WEIGHT_TIME ? pk_query_call_run(q) : pk_query_has_alloc(q, &sites);
    if (status != 0)
        return status;
    if (weight == PK_WEIGHT_LEAKED || weight == PK_WEIGHT_PEAK) {
        if (!sites)
            return pk_query_alloc_run(q);
    } else if (weight == PK_WEIGHT_ALLOC && !sites) {
        pk_run_facts facts;
        status = pk_query_run_facts(q, &facts);
        if (status != 0)
            return status;
        if (!(facts.flags & PK_RECORD_ALLOC)) {
            pk_cli_error(q->command->name,
                         "--weight alloc: run %lld has no allocation counters (%s)",
                         (long long)q->run_id, facts.alloc_source);
            return PK_EXIT_USAGE;
        }
    }
    if (sites && (status = pk_query_has_stacks(q, &recorded_stacks)) != 0)
        return status;
    if (recorded_stacks)
        return export_alloc_stacks(q, weight);
    pk_call_tree t;
    status = pk_call_tree_load(q, &t);
    if (status != 0) {
        pk_call_tree_free(&t);
        return status;
    }
    char **stacks = path_stacks(&t);
    if (sites) {
        status = export_alloc_sites(q, weight, &t, stacks);
    } else {
        for (size_t i = 0; i < t.count; i++) {
            const pk_path_node *n = &t.nodes[i];
            /* flamegraph.pl adds children to their parents: a line carries self weight. */
            int64_t value = n->self_ns;
            if (weight == PK_WEIGHT_ALLOC) {
                value = n->measured[PK_PATH_ALLOC] ? n->bytes[PK_PATH_ALLOC] : 0;
                for (size_t k = 0; k < n->child_count; k++)
                    if (t.nodes[n->children[k]].measured[PK_PATH_ALLOC])
                        value -= t.nodes[n->children[k]].bytes[PK_PATH_ALLOC];
            }
            if (value > 0)
                fprintf(q->out, "%s %lld\n", stacks[i], (long long)value);
        }
    }
    free_stacks(stacks, t.count);
    pk_call_tree_free(&t);
    return status;
}

/* ---- the command -------------------------------------------------------------------- */

static int export_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_export);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_export, options, PK_ARRAY_SIZE(options), argc, argv);
    int format = EXPORT_CHROME, weight = -1;
    const char *output = NULL;
    const pk_cli_value values[] = {
        /* export's formats are its own */
        PK_CHOICE(PK_OPT_FORMAT, &format, "format", formats, PK_ARRAY_SIZE(formats)),
        PK_CHOICE(OPT_WEIGHT, &weight, "weight", pk_weight_names, PK_WEIGHT_COUNT),
        PK_VALUE(OPT_OUTPUT, PK_VALUE_TEXT, &output)};
    int status = pk_query_args(&p, &q, values, PK_ARRAY_SIZE(values));
    if (status >= 0)
        return status;
    if (weight >= 0 && format != EXPORT_FOLDED)
        return pk_cli_usage(&p, "--weight applies to --format folded only");
    status = pk_query_open(&q, true);
    /* the events and their times are calls' (folded stacks may weigh allocation sites) */
    if (status == 0 && format != EXPORT_FOLDED)
        status = pk_query_call_run(&q);
    if (status != 0) {
        pk_query_close(&q);
        return status;
    }
    pk_output out;
    if ((status = pk_output_open(&out, &q, output ? output : "-")) != 0) {
        pk_query_close(&q);
        return status;
    }
    q.out = out.file;
    switch (format) {
    case EXPORT_CHROME:
        status = export_chrome(&q);
        break;
    case EXPORT_FOLDED:
        status = export_folded(&q, weight < 0 ? PK_WEIGHT_TIME : weight);
        break;
    case EXPORT_CSV: {
        pk_event_filter all = {0};
        q.format = PK_FORMAT_CSV;
        status = pk_events_print(&q, &all);
        break;
    }
    }
    status = pk_output_close(&out, &q, status);
    q.out = stdout;
    pk_query_close(&q);
    return status;
}
