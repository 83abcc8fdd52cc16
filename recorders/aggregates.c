/*
 * aggregates.c — symbol ids and exact aggregates for the sqlite recorder
 * (see aggregates.h). Runs on the drain thread for every record of a run, so
 * the common path is a few table lookups: string pointers are cached (the
 * record strings are interned and stable), threads and tree children are in
 * hash maps, and nothing is allocated once the tables have grown.
 */
#include "aggregates.h"

#include <stdlib.h>
#include <string.h>

#define SYMBOL_CACHE_BITS 12
#define SYMBOL_CACHE_SIZE (1u << SYMBOL_CACHE_BITS)
#define FIRST_MAP_CAPACITY 64

/* ---- uint64 -> uint32 map ---------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void map_insert_slot(pk_id_map *m, uint64_t key, uint32_t value)
{
    size_t mask = m->capacity - 1;
    size_t i = mix64(key) & mask;
    while (m->keys[i] != 0)
        i = (i + 1) & mask;
    m->keys[i] = key;
    m->values[i] = value;
    m->count++;
}

static void map_grow(pk_id_map *m)
{
    pk_id_map old = *m;
    m->capacity = old.capacity ? old.capacity * 2 : FIRST_MAP_CAPACITY;
    m->keys = pk_xcalloc(m->capacity, sizeof *m->keys);
    m->values = pk_xcalloc(m->capacity, sizeof *m->values);
    m->count = 0;
    for (size_t i = 0; i < old.capacity; i++)
        if (old.keys[i] != 0)
            map_insert_slot(m, old.keys[i], old.values[i]);
    free(old.keys);
    free(old.values);
}

/* The value of key, or 0 when absent. */
static uint32_t map_get(const pk_id_map *m, uint64_t key)
{
    if (!m->capacity)
        return 0;
    size_t mask = m->capacity - 1;
    for (size_t i = mix64(key) & mask; m->keys[i] != 0; i = (i + 1) & mask)
        if (m->keys[i] == key)
            return m->values[i];
    return 0;
}

static void map_put(pk_id_map *m, uint64_t key, uint32_t value)
{
    if ((m->count + 1) * 2 > m->capacity)
        map_grow(m);
    map_insert_slot(m, key, value);
}

static void map_free(pk_id_map *m)
{
    free(m->keys);
    free(m->values);
    *m = (pk_id_map){0};
}

/* ---- symbols ------------------------------------------------------------------- */

void pk_aggregates_init(pk_aggregates *a)
{
    memset(a, 0, sizeof *a);
    a->symbol_cache = pk_xcalloc(SYMBOL_CACHE_SIZE, sizeof *a->symbol_cache);
    a->symbol_count = 1; /* ids start at 1 */
    a->node_count = 1;
    pk_grow(&a->symbols, &a->symbol_capacity, 0, sizeof *a->symbols);
    pk_grow(&a->nodes, &a->node_capacity, 0, sizeof *a->nodes);
    memset(&a->symbols[0], 0, sizeof a->symbols[0]);
    memset(&a->nodes[0], 0, sizeof a->nodes[0]);
}

static uint64_t symbol_hash(const char *function, const char *file, unsigned line)
{
    return mix64(pk_string_hash(function) ^ pk_string_hash(file) * 0x9e3779b97f4a7c15ull ^ line);
}

static bool symbol_is(const pk_symbol_entry *e, const char *function, const char *file,
                      unsigned line)
{
    return e->line == line && strcmp(e->function, function) == 0 && strcmp(e->file, file) == 0;
}

static void symbol_slot_insert(pk_aggregates *a, uint32_t id)
{
    const pk_symbol_entry *e = &a->symbols[id];
    size_t mask = a->symbol_slot_capacity - 1;
    size_t i = symbol_hash(e->function, e->file, e->line) & mask;
    while (a->symbol_slots[i] != 0)
        i = (i + 1) & mask;
    a->symbol_slots[i] = id;
}

