/*
 * flame.c — `pikoc flame`: a flame graph of a run's calling-context tree
 * (call_paths), drawn by pikoc itself: one frame per call path, as wide as
 * its weight, with hover titles, deterministic colours and click-to-zoom
 * in an embedded script. Read-only on the database.
 */
#include "pictures.h"

#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: pikoc flame [OPTIONS] [DB]\n"
    "\n"
    "Draws the call paths of a run as a flame graph (SVG): each frame is a call\n"
    "path (threads merged), as wide as its weight, above its caller; siblings in\n"
    "name order. Hovering a frame shows its value and share of the whole; clicking\n"
    "zooms into it (where the viewer runs scripts: browsers do), clicking \"all\"\n"
    "zooms out. Frames narrower than a pixel are merged into one grey frame per\n"
    "caller, and the picture says how many.\n"
    "\n"
    "weights:\n"
    "  time     inclusive time of the calls along the path (the default)\n"
    "  alloc    bytes allocated during them, callees included (jemalloc counters)\n"
    "  leaked   bytes allocated there and never freed (pikoc run --monitor alloc)\n"
    "  peak     bytes allocated there and live at the heap's peak (--monitor alloc)\n"
    "\n"
    "options:\n"
    "  -d, --db FILE        the database (default: pikoc.db; also the DB operand)\n"
    "  -r, --run N          the run (default: the latest; see pikoc runs)\n"
    "  -w, --weight WEIGHT  time, alloc, leaked or peak\n"
    "  -o, --output FILE    the SVG to write (default: flame.svg; - for stdout)\n"
    "  --width PIXELS       the picture's width (default 1200)\n"
    "  -h, --help           this help\n"
    "\n"
    "example:\n"
    "  pikoc flame --weight alloc -o alloc.svg\n";

static int flame_main(int argc, char **argv);

const pk_cli_command pk_cmd_flame = {
    .name = "flame",
    .summary = "a flame graph of the call paths as SVG (time or bytes)",
    .help = help,
    .main = flame_main,
};

enum { OPT_WEIGHT = PK_PICTURE_OPTION_COUNT, OPT_WIDTH };

static const pk_cli_option options[] = {
    PK_PICTURE_OPTIONS, [OPT_WEIGHT] = {"weight", 'w', "WEIGHT"},
    [OPT_WIDTH] = {"width", 0, "PIXELS"}};

enum { FRAME_HEIGHT = 17, MARGIN = 10, HEADER = 44, CHAR_WIDTH = 7 };

/* What a run offers a weight: the call paths' counters, or the allocation sites. */
typedef enum source { FROM_PATHS, FROM_SITES } source;

static source source_of(int weight, const pk_run_facts *facts)
{
    if (weight == PK_WEIGHT_TIME)
        return FROM_PATHS;
    if (weight == PK_WEIGHT_ALLOC && (facts->flags & PK_RECORD_ALLOC))
        return FROM_PATHS;
    return FROM_SITES;
}

int pk_flame_check(pk_query *q, int weight, bool *weighable)
{
    pk_run_facts facts;
    bool from_paths = false, sites = false;
    int status = pk_query_run_facts(q, &facts);
    if (status == 0 && !(from_paths = source_of(weight, &facts) == FROM_PATHS))
        status = pk_query_has_alloc(q, &sites);
    /* a run of the alloc monitor alone has no call paths */
    bool can = status == 0 && (from_paths ? strcmp(facts.monitor, "alloc") != 0 : sites);
    if (weighable)
        *weighable = can;
    if (weighable || status != 0 || can)
        return status;
    if (from_paths)
        return pk_query_call_facts(q, &facts);
    if (weight == PK_WEIGHT_ALLOC) {
        pk_cli_error(q->command->name, "--weight alloc: run %lld has no allocation counters (%s)",
                     (long long)q->run_id, facts.alloc_source);
        return PK_EXIT_USAGE;
    }
    return pk_query_alloc_run(q);
}

