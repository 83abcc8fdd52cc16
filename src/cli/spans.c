/*
 * spans.c — `pikoc spans`: the profilers of the runs in one database joined
 * into one tree across processes. A span started from another process's
 * context is placed under the span that sent it; each such remote call says
 * how long the caller waited, how long the callee worked and what is left
 * (transport and queueing), and the runs' clocks are aligned NTP-style from
 * those request/response times. Read-only.
 */
#include "cli.h"
#include "profiler.h"
#include "store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc spans [OPTIONS] [DB]\n"
    "\n"
    "Prints the checkpoint profilers of the runs in the database as one tree, in\n"
    "the profiler's own format: '> Entering', each mark with the milliseconds\n"
    "since the previous one and since the start, '< Exiting' with the total.\n"
    "A profiler started from another process's context (pk_profiler_context,\n"
    "PK_PROFILER_REMOTE) appears inside the span that sent it, followed by the\n"
    "remote call: the time the caller waited (from sending to its next mark),\n"
    "the time the callee worked (its total) and the difference, transport and\n"
    "queueing. The runs' clocks are aligned from their start times and the\n"
    "request/response times of their calls (the offset of the call with the\n"
    "shortest round trip, give or take half of what that call spent outside the\n"
    "callee); the last lines give each run's offset and that uncertainty.\n"
    "\n"
    "options:\n"
    "  -d, --db FILE        the database (default: pikoc.db; also the DB operand)\n"
    "  -r, --run N          only this run (repeat for more; default: every run)\n"
    "  -h, --help           this help\n"
    "\n"
    "example:\n"
    "  PIKOC_RECORD=sqlite:calls.db ./server &\n"
    "  PIKOC_RECORD=sqlite:calls.db ./client\n"
    "  pikoc spans calls.db\n";

static int spans_main(int argc, char **argv);

const pk_cli_command pk_cmd_spans = {
    .name = "spans",
    .summary = "profiler spans of several processes joined into one tree",
    .help = help,
    .main = spans_main,
};

enum { OPT_DB, OPT_RUN };

static const pk_cli_option options[] = {
    [OPT_DB] = {"db", 'd', "FILE"},
    [OPT_RUN] = {"run", 'r', "N"},
};

#define NONE SIZE_MAX

typedef struct run {
    int64_t id;
    char *host, *command_line;
    int64_t pid;
    int64_t start_wall, end_wall; /* end_wall: INT64_MAX while running */
    /* The clock against the caller's run, from the call with the shortest round trip. */
    size_t against; /* index of the caller's run, NONE if never called */
    int64_t offset_ns, uncertainty_ns;
    size_t calls;
} run;

typedef struct mark {
    char *label;
    int64_t time_ns, duration_ns, total_ns;
} mark;

typedef struct span {
    size_t run;                                           /* index into runs */
    int64_t id, parent_id, thread, start_ns, duration_ns; /* parent_id 0: none; duration -1: open */
    char *message, *context;
    mark *marks;
    size_t mark_count, mark_capacity;
    size_t parent; /* NONE for a root */
    bool remote;   /* its parent is in another run */
    size_t *children;
    size_t child_count, child_capacity;
    int64_t sort_time; /* its start on its parent's run clock */
    /* a remote call (remote && has_call) */
    bool has_call;
    const char *reply;           /* the caller's mark that closed it; NULL: the caller's finish */
    int64_t sent_at, replied_at; /* t0 and t3 on the caller's run clock */
    int64_t waited, worked;
    pk_context from;
} span;

typedef struct joined {
    run *runs;
    size_t run_count, run_capacity;
    span *spans;
    size_t span_count, span_capacity;
} joined;

static int64_t column_or(sqlite3_stmt *st, int i, int64_t none)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? none : sqlite3_column_int64(st, i);
}

static char *column_text(sqlite3_stmt *st, int i)
{
    const char *text = (const char *)sqlite3_column_text(st, i);
    return text ? pk_xstrdup(text) : NULL;
}

/* ---- loading ------------------------------------------------------------------------ */

