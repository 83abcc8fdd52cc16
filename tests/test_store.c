/*
 * test_store.c — the sqlite:PATH recorder and the store API (src/store.h):
 * runs, exact aggregates (recursion, filters in front), the pikoc_events
 * virtual table against the records pushed, many runs in one file, marking
 * a run, a killed writer, and every bad input with its exact message and
 * the file's bytes unchanged. Each test works in its own temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "records.h"
#include "temp_dir.h"
#include "store.h"

#define START_WALL_NS 1700000000000000000ll
#define PAGE 4096

/* ---- helpers ----------------------------------------------------------------- */

static const temp_dir *dir_of(void **state)
{
    return *state;
}

static pk_run_info demo_run(void)
{
    pk_run_info run = {.monitor = "function-memory",
                       .flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC,
                       .clock = "tsc",
                       .alloc_source = "jemalloc",
                       .command_line = "demo --fast",
                       .host = "testhost",
                       .pid = 4321,
                       .start_ns = 77,
                       .start_wall_ns = START_WALL_NS};
    return run;
}

static pk_logger *sqlite_logger(const char *path, const char *filter)
{
    char spec[700];
    pk_error err = {{0}};
    snprintf(spec, sizeof spec, "sqlite:%s", path);
    pk_recorder *r = pk_recorder_open(spec, &err);
    if (!r)
        fail_msg("%s", err.message);
    pk_logger *lg = pk_logger_new(r);
    if (filter && pk_logger_add_filter_spec(lg, filter, &err) != 0)
        fail_msg("%s", err.message);
    return lg;
}

/* One whole run through "sqlite:PATH" (behind an optional filter). */
/* The records pushed `batch` at a time (the drain hands over up to 64). */
static void record_run_in(const char *path, const char *filter, pk_run_info run,
                          const pk_record *recs, size_t n, const pk_run_totals *totals,
                          size_t batch)
{
    pk_logger *lg = sqlite_logger(path, filter);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < n; i += batch)
        pk_logger_push_many(lg, &recs[i], n - i < batch ? n - i : batch);
    assert_int_equal(pk_logger_finish(lg, totals), 0);
    assert_null(pk_logger_error(lg));
    pk_logger_free(lg);
}

static void record_run_as(const char *path, const char *filter, pk_run_info run,
                          const pk_record *recs, size_t n, const pk_run_totals *totals)
{
    record_run_in(path, filter, run, recs, n, totals, 1);
}

static void record_run(const char *path, const char *filter, const pk_record *recs, size_t n,
                       const pk_run_totals *totals)
{
    record_run_as(path, filter, demo_run(), recs, n, totals);
}

/* A run of function-memory,alloc: its records also carry blocks and sizes. */
static void record_alloc_run(const char *path, const pk_record *recs, size_t n,
                             const pk_run_totals *totals)
{
    pk_run_info run = demo_run();
    run.monitor = "function-memory,alloc";
    run.flags |= PK_RECORD_BLOCK | PK_RECORD_SIZE;
    record_run_as(path, NULL, run, recs, n, totals);
}

static sqlite3 *open_read(const char *path)
{
    sqlite3 *db = NULL;
    pk_error err = {{0}};
    if (pk_store_open_read(path, &db, &err) != 0)
        fail_msg("%s", err.message);
    assert_int_equal(pk_store_register_events(db), SQLITE_OK);
    return db;
}

/* Every row of a query as "a|b|c\n" lines, NULL as "NULL" (caller frees). */
static char *rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_str *out = sqlite3_str_new(NULL);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *text = (const char *)sqlite3_column_text(st, i);
            sqlite3_str_appendf(out, "%s%s", i ? "|" : "", text ? text : "NULL");
        }
        sqlite3_str_appendchar(out, 1, '\n');
    }
    if (rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    char *text = sqlite3_str_finish(out);
    return text ? text : sqlite3_mprintf("");
}

static void assert_rows(sqlite3 *db, const char *sql, const char *expected)
{
    char *got = rows(db, sql);
    assert_string_equal(got, expected);
    sqlite3_free(got);
}

/* The error a query stops with (it must fail). */
static void assert_query_fails(sqlite3 *db, const char *sql, const char *path, const char *expected)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = SQLITE_OK;
    assert_int_not_equal(rc, SQLITE_DONE);
    pk_error err = {{0}};
    assert_int_equal(pk_store_fail(&err, db, path), -1);
    sqlite3_finalize(st);
    assert_string_equal(err.message, expected);
}

/* The whole file, to prove a refused or read-only open changed nothing. */
typedef struct file_bytes {
    unsigned char *data;
    size_t size;
} file_bytes;

static file_bytes read_bytes(const char *path)
{
    file_bytes f = {0};
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    f.size = (size_t)ftell(in);
    fseek(in, 0, SEEK_SET);
    f.data = malloc(f.size ? f.size : 1);
    assert_int_equal(fread(f.data, 1, f.size, in), f.size);
    fclose(in);
    return f;
}

static void assert_unchanged(const char *path, file_bytes before)
{
    file_bytes after = read_bytes(path);
    assert_int_equal(after.size, before.size);
    assert_memory_equal(after.data, before.data, before.size);
    free(after.data);
    free(before.data);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(data, 1, size, out), size);
    fclose(out);
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* ---- a known run --------------------------------------------------------------- */

/*
 * main → a → a (recursion) → b, then main → b, on one thread:
 *
 *   index event         time  dur  allocated freed  rss pages
 *     0   call main        0          1000     500    100
 *     1   call a          10          1000     500    100
 *     2   call a          20          1100     500    101
 *     3   call b          30          1100     500    101
 *     4   return b        50   20     1150     520    103
 *     5   return a        70   50     1160     520    103
 *     6   return a       100   90     1200     530    104
 *     7   call b         110          1200     530    104
 *     8   return b       140   30     1300     600    110
 *     9   return main    200  200     1300     600    110
 */
#define NESTED_COUNT 10

static pk_record nested_record(size_t i)
{
    static const struct {
        pk_event_type type;
        const char *function;
        unsigned line, depth;
        const char *caller;
        unsigned caller_line;
        uint64_t time, duration, allocated, freed, rss_pages, alloc_delta, free_delta;
    } rows[NESTED_COUNT] = {
        {PK_EVENT_CALL, "main", 5, 0, "__libc_start_call_main", 58, 0, 0, 1000, 500, 100, 0, 0},
        {PK_EVENT_CALL, "a", 20, 1, "main", 7, 10, 0, 1000, 500, 100, 0, 0},
        {PK_EVENT_CALL, "a", 20, 2, "a", 22, 20, 0, 1100, 500, 101, 0, 0},
        {PK_EVENT_CALL, "b", 30, 3, "a", 23, 30, 0, 1100, 500, 101, 0, 0},
        {PK_EVENT_RETURN, "b", 30, 3, "a", 23, 50, 20, 1150, 520, 103, 50, 20},
        {PK_EVENT_RETURN, "a", 20, 2, "a", 22, 70, 50, 1160, 520, 103, 60, 20},
        {PK_EVENT_RETURN, "a", 20, 1, "main", 7, 100, 90, 1200, 530, 104, 200, 30},
        {PK_EVENT_CALL, "b", 30, 1, "main", 8, 110, 0, 1200, 530, 104, 0, 0},
        {PK_EVENT_RETURN, "b", 30, 1, "main", 8, 140, 30, 1300, 600, 110, 100, 70},
        {PK_EVENT_RETURN, "main", 5, 0, "__libc_start_call_main", 58, 200, 200, 1300, 600, 110, 300,
         100},
    };
    pk_record r = test_record(i, rows[i].type, rows[i].function, rows[i].depth, rows[i].time);
    r.line = rows[i].line;
    r.caller = rows[i].caller;
    r.caller_file = strcmp(rows[i].caller, "main") == 0 || strcmp(rows[i].caller, "a") == 0
                        ? "demo.c"
                        : "libc-start.c";
    r.caller_line = rows[i].caller_line;
    r.duration_ns = rows[i].duration;
    r.allocated = rows[i].allocated;
    r.freed = rows[i].freed;
    r.rss = rows[i].rss_pages * PAGE;
    r.alloc_delta = rows[i].alloc_delta;
    r.free_delta = rows[i].free_delta;
    return r;
}

static void nested_records(pk_record out[NESTED_COUNT])
{
    for (size_t i = 0; i < NESTED_COUNT; i++)
        out[i] = nested_record(i);
}

static const pk_run_totals nested_totals = {
    .events = 10, .calls = 5, .unmatched = 2, .unfinished = 3, .dropped = 1, .end_ns = 5000};

static void record_nested(const char *path, const char *filter)
{
    pk_record recs[NESTED_COUNT];
    nested_records(recs);
    record_run(path, filter, recs, NESTED_COUNT, &nested_totals);
}

#define FUNCTIONS_SQL                                                                              \
    "SELECT s.function, s.file, s.line, calls, total_ns, self_ns, min_ns, max_ns, "                \
    "alloc_bytes, free_bytes, self_alloc_bytes, self_free_bytes, rss_growth "                      \
    "FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id "               \
    "WHERE f.run_id = %d ORDER BY s.function"

