/*
 * test_filters.c — every built-in filter, alone and chained, driven through
 * a real logger with synthetic records; each test asserts the exact
 * sequence that reaches the recorder ("index:type:function ...").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "records.h"

/* ---- a capturing recorder -------------------------------------------------
 * Written against the public recorder API (not the list recorder), so these
 * tests see exactly what the last filter passed and also exercise a
 * user-pluggable recorder. */

#define CAPTURE_MAX 64

typedef struct capture_state {
    pk_record records[CAPTURE_MAX];
    size_t count;
    int starts;
    int finishes;
} capture_state;

static int capture_start(pk_recorder *r, const pk_run_info *run, pk_error *err)
{
    capture_state *s = pk_recorder_state(r);
    s->starts++;
    return 0;
}

static int capture_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    capture_state *s = pk_recorder_state(r);
    assert_true(s->count < CAPTURE_MAX);
    s->records[s->count++] = *rec;
    return 0;
}

static int capture_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    capture_state *s = pk_recorder_state(r);
    s->finishes++;
    return 0;
}

static const pk_recorder_ops capture_ops = {
    .name = "capture",
    .usage = "capture",
    .size = sizeof(capture_state),
    .start = capture_start,
    .write = capture_write,
    .finish = capture_finish,
};

/* ---- building records ----------------------------------------------------- */

#define THREAD_MAIN 4242 /* test_record's thread */

static pk_record call(uint64_t index, const char *function, unsigned depth)
{
    return test_record(index, PK_EVENT_CALL, function, depth, index * 100);
}

static pk_record ret(uint64_t index, const char *function, unsigned depth, uint64_t duration_ns)
{
    pk_record r = test_record(index, PK_EVENT_RETURN, function, depth, index * 100);
    r.duration_ns = duration_ns;
    return r;
}

/* A profiler's mark: a checkpoint of `profiler`, 50 ns after the previous one. */
static pk_record mark(uint64_t index, const char *profiler, const char *label, unsigned depth)
{
    pk_record r = test_record(index, PK_EVENT_CHECKPOINT, profiler, depth, index * 100);
    r.flags |= PK_RECORD_SPAN;
    r.label = label;
    r.span = 1;
    r.duration_ns = 50;
    r.total_ns = 50 * index;
    return r;
}

static pk_record on_thread(pk_record r, uint64_t thread)
{
    r.thread = thread;
    return r;
}

static pk_record with_rss(pk_record r, uint64_t rss)
{
    r.rss = rss;
    return r;
}

static pk_record unmeasured(pk_record r)
{
    r.flags = 0;
    return r;
}

/* ---- running a logger ----------------------------------------------------- */

/* "0:call:A 1:return:A" for what the recorder received. */
static const char *describe(pk_recorder *r)
{
    static char out[4096];
    capture_state *s = pk_recorder_state(r);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->count; i++) {
        const pk_record *rec = &s->records[i];
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%llu:%s:%s", i ? " " : "",
                                 (unsigned long long)rec->index, pk_event_type_name(rec->type),
                                 rec->function);
        assert_true(used < sizeof out);
    }
    return out;
}

static pk_logger *new_logger(void)
{
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_new(&capture_ops, NULL, &err);
    assert_non_null(r);
    pk_logger *lg = pk_logger_new(r);
    assert_non_null(lg);
    return lg;
}

static void push_all(pk_logger *lg, const pk_record *recs, size_t n)
{
    pk_run_info run = {.monitor = "test",
                       .flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC,
                       .clock = "monotonic",
                       .alloc_source = "test",
                       .command_line = "test",
                       .host = "localhost",
                       .pid = 1};
    pk_run_totals totals = {.events = n};
    capture_state *s = pk_recorder_state(pk_logger_recorder(lg));
    int starts = s->starts;
    int finishes = s->finishes;
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < n; i++)
        pk_logger_push(lg, &recs[i]);
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_int_equal(s->starts, starts + 1);
    assert_int_equal(s->finishes, finishes + 1);
}

