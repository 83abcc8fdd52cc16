/*
 * test_pictures.c — the SVG and HTML generators of pikoc plot, flame and
 * report on small runs written by the sqlite recorder: valid XML (xmllint),
 * axes, the spike annotations, frame titles with exact values and shares,
 * merged narrow frames, downsampling, the leaked and peak weights on
 * allocation tables, and the report's sections; names and command lines
 * that are not UTF-8, or are cut to fit, still make valid UTF-8. Plus the
 * writer's helpers and the escapers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/pictures.h"
#include "records.h"
#include "temp_dir.h"

#define MIB (1024 * 1024)

/* ---- a run to draw ------------------------------------------------------------------- */

static void record_run(const char *path, const pk_record *recs, size_t n)
{
    char spec[700];
    pk_error err = {{0}};
    snprintf(spec, sizeof spec, "sqlite:%s", path);
    pk_recorder *r = pk_recorder_open(spec, &err);
    if (!r)
        fail_msg("%s", err.message);
    pk_logger *lg = pk_logger_new(r);
    pk_run_info run = {.monitor = "function-memory",
                       .flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC,
                       .clock = "tsc",
                       .alloc_source = "jemalloc",
                       .command_line = "demo <fast> & \"loud\"",
                       .host = "testhost",
                       .pid = 4321,
                       .start_ns = 77,
                       .start_wall_ns = 1700000000000000000ll};
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < n; i++)
        pk_logger_push(lg, &recs[i]);
    pk_run_totals totals = {.events = n, .calls = n / 2, .end_ns = recs[n - 1].time_ns};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_null(pk_logger_error(lg));
    pk_logger_free(lg);
}

/*
 * The known run: main calls load (RSS +2 MiB), tiny (1 ns: under a pixel)
 * and parse (RSS +512 KiB); 10 us in all; VMS tops at 12 MiB.
 */
enum { KNOWN_COUNT = 8 };

static void record_known(const char *path)
{
    static const struct {
        pk_event_type type;
        const char *function;
        unsigned line, depth, caller_line;
        uint64_t time, duration, rss, vms, allocated, alloc_delta;
    } rows[KNOWN_COUNT] = {
        {PK_EVENT_CALL, "main", 5, 0, 1, 0, 0, 1 * MIB, 10 * MIB, 1000, 0},
        {PK_EVENT_CALL, "load", 20, 1, 7, 1000, 0, 1 * MIB, 10 * MIB, 1000, 0},
        {PK_EVENT_RETURN, "load", 20, 1, 7, 3000, 2000, 3 * MIB, 12 * MIB, 1000 + 2 * MIB, 2 * MIB},
        {PK_EVENT_CALL, "tiny", 40, 1, 8, 3500, 0, 3 * MIB, 12 * MIB, 1000 + 2 * MIB, 0},
        {PK_EVENT_RETURN, "tiny", 40, 1, 8, 3501, 1, 3 * MIB, 12 * MIB, 1000 + 2 * MIB, 0},
        {PK_EVENT_CALL, "parse", 30, 1, 9, 4000, 0, 3 * MIB, 12 * MIB, 1000 + 2 * MIB, 0},
        {PK_EVENT_RETURN, "parse", 30, 1, 9, 8000, 4000, 3 * MIB + MIB / 2, 12 * MIB,
         5096 + 2 * MIB, 4096},
        {PK_EVENT_RETURN, "main", 5, 0, 1, 10000, 10000, 3 * MIB + MIB / 2, 12 * MIB,
         5096 + 2 * MIB, 4096 + 2 * MIB},
    };
    pk_record recs[KNOWN_COUNT];
    for (size_t i = 0; i < KNOWN_COUNT; i++) {
        pk_record r = test_record(i, rows[i].type, rows[i].function, rows[i].depth, rows[i].time);
        r.line = rows[i].line;
        r.caller = rows[i].depth == 0 ? "start" : "main";
        r.caller_file = rows[i].depth == 0 ? "libc.c" : "demo.c";
        r.caller_line = rows[i].caller_line;
        r.duration_ns = rows[i].duration;
        r.rss = rows[i].rss;
        r.vms = rows[i].vms;
        r.allocated = rows[i].allocated;
        r.freed = 0;
        r.alloc_delta = rows[i].alloc_delta;
        r.free_delta = 0;
        recs[i] = r;
    }
    record_run(path, recs, KNOWN_COUNT);
}

static void open_run(pk_query *q, const pk_cli_command *command, const char *path, const char *run)
{
    pk_query_init(q, command);
    q->path = path;
    q->run_arg = run;
    assert_int_equal(pk_query_open(q, true), 0);
}

/* What a generator writes, as one string (caller frees); asserts its status. */
typedef int (*generator)(pk_query *q, FILE *out, void *context);

__attribute__((noinline)) static char *generate(pk_query *q, generator write, void *context,
                                                int expected_status)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    assert_int_equal(write(q, out, context), expected_status);
    assert_int_equal(fclose(out), 0);
    return text;
}

static int plot_writer(pk_query *q, FILE *out, void *context)
{
    return pk_plot_write(q, out, context);
}

static int flame_writer(pk_query *q, FILE *out, void *context)
{
    return pk_flame_write(q, out, context);
}