/* ---- weights ------------------------------------------------------------------------ */

/*
 * The frame of the function that called the allocator, above `parent` (a
 * call path, or SIZE_MAX for none): found among the frames added so far
 * (from index `first` on) or added. Such frames have no calls.
 */
static size_t site_frame(pk_call_tree *t, size_t first, size_t parent, const char *function,
                         const char *file, int64_t line)
{
    for (size_t i = first; i < t->count; i++)
        if (t->nodes[i].parent == parent && strcmp(t->nodes[i].function, function) == 0 &&
            strcmp(t->nodes[i].file, file) == 0)
            return i;
    t->nodes = realloc(t->nodes, (t->count + 1) * sizeof *t->nodes);
    if (!t->nodes)
        abort();
    size_t index = t->count++;
    pk_path_node *n = &t->nodes[index];
    memset(n, 0, sizeof *n);
    /* Ids stay ascending, so pk_call_tree_index still finds the call paths. */
    n->id = index > 0 ? t->nodes[index - 1].id + 1 : 1;
    n->depth = parent == SIZE_MAX ? 0 : t->nodes[parent].depth + 1;
    n->function = pk_xstrdup(function);
    n->file = pk_xstrdup(file);
    n->line = line;
    n->parent = parent;
    size_t **list = parent == SIZE_MAX ? &t->roots : &t->nodes[parent].children;
    size_t *count = parent == SIZE_MAX ? &t->root_count : &t->nodes[parent].child_count;
    *list = realloc(*list, (*count + 1) * sizeof **list);
    if (!*list)
        abort();
    (*list)[(*count)++] = index;
    return index;
}

/*
 * Allocation sites as frames, as export's folded stacks have them: each
 * site's bytes on the innermost recorded call open when it allocated, or on
 * a frame above it for the function that called the allocator when that is
 * another function (a root frame when no recorded call was open). Then the
 * values are added up to the callers: an inclusive weight per frame.
 */
static int site_weights(pk_query *q, int weight, pk_call_tree *t, int64_t **values)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT a.path_id, s.function, s.file, s.line, sum(a.%s) AS weight"
             " FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id"
             " WHERE a.run_id = ? GROUP BY a.path_id, s.function, s.file HAVING weight > 0"
             " ORDER BY a.path_id, s.function, s.file",
             pk_weight_site_columns[weight]);
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    size_t paths = t->count, capacity = t->count;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t node = sqlite3_column_type(stmt, 0) == SQLITE_NULL
                          ? SIZE_MAX
                          : pk_call_tree_index(t, sqlite3_column_int64(stmt, 0));
        const char *caller = (const char *)sqlite3_column_text(stmt, 1);
        if (node == SIZE_MAX || strcmp(t->nodes[node].function, caller) != 0)
            node = site_frame(t, paths, node, caller, (const char *)sqlite3_column_text(stmt, 2),
                              sqlite3_column_int64(stmt, 3));
        if (node >= capacity) {
            size_t grown = (node + 1) * 2;
            *values = realloc(*values, grown * sizeof **values);
            if (!*values)
                abort();
            memset(*values + capacity, 0, (grown - capacity) * sizeof **values);
            capacity = grown;
        }
        (*values)[node] += sqlite3_column_int64(stmt, 4);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return pk_query_fail(q);
    /* Children come after their parents: adding backwards carries whole subtrees. */
    for (size_t i = t->count; i-- > 0;)
        if (t->nodes[i].parent != SIZE_MAX)
            (*values)[t->nodes[i].parent] += (*values)[i];
    return 0;
}