/* main: 200 total, 200 - 90 - 30 self; a: outermost 90 total, (50-20) + (90-50) self. */
#define NESTED_FUNCTIONS                                                                           \
    "a|demo.c|20|2|90|70|50|90|200|30|150|10|16384\n"                                              \
    "b|demo.c|30|2|50|50|20|30|150|90|150|90|32768\n"                                              \
    "main|demo.c|5|1|200|80|200|200|300|100|0|0|40960\n"

#define PATHS_SQL                                                                                  \
    "SELECT p.id, coalesce(p.parent_id, 'NULL'), s.function, depth, calls, total_ns, "             \
    "self_ns, alloc_bytes, free_bytes, rss_growth FROM call_paths p JOIN symbols s "               \
    "ON s.run_id = p.run_id AND s.id = p.symbol_id WHERE p.run_id = %d ORDER BY p.id"

#define NESTED_PATHS                                                                               \
    "1|NULL|main|0|1|200|80|300|100|40960\n"                                                       \
    "2|1|a|1|1|90|40|200|30|16384\n"                                                               \
    "3|2|a|2|1|50|30|60|20|8192\n"                                                                 \
    "4|3|b|3|1|20|20|50|20|8192\n"                                                                 \
    "5|1|b|1|1|30|30|100|70|24576\n"

static void assert_sql(sqlite3 *db, const char *format, int run, const char *expected)
{
    char sql[1024];
    snprintf(sql, sizeof sql, format, run);
    assert_rows(db, sql, expected);
}

/* ---- runs and aggregates --------------------------------------------------------- */

static void run_row_holds_every_column(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT * FROM runs",
                "1|demo --fast|testhost|4321|1700000000000000000|1700000000000005000|5000|"
                "function-memory|tsc|jemalloc|3|complete|NULL|NULL|10|5|10|1|2|3|NULL|NULL\n");
    /* Thread 4242 is not one pikoc saw run: no name. */
    assert_rows(db, "SELECT * FROM threads", "1|4242|10|5|10|NULL\n");
    assert_rows(db, "PRAGMA user_version", "6\n");
    assert_rows(db, "PRAGMA application_id", "1347112771\n");
    sqlite3_close(db);
}

/* What schema version 6 adds: dropped to make an older file. */
#define VERSION_6_OBJECTS "ALTER TABLE runs DROP COLUMN sender; DROP TABLE sender_messages;"

/* What schema version 5 adds (and 6 after it): dropped to make an older file. */
#define VERSION_5_OBJECTS                                                                          \
    VERSION_6_OBJECTS " ALTER TABLE memory_samples DROP COLUMN heap_bytes;"                        \
                      " ALTER TABLE memory_samples DROP COLUMN heap_blocks;"

/* What schema version 4 adds (and 5 after it): dropped to make an older file. */
#define VERSION_4_OBJECTS VERSION_5_OBJECTS " DROP TABLE alloc_stacks; DROP TABLE alloc_frames;"

/* What schema version 3 adds (and 4 after it): dropped to make an older file. */
#define VERSION_3_OBJECTS                                                                          \
    VERSION_4_OBJECTS " DROP TABLE alloc_runs; DROP TABLE alloc_sites; DROP TABLE alloc_sizes;"    \
                      " DROP TABLE memory_samples; ALTER TABLE threads DROP COLUMN name;"          \
                      " ALTER TABLE runs DROP COLUMN parent_run;"

/* ---- profiler spans and checkpoints (schema version 2) ------------------------------ */

#define PROFILER_COUNT 7
#define QUERY_CONTEXT "pk1-00000000000000ab-3-77-1700000000000000160-client"

/* A request profiler (span 1) with a nested query profiler (span 2) continuing a context. */
static void profiler_records(pk_record out[PROFILER_COUNT])
{
    static const struct {
        pk_event_type type;
        const char *function, *label;
        uint64_t span;
        unsigned depth;
        uint64_t time, duration, total, alloc_delta;
    } rows[PROFILER_COUNT] = {
        {PK_EVENT_CALL, "request", "", 1, 0, 100, 0, 0, 0},
        {PK_EVENT_CHECKPOINT, "request", "parsed", 1, 1, 150, 50, 50, 64},
        {PK_EVENT_CALL, "query", QUERY_CONTEXT, 2, 1, 160, 0, 0, 0},
        {PK_EVENT_CHECKPOINT, "query", "rows", 2, 2, 200, 40, 40, 0},
        {PK_EVENT_RETURN, "query", "", 2, 1, 210, 50, 0, 0},
        {PK_EVENT_CHECKPOINT, "request", "queried", 1, 1, 220, 70, 120, 32},
        {PK_EVENT_RETURN, "request", "", 1, 0, 230, 130, 0, 96},
    };
    for (size_t i = 0; i < PROFILER_COUNT; i++) {
        pk_record r = test_record(i, rows[i].type, rows[i].function, rows[i].depth, rows[i].time);
        r.flags |= PK_RECORD_SPAN;
        r.line = rows[i].span == 1 ? 10 : 12; /* the profiler's, on each of its records */
        r.label = rows[i].label;
        r.span = rows[i].span;
        r.duration_ns = rows[i].duration;
        r.total_ns = rows[i].total;
        r.alloc_delta = rows[i].alloc_delta;
        out[i] = r;
    }
    out[5].flags &= ~(unsigned)PK_RECORD_MEMORY; /* one mark without RSS: NULL, not 0 */
}

static void record_profilers(const char *path)
{
    pk_record recs[PROFILER_COUNT];
    profiler_records(recs);
    pk_run_totals totals = {.events = PROFILER_COUNT, .calls = 2, .end_ns = 300};
    record_run(path, NULL, recs, PROFILER_COUNT, &totals);
}

static void profilers_fill_spans_and_checkpoints(void **state)
{
    const temp_dir *t = dir_of(state);
    record_profilers(t->db);
    sqlite3 *db = open_read(t->db);
    int64_t version = 0;
    assert_int_equal(pk_store_version(db, &version), SQLITE_OK);
    assert_int_equal(version, PK_STORE_VERSION);
    assert_rows(db, "SELECT * FROM spans ORDER BY span",
                "1|1|NULL|4242|0|request|demo.c|10|NULL|100|130\n"
                "1|2|1|4242|1|query|demo.c|12|" QUERY_CONTEXT "|160|50\n");
    assert_rows(db, "SELECT * FROM checkpoints ORDER BY \"index\"",
                "1|1|1|request|parsed|4242|1|150|50|50|409600|4096000|1000|500|64|0\n"
                "1|3|2|query|rows|4242|2|200|40|40|409600|4096000|1000|500|0|0\n"
                "1|5|1|request|queried|4242|1|220|70|120|NULL|NULL|1000|500|32|0\n");
    /* Starts and finishes are calls and returns like any other; marks are not. */
    assert_rows(db, "SELECT \"index\", type, function, duration_ns FROM pikoc_events",
                "0|call|request|NULL\n2|call|query|NULL\n4|return|query|50\n"
                "6|return|request|130\n");
    assert_rows(db,
                "SELECT s.function, calls, total_ns, self_ns FROM functions f JOIN symbols s "
                "ON s.run_id = f.run_id AND s.id = f.symbol_id ORDER BY s.function",
                "query|1|50|50\nrequest|1|130|80\n");
    assert_rows(db, "SELECT events, calls, written FROM runs", "7|2|4\n");
    sqlite3_close(db);
}

/* A version-1 file (no profiler tables) reads as it is and is upgraded by the next writer. */
static void version_1_file_is_upgraded_by_a_writer(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    exec_sql(t->db, "DROP TABLE spans; DROP TABLE checkpoints; " VERSION_3_OBJECTS
                    " PRAGMA user_version = 1");
    sqlite3 *db = open_read(t->db);
    int64_t version = 0;
    assert_int_equal(pk_store_version(db, &version), SQLITE_OK);
    assert_int_equal(version, 1);
    sqlite3_close(db);

    record_profilers(t->db);
    db = open_read(t->db);
    assert_int_equal(pk_store_version(db, &version), SQLITE_OK);
    assert_int_equal(version, PK_STORE_VERSION);
    assert_rows(db, "SELECT id, events FROM runs", "1|10\n2|7\n");
    assert_rows(db, "SELECT run_id, span, message FROM spans ORDER BY span",
                "2|1|request\n2|2|query\n");
    assert_rows(db, "SELECT count(*) FROM pikoc_events WHERE run_id = 1", "10\n");
    sqlite3_close(db);
}

/* A nested run, the file made older by `older` (SQL), then another: the file upgraded. */
static sqlite3 *nested_across_upgrade(const temp_dir *t, const char *older)
{
    record_nested(t->db, NULL);
    exec_sql(t->db, older);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "PRAGMA user_version", "6\n");
    return db;
}

/* A version-2 file (before allocations) is upgraded by the next writer, its runs kept. */
static void version_2_file_is_upgraded(void **state)
{
    sqlite3 *db =
        nested_across_upgrade(dir_of(state), VERSION_3_OBJECTS " PRAGMA user_version = 2");
    assert_rows(db, "SELECT id, status FROM runs", "1|complete\n2|complete\n");
    assert_rows(db, "SELECT count(*) FROM alloc_runs", "0\n");
    assert_rows(
        db,
        "SELECT name FROM sqlite_master WHERE name LIKE 'alloc_%' OR name = "
        "'memory_samples' ORDER BY name",
        "alloc_frames\nalloc_runs\nalloc_sites\nalloc_sizes\nalloc_stacks\nmemory_samples\n");
    sqlite3_close(db);
}