/* Opens the specs in order, pushes the records, returns what came out. */
static const char *run_specs(const char *const *specs, const pk_record *recs, size_t n)
{
    static char out[4096];
    pk_logger *lg = new_logger();
    for (size_t i = 0; specs[i]; i++) {
        pk_error err = {{0}};
        if (pk_logger_add_filter_spec(lg, specs[i], &err) != 0)
            fail_msg("filter spec '%s' refused: %s", specs[i], err.message);
    }
    push_all(lg, recs, n);
    snprintf(out, sizeof out, "%s", describe(pk_logger_recorder(lg)));
    pk_logger_free(lg);
    return out;
}

#define SPECS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define RECORDS(...) ((const pk_record[]){__VA_ARGS__})
#define COUNT(...) (sizeof(RECORDS(__VA_ARGS__)) / sizeof(pk_record))
#define RUN(specs, ...) run_specs(specs, RECORDS(__VA_ARGS__), COUNT(__VA_ARGS__))

/* A{ B{} C{ D{} } } on one thread: the shape most tests reuse. */
#define NESTED                                                                                     \
    call(0, "A", 0), call(1, "B", 1), ret(2, "B", 1, 100), call(3, "C", 1), call(4, "D", 2),       \
        ret(5, "D", 2, 100), ret(6, "C", 1, 300), ret(7, "A", 0, 700)

/* ---- no filter ------------------------------------------------------------ */

static void test_no_filter_passes_everything(void **state)
{
    assert_string_equal(RUN(SPECS(NULL), NESTED),
                        "0:call:A 1:call:B 2:return:B 3:call:C 4:call:D 5:return:D "
                        "6:return:C 7:return:A");
}

/* ---- on-value / not-on-value ---------------------------------------------- */

static void test_on_value_type(void **state)
{
    assert_string_equal(RUN(SPECS("on-value:type=call"), NESTED),
                        "0:call:A 1:call:B 3:call:C 4:call:D");
    assert_string_equal(RUN(SPECS("on-value:type=return"), NESTED),
                        "2:return:B 5:return:D 6:return:C 7:return:A");
}

/* Profiler P { mark a, B{}, mark b }: marks are checkpoints with a label. */
#define PROFILED                                                                                   \
    call(0, "P", 0), mark(1, "P", "a", 1), call(2, "B", 1), ret(3, "B", 1, 100),                   \
        mark(4, "P", "b", 1), ret(5, "P", 0, 500)

static void test_on_value_checkpoints(void **state)
{
    assert_string_equal(RUN(SPECS("on-value:type=checkpoint"), PROFILED),
                        "1:checkpoint:P 4:checkpoint:P");
    assert_string_equal(RUN(SPECS("on-value:label=b"), PROFILED), "4:checkpoint:P");
    assert_string_equal(RUN(SPECS("not-on-value:type=checkpoint"), PROFILED),
                        "0:call:P 2:call:B 3:return:B 5:return:P");
    assert_string_equal(RUN(SPECS("on-value:total_ns=200"), PROFILED), "4:checkpoint:P");
}

static void test_min_duration_passes_checkpoints_after_their_calls(void **state)
{
    /* P is held until its first mark, which releases it; B is short and goes. */
    assert_string_equal(RUN(SPECS("min-duration:200ns"), PROFILED),
                        "0:call:P 1:checkpoint:P 4:checkpoint:P 5:return:P");
}

static void test_on_value_several_values(void **state)
{
    assert_string_equal(RUN(SPECS("on-value:function=B,D"), NESTED),
                        "1:call:B 2:return:B 4:call:D 5:return:D");
}

static void test_on_value_number_field(void **state)
{
    assert_string_equal(RUN(SPECS("on-value:depth=1"), NESTED),
                        "1:call:B 2:return:B 3:call:C 6:return:C");
    /* The text is compared, as a recorder prints it: "01" is not "1". */
    assert_string_equal(RUN(SPECS("on-value:depth=01"), NESTED), "");
    assert_string_equal(RUN(SPECS("on-value:duration_ns=300,700"), NESTED),
                        "6:return:C 7:return:A");
}

static void test_on_value_unmeasured_field_matches_nothing(void **state)
{
    /* rss of an unmeasured record formats as "", never as a made-up 0. */
    assert_string_equal(RUN(SPECS("on-value:rss=0,409600"), unmeasured(call(0, "A", 0)),
                            with_rss(call(1, "B", 1), 0), call(2, "C", 1),
                            unmeasured(with_rss(call(3, "D", 1), 0))),
                        "1:call:B 2:call:C");
}

