/*
 * heap.c — allocation aggregates of the sqlite recorder (see heap.h and
 * docs/schema.md, "Allocations"). Each record updates its call site (and
 * its stack, with --stack N), the live blocks and the heap's size in O(1);
 * what each site held at the peak is kept lazily: a site copies its live
 * bytes aside just before it changes after a new peak, so a peak costs
 * nothing until a site moves. A timer sample is stored with the heap as
 * the records so far left it.
 */
#include "heap.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

enum { ST_SITE, ST_RUN, ST_SIZE, ST_SAMPLE, ST_STACK, ST_FRAME };

static const char *const statement_sql[] = {
    [ST_SITE] = "INSERT OR REPLACE INTO alloc_sites VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_RUN] = "INSERT OR REPLACE INTO alloc_runs VALUES "
               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_SIZE] = "INSERT OR REPLACE INTO alloc_sizes VALUES (?, ?, ?)",
    [ST_SAMPLE] = "INSERT OR REPLACE INTO memory_samples (run_id, time_ns, rss, vms, heap_bytes,"
                  " heap_blocks) VALUES (?, ?, ?, ?, ?, ?)",
    [ST_STACK] = "INSERT OR REPLACE INTO alloc_stacks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_FRAME] = "INSERT OR REPLACE INTO alloc_frames VALUES (?, ?, ?, ?, ?)",
};

void pk_heap_init(pk_heap *h)
{
    *h = (pk_heap){.resolve_frame = pk_symbols_frame};
    h->site_count = 1;
    h->stack_count = 1;
}

/* The statements outlive a run: only the run's numbers go. */
void pk_heap_reset(pk_heap *h)
{
    sqlite3_stmt *st[PK_ARRAY_SIZE(h->st)];
    memcpy(st, h->st, sizeof st);
    free(h->sites);
    free(h->samples);
    for (size_t i = 1; i < h->stack_count; i++) {
        free(h->stacks[i].symbols);
        free(h->stacks[i].lines);
    }
    free(h->stacks);
    pk_block_map_free(&h->stack_index);
    pk_block_map_free(&h->site_index);
    pk_block_map_free(&h->blocks);
    pk_block_map_free(&h->sizes);
    pk_heap_init(h);
    memcpy(h->st, st, sizeof st);
}

void pk_heap_close(pk_heap *h)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(h->st); i++)
        sqlite3_finalize(h->st[i]);
    memset(h->st, 0, sizeof h->st);
    pk_heap_reset(h);
}

/* ---- observing ------------------------------------------------------------------ */

/*
 * The common path of every allocation record is inlined into pk_heap_observe
 * (PK_INLINE): a call per step, with its saved registers, was a third of
 * the heap's work per record.
 */
#define PK_INLINE static inline __attribute__((always_inline))

static uint32_t find_site(pk_heap *h, const pk_record *rec, pk_aggregates *a, uint32_t path);

PK_INLINE uint32_t site_of(pk_heap *h, const pk_record *rec, pk_aggregates *a,
                           const pk_thread_stats *t)
{
    uint32_t path = pk_aggregates_thread_path(t);
    /* Allocations come in runs from one site or two in turn (a loop that
     * allocates and grows): the last two found first. */
    for (int i = 0; i < 2; i++) {
        const struct pk_heap_last_site *last = &h->last_sites[i];
        if (last->call_site == rec->call_site && last->path == path && last->id)
            return last->id;
    }
    h->last_sites[1] = h->last_sites[0];
    h->last_sites[0] = (struct pk_heap_last_site){rec->call_site, path, find_site(h, rec, a, path)};
    return h->last_sites[0].id;
}

/*
 * Whether a site of the record's call site and path is the record's: the
 * same caller, file and line (one address may hold another function once a
 * library was closed and another loaded there). By the names' pointers
 * first, which the drain's names keep; by the symbol when they differ.
 */
static bool same_caller(pk_heap_site *s, const pk_record *rec, pk_aggregates *a)
{
    if (s->caller_line != rec->caller_line)
        return false;
    if (s->caller_seen == rec->caller && s->caller_file_seen == rec->caller_file)
        return true;
    if (s->caller != pk_aggregates_symbol(a, rec->caller, rec->caller_file, 0))
        return false;
    s->caller_seen = rec->caller;
    s->caller_file_seen = rec->caller_file;
    return true;
}