/* A version-3 file (before stacks) is upgraded by the next writer, its allocations kept. */
static void version_3_file_is_upgraded(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record rec = test_record(0, PK_EVENT_ALLOC, "", 0, 10);
    rec.flags = PK_RECORD_BLOCK | PK_RECORD_SIZE;
    rec.alloc_function = "malloc";
    rec.pointer = 0xa;
    rec.size = rec.usable_size = 8;
    pk_run_totals totals = {.events = 1, .end_ns = 100};
    record_run(t->db, NULL, &rec, 1, &totals);
    exec_sql(t->db, VERSION_4_OBJECTS " ALTER TABLE alloc_runs DROP COLUMN stacks;"
                                      " PRAGMA user_version = 3");
    record_run(t->db, NULL, &rec, 1, &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "PRAGMA user_version", "6\n");
    assert_rows(db, "SELECT run_id, allocations, leaked_bytes, stacks FROM alloc_runs",
                "1|1|8|0\n2|1|8|0\n");
    assert_rows(db, "SELECT count(*) FROM alloc_stacks", "0\n");
    sqlite3_close(db);
}

/* An allocation record as the drain builds it: site `line` of main, on `thread`. */
static pk_record alloc_record(uint64_t index, pk_event_type type, uintptr_t pointer, uintptr_t old,
                              uint64_t size, unsigned line, uint64_t thread)
{
    pk_record r = test_record(index, type, "", 0, 10 * index);
    r.flags = PK_RECORD_BLOCK | PK_RECORD_SIZE;
    r.file = "";
    r.line = 0;
    r.caller_line = line;
    r.call_site = 0x1000 + line;
    r.thread = thread;
    r.alloc_function = type == PK_EVENT_FREE ? "free" : "malloc";
    r.pointer = pointer;
    r.old_pointer = old;
    r.size = size;
    r.usable_size = size;
    return r;
}

/*
 *   index  line  thread  event                      live bytes
 *     0     1      1     alloc 0xa 100                 100
 *     1     2      1     alloc 0xb 50                  150
 *     2     3      1     free 0xb (temporary)          100
 *     3     4      1     realloc 0xa -> 0xc 400        400 (peak, time 30)
 *     4     5      2     alloc 0xd 10                  410 (peak, time 40)
 *     5     6      2     free 0xd (temporary)          400
 *     6     6      1     free 0xe (never allocated)    400
 *     7     1      1     alloc 0xf 100                 500 (peak, time 70)
 *     8     3      1     free 0xc (not temporary)      100
 * Left: 0xf (100 bytes, line 1). At the last peak line 1 held 100, line 4 400.
 */
static void allocations_become_site_aggregates(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[] = {
        alloc_record(0, PK_EVENT_ALLOC, 0xa, 0, 100, 1, 1),
        alloc_record(1, PK_EVENT_ALLOC, 0xb, 0, 50, 2, 1),
        alloc_record(2, PK_EVENT_FREE, 0xb, 0, 50, 3, 1),
        alloc_record(3, PK_EVENT_REALLOC, 0xc, 0xa, 400, 4, 1),
        alloc_record(4, PK_EVENT_ALLOC, 0xd, 0, 10, 5, 2),
        alloc_record(5, PK_EVENT_FREE, 0xd, 0, 10, 6, 2),
        alloc_record(6, PK_EVENT_FREE, 0xe, 0, 0, 6, 1),
        alloc_record(7, PK_EVENT_ALLOC, 0xf, 0, 100, 1, 1),
        alloc_record(8, PK_EVENT_FREE, 0xc, 0, 400, 3, 1),
    };
    pk_run_totals totals = {.events = PK_ARRAY_SIZE(recs), .end_ns = 100};
    record_run(t->db, NULL, recs, PK_ARRAY_SIZE(recs), &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db,
                "SELECT allocations, reallocs, frees, unknown_frees, bytes, freed_bytes,"
                " leaked_blocks, leaked_bytes, peak_bytes, peak_time_ns, peak_rss > 0, sites"
                " FROM alloc_runs",
                "5|1|4|1|660|560|1|100|500|70|1|4\n");
    assert_rows(db,
                "SELECT caller_line, path_id, allocations, bytes, frees, freed_bytes, temporary,"
                " leaked_blocks, leaked_bytes, peak_bytes FROM alloc_sites ORDER BY id",
                "1|NULL|2|200|1|100|0|1|100|100\n"
                "2|NULL|1|50|1|50|1|0|0|0\n"
                "4|NULL|1|400|1|400|0|0|0|400\n"
                "5|NULL|1|10|1|10|1|0|0|0\n");
    assert_rows(db, "SELECT size, count FROM alloc_sizes ORDER BY size",
                "10|1\n50|1\n100|2\n400|1\n");
    /* Allocation records are aggregates only: no event batches, no symbols of their own. */
    assert_rows(db, "SELECT written, (SELECT count(*) FROM event_batches) FROM runs", "0|0\n");
    assert_rows(db, "SELECT function, file, line FROM symbols", "main|demo.c|0\n");
    sqlite3_close(db);
}

/* Everything a run of allocations leaves, as rows (but the process's peak RSS). */
static char *heap_rows(const char *path)
{
    static const char *const queries[] = {
        "SELECT allocations, reallocs, frees, unknown_frees, bytes, freed_bytes, leaked_blocks,"
        " leaked_bytes, peak_bytes, peak_time_ns, sites, stacks FROM alloc_runs",
        "SELECT * FROM alloc_sites ORDER BY id",
        "SELECT * FROM alloc_sizes ORDER BY size",
        "SELECT run_id, thread, events, calls, written FROM threads ORDER BY thread",
        "SELECT events FROM runs",
    };
    sqlite3 *db = open_read(path);
    sqlite3_str *out = sqlite3_str_new(NULL);
    for (size_t i = 0; i < PK_ARRAY_SIZE(queries); i++) {
        char *r = rows(db, queries[i]);
        sqlite3_str_appendf(out, "%s:\n%s", queries[i], r);
        sqlite3_free(r);
    }
    sqlite3_close(db);
    return sqlite3_str_finish(out);
}

/*
 * The heap takes an allocation and its free that come one after the other
 * on a thread (a temporary block) as a pair, the block never entering its
 * table. It must count exactly as when each record comes alone: 3000
 * records of three threads (allocations, frees, reallocs, frees of blocks
 * never allocated, allocations of an address still live, whose free was
 * lost, and blocks freed by another thread) stored both ways.
 */
static void temporaries_count_alike_in_batches(void **state)
{
    const temp_dir *t = dir_of(state);
    enum { RECORDS = 3000, ADDRESSES = 24 };
    pk_record *recs = calloc(RECORDS, sizeof *recs);
    assert_non_null(recs);
    uint64_t live[ADDRESSES] = {0}; /* size + 1 of each address's block, 0: free */
    uint32_t seed = 12345;
#define DRAW(n) ((seed = seed * 1103515245u + 12345u), (seed >> 16) % (n))
    uint64_t pairs = 0;
    for (size_t i = 0; i < RECORDS; i++) {
        uint64_t thread = 1 + DRAW(3);
        size_t slot = DRAW(ADDRESSES);
        uintptr_t address = 0x1000 + 16 * slot;
        uint64_t size = 1 + DRAW(300);
        unsigned line = 1 + (unsigned)DRAW(5);
        unsigned choice = (unsigned)DRAW(8);
        if (i > 0 && recs[i - 1].type == PK_EVENT_ALLOC && choice < 5) {
            /* most often the block just allocated is freed next, on its thread */
            const pk_record *a = &recs[i - 1];
            recs[i] = alloc_record(i, PK_EVENT_FREE, a->pointer, 0, a->size, 6, a->thread);
            live[(a->pointer - 0x1000) / 16] = 0;
            pairs++;
        } else if (choice == 5) { /* a free of a block never allocated */
            recs[i] = alloc_record(i, PK_EVENT_FREE, 0x9000 + i, 0, 0, 6, thread);
            recs[i].flags = PK_RECORD_BLOCK;
        } else if (live[slot] && choice == 6) { /* a realloc, or an allocation over a lost free */
            uintptr_t to = 0x1000 + 16 * ((slot + 1) % ADDRESSES);
            if (!live[(to - 0x1000) / 16]) {
                recs[i] = alloc_record(i, PK_EVENT_REALLOC, to, address, size, 4, thread);
                live[slot] = 0;
                live[(to - 0x1000) / 16] = size + 1;
            } else {
                recs[i] = alloc_record(i, PK_EVENT_ALLOC, address, 0, size, line, thread);
                live[slot] = size + 1;
            }
        } else if (live[slot]) { /* a free, maybe of another thread's block */
            recs[i] = alloc_record(i, PK_EVENT_FREE, address, 0, live[slot] - 1, 6, thread);
            live[slot] = 0;
        } else {
            recs[i] = alloc_record(i, PK_EVENT_ALLOC, address, 0, size, line, thread);
            live[slot] = size + 1;
        }
    }
#undef DRAW
    assert_true(pairs > RECORDS / 10);
    pk_run_totals totals = {.events = RECORDS, .end_ns = 100000};
    char batched[700];
    snprintf(batched, sizeof batched, "%s/batched.db", t->dir);
    record_run(t->db, NULL, recs, RECORDS, &totals);
    record_run_in(batched, NULL, demo_run(), recs, RECORDS, &totals, 64);
    char *alone = heap_rows(t->db), *together = heap_rows(batched);
    assert_string_equal(together, alone);
    /* and the runs counted something: temporaries and lost frees among them */
    sqlite3 *db = open_read(batched);
    assert_rows(db,
                "SELECT sum(temporary) > 100, sum(leaked_blocks) > 0,"
                " (SELECT unknown_frees > 0 AND reallocs > 0 FROM alloc_runs) FROM alloc_sites",
                "1|1|1\n");
    sqlite3_close(db);
    sqlite3_free(alone);
    sqlite3_free(together);
    free(recs);
}

