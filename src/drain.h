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

/*
 * How much earlier than the step before it an allocation event's time may
 * be read (interpose.c reads it without waiting for the thread's loads):
 * the drain looks this far ahead for the other thread's event that must
 * come first (drain.c, "the order of events"). Pairs measured out of order
 * were 0 to 130 ns apart (tests/programs/allocs.c threads 4 200000); the
 * window stays short because a free of a block the run never saw allocated
 * (one from before it) cannot be told from such a pair: an allocation of
 * the same address on another thread within it is taken as that block's.
 */
#define PK_DRAIN_SKEW_NS 2000

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

/* ---- a drainer process (drainer.c) ---- */

/*
 * Whether runs of this process are drained by a process of their own
 * (pikoc run sets PIKOC_LAUNCHER_PIPE); takes pikoc run's pipe when it is
 * this process's to hand on.
 */
bool pk_drainer_configure(void);
/*
 * Forks the drainer, which records the run through the recorders of
 * `record` (PIKOC_RECORD's syntax), and waits until it has started the run
 * in them. The rings must be shared already (pk_rings_share).
 */
int pk_drainer_start(const struct pk_pipeline *pipeline, const pk_run_info *run, const char *record,
                     pk_error *err);
/* The program ended its run: returns once the drainer has recorded all of it. */
void pk_drainer_stop(void);
/*
 * Whether the drainer process `pid` still runs: asked by a producer that
 * waits for room in its ring (hot path: no lock, no malloc).
 */
bool pk_drainer_alive(pid_t pid);
/* True while the drainer is forked: pikoc's fork handlers then do nothing. */
bool pk_drainer_forking(void);
/*
 * In a forked child of the program (the parent's drainer and rings are not
 * its own), or when no run starts: lets go of the pipes and the rings.
 */
void pk_drainer_forget(void);

#endif