static void test_on_value_long_string(void **state)
{
    /* Longer than any formatting buffer a filter might use. */
    static char name[700];
    memset(name, 'x', sizeof name - 1);
    char spec[800];
    snprintf(spec, sizeof spec, "on-value:function=%s", name);
    pk_record other = call(1, "xxx", 0);
    pk_logger *lg = new_logger();
    assert_int_equal(pk_logger_add_filter_spec(lg, spec, NULL), 0);
    push_all(lg, RECORDS(call(0, name, 0), other), 2);
    capture_state *s = pk_recorder_state(pk_logger_recorder(lg));
    assert_int_equal(s->count, 1);
    assert_int_equal(s->records[0].index, 0);
    pk_logger_free(lg);
}

static void test_not_on_value(void **state)
{
    assert_string_equal(RUN(SPECS("not-on-value:function=B,D"), NESTED),
                        "0:call:A 3:call:C 6:return:C 7:return:A");
    assert_string_equal(RUN(SPECS("not-on-value:type=call"), NESTED),
                        "2:return:B 5:return:D 6:return:C 7:return:A");
    assert_string_equal(
        RUN(SPECS("not-on-value:rss=409600"), unmeasured(call(0, "A", 0)), call(1, "B", 1)),
        "0:call:A");
}

/* ---- on-change ------------------------------------------------------------ */

static void test_on_change_rss(void **state)
{
    assert_string_equal(RUN(SPECS("on-change:rss"), with_rss(call(0, "A", 0), 100),
                            with_rss(call(1, "B", 1), 100), with_rss(ret(2, "B", 1, 5), 200),
                            with_rss(call(3, "C", 1), 200), with_rss(ret(4, "C", 1, 5), 100),
                            with_rss(ret(5, "A", 0, 50), 100)),
                        "0:call:A 2:return:B 4:return:C");
}

static void test_on_change_first_record_passes(void **state)
{
    assert_string_equal(RUN(SPECS("on-change:function"), call(0, "A", 0)), "0:call:A");
}

static void test_on_change_function(void **state)
{
    /* Pikos' OnChange: compared with the last record seen, not the last passed. */
    assert_string_equal(RUN(SPECS("on-change:function"), NESTED),
                        "0:call:A 1:call:B 3:call:C 4:call:D 6:return:C 7:return:A");
}

static void test_on_change_measured_and_unmeasured(void **state)
{
    /* Going from unmeasured ("") to a value and back is a change. */
    assert_string_equal(RUN(SPECS("on-change:rss"), unmeasured(call(0, "A", 0)),
                            unmeasured(call(1, "B", 1)), with_rss(call(2, "C", 2), 0),
                            unmeasured(call(3, "D", 3))),
                        "0:call:A 2:call:C 3:call:D");
}

/* ---- max-depth ------------------------------------------------------------ */

static void test_max_depth(void **state)
{
    assert_string_equal(RUN(SPECS("max-depth:0"), NESTED), "0:call:A 7:return:A");
    assert_string_equal(RUN(SPECS("max-depth:1"), NESTED),
                        "0:call:A 1:call:B 2:return:B 3:call:C 6:return:C 7:return:A");
    assert_string_equal(RUN(SPECS("max-depth:99999999999"), NESTED),
                        "0:call:A 1:call:B 2:return:B 3:call:C 4:call:D 5:return:D "
                        "6:return:C 7:return:A");
}

/* ---- include / exclude ---------------------------------------------------- */

static void test_include(void **state)
{
    assert_string_equal(RUN(SPECS("include:B"), NESTED), "1:call:B 2:return:B");
    assert_string_equal(RUN(SPECS("include:[AD]"), NESTED),
                        "0:call:A 4:call:D 5:return:D 7:return:A");
    assert_string_equal(RUN(SPECS("include:C,?"), NESTED),
                        "0:call:A 1:call:B 2:return:B 3:call:C 4:call:D 5:return:D "
                        "6:return:C 7:return:A");
    assert_string_equal(RUN(SPECS("include:parse_*,*_free"), call(0, "parse_spec", 0),
                            call(1, "pk_free", 1), call(2, "parse", 2), call(3, "pk_free_all", 3)),
                        "0:call:parse_spec 1:call:pk_free");
}

