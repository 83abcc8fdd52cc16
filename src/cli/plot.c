/*
 * plot.c — `pikoc plot`: RSS, VMS and the live heap of a run over time (or
 * event index) as SVG, the largest RSS jumps annotated with where the
 * program was (the same walk as pikoc spikes). Read-only on the database.
 */
#include "pictures.h"
#include "store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc plot [OPTIONS] [DB]\n"
    "\n"
    "Draws the memory of a run as an SVG: the resident set (RSS), the virtual size\n"
    "(VMS) and the live heap at each event, over the time since the start of the\n"
    "run or over the event index. The largest RSS jumps are marked with the\n"
    "function and line the program was at (as pikoc spikes reports them).\n"
    "The alloc monitor's timer samples are drawn on the time axis: RSS, VMS and\n"
    "the live heap of the allocation records (bytes requested by live blocks),\n"
    "with the heap's peak marked. Other runs (and --x index) draw as live heap\n"
    "the sum over threads of bytes allocated minus bytes freed, from jemalloc's\n"
    "counters on the events.\n"
    "More events than pixel columns are drawn as each column's minimum and\n"
    "maximum, and the picture says so.\n"
    "\n"
    "options:\n"
    "  -d, --db FILE        the database (default: pikoc.db; also the DB operand)\n"
    "  -r, --run N          the run (default: the latest; see pikoc runs)\n"
    "  -o, --output FILE    the SVG to write (default: plot.svg; - for stdout)\n"
    "  --x AXIS             time (the default) or index\n"
    "  --spikes N           how many of the largest RSS jumps to mark (default 5)\n"
    "  -h, --help           this help\n"
    "\n"
    "The run must have sampled memory (the function-memory or alloc monitor).\n"
    "\n"
    "example:\n"
    "  pikoc plot -o memory.svg --x index\n";

static int plot_main(int argc, char **argv);

const pk_cli_command pk_cmd_plot = {
    .name = "plot",
    .summary = "RSS, VMS and live heap over time as SVG, spikes marked",
    .help = help,
    .main = plot_main,
};

enum { OPT_X = PK_PICTURE_OPTION_COUNT, OPT_SPIKES };

static const pk_cli_option options[] = {
    PK_PICTURE_OPTIONS, [OPT_X] = {"x", 0, "AXIS"}, [OPT_SPIKES] = {"spikes", 0, "N"}};

static const char *const axes[] = {"time", "index"};

/* The plot area inside the picture. */
enum { MARGIN_LEFT = 80, MARGIN_RIGHT = 24, MARGIN_TOP = 56, MARGIN_BOTTOM = 48 };

enum { S_RSS, S_VMS, S_HEAP, SERIES };
static const char *const series_names[SERIES] = {"RSS", "VMS", "live heap"};
static const char *const series_colours[SERIES] = {"#d62728", "#1f77b4", "#2ca02c"};

/* A pixel column of one series: its lowest and highest samples. */
typedef struct column {
    bool used;
    double min_x, min_y, max_x, max_y;
} column;

typedef struct spike {
    double x;
    int64_t rss, growth, index;
    char *function, *file;
    int64_t line;
} spike;

typedef struct plot {
    const pk_plot_options *o;
    double x_max;       /* the x of the last event: time in ns or index */
    size_t columns;     /* pixel columns of the plot area */
    column *buckets;    /* SERIES x columns */
    size_t samples;     /* events drawn */
    size_t timer;       /* timer samples drawn (memory_samples) */
    bool timer_skipped; /* the run has timer samples, not drawn over the event index */
    bool timer_heap;    /* the heap comes from the timer samples, not the events' counters */
    bool has_peak;      /* the allocation records' heap peak (alloc_runs) */
    double peak_x, peak_bytes;
    bool has[SERIES];
    double y_max, rss_max;
    spike *spikes; /* the largest RSS growths, largest first */
    size_t spike_count;
} plot;

static void bucket_add(plot *p, int series, double x, double y)
{
    size_t c = p->x_max > 0 ? (size_t)(x / p->x_max * (double)(p->columns - 1)) : 0;
    if (c >= p->columns)
        c = p->columns - 1;
    column *b = &p->buckets[series * p->columns + c];
    if (!b->used || y < b->min_y) {
        b->min_x = x;
        b->min_y = y;
    }
    if (!b->used || y > b->max_y) {
        b->max_x = x;
        b->max_y = y;
    }
    b->used = true;
    p->has[series] = true;
    if (y > p->y_max)
        p->y_max = y;
}

