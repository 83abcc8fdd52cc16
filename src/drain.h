/*
 * drain.h — the drain thread: pops raw events from every ring, resolves
 * symbols, builds records and hands them to the loggers. One per process,
 * alive while a run is open.
 */
#ifndef PK_DRAIN_H
#define PK_DRAIN_H

#include "internal.h"

/* What the drain feeds while a run is open. */
struct pk_pipeline {
    pk_logger **loggers;
    size_t logger_count;
    void (*decode)(const uint64_t values[PK_SAMPLE_VALUES], pk_record *rec);
    unsigned slot_shift; /* ring slots are 1 << slot_shift bytes (hot.h) */
    uint64_t start_ns; /* CLOCK_MONOTONIC at the start of the run */
};

/* Drops events left in the rings by an earlier run, then starts the thread. */
int pk_drain_start(const struct pk_pipeline *pipeline, pk_error *err);
/* Returns once every event pushed before the call is recorded and flushed. */
void pk_drain_sync(void);
/* Drains everything, stops the thread and fills the run's totals. */
void pk_drain_stop(pk_run_totals *totals);
/* Around fork: park the drain between batches so the child inherits no lock it held. */
void pk_drain_fork_prepare(void);
void pk_drain_fork_parent(void);
/* In a forked child: the drain thread is gone; forget it without joining. */
void pk_drain_forget_after_fork(void);

#endif