/*
 * Stacks (--stack N): two stacks through one call site, each counted on its
 * own and its frames stored once.
 *   index  event                 stack  live bytes
 *     0    alloc 0xa 100          1       100
 *     1    alloc 0xb 50           2       150
 *     2    alloc 0xc 10           1       160 (peak)
 *     3    free 0xc (temporary)   1       150
 *     4    free 0xb               2       100
 */
static void samples_are_stored(void **state);

static void allocation_stacks_become_stack_aggregates(void **state)
{
    const temp_dir *t = dir_of(state);
    /* Return addresses one byte into functions of this file: their names come back. */
    const uintptr_t first[] = {(uintptr_t)samples_are_stored + 1,
                               (uintptr_t)allocations_become_site_aggregates + 1,
                               (uintptr_t)version_3_file_is_upgraded + 1};
    const uintptr_t second[] = {(uintptr_t)samples_are_stored + 1,
                                (uintptr_t)version_2_file_is_upgraded + 1};
    pk_record recs[] = {
        alloc_record(0, PK_EVENT_ALLOC, 0xa, 0, 100, 1, 1),
        alloc_record(1, PK_EVENT_ALLOC, 0xb, 0, 50, 1, 1),
        alloc_record(2, PK_EVENT_ALLOC, 0xc, 0, 10, 1, 1),
        alloc_record(3, PK_EVENT_FREE, 0xc, 0, 10, 1, 1),
        alloc_record(4, PK_EVENT_FREE, 0xb, 0, 50, 1, 1),
    };
    for (size_t i = 0; i < PK_ARRAY_SIZE(recs); i++) {
        bool one = i != 1 && i != 4;
        recs[i].stack = one ? first : second;
        recs[i].stack_depth = one ? 3 : 2;
    }
    pk_run_totals totals = {.events = PK_ARRAY_SIZE(recs), .end_ns = 100};
    record_run(t->db, NULL, recs, PK_ARRAY_SIZE(recs), &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT sites, stacks, leaked_bytes, peak_bytes FROM alloc_runs",
                "1|2|100|160\n");
    assert_rows(db,
                "SELECT id, frames, allocations, bytes, frees, freed_bytes, temporary,"
                " leaked_blocks, leaked_bytes, peak_bytes FROM alloc_stacks ORDER BY id",
                "1|3|2|110|1|10|1|1|100|110\n"
                "2|2|1|50|1|50|0|0|0|50\n");
    assert_rows(db,
                "SELECT f.stack_id, f.depth, s.function FROM alloc_frames f JOIN symbols s"
                " ON s.run_id = f.run_id AND s.id = f.symbol_id ORDER BY f.stack_id, f.depth",
                "1|0|samples_are_stored\n"
                "1|1|allocations_become_site_aggregates\n"
                "1|2|version_3_file_is_upgraded\n"
                "2|0|samples_are_stored\n"
                "2|1|version_2_file_is_upgraded\n");
    sqlite3_close(db);
}

/*
 * Timer samples of RSS and VMS: rows of memory_samples, unmeasured ones left
 * out; a run that records no allocation calls has no heap to give them.
 */
static void samples_are_stored(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[3];
    for (size_t i = 0; i < 3; i++) {
        recs[i] = test_record(i, PK_EVENT_SAMPLE, "", 0, 10000000 * (i + 1));
        recs[i].caller = recs[i].caller_file = "";
        recs[i].thread = 0;
        recs[i].rss = 4096 * (100 + i);
        recs[i].vms = 4096 * 1000;
        recs[i].flags = i == 1 ? 0 : PK_RECORD_MEMORY; /* statm unreadable once */
    }
    pk_run_totals totals = {.events = 3, .end_ns = 40000000};
    record_run(t->db, NULL, recs, 3, &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db,
                "SELECT time_ns, rss, vms, heap_bytes, heap_blocks FROM memory_samples"
                " ORDER BY time_ns",
                "10000000|409600|4096000|NULL|NULL\n30000000|417792|4096000|NULL|NULL\n");
    assert_rows(db, "SELECT allocations, frees, peak_rss >= 417792 FROM alloc_runs", "0|0|1\n");
    /* No thread row and no symbol for them: they are the process's. */
    assert_rows(db, "SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM symbols)",
                "0|0\n");
    sqlite3_close(db);
}

/* A timer sample at record `index`, time 10 * index, RSS `pages` pages. */
static pk_record sample_record(uint64_t index, uint64_t pages)
{
    pk_record r = test_record(index, PK_EVENT_SAMPLE, "", 0, 10 * index);
    r.caller = r.caller_file = "";
    r.thread = 0;
    r.flags = PK_RECORD_MEMORY;
    r.rss = 4096 * pages;
    r.vms = 4096 * 1000;
    return r;
}

/*
 * Each sample holds the heap the records before it left: requested bytes
 * and blocks live. A peak between two samples (1400 at index 9) is in
 * alloc_runs and in no sample, which never exceeds it.
 *   index  event                 live bytes, blocks
 *     0    sample                    0, 0
 *     1    alloc 0xa 100           100, 1
 *     2    alloc 0xb 50            150, 2
 *     3    sample                  150, 2
 *     4    free 0xb                100, 1
 *     5    realloc 0xa -> 0xc 400  400, 1
 *     6    sample                  400, 1
 *     7    alloc 0xd 1000         1400, 2 (peak, time 70)
 *     8    free 0xd                400, 1
 *     9    free 0xc                  0, 0
 *    10    sample                    0, 0
 */
static void samples_carry_the_heap(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[] = {
        sample_record(0, 100),
        alloc_record(1, PK_EVENT_ALLOC, 0xa, 0, 100, 1, 1),
        alloc_record(2, PK_EVENT_ALLOC, 0xb, 0, 50, 2, 1),
        sample_record(3, 101),
        alloc_record(4, PK_EVENT_FREE, 0xb, 0, 0, 3, 1),
        alloc_record(5, PK_EVENT_REALLOC, 0xc, 0xa, 400, 4, 1),
        sample_record(6, 102),
        alloc_record(7, PK_EVENT_ALLOC, 0xd, 0, 1000, 5, 1),
        alloc_record(8, PK_EVENT_FREE, 0xd, 0, 0, 6, 1),
        alloc_record(9, PK_EVENT_FREE, 0xc, 0, 0, 6, 1),
        sample_record(10, 103),
    };
    pk_run_totals totals = {.events = PK_ARRAY_SIZE(recs), .end_ns = 200};
    record_alloc_run(t->db, recs, PK_ARRAY_SIZE(recs), &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db,
                "SELECT time_ns, rss, heap_bytes, heap_blocks FROM memory_samples"
                " ORDER BY time_ns",
                "0|409600|0|0\n30|413696|150|2\n60|417792|400|1\n100|421888|0|0\n");
    assert_rows(db, "SELECT peak_bytes, peak_time_ns, leaked_bytes FROM alloc_runs", "1400|70|0\n");
    sqlite3_close(db);
}

/*
 * A version-4 file (samples without the heap) is upgraded by the next
 * writer: its samples keep NULL, the new run's have the heap.
 */
static void version_4_file_is_upgraded(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[] = {alloc_record(0, PK_EVENT_ALLOC, 0xa, 0, 100, 1, 1), sample_record(1, 100)};
    pk_run_totals totals = {.events = PK_ARRAY_SIZE(recs), .end_ns = 20};
    record_alloc_run(t->db, recs, PK_ARRAY_SIZE(recs), &totals);
    exec_sql(t->db, VERSION_5_OBJECTS " PRAGMA user_version = 4");
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT run_id, time_ns, rss FROM memory_samples", "1|10|409600\n");
    sqlite3_close(db);
    record_alloc_run(t->db, recs, PK_ARRAY_SIZE(recs), &totals);
    db = open_read(t->db);
    assert_rows(db, "PRAGMA user_version", "6\n");
    assert_rows(db,
                "SELECT run_id, time_ns, rss, heap_bytes, heap_blocks FROM memory_samples"
                " ORDER BY run_id",
                "1|10|409600|NULL|NULL\n2|10|409600|100|1\n");
    assert_rows(db, "SELECT run_id, peak_bytes FROM alloc_runs ORDER BY run_id", "1|100\n2|100\n");
    sqlite3_close(db);
}

/* The messages a replay hands back, "seq:text" each, in order. */
static int collect_message(const uint8_t *message, size_t size, void *user, pk_error *err)
{
    (void)err;
    char *seen = user;
    strncat(seen, (const char *)message, size);
    strcat(seen, " ");
    return 0;
}

