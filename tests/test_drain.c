/*
 * test_drain.c — the order in which the drain takes the threads' allocation
 * events (src/drain.c, "the order of events"), from raw events pushed by
 * hand into two rings of this thread, with the drain parked while they are
 * pushed: each test asserts the exact records that came out, in order;
 * that a record built in the drain's reused batch keeps nothing of the
 * allocation record built there before it; and that a ring half full wakes
 * the drain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "drain.h"
#include "hot.h"

#include <pikoc.h>

/* Two threads' rings, both filled from this thread. */
static struct pk_thread one, two;
static pk_monitor *monitor;
static pk_recorder *list;
static uint64_t base; /* raw time at the start of the test: events come after it */
static bool parked;

/* Lets the drain take what was pushed (once; the teardown makes sure). */
static void resume(void)
{
    if (parked) {
        parked = false;
        pk_drain_fork_parent();
    }
}

/* A run whose slots hold allocation events (64 bytes: function-memory samples). */
static int start_run(void **state)
{
    (void)state;
    pk_error err = {{0}};
    monitor = pk_monitor_new("function-memory", &err);
    assert_non_null(monitor);
    pk_logger *lg = pk_monitor_record(monitor, "list", &err);
    assert_non_null(lg);
    list = pk_logger_recorder(lg);
    if (pk_monitor_enable(monitor, &err) != 0)
        fail_msg("enable: %s", err.message);
    memset(&one, 0, sizeof one);
    memset(&two, 0, sizeof two);
    base = pk_clock_raw();
    pk_drain_fork_prepare(); /* parked: nothing is taken before the test lets it */
    parked = true;
    return 0;
}

static int end_run(void **state)
{
    (void)state;
    resume();
    pk_monitor_free(monitor);
    monitor = NULL;
    return 0;
}

/* One raw event with its four values, `tick` thousand raw units after the test started. */
static void push_event(struct pk_thread *t, unsigned tick, uint32_t kind, uint32_t call,
                       uintptr_t fn, const uint64_t values[PK_SAMPLE_VALUES])
{
    uint64_t head;
    struct pk_ring *r = pk_ring_claim(t, &head);
    assert_non_null(r);
    struct pk_raw_event *ev = pk_ring_slot(r, head, PK_SLOT_SHIFT_SAMPLED);
    ev->raw_time = base + tick * 1000ull;
    ev->fn = fn;
    ev->site = 0;
    ev->kind = kind;
    ev->call = call;
    memcpy(ev->values, values, PK_SAMPLE_VALUES * sizeof *values);
    pk_ring_publish(r, head);
}

/* One allocation event. */
static void push(struct pk_thread *t, unsigned tick, uint32_t kind, enum pk_alloc_call call,
                 uintptr_t block, uintptr_t old, uint64_t size)
{
    uint64_t values[PK_SAMPLE_VALUES] = {0};
    values[PK_ALLOC_VALUE_SIZE] = size;
    values[PK_ALLOC_VALUE_OLD] = old;
    values[PK_ALLOC_VALUE_ASKED] = size;
    push_event(t, tick, PK_RAW_ALLOC | kind, call, block, values);
}

static void malloc_at(struct pk_thread *t, unsigned tick, uintptr_t block, uint64_t size)
{
    push(t, tick, 0, PK_CALL_MALLOC, block, 0, size);
}

static void free_at(struct pk_thread *t, unsigned tick, uintptr_t block)
{
    push(t, tick, 0, PK_CALL_FREE, block, 0, 0);
}

/* "type pointer old_pointer size" for each record, joined by "|". */
static void assert_records(const char *expected)
{
    pk_monitor_disable(monitor); /* every event pushed is recorded */
    char got[1024] = "";
    for (size_t i = 0; i < pk_list_count(list); i++) {
        const pk_record *r = pk_list_get(list, i);
        size_t at = strlen(got);
        snprintf(got + at, sizeof got - at, "%s%s %#lx %#lx %lu", i ? "|" : "",
                 pk_event_type_name(r->type), (unsigned long)r->pointer,
                 (unsigned long)r->old_pointer, (unsigned long)r->size);
    }
    assert_string_equal(got, expected);
}

/* ---- tests -------------------------------------------------------------------- */