/* Each frame's inclusive weight, in *values (t->count of them, caller frees). */
static int path_weights(pk_query *q, int weight, pk_call_tree *t, int64_t **values)
{
    *values = pk_xcalloc(t->count ? t->count : 1, sizeof **values);
    pk_run_facts facts;
    int status = pk_query_run_facts(q, &facts);
    if (status != 0)
        return status;
    if (source_of(weight, &facts) == FROM_SITES)
        return site_weights(q, weight, t, values);
    for (size_t i = 0; i < t->count; i++) {
        const pk_path_node *n = &t->nodes[i];
        if (weight == PK_WEIGHT_TIME)
            (*values)[i] = n->total_ns;
        else
            (*values)[i] = n->measured[PK_PATH_ALLOC] ? n->bytes[PK_PATH_ALLOC] : 0;
    }
    return 0;
}

/* ---- layout ----------------------------------------------------------------------- */

/* A frame to draw: a call path, or the merged narrow children of one (node SIZE_MAX). */
typedef struct box {
    size_t node;
    int64_t depth;
    double x, width;
    int64_t value;
    size_t merged; /* frames merged into this one */
} box;

typedef struct layout {
    const pk_call_tree *t;
    const int64_t *values;
    size_t *sizes; /* frames in each node's subtree */
    box *boxes;
    size_t count, capacity;
    size_t merged_frames, merged_boxes;
    int64_t max_depth;
} layout;

static void add_box(layout *l, box b)
{
    pk_grow(&l->boxes, &l->capacity, l->count, sizeof *l->boxes);
    l->boxes[l->count++] = b;
    if (b.depth > l->max_depth)
        l->max_depth = b.depth;
}

static const pk_path_node *sort_nodes;