static void feed_nested(pk_store_run *run)
{
    pk_record recs[NESTED_COUNT];
    nested_records(recs);
    pk_error err;
    for (size_t i = 0; i < NESTED_COUNT; i++) {
        pk_store_run_observe(run, &recs[i]);
        assert_int_equal(pk_store_run_write(run, &recs[i], &err), 0);
    }
}

/*
 * A collector's run: its sender's messages are kept while it is open, stay
 * when the collector stops (suspend), come back in order when a later
 * collector takes the run up again (its other rows gone), and go when it ends.
 */
static void sender_run_survives_its_writer(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_error err;
    pk_run_info info = demo_run();
    const uint64_t sender = 0xfedcba9876543210ull; /* above 2^63: stored negative */
    pk_store_writer *w = pk_store_writer_open(t->db, &err);
    pk_store_run *run = pk_store_run_start(w, &info, 1, sender, &err);
    assert_non_null(run);
    const char *messages[] = {"hello", "batch-1", "batch-2"};
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(pk_store_run_keep_message(run, i, (const uint8_t *)messages[i],
                                                   strlen(messages[i]), &err),
                         0);
    feed_nested(run);
    assert_int_equal(pk_store_run_suspend(run, &err), 0);
    pk_store_run_free(run);
    pk_store_writer_close(w, false);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT status, end_ns IS NOT NULL, sender FROM runs",
                "incomplete|1|-81985529216486896\n");
    assert_rows(db, "SELECT count(*) FROM functions", "3\n");
    sqlite3_close(db);

    w = pk_store_writer_open(t->db, &err);
    int64_t run_id;
    pk_store_sender_state found;
    assert_int_equal(pk_store_writer_find_sender(w, 7, &run_id, &found, &err), 0);
    assert_int_equal(found, PK_STORE_SENDER_NEW);
    assert_int_equal(pk_store_writer_find_sender(w, sender, &run_id, &found, &err), 0);
    assert_int_equal(found, PK_STORE_SENDER_RESUMABLE);
    assert_int_equal(run_id, 1);
    run = pk_store_run_reopen(w, run_id, &info, &err);
    assert_non_null(run);
    char seen[64] = "";
    assert_int_equal(pk_store_run_replay(run, collect_message, seen, &err), 0);
    assert_string_equal(seen, "hello batch-1 batch-2 ");
    assert_int_equal(pk_store_writer_commit(w, &err), 0);
    db = open_read(t->db);
    assert_rows(db, "SELECT status, end_ns FROM runs", "running|NULL\n");
    assert_rows(db,
                "SELECT (SELECT count(*) FROM functions), (SELECT count(*) FROM symbols), "
                "(SELECT count(*) FROM event_batches)",
                "0|0|0\n");
    sqlite3_close(db);

    /* the replay's records are written again, then the run ends */
    feed_nested(run);
    assert_int_equal(pk_store_run_finish(run, &nested_totals, 0, "complete", &err), 0);
    assert_int_equal(pk_store_writer_find_sender(w, sender, &run_id, &found, &err), 0);
    assert_int_equal(found, PK_STORE_SENDER_ENDED);
    pk_store_run_free(run);
    pk_store_writer_close(w, false);
    char functions[512];
    snprintf(functions, sizeof functions, FUNCTIONS_SQL, 1);
    db = open_read(t->db);
    assert_rows(db, "SELECT status, (SELECT count(*) FROM sender_messages) FROM runs",
                "complete|0\n");
    assert_rows(db, functions, NESTED_FUNCTIONS);
    sqlite3_close(db);
}

/* Starts a run of demo_run's pid under ppid 1 and ends it with status; returns its id. */
static int64_t run_of_pid_4321(pk_store_writer *w, const char *status)
{
    pk_error err;
    pk_run_info info = demo_run();
    pk_store_run *run = pk_store_run_start(w, &info, 1, 0, &err);
    assert_non_null(run);
    int64_t id = pk_store_run_id(run);
    assert_int_equal(pk_store_run_finish(run, &nested_totals, 0, status, &err), 0);
    pk_store_run_free(run);
    return id;
}

/*
 * The image an exec started names the one it replaced as its parent, also
 * when that one's drainer marked it 'executed' first; a later process that
 * reuses the pid does not.
 */
static void exec_names_the_replaced_run_even_once_executed(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_error err;
    pk_store_writer *w = pk_store_writer_open(t->db, &err);
    assert_non_null(w);
    assert_int_equal(run_of_pid_4321(w, "executed"), 1);
    assert_int_equal(run_of_pid_4321(w, "complete"), 2);
    assert_int_equal(run_of_pid_4321(w, "complete"), 3);
    pk_store_writer_close(w, false);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT id, status, coalesce(parent_run, '-') FROM runs ORDER BY id",
                "1|executed|-\n2|complete|1\n3|complete|-\n");
    sqlite3_close(db);
}

/* A version-5 file (before collector runs could resume) is upgraded by the next writer. */
static void version_5_file_is_upgraded(void **state)
{
    sqlite3 *db =
        nested_across_upgrade(dir_of(state), VERSION_6_OBJECTS " PRAGMA user_version = 5");
    assert_rows(db, "SELECT id, status, sender FROM runs", "1|complete|NULL\n2|complete|NULL\n");
    assert_rows(db, "SELECT count(*) FROM sender_messages", "0\n");
    sqlite3_close(db);
}

/* A finished file is one file: no -wal or -shm left, back to a rollback journal. */
static void closed_store_is_one_file(void **state)
{
    const temp_dir *t = dir_of(state);
    char wal[700], shm[700];
    snprintf(wal, sizeof wal, "%s-wal", t->db);
    snprintf(shm, sizeof shm, "%s-shm", t->db);
    pk_logger *lg = sqlite_logger(t->db, NULL);
    pk_run_info run = demo_run();
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_int_equal(access(wal, F_OK), 0); /* WAL while recording */
    assert_int_equal(pk_logger_finish(lg, &nested_totals), 0);
    pk_logger_free(lg);
    assert_int_equal(access(wal, F_OK), -1);
    assert_int_equal(access(shm, F_OK), -1);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "PRAGMA journal_mode", "delete\n");
    assert_rows(db, "SELECT status FROM runs", "complete\n");
    sqlite3_close(db);
    assert_int_equal(access(wal, F_OK), -1);
}

/*
 * A short run's commits stay in the WAL (a checkpoint waits for the disk):
 * the file itself, read alone, is still empty while the run records, and
 * holds the run once the last connection has closed.
 */
static void short_run_is_not_checkpointed_while_recording(void **state)
{
    const temp_dir *t = dir_of(state);
    char uri[700];
    snprintf(uri, sizeof uri, "file:%s?immutable=1", t->db);
    pk_logger *lg = sqlite_logger(t->db, NULL);
    pk_run_info run = demo_run();
    assert_int_equal(pk_logger_start(lg, &run), 0);
    usleep(200000); /* time enough for a checkpoint the commit would have started */
    sqlite3 *file = NULL;
    assert_int_equal(sqlite3_open_v2(uri, &file, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL),
                     SQLITE_OK);
    assert_rows(file, "SELECT count(*) FROM sqlite_master", "0\n");
    sqlite3_close(file);
    assert_int_equal(pk_logger_finish(lg, &nested_totals), 0);
    pk_logger_free(lg);
    assert_int_equal(sqlite3_open_v2(uri, &file, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL),
                     SQLITE_OK);
    assert_rows(file, "SELECT status FROM runs", "complete\n");
    sqlite3_close(file);
}

static void functions_are_exact_with_recursion(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_sql(db, FUNCTIONS_SQL, 1, NESTED_FUNCTIONS);
    sqlite3_close(db);
}

static void call_paths_form_the_calling_context_tree(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_sql(db, PATHS_SQL, 1, NESTED_PATHS);
    /* The roots' total is the time spent in recorded calls. */
    assert_rows(db, "SELECT sum(total_ns) FROM call_paths WHERE parent_id IS NULL", "200\n");
    sqlite3_close(db);
}

static void symbols_name_callers_by_name_and_file(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT id, function, file, line FROM symbols ORDER BY id",
                "1|main|demo.c|5\n"
                "2|__libc_start_call_main|libc-start.c|0\n"
                "3|a|demo.c|20\n"
                "4|main|demo.c|0\n"
                "5|a|demo.c|0\n"
                "6|b|demo.c|30\n");
    sqlite3_close(db);
}

/* The record as the virtual table shows it, built field by field. */
static void expected_row(sqlite3_str *out, int run, const pk_record *r)
{
    bool ret = r->type == PK_EVENT_RETURN;
    sqlite3_str_appendf(out, "%d", run);
    for (int f = 0; f <= PK_FIELD_FREE_DELTA; f++) { /* the columns EVENTS_SQL selects */
        char value[256];
        bool since_call =
            f == PK_FIELD_DURATION || f == PK_FIELD_ALLOC_DELTA || f == PK_FIELD_FREE_DELTA;
        if (!pk_record_has_field(r, (pk_field_id)f) || (since_call && !ret))
            snprintf(value, sizeof value, "NULL");
        else
            pk_record_format_field(r, (pk_field_id)f, value, sizeof value);
        sqlite3_str_appendf(out, "|%s", value);
    }
    sqlite3_str_appendchar(out, 1, '\n');
}

#define EVENTS_SQL                                                                                 \
    "SELECT run_id, \"index\", type, function, file, line, caller, caller_file, "                  \
    "caller_line, thread, depth, time_ns, duration_ns, rss, vms, allocated, freed, "               \
    "alloc_delta, free_delta FROM pikoc_events"