/* Keeps the o->spikes largest RSS growths, by insertion: a handful at most. */
static void spike_add(plot *p, double x, const pk_memory_sample *s)
{
    size_t n = p->spike_count;
    if (s->rss_growth <= 0 || p->o->spikes == 0 ||
        (n == p->o->spikes && s->rss_growth <= p->spikes[n - 1].growth))
        return;
    if (n == p->o->spikes) {
        free(p->spikes[n - 1].function);
        free(p->spikes[n - 1].file);
        n--;
    } else {
        p->spike_count++;
    }
    size_t at = n;
    while (at > 0 && p->spikes[at - 1].growth < s->rss_growth) {
        p->spikes[at] = p->spikes[at - 1];
        at--;
    }
    p->spikes[at] = (spike){
        .x = x,
        .rss = s->rss,
        .growth = s->rss_growth,
        .index = s->index,
        .function = pk_xstrdup(s->function ? s->function : "??"),
        .file = pk_xstrdup(s->file ? s->file : ""),
        .line = s->line,
    };
}

static int take_sample(void *context, const pk_memory_sample *s)
{
    plot *p = context;
    double x = p->o->x == PK_PLOT_X_TIME ? (double)s->time_ns : (double)s->index;
    if (s->has_rss) {
        bucket_add(p, S_RSS, x, (double)s->rss);
        if ((double)s->rss > p->rss_max)
            p->rss_max = (double)s->rss;
        bucket_add(p, S_VMS, x, (double)s->vms);
        spike_add(p, x, s);
    }
    if (s->has_heap && !p->timer_heap)
        bucket_add(p, S_HEAP, x, (double)s->heap);
    if (s->has_rss || s->has_heap)
        p->samples++;
    return 0;
}