static int load_runs(pk_query *q, joined *j, const int64_t *wanted, size_t wanted_count)
{
    sqlite3_stmt *st = pk_query_prepare(
        q, "SELECT id, host, pid, start_ns, end_ns, command_line FROM runs ORDER BY id");
    if (!st)
        return PK_EXIT_USAGE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        bool keep = wanted_count == 0;
        for (size_t i = 0; i < wanted_count && !keep; i++)
            keep = wanted[i] == id;
        if (!keep)
            continue;
        pk_grow(&j->runs, &j->run_capacity, j->run_count, sizeof *j->runs);
        j->runs[j->run_count++] = (run){
            .id = id,
            .host = column_text(st, 1),
            .pid = sqlite3_column_int64(st, 2),
            .start_wall = sqlite3_column_int64(st, 3),
            .end_wall = column_or(st, 4, INT64_MAX),
            .command_line = column_text(st, 5),
            .against = NONE,
        };
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

static int load_spans(pk_query *q, joined *j)
{
    sqlite3_stmt *st = pk_query_prepare(q, "SELECT span, parent_span, thread, message, context, "
                                           "start_ns, duration_ns FROM spans WHERE run_id = ? "
                                           "ORDER BY start_ns, span");
    if (!st)
        return PK_EXIT_USAGE;
    int rc = SQLITE_DONE;
    for (size_t r = 0; r < j->run_count && rc == SQLITE_DONE; r++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, j->runs[r].id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            pk_grow(&j->spans, &j->span_capacity, j->span_count, sizeof *j->spans);
            j->spans[j->span_count++] = (span){
                .run = r,
                .id = sqlite3_column_int64(st, 0),
                .parent_id = column_or(st, 1, 0),
                .thread = sqlite3_column_int64(st, 2),
                .message = column_text(st, 3),
                .context = column_text(st, 4),
                .start_ns = sqlite3_column_int64(st, 5),
                .duration_ns = column_or(st, 6, -1),
                .parent = NONE,
            };
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

static size_t find_span(const joined *j, size_t r, int64_t id)
{
    for (size_t i = 0; i < j->span_count; i++)
        if (j->spans[i].run == r && j->spans[i].id == id)
            return i;
    return NONE;
}

static int load_marks(pk_query *q, joined *j)
{
    sqlite3_stmt *st = pk_query_prepare(q, "SELECT span, label, time_ns, duration_ns, total_ns "
                                           "FROM checkpoints WHERE run_id = ? ORDER BY \"index\"");
    if (!st)
        return PK_EXIT_USAGE;
    int rc = SQLITE_DONE;
    for (size_t r = 0; r < j->run_count && rc == SQLITE_DONE; r++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, j->runs[r].id);
        size_t s = NONE;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            /* Marks of one span mostly come together: try the last one's first. */
            if (s == NONE || j->spans[s].id != id || j->spans[s].run != r)
                s = find_span(j, r, id);
            if (s == NONE)
                continue; /* its profiler began before the run: no block to show it in */
            span *sp = &j->spans[s];
            pk_grow(&sp->marks, &sp->mark_capacity, sp->mark_count, sizeof *sp->marks);
            sp->marks[sp->mark_count++] = (mark){
                .label = column_text(st, 1),
                .time_ns = sqlite3_column_int64(st, 2),
                .duration_ns = sqlite3_column_int64(st, 3),
                .total_ns = sqlite3_column_int64(st, 4),
            };
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

/* ---- joining ------------------------------------------------------------------------ */

/* The run of host/pid that was running at wall time `when`, or NONE. */
static size_t run_at(const joined *j, const char *host, int64_t pid, int64_t when)
{
    size_t found = NONE;
    for (size_t r = 0; r < j->run_count; r++) {
        const run *x = &j->runs[r];
        if (x->pid == pid && x->host && strcmp(x->host, host) == 0 && x->start_wall <= when &&
            when <= x->end_wall && (found == NONE || x->start_wall > j->runs[found].start_wall))
            found = r;
    }
    return found;
}

static void add_child(joined *j, size_t parent, size_t child)
{
    span *p = &j->spans[parent];
    pk_grow(&p->children, &p->child_capacity, p->child_count, sizeof *p->children);
    p->children[p->child_count++] = child;
    j->spans[child].parent = parent;
}

/*
 * The four times of a remote call, on each side's run clock: the caller sent
 * at t0 and saw the reply by its next mark t3; the callee worked from t1 to
 * t2. waited - worked is what neither side measured: the way there and back.
 */
static void measure_call(joined *j, size_t child)
{
    span *c = &j->spans[child];
    const span *p = &j->spans[c->parent];
    const run *caller = &j->runs[p->run], *callee = &j->runs[c->run];
    int64_t t0 = c->from.sent_ns - caller->start_wall, t3 = -1;
    for (size_t i = 0; i < p->mark_count && t3 < 0; i++) {
        if (p->marks[i].time_ns >= t0) {
            t3 = p->marks[i].time_ns;
            c->reply = p->marks[i].label;
        }
    }
    if (t3 < 0 && p->duration_ns >= 0)
        t3 = p->start_ns + p->duration_ns;
    /* Until aligned, the callee sits where its own clock puts it. */
    c->sort_time = callee->start_wall + c->start_ns - caller->start_wall;
    if (t3 < 0 || c->duration_ns < 0)
        return;
    c->has_call = true;
    c->sent_at = t0;
    c->replied_at = t3;
    c->waited = t3 - t0;
    c->worked = c->duration_ns;
    /* Callee clock minus caller clock, both as wall times (NTP's offset). */
    int64_t t1 = callee->start_wall + c->start_ns, t2 = t1 + c->duration_ns;
    int64_t t0_wall = c->from.sent_ns, t3_wall = caller->start_wall + t3;
    int64_t offset = ((t1 - t0_wall) + (t2 - t3_wall)) / 2;
    int64_t outside = c->waited - c->worked;
    run *r = &j->runs[c->run];
    if (r->against == NONE || (r->against == p->run && outside / 2 < r->uncertainty_ns)) {
        r->against = p->run;
        r->offset_ns = offset;
        r->uncertainty_ns = outside / 2;
    }
    if (r->against == p->run)
        r->calls++;
}

static void link_spans(joined *j)
{
    for (size_t i = 0; i < j->span_count; i++) {
        span *s = &j->spans[i];
        s->sort_time = s->start_ns;
        if (s->context && pk_context_parse(s->context, &s->from, NULL) == 0) {
            size_t r = run_at(j, s->from.host, s->from.pid, s->from.sent_ns);
            size_t parent = r == NONE ? NONE : find_span(j, r, (int64_t)s->from.span);
            if (parent != NONE) { /* in this run too: another thread took it over */
                s->remote = r != s->run;
                add_child(j, parent, i);
                continue;
            }
        }
        if (s->parent_id) {
            size_t parent = find_span(j, s->run, s->parent_id);
            if (parent != NONE)
                add_child(j, parent, i);
        }
    }
    for (size_t i = 0; i < j->span_count; i++)
        if (j->spans[i].remote)
            measure_call(j, i);
    /*
     * Aligned: a remote child's start on its caller's clock. The offset is
     * only known within its uncertainty, but the call itself is certain: the
     * callee started after the request was sent and ended before the reply.
     */
    for (size_t i = 0; i < j->span_count; i++) {
        span *s = &j->spans[i];
        const run *r = &j->runs[s->run];
        if (s->remote && r->against == j->spans[s->parent].run)
            s->sort_time -= r->offset_ns;
        if (s->has_call) {
            int64_t latest = s->replied_at - s->worked;
            s->sort_time = s->sort_time > latest ? latest : s->sort_time;
            s->sort_time = s->sort_time < s->sent_at ? s->sent_at : s->sort_time;
        }
    }
}

/* ---- printing ------------------------------------------------------------------------ */

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static void print_span(const joined *j, size_t index, int level);

static void print_call(const joined *j, const span *c, int level)
{
    if (!c->has_call) {
        printf("%*s= remote call to run %" PRId64 ": %s\n", 2 * level, "", j->runs[c->run].id,
               c->duration_ns < 0 ? "the callee never finished" : "no reply seen (no later mark)");
        return;
    }
    char reply[160];
    if (c->reply)
        pk_text_format(reply, sizeof reply, "until '%s'", c->reply); /* a whole character last */
    else
        snprintf(reply, sizeof reply, "until the finish");
    printf("%*s= remote call to run %" PRId64 " (%s): waited %0.4f ms, worked %0.4f ms, "
           "transport and queueing %0.4f ms\n",
           2 * level, "", j->runs[c->run].id, reply, ms(c->waited), ms(c->worked),
           ms(c->waited - c->worked));
}

static void print_span(const joined *j, size_t index, int level)
{
    const span *s = &j->spans[index];
    const run *r = &j->runs[s->run];
    int indent = 2 * level;
    printf("%*s> Entering %s  [run %" PRId64 ", pid %" PRId64 ", thread %" PRId64 "]", indent, "",
           s->message, r->id, r->pid, s->thread);
    if (s->context && s->parent == NONE)
        printf(" continues %s: its sender is not among these runs", s->context);
    printf("\n");
    /* Marks and nested spans in time order. */
    size_t m = 0, c = 0;
    while (m < s->mark_count || c < s->child_count) {
        const span *child = c < s->child_count ? &j->spans[s->children[c]] : NULL;
        if (m < s->mark_count && (!child || s->marks[m].time_ns <= child->sort_time)) {
            const mark *k = &s->marks[m++];
            printf("%*s  %s: %0.4f, tot:%0.4f\n", indent, "", k->label, ms(k->duration_ns),
                   ms(k->total_ns));
        } else {
            print_span(j, s->children[c++], level + 1);
            if (child->remote)
                print_call(j, child, level + 1);
        }
    }
    if (s->duration_ns >= 0)
        printf("%*s< Exiting %s, total time: %0.4f ms\n", indent, "", s->message,
               ms(s->duration_ns));
    else
        printf("%*s< %s did not finish\n", indent, "", s->message);
}

static int by_sort_time(const void *a, const void *b, void *arg)
{
    const joined *j = arg;
    const span *x = &j->spans[*(const size_t *)a], *y = &j->spans[*(const size_t *)b];
    int64_t tx = x->sort_time, ty = y->sort_time;
    if (x->parent == NONE) { /* roots of different runs: by wall time */
        tx += j->runs[x->run].start_wall;
        ty += j->runs[y->run].start_wall;
    }
    return tx < ty ? -1 : tx > ty;
}

static void print_runs(const joined *j)
{
    printf("\nruns:\n");
    for (size_t r = 0; r < j->run_count; r++) {
        const run *x = &j->runs[r];
        printf("  run %" PRId64 ": host %s, pid %" PRId64 ", %s", x->id, x->host ? x->host : "",
               x->pid, x->command_line ? x->command_line : "");
        if (x->against != NONE)
            printf("; clock %+0.4f ms +/- %0.4f ms against run %" PRId64 " (%zu remote call%s)",
                   ms(x->offset_ns), ms(x->uncertainty_ns), j->runs[x->against].id, x->calls,
                   x->calls == 1 ? "" : "s");
        printf("\n");
    }
}

static void print_joined(joined *j)
{
    size_t *roots = pk_xcalloc(j->span_count ? j->span_count : 1, sizeof *roots);
    size_t root_count = 0;
    for (size_t i = 0; i < j->span_count; i++) {
        span *s = &j->spans[i];
        if (s->parent == NONE)
            roots[root_count++] = i;
        if (s->child_count > 1) /* a span without children has no array at all */
            qsort_r(s->children, s->child_count, sizeof *s->children, by_sort_time, j);
    }
    qsort_r(roots, root_count, sizeof *roots, by_sort_time, j);
    for (size_t i = 0; i < root_count; i++)
        print_span(j, roots[i], 0);
    if (root_count == 0)
        printf("no profiler spans in these runs\n");
    print_runs(j);
    free(roots);
}

static void free_joined(joined *j)
{
    for (size_t i = 0; i < j->run_count; i++) {
        free(j->runs[i].host);
        free(j->runs[i].command_line);
    }
    for (size_t i = 0; i < j->span_count; i++) {
        span *s = &j->spans[i];
        for (size_t m = 0; m < s->mark_count; m++)
            free(s->marks[m].label);
        free(s->marks);
        free(s->children);
        free(s->message);
        free(s->context);
    }
    free(j->runs);
    free(j->spans);
}

/* ---- the command --------------------------------------------------------------------- */

static int spans_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_spans);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_spans, options, PK_ARRAY_SIZE(options), argc, argv);
    p.repeatable = 1u << OPT_RUN;
    const char *value, *run_args[64];
    size_t run_count = 0;
    bool db_given = false;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (o) {
        case PK_CLI_EXIT:
            return p.status;
        case PK_CLI_OPERAND:
        case OPT_DB:
            if (db_given)
                return pk_cli_usage(&p, "one database only ('%s' and '%s')", q.path, value);
            q.path = value;
            db_given = true;
            break;
        case OPT_RUN:
            if (run_count == PK_ARRAY_SIZE(run_args))
                return pk_cli_usage(&p, "--run: at most %zu runs", PK_ARRAY_SIZE(run_args));
            run_args[run_count++] = value;
            break;
        }
    }
    int status = pk_query_open(&q, false);
    if (status != 0)
        return status;
    int64_t runs[PK_ARRAY_SIZE(run_args)];
    for (size_t i = 0; i < run_count && status == 0; i++) {
        pk_error err;
        if (pk_store_resolve_run(q.db, run_args[i], &runs[i], &err) != 0) {
            pk_cli_error(q.command->name, "%s", err.message);
            status = PK_EXIT_USAGE;
        }
    }
    if (status == 0 && q.version < PK_STORE_SPANS_VERSION) {
        pk_cli_error(q.command->name, "%s: no profiler spans (schema version 1)", q.path);
        status = PK_EXIT_USAGE;
    }
    joined j = {0};
    if (status == 0 && (status = load_runs(&q, &j, runs, run_count)) == 0 &&
        (status = load_spans(&q, &j)) == 0 && (status = load_marks(&q, &j)) == 0) {
        link_spans(&j);
        print_joined(&j);
        if (fflush(stdout) != 0)
            status = pk_query_write_failed(&q, "the spans");
    }
    free_joined(&j);
    pk_query_close(&q);
    return status;
}