static void assert_events(sqlite3 *db, const char *where, int run, const pk_record *recs, size_t n)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%s %s", EVENTS_SQL, where);
    sqlite3_str *expected = sqlite3_str_new(NULL);
    for (size_t i = 0; i < n; i++)
        expected_row(expected, run, &recs[i]);
    char *text = sqlite3_str_finish(expected);
    assert_rows(db, sql, text ? text : "");
    sqlite3_free(text);
}

static void events_table_returns_the_records_pushed(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    pk_record recs[NESTED_COUNT];
    nested_records(recs);
    assert_events(db, "", 1, recs, NESTED_COUNT);
    assert_rows(db,
                "SELECT \"index\", type, function, caller, caller_line, duration_ns, "
                "alloc_delta, function_id, caller_id FROM pikoc_events WHERE \"index\" IN (0, 4)",
                "0|call|main|__libc_start_call_main|58|NULL|NULL|1|2\n"
                "4|return|b|a|23|20|50|6|5\n");
    sqlite3_close(db);
}

/* Constraints on function, type and thread skip rows while decoding: same answers as SQL's. */
static void events_filters_on_function_type_and_thread(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
#define INDEXES "SELECT group_concat(\"index\", ' ') FROM pikoc_events WHERE "
    assert_rows(db, INDEXES "function = 'b'", "3 4 7 8\n");
    assert_rows(db, INDEXES "function GLOB '[ab]' AND type = 'return'", "4 5 6 8\n");
    assert_rows(db, INDEXES "run_id = 1 AND thread = 4242 AND type = 'call'", "0 1 2 3 7\n");
    assert_rows(db, INDEXES "thread = 99", "NULL\n");
    assert_rows(db, INDEXES "type = 'bogus'", "NULL\n");
    assert_rows(db, INDEXES "type = 1", "NULL\n");
    /* An OR makes SQLite scan once per branch (the rows come branch by branch). */
    assert_rows(db,
                "SELECT group_concat(i, ' ') FROM (SELECT \"index\" AS i FROM pikoc_events "
                "WHERE function GLOB 'm*' OR function = 'b' ORDER BY 1)",
                "0 3 4 7 8 9\n");
    assert_rows(db, INDEXES "function = 'a' AND function = 'b'", "NULL\n");
    assert_rows(db, INDEXES "function = 'a' AND \"index\" > 2", "5 6\n");
#undef INDEXES
    /* One statement run twice with other values: no filter is left over. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM pikoc_events WHERE function = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    const char *names[] = {"main", "a", "b", "nothing"};
    const int counts[] = {2, 4, 4, 0};
    for (int i = 0; i < 4; i++) {
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), counts[i]);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Threads, missing measures, large and falling values: what the deltas must survive. */
static void events_round_trip_threads_flags_and_large_values(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[6];
    recs[0] = test_record(0, PK_EVENT_CALL, "f", 0, 1000);
    recs[1] = test_record(1, PK_EVENT_CALL, "g", 0, 900); /* another thread, earlier */
    recs[1].thread = 99;
    recs[1].flags = 0;
    recs[2] = test_record(5, PK_EVENT_RETURN, "f", 0, (uint64_t)1 << 50);
    recs[2].duration_ns = ((uint64_t)1 << 50) - 1000;
    recs[2].rss = 4096; /* falls */
    recs[2].allocated = ((uint64_t)1 << 62) + 3;
    recs[2].alloc_delta = ((uint64_t)1 << 62) + 3 - 1000;
    recs[2].free_delta = 0;
    recs[3] = test_record(3, PK_EVENT_RETURN, "g", 0, 901); /* an index that goes back */
    recs[3].thread = 99;
    recs[3].flags = PK_RECORD_MEMORY;
    recs[3].duration_ns = 1;
    recs[4] = test_record(6, PK_EVENT_CALL, "f", 0, 2000);
    recs[4].flags = PK_RECORD_ALLOC;
    recs[4].allocated = 7;
    recs[5] = test_record(7, PK_EVENT_RETURN, "f", 0, 2001);
    recs[5].flags = PK_RECORD_ALLOC;
    recs[5].allocated = 9;
    recs[5].alloc_delta = 2;
    recs[5].duration_ns = 1;
    pk_run_totals totals = {.events = 6, .calls = 3};
    record_run(t->db, NULL, recs, 6, &totals);
    sqlite3 *db = open_read(t->db);
    assert_events(db, "", 1, recs, 6);
    sqlite3_close(db);
}

/* The two events of docs/schema.md's example, byte for byte. */
static void batch_bytes_match_the_documented_example(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[2];
    recs[0] = test_record(5, PK_EVENT_CALL, "compute", 0, 1500);
    recs[1] = test_record(6, PK_EVENT_RETURN, "compute", 0, 1750);
    for (int i = 0; i < 2; i++) {
        recs[i].flags = 0;
        recs[i].line = 12;
        recs[i].caller_line = 7;
    }
    recs[1].duration_ns = 250;
    pk_run_totals totals = {.events = 2, .calls = 1};
    record_run(t->db, NULL, recs, 2, &totals);
    sqlite3 *db = open_read(t->db);
    assert_rows(db,
                "SELECT count, min_index, max_index, min_time_ns, max_time_ns, hex(data) "
                "FROM event_batches",
                "2|5|6|1500|1750|"
                "02"
                "00"
                "0A"
                "9221"
                "00"
                "01"
                "02"
                "07"
                "B817"
                "19"
                "03"
                "F403\n");
    sqlite3_close(db);
}

/* A record for the encoding tests: no measures, thread 4242. */
static pk_record plain_record(uint64_t index, pk_event_type type, const char *function,
                              const char *caller, unsigned caller_line, unsigned depth,
                              uint64_t time_ns, uint64_t duration_ns)
{
    pk_record r = test_record(index, type, function, depth, time_ns);
    r.flags = 0;
    r.line = 12;
    r.caller = caller;
    r.caller_line = caller_line;
    r.duration_ns = duration_ns;
    return r;
}

/*
 * A return names the call it closes when that call is in its blob (depth
 * field bit 0), and leaves its duration out when it is the difference of
 * the two times (bit 1); otherwise it carries its fields as in encoding 1.
 */
static void returns_refer_back_to_their_calls(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[] = {
        plain_record(0, PK_EVENT_CALL, "outer", "main", 7, 0, 1000, 0),
        plain_record(1, PK_EVENT_CALL, "inner", "outer", 20, 1, 1100, 0),
        plain_record(2, PK_EVENT_RETURN, "inner", "outer", 20, 1, 1300, 200),
        plain_record(3, PK_EVENT_RETURN, "outer", "main", 7, 0, 2000, 990),
        plain_record(4, PK_EVENT_RETURN, "gone", "main", 9, 0, 2100, 50),
    };
    pk_run_totals totals = {.events = 5, .calls = 2};
    record_run(t->db, NULL, recs, 5, &totals);
    sqlite3 *db = open_read(t->db);
    /* symbols: outer 1, (main, 0) 2, inner 3, (outer, 0) 4, gone 5 */
    /* clang-format off */
    assert_rows(db, "SELECT hex(data) FROM event_batches",
                "02"
                "00" "00" "9221" "00" "01" "02" "07" "D00F" /* call outer, time 1000 */
                "18" "01" "03" "04" "14" "C801"             /* call inner at depth 1 */
                "19" "07" "9003"                            /* its return: all implied */
                "19" "01" "F80A" "DE07"                     /* outer: duration 990 given */
                "19" "00" "05" "02" "09" "C801" "32\n");   /* gone: its call is elsewhere */
    /* clang-format on */
    assert_rows(db,
                "SELECT \"index\", type, function, caller, caller_line, depth, time_ns, "
                "duration_ns FROM pikoc_events",
                "0|call|outer|main|7|0|1000|NULL\n"
                "1|call|inner|outer|20|1|1100|NULL\n"
                "2|return|inner|outer|20|1|1300|200\n"
                "3|return|outer|main|7|0|2000|990\n"
                "4|return|gone|main|9|0|2100|50\n");
    sqlite3_close(db);
}

/* Batches of encoding 1 (older pikoc) still read. */
static void encoding_1_batches_still_read(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    exec_sql(t->db, "DELETE FROM event_batches");
    exec_sql(t->db, "INSERT INTO event_batches (run_id, count, min_index, max_index, min_time_ns, "
                    "max_time_ns, data) VALUES (1, 2, 5, 6, 1500, 1750, "
                    "x'01000A922100010207B8171900010207F403FA01')");
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT \"index\", type, depth, time_ns, duration_ns FROM pikoc_events",
                "5|call|0|1500|NULL\n"
                "6|return|0|1750|250\n");
    sqlite3_close(db);
}

static void filters_keep_events_out_but_aggregates_exact(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, "max-depth:0");
    sqlite3 *db = open_read(t->db);
    pk_record recs[NESTED_COUNT];
    nested_records(recs);
    pk_record kept[2] = {recs[0], recs[9]};
    assert_events(db, "", 1, kept, 2);
    assert_sql(db, FUNCTIONS_SQL, 1, NESTED_FUNCTIONS);
    assert_sql(db, PATHS_SQL, 1, NESTED_PATHS);
    assert_rows(db, "SELECT events, calls, written FROM runs", "10|5|2\n");
    assert_rows(db, "SELECT * FROM threads", "1|4242|10|5|2|NULL\n");
    sqlite3_close(db);
}

