/*
 * aggregates.h — what the sqlite recorder keeps in memory about a run: the
 * symbol dictionary (record strings to small ids) and exact per-function,
 * per-call-path and per-thread aggregates built from every record, before
 * any filter. Drain thread only. The meaning of each number is in
 * docs/schema.md ("Aggregates: what the numbers mean").
 */
#ifndef PK_AGGREGATES_H
#define PK_AGGREGATES_H

#include "internal.h"

/* Which sums of an aggregate hold measured values (NULL in the store otherwise). */
enum pk_aggregate_measured {
    PK_MEASURED_RETURN = 1u << 0, /* some call completed: min and max exist */
    PK_MEASURED_ALLOC = 1u << 1,  /* bytes allocated and freed */
    PK_MEASURED_RSS = 1u << 2,    /* RSS growth */
};

typedef struct pk_symbol_entry {
    char *function;
    char *file;
    unsigned line;
} pk_symbol_entry;

/* Sums shared by functions and call-path nodes. */
typedef struct pk_time_sums {
    uint64_t calls;
    int64_t total_ns;
    int64_t self_ns;
    int64_t alloc_bytes;
    int64_t free_bytes;
    int64_t rss_growth;
    unsigned measured;
    bool dirty;
} pk_time_sums;

typedef struct pk_function_stats {
    pk_time_sums sums;
    uint64_t min_ns;
    uint64_t max_ns;
    int64_t self_alloc_bytes;
    int64_t self_free_bytes;
} pk_function_stats;

typedef struct pk_path_node {
    pk_time_sums sums;
    uint32_t parent; /* 0 for a root */
    uint32_t symbol;
    uint32_t depth;
    uint32_t recent_symbol[2]; /* the children found last, tried first */
    uint32_t recent_child[2];
} pk_path_node;

/* A call open on one thread. */
typedef struct pk_open_call {
    uint32_t symbol;
    uint32_t node;
    uint64_t rss;
    bool has_rss;
    uint64_t child_ns;
    int64_t child_alloc;
    int64_t child_free;
} pk_open_call;

typedef struct pk_thread_stats {
    uint64_t thread;
    uint64_t events;
    uint64_t calls;
    uint64_t written;
    bool dirty;
    pk_open_call *stack;
    size_t depth;
    size_t stack_capacity;
    uint32_t *active; /* open calls per symbol id: recursion counts once */
    size_t active_capacity;
    uint64_t last_block; /* the heap's: the block it allocated last, 0 once it frees one */
} pk_thread_stats;

/* uint64 key -> uint32 value, open addressing; key 0 means empty. */
typedef struct pk_id_map {
    uint64_t *keys;
    uint32_t *values;
    size_t capacity; /* a power of two */
    size_t count;
} pk_id_map;

typedef struct pk_symbol_cache_slot {
    const char *function;
    const char *file;
    unsigned line;
    uint32_t id;
} pk_symbol_cache_slot;

typedef struct pk_aggregates {
    /* symbols by id; slot 0 unused */
    pk_symbol_entry *symbols;
    size_t symbol_count, symbol_capacity;
    uint32_t *symbol_slots; /* content hash table of ids */
    size_t symbol_slot_capacity;
    pk_symbol_cache_slot *symbol_cache; /* by string pointers: the common case */

    pk_function_stats *functions; /* by symbol id */
    size_t function_capacity;
    pk_path_node *nodes; /* by node id; slot 0 unused */
    size_t node_count, node_capacity;
    pk_id_map children; /* (parent << 32 | symbol) -> node */
    pk_thread_stats *threads;
    size_t thread_count, thread_capacity;
    pk_id_map thread_index; /* thread id -> index + 1 */
    size_t last_thread;

    /* The record observed last, so that writing it looks nothing up again. */
    const pk_record *observed;
    uint64_t observed_index;
    uint32_t observed_symbol;

    /* what changed since pk_aggregates_clean */
    uint32_t *dirty_functions, *dirty_nodes, *dirty_threads;
    size_t dirty_function_count, dirty_node_count, dirty_thread_count;
    size_t dirty_function_capacity, dirty_node_capacity, dirty_thread_capacity;
} pk_aggregates;

PK_HIDDEN void pk_aggregates_init(pk_aggregates *a);
PK_HIDDEN void pk_aggregates_free(pk_aggregates *a);
/* The id of (function, file, line), from 1; new ids are symbol_count - 1. */
PK_HIDDEN uint32_t pk_aggregates_symbol(pk_aggregates *a, const char *function, const char *file,
                                        unsigned line);
/* A call or a return record: pk_aggregates_observe. */
PK_HIDDEN void pk_aggregates_observe_call(pk_aggregates *a, const pk_record *rec);
/* The thread's stats, created on first use (through pk_aggregates_thread). */
PK_HIDDEN pk_thread_stats *pk_aggregates_find_thread(pk_aggregates *a, uint64_t thread);

/* Records come in runs from one thread: the last one is checked inline. */
static inline pk_thread_stats *pk_aggregates_thread(pk_aggregates *a, uint64_t thread)
{
    if (a->last_thread < a->thread_count && a->threads[a->last_thread].thread == thread)
        return &a->threads[a->last_thread];
    return pk_aggregates_find_thread(a, thread);
}

/* The function's symbol id of a record, reusing the lookup observe made for it. */
static inline uint32_t pk_aggregates_function(pk_aggregates *a, const pk_record *rec)
{
    if (rec == a->observed && rec->index == a->observed_index)
        return a->observed_symbol;
    return pk_aggregates_symbol(a, rec->function, rec->file, rec->line);
}
/* Marks a thread changed (after its written count moved). */
PK_HIDDEN void pk_aggregates_touch_thread(pk_aggregates *a, pk_thread_stats *t);

/*
 * The thread of a record that counts as one of its events and nothing more
 * (a mark, an allocation), the record counted: with the thread at hand for
 * the heap (its open call path, its last block), one lookup per allocation
 * record where there were three (about 12 of the drainer's 300
 * instructions per allocation call).
 */
static inline pk_thread_stats *pk_aggregates_event_thread(pk_aggregates *a, const pk_record *rec)
{
    pk_thread_stats *t = pk_aggregates_thread(a, rec->thread);
    t->events++;
    if (!t->dirty)
        pk_aggregates_touch_thread(a, t);
    return t;
}

/*
 * Adds one record (every record of the run, in order) to the aggregates. A
 * mark is a moment inside a call, not a call: it counts as its thread's
 * event only, as an allocation does (the sqlite recorder's heap counts
 * those itself, through pk_aggregates_event_thread, heap.c); a sample is
 * the process's, not a thread's: the heap keeps them.
 */
static inline void pk_aggregates_observe(pk_aggregates *a, const pk_record *rec)
{
    if (rec->type == PK_EVENT_CALL || rec->type == PK_EVENT_RETURN)
        pk_aggregates_observe_call(a, rec);
    else if (rec->type != PK_EVENT_SAMPLE)
        pk_aggregates_event_thread(a, rec);
}

/* The call-path node of the innermost call open on the thread, 0 for none. */
static inline uint32_t pk_aggregates_thread_path(const pk_thread_stats *t)
{
    return t->depth ? t->stack[t->depth - 1].node : 0;
}

/* Forgets the dirty lists once their rows are stored. */
PK_HIDDEN void pk_aggregates_clean(pk_aggregates *a);

#endif /* PK_AGGREGATES_H */