/* The caller's symbol is looked up once, when its site is new. */
static uint32_t find_site(pk_heap *h, const pk_record *rec, pk_aggregates *a, uint32_t path)
{
    uintptr_t key = rec->call_site ? rec->call_site : 1; /* 0 marks an empty slot */
    pk_block *first = pk_block_map_find(&h->site_index, key);
    uint32_t id = first ? (uint32_t)first->b : 0;
    for (uint32_t i = id; i; i = h->sites[i].next)
        if (h->sites[i].path == path && same_caller(&h->sites[i], rec, a))
            return i;
    pk_grow(&h->sites, &h->site_capacity, h->site_count, sizeof *h->sites);
    uint32_t fresh = (uint32_t)h->site_count++;
    h->sites[fresh] = (pk_heap_site){
        .call_site = rec->call_site,
        .path = path,
        .caller = pk_aggregates_symbol(a, rec->caller, rec->caller_file, 0),
        .caller_line = rec->caller_line,
        .caller_seen = rec->caller,
        .caller_file_seen = rec->caller_file,
        .next = id,
        .counts.epoch = h->epoch,
    };
    pk_block_map_put(&h->site_index, key, 0, fresh);
    return fresh;
}

static uint32_t find_stack(pk_heap *h, const pk_record *rec, pk_aggregates *a);

/* 0 for a record without a stack; the last one found is tried first. */
PK_INLINE uint32_t stack_of(pk_heap *h, const pk_record *rec, pk_aggregates *a)
{
    if (!rec->stack)
        return 0;
    if (h->last_stack && h->stacks[h->last_stack].key == rec->stack)
        return h->last_stack;
    return find_stack(h, rec, a);
}

/* The stack's frames are looked up once, when it is new. */
static uint32_t find_stack(pk_heap *h, const pk_record *rec, pk_aggregates *a)
{
    bool added;
    pk_block *slot = pk_block_map_slot(&h->stack_index, (uintptr_t)rec->stack, &added);
    if (!added)
        return h->last_stack = (uint32_t)slot->b;
    pk_grow(&h->stacks, &h->stack_capacity, h->stack_count, sizeof *h->stacks);
    uint32_t id = (uint32_t)h->stack_count++;
    slot->b = id;
    pk_heap_stack *st = &h->stacks[id];
    *st = (pk_heap_stack){
        .key = rec->stack,
        .depth = rec->stack_depth,
        .symbols = pk_xcalloc(rec->stack_depth, sizeof *st->symbols),
        .lines = pk_xcalloc(rec->stack_depth, sizeof *st->lines),
        .counts.epoch = h->epoch,
    };
    for (unsigned i = 0; i < rec->stack_depth; i++) {
        pk_symbol frame;
        h->resolve_frame(rec->stack[i], &frame, h->resolve_user);
        st->symbols[i] = pk_aggregates_symbol(a, frame.function, frame.file, 0);
        st->lines[i] = frame.line;
    }
    return h->last_stack = id;
}

/* Live bytes are about to change: keep what they were at the last peak. */
static pk_heap_counts *touch(pk_heap *h, pk_heap_counts *c)
{
    if (c->epoch < h->epoch) {
        c->peak_bytes = c->live_bytes;
        c->epoch = h->epoch;
    }
    c->dirty = true;
    return c;
}

static void count_alloc(pk_heap *h, pk_heap_counts *c, uint64_t size)
{
    touch(h, c);
    c->allocations++;
    c->bytes += size;
    c->live_blocks++;
    c->live_bytes += size;
}

static void count_free(pk_heap *h, pk_heap_counts *c, uint64_t size, bool temporary)
{
    touch(h, c);
    c->frees++;
    c->freed_bytes += size;
    c->temporary += temporary;
    c->live_blocks--;
    c->live_bytes -= size;
}

static void count_size(pk_heap *h, uint64_t size)
{
    if (size < PK_ARRAY_SIZE(h->small_sizes)) {
        h->small_sizes[size]++;
        h->small_dirty[size] = true;
        return;
    }
    bool added;
    pk_block *b = pk_block_map_slot(&h->sizes, size, &added);
    b->a++;
    b->b = 1; /* changed: stored at the next commit */
}

/* The heap's live bytes reached `live` at time_ns: whether it is a new peak (the epoch moves). */
PK_INLINE bool reached(pk_heap *h, uint64_t live, uint64_t time_ns)
{
    if (live <= h->peak_bytes)
        return false;
    h->peak_bytes = live;
    h->peak_time_ns = time_ns;
    h->epoch++;
    return true;
}

