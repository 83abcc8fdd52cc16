/*
 * test_monitor.c — monitors end to end inside one process: instrumented
 * functions (tests/monitored.c) run under a monitor feeding list recorders,
 * and each test asserts the exact sequence of records that came out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitored.h"
#include "stderr_capture.h"
#include "../monitors/function_memory.h"
#include "../src/clock.h"
#include "../src/internal.h"

#include <pikoc.h>

extern int compare_calls;

/* ---- helpers ---------------------------------------------------------------- */

/* Monitors a test made; freed by the teardown when an assertion cut the test short. */
static pk_monitor *made[4];
static size_t made_count;

static int end_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < made_count; i++)
        pk_monitor_free(made[i]);
    made_count = 0;
    marked_monitor = NULL;
    return 0;
}

static pk_monitor *monitor_with_list(const char *name, pk_recorder **list)
{
    pk_error err = {{0}};
    pk_monitor *m = pk_monitor_new(name, &err);
    assert_non_null(m);
    made[made_count++] = m;
    pk_logger *lg = pk_monitor_record(m, "list", &err);
    assert_non_null(lg);
    *list = pk_logger_recorder(lg);
    return m;
}

/* Frees a monitor the test is done with. */
static void done_with(pk_monitor *m)
{
    for (size_t i = 0; i < made_count; i++) {
        if (made[i] == m) {
            made[i] = made[--made_count];
            break;
        }
    }
    pk_monitor_free(m);
}

static void enable(pk_monitor *m)
{
    pk_error err = {{0}};
    if (pk_monitor_enable(m, &err) != 0)
        fail_msg("enable: %s", err.message);
}

