/*
 * blocks.h — live heap blocks by address: an open-addressing hash table
 * (linear probing, backward-shift deletion) from a block's address to two
 * numbers its user chooses. The drain keeps one (sizes, for free records)
 * and the sqlite recorder one (call sites, for leaks and peaks). Not on the
 * hot path; not thread-safe. Lookups are inline: the drain makes about two
 * per allocation call, and a call into them cost more than the probe.
 */
#ifndef PK_BLOCKS_H
#define PK_BLOCKS_H

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct pk_block {
    uintptr_t address; /* 0: an empty slot */
    uint64_t a;
    uint64_t b;
} pk_block;

typedef struct pk_block_map {
    pk_block *slots;
    size_t capacity; /* a power of two, or 0 */
    size_t count;
} pk_block_map;

PK_HIDDEN void pk_block_map_free(pk_block_map *m);
/* Doubles the table (from empty: its first slots); blocks.c. */
PK_HIDDEN void pk_block_map_grow(pk_block_map *m);

/* Addresses are spread by a multiplicative hash; the table doubles at 1/2
 * full, so a probe stays short at millions of blocks. */
static inline size_t pk_block_map_home(const pk_block_map *m, uintptr_t address)
{
    return (size_t)(((uint64_t)address * 0x9E3779B97F4A7C15ull) >> 20) & (m->capacity - 1);
}

/*
 * The entry of address (never 0), added with a and b zero when missing
 * (*added says which): one probe where find-then-put takes two. Valid until
 * the next change of the map.
 */
static inline pk_block *pk_block_map_slot(pk_block_map *m, uintptr_t address, bool *added)
{
    if (__builtin_expect((m->count + 1) * 2 > m->capacity, 0))
        pk_block_map_grow(m);
    size_t mask = m->capacity - 1, i = pk_block_map_home(m, address);
    while (m->slots[i].address && m->slots[i].address != address)
        i = (i + 1) & mask;
    *added = !m->slots[i].address;
    if (*added) {
        m->count++;
        m->slots[i] = (pk_block){address, 0, 0};
    }
    return &m->slots[i];
}

/* Adds or replaces the block at address (never 0). */
static inline void pk_block_map_put(pk_block_map *m, uintptr_t address, uint64_t a, uint64_t b)
{
    bool added;
    pk_block *slot = pk_block_map_slot(m, address, &added);
    slot->a = a;
    slot->b = b;
}

/* The block at address, or NULL; valid until the next put or take. */
static inline pk_block *pk_block_map_find(const pk_block_map *m, uintptr_t address)
{
    if (!m->capacity)
        return NULL;
    size_t mask = m->capacity - 1;
    for (size_t i = pk_block_map_home(m, address);; i = (i + 1) & mask) {
        if (m->slots[i].address == address)
            return &m->slots[i];
        if (!m->slots[i].address)
            return NULL;
    }
}

/* Removes the block at address into *out; false when there is none. */
static inline bool pk_block_map_take(pk_block_map *m, uintptr_t address, pk_block *out)
{
    pk_block *found = pk_block_map_find(m, address);
    if (!found)
        return false;
    *out = *found;
    /* Backward shift: later blocks of the same probe run move into the hole. */
    size_t mask = m->capacity - 1, hole = (size_t)(found - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].address; i = (i + 1) & mask) {
        size_t home = pk_block_map_home(m, m->slots[i].address);
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].address = 0;
    m->count--;
    return true;
}

#endif