/* An allocation's counts: its site's, its stack's, the heap's, its size's, the peak. */
PK_INLINE void count_allocation(pk_heap *h, const pk_record *rec, uint32_t site, uint32_t stack)
{
    count_alloc(h, &h->sites[site].counts, rec->size);
    if (stack)
        count_alloc(h, &h->stacks[stack].counts, rec->size);
    h->allocations++;
    h->bytes += rec->size;
    h->live_bytes += rec->size;
    count_size(h, rec->size);
    reached(h, h->live_bytes, rec->time_ns);
}

/* A free's counts, of a block of `size` from site and stack. */
PK_INLINE void count_freeing(pk_heap *h, uint32_t site, uint32_t stack, uint64_t size,
                             bool temporary)
{
    count_free(h, &h->sites[site].counts, size, temporary);
    if (stack)
        count_free(h, &h->stacks[stack].counts, size, temporary);
    h->freed_bytes += size;
    h->live_bytes -= size;
}

PK_INLINE void on_alloc(pk_heap *h, const pk_record *rec, pk_thread_stats *t, uint32_t site,
                        uint32_t stack)
{
    pk_block_map_put(&h->blocks, rec->pointer, rec->size, site | (uint64_t)stack << 32);
    t->last_block = rec->pointer;
    count_allocation(h, rec, site, stack);
}

/*
 * A block freed. Temporary, as heaptrack counts it: the thread allocated
 * nothing else between this block's allocation and its free.
 */
PK_INLINE void on_free(pk_heap *h, pk_thread_stats *t, uintptr_t address)
{
    pk_block block;
    bool temporary = t->last_block == address;
    t->last_block = 0;
    if (!pk_block_map_take(&h->blocks, address, &block)) {
        h->unknown_frees++;
        return;
    }
    count_freeing(h, (uint32_t)block.b, (uint32_t)(block.b >> 32), block.a, temporary);
}

/*
 * An allocation whose next record is its free, on the same thread (a
 * temporary block: most blocks of most programs, and every one of a
 * malloc/free loop): the pair is counted as on_alloc then on_free would
 * count it, but the block never enters the table (its put and take were
 * about 20 of the drainer's 320 instructions per allocation call). Not
 * when its address is live already (a lost free, which on_alloc's put
 * replaces), nor across the end of a batch (the next record is not here
 * yet).
 */
PK_INLINE bool temporary_pair(const pk_heap *h, const pk_record *alloc, const pk_record *next)
{
    return alloc->type == PK_EVENT_ALLOC && next->type == PK_EVENT_FREE &&
           next->pointer == alloc->pointer && next->thread == alloc->thread &&
           !pk_block_map_find(&h->blocks, alloc->pointer);
}

/*
 * A pair's counts at once, as count_alloc then count_free leave them: live
 * counts up and back; at a new peak (the block made it), what the counts
 * held then includes the block.
 */
static void count_pair(pk_heap *h, pk_heap_counts *c, uint64_t size, bool peak)
{
    touch(h, c);
    if (peak) {
        c->peak_bytes = c->live_bytes + size;
        c->epoch = h->epoch;
    }
    c->allocations++;
    c->bytes += size;
    c->frees++;
    c->freed_bytes += size;
    c->temporary++;
}

PK_INLINE void observe_pair(pk_heap *h, const pk_record *alloc, pk_aggregates *a)
{
    pk_thread_stats *t = pk_aggregates_event_thread(a, alloc);
    t->events++; /* the free's */
    t->last_block = 0;
    uint32_t site = site_of(h, alloc, a, t), stack = stack_of(h, alloc, a);
    uint64_t size = alloc->size;
    bool peak = reached(h, h->live_bytes + size, alloc->time_ns);
    count_pair(h, &h->sites[site].counts, size, peak);
    if (stack)
        count_pair(h, &h->stacks[stack].counts, size, peak);
    h->allocations++;
    h->frees++;
    h->bytes += size;
    h->freed_bytes += size;
    count_size(h, size);
}