/* "call outer 0" for each record, in order. */
static void assert_sequence(pk_recorder *list, const char *const *expected, size_t count)
{
    size_t n = pk_list_count(list);
    for (size_t i = 0; i < n && i < count; i++) {
        const pk_record *r = pk_list_get(list, i);
        char got[160];
        snprintf(got, sizeof got, "%s %s %u", pk_event_type_name(r->type), r->function,
                 r->depth);
        if (strcmp(got, expected[i]) != 0)
            fail_msg("record %zu: got '%s', expected '%s'", i, got, expected[i]);
        assert_int_equal(r->index, i);
    }
    assert_int_equal(n, count);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_nested_calls(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    outer(1); /* before the enable: not recorded */
    enable(m);
    assert_int_equal(outer(1), 3);
    pk_monitor_disable(m);
    outer(1); /* after the disable: not recorded */

    static const char *const expected[] = {
        "call outer 0", "call leaf 1", "return leaf 1",
        "call leaf 1",  "return leaf 1", "return outer 0",
    };
    assert_sequence(list, expected, 6);

    const pk_record *call = pk_list_get(list, 0);
    assert_true(ends_with(call->file, "tests/monitored.c"));
    assert_int_equal(call->line, outer_line);
    assert_string_equal(call->caller, "test_nested_calls");
    assert_true(ends_with(call->caller_file, "tests/test_monitor.c"));

    const pk_record *first_leaf = pk_list_get(list, 1);
    assert_int_equal(first_leaf->line, leaf_line);
    assert_string_equal(first_leaf->caller, "outer");
    assert_int_equal(first_leaf->caller_line, outer_line + 2);
    const pk_record *second_leaf = pk_list_get(list, 3);
    assert_int_equal(second_leaf->caller_line, outer_line + 3);
    const pk_record *leaf_return = pk_list_get(list, 2);
    assert_string_equal(leaf_return->caller, "outer");
    assert_int_equal(leaf_return->caller_line, outer_line + 2);

    /* Time runs forward; a return lasts as long as its call was open. */
    uint64_t previous = 0;
    for (size_t i = 0; i < 6; i++) {
        const pk_record *r = pk_list_get(list, i);
        assert_true(r->time_ns >= previous);
        previous = r->time_ns;
        assert_int_equal(r->thread, pk_list_get(list, 0)->thread);
        assert_int_equal(r->flags, 0); /* the function monitor measures no memory */
    }
    const pk_record *outer_return = pk_list_get(list, 5);
    assert_int_equal(outer_return->duration_ns, outer_return->time_ns - call->time_ns);

    done_with(m);
}

static void test_recursion(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    assert_int_equal(recurse(3), 3);
    pk_monitor_disable(m);
    static const char *const expected[] = {
        "call recurse 0",   "call recurse 1",   "call recurse 2",   "call recurse 3",
        "return recurse 3", "return recurse 2", "return recurse 1", "return recurse 0",
    };
    assert_sequence(list, expected, 8);
    assert_string_equal(pk_list_get(list, 1)->caller, "recurse");
    assert_int_equal(pk_list_get(list, 1)->caller_line, recurse_line + 2);
    done_with(m);
}

static void test_totals(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    outer(2);
    recurse(2);
    pk_monitor_disable(m);
    pk_monitor_end(m);
    pk_run_totals totals = pk_monitor_totals(m);
    assert_int_equal(totals.events, 12);
    assert_int_equal(totals.calls, 6);
    assert_int_equal(totals.unmatched, 0);
    assert_int_equal(totals.unfinished, 0);
    assert_int_equal(totals.dropped, 0);
    assert_true(totals.end_ns >= pk_list_get(list, 11)->time_ns);
    /* An ended run cannot start again. */
    pk_error err = {{0}};
    assert_int_equal(pk_monitor_enable(m, &err), -1);
    assert_string_equal(err.message,
                        "cannot start monitor 'function': its run has ended; create a new monitor");
    done_with(m);
}

static void test_decorator(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    marked_monitor = m;
    leaf(0); /* no scope open: not recorded */
    assert_int_equal(marked(5), 6);
    /* The scope's end flushed synchronously: the records are here now. */
    static const char *const expected[] = {
        "call marked 0",
        "call leaf 1",
        "return leaf 1",
        "return marked 0",
    };
    assert_sequence(list, expected, 4);
    const pk_record *call = pk_list_get(list, 0);
    assert_int_equal(call->line, marked_line);
    assert_true(ends_with(call->file, "tests/monitored.c"));
    assert_string_equal(call->caller, "test_decorator");
    leaf(0);
    assert_int_equal(pk_list_count(list), 4);

    /* Recursion: the scope hooks once; inner calls are recorded as calls. */
    pk_list_clear(list);
    assert_int_equal(marked_recursive(2), 2);
    static const char *const recursive[] = {
        "call marked_recursive 0",   "call marked_recursive 1",   "call marked_recursive 2",
        "return marked_recursive 2", "return marked_recursive 1", "return marked_recursive 0",
    };
    size_t n = pk_list_count(list);
    for (size_t i = 0; i < n; i++) {
        const pk_record *r = pk_list_get(list, i);
        char got[160];
        snprintf(got, sizeof got, "%s %s %u", pk_event_type_name(r->type), r->function,
                 r->depth);
        assert_string_equal(got, recursive[i]);
    }
    assert_int_equal(n, 6);
    marked_monitor = NULL;
    done_with(m);
}

static void test_zone(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    assert_int_equal(zoned(), 2);
    pk_monitor_disable(m);
    static const char *const expected[] = {
        "call zoned 0",  "call parse 1",    "call leaf 2",
        "return leaf 2", "return parse 1", "return zoned 0",
    };
    assert_sequence(list, expected, 6);
    const pk_record *zone = pk_list_get(list, 1);
    assert_int_equal(zone->line, zone_line);
    assert_true(ends_with(zone->file, "tests/monitored.c"));
    assert_string_equal(zone->caller, "zoned");
    assert_int_equal(zone->caller_line, zone_line);
    done_with(m);
}

static void test_focus(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    pk_error err = {{0}};
    assert_int_equal(pk_monitor_focus(m, "focus_tar*", &err), 0);
    enable(m);
    compare_calls = 0;
    not_focused(1);
    focus_target(2);
    not_focused(3);
    pk_monitor_disable(m);

    /* Inside focus_target: qsort's calls back into compare_ints, then leaf,
     * which comes after two library calls (qsort, memset) and is still
     * recorded: a library call does not end the focus. */
    size_t n = pk_list_count(list);
    assert_true(compare_calls > 0);
    assert_int_equal(n, 2 + 2 * (size_t)compare_calls + 2);
    const pk_record *first = pk_list_get(list, 0);
    assert_string_equal(first->function, "focus_target");
    assert_int_equal(first->type, PK_EVENT_CALL);
    for (size_t i = 1; i + 3 < n; i += 2) {
        assert_string_equal(pk_list_get(list, i)->function, "compare_ints");
        assert_int_equal(pk_list_get(list, i)->type, PK_EVENT_CALL);
        assert_int_equal(pk_list_get(list, i)->depth, 1);
        assert_string_equal(pk_list_get(list, i + 1)->function, "compare_ints");
        assert_int_equal(pk_list_get(list, i + 1)->type, PK_EVENT_RETURN);
    }
    assert_string_equal(pk_list_get(list, n - 3)->function, "leaf");
    assert_string_equal(pk_list_get(list, n - 2)->function, "leaf");
    assert_string_equal(pk_list_get(list, n - 1)->function, "focus_target");
    assert_int_equal(pk_list_get(list, n - 1)->type, PK_EVENT_RETURN);
    done_with(m);
}

static void test_focus_unknown_name(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    pk_error err = {{0}};
    assert_int_equal(pk_monitor_focus(m, "no_such_function_anywhere", &err), 0);
    assert_int_equal(pk_monitor_enable(m, &err), -1);
    assert_string_equal(err.message, "focus 'no_such_function_anywhere': no function of that "
                                     "name in the loaded modules");
    assert_int_equal(pk_monitor_focus(m, " , ", &err), -1);
    assert_string_equal(err.message, "focus: empty name in ' , ' (expected NAME[,GLOB...])");
    assert_int_equal(pk_monitor_focus(m, "parse,,load", &err), -1);
    assert_string_equal(err.message,
                        "focus: empty name in 'parse,,load' (expected NAME[,GLOB...])");
    done_with(m);
}

static void test_function_memory(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function-memory", &list);
    enable(m);
    const size_t bytes = 8u << 20;
    void *p = allocate_kept(bytes);
    size_t usable = malloc_usable_size(p);
    free_kept(p);
    pk_monitor_disable(m);

    static const char *const expected[] = {
        "call allocate_kept 0",
        "return allocate_kept 0",
        "call free_kept 0",
        "return free_kept 0",
    };
    assert_sequence(list, expected, 4);
    const pk_run_info *run = pk_monitor_run_info(m);
    assert_string_equal(run->monitor, "function-memory");
    assert_true(run->flags & PK_RECORD_MEMORY);
    for (size_t i = 0; i < 4; i++) {
        const pk_record *r = pk_list_get(list, i);
        assert_true(r->flags & PK_RECORD_MEMORY);
        assert_true(r->rss > 0);
        assert_true(r->vms >= r->rss);
    }
    /* The 8 MiB were touched inside allocate_kept: RSS grew by at least that. */
    assert_true(pk_list_get(list, 1)->rss - pk_list_get(list, 0)->rss >= bytes);

    if (run->flags & PK_RECORD_ALLOC) {
        assert_string_equal(run->alloc_source, "jemalloc");
        const pk_record *allocated = pk_list_get(list, 1);
        assert_true(allocated->flags & PK_RECORD_ALLOC);
        assert_int_equal(allocated->alloc_delta, usable);
        assert_int_equal(allocated->free_delta, 0);
        const pk_record *freed = pk_list_get(list, 3);
        assert_int_equal(freed->free_delta, usable);
        assert_int_equal(freed->alloc_delta, 0);
        assert_int_equal(freed->freed - pk_list_get(list, 2)->freed, usable);
    } else {
        /* Not jemalloc (e.g. under AddressSanitizer): said, not invented. */
        assert_int_equal(strncmp(run->alloc_source, "unavailable: ", 13), 0);
        for (size_t i = 0; i < 4; i++)
            assert_false(pk_list_get(list, i)->flags & PK_RECORD_ALLOC);
    }
    done_with(m);
}

/* statm's first two numbers as the sample parses them: {RSS, VMS} pages. */
static void assert_statm(const char *text, uint64_t rss, uint64_t vms)
{
    char buf[PK_STATM_READ + 16] = {0};
    memcpy(buf, text, strlen(text));
    uint64_t pages[2];
    pk_parse_statm(buf, pages);
    assert_int_equal(pages[0], rss);
    assert_int_equal(pages[1], vms);
}

static void test_statm_parse(void **state)
{
    (void)state;
    const uint64_t none = PK_UNMEASURED;
    assert_statm("2545 390 330 196 0 180 0\n", 390, 2545);
    assert_statm("1 0 0 0 0 0 0\n", 0, 1);
    assert_statm("12345678 87654321 1 1 0 1 0\n", 87654321, 12345678);
    assert_statm("123456789 9876543210 1 1 0 1 0\n", 9876543210u, 123456789);
    assert_statm("1234567890123456 1000000000000000 0\n", 1000000000000000u, 1234567890123456u);
    assert_statm("00000042 07 1\n", 7, 42);
    /* Seventeen digits, text that is not statm's, a cut line: unmeasured, never a guess. */
    assert_statm("12345678901234567 1 0\n", none, none);
    assert_statm("1 12345678901234567 0\n", none, none);
    assert_statm(" 2545 390 330\n", none, none);
    assert_statm("2545  390 330\n", none, none);
    assert_statm("25x5 390 330\n", none, none);
    assert_statm("2545 39", none, none);
    assert_statm("2545 390", none, none);
    assert_statm("", none, none);
}

/* PIKOC_RING_EVENTS: 64 to 2^30 events, rounded up to a power of two; nothing else. */
static void test_ring_events_setting(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t events;
    } good[] = {
        {"64", 64}, {"65", 128}, {"100", 128}, {"65536", 65536}, {"1073741824", 1ull << 30}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        pk_error err = {{0}};
        uint64_t events = 0;
        assert_int_equal(pk_ring_events_parse(good[i].text, &events, &err), 0);
        assert_int_equal(events, good[i].events);
    }
    static const char *const bad[] = {"",   "abc", "-1",         "0x40",
                                      "63", "0",   "1073741825", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pk_error err = {{0}};
        uint64_t events = 7;
        assert_int_equal(pk_ring_events_parse(bad[i], &events, &err), -1);
        assert_int_equal(events, 7);
        char expected[256];
        snprintf(expected, sizeof expected,
                 "PIKOC_RING_EVENTS '%s': expected a whole number of events from 64 to "
                 "1073741824 (rounded up to a power of two)",
                 bad[i]);
        assert_string_equal(err.message, expected);
    }
}

