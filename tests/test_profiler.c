/*
 * test_profiler.c — the checkpoint profiler's printed output, line for line:
 * nesting, the threshold on the total, delayed and immediate printing, the
 * switch (on, off, PIKOC_PROFILE), scope exit, and span contexts. A test
 * clock makes every time exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profiler.h"
#include "stderr_capture.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t now_ns;

static uint64_t test_now(void)
{
    return now_ns;
}

/* Moves the test clock on by a number of microseconds. */
static void advance_us(uint64_t us)
{
    now_ns += us * 1000;
}

static char *output;
static size_t output_size;
static FILE *out;

static int setup(void **state)
{
    (void)state;
    now_ns = 1000000000;
    pk_profiler_test_clock(test_now);
    out = open_memstream(&output, &output_size);
    unsetenv("PIKOC_PROFILE");
    return out ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fclose(out);
    free(output);
    output = NULL;
    pk_profiler_test_clock(NULL);
    unsetenv("PIKOC_PROFILE");
    return 0;
}

/* What the profilers printed so far. */
static const char *printed(void)
{
    fflush(out);
    return output ? output : "";
}

static pk_profiler_options on(void)
{
    return (pk_profiler_options){.enable = PK_PROFILE_ON, .stream = out};
}

/* ---- format and nesting ------------------------------------------------------------ */

static void test_block_is_printed_at_finish(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    pk_profiler p;
    pk_profiler_begin(&p, NULL, "load config", &opts);
    advance_us(1500);
    pk_profiler_mark(&p, "read");
    advance_us(250);
    pk_profiler_mark(&p, "parsed");
    assert_string_equal(printed(), "");
    advance_us(12);
    pk_profiler_finish(&p);
    static const char block[] = "> Entering load config\n"
                                "  read: 1.5000, tot:1.5000\n"
                                "  parsed: 0.2500, tot:1.7500\n"
                                "< Exiting load config, total time: 1.7620 ms\n";
    assert_string_equal(printed(), block);
    pk_profiler_finish(&p); /* again: nothing */
    pk_profiler_mark(&p, "late");
    assert_string_equal(printed(), block);
}

static void test_nested_blocks_are_indented(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    pk_profiler outer, inner, innermost;
    pk_profiler_begin(&outer, NULL, "request", &opts);
    advance_us(100);
    pk_profiler_mark(&outer, "parsed");
    pk_profiler_begin(&inner, NULL, "query", &opts);
    advance_us(2000);
    pk_profiler_begin(&innermost, NULL, "fetch", &opts);
    advance_us(3);
    pk_profiler_mark(&innermost, "row");
    pk_profiler_finish(&innermost);
    pk_profiler_mark(&inner, "rows");
    advance_us(1);
    pk_profiler_finish(&inner);
    pk_profiler_mark(&outer, "queried");
    assert_string_equal(printed(), "");
    pk_profiler_finish(&outer);
    assert_string_equal(printed(), "> Entering request\n"
                                   "  parsed: 0.1000, tot:0.1000\n"
                                   "  > Entering query\n"
                                   "    > Entering fetch\n"
                                   "      row: 0.0030, tot:0.0030\n"
                                   "    < Exiting fetch, total time: 0.0030 ms\n"
                                   "    rows: 2.0030, tot:2.0030\n"
                                   "  < Exiting query, total time: 2.0040 ms\n"
                                   "  queried: 2.0040, tot:2.1040\n"
                                   "< Exiting request, total time: 2.1040 ms\n");
}

/* A profiler that prints nothing takes no indentation level from those inside it. */
static void test_silent_profiler_adds_no_level(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    pk_profiler_options off = {.enable = PK_PROFILE_OFF, .stream = out};
    pk_profiler outer, inner;
    pk_profiler_begin(&outer, NULL, "silent", &off);
    pk_profiler_begin(&inner, NULL, "loud", &opts);
    advance_us(5);
    pk_profiler_mark(&inner, NULL);
    pk_profiler_mark(&inner, NULL);
    pk_profiler_finish(&inner);
    pk_profiler_finish(&outer);
    assert_false(pk_profiler_printing(&outer));
    assert_true(pk_profiler_printing(&inner));
    assert_string_equal(printed(), "> Entering loud\n"
                                   "  0: 0.0050, tot:0.0050\n"
                                   "  1: 0.0000, tot:0.0050\n"
                                   "< Exiting loud, total time: 0.0050 ms\n");
}