static void test_exclude(void **state)
{
    assert_string_equal(RUN(SPECS("exclude:B,D"), NESTED),
                        "0:call:A 3:call:C 6:return:C 7:return:A");
    assert_string_equal(RUN(SPECS("exclude:*"), NESTED), "");
}

/* ---- callback ------------------------------------------------------------- */

typedef struct callback_probe {
    int calls;
    unsigned max_depth;
    void *seen_user;
} callback_probe;

static bool shallow(const pk_record *rec, void *user)
{
    callback_probe *probe = user;
    probe->calls++;
    probe->seen_user = user;
    return rec->depth <= probe->max_depth;
}

static void test_callback(void **state)
{
    callback_probe probe = {.max_depth = 1};
    pk_filter *f = pk_filter_callback(shallow, &probe);
    assert_non_null(f);
    pk_logger *lg = new_logger();
    pk_logger_add_filter(lg, f);
    push_all(lg, RECORDS(NESTED), COUNT(NESTED));
    assert_string_equal(describe(pk_logger_recorder(lg)),
                        "0:call:A 1:call:B 2:return:B 3:call:C 6:return:C 7:return:A");
    assert_int_equal(probe.calls, 8);
    assert_ptr_equal(probe.seen_user, &probe);
    pk_logger_free(lg);
}

static void test_callback_without_function(void **state)
{
    assert_null(pk_filter_callback(NULL, NULL));
}

/* ---- min-duration --------------------------------------------------------- */

static void test_min_duration_nested(void **state)
{
    /* A long holds B short and C long: B leaves no trace, A's call is
     * released (before C's) when C's return proves C long. */
    assert_string_equal(RUN(SPECS("min-duration:200ns"), call(0, "A", 0), call(1, "B", 1),
                            ret(2, "B", 1, 100), call(3, "C", 1), ret(4, "C", 1, 300),
                            ret(5, "A", 0, 700)),
                        "0:call:A 3:call:C 4:return:C 5:return:A");
}

static void test_min_duration_threshold_is_inclusive(void **state)
{
    assert_string_equal(RUN(SPECS("min-duration:2us"), call(0, "A", 0), ret(1, "A", 0, 1999),
                            call(2, "B", 0), ret(3, "B", 0, 2000)),
                        "2:call:B 3:return:B");
    assert_string_equal(RUN(SPECS("min-duration:0"), NESTED),
                        "0:call:A 1:call:B 2:return:B 3:call:C 4:call:D 5:return:D "
                        "6:return:C 7:return:A");
    assert_string_equal(RUN(SPECS("min-duration:1s"), NESTED), "");
}

static void test_min_duration_parent_long_children_short(void **state)
{
    /* Every child is short: only the parent's pair is left. */
    assert_string_equal(RUN(SPECS("min-duration:500"), NESTED), "0:call:A 7:return:A");
}

static void test_min_duration_recursion(void **state)
{
    /* f -> f -> f (short), f (long): the same name at several depths. */
    assert_string_equal(RUN(SPECS("min-duration:1ms"), call(0, "f", 0), call(1, "f", 1),
                            call(2, "f", 2), ret(3, "f", 2, 10), call(4, "f", 2), call(5, "f", 3),
                            ret(6, "f", 3, 20), ret(7, "f", 2, 2000000), ret(8, "f", 1, 3000000),
                            ret(9, "f", 0, 4000000)),
                        "0:call:f 1:call:f 4:call:f 7:return:f 8:return:f 9:return:f");
}

static void test_min_duration_two_threads(void **state)
{
    /* Thread 7's short call at depth 1 must not decide thread 8's long one
     * at depth 1, and each thread's held calls come out with its own returns. */
    assert_string_equal(RUN(SPECS("min-duration:100"), on_thread(call(0, "A", 0), 7),
                            on_thread(call(1, "X", 0), 8), on_thread(call(2, "B", 1), 7),
                            on_thread(call(3, "Y", 1), 8), on_thread(ret(4, "B", 1, 20), 7),
                            on_thread(ret(5, "Y", 1, 200), 8), on_thread(ret(6, "X", 0, 500), 8),
                            on_thread(ret(7, "A", 0, 50), 7)),
                        "1:call:X 3:call:Y 5:return:Y 6:return:X");
    assert_string_equal(RUN(SPECS("min-duration:100"), on_thread(call(0, "A", 0), 7),
                            on_thread(call(1, "X", 0), 8), on_thread(ret(2, "X", 0, 40), 8),
                            on_thread(ret(3, "A", 0, 300), 7)),
                        "0:call:A 3:return:A");
}