/* PIKOC_CLOCK: "tsc" or "monotonic", spelled so. */
static void test_clock_setting(void **state)
{
    (void)state;
    pk_error err = {{0}};
    bool monotonic = true;
    assert_int_equal(pk_clock_parse("tsc", &monotonic, &err), 0);
    assert_false(monotonic);
    assert_int_equal(pk_clock_parse("monotonic", &monotonic, &err), 0);
    assert_true(monotonic);
    static const char *const bad[] = {"", "TSC", "monotonic ", "rdtsc", "realtime"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        monotonic = true;
        assert_int_equal(pk_clock_parse(bad[i], &monotonic, &err), -1);
        assert_true(monotonic);
        char expected[128];
        snprintf(expected, sizeof expected,
                 "PIKOC_CLOCK '%s': unknown clock (known: tsc, monotonic)", bad[i]);
        assert_string_equal(err.message, expected);
    }
}

/*
 * A profiler's start and finish are a call and a return of its message, each
 * mark a checkpoint one level inside it with its delta, total and the bytes
 * allocated since the previous mark; printing is off and records still flow.
 */
static void test_profiler_records(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function-memory", &list);
    const pk_profiler_options quiet = {.enable = PK_PROFILE_OFF};
    static const pk_profiler_site site = {"demo.c", "handler", 42};
    pk_profiler early, p, inner;
    pk_profiler_begin(&early, NULL, "early", &quiet); /* before the run */
    enable(m);
    pk_profiler_begin(&p, &site, "handle request", &quiet);
    void *kept = allocate_kept(4096);
    size_t usable = malloc_usable_size(kept);
    pk_profiler_mark(&p, "allocated");
    pk_profiler_begin(&inner, NULL, "inner", &quiet);
    pk_profiler_mark(&inner, NULL);
    pk_profiler_finish(&inner);
    free_kept(kept);
    pk_profiler_mark(&p, "freed");
    pk_profiler_mark(&early, "late mark");
    pk_profiler_finish(&p);
    pk_profiler_finish(&early); /* its start was not recorded: unmatched */
    pk_monitor_disable(m);

    static const char *const expected[] = {
        "call handle request 0",  "call allocate_kept 1",
        "return allocate_kept 1", "checkpoint handle request 1",
        "call inner 1",           "checkpoint inner 2",
        "return inner 1",         "call free_kept 1",
        "return free_kept 1",     "checkpoint handle request 1",
        "checkpoint early 1",     "return handle request 0",
    };
    assert_sequence(list, expected, 12);
    const pk_record *start = pk_list_get(list, 0), *allocated = pk_list_get(list, 3);
    const pk_record *numbered = pk_list_get(list, 5), *freed = pk_list_get(list, 9);
    const pk_record *late = pk_list_get(list, 10), *end = pk_list_get(list, 11);
    assert_true(start->flags & PK_RECORD_SPAN);
    assert_int_equal(start->span, p.span);
    assert_string_equal(start->label, "");
    assert_string_equal(start->file, "demo.c");
    assert_int_equal(start->line, 42);
    assert_string_equal(start->caller, "handler");
    assert_string_equal(allocated->label, "allocated");
    assert_int_equal(allocated->span, p.span);
    assert_int_equal(allocated->duration_ns, allocated->total_ns);
    assert_int_equal(allocated->total_ns, allocated->time_ns - start->time_ns);
    assert_string_equal(numbered->label, "0");
    assert_int_equal(numbered->span, inner.span);
    assert_string_equal(freed->label, "freed");
    assert_int_equal(freed->total_ns, allocated->total_ns + freed->duration_ns);
    assert_int_equal(freed->total_ns, freed->time_ns - start->time_ns);
    assert_string_equal(late->label, "late mark");
    assert_int_equal(late->span, early.span);
    assert_int_equal(late->duration_ns, late->total_ns);
    assert_false(late->flags & PK_RECORD_ALLOC); /* no start seen: no delta to give */
    assert_int_equal(end->span, p.span);
    assert_int_equal(end->duration_ns, end->time_ns - start->time_ns);
    assert_true(end->duration_ns >= freed->total_ns);
    if (pk_monitor_run_info(m)->flags & PK_RECORD_ALLOC) {
        assert_true(allocated->flags & PK_RECORD_ALLOC);
        assert_int_equal(allocated->alloc_delta, usable);
        assert_int_equal(allocated->free_delta, 0);
        assert_int_equal(freed->alloc_delta, 0);
        assert_int_equal(freed->free_delta, usable);
    }
    pk_monitor_end(m);
    assert_int_equal(pk_monitor_totals(m).unmatched, 1);
    assert_int_equal(pk_monitor_totals(m).calls, 4);
    done_with(m);
}