/* Siblings in name order, as flame graphs do; then in the order first seen. */
static int by_name(const void *a, const void *b)
{
    const pk_path_node *x = &sort_nodes[*(const size_t *)a], *y = &sort_nodes[*(const size_t *)b];
    int c = strcmp(x->function, y->function);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/*
 * Lays out children left to right across their parent's box, one level up;
 * narrow ones merge. Children never spill past the parent (a callee cannot
 * outweigh its caller, but measured times may disagree by a tick).
 */
static void lay_children(layout *l, const size_t *children, size_t count, box parent, double scale,
                         size_t *stack, size_t *top)
{
    int64_t merged_value = 0;
    size_t merged = 0;
    double x = parent.x, end = parent.x + parent.width;
    for (size_t i = 0; i < count; i++) {
        size_t c = children[i];
        int64_t v = l->values[c];
        if (v <= 0)
            continue;
        double width = (double)v * scale;
        if (width < 1) {
            merged_value += v;
            merged += l->sizes[c];
            continue;
        }
        if (width > end - x)
            width = end - x;
        add_box(l, (box){c, parent.depth + 1, x, width, v, 0});
        stack[(*top)++] = l->count - 1;
        x += width;
    }
    if (merged > 0) {
        double width = (double)merged_value * scale;
        add_box(l, (box){SIZE_MAX, parent.depth + 1, x, width < end - x ? width : end - x,
                         merged_value, merged});
        l->merged_frames += merged;
        l->merged_boxes++;
    }
}

static void lay_out(layout *l, double width, int64_t total)
{
    const pk_call_tree *t = l->t;
    l->sizes = pk_xcalloc(t->count ? t->count : 1, sizeof *l->sizes);
    for (size_t i = t->count; i-- > 0;) {
        l->sizes[i] += 1;
        if (t->nodes[i].parent != SIZE_MAX)
            l->sizes[t->nodes[i].parent] += l->sizes[i];
    }
    double scale = total > 0 ? width / (double)total : 0;
    /* The "all" frame: the whole run at the bottom. */
    box all = {SIZE_MAX, 0, 0, width, total, 0};
    add_box(l, all);
    /* Depth first with an explicit stack of box indexes: deep recursion makes deep trees. */
    size_t *stack = pk_xcalloc(t->count + 1, sizeof *stack);
    size_t top = 0;
    if (total > 0)
        lay_children(l, t->roots, t->root_count, all, scale, stack, &top);
    while (top > 0) {
        const box b = l->boxes[stack[--top]]; /* a copy: add_box may move the array */
        const pk_path_node *n = &t->nodes[b.node];
        lay_children(l, n->children, n->child_count, b, scale, stack, &top);
    }
    free(stack);
}

/* ---- drawing ---------------------------------------------------------------------- */

/* "1234567 ns (1.23 ms)" or "2048 bytes (2.0 KiB)" */
static void describe_value(int weight, int64_t value, char *buf, size_t size)
{
    char readable[32];
    if (weight == PK_WEIGHT_TIME) {
        pk_readable_ns(value, readable, sizeof readable);
        snprintf(buf, size, "%lld ns (%s)", (long long)value, readable);
    } else {
        pk_readable_bytes(value, readable, sizeof readable);
        snprintf(buf, size, "%lld bytes (%s)", (long long)value, readable);
    }
}

/*
 * The label that fits a frame (caller frees): the name, cut with ".." when
 * it is too long, or nothing. Widths count characters, and a cut falls
 * between two: a split UTF-8 sequence would make the SVG unreadable.
 */
static char *frame_label(const char *name, double width)
{
    long fits = (long)((width - 6) / CHAR_WIDTH);
    if (fits < 3)
        return pk_xstrdup("");
    size_t whole = pk_utf8_prefix(name, (size_t)fits);
    if (name[whole] == '\0')
        return pk_xstrdup(name);
    size_t keep = pk_utf8_prefix(name, (size_t)fits - 2);
    char *label = pk_xcalloc(keep + 3, 1);
    memcpy(label, name, keep);
    memcpy(label + keep, "..", 2);
    return label;
}

static void draw_box(FILE *out, const layout *l, const box *b, int weight, int64_t total, double y)
{
    const pk_path_node *n = b->node == SIZE_MAX ? NULL : &l->t->nodes[b->node];
    /* The whole name: the zoom script cuts labels from it again. */
    const char *name = n ? n->function : "all";
    char merged[64], value[64], title[1200], colour[8];
    if (!n && b->depth > 0) {
        snprintf(merged, sizeof merged, "(%zu frame%s under 1 px)", b->merged,
                 b->merged == 1 ? "" : "s");
        name = merged;
    }
    describe_value(weight, b->value, value, sizeof value);
    double share = total > 0 ? 100.0 * (double)b->value / (double)total : 0;
    /* "parse (demo.c:30)"; a function that called the allocator has no calls of its own. */
    char where[400] = "", calls[48] = ", its allocations";
    if (n && *n->file && n->line > 0)
        pk_text_format(where, sizeof where, " (%s:%lld)", n->file, (long long)n->line);
    else if (n && *n->file)
        pk_text_format(where, sizeof where, " (%s)", n->file);
    if (n && n->calls > 0)
        snprintf(calls, sizeof calls, ", %lld call%s", (long long)n->calls,
                 n->calls == 1 ? "" : "s");
    if (n)
        pk_text_format(title, sizeof title, "%s%s: %s, %.2f%%%s", n->function, where, value, share,
                       calls);
    else
        snprintf(title, sizeof title, "%s: %s, %.2f%%", name, value, share);
    if (n)
        pk_name_colour(n->function, weight == PK_WEIGHT_TIME ? PK_PALETTE_HOT : PK_PALETTE_MEMORY,
                       colour);
    else
        snprintf(colour, sizeof colour, "%s", b->depth == 0 ? "#d8d8d8" : "#b8b8b8");
    fprintf(out, "<g class=\"frame\" data-x=\"");
    pk_svg_number(out, b->x + MARGIN);
    fputs("\" data-w=\"", out);
    pk_svg_number(out, b->width);
    fprintf(out, "\" data-d=\"%lld\" data-n=\"", (long long)b->depth);
    pk_markup_escape(out, name);
    fputs("\">", out);
    pk_svg_title(out, title);
    pk_svg_rect(out, b->x + MARGIN, y, b->width, FRAME_HEIGHT - 1, colour, "rx=\"2\"");
    char *label = frame_label(name, b->width);
    pk_svg_text(out, b->x + MARGIN + 3, y + FRAME_HEIGHT - 5, "start", NULL, label);
    free(label);
    fputs("</g>\n", out);
}

/*
 * Click-to-zoom: a frame's original x and width (data-x, data-w) scale to
 * the full width; its callers stretch across, frames outside its span hide.
 * Labels are cut again to the new widths, the same rule as frame_label:
 * characters (code points) are counted, not UTF-16 units.
 */
static const char zoom_script[] =
    "(function () {\n"
    "  var svg = document.getElementById('%s');\n"
    "  if (!svg) return;\n"
    "  var left = %d, full = %d, cw = %d;\n"
    "  var frames = svg.querySelectorAll('g.frame');\n"
    "  function label(g, w) {\n"
    "    var n = g.getAttribute('data-n'), c = Array.from(n), fits = Math.floor((w - 6) / cw);\n"
    "    return fits < 3 ? '' : c.length <= fits ? n : c.slice(0, fits - 2).join('') + '..';\n"
    "  }\n"
    "  function place(g, x, w) {\n"
    "    x = Math.round(x * 100) / 100; w = Math.round(w * 100) / 100; /* as pk_svg_number */\n"
    "    var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    r.setAttribute('x', x); r.setAttribute('width', w);\n"
    "    t.setAttribute('x', x + 3); t.textContent = label(g, w);\n"
    "    g.style.display = '';\n"
    "  }\n"
    "  function zoom(z) {\n"
    "    var zx = +z.getAttribute('data-x'), zw = +z.getAttribute('data-w'),\n"
    "        zd = +z.getAttribute('data-d'), k = full / zw;\n"
    "    for (var i = 0; i < frames.length; i++) {\n"
    "      var g = frames[i], x = +g.getAttribute('data-x'), w = +g.getAttribute('data-w'),\n"
    "          d = +g.getAttribute('data-d'), e = 1e-6;\n"
    "      if (d < zd && x <= zx + e && x + w >= zx + zw - e) place(g, left, full);\n"
    "      else if (d >= zd && x >= zx - e && x + w <= zx + zw + e)\n"
    "        place(g, left + (x - zx) * k, w * k);\n"
    "      else g.style.display = 'none';\n"
    "    }\n"
    "  }\n"
    "  for (var i = 0; i < frames.length; i++)\n"
    "    frames[i].addEventListener('click', function () { zoom(this); });\n"
    "  svg.setAttribute('data-zoom', 'ready');\n"
    "})();\n";

int pk_flame_write(pk_query *q, FILE *out, const pk_flame_options *o)
{
    pk_call_tree t;
    int status = pk_call_tree_load(q, &t);
    size_t paths = t.count;
    int64_t *values = NULL;
    if (status == 0)
        status = path_weights(q, o->weight, &t, &values);
    if (status != 0) {
        free(values);
        pk_call_tree_free(&t);
        return status;
    }
    sort_nodes = t.nodes;
    for (size_t i = 0; i < t.count; i++)
        if (t.nodes[i].child_count > 1)
            qsort(t.nodes[i].children, t.nodes[i].child_count, sizeof(size_t), by_name);
    if (t.root_count > 1)
        qsort(t.roots, t.root_count, sizeof(size_t), by_name);
    int64_t total = 0;
    for (size_t i = 0; i < t.root_count; i++)
        if (values[t.roots[i]] > 0)
            total += values[t.roots[i]];

    double width = o->width - 2 * MARGIN;
    layout l = {.t = &t, .values = values};
    lay_out(&l, width, total);
    double height = HEADER + (double)(l.max_depth + 1) * FRAME_HEIGHT + MARGIN;

    pk_svg_begin(out, o->width, height, o->id);
    fputs("<style>.frame{cursor:pointer}.frame text{font-size:11px;fill:#000;"
          "pointer-events:none}.frame:hover rect{stroke:#000;stroke-width:0.5}"
          ".title{font-size:15px;font-weight:bold}.note{font-size:11px;fill:#555}</style>\n",
          out);
    pk_svg_rect(out, 0, 0, o->width, height, "#fff", NULL);
    char text[256], value[64];
    snprintf(text, sizeof text, "run %lld: %s", (long long)q->run_id,
             o->weight == PK_WEIGHT_TIME     ? "time by call path"
             : o->weight == PK_WEIGHT_ALLOC  ? "bytes allocated by call path"
             : o->weight == PK_WEIGHT_LEAKED ? "bytes leaked by call path"
                                             : "bytes live at the heap's peak by call path");
    pk_svg_text(out, MARGIN, 20, "start", "title", text);
    describe_value(o->weight, total, value, sizeof value);
    int n = snprintf(text, sizeof text, "total %s; %zu call paths", value, paths);
    if (t.count > paths)
        n += snprintf(text + n, sizeof text - (size_t)n, " and %zu allocating function%s",
                      t.count - paths, t.count - paths == 1 ? "" : "s");
    if (l.merged_frames > 0)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "; %zu frame%s narrower than 1 px merged into %zu grey frame%s",
                      l.merged_frames, l.merged_frames == 1 ? "" : "s", l.merged_boxes,
                      l.merged_boxes == 1 ? "" : "s");
    pk_svg_text(out, MARGIN, 36, "start", "note", text);
    for (size_t i = 0; i < l.count; i++) {
        double y = HEADER + (double)(l.max_depth - l.boxes[i].depth) * FRAME_HEIGHT;
        draw_box(out, &l, &l.boxes[i], o->weight, total, y);
    }
    fputs("<script type=\"text/ecmascript\"><![CDATA[\n", out);
    fprintf(out, zoom_script, o->id, MARGIN, (int)width, CHAR_WIDTH);
    fputs("]]></script>\n", out);
    pk_svg_end(out);

    free(l.boxes);
    free(l.sizes);
    free(values);
    pk_call_tree_free(&t);
    return 0;
}