PK_INLINE void observe(pk_heap *h, const pk_record *rec, pk_aggregates *a)
{
    pk_thread_stats *t;
    switch (rec->type) {
    case PK_EVENT_ALLOC:
        t = pk_aggregates_event_thread(a, rec);
        on_alloc(h, rec, t, site_of(h, rec, a, t), stack_of(h, rec, a));
        break;
    case PK_EVENT_REALLOC:
        /* As heaptrack reads it: the old block freed, then the new one allocated. */
        t = pk_aggregates_event_thread(a, rec);
        h->reallocs++;
        on_free(h, t, rec->old_pointer);
        on_alloc(h, rec, t, site_of(h, rec, a, t), stack_of(h, rec, a));
        break;
    case PK_EVENT_FREE:
        t = pk_aggregates_event_thread(a, rec);
        h->frees++;
        on_free(h, t, rec->pointer);
        break;
    case PK_EVENT_SAMPLE:
        /*
         * The heap now is what the records delivered before the sample left it:
         * a state the heap passed through, so no sample exceeds peak_bytes.
         */
        if (rec->flags & PK_RECORD_MEMORY) {
            pk_grow(&h->samples, &h->sample_capacity, h->sample_count, sizeof *h->samples);
            h->samples[h->sample_count++] = (pk_heap_sample){
                .time_ns = rec->time_ns,
                .rss = rec->rss,
                .vms = rec->vms,
                .heap_bytes = h->live_bytes,
                .heap_blocks = h->blocks.count,
            };
            h->peak_rss = rec->rss > h->peak_rss ? rec->rss : h->peak_rss;
        }
        break;
    default:
        break;
    }
}

/* A loop here, not in the caller: a call per record, with its saved
 * registers, was a fifth of the heap's work. */
void pk_heap_observe(pk_heap *h, const pk_record *recs, size_t n, pk_aggregates *a)
{
    h->seen = h->dirty = true;
    /* Code was unloaded since (the drain delivers what came before apart):
     * the sites found last may name another function at their address. */
    unsigned long forgotten = pk_symbols_forgotten();
    if (__builtin_expect(forgotten != h->names_forgotten, 0)) {
        h->names_forgotten = forgotten;
        memset(h->last_sites, 0, sizeof h->last_sites);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && temporary_pair(h, &recs[i], &recs[i + 1])) {
            observe_pair(h, &recs[i++], a);
            continue;
        }
        observe(h, &recs[i], a);
    }
}

void pk_heap_finish(pk_heap *h, uint64_t peak_rss)
{
    /* The kernel's high-water mark can lag a sample taken just before. */
    if (peak_rss > h->peak_rss)
        h->peak_rss = peak_rss;
    h->finished = h->peak_rss > 0; /* 0: neither the kernel's nor a sample: unknown */
    h->dirty = true;
}

/* ---- storing -------------------------------------------------------------------------- */

static int prepare(pk_heap *h, sqlite3 *db)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(h->st); i++)
        if (!h->st[i] && sqlite3_prepare_v3(db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                            &h->st[i], NULL) != SQLITE_OK)
            return -1;
    return 0;
}

/* Binds the eight counts from `column` on and runs the statement. */
static int bind_counts(const pk_heap *h, sqlite3_stmt *st, int column, const pk_heap_counts *c)
{
    pk_store_bind_u64(st, column, c->allocations);
    pk_store_bind_u64(st, column + 1, c->bytes);
    pk_store_bind_u64(st, column + 2, c->frees);
    pk_store_bind_u64(st, column + 3, c->freed_bytes);
    pk_store_bind_u64(st, column + 4, c->temporary);
    pk_store_bind_u64(st, column + 5, c->live_blocks);
    pk_store_bind_u64(st, column + 6, c->live_bytes);
    /* Unchanged since the last peak: it holds now what it held then. */
    pk_store_bind_u64(st, column + 7, c->epoch < h->epoch ? c->live_bytes : c->peak_bytes);
    return pk_store_step(st);
}

static int store_site(pk_heap *h, int64_t run_id, uint32_t id)
{
    const pk_heap_site *s = &h->sites[id];
    sqlite3_stmt *st = h->st[ST_SITE];
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, id);
    if (s->path)
        sqlite3_bind_int64(st, 3, s->path);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, s->caller);
    sqlite3_bind_int64(st, 5, s->caller_line);
    return bind_counts(h, st, 6, &s->counts);
}