/* Each ring is in its thread's order; across rings, the order of the times. */
static void test_rings_merged_by_time(void **state)
{
    (void)state;
    malloc_at(&one, 1, 0x100, 1);
    malloc_at(&one, 3, 0x300, 3);
    malloc_at(&one, 5, 0x500, 5);
    malloc_at(&two, 2, 0x200, 2);
    malloc_at(&two, 4, 0x400, 4);
    malloc_at(&two, 6, 0x600, 6);
    resume();
    assert_records("alloc 0x100 0 1|alloc 0x200 0 2|alloc 0x300 0 3|alloc 0x400 0 4|"
                   "alloc 0x500 0 5|alloc 0x600 0 6");
}

/* A block freed on one thread and allocated on the other: the free first, with its size. */
static void test_block_handed_over(void **state)
{
    (void)state;
    malloc_at(&one, 1, 0x100, 16);
    malloc_at(&two, 3, 0x100, 32); /* pushed first into its ring, later in time */
    free_at(&two, 4, 0x100);
    free_at(&one, 2, 0x100);
    resume();
    assert_records("alloc 0x100 0 16|free 0x100 0 16|alloc 0x100 0 32|free 0x100 0 32");
}

/*
 * A realloc that gave its block back before it returned: the other thread's
 * allocation of that block is in its ring, the realloc's end not yet. The
 * drain waits for the end and records the realloc first.
 */
static void test_realloc_end_comes_first(void **state)
{
    (void)state;
    malloc_at(&one, 1, 0x100, 48);
    push(&one, 2, PK_RAW_REALLOC_START, PK_CALL_REALLOC, 0, 0x100, 0);
    malloc_at(&two, 3, 0x100, 24);
    free_at(&two, 4, 0x100);
    resume();
    struct timespec pause = {0, 20000000}; /* the drain meets the allocation meanwhile */
    nanosleep(&pause, NULL);
    push(&one, 5, 0, PK_CALL_REALLOC, 0x900, 0x100, 3000);
    free_at(&one, 6, 0x900);
    assert_records("alloc 0x100 0 48|realloc 0x900 0x100 3000|alloc 0x100 0 24|"
                   "free 0x100 0 24|free 0x900 0 3000");
}

/* A realloc in place, then one that fails: no record for the failure, the block stays. */
static void test_realloc_in_place_and_failed(void **state)
{
    (void)state;
    malloc_at(&one, 1, 0x100, 48);
    push(&one, 2, PK_RAW_REALLOC_START, PK_CALL_REALLOC, 0, 0x100, 0);
    push(&one, 3, 0, PK_CALL_REALLOC, 0x100, 0x100, 64);
    push(&one, 4, PK_RAW_REALLOC_START, PK_CALL_REALLOC, 0, 0x100, 0);
    push(&one, 5, PK_RAW_REALLOC_FAILED, PK_CALL_REALLOC, 0, 0x100, 0);
    free_at(&one, 6, 0x100);
    resume();
    assert_records("alloc 0x100 0 48|realloc 0x100 0x100 64|free 0x100 0 64");
}

/* Raw clock units in ns nanoseconds (TSC ticks, or ns with CLOCK_MONOTONIC). */
static unsigned ticks_of_ns(uint64_t ns)
{
    return (unsigned)((ns << 32) / pk_clock_ns_per_tick_q32());
}

/*
 * An allocation whose time was read a little before that of the free on
 * the other thread that gave its block back: the free first all the same,
 * and the other thread's events before it with it.
 */
static void test_allocation_read_early(void **state)
{
    (void)state;
    malloc_at(&one, 1, 0x100, 16);
    malloc_at(&one, 3, 0x700, 7);
    free_at(&one, 4, 0x100);
    malloc_at(&two, 2, 0x200, 2);
    malloc_at(&two, 3, 0x100, 32); /* before the free's time, by 1000 units */
    free_at(&two, 5, 0x100);
    resume();
    assert_records("alloc 0x100 0 16|alloc 0x200 0 2|alloc 0x700 0 7|free 0x100 0 16|"
                   "alloc 0x100 0 32|free 0x100 0 32");
}

/* A free whose time was read a little before the other thread's allocation of its block. */
static void test_free_read_early(void **state)
{
    (void)state;
    malloc_at(&one, 3, 0x100, 16);
    free_at(&two, 2, 0x100);
    resume();
    assert_records("alloc 0x100 0 16|free 0x100 0 16");
}

/* A realloc's start read a little before the other thread's allocation of its block. */
static void test_realloc_start_read_early(void **state)
{
    (void)state;
    malloc_at(&one, 3, 0x100, 16);
    push(&two, 2, PK_RAW_REALLOC_START, PK_CALL_REALLOC, 0, 0x100, 0);
    push(&two, 4, 0, PK_CALL_REALLOC, 0x900, 0x100, 64);
    resume();
    assert_records("alloc 0x100 0 16|realloc 0x900 0x100 64");
}