pk_flame_options pk_flame_defaults(int weight)
{
    return (pk_flame_options){.weight = weight, .width = 1200, .id = "flame"};
}

static int write_flame(pk_query *q, FILE *out, void *context)
{
    return pk_flame_write(q, out, context);
}

static int flame_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_flame);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_flame, options, PK_ARRAY_SIZE(options), argc, argv);
    pk_flame_options o = pk_flame_defaults(PK_WEIGHT_TIME);
    pk_picture_args args = {.output = "flame.svg", .writes = "SVG"};
    uint64_t width;
    const char *value;
    for (int opt; (opt = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (opt) {
        case PK_CLI_EXIT:
            return p.status;
        case OPT_WEIGHT:
            o.weight =
                pk_cli_choice(&p, "--weight", value, "weight", pk_weight_names, PK_WEIGHT_COUNT);
            if (o.weight < 0)
                return PK_EXIT_USAGE;
            break;
        case OPT_WIDTH:
            if (pk_cli_uint(&p, "--width", value, &width) != 0)
                return PK_EXIT_USAGE;
            if (width < 200 || width > 100000)
                return pk_cli_usage(&p, "--width '%s': expected 200 to 100000 pixels", value);
            o.width = (int)width;
            break;
        default:
            if (pk_picture_option(&p, &q, &args, opt, value) != 0)
                return PK_EXIT_USAGE;
        }
    }
    int status = pk_query_open(&q, true);
    if (status != 0)
        return status;
    status = pk_flame_check(&q, o.weight, NULL);
    if (status == 0)
        status = pk_picture_save(&q, args.output, write_flame, &o);
    pk_query_close(&q);
    return status;
}
