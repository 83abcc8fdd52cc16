/*
 * wire_samples.h — valid wire messages for the codec's tests and its fuzz
 * target: a run of eight records using every kind of field (strings,
 * numbers, the event type, memory fields present or not), encoded as a
 * hello, one batch, a batch of allocations with their stacks and a goodbye.
 */
#ifndef PK_WIRE_SAMPLES_H
#define PK_WIRE_SAMPLES_H

#include "wire.h"

#include <string.h>

#define SAMPLE_SENDER 0x1122334455667788ull
#define SAMPLE_RECORDS 8
#define SAMPLE_ALLOCATIONS 3

static const pk_run_info sample_run = {.monitor = "function-memory",
                                       .flags = PK_RECORD_MEMORY,
                                       .clock = "tsc",
                                       .alloc_source = "jemalloc",
                                       .command_line = "./app --fast",
                                       .host = "box",
                                       .pid = 4242,
                                       .start_ns = 1000,
                                       .start_wall_ns = 1700000000000000000};

/* main -> work -> leaf, leaf again, then back; records 6 and 7 carry no memory. */
static void sample_records(pk_record recs[SAMPLE_RECORDS])
{
    static const struct {
        pk_event_type type;
        const char *function;
        unsigned depth;
    } shape[SAMPLE_RECORDS] = {
        {PK_EVENT_CALL, "main", 0},   {PK_EVENT_CALL, "work", 1},   {PK_EVENT_CALL, "leaf", 2},
        {PK_EVENT_RETURN, "leaf", 2}, {PK_EVENT_CALL, "leaf", 2},   {PK_EVENT_RETURN, "leaf", 2},
        {PK_EVENT_RETURN, "work", 1}, {PK_EVENT_RETURN, "main", 0},
    };
    for (int i = 0; i < SAMPLE_RECORDS; i++) {
        recs[i] = (pk_record){.index = (uint64_t)i,
                              .type = shape[i].type,
                              .flags = i < 6 ? PK_RECORD_MEMORY : 0,
                              .function = shape[i].function,
                              .file = "app.c",
                              .line = 10 + shape[i].depth,
                              .caller = shape[i].depth ? "work" : "",
                              .caller_file = shape[i].depth ? "app.c" : "",
                              .caller_line = shape[i].depth ? 20 + shape[i].depth : 0,
                              .thread = 77,
                              .depth = shape[i].depth,
                              .time_ns = 100 * (uint64_t)i + 5,
                              .duration_ns = shape[i].type == PK_EVENT_RETURN ? 100 : 0,
                              .rss = i < 6 ? 4096 * (uint64_t)(100 + i / 2) : 0,
                              .vms = i < 6 ? 1u << 30 : 0};
    }
}

/* The records observed (and written but record 2, as a filter would); then record 2 written alone.
 */
static void sample_batch(pk_wire_encoder *e, const pk_record recs[SAMPLE_RECORDS], pk_wire_buf *out)
{
    for (int i = 0; i < SAMPLE_RECORDS; i++) {
        pk_wire_encode_record(e, &recs[i], PK_WIRE_OBSERVED);
        if (i != 2 && !pk_wire_mark_written(e, &recs[i]))
            pk_wire_encode_record(e, &recs[i], PK_WIRE_WRITTEN);
    }
    pk_wire_encode_record(e, &recs[2], PK_WIRE_WRITTEN);
    pk_wire_finish_batch(e, out);
}

/* The frames a sender's symbols name: return address k is frame k. */
static const pk_symbol sample_frames[] = {
    {"??", "", 0},         {"b", "stacks.c", 15},    {"a", "stacks.c", 22},
    {"c", "stacks.c", 29}, {"main", "stacks.c", 39},
};
static const uintptr_t sample_stack_a[] = {1, 2, 4}, sample_stack_c[] = {1, 3, 4};

static void sample_resolve(uintptr_t frame, pk_symbol *out, void *user)
{
    (void)user;
    *out = sample_frames[frame];
}

/* Allocations through main -> a -> b (the first two) and main -> c -> b, with their stacks. */
static void sample_allocations(pk_record recs[SAMPLE_ALLOCATIONS])
{
    for (int i = 0; i < SAMPLE_ALLOCATIONS; i++) {
        recs[i] = (pk_record){.index = SAMPLE_RECORDS + (uint64_t)i,
                              .type = PK_EVENT_ALLOC,
                              .flags = PK_RECORD_BLOCK | PK_RECORD_SIZE,
                              .function = "",
                              .file = "",
                              .caller = "b",
                              .caller_file = "stacks.c",
                              .caller_line = 15,
                              .thread = 77,
                              .time_ns = 1000 + (uint64_t)i,
                              .label = "",
                              .alloc_function = "malloc",
                              .pointer = 0x1000 + 16 * (uintptr_t)i,
                              .size = 16,
                              .usable_size = 16,
                              .call_site = 1,
                              .stack = i == 2 ? sample_stack_c : sample_stack_a,
                              .stack_depth = 3};
    }
}

/* The allocations observed and written, in one batch. */
static void sample_allocation_batch(pk_wire_encoder *e, const pk_record recs[SAMPLE_ALLOCATIONS],
                                    pk_wire_buf *out)
{
    for (int i = 0; i < SAMPLE_ALLOCATIONS; i++)
        pk_wire_encode_record(e, &recs[i], PK_WIRE_OBSERVED | PK_WIRE_WRITTEN);
    pk_wire_finish_batch(e, out);
}

static void sample_messages(pk_wire_buf *hello, pk_wire_buf *batch, pk_wire_buf *stacks,
                            pk_wire_buf *goodbye)
{
    static pk_record recs[SAMPLE_RECORDS], allocations[SAMPLE_ALLOCATIONS];
    pk_wire_encoder e;
    sample_records(recs);
    sample_allocations(allocations);
    pk_wire_encoder_init(&e, SAMPLE_SENDER);
    e.resolve_frame = sample_resolve;
    pk_wire_encode_hello(&e, &sample_run, 4241, 0, 1, hello);
    sample_batch(&e, recs, batch);
    sample_allocation_batch(&e, allocations, stacks);
    uint64_t threads[] = {77};
    char names[][16] = {"worker"};
    pk_wire_goodbye g = {.totals = {.events = 11, .calls = 4, .end_ns = 1002},
                         .entries = 12,
                         .written = 11,
                         .batches = 2,
                         .peak_rss = 1 << 20,
                         .thread_count = 1,
                         .threads = threads,
                         .names = names};
    pk_wire_encode_goodbye(&e, &g, goodbye);
    pk_wire_encoder_free(&e);
}

/* A launcher's word: the program of pid 4242 on box was killed by signal 9. */
static const pk_wire_exit sample_exit = {.host = "box",
                                         .pid = 4242,
                                         .started_after_ns = 1700000000000000000,
                                         .status = "killed",
                                         .signal = 9};

#endif