/*
 * More zones than the drain's first table of call symbols holds (half of
 * 1024 pairs): each record names its own zone, before the table grows and
 * after, when the same zones are met again.
 */
static void test_many_zones_keep_their_names(void **state)
{
    (void)state;
    enum { ZONES = 700 };
    static pk_zone zones[ZONES];
    static char names[ZONES][16];
    for (unsigned i = 0; i < ZONES; i++) {
        snprintf(names[i], sizeof names[i], "zone %u", i);
        zones[i] = (pk_zone){names[i], "zones.c", "visit", i + 1};
    }
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    for (int round = 0; round < 2; round++) {
        for (unsigned i = 0; i < ZONES; i++) {
            pk_zone_begin(&zones[i]);
            pk_zone_end(&zones[i]);
        }
    }
    pk_monitor_disable(m);
    assert_int_equal(pk_list_count(list), 2 * 2 * ZONES);
    for (size_t k = 0; k < pk_list_count(list); k++) {
        const pk_record *r = pk_list_get(list, k);
        unsigned i = (unsigned)(k / 2 % ZONES);
        if (strcmp(r->function, names[i]) != 0)
            fail_msg("record %zu: function '%s', expected '%s'", k, r->function, names[i]);
        assert_int_equal(r->line, i + 1);
        assert_int_equal(r->address, (uintptr_t)&zones[i]);
        assert_int_equal(r->type, k % 2 ? PK_EVENT_RETURN : PK_EVENT_CALL);
    }
    done_with(m);
}

