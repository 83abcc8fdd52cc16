/*
 * profiler.h — what the checkpoint profiler shares inside libpikoc: the
 * payload its records carry through the rings (hooks.c writes it on the
 * user's thread, drain.c reads it), and the span contexts that pikoc spans
 * also parses.
 */
#ifndef PK_PROFILER_H
#define PK_PROFILER_H

#include "internal.h"

#define PK_LABEL_MAX 255 /* longer labels and contexts are cut in records */

/*
 * What follows a profiler's raw event in the next ring slots: this head,
 * then message_len bytes of the message and label_len bytes of the label
 * (a mark's label, or the context a start continues), not NUL-terminated.
 */
struct pk_profiler_payload {
    uint64_t start_raw; /* the profiler's start */
    uint64_t last_raw;  /* its previous mark (a mark's delta starts there) */
    const pk_profiler_site *site;
    uint32_t message_len;
    uint32_t label_len;
};

/*
 * Stores a profiler's event: kind is PK_RAW_PROFILER (its start),
 * PK_RAW_PROFILER | PK_RAW_RETURN (its finish) or PK_RAW_CHECKPOINT, at
 * raw_time (the timestamp the profiler printed). Only while a monitor
 * records the thread; no lock, no malloc.
 */
PK_HIDDEN void pk_profiler_emit(uint32_t kind, const pk_profiler *p, uint64_t raw_time,
                                const char *label);

/* A context as pk_profiler_context writes it. */
typedef struct pk_context {
    uint64_t trace;
    uint64_t span;   /* the sender's span */
    int pid;         /* the sender's process */
    int64_t sent_ns; /* when it was written: wall ns on the sender's run clock */
    char host[256];  /* the sender's host */
} pk_context;

/* Fails with "profiler context 'x': expected pk1-TRACE-SPAN-PID-TIME-HOST (...)". */
PK_HIDDEN int pk_context_parse(const char *text, pk_context *out, pk_error *err);

/*
 * A CLOCK_MONOTONIC time as wall ns on the clock of the running monitor's
 * run (its start's wall time plus the monotonic time since), so that it
 * compares exactly with the run's record times; CLOCK_REALTIME now when no
 * run is open.
 */
PK_HIDDEN int64_t pk_wall_clock_ns(uint64_t monotonic_ns);

/* Tests only: the profiler reads this clock (nanoseconds) instead; NULL restores it. */
PK_HIDDEN void pk_profiler_test_clock(uint64_t (*now_ns)(void));

#endif
