/*
 * blocks.c — live heap blocks by address (see blocks.h). Addresses are
 * spread by a multiplicative hash; the table doubles at 1/2 full, so a probe
 * stays short at millions of blocks.
 */
#include "blocks.h"

#include <stdlib.h>

static size_t slot_of(const pk_block_map *m, uintptr_t address)
{
    return (size_t)(((uint64_t)address * 0x9E3779B97F4A7C15ull) >> 20) & (m->capacity - 1);
}

static void grow(pk_block_map *m)
{
    pk_block_map bigger = {.capacity = m->capacity ? m->capacity * 2 : 1024};
    bigger.slots = pk_xcalloc(bigger.capacity, sizeof *bigger.slots);
    for (size_t i = 0; i < m->capacity; i++)
        if (m->slots[i].address)
            pk_block_map_put(&bigger, m->slots[i].address, m->slots[i].a, m->slots[i].b);
    free(m->slots);
    *m = bigger;
}

void pk_block_map_free(pk_block_map *m)
{
    free(m->slots);
    *m = (pk_block_map){0};
}

pk_block *pk_block_map_slot(pk_block_map *m, uintptr_t address, bool *added)
{
    if ((m->count + 1) * 2 > m->capacity)
        grow(m);
    size_t i = slot_of(m, address);
    while (m->slots[i].address && m->slots[i].address != address)
        i = (i + 1) & (m->capacity - 1);
    *added = !m->slots[i].address;
    if (*added) {
        m->count++;
        m->slots[i] = (pk_block){address, 0, 0};
    }
    return &m->slots[i];
}

void pk_block_map_put(pk_block_map *m, uintptr_t address, uint64_t a, uint64_t b)
{
    bool added;
    pk_block *slot = pk_block_map_slot(m, address, &added);
    slot->a = a;
    slot->b = b;
}

pk_block *pk_block_map_find(const pk_block_map *m, uintptr_t address)
{
    if (!m->capacity)
        return NULL;
    for (size_t i = slot_of(m, address);; i = (i + 1) & (m->capacity - 1)) {
        if (m->slots[i].address == address)
            return &m->slots[i];
        if (!m->slots[i].address)
            return NULL;
    }
}

bool pk_block_map_take(pk_block_map *m, uintptr_t address, pk_block *out)
{
    pk_block *found = pk_block_map_find(m, address);
    if (!found)
        return false;
    *out = *found;
    /* Backward shift: later blocks of the same probe run move into the hole. */
    size_t mask = m->capacity - 1, hole = (size_t)(found - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].address; i = (i + 1) & mask) {
        size_t home = slot_of(m, m->slots[i].address);
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].address = 0;
    m->count--;
    return true;
}