/*
 * A profiler's frame keeps its own names (from its payload, not its
 * address): they move with the thread's stack of frames when it grows
 * under the profiler, and its mark and return still name it.
 */
static void test_profiler_names_survive_deep_nesting(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    const pk_profiler_options quiet = {.enable = PK_PROFILE_OFF};
    static const pk_profiler_site site = {"demo.c", "handler", 42};
    static const pk_zone level = {"level", "levels.c", "descend", 7};
    enum { DEPTH = 40 };
    pk_profiler p;
    enable(m);
    pk_profiler_begin(&p, &site, "handle request", &quiet);
    for (int i = 0; i < DEPTH; i++)
        pk_zone_begin(&level);
    pk_profiler_mark(&p, "deep");
    for (int i = 0; i < DEPTH; i++)
        pk_zone_end(&level);
    pk_profiler_finish(&p);
    pk_monitor_disable(m);

    assert_int_equal(pk_list_count(list), 2 * DEPTH + 3);
    const pk_record *deep = pk_list_get(list, DEPTH + 1);
    const pk_record *end = pk_list_get(list, 2 * DEPTH + 2);
    const pk_record *innermost = pk_list_get(list, DEPTH);
    assert_string_equal(innermost->function, "level");
    assert_string_equal(innermost->file, "levels.c");
    assert_int_equal(innermost->line, 7);
    assert_int_equal(innermost->depth, DEPTH);
    for (size_t i = 0; i < 2; i++) {
        const pk_record *r = i ? end : deep;
        assert_int_equal(r->type, i ? PK_EVENT_RETURN : PK_EVENT_CHECKPOINT);
        assert_string_equal(r->function, "handle request");
        assert_string_equal(r->file, "demo.c");
        assert_int_equal(r->line, 42);
        assert_string_equal(r->caller, "handler");
        assert_string_equal(r->caller_file, "demo.c");
        assert_int_equal(r->caller_line, 42);
        assert_int_equal(r->span, p.span);
    }
    assert_string_equal(deep->label, "deep");
    assert_int_equal(deep->depth, 1);
    assert_int_equal(end->depth, 0);
    done_with(m);
}

/* The function monitor running into a list, and a silent profiler begun under it. */
static pk_monitor *profiler_under_function(pk_recorder **list, pk_profiler *p, const char *message)
{
    pk_monitor *m = monitor_with_list("function", list);
    const pk_profiler_options quiet = {.enable = PK_PROFILE_OFF};
    enable(m);
    pk_profiler_begin(p, NULL, message, &quiet);
    return m;
}

/* A context the profiler exports carries the run's clock: the time of a record made then. */
static void test_context_time_is_the_run_clock(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_profiler p;
    pk_monitor *m = profiler_under_function(&list, &p, "client");
    char context[PK_CONTEXT_SIZE];
    pk_profiler_context(&p, context, sizeof context);
    pk_profiler_mark(&p, "sent");
    pk_profiler_finish(&p);
    pk_monitor_disable(m);
    unsigned long long trace, span, sent;
    int pid;
    assert_int_equal(sscanf(context, "pk1-%llx-%llx-%d-%llu-", &trace, &span, &pid, &sent), 4);
    const pk_run_info *run = pk_monitor_run_info(m);
    const pk_record *start = pk_list_get(list, 0), *mark = pk_list_get(list, 1);
    assert_int_equal(span, p.span);
    assert_int_equal(pid, run->pid);
    assert_true((int64_t)sent >= run->start_wall_ns + (int64_t)start->time_ns);
    assert_true((int64_t)sent <= run->start_wall_ns + (int64_t)mark->time_ns);
    done_with(m);
}

/*
 * The drain builds records in place in a batch it reuses: calls and returns
 * recorded after a profiler's records (more of them than a batch holds)
 * carry none of the fields those set.
 */