static void symbol_slots_grow(pk_aggregates *a)
{
    free(a->symbol_slots);
    a->symbol_slot_capacity = a->symbol_slot_capacity ? a->symbol_slot_capacity * 2 : 256;
    a->symbol_slots = pk_xcalloc(a->symbol_slot_capacity, sizeof *a->symbol_slots);
    for (uint32_t id = 1; id < a->symbol_count; id++)
        symbol_slot_insert(a, id);
}

static uint32_t symbol_by_content(pk_aggregates *a, const char *function, const char *file,
                                  unsigned line)
{
    if (a->symbol_slot_capacity) {
        size_t mask = a->symbol_slot_capacity - 1;
        for (size_t i = symbol_hash(function, file, line) & mask; a->symbol_slots[i] != 0;
             i = (i + 1) & mask)
            if (symbol_is(&a->symbols[a->symbol_slots[i]], function, file, line))
                return a->symbol_slots[i];
    }
    pk_grow(&a->symbols, &a->symbol_capacity, a->symbol_count, sizeof *a->symbols);
    uint32_t id = (uint32_t)a->symbol_count++;
    a->symbols[id] = (pk_symbol_entry){pk_xstrdup(function), pk_xstrdup(file), line};
    if (a->symbol_count * 2 > a->symbol_slot_capacity)
        symbol_slots_grow(a);
    else
        symbol_slot_insert(a, id);
    return id;
}

uint32_t pk_aggregates_symbol(pk_aggregates *a, const char *function, const char *file,
                              unsigned line)
{
    /* One multiply over the name's pointer and the line (a function and its caller
     * entry, line 0, must not evict each other); the file is compared, not hashed. */
    uint64_t key = ((uint64_t)(uintptr_t)function ^ (uint64_t)line << 40) * 0x9e3779b97f4a7c15ull;
    pk_symbol_cache_slot *slot = &a->symbol_cache[key >> (64 - SYMBOL_CACHE_BITS)];
    if (slot->function == function && slot->file == file && slot->line == line && slot->id)
        return slot->id;
    uint32_t id = symbol_by_content(a, function, file, line);
    *slot = (pk_symbol_cache_slot){function, file, line, id};
    return id;
}

/* ---- dirty lists ----------------------------------------------------------------- */

static void mark(bool *dirty, uint32_t **list, size_t *count, size_t *capacity, uint32_t id)
{
    if (*dirty)
        return;
    *dirty = true;
    pk_grow(list, capacity, *count, sizeof **list);
    (*list)[(*count)++] = id;
}

/* Makes array[index] exist, zeroed: tables indexed by symbol id grow with the symbols. */
__attribute__((noinline)) static void grow_zeroed(void *array, size_t *capacity, size_t index,
                                                  size_t element_size)
{
    size_t old = *capacity;
    while (index >= *capacity)
        pk_grow(array, capacity, *capacity, element_size);
    memset(*(char **)array + old * element_size, 0, (*capacity - old) * element_size);
}

static inline pk_function_stats *function_of(pk_aggregates *a, uint32_t symbol)
{
    if (symbol >= a->function_capacity)
        grow_zeroed(&a->functions, &a->function_capacity, symbol, sizeof *a->functions);
    pk_function_stats *f = &a->functions[symbol];
    mark(&f->sums.dirty, &a->dirty_functions, &a->dirty_function_count, &a->dirty_function_capacity,
         symbol);
    return f;
}

static pk_path_node *node_of(pk_aggregates *a, uint32_t id)
{
    pk_path_node *n = &a->nodes[id];
    mark(&n->sums.dirty, &a->dirty_nodes, &a->dirty_node_count, &a->dirty_node_capacity, id);
    return n;
}

void pk_aggregates_touch_thread(pk_aggregates *a, pk_thread_stats *t)
{
    mark(&t->dirty, &a->dirty_threads, &a->dirty_thread_count, &a->dirty_thread_capacity,
         (uint32_t)(t - a->threads));
}