static void two_runs_in_one_file(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    record_nested(t->db, "include:b");
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT id, status, written FROM runs ORDER BY id",
                "1|complete|10\n2|complete|4\n");
    assert_sql(db, FUNCTIONS_SQL, 2, NESTED_FUNCTIONS);
    assert_sql(db, PATHS_SQL, 2, NESTED_PATHS);
    assert_rows(db, "SELECT run_id, count(*) FROM pikoc_events GROUP BY run_id", "1|10\n2|4\n");
    assert_rows(db, "SELECT \"index\", type FROM pikoc_events WHERE run_id = 2",
                "3|call\n4|return\n7|call\n8|return\n");

    int64_t run = 0;
    pk_error err = {{0}};
    assert_int_equal(pk_store_resolve_run(db, NULL, &run, &err), 0);
    assert_int_equal(run, 2);
    assert_int_equal(pk_store_resolve_run(db, "1", &run, &err), 0);
    assert_int_equal(run, 1);
    assert_int_equal(pk_store_resolve_run(db, "42", &run, &err), -1);
    assert_string_equal(err.message, "unknown run 42 (runs: 1-2)");
    assert_int_equal(pk_store_resolve_run(db, "x", &run, &err), -1);
    assert_string_equal(err.message, "run 'x': expected a non-negative whole number");
    sqlite3_close(db);
}

/* ---- many events ------------------------------------------------------------------ */

#define MANY 10000

/* f calls at even indexes and returns at odd ones, 10 ns apart, one thread. */
static void record_many(const char *path)
{
    pk_record *recs = calloc(MANY, sizeof *recs);
    assert_non_null(recs);
    for (size_t i = 0; i < MANY; i++) {
        recs[i] = test_record(i, i % 2 ? PK_EVENT_RETURN : PK_EVENT_CALL, "f", 0, 10 * i);
        recs[i].line = 3;
        recs[i].caller_line = 4;
        recs[i].duration_ns = i % 2 ? 10 : 0;
        recs[i].allocated = 1000 + i;
        recs[i].alloc_delta = i % 2;
    }
    pk_run_totals totals = {.events = MANY, .calls = MANY / 2};
    record_run(path, NULL, recs, MANY, &totals);
    free(recs);
}

static void many_events_span_batches_and_prune_by_index(void **state)
{
    const temp_dir *t = dir_of(state);
    record_many(t->db);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT count(*) > 1, sum(count) FROM event_batches", "1|10000\n");
    assert_rows(db,
                "SELECT count(*), sum(\"index\"), sum(time_ns), sum(duration_ns), "
                "sum(allocated) FROM pikoc_events",
                "10000|49995000|499950000|50000|59995000\n");
    assert_rows(db,
                "SELECT \"index\", time_ns FROM pikoc_events WHERE \"index\" BETWEEN 5000 "
                "AND 5002",
                "5000|50000\n5001|50010\n5002|50020\n");
    assert_rows(db, "SELECT \"index\" FROM pikoc_events WHERE \"index\" = 9999", "9999\n");
    assert_rows(db, "SELECT count(*) FROM pikoc_events WHERE time_ns < 100", "10\n");
    assert_rows(db, "SELECT count(*) FROM pikoc_events WHERE run_id = 2", "0\n");
    assert_rows(db, "SELECT calls, total_ns, self_ns, min_ns, max_ns, alloc_bytes FROM functions",
                "5000|50000|50000|10|10|5000\n");
    sqlite3_close(db);
}

/* ---- runs that did not end ---------------------------------------------------------- */

static void mark_run_records_how_the_program_ended(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_record recs[NESTED_COUNT];
    nested_records(recs);
    record_run(t->db, NULL, recs, NESTED_COUNT, &nested_totals); /* run 1, complete */

    pk_logger *lg = sqlite_logger(t->db, NULL); /* run 2: left running */
    pk_run_info run = demo_run();
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < 4; i++)
        pk_logger_push(lg, &recs[i]);
    assert_int_equal(pk_logger_flush(lg), 0);

    int64_t marked = 0;
    pk_error err = {{0}};
    assert_int_equal(pk_store_mark_run(t->db, 4321, START_WALL_NS, "killed", 9, -1, &marked, &err),
                     0);
    assert_int_equal(marked, 2);
    assert_int_equal(pk_store_mark_run(t->db, 999, 0, "killed", 9, -1, NULL, &err), -1);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: no run of pid 999", t->db);
    assert_string_equal(err.message, expected);
    assert_int_equal(pk_store_mark_run(t->db, 4321, 0, "exploded", 9, -1, NULL, &err), -1);
    assert_string_equal(err.message,
                        "run status 'exploded': expected crashed, killed, incomplete or complete");
    pk_logger_free(lg); /* never finished: what it had stays, status untouched */

    sqlite3 *db = open_read(t->db);
    assert_rows(db,
                "SELECT id, status, coalesce(signal, 'NULL'), coalesce(exit_status, 'NULL'), "
                "end_ns IS NOT NULL, duration_ns, events, calls, written FROM runs",
                "1|complete|NULL|NULL|1|5000|10|5|10\n"
                "2|killed|9|NULL|1|NULL|4|4|4\n");
    sqlite3_close(db);

    /* A complete run stays complete; its exit status is kept. */
    assert_int_equal(pk_store_mark_run(t->db, 4321, START_WALL_NS, "crashed", -1, 3, &marked, &err),
                     0);
    assert_int_equal(marked, 2);
    exec_sql(t->db, "UPDATE runs SET pid = 1 WHERE id = 2");
    assert_int_equal(pk_store_mark_run(t->db, 4321, 0, "crashed", 11, 3, &marked, &err), 0);
    assert_int_equal(marked, 1);
    db = open_read(t->db);
    assert_rows(db, "SELECT id, status, signal, exit_status FROM runs",
                "1|complete|11|3\n2|killed|9|3\n");
    sqlite3_close(db);
}

/* Events that trickle in are committed about every 250 ms, full batch or not. */
static void slow_events_are_committed_within_a_quarter_second(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_logger *lg = sqlite_logger(t->db, NULL);
    pk_run_info run = demo_run();
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < 256; i++) {
        pk_record r = test_record(i, PK_EVENT_CALL, "f", i, i);
        r.line = 1;
        if (i == 255)
            usleep(300 * 1000);
        pk_logger_push(lg, &r);
    }
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT status, events, written FROM runs", "running|256|256\n");
    assert_rows(db, "SELECT count(*), max(depth) FROM pikoc_events", "256|255\n");
    sqlite3_close(db);
    pk_logger_free(lg);
}

/* A writer killed mid-run leaves every committed batch readable, still 'running'. */
static void killed_writer_leaves_committed_batches(void **state)
{
    const temp_dir *t = dir_of(state);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pk_logger *lg = sqlite_logger(t->db, NULL);
        pk_run_info run = demo_run();
        pk_logger_start(lg, &run);
        for (size_t i = 0; i < 5000; i++) {
            pk_record r = test_record(i, i % 2 ? PK_EVENT_RETURN : PK_EVENT_CALL, "f", 0, i);
            r.line = 1;
            r.duration_ns = i % 2;
            pk_logger_push(lg, &r);
        }
        pk_logger_flush(lg); /* committed */
        for (size_t i = 5000; i < 5100; i++) {
            pk_record r = test_record(i, i % 2 ? PK_EVENT_RETURN : PK_EVENT_CALL, "f", 0, i);
            r.line = 1;
            pk_logger_push(lg, &r); /* held in the batch being built */
        }
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT status, events, written, end_ns FROM runs", "running|5000|5000|NULL\n");
    assert_rows(db, "SELECT count(*), max(\"index\") FROM pikoc_events", "5000|4999\n");
    assert_rows(db, "SELECT calls, total_ns FROM functions", "2500|2500\n");
    sqlite3_close(db);
}

/* ---- bad input ------------------------------------------------------------------------ */

static void expect_read_error(const char *path, const char *message_after_path)
{
    sqlite3 *db = (sqlite3 *)1;
    pk_error err = {{0}};
    char expected[800];
    snprintf(expected, sizeof expected, "%s: %s", path, message_after_path);
    assert_int_equal(pk_store_open_read(path, &db, &err), -1);
    assert_null(db);
    assert_string_equal(err.message, expected);
}

static void expect_recorder_error(const char *path, const char *message_after_path)
{
    char spec[700], expected[1600];
    pk_error err = {{0}};
    snprintf(spec, sizeof spec, "sqlite:%s", path);
    snprintf(expected, sizeof expected, "recorder spec '%s': %s: %s", spec, path,
             message_after_path);
    assert_null(pk_recorder_open(spec, &err));
    assert_string_equal(err.message, expected);
}

static void missing_file_is_reported(void **state)
{
    const temp_dir *t = dir_of(state);
    expect_read_error(t->db, "no such file");
    pk_error err = {{0}};
    assert_int_equal(pk_store_mark_run(t->db, 1, 0, "killed", 9, -1, NULL, &err), -1);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: no such file", t->db);
    assert_string_equal(err.message, expected);
    assert_int_equal(access(t->db, F_OK), -1); /* still not there */
    expect_read_error(t->dir, "is a directory");
}

