/*
 * heap.h — what the sqlite recorder keeps about a run's allocation records:
 * per call site counts and bytes, live blocks (for leaks), the moment of the
 * peak heap and what each site held then, temporary allocations and the
 * sizes asked for, and the same per stack with --stack N; stored as the
 * alloc_* tables of docs/schema.md, with the timer's samples and the heap
 * at each in memory_samples. Drain thread only.
 */
#ifndef PK_HEAP_H
#define PK_HEAP_H

#include "aggregates.h"
#include "blocks.h"
#include "internal.h"

#include <sqlite3.h>

/* What a call site or a stack allocated, freed and holds. */
typedef struct pk_heap_counts {
    uint64_t allocations, bytes, frees, freed_bytes, temporary;
    uint64_t live_blocks, live_bytes;
    uint64_t peak_bytes; /* live bytes at the last peak before `epoch` */
    uint64_t epoch;      /* the heap's peak count when live_bytes last changed */
    bool dirty;
} pk_heap_counts;

typedef struct pk_heap_site {
    uintptr_t call_site; /* return address */
    uint32_t path;       /* call_paths.id of the innermost recorded call, 0 for none */
    uint32_t caller;     /* symbols.id of (caller, caller_file, 0) */
    unsigned caller_line;
    /* The caller's name and file as a record last gave them: compared,
     * never read (a library loaded where a closed one was has other names
     * at the same addresses). */
    const char *caller_seen, *caller_file_seen;
    uint32_t next; /* the next site with the same call_site (another path), 0 for none */
    pk_heap_counts counts;
} pk_heap_site;

/* A stack (--stack N): its frames' symbols.id and lines, innermost first. */
typedef struct pk_heap_stack {
    const uintptr_t *key; /* the record's stack pointer: one per distinct stack */
    unsigned depth;
    uint32_t *symbols;
    unsigned *lines;
    bool stored; /* its frames are in alloc_frames */
    pk_heap_counts counts;
} pk_heap_stack;

/* A timer sample of RSS and VMS, with the heap as the records before it left it. */
typedef struct pk_heap_sample {
    uint64_t time_ns, rss, vms;
    uint64_t heap_bytes, heap_blocks;
} pk_heap_sample;

typedef struct pk_heap {
    pk_heap_site *sites; /* by id; slot 0 unused */
    size_t site_count, site_capacity;
    /* The sites found last, tried first, with their keys at hand (0: none). */
    struct pk_heap_last_site {
        uintptr_t call_site;
        uint32_t path;
        uint32_t id;
    } last_sites[2];
    unsigned long names_forgotten; /* pk_symbols_forgotten() when last_sites were found */
    pk_block_map site_index;       /* call_site -> first site id (b) */
    pk_heap_stack *stacks;         /* by id; slot 0 unused (no stack) */
    size_t stack_count, stack_capacity;
    uint32_t last_stack;
    pk_block_map stack_index;   /* stack pointer -> stack id (b) */
    pk_block_map blocks;        /* live block -> requested size (a), site id | stack id << 32 (b) */
    pk_block_map sizes;         /* sizes from 1024: allocations of that size (a), changed (b) */
    uint64_t small_sizes[1024]; /* allocations of each size below 1024 */
    bool small_dirty[1024];
    uint64_t allocations, reallocs, frees, unknown_frees, bytes, freed_bytes;
    uint64_t live_bytes, peak_bytes, peak_time_ns;
    uint64_t epoch;        /* new peaks so far */
    uint64_t stored_epoch; /* epoch when the site rows were last written */
    uint64_t peak_rss;     /* bytes: the largest sample, then the kernel's peak at the end */
    bool finished;         /* the run ended with a peak_rss known (the process's, or a sample's) */
    bool blocks_tracked;   /* the run records allocation calls: samples carry the heap */
    bool seen;             /* any allocation record */
    bool dirty;
    pk_heap_sample *samples; /* samples not stored yet */
    size_t sample_count, sample_capacity;
    sqlite3_stmt *st[6];
    pk_frame_resolver resolve_frame; /* a stack's frames: pk_symbols_frame unless set */
    void *resolve_user;
} pk_heap;

PK_HIDDEN void pk_heap_init(pk_heap *h);
/* Forgets the run's numbers (a new run starts); keeps the prepared statements. */
PK_HIDDEN void pk_heap_reset(pk_heap *h);
/*
 * Allocation and sample records, in order (none of them changes a); a
 * gives the call paths and the callers' symbol ids.
 */
PK_HIDDEN void pk_heap_observe(pk_heap *h, const pk_record *recs, size_t n, pk_aggregates *a);
/* The run ends: the process's peak resident set (pk_process_peak_rss, in the process). */
PK_HIDDEN void pk_heap_finish(pk_heap *h, uint64_t peak_rss);
/* Writes what changed into the open transaction; 0, or -1 (db's error). */
PK_HIDDEN int pk_heap_store(pk_heap *h, sqlite3 *db, int64_t run_id);
/* Finalizes the statements (before the connection closes) and frees everything. */
PK_HIDDEN void pk_heap_close(pk_heap *h);

#endif