void pk_aggregates_clean(pk_aggregates *a)
{
    for (size_t i = 0; i < a->dirty_function_count; i++)
        a->functions[a->dirty_functions[i]].sums.dirty = false;
    for (size_t i = 0; i < a->dirty_node_count; i++)
        a->nodes[a->dirty_nodes[i]].sums.dirty = false;
    for (size_t i = 0; i < a->dirty_thread_count; i++)
        a->threads[a->dirty_threads[i]].dirty = false;
    a->dirty_function_count = a->dirty_node_count = a->dirty_thread_count = 0;
}

/* ---- threads and the tree ---------------------------------------------------------- */

pk_thread_stats *pk_aggregates_find_thread(pk_aggregates *a, uint64_t thread)
{
    /* tid 0 never names a thread, but keep 0 free as the map's empty key. */
    uint64_t key = thread + 1;
    uint32_t slot = map_get(&a->thread_index, key);
    if (!slot) {
        pk_grow(&a->threads, &a->thread_capacity, a->thread_count, sizeof *a->threads);
        memset(&a->threads[a->thread_count], 0, sizeof *a->threads);
        a->threads[a->thread_count].thread = thread;
        slot = (uint32_t)++a->thread_count;
        map_put(&a->thread_index, key, slot);
    }
    a->last_thread = slot - 1;
    return &a->threads[slot - 1];
}

static uint32_t new_child(pk_aggregates *a, uint32_t parent, uint32_t symbol, uint64_t key)
{
    pk_grow(&a->nodes, &a->node_capacity, a->node_count, sizeof *a->nodes);
    uint32_t id = (uint32_t)a->node_count++;
    a->nodes[id] = (pk_path_node){
        .parent = parent, .symbol = symbol, .depth = parent ? a->nodes[parent].depth + 1 : 0};
    map_put(&a->children, key, id);
    return id;
}

/*
 * A node's children are mostly called over and over, often two in turn
 * (step -> leaf, step -> twig): the last two found are tried first.
 */
static uint32_t child_of(pk_aggregates *a, uint32_t parent, uint32_t symbol)
{
    pk_path_node *p = &a->nodes[parent]; /* slot 0 stands for the roots' parent */
    if (p->recent_symbol[0] == symbol && p->recent_child[0])
        return p->recent_child[0];
    if (p->recent_symbol[1] == symbol && p->recent_child[1])
        return p->recent_child[1];
    uint64_t key = (uint64_t)parent << 32 | symbol;
    uint32_t id = map_get(&a->children, key);
    if (!id)
        id = new_child(a, parent, symbol, key);
    p = &a->nodes[parent];
    p->recent_symbol[1] = p->recent_symbol[0];
    p->recent_child[1] = p->recent_child[0];
    p->recent_symbol[0] = symbol;
    p->recent_child[0] = id;
    return id;
}

static inline uint32_t *active_of(pk_thread_stats *t, uint32_t symbol)
{
    if (symbol >= t->active_capacity)
        grow_zeroed(&t->active, &t->active_capacity, symbol, sizeof *t->active);
    return &t->active[symbol];
}

/* ---- calls and returns ------------------------------------------------------------- */

static void on_call(pk_aggregates *a, pk_thread_stats *t, const pk_record *rec, uint32_t symbol)
{
    /* A shallower call than the stack: frames a longjmp skipped, never completed. */
    while (t->depth > rec->depth)
        (*active_of(t, t->stack[--t->depth].symbol))--;
    uint32_t parent = t->depth ? t->stack[t->depth - 1].node : 0;
    uint32_t node = child_of(a, parent, symbol);
    t->calls++;
    function_of(a, symbol)->sums.calls++;
    node_of(a, node)->sums.calls++;
    (*active_of(t, symbol))++;
    pk_grow(&t->stack, &t->stack_capacity, t->depth, sizeof *t->stack);
    t->stack[t->depth++] = (pk_open_call){
        .symbol = symbol, .node = node, .rss = rec->rss, .has_rss = rec->flags & PK_RECORD_MEMORY};
}

/* What one completed call adds: to its function, to its path node, to its caller. */
typedef struct completed {
    uint64_t duration;
    int64_t self;
    bool alloc, rss, outermost;
    int64_t alloc_delta, free_delta, rss_growth;
} completed;