/* The x range from the batches' summaries, before the walk buckets the events. */
static int find_x_max(pk_query *q, plot *p)
{
    sqlite3_stmt *stmt = pk_query_prepare(
        q, "SELECT max(max_time_ns), max(max_index) FROM event_batches WHERE run_id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        p->x_max = sqlite3_column_double(stmt, p->o->x == PK_PLOT_X_TIME ? 0 : 1);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW)
        return pk_query_fail(q);
    /* Files before schema version 3 have no timer samples. */
    if (p->o->x != PK_PLOT_X_TIME || q->version < PK_STORE_ALLOC_VERSION)
        return 0;
    stmt = pk_query_prepare(q, "SELECT max(time_ns) FROM memory_samples WHERE run_id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_double(stmt, 0) > p->x_max)
        p->x_max = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : pk_query_fail(q);
}

/*
 * Whether the timer samples carry the allocation records' heap (schema
 * version 5). They are then the heap line, even in a run whose events also
 * have jemalloc's counters: the same heap as the peak marked on it, and on
 * the same time axis.
 */
static int find_timer_heap(pk_query *q, plot *p)
{
    if (p->o->x != PK_PLOT_X_TIME || q->version < PK_STORE_HEAP_VERSION)
        return 0;
    return pk_query_run_has(q, "SELECT count(heap_bytes) > 0 FROM memory_samples WHERE run_id = ?",
                            &p->timer_heap);
}

/*
 * The alloc monitor's timer samples (memory_samples): RSS, VMS and the live
 * heap whether or not the program is instrumented. They have a time and no
 * event index.
 */
static int take_timer_samples(pk_query *q, plot *p)
{
    if (q->version < PK_STORE_ALLOC_VERSION)
        return 0;
    sqlite3_stmt *stmt = pk_query_prepare(
        q, p->timer_heap ? "SELECT time_ns, rss, vms, heap_bytes FROM memory_samples"
                           " WHERE run_id = ?"
                         : "SELECT time_ns, rss, vms, NULL FROM memory_samples WHERE run_id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (p->o->x != PK_PLOT_X_TIME) {
            p->timer_skipped = true;
            break;
        }
        double x = sqlite3_column_double(stmt, 0);
        double rss = sqlite3_column_double(stmt, 1);
        bucket_add(p, S_RSS, x, rss);
        bucket_add(p, S_VMS, x, sqlite3_column_double(stmt, 2));
        if (sqlite3_column_type(stmt, 3) != SQLITE_NULL)
            bucket_add(p, S_HEAP, x, sqlite3_column_double(stmt, 3));
        if (rss > p->rss_max)
            p->rss_max = rss;
        p->timer++;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

/* The allocation records' heap peak (requested bytes of live blocks), on the time axis. */
static int find_heap_peak(pk_query *q, plot *p)
{
    bool recorded = false;
    int status = p->o->x == PK_PLOT_X_TIME ? pk_query_has_alloc(q, &recorded) : 0;
    if (status != 0 || !recorded)
        return status;
    sqlite3_stmt *stmt =
        pk_query_prepare(q, "SELECT peak_bytes, peak_time_ns FROM alloc_runs WHERE run_id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_int64(stmt, 0) > 0) {
        p->has_peak = true;
        p->peak_bytes = sqlite3_column_double(stmt, 0);
        p->peak_x = sqlite3_column_double(stmt, 1);
        if (p->peak_bytes > p->y_max)
            p->y_max = p->peak_bytes;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

typedef struct area {
    double left, top, width, height;
    pk_axis x, y;
} area;

static double px(const area *a, double x)
{
    return a->left + x / a->x.end * a->width;
}

static double py(const area *a, double y)
{
    return a->top + a->height - y / a->y.end * a->height;
}

static void draw_axes(FILE *out, const area *a, pk_plot_x x_kind)
{
    char label[64];
    double bottom = a->top + a->height;
    for (int i = 0; i <= a->y.ticks; i++) {
        double v = i * a->y.step, y = py(a, v);
        pk_svg_line(out, a->left, y, a->left + a->width, y, i ? "#e4e4e4" : "#000");
        pk_axis_label(&a->y, v, label, sizeof label);
        pk_svg_text(out, a->left - 6, y + 4, "end", "tick", label);
    }
    for (int i = 0; i <= a->x.ticks; i++) {
        double v = i * a->x.step, x = px(a, v);
        pk_svg_line(out, x, bottom, x, bottom + 5, "#000");
        pk_axis_label(&a->x, v, label, sizeof label);
        pk_svg_text(out, x, bottom + 18, "middle", "tick", label);
    }
    pk_svg_line(out, a->left, a->top, a->left, bottom, "#000");
    pk_svg_text(out, a->left + a->width / 2, bottom + 38, "middle", "axis",
                x_kind == PK_PLOT_X_TIME ? "time since the start of the run" : "event index");
}

/* Each used column's low and high points, in x order: the line keeps its extremes. */
static void draw_series(FILE *out, const plot *p, const area *a, int series)
{
    pk_svg_path path;
    pk_svg_path_begin(&path, out, series_colours[series], NULL);
    for (size_t c = 0; c < p->columns; c++) {
        const column *b = &p->buckets[series * p->columns + c];
        if (!b->used)
            continue;
        bool min_first = b->min_x <= b->max_x;
        pk_svg_path_point(&path, px(a, min_first ? b->min_x : b->max_x),
                          py(a, min_first ? b->min_y : b->max_y));
        if (b->min_x != b->max_x || b->min_y != b->max_y)
            pk_svg_path_point(&path, px(a, min_first ? b->max_x : b->min_x),
                              py(a, min_first ? b->max_y : b->min_y));
    }
    pk_svg_path_end(&path);
}

/* The series drawn, left to right, ending at the right margin. */
static void draw_legend(FILE *out, const plot *p, double right, double y)
{
    double width = 0;
    for (int s = 0; s < SERIES; s++)
        if (p->has[s])
            width += 8 * (double)strlen(series_names[s]) + 34;
    double x = right - width;
    for (int s = 0; s < SERIES; s++) {
        if (!p->has[s])
            continue;
        pk_svg_line(out, x, y - 4, x + 20, y - 4, series_colours[s]);
        pk_svg_text(out, x + 24, y, "start", "legend", series_names[s]);
        x += 8 * (double)strlen(series_names[s]) + 34;
    }
}

/* The file's last component: labels stay short, the hover title has the whole path. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/*
 * Each spike: a numbered ring on the RSS line, and under the axes the same
 * number with "+5.8 MiB in grow (grow.c:12) at 6.68 ms": a list never
 * collides with the lines or with itself, however close the spikes are.
 */
static void draw_spikes(FILE *out, const plot *p, const area *a, double list_top)
{
    for (size_t i = 0; i < p->spike_count; i++) {
        const spike *s = &p->spikes[i];
        char growth[32], at[32], text[512], title[1024];
        pk_readable_bytes(s->growth, growth, sizeof growth);
        if (a->x.kind == PK_AXIS_NS)
            pk_readable_ns((int64_t)s->x, at, sizeof at);
        else
            snprintf(at, sizeof at, "event %lld", (long long)s->index);
        if (s->line >= 0 && *s->file) {
            pk_text_format(text, sizeof text, "%zu. +%s in %s (%s:%lld) at %s", i + 1, growth,
                           s->function, base_name(s->file), (long long)s->line, at);
            pk_text_format(title, sizeof title, "+%lld bytes of RSS at event %lld, in %s (%s:%lld)",
                           (long long)s->growth, (long long)s->index, s->function, s->file,
                           (long long)s->line);
        } else {
            pk_text_format(text, sizeof text, "%zu. +%s in %s at %s", i + 1, growth, s->function,
                           at);
            pk_text_format(title, sizeof title, "+%lld bytes of RSS at event %lld, in %s",
                           (long long)s->growth, (long long)s->index, s->function);
        }
        double x = px(a, s->x), y = py(a, (double)s->rss);
        char number[24];
        snprintf(number, sizeof number, "%zu", i + 1);
        fputs("<g class=\"spike\">", out);
        pk_svg_title(out, title);
        fputs("<circle cx=\"", out);
        pk_svg_number(out, x);
        fputs("\" cy=\"", out);
        pk_svg_number(out, y);
        fprintf(out, "\" r=\"4\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                series_colours[S_RSS]);
        pk_svg_text(out, x - 6, y - 6, "end", "spike-number", number);
        pk_svg_text(out, a->left, list_top + 16 * (double)i, "start", "spike", text);
        fputs("</g>\n", out);
    }
}

/*
 * The allocation records' heap peak (requested bytes of live blocks): a
 * diamond where and when it was reached, and a line in the list under the
 * axes. The timer samples' heap line passes under it or touches it: the
 * peak falls between samples, and no sample holds more.
 */
static void draw_heap_peak(FILE *out, const plot *p, const area *a, double list_y)
{
    char bytes[32], at[32], text[160];
    pk_readable_bytes((int64_t)p->peak_bytes, bytes, sizeof bytes);
    pk_readable_ns((int64_t)p->peak_x, at, sizeof at);
    snprintf(text, sizeof text, "heap peak: %s (%.0f bytes requested, live blocks) at %s", bytes,
             p->peak_bytes, at);
    double x = px(a, p->peak_x), y = py(a, p->peak_bytes);
    fputs("<g class=\"peak\">", out);
    pk_svg_title(out, text);
    fputs("<path d=\"M", out);
    pk_svg_number(out, x);
    fputc(' ', out);
    pk_svg_number(out, y - 5);
    fputs(" l5 5 l-5 5 l-5 -5 z\" fill=\"", out);
    fprintf(out, "%s\"/>\n", series_colours[S_HEAP]);
    pk_svg_text(out, a->left, list_y, "start", "peak", text);
    fputs("</g>\n", out);
}

static void draw(FILE *out, const plot *p, int64_t run_id)
{
    const pk_plot_options *o = p->o;
    area a = {.left = MARGIN_LEFT,
              .top = MARGIN_TOP,
              .width = o->width - MARGIN_LEFT - MARGIN_RIGHT,
              .height = o->height - MARGIN_TOP - MARGIN_BOTTOM};
    a.x = pk_axis_make(o->x == PK_PLOT_X_TIME ? PK_AXIS_NS : PK_AXIS_COUNT, p->x_max, 8);
    a.y = pk_axis_make(PK_AXIS_BYTES, p->y_max, 6);
    /* Jumps under 1% of the largest RSS are noise, not events worth a mark. */
    plot shown = *p;
    while (shown.spike_count > 0 &&
           (double)shown.spikes[shown.spike_count - 1].growth < p->rss_max / 100)
        shown.spike_count--;
    double list_top = o->height + 4;
    size_t lines = shown.spike_count + (p->has_peak ? 1 : 0);
    double height = o->height + (lines ? 16 * (double)lines + 8 : 0);
    pk_svg_begin(out, o->width, height, o->id);
    fputs("<style>.title{font-size:15px;font-weight:bold}.tick{font-size:11px;fill:#333}"
          ".note{font-size:11px;fill:#555}.spike{font-size:12px;fill:#8b0000}"
          ".spike-number{font-size:11px;font-weight:bold;fill:#8b0000}"
          ".peak{font-size:12px;fill:#1a6e1a}</style>\n",
          out);
    pk_svg_rect(out, 0, 0, o->width, height, "#fff", NULL);
    char title[128];
    snprintf(title, sizeof title, "run %lld: memory over %s", (long long)run_id,
             o->x == PK_PLOT_X_TIME ? "time" : "events");
    pk_svg_text(out, MARGIN_LEFT, 20, "start", "title", title);
    draw_legend(out, p, o->width - MARGIN_RIGHT, 20);
    /* What was drawn: "14 events", "14 events and 40 timer samples", then how. */
    char what[96], note[256];
    if (p->timer > 0 && p->samples == 0)
        snprintf(what, sizeof what, "%zu timer samples", p->timer);
    else if (p->timer > 0)
        snprintf(what, sizeof what, "%zu events and %zu timer samples", p->samples, p->timer);
    else
        snprintf(what, sizeof what, "%zu events", p->samples);
    size_t drawn = p->samples + p->timer;
    int n;
    if (drawn == 0)
        n = snprintf(note, sizeof note, "no events with memory samples");
    else if (drawn > p->columns)
        n = snprintf(note, sizeof note,
                     "%s, downsampled: the lowest and highest of each of %zu pixel columns", what,
                     p->columns);
    else
        n = snprintf(note, sizeof note, "%s, every one drawn", what);
    if (p->timer_skipped)
        snprintf(note + n, sizeof note - (size_t)n,
                 "; the timer samples have no event index (see --x time)");
    pk_svg_text(out, MARGIN_LEFT, 40, "start", "note", note);
    draw_axes(out, &a, o->x);
    for (int s = 0; s < SERIES; s++)
        if (p->has[s])
            draw_series(out, p, &a, s);
    draw_spikes(out, &shown, &a, list_top);
    if (p->has_peak)
        draw_heap_peak(out, p, &a, list_top + 16 * (double)shown.spike_count);
    pk_svg_end(out);
}

pk_plot_options pk_plot_defaults(void)
{
    return (pk_plot_options){.x = PK_PLOT_X_TIME, .width = 960, .height = 420, .spikes = 5};
}

int pk_plot_write(pk_query *q, FILE *out, const pk_plot_options *o)
{
    plot p = {.o = o};
    p.columns = o->width > MARGIN_LEFT + MARGIN_RIGHT + 1
                    ? (size_t)(o->width - MARGIN_LEFT - MARGIN_RIGHT)
                    : 1;
    int status = find_x_max(q, &p);
    if (status != 0)
        return status;
    p.buckets = pk_xcalloc(SERIES * p.columns, sizeof *p.buckets);
    p.spikes = pk_xcalloc(o->spikes ? o->spikes : 1, sizeof *p.spikes);
    status = find_timer_heap(q, &p);
    if (status == 0)
        status = pk_memory_walk(q, take_sample, &p);
    if (status == 0)
        status = take_timer_samples(q, &p);
    if (status == 0)
        status = find_heap_peak(q, &p);
    if (status == 0)
        draw(out, &p, q->run_id);
    for (size_t i = 0; i < p.spike_count; i++) {
        free(p.spikes[i].function);
        free(p.spikes[i].file);
    }
    free(p.spikes);
    free(p.buckets);
    return status;
}

static int write_plot(pk_query *q, FILE *out, void *context)
{
    return pk_plot_write(q, out, context);
}

static int plot_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_plot);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_plot, options, PK_ARRAY_SIZE(options), argc, argv);
    pk_plot_options o = pk_plot_defaults();
    pk_picture_args args = {.output = "plot.svg", .writes = "SVG"};
    uint64_t spikes = o.spikes;
    const char *value;
    for (int opt; (opt = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (opt) {
        case PK_CLI_EXIT:
            return p.status;
        case OPT_X: {
            int x = pk_cli_choice(&p, "--x", value, "axis", axes, PK_ARRAY_SIZE(axes));
            if (x < 0)
                return PK_EXIT_USAGE;
            o.x = (pk_plot_x)x;
            break;
        }
        case OPT_SPIKES:
            if (pk_cli_uint(&p, "--spikes", value, &spikes) != 0)
                return PK_EXIT_USAGE;
            if (spikes > 50)
                return pk_cli_usage(&p, "--spikes '%s': at most 50", value);
            o.spikes = (size_t)spikes;
            break;
        default:
            if (pk_picture_option(&p, &q, &args, opt, value) != 0)
                return PK_EXIT_USAGE;
        }
    }
    int status = pk_query_open(&q, true);
    if (status != 0)
        return status;
    status = pk_memory_check(&q);
    if (status == 0)
        status = pk_picture_save(&q, args.output, write_plot, &o);
    pk_query_close(&q);
    return status;
}