static void test_min_duration_return_without_call(void **state)
{
    /* Monitoring began mid-stack: returns with no call are judged alone. */
    assert_string_equal(RUN(SPECS("min-duration:100"), ret(0, "old", 0, 500), ret(1, "older", 0, 5),
                            call(2, "A", 0), ret(3, "A", 0, 150)),
                        "0:return:old 2:call:A 3:return:A");
    /* A return at depth 1 under a held call at depth 0 (its call was
     * dropped upstream): long, so the held ancestor comes out first, and
     * the ancestor's return then passes although short, so the output
     * never holds a call without its return. */
    assert_string_equal(
        RUN(SPECS("min-duration:100"), call(0, "A", 0), ret(1, "B", 1, 500), ret(2, "A", 0, 50)),
        "0:call:A 1:return:B 2:return:A");
    assert_string_equal(
        RUN(SPECS("min-duration:100"), call(0, "A", 0), ret(1, "B", 1, 50), ret(2, "A", 0, 50)),
        "");
}

static void test_min_duration_on_other_thread_return(void **state)
{
    /* A return on a thread with nothing held does not touch other threads. */
    assert_string_equal(RUN(SPECS("min-duration:100"), on_thread(call(0, "A", 0), 7),
                            on_thread(ret(1, "Z", 0, 900), 9), on_thread(ret(2, "A", 0, 10), 7)),
                        "1:return:Z");
}

static void test_min_duration_finish_emits_unreturned(void **state)
{
    /* Calls still open at the end lasted at least until then: they pass,
     * all threads in index order; a short call that did return does not. */
    assert_string_equal(RUN(SPECS("min-duration:100"), on_thread(call(0, "main", 0), 7),
                            on_thread(call(1, "worker", 0), 8), on_thread(call(2, "B", 1), 7),
                            on_thread(ret(3, "B", 1, 10), 7), on_thread(call(4, "wait", 1), 8)),
                        "0:call:main 1:call:worker 4:call:wait");
    /* A call released early is not released twice at the end. */
    assert_string_equal(RUN(SPECS("min-duration:100"), call(0, "main", 0), call(1, "B", 1),
                            ret(2, "B", 1, 500), call(3, "C", 1)),
                        "0:call:main 1:call:B 2:return:B 3:call:C");
}

static void test_min_duration_lost_return(void **state)
{
    /* B's return is dropped upstream; C at B's depth replaces B on the held
     * stack (B's length is unknown, so B is dropped, and the stack stays
     * bounded by the depth). */
    assert_string_equal(RUN(SPECS("not-on-value:index=2", "min-duration:100"), call(0, "A", 0),
                            call(1, "B", 1), ret(2, "B", 1, 500), call(3, "C", 1),
                            ret(4, "C", 1, 200), ret(5, "A", 0, 900)),
                        "0:call:A 3:call:C 4:return:C 5:return:A");
    /* Same when A's return comes with B still held at depth 1. */
    assert_string_equal(RUN(SPECS("not-on-value:index=2", "min-duration:100"), call(0, "A", 0),
                            call(1, "B", 1), ret(2, "B", 1, 500), ret(3, "A", 0, 900)),
                        "0:call:A 3:return:A");
}

static void test_min_duration_reused_across_runs(void **state)
{
    /* finish() leaves nothing held for a next run of the same logger. */
    pk_logger *lg = new_logger();
    assert_int_equal(pk_logger_add_filter_spec(lg, "min-duration:100", NULL), 0);
    push_all(lg, RECORDS(call(0, "A", 0)), 1);
    push_all(lg, RECORDS(call(0, "B", 0), ret(1, "B", 0, 5)), 2);
    capture_state *s = pk_recorder_state(pk_logger_recorder(lg));
    assert_int_equal(s->count, 1);
    assert_string_equal(s->records[0].function, "A");
    pk_logger_free(lg);
}