static void add_sums(pk_time_sums *s, const completed *c, bool inclusive)
{
    s->measured |= PK_MEASURED_RETURN;
    s->self_ns += c->self;
    if (!inclusive)
        return;
    s->total_ns += (int64_t)c->duration;
    if (c->alloc) {
        s->alloc_bytes += c->alloc_delta;
        s->free_bytes += c->free_delta;
        s->measured |= PK_MEASURED_ALLOC;
    }
    if (c->rss) {
        s->rss_growth += c->rss_growth;
        s->measured |= PK_MEASURED_RSS;
    }
}

static void add_to_function(pk_function_stats *f, const completed *c, const pk_open_call *call)
{
    if (!(f->sums.measured & PK_MEASURED_RETURN) || c->duration < f->min_ns)
        f->min_ns = c->duration;
    if (!(f->sums.measured & PK_MEASURED_RETURN) || c->duration > f->max_ns)
        f->max_ns = c->duration;
    if (c->alloc) {
        f->self_alloc_bytes += c->alloc_delta - call->child_alloc;
        f->self_free_bytes += c->free_delta - call->child_free;
        f->sums.measured |= PK_MEASURED_ALLOC;
    }
    add_sums(&f->sums, c, c->outermost);
}

static void on_return(pk_aggregates *a, pk_thread_stats *t, const pk_record *rec, uint32_t symbol)
{
    if (rec->depth >= t->depth)
        return; /* no open call at that depth: nothing to complete */
    while (t->depth > rec->depth + 1)
        (*active_of(t, t->stack[--t->depth].symbol))--;
    pk_open_call *call = &t->stack[--t->depth];
    uint32_t *active = active_of(t, call->symbol);
    (*active)--;
    if (call->symbol != symbol)
        return; /* not the call that is open: drop both */
    completed c = {
        .duration = rec->duration_ns,
        .self = (int64_t)(rec->duration_ns - call->child_ns),
        .alloc = rec->flags & PK_RECORD_ALLOC,
        .rss = call->has_rss && (rec->flags & PK_RECORD_MEMORY),
        .outermost = *active == 0,
        .alloc_delta = (int64_t)rec->alloc_delta,
        .free_delta = (int64_t)rec->free_delta,
        .rss_growth = (int64_t)(rec->rss - call->rss),
    };
    add_to_function(function_of(a, symbol), &c, call);
    add_sums(&node_of(a, call->node)->sums, &c, true);
    if (t->depth > 0) {
        pk_open_call *caller = &t->stack[t->depth - 1];
        caller->child_ns += c.duration;
        if (c.alloc) {
            caller->child_alloc += c.alloc_delta;
            caller->child_free += c.free_delta;
        }
    }
}

void pk_aggregates_observe_call(pk_aggregates *a, const pk_record *rec)
{
    pk_thread_stats *t = pk_aggregates_thread(a, rec->thread);
    t->events++;
    pk_aggregates_touch_thread(a, t);
    uint32_t symbol = pk_aggregates_symbol(a, rec->function, rec->file, rec->line);
    a->observed = rec;
    a->observed_index = rec->index;
    a->observed_symbol = symbol;
    if (rec->type == PK_EVENT_CALL)
        on_call(a, t, rec, symbol);
    else
        on_return(a, t, rec, symbol);
}

void pk_aggregates_free(pk_aggregates *a)
{
    for (size_t i = 1; i < a->symbol_count; i++) {
        free(a->symbols[i].function);
        free(a->symbols[i].file);
    }
    for (size_t i = 0; i < a->thread_count; i++) {
        free(a->threads[i].stack);
        free(a->threads[i].active);
    }
    free(a->symbols);
    free(a->symbol_slots);
    free(a->symbol_cache);
    free(a->functions);
    free(a->nodes);
    free(a->threads);
    free(a->dirty_functions);
    free(a->dirty_nodes);
    free(a->dirty_threads);
    map_free(&a->children);
    map_free(&a->thread_index);
    memset(a, 0, sizeof *a);
}