/* Another thread's profiler, printing to its own stream while main's is open. */
static void *other_thread(void *arg)
{
    char **text = arg;
    size_t size;
    FILE *stream = open_memstream(text, &size);
    pk_profiler_options opts = {.enable = PK_PROFILE_ON, .stream = stream};
    pk_profiler p;
    pk_profiler_begin(&p, NULL, "worker", &opts);
    pk_profiler_mark(&p, "done");
    pk_profiler_finish(&p);
    fclose(stream);
    return NULL;
}

static void test_nesting_is_per_thread(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    pk_profiler main_profiler;
    pk_profiler_begin(&main_profiler, NULL, "main", &opts);
    char *worker_text = NULL;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, other_thread, &worker_text), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pk_profiler_finish(&main_profiler);
    /* Not indented under main's block, and not inside it: a block of its own. */
    assert_string_equal(worker_text, "> Entering worker\n"
                                     "  done: 0.0000, tot:0.0000\n"
                                     "< Exiting worker, total time: 0.0000 ms\n");
    assert_string_equal(printed(), "> Entering main\n"
                                   "< Exiting main, total time: 0.0000 ms\n");
    free(worker_text);
}

static void run_scoped(void)
{
    PK_PROFILER(prof, "scoped", .enable = PK_PROFILE_ON, .stream = out);
    advance_us(40);
    pk_profiler_mark(&prof, "step");
    advance_us(2);
}

static void test_scope_exit_finishes(void **state)
{
    (void)state;
    run_scoped();
    assert_string_equal(printed(), "> Entering scoped\n"
                                   "  step: 0.0400, tot:0.0400\n"
                                   "< Exiting scoped, total time: 0.0420 ms\n");
}

/* ---- threshold ------------------------------------------------------------------------ */

static void test_threshold_judges_the_total(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    opts.ms_threshold = 2.0;
    pk_profiler fast, slow;
    pk_profiler_begin(&fast, NULL, "fast", &opts);
    advance_us(1999);
    pk_profiler_mark(&fast, "all of it");
    pk_profiler_finish(&fast);
    assert_string_equal(printed(), "");
    /* No step reaches the threshold; the total does. */
    pk_profiler_begin(&slow, NULL, "slow", &opts);
    advance_us(1000);
    pk_profiler_mark(&slow, "half");
    advance_us(1000);
    pk_profiler_mark(&slow, "other half");
    pk_profiler_finish(&slow);
    assert_string_equal(printed(), "> Entering slow\n"
                                   "  half: 1.0000, tot:1.0000\n"
                                   "  other half: 1.0000, tot:2.0000\n"
                                   "< Exiting slow, total time: 2.0000 ms\n");
}

static void test_threshold_drops_nested_blocks(void **state)
{
    (void)state;
    pk_profiler_options opts = on(), quick = on();
    quick.ms_threshold = 1.0;
    opts.ms_threshold = 5.0;
    pk_profiler outer, inner, kept;
    pk_profiler_begin(&outer, NULL, "outer", &opts);
    pk_profiler_begin(&inner, NULL, "below", &quick);
    advance_us(999);
    pk_profiler_finish(&inner);
    pk_profiler_begin(&kept, NULL, "above", &quick);
    advance_us(1000);
    pk_profiler_finish(&kept);
    advance_us(10);
    pk_profiler_finish(&outer);
    /* outer is below its own threshold: its block goes, nested ones with it. */
    assert_string_equal(printed(), "");
    pk_profiler_begin(&outer, NULL, "outer", &quick);
    pk_profiler_begin(&inner, NULL, "below", &quick);
    advance_us(999);
    pk_profiler_finish(&inner);
    advance_us(1);
    pk_profiler_finish(&outer);
    assert_string_equal(printed(), "> Entering outer\n"
                                   "< Exiting outer, total time: 1.0000 ms\n");
}

/* ---- immediate --------------------------------------------------------------------------- */