static void test_min_duration_deep_stack(void **state)
{
    /* 10000 nested calls, all short but the outermost: held, then dropped. */
    enum { DEPTH = 10000 };
    pk_logger *lg = new_logger();
    assert_int_equal(pk_logger_add_filter_spec(lg, "min-duration:1ms", NULL), 0);
    pk_run_info run = {.monitor = "test"};
    assert_int_equal(pk_logger_start(lg, &run), 0);
    uint64_t index = 0;
    for (unsigned d = 0; d < DEPTH; d++) {
        pk_record r = call(index++, d == 0 ? "outer" : "inner", d);
        pk_logger_push(lg, &r);
    }
    for (unsigned d = DEPTH; d-- > 0;) {
        pk_record r = ret(index++, d == 0 ? "outer" : "inner", d, d == 0 ? 5000000 : 10);
        pk_logger_push(lg, &r);
    }
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_string_equal(describe(pk_logger_recorder(lg)), "0:call:outer 19999:return:outer");
    pk_logger_free(lg);
}

/* ---- chains --------------------------------------------------------------- */

static void test_chain_include_then_max_depth(void **state)
{
    /* Both judge each record alone, so their order does not matter. */
    const char *expected = "1:call:B 2:return:B 3:call:C 6:return:C";
    assert_string_equal(RUN(SPECS("include:[BCD]", "max-depth:1"), NESTED), expected);
    assert_string_equal(RUN(SPECS("max-depth:1", "include:[BCD]"), NESTED), expected);
}

static void test_chain_min_duration_and_on_value(void **state)
{
    /* min-duration first: it sees returns and keeps the long calls, then
     * on-value keeps their call records. */
    assert_string_equal(RUN(SPECS("min-duration:200", "on-value:type=call"), NESTED),
                        "0:call:A 3:call:C");
    /* on-value first: min-duration never sees a return. A call at the depth
     * of a held one means the held one's return was lost, so B (unknown
     * length) makes way for C; the calls still held at the end pass then.
     * Order matters. */
    assert_string_equal(RUN(SPECS("on-value:type=call", "min-duration:200"), NESTED),
                        "0:call:A 3:call:C 4:call:D");
}

static void test_chain_on_change_and_include(void **state)
{
    /* on-change compares with the last record it saw, so what reaches it
     * decides what changes. Depths in NESTED: 0 1 1 1 2 2 1 0. */
    assert_string_equal(RUN(SPECS("include:C", "on-change:depth"), NESTED), "3:call:C");
    assert_string_equal(RUN(SPECS("on-change:depth", "include:C"), NESTED), "6:return:C");
}

static void test_chain_min_duration_then_max_depth(void **state)
{
    assert_string_equal(RUN(SPECS("min-duration:200", "max-depth:0"), NESTED),
                        "0:call:A 7:return:A");
    assert_string_equal(RUN(SPECS("min-duration:200", "exclude:A"), NESTED), "3:call:C 6:return:C");
}

/* ---- spec errors ---------------------------------------------------------- */

static void expect_open_error(const char *spec, const char *message)
{
    pk_error err = {{0}};
    pk_filter *f = pk_filter_open(spec, &err);
    if (f) {
        pk_filter_free(f);
        fail_msg("filter spec '%s' was accepted", spec);
    }
    assert_string_equal(err.message, message);
}

#define KNOWN_FIELDS                                                                               \
    "index, type, function, file, line, caller, caller_file, caller_line, thread, depth, "         \
    "time_ns, duration_ns, rss, vms, allocated, freed, alloc_delta, free_delta, label, span, "     \
    "total_ns, alloc_function, pointer, old_pointer, size, usable_size"

static void test_errors_kind(void **state)
{
    expect_open_error("colour:red", "filter spec 'colour:red': unknown kind 'colour' (known: "
                                    "on-value, not-on-value, on-change, max-depth, "
                                    "min-duration, include, exclude)");
    expect_open_error("max-depth", "filter spec 'max-depth': missing argument (expected "
                                   "max-depth:N)");
    expect_open_error("on-change", "filter spec 'on-change': missing argument (expected "
                                   "on-change:FIELD)");
    expect_open_error("max-depth+x:3", "filter spec 'max-depth+x:3': unknown option 'x' "
                                       "(filters take none)");
    expect_open_error("include:", "filter spec 'include:': nothing after ':'");
}