/* xmllint (Debian's libxml2-utils) parses it: well-formed XML. */
static void assert_valid_xml(const temp_dir *t, const char *text)
{
    char path[700], command[800];
    snprintf(path, sizeof path, "%s/picture.svg", t->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    snprintf(command, sizeof command, "xmllint --noout '%s'", path);
    int status = system(command);
    if (status != 0)
        fail_msg("xmllint rejected the picture (status %d): is libxml2-utils installed?", status);
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("missing: %s", part);
}

static size_t occurrences(const char *text, const char *part)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, part)); p += strlen(part))
        n++;
    return n;
}

/*
 * The allocation tables (alloc_runs and alloc_sites of the allocation
 * schema), reduced to the columns the pictures read and filled by hand for
 * run 1; a writer that made its own is replaced.
 */
static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
        fail_msg("%s: %s", sql, error);
    sqlite3_close(db);
}

/* The points of the first polyline drawn in `colour`, as the SVG has them (caller frees). */
static char *polyline_points(const char *svg, const char *colour)
{
    char head[96];
    snprintf(head, sizeof head, "<polyline fill=\"none\" stroke=\"%s\"", colour);
    const char *line = strstr(svg, head);
    assert_non_null(line);
    const char *points = strstr(line, "points=\"");
    assert_non_null(points);
    points += strlen("points=\"");
    return strndup(points, strcspn(points, "\""));
}

static void add_allocation_tables(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *sql =
        "DROP TABLE IF EXISTS alloc_runs; DROP TABLE IF EXISTS alloc_sites;"
        "CREATE TABLE alloc_runs (run_id INTEGER PRIMARY KEY, peak_bytes INTEGER NOT NULL,"
        " peak_time_ns INTEGER NOT NULL);"
        "CREATE TABLE alloc_sites (run_id INTEGER NOT NULL, id INTEGER NOT NULL, path_id INTEGER,"
        " caller_id INTEGER NOT NULL, caller_line INTEGER NOT NULL, allocations INTEGER NOT NULL,"
        " bytes INTEGER NOT NULL, temporary INTEGER NOT NULL,"
        " leaked_blocks INTEGER NOT NULL, leaked_bytes INTEGER NOT NULL,"
        " peak_bytes INTEGER NOT NULL);"
        "INSERT INTO alloc_runs VALUES (1, 6000, 3000);"
        "INSERT INTO alloc_sites SELECT 1, 1, c.id, c.symbol_id, 21, 4, 8000, 1, 3, 3000, 5000"
        " FROM call_paths c JOIN symbols s ON s.run_id = 1 AND s.id = c.symbol_id"
        " WHERE c.run_id = 1 AND s.function = 'load';"
        "INSERT INTO alloc_sites SELECT 1, 2, c.id, c.symbol_id, 31, 2, 2000, 0, 1, 1000, 1000"
        " FROM call_paths c JOIN symbols s ON s.run_id = 1 AND s.id = c.symbol_id"
        " WHERE c.run_id = 1 AND s.function = 'parse';"
        "INSERT INTO alloc_sites SELECT 1, 3, NULL, id, 3, 1, 500, 0, 1, 500, 0 FROM symbols"
        " WHERE run_id = 1 AND function = 'main' AND line = 5;";
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
        fail_msg("%s", error);
    sqlite3_close(db);
}

/* ---- the writer's helpers ---------------------------------------------------------- */

static char *captured(void (*write)(FILE *, const char *), const char *arg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    write(out, arg);
    fclose(out);
    return text;
}

static void markup_escape_covers_the_five_characters(void **state)
{
    (void)state;
    char *text = captured(pk_markup_escape, "a<b>&\"c\"'d'\x01");
    assert_string_equal(text, "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;?");
    free(text);
}

/*
 * Bytes that begin no well-formed UTF-8 character, each followed by "|":
 * Latin-1, a stray continuation byte, a sequence cut short, overlong forms
 * (C0 AF, E0 80 AF, F0 80 80 AF), a surrogate (ED A0 80), beyond U+10FFFF
 * (F4 90 80 80, F5). Each byte becomes a U+FFFD; nothing else changes.
 */
#define NOT_UTF8                                                                                   \
    "caf\xe9|\x80|\xe2\x82|\xc0\xaf|\xe0\x80\xaf|\xf0\x80\x80\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|"  \
    "\xf5|"
#define FFFD PK_UTF8_REPLACEMENT
#define NOT_UTF8_REPLACED                                                                          \
    "caf" FFFD "|" FFFD "|" FFFD FFFD "|" FFFD FFFD "|" FFFD FFFD FFFD "|" FFFD FFFD FFFD FFFD     \
    "|" FFFD FFFD FFFD "|" FFFD FFFD FFFD FFFD "|" FFFD "|"
/* Well-formed: 2, 3 and 4 bytes; U+07FF, U+FFFD, U+10FFFF; U+D7FF, U+E000 around the surrogates. */
#define UTF8 "é€😀\xdf\xbf\xef\xbf\xbd\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80"

static void markup_escape_makes_valid_utf8(void **state)
{
    (void)state;
    char *text = captured(pk_markup_escape, UTF8 "<" NOT_UTF8 ">");
    assert_string_equal(text, UTF8 "&lt;" NOT_UTF8_REPLACED "&gt;");
    free(text);
    /* What XML 1.0 does not allow, valid UTF-8 or not: control characters, U+FFFE, U+FFFF. */
    text = captured(pk_markup_escape, "a\tb\nc\rd\x1f\x7f\xef\xbf\xbe\xef\xbf\xbf\xc2\x85");
    assert_string_equal(text, "a\tb\nc?d?\x7f??\xc2\x85");
    free(text);
}