static void test_immediate_prints_each_line_at_once(void **state)
{
    (void)state;
    pk_profiler_options opts = on();
    opts.immediate = true;
    opts.ms_threshold = 100; /* cannot hold back what is already printed */
    pk_profiler p;
    pk_profiler_begin(&p, NULL, "stream", &opts);
    assert_string_equal(printed(), "> Entering stream\n");
    advance_us(7);
    pk_profiler_mark(&p, "first");
    assert_string_equal(printed(), "> Entering stream\n"
                                   "  first: 0.0070, tot:0.0070\n");
    pk_profiler_finish(&p);
    assert_string_equal(printed(), "> Entering stream\n"
                                   "  first: 0.0070, tot:0.0070\n"
                                   "< Exiting stream, total time: 0.0070 ms\n");
}

/* An immediate line inside a delayed block first writes what the block holds, in order. */
static void test_immediate_inside_delayed_keeps_order(void **state)
{
    (void)state;
    pk_profiler_options delayed = on(), immediate = on();
    immediate.immediate = true;
    pk_profiler outer, inner;
    pk_profiler_begin(&outer, NULL, "outer", &delayed);
    advance_us(1);
    pk_profiler_mark(&outer, "a");
    pk_profiler_begin(&inner, NULL, "inner", &immediate);
    assert_string_equal(printed(), "> Entering outer\n"
                                   "  a: 0.0010, tot:0.0010\n"
                                   "  > Entering inner\n");
    pk_profiler_finish(&inner);
    advance_us(1);
    pk_profiler_mark(&outer, "b");
    pk_profiler_finish(&outer);
    assert_string_equal(printed(), "> Entering outer\n"
                                   "  a: 0.0010, tot:0.0010\n"
                                   "  > Entering inner\n"
                                   "  < Exiting inner, total time: 0.0000 ms\n"
                                   "  b: 0.0010, tot:0.0020\n"
                                   "< Exiting outer, total time: 0.0020 ms\n");
}

/* ---- the switch ------------------------------------------------------------------------------ */

/* Runs a one-mark profiler and says whether it printed. */
static bool prints(const char *msg, pk_profile_switch enable, const char *name)
{
    pk_profiler_options opts = {.enable = enable, .name = name, .stream = out};
    size_t before = strlen(printed());
    pk_profiler p;
    pk_profiler_begin(&p, NULL, msg, &opts);
    pk_profiler_mark(&p, "x");
    pk_profiler_finish(&p);
    return strlen(printed()) > before;
}

static void test_switch_on_off_and_env(void **state)
{
    (void)state;
    assert_true(prints("a", PK_PROFILE_ON, NULL));
    assert_false(prints("a", PK_PROFILE_OFF, NULL));
    assert_false(prints("a", PK_PROFILE_ENV, NULL)); /* PIKOC_PROFILE unset */
    setenv("PIKOC_PROFILE", "render, load", 1);
    assert_true(prints("load", PK_PROFILE_ENV, NULL));
    assert_true(prints("render", PK_PROFILE_ENV, NULL));
    assert_false(prints("loader", PK_PROFILE_ENV, NULL));
    assert_true(prints("Batch annotate 12 gaps", PK_PROFILE_ENV, "load"));
    assert_false(prints("load", PK_PROFILE_ENV, "other"));
    assert_false(prints("load", PK_PROFILE_OFF, NULL)); /* off wins over the list */
    setenv("PIKOC_PROFILE", "all", 1);
    assert_true(prints("anything", PK_PROFILE_ENV, NULL));
    /* Malformed: nothing is listed, and stderr says why, once. */
    setenv("PIKOC_PROFILE", "load,,x", 1);
    char warning[256];
    stderr_capture capture;
    stderr_capture_start(&capture);
    assert_false(prints("load", PK_PROFILE_ENV, NULL));
    assert_false(prints("load", PK_PROFILE_ENV, NULL));
    stderr_capture_end(&capture, warning, sizeof warning);
    assert_string_equal(warning, "pikoc: PIKOC_PROFILE: empty profiler name in 'load,,x' "
                                 "(expected NAME[,NAME...] or all)\n");
    /* Options left out (NULL) are the defaults: PIKOC_PROFILE decides. */
    unsetenv("PIKOC_PROFILE");
    pk_profiler p;
    pk_profiler_begin(&p, NULL, "defaults", NULL);
    assert_false(pk_profiler_printing(&p));
    pk_profiler_finish(&p);
    assert_string_equal(printed(), "> Entering a\n"
                                   "  x: 0.0000, tot:0.0000\n"
                                   "< Exiting a, total time: 0.0000 ms\n"
                                   "> Entering load\n"
                                   "  x: 0.0000, tot:0.0000\n"
                                   "< Exiting load, total time: 0.0000 ms\n"
                                   "> Entering render\n"
                                   "  x: 0.0000, tot:0.0000\n"
                                   "< Exiting render, total time: 0.0000 ms\n"
                                   "> Entering Batch annotate 12 gaps\n"
                                   "  x: 0.0000, tot:0.0000\n"
                                   "< Exiting Batch annotate 12 gaps, total time: 0.0000 ms\n"
                                   "> Entering anything\n"
                                   "  x: 0.0000, tot:0.0000\n"
                                   "< Exiting anything, total time: 0.0000 ms\n");
}