static void test_errors_on_value(void **state)
{
    expect_open_error("on-value:type", "filter spec 'on-value:type': no '=' in 'type' "
                                       "(expected on-value:FIELD=V[,V...])");
    expect_open_error("on-value:type=", "filter spec 'on-value:type=': no values after "
                                        "'type=' (expected on-value:FIELD=V[,V...])");
    expect_open_error("not-on-value:type=call,", "filter spec 'not-on-value:type=call,': "
                                                 "empty value in 'call,' (expected "
                                                 "not-on-value:FIELD=V[,V...])");
    expect_open_error("on-value:=call", "filter spec 'on-value:=call': no field before '=' "
                                        "(expected on-value:FIELD=V[,V...])");
    expect_open_error("on-value:colour=red", "filter spec 'on-value:colour=red': unknown "
                                             "field 'colour' (known: " KNOWN_FIELDS ")");
    expect_open_error("on-change:colour", "filter spec 'on-change:colour': unknown field "
                                          "'colour' (known: " KNOWN_FIELDS ")");
}

static void test_errors_numbers(void **state)
{
    expect_open_error("max-depth:-3", "filter spec 'max-depth:-3': depth '-3': expected a "
                                      "non-negative whole number");
    expect_open_error("max-depth:abc", "filter spec 'max-depth:abc': depth 'abc': expected a "
                                       "non-negative whole number");
    expect_open_error("min-duration:5 parsecs",
                      "filter spec 'min-duration:5 parsecs': duration '5 parsecs': unknown "
                      "unit 'parsecs' (accepted: ns, us, ms, s)");
    expect_open_error("min-duration:fast",
                      "filter spec 'min-duration:fast': duration 'fast': expected a number "
                      "with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)");
}

static void test_errors_globs(void **state)
{
    expect_open_error("include:a,,b", "filter spec 'include:a,,b': empty glob in 'a,,b' "
                                      "(expected include:GLOB[,GLOB...])");
    expect_open_error("exclude:,x", "filter spec 'exclude:,x': empty glob in ',x' (expected "
                                    "exclude:GLOB[,GLOB...])");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_filter_passes_everything),
        cmocka_unit_test(test_on_value_type),
        cmocka_unit_test(test_on_value_checkpoints),
        cmocka_unit_test(test_min_duration_passes_checkpoints_after_their_calls),
        cmocka_unit_test(test_on_value_several_values),
        cmocka_unit_test(test_on_value_number_field),
        cmocka_unit_test(test_on_value_unmeasured_field_matches_nothing),
        cmocka_unit_test(test_on_value_long_string),
        cmocka_unit_test(test_not_on_value),
        cmocka_unit_test(test_on_change_rss),
        cmocka_unit_test(test_on_change_first_record_passes),
        cmocka_unit_test(test_on_change_function),
        cmocka_unit_test(test_on_change_measured_and_unmeasured),
        cmocka_unit_test(test_max_depth),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_callback_without_function),
        cmocka_unit_test(test_min_duration_nested),
        cmocka_unit_test(test_min_duration_threshold_is_inclusive),
        cmocka_unit_test(test_min_duration_parent_long_children_short),
        cmocka_unit_test(test_min_duration_recursion),
        cmocka_unit_test(test_min_duration_two_threads),
        cmocka_unit_test(test_min_duration_return_without_call),
        cmocka_unit_test(test_min_duration_on_other_thread_return),
        cmocka_unit_test(test_min_duration_finish_emits_unreturned),
        cmocka_unit_test(test_min_duration_lost_return),
        cmocka_unit_test(test_min_duration_reused_across_runs),
        cmocka_unit_test(test_min_duration_deep_stack),
        cmocka_unit_test(test_chain_include_then_max_depth),
        cmocka_unit_test(test_chain_min_duration_and_on_value),
        cmocka_unit_test(test_chain_on_change_and_include),
        cmocka_unit_test(test_chain_min_duration_then_max_depth),
        cmocka_unit_test(test_errors_kind),
        cmocka_unit_test(test_errors_on_value),
        cmocka_unit_test(test_errors_numbers),
        cmocka_unit_test(test_errors_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