static void json_string_makes_valid_utf8(void **state)
{
    (void)state;
    char *text = captured(pk_json_string, UTF8 "\"" NOT_UTF8 "\\\x01\xef\xbf\xbf");
    assert_string_equal(text, "\"" UTF8 "\\\"" NOT_UTF8_REPLACED "\\\\\\u0001\xef\xbf\xbf\"");
    free(text);
}

static void utf8_characters_and_cuts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t length;
    } chars[] = {
        {"a", 1},
        {"\x7f", 1},
        {"é", 2},
        {"\xc2\x80", 2},
        {"€", 3},
        {"😀", 4},
        {"\xf4\x8f\xbf\xbf", 4},
        {"\xe9t", 0},
        {"\x80", 0},
        {"\xc1\xbf", 0},
        {"\xc3", 0},
        {"\xe2\x82", 0},
        {"\xe0\x9f\xbf", 0},
        {"\xed\xbf\xbf", 0},
        {"\xf0\x8f\xbf\xbf", 0},
        {"\xf4\x90\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},
        {"\xe2\x82\xac", 3},
        {"\xe2\x28\xa1", 0},
    };
    for (size_t i = 0; i < PK_ARRAY_SIZE(chars); i++)
        if (pk_utf8_char(chars[i].text) != chars[i].length)
            fail_msg("pk_utf8_char(%s) is %zu, expected %zu", chars[i].text,
                     pk_utf8_char(chars[i].text), chars[i].length);
    /* Characters, not bytes; a stray byte counts as one. */
    assert_int_equal(pk_utf8_prefix("éa€😀b", 0), 0);
    assert_int_equal(pk_utf8_prefix("éa€😀b", 1), 2);
    assert_int_equal(pk_utf8_prefix("éa€😀b", 3), 6);
    assert_int_equal(pk_utf8_prefix("éa€😀b", 4), 10);
    assert_int_equal(pk_utf8_prefix("éa€😀b", 9), 11);
    assert_int_equal(pk_utf8_prefix("\xe9\xe9x", 2), 2);

    /* A cut to fit drops the character it would split, and only that. */
    char buf[8];
    assert_int_equal(pk_text_format(buf, sizeof buf, "ab%s", "ééé"), 8);
    assert_string_equal(buf, "abéé");
    assert_int_equal(pk_text_format(buf, 6, "%s", "ab😀"), 6);
    assert_string_equal(buf, "ab");
    assert_int_equal(pk_text_format(buf, 6, "%s", "abc€"), 6);
    assert_string_equal(buf, "abc");
    assert_int_equal(pk_text_format(buf, 6, "%s", "abcé€"), 8);
    assert_string_equal(buf, "abcé");
    assert_int_equal(pk_text_format(buf, 6, "%s", "abcd\xe9xyz"), 8);
    assert_string_equal(buf, "abcd"); /* a lead byte at the cut: dropped, whatever followed */
    assert_int_equal(pk_text_format(buf, 6, "%s", "a\x80\x80\x80\x80\x80"), 6);
    assert_string_equal(buf, "a\x80\x80\x80\x80");
    assert_int_equal(pk_text_format(buf, 6, "%s", "ab€"), 5);
    assert_string_equal(buf, "ab€");
}

/*
 * The aligned table pads by terminal columns: é is one column in two bytes,
 * 日本語 six in nine, a combining acute none, 😀 two. A byte outside any
 * character (Latin-1's é) is written \xe9, and a C1 control (U+009B, a
 * terminal's CSI) its two bytes so, as control characters are: the table is
 * valid UTF-8 and sends a terminal no command. Each column starts at the
 * same place on every row, the header's too.
 */
static void table_aligns_by_display_width(void **state)
{
    (void)state;
    static const pk_column columns[] = {
        {"name", PK_COLUMN_TEXT}, {"größe", PK_COLUMN_INTEGER}, {"note", PK_COLUMN_TEXT}};
    static const struct {
        const char *name;
        int64_t size;
        const char *note;
    } rows[] = {{"café", 1, "a"},
                {"日本語", 22, "b"},
                {"e\xcc\x81", 333, "c"},
                {"\xe9t\xe9", 4, "d"},
                {"😀x", 5, "e"},
                {"\xc2\x9b" "2J", 6, "f"}};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    pk_table *t = pk_table_new(out, PK_FORMAT_TABLE, columns, PK_ARRAY_SIZE(columns));
    for (size_t i = 0; i < PK_ARRAY_SIZE(rows); i++) {
        pk_table_text(t, rows[i].name);
        pk_table_int(t, rows[i].size);
        pk_table_text(t, rows[i].note);
    }
    assert_int_equal(pk_table_finish(t), 0);
    fclose(out);
    assert_string_equal(text, "name        größe  note\n"
                              "-----------------------\n"
                              "café            1  a\n"
                              "日本語         22  b\n"
                              "e\xcc\x81             333  c\n"
                              "\\xe9t\\xe9       4  d\n"
                              "😀x             5  e\n"
                              "\\xc2\\x9b2J      6  f\n");
    free(text);
}