/* ---- contexts -----------------------------------------------------------------------------------
 */

static void test_context_round_trip(void **state)
{
    (void)state;
    pk_profiler_options off = {.enable = PK_PROFILE_OFF};
    pk_profiler caller, local, remote;
    pk_profiler_begin(&caller, NULL, "caller", &off);
    pk_profiler_begin(&local, NULL, "local child", &off);
    assert_int_equal(local.trace, caller.trace);
    assert_int_equal(local.span, caller.span + 1);
    char context[PK_CONTEXT_SIZE];
    size_t len = pk_profiler_context(&caller, context, sizeof context);
    assert_int_equal(len, strlen(context));
    assert_int_equal(pk_profiler_context(&caller, context, 10), 0);
    assert_string_equal(context, "");
    pk_profiler_context(&caller, context, sizeof context);

    pk_context parsed;
    pk_error err = {{0}};
    assert_int_equal(pk_context_parse(context, &parsed, &err), 0);
    assert_int_equal(parsed.trace, caller.trace);
    assert_int_equal(parsed.span, caller.span);
    assert_int_equal(parsed.pid, getpid());
    char host[256];
    gethostname(host, sizeof host);
    assert_string_equal(parsed.host, host);

    assert_int_equal(pk_profiler_begin_remote(&remote, NULL, "server", context, &off, &err), 0);
    assert_int_equal(remote.trace, caller.trace);
    pk_profiler_finish(&remote);
    pk_profiler_finish(&local);
    pk_profiler_finish(&caller);
}

static void test_context_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "pk2-1-2-3-4-h",
        "pk1-1-2-3-4-",
        "pk1-zz-2-3-4-h",
        "pk1-1-2-0-4-h",
        "pk1-0-2-3-4-h",
        "pk1-1-2-3-h",
        "pk1--1-2-3-4-h",
    };
    pk_context parsed;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pk_error err = {{0}};
        char want[256];
        snprintf(want, sizeof want,
                 "profiler context '%s': expected pk1-TRACE-SPAN-PID-TIME-HOST (as "
                 "pk_profiler_context writes it)",
                 bad[i]);
        assert_int_equal(pk_context_parse(bad[i], &parsed, &err), -1);
        assert_string_equal(err.message, want);
    }
    assert_int_equal(pk_context_parse("pk1-00000000000000ab-c-42-17-db-1.lan", &parsed, NULL), 0);
    assert_int_equal(parsed.trace, 0xab);
    assert_int_equal(parsed.span, 12);
    assert_int_equal(parsed.pid, 42);
    assert_int_equal(parsed.sent_ns, 17);
    assert_string_equal(parsed.host, "db-1.lan");

    /* A malformed context starts a root span: the profiler still works. */
    pk_profiler_options opts = on();
    pk_profiler p;
    pk_error err = {{0}};
    assert_int_equal(pk_profiler_begin_remote(&p, NULL, "orphan", "junk", &opts, &err), -1);
    assert_string_equal(err.message, "profiler context 'junk': expected "
                                     "pk1-TRACE-SPAN-PID-TIME-HOST (as pk_profiler_context "
                                     "writes it)");
    pk_profiler_finish(&p);
    assert_string_equal(printed(), "> Entering orphan\n"
                                   "< Exiting orphan, total time: 0.0000 ms\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_block_is_printed_at_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_blocks_are_indented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_profiler_adds_no_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_is_per_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_exit_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_judges_the_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_drops_nested_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immediate_prints_each_line_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immediate_inside_delayed_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_on_off_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