static void test_calls_after_profiler_records_are_plain(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_profiler p;
    pk_monitor *m = profiler_under_function(&list, &p, "request");
    pk_profiler_mark(&p, "half");
    pk_profiler_finish(&p);
    for (int i = 0; i < 30; i++)
        outer(i);
    pk_monitor_disable(m);
    assert_int_equal(pk_list_count(list), 3 + 30 * 6);
    assert_string_equal(pk_list_get(list, 1)->label, "half");
    for (size_t i = 3; i < pk_list_count(list); i++) {
        const pk_record *r = pk_list_get(list, i);
        assert_int_equal(r->flags, 0);
        if (r->type == PK_EVENT_CALL)
            assert_int_equal(r->duration_ns, 0);
        assert_string_equal(r->label, "");
        assert_int_equal(r->span, 0);
        assert_int_equal(r->total_ns, 0);
        assert_int_equal(r->rss + r->vms + r->allocated + r->freed, 0);
        assert_int_equal(r->alloc_delta + r->free_delta, 0);
        assert_string_equal(r->alloc_function, "");
        assert_int_equal(r->pointer + r->old_pointer + r->size + r->usable_size, 0);
        assert_null(r->stack);
        assert_int_equal(r->stack_depth, 0);
    }
    done_with(m);
}

#define THREADS 4
#define CALLS_PER_THREAD 2000

static void *thread_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++)
        outer(i);
    return NULL;
}

static void test_threads_lose_nothing(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, thread_body, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pk_monitor_disable(m);

    size_t n = pk_list_count(list);
    assert_int_equal(n, (size_t)THREADS * CALLS_PER_THREAD * 6);
    /* Per thread: the exact outer/leaf/leaf pattern, in order. */
    uint64_t tids[THREADS] = {0};
    size_t seen[THREADS] = {0};
    static const char *const pattern[] = {"call outer 0",  "call leaf 1",   "return leaf 1",
                                          "call leaf 1",   "return leaf 1", "return outer 0"};
    for (size_t i = 0; i < n; i++) {
        const pk_record *r = pk_list_get(list, i);
        assert_int_equal(r->index, i);
        int slot = -1;
        for (int t = 0; t < THREADS; t++) {
            if (tids[t] == r->thread || tids[t] == 0) {
                tids[t] = r->thread;
                slot = t;
                break;
            }
        }
        assert_true(slot >= 0);
        char got[160];
        snprintf(got, sizeof got, "%s %s %u", pk_event_type_name(r->type), r->function,
                 r->depth);
        assert_string_equal(got, pattern[seen[slot] % 6]);
        seen[slot]++;
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(seen[t], CALLS_PER_THREAD * 6);
    pk_monitor_end(m);
    pk_run_totals totals = pk_monitor_totals(m);
    assert_int_equal(totals.events, n);
    assert_int_equal(totals.dropped, 0);
    assert_int_equal(totals.unmatched, 0);
    done_with(m);
}

static void test_enables_count(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    enable(m);
    enable(m);
    pk_monitor_disable(m);
    leaf(1); /* still enabled once */
    pk_monitor_disable(m);
    leaf(2); /* off */
    pk_monitor_disable(m); /* one too many: harmless */
    static const char *const expected[] = {"call leaf 0", "return leaf 0"};
    assert_sequence(list, expected, 2);
    done_with(m);
}

static void test_one_monitor_at_a_time(void **state)
{
    (void)state;
    pk_recorder *list_a, *list_b;
    pk_monitor *a = monitor_with_list("function-memory", &list_a);
    pk_monitor *b = monitor_with_list("function", &list_b);
    enable(a);
    pk_error err = {{0}};
    assert_int_equal(pk_monitor_enable(b, &err), -1);
    assert_string_equal(err.message, "cannot start monitor 'function': monitor "
                                     "'function-memory' is already running in this process "
                                     "(one at a time)");
    assert_null(pk_monitor_record(a, "list", &err));
    assert_string_equal(err.message,
                        "cannot add a recorder: monitor 'function-memory' has already started");
    done_with(a);
    /* Once a has ended, b can run; a cannot start again. */
    enable(b);
    leaf(1);
    pk_monitor_disable(b);
    assert_int_equal(pk_list_count(list_b), 2);
    done_with(b);
}

static void test_unknown_monitor(void **state)
{
    (void)state;
    pk_error err = {{0}};
    assert_null(pk_monitor_new("cpu", &err));
    assert_string_equal(err.message, "unknown monitor 'cpu' (known: function, function-memory, alloc)");
}

static void test_logger_per_recorder(void **state)
{
    (void)state;
    pk_recorder *all;
    pk_monitor *m = monitor_with_list("function", &all);
    pk_error err = {{0}};
    pk_logger *shallow = pk_monitor_record(m, "list", &err);
    assert_int_equal(pk_logger_add_filter_spec(shallow, "max-depth:0", &err), 0);
    pk_logger *leaves = pk_monitor_record(m, "list", &err);
    assert_int_equal(pk_logger_add_filter_spec(leaves, "include:le*", &err), 0);
    assert_int_equal(pk_logger_add_filter_spec(leaves, "on-value:type=return", &err), 0);
    enable(m);
    outer(1);
    pk_monitor_disable(m);
    assert_int_equal(pk_list_count(all), 6);
    static const char *const top[] = {"call outer 0", "return outer 0"};
    pk_recorder *shallow_list = pk_logger_recorder(shallow);
    assert_int_equal(pk_list_count(shallow_list), 2);
    for (size_t i = 0; i < 2; i++) {
        const pk_record *r = pk_list_get(shallow_list, i);
        char got[160];
        snprintf(got, sizeof got, "%s %s %u", pk_event_type_name(r->type), r->function,
                 r->depth);
        assert_string_equal(got, top[i]);
    }
    pk_recorder *leaf_list = pk_logger_recorder(leaves);
    assert_int_equal(pk_list_count(leaf_list), 2);
    assert_string_equal(pk_list_get(leaf_list, 0)->function, "leaf");
    assert_int_equal(pk_list_get(leaf_list, 0)->type, PK_EVENT_RETURN);
    /* Indexes are the run's, not the recorder's: filters do not renumber. */
    assert_int_equal(pk_list_get(leaf_list, 0)->index, 2);
    assert_int_equal(pk_list_get(leaf_list, 1)->index, 4);
    done_with(m);
}

/* A recorder that counts what it observes (before filters) and what it is given. */
struct seen_counts {
    unsigned observed;
    unsigned written;
};

static int count_observed(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    (void)err;
    ((struct seen_counts *)pk_recorder_state(r))->observed++;
    return 0;
}

static int count_written(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    (void)err;
    ((struct seen_counts *)pk_recorder_state(r))->written++;
    return 0;
}

static void test_observe_sees_what_filters_drop(void **state)
{
    (void)state;
    static const pk_recorder_ops counting = {
        .name = "counting",
        .size = sizeof(struct seen_counts),
        .write = count_written,
        .observe = count_observed,
    };
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_new(&counting, NULL, &err);
    assert_non_null(r);
    pk_logger *lg = pk_logger_new(r);
    assert_int_equal(pk_logger_add_filter_spec(lg, "max-depth:0", &err), 0);
    assert_int_equal(pk_monitor_add_logger(m, lg, &err), 0);
    enable(m);
    outer(1);
    pk_monitor_disable(m);
    struct seen_counts *seen = pk_recorder_state(r);
    assert_int_equal(seen->observed, 6);
    assert_int_equal(seen->written, 2);
    done_with(m);
}

static void test_failing_recorder_does_not_stop_the_program(void **state)
{
    (void)state;
    pk_recorder *list;
    pk_monitor *m = monitor_with_list("function", &list);
    pk_error err = {{0}};
    pk_logger *full = pk_monitor_record(m, "text+flush:/dev/full", &err);
    assert_non_null(full);
    enable(m);
    outer(1);
    recurse(2);
    pk_monitor_disable(m);
    assert_int_equal(pk_list_count(list), 12);
    assert_non_null(pk_logger_error(full));
    assert_string_equal(pk_logger_error(full), "recorder 'text+flush:/dev/full' cannot start: No "
                                               "space left on device; its records are dropped");
    done_with(m);
}

/* What a recorder went through, kept outside its state (freed with it). */
static struct {
    unsigned written, finishes, executions, closes;
    bool ended_at_finish; /* an exec asked for while the run's lock is held ended the run */
} ended_by_exec;

/* pk_monitor_before_exec's check of what is executed: it may run, or it cannot. */
static bool may_run(const void *what)
{
    return *(const bool *)what;
}

static const bool runs = true, cannot = false;

static int exec_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    ended_by_exec.written++;
    return 0;
}