static void numbers_drop_trailing_zeros(void **state)
{
    (void)state;
    static const struct {
        double value;
        const char *text;
    } cases[] = {{12, "12"},        {3.5, "3.5"},  {-0.25, "-0.25"}, {1.005e3, "1005"},
                 {2.0 / 3, "0.67"}, {-0.001, "0"}, {0, "0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        pk_svg_number(out, cases[i].value);
        fclose(out);
        assert_string_equal(text, cases[i].text);
        free(text);
    }
}

static void axes_pick_units_and_nice_steps(void **state)
{
    (void)state;
    static const struct {
        pk_axis_kind kind;
        double max;
        int ticks;
        const char *labels; /* the first ticks and the end, "|"-separated */
    } cases[] = {
        {PK_AXIS_BYTES, 12.0 * MIB, 6, "0|2 MiB|4 MiB|12 MiB"},
        {PK_AXIS_BYTES, 3.2 * MIB, 6, "0|1 MiB|2 MiB|4 MiB"},
        {PK_AXIS_BYTES, 700, 6, "0|200 B|400 B|800 B"},
        {PK_AXIS_BYTES, 1.5 * 1024 * MIB, 6, "0|0.5 GiB|1.0 GiB|1.5 GiB"},
        {PK_AXIS_NS, 10000, 8, "0|2 us|4 us|10 us"},
        {PK_AXIS_NS, 2.5e9, 8, "0|0.5 s|1.0 s|2.5 s"},
        {PK_AXIS_NS, 45e6, 8, "0|10 ms|20 ms|50 ms"},
        {PK_AXIS_COUNT, 7, 8, "0|1|2|7"},
        {PK_AXIS_COUNT, 12345, 8, "0|2000|4000|14000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pk_axis a = pk_axis_make(cases[i].kind, cases[i].max, cases[i].ticks);
        char got[128], label[32];
        size_t n = 0;
        for (int k = 0; k < 3; k++) {
            pk_axis_label(&a, k * a.step, label, sizeof label);
            n += (size_t)snprintf(got + n, sizeof got - n, "%s|", label);
        }
        pk_axis_label(&a, a.end, label, sizeof label);
        snprintf(got + n, sizeof got - n, "%s", label);
        assert_string_equal(got, cases[i].labels);
        assert_true(a.end >= cases[i].max);
        assert_true(a.ticks <= cases[i].ticks);
    }
}

static void colours_follow_the_name(void **state)
{
    (void)state;
    char a[8], b[8], c[8];
    pk_name_colour("parse", PK_PALETTE_HOT, a);
    pk_name_colour("parse", PK_PALETTE_HOT, b);
    pk_name_colour("load", PK_PALETTE_HOT, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    /* FNV-1a of "parse" is 0x423b42ec: r 205 + 0xec*50/255, g 0x42*230/255, b 0x3b*55/255. */
    assert_string_equal(a, "#fb3b0c");
}

/* ---- plot ---------------------------------------------------------------------------- */

static void plot_of_the_known_run(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    pk_query q;
    open_run(&q, &pk_cmd_plot, t->db, NULL);
    assert_int_equal(pk_memory_check(&q), 0);
    pk_plot_options o = pk_plot_defaults();
    char *svg = generate(&q, plot_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">run 1: memory over time</text>");
    assert_contains(svg, ">8 events, every one drawn</text>");
    /* The y axis: 12 MiB of VMS in steps of 2 MiB; the x axis: 10 us in steps of 2 us. */
    static const char *const ticks[] = {
        ">0</text>",    ">2 MiB</text>", ">12 MiB</text>",
        ">2 us</text>", ">10 us</text>", ">time since the start of the run</text>"};
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++)
        assert_contains(svg, ticks[i]);
    /* 0 to 12 MiB: 7 ticks; 0 to 10 us: 6. */
    assert_int_equal(occurrences(svg, "class=\"tick\">"), 13);
    assert_int_equal(occurrences(svg, "MiB</text>"), 6);
    /* The legend, and one line per series. */
    assert_contains(svg, "class=\"legend\">RSS</text>");
    assert_contains(svg, "class=\"legend\">VMS</text>");
    assert_contains(svg, "class=\"legend\">live heap</text>");
    assert_int_equal(occurrences(svg, "<polyline"), 3);
    /* The two RSS jumps, largest first, where the program was (the returning function). */
    assert_int_equal(occurrences(svg, "<g class=\"spike\">"), 2);
    assert_contains(svg, "<title>+2097152 bytes of RSS at event 2, in load (demo.c:20)</title>");
    assert_contains(svg, ">1. +2.0 MiB in load (demo.c:20) at 3.00 us</text>");
    assert_contains(svg, ">2. +512.0 KiB in parse (demo.c:30) at 8.00 us</text>");
    /* The plot area is 856 px wide from x = 80 over 10 us: load returns at 3 us. */
    assert_contains(svg, "<circle cx=\"336.8\"");
    free(svg);

    o.x = PK_PLOT_X_INDEX;
    o.spikes = 1;
    svg = generate(&q, plot_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">run 1: memory over events</text>");
    assert_contains(svg, ">event index</text>");
    assert_contains(svg, ">1. +2.0 MiB in load (demo.c:20) at event 2</text>");
    assert_int_equal(occurrences(svg, "<g class=\"spike\">"), 1);
    free(svg);
    pk_query_close(&q);
}

/* 3000 events over 856 pixel columns: each column's low and high point only. */
static void plot_downsamples_large_runs(void **state)
{
    const temp_dir *t = *state;
    enum { COUNT = 3000 };
    pk_record *recs = calloc(COUNT, sizeof *recs);
    for (size_t i = 0; i < COUNT; i++) {
        bool call = i % 2 == 0;
        recs[i] = test_record(i, call ? PK_EVENT_CALL : PK_EVENT_RETURN, "step", 0, 100 * i);
        recs[i].duration_ns = call ? 0 : 100;
        recs[i].rss = (uint64_t)MIB + 4096 * (i % 7);
    }
    record_run(t->db, recs, COUNT);
    free(recs);
    pk_query q;
    open_run(&q, &pk_cmd_plot, t->db, NULL);
    pk_plot_options o = pk_plot_defaults();
    char *svg = generate(&q, plot_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">3000 events, downsampled: the lowest and highest of each of 856 pixel "
                         "columns</text>");
    /* At most two points per column and series: "x,y" pairs counted by their commas. */
    const char *points = strstr(svg, "points=\"");
    assert_non_null(points);
    size_t commas = 0;
    for (const char *p = points + 8; *p != '"'; p++)
        commas += *p == ',';
    assert_true(commas <= 2 * 856);
    assert_true(commas >= 856);
    free(svg);
    pk_query_close(&q);
}

/*
 * The plot of the known run with allocation tables and the timer samples
 * `samples_sql` adds (and whatever else it does to the file); q stays open.
 */
static char *plot_known_with_samples(const temp_dir *t, const char *samples_sql, pk_query *q,
                                     pk_plot_options *o)
{
    record_known(t->db);
    add_allocation_tables(t->db);
    exec_sql(t->db, samples_sql);
    open_run(q, &pk_cmd_plot, t->db, NULL);
    *o = pk_plot_defaults();
    char *svg = generate(q, plot_writer, o, 0);
    assert_valid_xml(t, svg);
    return svg;
}

/*
 * The alloc monitor's timer samples (memory_samples) join the RSS and VMS
 * lines on the time axis; the allocation records' heap peak is marked.
 */
static void plot_draws_timer_samples_and_the_heap_peak(void **state)
{
    const temp_dir *t = *state;
    pk_query q;
    pk_plot_options o;
    char *svg =
        plot_known_with_samples(t,
                                "INSERT INTO memory_samples (run_id, time_ns, rss, vms) VALUES"
                                " (1, 500, 2097152, 11534336), (1, 12000, 4194304, 13631488)",
                                &q, &o);
    assert_contains(svg, ">8 events and 2 timer samples, every one drawn</text>");
    /* The last sample, at 12 us and 13 MiB of VMS, widens both axes (y in steps of 5 MiB). */
    assert_contains(svg, ">15 MiB</text>");
    assert_contains(svg, ">12 us</text>");
    assert_contains(svg, "<g class=\"peak\"><title>heap peak: 5.9 KiB (6000 bytes requested, live "
                         "blocks) at 3.00 us</title>");
    free(svg);
    o.x = PK_PLOT_X_INDEX;
    svg = generate(&q, plot_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">8 events, every one drawn; the timer samples have no event index (see "
                         "--x time)</text>");
    assert_int_equal(occurrences(svg, "class=\"peak\""), 0);
    free(svg);
    pk_query_close(&q);
}

#define HEAP_COLOUR "#2ca02c"

/*
 * Timer samples with the allocation records' heap (schema version 5) are
 * the heap line, in place of the events' jemalloc counters: three points,
 * the highest 5000 bytes, under the 6000-byte peak between them. On the
 * 12 MiB axis (316 px high, from y = 56 to 372) 5000 bytes is 0.13 px up;
 * 12 us over 856 px from x = 80.
 */
static void plot_draws_the_heap_of_the_timer_samples(void **state)
{
    pk_query q;
    pk_plot_options o;
    char *svg = plot_known_with_samples(
        *state,
        "INSERT INTO memory_samples VALUES (1, 500, 2097152, 11534336, 1000, 1),"
        " (1, 6000, 3145728, 12582912, 5000, 2), (1, 12000, 3145728, 12582912, 0, 0)",
        &q, &o);
    assert_contains(svg, ">8 events and 3 timer samples, every one drawn</text>");
    char *points = polyline_points(svg, HEAP_COLOUR);
    assert_string_equal(points, "115.67,371.97 508,371.87 936,372");
    free(points);
    assert_int_equal(occurrences(svg, "<polyline fill=\"none\" stroke=\"" HEAP_COLOUR "\""), 1);
    assert_contains(svg, "class=\"legend\">live heap</text>");
    free(svg);
    pk_query_close(&q);
}

/*
 * A version-4 file (read-only, never upgraded) has no heap in its samples:
 * the heap line is the events' jemalloc counters, one point per event
 * (tiny's call and return, 1 ns apart, share theirs).
 */
static void plot_of_a_version_4_file_draws_the_counters(void **state)
{
    pk_query q;
    pk_plot_options o;
    char *svg = plot_known_with_samples(*state,
                                        "INSERT INTO memory_samples VALUES"
                                        " (1, 500, 2097152, 11534336, 1000, 1);"
                                        "ALTER TABLE memory_samples DROP COLUMN heap_bytes;"
                                        "ALTER TABLE memory_samples DROP COLUMN heap_blocks;"
                                        "PRAGMA user_version = 4",
                                        &q, &o);
    assert_contains(svg, ">8 events and 1 timer samples, every one drawn</text>");
    char *points = polyline_points(svg, HEAP_COLOUR);
    assert_int_equal(occurrences(points, ","), 7);
    free(points);
    free(svg);
    pk_query_close(&q);
}

/* A spike's line holds 511 bytes: a longer name is cut between two characters. */
static void plot_cuts_a_long_name_between_characters(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    exec_sql(t->db, "UPDATE symbols SET function = 'x' || replace(printf('%.300c', 'x'), 'x', 'é')"
                    " WHERE function = 'load';");
    pk_query q;
    open_run(&q, &pk_cmd_plot, t->db, NULL);
    pk_plot_options o = pk_plot_defaults();
    char *svg = generate(&q, plot_writer, &o, 0);
    assert_valid_xml(t, svg);
    /* "1. +2.0 MiB in x" is 16 bytes: 247 é (494 bytes) and half of one fit after it. */
    char name[602] = "x", *part = NULL;
    for (int i = 0; i < 300; i++)
        strcat(name, "é");
    assert_true(asprintf(&part, ">1. +2.0 MiB in %.495s</text>", name) > 0);
    assert_contains(svg, part);
    free(part);
    /* The hover title has room for it whole. */
    assert_true(asprintf(&part,
                         "<title>+2097152 bytes of RSS at event 2, in %s (demo.c:20)</title>",
                         name) > 0);
    assert_contains(svg, part);
    free(part);
    free(svg);
    pk_query_close(&q);
}

/* ---- flame ----------------------------------------------------------------------------- */

static void flame_by_time(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    pk_query q;
    open_run(&q, &pk_cmd_flame, t->db, NULL);
    assert_int_equal(pk_flame_check(&q, PK_WEIGHT_TIME, NULL), 0);
    pk_flame_options o = pk_flame_defaults(PK_WEIGHT_TIME);
    char *svg = generate(&q, flame_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">run 1: time by call path</text>");
    assert_contains(svg, ">total 10000 ns (10.00 us); 4 call paths; 1 frame narrower than 1 px "
                         "merged into 1 grey frame</text>");
    assert_contains(svg, "<title>all: 10000 ns (10.00 us), 100.00%</title>");
    assert_contains(svg, "<title>main (demo.c:5): 10000 ns (10.00 us), 100.00%, 1 call</title>");
    /* Siblings in name order over 1180 px: load, parse, then tiny merged at the end. */
    assert_contains(svg, "data-x=\"10\" data-w=\"236\" data-d=\"2\" data-n=\"load\"><title>load "
                         "(demo.c:20): 2000 ns (2.00 us), 20.00%, 1 call</title>");
    assert_contains(svg, "data-x=\"246\" data-w=\"472\" data-d=\"2\" data-n=\"parse\"><title>parse "
                         "(demo.c:30): 4000 ns (4.00 us), 40.00%, 1 call</title>");
    assert_contains(svg, "<title>(1 frame under 1 px): 1 ns (1 ns), 0.01%</title>");
    assert_int_equal(occurrences(svg, "data-n=\"tiny\""), 0);
    assert_int_equal(occurrences(svg, "<g class=\"frame\""), 5);
    /* The colour is the name's, the label cut to the width. */
    assert_contains(svg, "fill=\"#fb3b0c\" rx=\"2\"/>\n<text x=\"249\"");
    assert_contains(svg, "<script type=\"text/ecmascript\"><![CDATA[");
    assert_contains(svg, "document.getElementById('flame')");
    free(svg);
    pk_query_close(&q);
}

static void flame_by_bytes_allocated(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    pk_query q;
    open_run(&q, &pk_cmd_flame, t->db, NULL);
    assert_int_equal(pk_flame_check(&q, PK_WEIGHT_ALLOC, NULL), 0);
    pk_flame_options o = pk_flame_defaults(PK_WEIGHT_ALLOC);
    o.id = "flame-alloc";
    char *svg = generate(&q, flame_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, "id=\"flame-alloc\"");
    assert_contains(svg, ">total 2101248 bytes (2.0 MiB); 4 call paths</text>");
    assert_contains(svg,
                    "<title>load (demo.c:20): 2097152 bytes (2.0 MiB), 99.81%, 1 call</title>");
    /* parse's 4096 bytes are 2.3 px wide; tiny allocated nothing and is not drawn. */
    assert_contains(svg, "<title>parse (demo.c:30): 4096 bytes (4.0 KiB), 0.19%, 1 call</title>");
    assert_int_equal(occurrences(svg, "<g class=\"frame\""), 4);
    free(svg);
    pk_query_close(&q);
}

static void flame_leaked_and_peak_need_allocation_records(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    pk_query q;
    open_run(&q, &pk_cmd_flame, t->db, NULL);
    bool found = true, weighable = true;
    assert_int_equal(pk_query_has_alloc(&q, &found), 0);
    assert_false(found);
    assert_int_equal(pk_flame_check(&q, PK_WEIGHT_LEAKED, &weighable), 0);
    assert_false(weighable);
    weighable = true;
    assert_int_equal(pk_flame_check(&q, PK_WEIGHT_PEAK, &weighable), 0);
    assert_false(weighable);
    pk_query_close(&q);

    add_allocation_tables(t->db);
    open_run(&q, &pk_cmd_flame, t->db, NULL);
    assert_int_equal(pk_query_has_alloc(&q, &found), 0);
    assert_true(found);
    assert_int_equal(pk_flame_check(&q, PK_WEIGHT_LEAKED, NULL), 0);
    pk_flame_options o = pk_flame_defaults(PK_WEIGHT_LEAKED);
    char *svg = generate(&q, flame_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, ">run 1: bytes leaked by call path</text>");
    /* main's own 500 bytes, allocated outside any recorded call, are a root frame of their own. */
    assert_contains(svg,
                    ">total 4500 bytes (4.4 KiB); 4 call paths and 1 allocating function</text>");
    assert_contains(svg, "<title>main (demo.c:5): 4000 bytes (3.9 KiB), 88.89%, 1 call</title>");
    assert_contains(svg, "<title>load (demo.c:20): 3000 bytes (2.9 KiB), 66.67%, 1 call</title>");
    assert_contains(svg, "<title>parse (demo.c:30): 1000 bytes (1000 B), 22.22%, 1 call</title>");
    assert_contains(svg,
                    "<title>main (demo.c:5): 500 bytes (500 B), 11.11%, its allocations</title>");
    assert_int_equal(occurrences(svg, "data-n=\"main\""), 2);
    free(svg);
    o = pk_flame_defaults(PK_WEIGHT_PEAK);
    svg = generate(&q, flame_writer, &o, 0);
    assert_contains(svg, "<title>load (demo.c:20): 5000 bytes (4.9 KiB), 83.33%, 1 call</title>");
    free(svg);
    pk_query_close(&q);
}

/*
 * Names that are not ASCII: a label cut to a frame's width keeps whole
 * characters, and counts characters (twelve é fill twelve places, not
 * 24); a byte that is not UTF-8 is a U+FFFD; data-n and the title keep a
 * long name whole. The SVG parses.
 */
static void flame_of_names_not_ascii(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    exec_sql(t->db, "UPDATE symbols SET function = 'éééééééééééé' WHERE function = 'load';"
                    "UPDATE symbols SET function = CAST(X'6D61E96E' AS TEXT) WHERE function = "
                    "'main';"
                    "UPDATE symbols SET function = replace(printf('%.200c', 'x'), 'x', 'é')"
                    " WHERE function = 'parse';");
    char long_name[401] = "";
    for (int i = 0; i < 200; i++)
        strcat(long_name, "é");
    pk_query q;
    open_run(&q, &pk_cmd_flame, t->db, NULL);
    pk_flame_options o = pk_flame_defaults(PK_WEIGHT_TIME);
    o.width = 380;
    char *svg = generate(&q, flame_writer, &o, 0);
    assert_valid_xml(t, svg);
    /* load's frame is 20% of 360 px: 72, nine characters of 7 px after 6 px of margins. */
    assert_contains(svg, "data-w=\"72\" data-d=\"2\" data-n=\"éééééééééééé\"><title>éééééééééééé "
                         "(demo.c:20): 2000 ns (2.00 us), 20.00%, 1 call</title>");
    assert_contains(svg, "<text x=\"13\" y=\"56\" text-anchor=\"start\">ééééééé..</text>");
    assert_contains(svg, "data-n=\"ma" PK_UTF8_REPLACEMENT "n\"><title>ma" PK_UTF8_REPLACEMENT
                         "n (demo.c:5): 10000 ns");
    assert_contains(svg, "text-anchor=\"start\">ma" PK_UTF8_REPLACEMENT "n</text>");
    /* parse's 400 bytes: 144 px hold 19 characters. */
    char *part = NULL;
    assert_true(
        asprintf(&part, "data-n=\"%s\"><title>%s (demo.c:30): 4000 ns", long_name, long_name) > 0);
    assert_contains(svg, part);
    free(part);
    assert_contains(svg,
                    "<text x=\"85\" y=\"56\" text-anchor=\"start\">ééééééééééééééééé..</text>");
    free(svg);

    o.width = 1200; /* 236 px: the twelve fit whole */
    svg = generate(&q, flame_writer, &o, 0);
    assert_valid_xml(t, svg);
    assert_contains(svg, "text-anchor=\"start\">éééééééééééé</text>");
    free(svg);
    pk_query_close(&q);
}

/* ---- report ---------------------------------------------------------------------------- */

static int report_writer(pk_query *q, FILE *out, void *context)
{
    (void)context;
    return pk_report_write(q, out, NULL);
}

static void report_of_the_known_run(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    record_known(t->db);
    pk_query q, vs;
    open_run(&q, &pk_cmd_report, t->db, "2");
    char *html = generate(&q, report_writer, NULL, 0);
    assert_contains(html, "<body data-run=\"2\">");
    assert_contains(html, "<h1>pikoc run <span id=\"run-id\">2</span>: demo &lt;fast&gt; &amp; "
                          "&quot;loud&quot;</h1>");
    assert_contains(html, "<tr><th>started</th><td>2023-11-14 22:13:20 UTC</td></tr>");
    assert_contains(html, "<tr><th>duration</th><td class=\"n\" data-v=\"10000\" "
                          "title=\"10000\">10.00 us</td></tr>");
    assert_contains(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" id=\"plot\"");
    assert_contains(html, "id=\"flame-time\" width=\"1100\"");
    assert_contains(html, "id=\"flame-alloc\" width=\"1100\"");
    assert_contains(html, ">All 4 functions, by total time.</p>");
    assert_contains(html, ">All 4 call paths, by inclusive time.</p>");
    assert_contains(html, "<tr><td class=\"path\">main &gt; parse</td><td class=\"n\" data-v=\"1\" "
                          "title=\"1\">1</td><td class=\"n\" data-v=\"4000\" title=\"4000\">4.00 "
                          "us</td>");
    assert_int_equal(occurrences(html, "Run 2 has no allocation records (record them with pikoc "
                                       "run --monitor alloc)."),
                     3);
    assert_int_equal(occurrences(html, "<table class=\"sortable\">"), 2);
    assert_int_equal(occurrences(html, "id=\"diff\""), 0);
    assert_contains(html, "window.onerror");
    assert_contains(html, "setAttribute('data-ready', 'true')");
    assert_int_equal(occurrences(html, "http"), occurrences(html, "http://www.w3.org/2000/svg"));
    free(html);

    /* --vs 1: the same program, so every change is 0. */
    pk_query_init(&vs, &pk_cmd_report);
    vs.path = t->db;
    vs.run_arg = "1";
    assert_int_equal(pk_query_open(&vs, true), 0);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_int_equal(pk_report_write(&q, out, &vs), 0);
    fclose(out);
    assert_contains(text, "<section id=\"diff\"><h2>Compared with run 1</h2>");
    assert_contains(text, "<tr><td>load</td><td class=\"n\" data-v=\"1\" title=\"1\">1</td><td "
                          "class=\"n\" data-v=\"1\" title=\"1\">1</td><td class=\"n\" data-v=\"0\" "
                          "title=\"0\">0</td>");
    assert_int_equal(occurrences(text, "<table class=\"sortable\">"), 3);
    free(text);
    pk_query_close(&vs);
    pk_query_close(&q);
}

/* A command line that is not UTF-8 (an argument in Latin-1): U+FFFD for the byte. */
static void report_of_a_command_line_not_utf8(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    exec_sql(t->db, "UPDATE runs SET command_line = CAST(X'64656D6F20636166E9' AS TEXT),"
                    " host = CAST(X'E96CE9' AS TEXT)");
    pk_query q;
    open_run(&q, &pk_cmd_report, t->db, NULL);
    char *html = generate(&q, report_writer, NULL, 0);
    assert_contains(html, "<h1>pikoc run <span id=\"run-id\">1</span>: demo caf" PK_UTF8_REPLACEMENT
                          "</h1>");
    assert_contains(html, "<tr><th>host</th><td>" PK_UTF8_REPLACEMENT "l" PK_UTF8_REPLACEMENT
                          "</td></tr>");
    free(html);
    pk_query_close(&q);
}

static void report_shows_leaks_and_peak(void **state)
{
    const temp_dir *t = *state;
    record_known(t->db);
    add_allocation_tables(t->db);
    pk_query q;
    open_run(&q, &pk_cmd_report, t->db, NULL);
    char *html = generate(&q, report_writer, NULL, 0);
    assert_contains(html, "<tr><td>load</td><td class=\"n\" data-v=\"21\" title=\"21\">21</td><td "
                          "class=\"n\" data-v=\"3\" title=\"3\">3</td><td class=\"n\" "
                          "data-v=\"3000\" title=\"3000\">2.9 KiB</td><td>demo.c</td></tr>");
    assert_contains(html, "<p class=\"note\">The heap peaked at 5.9 KiB (6000 bytes), 3.00 us "
                          "after the start.</p>");
    /* The sites by bytes requested, as pikoc top --by bytes --group site lists them. */
    assert_contains(html, "<tr><td>load</td><td class=\"n\" data-v=\"21\" title=\"21\">21</td><td "
                          "class=\"n\" data-v=\"4\" title=\"4\">4</td><td class=\"n\" "
                          "data-v=\"8000\" title=\"8000\">7.8 KiB</td>");
    assert_int_equal(occurrences(html, "<table class=\"sortable\">"), 4);
    assert_int_equal(occurrences(html, "has no allocation records"), 0);
    free(html);
    pk_query_close(&q);
}

#define WITH_DIR(test) cmocka_unit_test_setup_teardown(test, temp_dir_make, temp_dir_remove)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(markup_escape_covers_the_five_characters),
        cmocka_unit_test(markup_escape_makes_valid_utf8),
        cmocka_unit_test(json_string_makes_valid_utf8),
        cmocka_unit_test(utf8_characters_and_cuts),
        cmocka_unit_test(table_aligns_by_display_width),
        cmocka_unit_test(numbers_drop_trailing_zeros),
        cmocka_unit_test(axes_pick_units_and_nice_steps),
        cmocka_unit_test(colours_follow_the_name),
        WITH_DIR(plot_of_the_known_run),
        WITH_DIR(plot_downsamples_large_runs),
        WITH_DIR(plot_draws_timer_samples_and_the_heap_peak),
        WITH_DIR(plot_draws_the_heap_of_the_timer_samples),
        WITH_DIR(plot_of_a_version_4_file_draws_the_counters),
        WITH_DIR(plot_cuts_a_long_name_between_characters),
        WITH_DIR(flame_by_time),
        WITH_DIR(flame_by_bytes_allocated),
        WITH_DIR(flame_leaked_and_peak_need_allocation_records),
        WITH_DIR(flame_of_names_not_ascii),
        WITH_DIR(report_of_the_known_run),
        WITH_DIR(report_of_a_command_line_not_utf8),
        WITH_DIR(report_shows_leaks_and_peak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