/* A stack's counts, and its frames the first time it is stored. */
static int store_stack(pk_heap *h, int64_t run_id, uint32_t id)
{
    pk_heap_stack *s = &h->stacks[id];
    for (unsigned i = 0; !s->stored && i < s->depth; i++) {
        sqlite3_stmt *st = h->st[ST_FRAME];
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, id);
        sqlite3_bind_int64(st, 3, i);
        sqlite3_bind_int64(st, 4, s->symbols[i]);
        sqlite3_bind_int64(st, 5, s->lines[i]);
        if (pk_store_step(st) != 0)
            return -1;
    }
    s->stored = true;
    sqlite3_stmt *st = h->st[ST_STACK];
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, s->depth);
    return bind_counts(h, st, 4, &s->counts);
}

static int store_run(pk_heap *h, int64_t run_id)
{
    sqlite3_stmt *st = h->st[ST_RUN];
    sqlite3_bind_int64(st, 1, run_id);
    pk_store_bind_u64(st, 2, h->allocations);
    pk_store_bind_u64(st, 3, h->reallocs);
    pk_store_bind_u64(st, 4, h->frees);
    pk_store_bind_u64(st, 5, h->unknown_frees);
    pk_store_bind_u64(st, 6, h->bytes);
    pk_store_bind_u64(st, 7, h->freed_bytes);
    pk_store_bind_u64(st, 8, h->blocks.count);
    pk_store_bind_u64(st, 9, h->live_bytes);
    pk_store_bind_u64(st, 10, h->peak_bytes);
    pk_store_bind_u64(st, 11, h->peak_time_ns);
    if (h->finished)
        pk_store_bind_u64(st, 12, h->peak_rss);
    else
        sqlite3_bind_null(st, 12);
    pk_store_bind_u64(st, 13, h->site_count - 1);
    pk_store_bind_u64(st, 14, h->stack_count - 1);
    return pk_store_step(st);
}

static int store_size(pk_heap *h, int64_t run_id, uint64_t size, uint64_t count)
{
    sqlite3_stmt *st = h->st[ST_SIZE];
    sqlite3_bind_int64(st, 1, run_id);
    pk_store_bind_u64(st, 2, size);
    pk_store_bind_u64(st, 3, count);
    return pk_store_step(st);
}

int pk_heap_store(pk_heap *h, sqlite3 *db, int64_t run_id)
{
    if (!h->seen || !h->dirty)
        return 0;
    if (prepare(h, db) != 0)
        return -1;
    /* A new peak changes what every site held at it. */
    bool all = h->epoch != h->stored_epoch;
    for (uint32_t id = 1; id < h->site_count; id++) {
        if (!all && !h->sites[id].counts.dirty)
            continue;
        if (store_site(h, run_id, id) != 0)
            return -1;
        h->sites[id].counts.dirty = false;
    }
    for (uint32_t id = 1; id < h->stack_count; id++) {
        if (!all && !h->stacks[id].counts.dirty)
            continue;
        if (store_stack(h, run_id, id) != 0)
            return -1;
        h->stacks[id].counts.dirty = false;
    }
    for (size_t size = 0; size < PK_ARRAY_SIZE(h->small_sizes); size++) {
        if (h->small_dirty[size] && store_size(h, run_id, size, h->small_sizes[size]) != 0)
            return -1;
        h->small_dirty[size] = false;
    }
    for (size_t i = 0; i < h->sizes.capacity; i++) {
        pk_block *b = &h->sizes.slots[i];
        if (!b->address || !b->b)
            continue;
        if (store_size(h, run_id, b->address, b->a) != 0)
            return -1;
        b->b = 0;
    }
    for (size_t i = 0; i < h->sample_count; i++) {
        const pk_heap_sample *sample = &h->samples[i];
        sqlite3_stmt *st = h->st[ST_SAMPLE];
        sqlite3_bind_int64(st, 1, run_id);
        pk_store_bind_u64(st, 2, sample->time_ns);
        pk_store_bind_u64(st, 3, sample->rss);
        pk_store_bind_u64(st, 4, sample->vms);
        if (h->blocks_tracked) {
            pk_store_bind_u64(st, 5, sample->heap_bytes);
            pk_store_bind_u64(st, 6, sample->heap_blocks);
        }
        if (pk_store_step(st) != 0)
            return -1;
    }
    h->sample_count = 0;
    if (store_run(h, run_id) != 0)
        return -1;
    h->stored_epoch = h->epoch;
    h->dirty = false;
    return 0;
}