/* Called with the run's lock held: an exec from here (a signal handler's) must leave the run. */
static int exec_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    ended_by_exec.finishes++;
    ended_by_exec.ended_at_finish = pk_monitor_before_exec(may_run, &runs) != NULL;
    return 0;
}

static int exec_executed(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    ended_by_exec.executions++;
    assert_int_equal(totals->events, 6);
    return 0;
}

static void exec_close(pk_recorder *r)
{
    ended_by_exec.closes++;
}

/*
 * Before an exec (src/exec.c), a run drained in process ends 'executed':
 * every record made so far is written, each recorder ends through executed
 * and is closed then, not again when the monitor is freed; the hooks record
 * nothing more. PIKOC_AT_EXEC=leave leaves the run. A failed exec leaves
 * the run ended, and says so.
 */
/* A "function" monitor whose one recorder counts into ended_by_exec (zeroed); *lg its logger. */
static pk_monitor *monitor_counting_exec(pk_logger **lg)
{
    static const pk_recorder_ops counting = {
        .name = "counting",
        .write = exec_write,
        .finish = exec_finish,
        .executed = exec_executed,
        .close = exec_close,
    };
    memset(&ended_by_exec, 0, sizeof ended_by_exec);
    pk_error err = {{0}};
    pk_monitor *m = pk_monitor_new("function", &err);
    assert_non_null(m);
    made[made_count++] = m;
    pk_recorder *r = pk_recorder_new(&counting, NULL, &err);
    assert_non_null(r);
    *lg = pk_logger_new(r);
    assert_int_equal(pk_monitor_add_logger(m, *lg, &err), 0);
    return m;
}