static void text_file_is_not_sqlite(void **state)
{
    const temp_dir *t = dir_of(state);
    char text[2000];
    memset(text, 'x', sizeof text);
    memcpy(text, "hello, this is not a database\n", 30);
    write_file(t->db, text, sizeof text);
    file_bytes before = read_bytes(t->db);
    expect_read_error(t->db, "not an SQLite database");
    expect_recorder_error(t->db, "not an SQLite database");
    pk_error err = {{0}};
    assert_int_equal(pk_store_mark_run(t->db, 1, 0, "killed", 9, -1, NULL, &err), -1);
    assert_unchanged(t->db, before);
}

static void foreign_sqlite_file_is_refused(void **state)
{
    const temp_dir *t = dir_of(state);
    exec_sql(t->db, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);"
                    "INSERT INTO invoices VALUES (1, 9.5)");
    file_bytes before = read_bytes(t->db);
    expect_read_error(t->db, "not a pikoc database (no pikoc schema)");
    expect_recorder_error(t->db, "not a pikoc database (no pikoc schema)");
    assert_unchanged(t->db, before);
}

static void empty_file_is_no_pikoc_database_but_a_recorder_fills_it(void **state)
{
    const temp_dir *t = dir_of(state);
    write_file(t->db, "", 0);
    expect_read_error(t->db, "not a pikoc database (no pikoc schema)");
    struct stat st;
    assert_int_equal(stat(t->db, &st), 0);
    assert_int_equal(st.st_size, 0);
    record_nested(t->db, NULL);
    sqlite3 *db = open_read(t->db);
    assert_rows(db, "SELECT count(*) FROM runs", "1\n");
    sqlite3_close(db);
}

static void newer_schema_is_refused(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    exec_sql(t->db, "PRAGMA user_version = 99");
    file_bytes before = read_bytes(t->db);
    expect_read_error(t->db, "schema version 99 is newer than this pikoc (6)");
    expect_recorder_error(t->db, "schema version 99 is newer than this pikoc (6)");
    pk_error err = {{0}};
    assert_int_equal(pk_store_mark_run(t->db, 4321, 0, "killed", 9, -1, NULL, &err), -1);
    assert_unchanged(t->db, before);
}

static void reading_leaves_the_file_unchanged(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    file_bytes before = read_bytes(t->db);
    sqlite3 *db = open_read(t->db);
    assert_sql(db, FUNCTIONS_SQL, 1, NESTED_FUNCTIONS);
    assert_rows(db, "SELECT count(*) FROM pikoc_events", "10\n");
    /* The connection is read-only: writes are refused. */
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM runs", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_unchanged(t->db, before);
    assert_int_equal(access(t->db, F_OK), 0);
}

static int64_t page_of(const char *path, const char *table, int64_t *page_size)
{
    sqlite3 *db = open_read(path);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT rootpage FROM sqlite_master WHERE name = '%s'", table);
    char *root = rows(db, sql);
    char *size = rows(db, "PRAGMA page_size");
    int64_t page = strtoll(root, NULL, 10);
    *page_size = strtoll(size, NULL, 10);
    sqlite3_free(root);
    sqlite3_free(size);
    sqlite3_close(db);
    return page;
}

static void corrupt_page_is_one_line(void **state)
{
    const temp_dir *t = dir_of(state);
    record_many(t->db);
    int64_t page_size = 0;
    int64_t page = page_of(t->db, "functions", &page_size);
    assert_true(page > 1);
    /* Overwrite the functions table's page in the middle of the file with junk. */
    file_bytes f = read_bytes(t->db);
    assert_true((size_t)(page * page_size) <= f.size);
    memset(f.data + (page - 1) * page_size, 0xA5, (size_t)page_size);
    write_file(t->db, f.data, f.size);
    file_bytes before = f;

    sqlite3 *db = open_read(t->db);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: database disk image is malformed", t->db);
    assert_query_fails(db, "SELECT * FROM functions", t->db, expected);
    sqlite3_close(db);
    assert_unchanged(t->db, before);
}

static void malformed_batch_stops_the_events_query(void **state)
{
    const temp_dir *t = dir_of(state);
    record_nested(t->db, NULL);
    exec_sql(t->db, "UPDATE event_batches SET data = x'01ff' WHERE id = 1");
    sqlite3 *db = open_read(t->db);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: pikoc_events: batch 1 of run 1 is malformed", t->db);
    assert_query_fails(db, "SELECT * FROM pikoc_events", t->db, expected);
    sqlite3_close(db);
    /* Bytes left after the last event are refused too. */
    exec_sql(t->db, "UPDATE event_batches SET count = 9 WHERE id = 1");
    record_nested(t->db, NULL);
    exec_sql(t->db, "UPDATE event_batches SET count = 9 WHERE id = 2");
    db = open_read(t->db);
    snprintf(expected, sizeof expected, "%s: pikoc_events: batch 2 of run 2 is malformed", t->db);
    assert_query_fails(db, "SELECT * FROM pikoc_events WHERE run_id = 2", t->db, expected);
    sqlite3_close(db);
    /* A return naming a call its blob does not have, an implied duration
     * without the call, an unknown encoding. */
    struct {
        int count;
        const char *data;
    } bad[] = {
        {1, "x'021800010207B817'"},               /* same thread and index on the first event */
        {1, "x'02010A9221070000'"},               /* a return naming a call at depth 1: none */
        {2, "x'02000A922100010207B8171902F403'"}, /* duration implied, the call not named */
        {1, "x'03000A922100010207B817'"},         /* encoding 3 */
    };
    for (size_t i = 0; i < PK_ARRAY_SIZE(bad); i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "UPDATE event_batches SET count = %d, data = %s WHERE id = 1",
                 bad[i].count, bad[i].data);
        exec_sql(t->db, sql);
        db = open_read(t->db);
        snprintf(expected, sizeof expected, "%s: pikoc_events: batch 1 of run 1 is malformed",
                 t->db);
        assert_query_fails(db, "SELECT * FROM pikoc_events WHERE run_id = 1", t->db, expected);
        sqlite3_close(db);
    }
}

static void resolve_run_without_runs(void **state)
{
    const temp_dir *t = dir_of(state);
    pk_logger *lg = sqlite_logger(t->db, NULL); /* creates the schema, no run yet */
    pk_logger_free(lg);
    sqlite3 *db = open_read(t->db);
    int64_t run = 0;
    pk_error err = {{0}};
    assert_int_equal(pk_store_resolve_run(db, NULL, &run, &err), -1);
    assert_string_equal(err.message, "no runs yet");
    assert_int_equal(pk_store_resolve_run(db, "1", &run, &err), -1);
    assert_string_equal(err.message, "unknown run 1 (no runs yet)");
    sqlite3_close(db);
}

#define WITH_DIR(test) cmocka_unit_test_setup_teardown(test, temp_dir_make, temp_dir_remove)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH_DIR(run_row_holds_every_column),
        WITH_DIR(profilers_fill_spans_and_checkpoints),
        WITH_DIR(version_1_file_is_upgraded_by_a_writer),
        WITH_DIR(version_2_file_is_upgraded),
        WITH_DIR(version_3_file_is_upgraded),
        WITH_DIR(allocations_become_site_aggregates),
        WITH_DIR(allocation_stacks_become_stack_aggregates),
        WITH_DIR(samples_are_stored),
        WITH_DIR(samples_carry_the_heap),
        WITH_DIR(temporaries_count_alike_in_batches),
        WITH_DIR(version_4_file_is_upgraded),
        WITH_DIR(version_5_file_is_upgraded),
        WITH_DIR(sender_run_survives_its_writer),
        WITH_DIR(exec_names_the_replaced_run_even_once_executed),
        WITH_DIR(closed_store_is_one_file),
        WITH_DIR(short_run_is_not_checkpointed_while_recording),
        WITH_DIR(functions_are_exact_with_recursion),
        WITH_DIR(call_paths_form_the_calling_context_tree),
        WITH_DIR(symbols_name_callers_by_name_and_file),
        WITH_DIR(events_table_returns_the_records_pushed),
        WITH_DIR(events_filters_on_function_type_and_thread),
        WITH_DIR(events_round_trip_threads_flags_and_large_values),
        WITH_DIR(batch_bytes_match_the_documented_example),
        WITH_DIR(returns_refer_back_to_their_calls),
        WITH_DIR(encoding_1_batches_still_read),
        WITH_DIR(filters_keep_events_out_but_aggregates_exact),
        WITH_DIR(two_runs_in_one_file),
        WITH_DIR(many_events_span_batches_and_prune_by_index),
        WITH_DIR(mark_run_records_how_the_program_ended),
        WITH_DIR(slow_events_are_committed_within_a_quarter_second),
        WITH_DIR(killed_writer_leaves_committed_batches),
        WITH_DIR(missing_file_is_reported),
        WITH_DIR(text_file_is_not_sqlite),
        WITH_DIR(foreign_sqlite_file_is_refused),
        WITH_DIR(empty_file_is_no_pikoc_database_but_a_recorder_fills_it),
        WITH_DIR(newer_schema_is_refused),
        WITH_DIR(reading_leaves_the_file_unchanged),
        WITH_DIR(corrupt_page_is_one_line),
        WITH_DIR(malformed_batch_stops_the_events_query),
        WITH_DIR(resolve_run_without_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