/*
 * Farther apart than PK_DRAIN_SKEW_NS the times stand: the second
 * allocation replaces a block whose free was not recorded, and the free
 * that comes later is of a block not live.
 */
static void test_beyond_the_skew(void **state)
{
    (void)state;
    unsigned far = ticks_of_ns(2 * PK_DRAIN_SKEW_NS) / 1000 + 2;
    malloc_at(&one, 1, 0x100, 16);
    free_at(&one, far, 0x100);
    malloc_at(&two, 2, 0x100, 32);
    resume();
    assert_records("alloc 0x100 0 16|alloc 0x100 0 32|free 0x100 0 32");
}

/* A call or a return of fn, with samples the run reads as unmeasured. */
static void call_event(struct pk_thread *t, unsigned tick, uint32_t kind, uintptr_t fn)
{
    const uint64_t unmeasured[PK_SAMPLE_VALUES] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
    push_event(t, tick, kind, 0, fn, unmeasured);
}

/*
 * Records are built in a batch the drain reuses: a call or a return built
 * where an allocation record was shows none of the allocation's fields.
 * Allocations first, then calls and returns, more than a batch of each.
 */
static void test_calls_after_allocations_carry_none_of_theirs(void **state)
{
    (void)state;
    unsigned tick = 1;
    for (uintptr_t i = 0; i < 100; i++)
        malloc_at(&one, tick++, 0x1000 + 16 * i, 24);
    for (int i = 0; i < 100; i++) {
        call_event(&one, tick++, PK_RAW_CALL, (uintptr_t)test_block_handed_over);
        call_event(&one, tick++, PK_RAW_RETURN, (uintptr_t)test_block_handed_over);
    }
    resume();
    pk_monitor_disable(monitor);
    assert_int_equal(pk_list_count(list), 300);
    size_t stale = 0;
    for (size_t i = 100; i < 300; i++) {
        const pk_record *r = pk_list_get(list, i);
        assert_int_equal(r->type, i % 2 == 0 ? PK_EVENT_CALL : PK_EVENT_RETURN);
        if (strcmp(r->alloc_function, "") != 0 || r->pointer || r->old_pointer || r->size ||
            r->usable_size || r->stack || r->stack_depth ||
            (r->flags & (PK_RECORD_BLOCK | PK_RECORD_SIZE)))
            stale++;
    }
    assert_int_equal(stale, 0);
}

/*
 * A ring half full rings the doorbell, once, at the event that fills its
 * first half (a drain ahead of slow threads may be waiting up to 10 ms);
 * the ring then fills to the end without ringing again, and nothing is lost.
 */
static void test_half_full_ring_wakes_the_drain(void **state)
{
    (void)state;
    const uint64_t half = pk_rt.ring_capacity / 2;
    const uintptr_t fn = (uintptr_t)test_block_handed_over;
    _Atomic uint32_t *doorbell = &pk_rt.shared->doorbell;
    const uint32_t rung = atomic_load(doorbell);
    for (uint64_t i = 0; i < half; i++)
        call_event(&one, 1, i % 2 ? PK_RAW_RETURN : PK_RAW_CALL, fn);
    assert_int_equal(atomic_load(doorbell), rung);
    call_event(&one, 1, PK_RAW_CALL, fn);
    assert_int_equal(atomic_load(doorbell), rung + 1);
    for (uint64_t i = half + 1; i < 2 * half; i++)
        call_event(&one, 1, i % 2 ? PK_RAW_RETURN : PK_RAW_CALL, fn);
    assert_int_equal(atomic_load(doorbell), rung + 1);
    resume();
    pk_monitor_disable(monitor);
    assert_int_equal(pk_list_count(list), 2 * half);
    assert_int_equal(one.ring->dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rings_merged_by_time, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_block_handed_over, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_realloc_end_comes_first, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_realloc_in_place_and_failed, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_allocation_read_early, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_free_read_early, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_realloc_start_read_early, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_beyond_the_skew, start_run, end_run),
        cmocka_unit_test_setup_teardown(test_calls_after_allocations_carry_none_of_theirs,
                                        start_run, end_run),
        cmocka_unit_test_setup_teardown(test_half_full_ring_wakes_the_drain, start_run, end_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