static void test_exec_ends_the_run(void **state)
{
    (void)state;
    pk_logger *lg;
    pk_monitor *m = monitor_counting_exec(&lg);
    pk_error err = {{0}};
    assert_null(pk_monitor_before_exec(may_run, &runs)); /* no run yet */
    enable(m);
    outer(1);
    setenv("PIKOC_AT_EXEC", "leave", 1);
    assert_null(pk_monitor_before_exec(may_run, &runs)); /* left as it is */
    unsetenv("PIKOC_AT_EXEC");
    assert_null(pk_monitor_before_exec(may_run, &cannot)); /* an exec that cannot run */
    assert_int_equal(ended_by_exec.executions, 0);
    assert_ptr_equal(pk_monitor_before_exec(may_run, &runs), m);
    assert_int_equal(ended_by_exec.written, 6);
    assert_int_equal(ended_by_exec.executions, 1);
    assert_int_equal(ended_by_exec.finishes, 0);
    assert_int_equal(ended_by_exec.closes, 1);
    assert_string_equal(pk_logger_error(lg), "recorder 'counting' was closed as the program "
                                             "executed another; its records are dropped");
    outer(1); /* the run has ended: not recorded */
    assert_int_equal(ended_by_exec.written, 6);
    assert_null(pk_monitor_before_exec(may_run, &runs));

    char warning[512];
    stderr_capture capture;
    stderr_capture_start(&capture);
    pk_monitor_exec_failed(m, "/nowhere/program", ENOENT);
    stderr_capture_end(&capture, warning, sizeof warning);
    assert_string_equal(warning,
                        "pikoc: executing /nowhere/program failed (No such file or directory) "
                        "after monitor 'function' ended its run 'executed' for it: what the "
                        "program does next is not recorded\n");
    assert_int_equal(pk_monitor_enable(m, &err), -1);
    assert_string_equal(err.message,
                        "cannot start monitor 'function': its run has ended; create a new monitor");
    done_with(m);
    assert_int_equal(ended_by_exec.closes, 1);
    assert_int_equal(ended_by_exec.finishes, 0);
}

/* A run that ends as usual: an exec asked for by its finish (under the run's lock) leaves it. */
static void test_exec_under_the_run_lock_leaves_the_run(void **state)
{
    (void)state;
    pk_logger *lg;
    pk_monitor *m = monitor_counting_exec(&lg);
    enable(m);
    outer(1);
    pk_monitor_end(m);
    assert_int_equal(ended_by_exec.finishes, 1);
    assert_false(ended_by_exec.ended_at_finish);
    assert_int_equal(ended_by_exec.executions, 0);
    done_with(m);
    assert_int_equal(ended_by_exec.closes, 1);
}

int main(void)
{
    /* Small rings make the threads test wait on the drain: lossless under pressure. */
    setenv("PIKOC_RING_EVENTS", "64", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nested_calls, end_leftovers),
        cmocka_unit_test(test_statm_parse),
        cmocka_unit_test(test_ring_events_setting),
        cmocka_unit_test(test_clock_setting),
        cmocka_unit_test_teardown(test_profiler_records, end_leftovers),
        cmocka_unit_test_teardown(test_profiler_names_survive_deep_nesting, end_leftovers),
        cmocka_unit_test_teardown(test_many_zones_keep_their_names, end_leftovers),
        cmocka_unit_test_teardown(test_context_time_is_the_run_clock, end_leftovers),
        cmocka_unit_test_teardown(test_calls_after_profiler_records_are_plain, end_leftovers),
        cmocka_unit_test_teardown(test_recursion, end_leftovers),
        cmocka_unit_test_teardown(test_totals, end_leftovers),
        cmocka_unit_test_teardown(test_decorator, end_leftovers),
        cmocka_unit_test_teardown(test_zone, end_leftovers),
        cmocka_unit_test_teardown(test_focus, end_leftovers),
        cmocka_unit_test_teardown(test_focus_unknown_name, end_leftovers),
        cmocka_unit_test_teardown(test_function_memory, end_leftovers),
        cmocka_unit_test_teardown(test_threads_lose_nothing, end_leftovers),
        cmocka_unit_test_teardown(test_enables_count, end_leftovers),
        cmocka_unit_test_teardown(test_one_monitor_at_a_time, end_leftovers),
        cmocka_unit_test_teardown(test_unknown_monitor, end_leftovers),
        cmocka_unit_test_teardown(test_logger_per_recorder, end_leftovers),
        cmocka_unit_test_teardown(test_observe_sees_what_filters_drop, end_leftovers),
        cmocka_unit_test_teardown(test_failing_recorder_does_not_stop_the_program, end_leftovers),
        cmocka_unit_test_teardown(test_exec_ends_the_run, end_leftovers),
        cmocka_unit_test_teardown(test_exec_under_the_run_lock_leaves_the_run, end_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
