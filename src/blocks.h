/*
 * blocks.h — live heap blocks by address: an open-addressing hash table
 * (linear probing, backward-shift deletion) from a block's address to two
 * numbers its user chooses. The drain keeps one (sizes, for free records)
 * and the sqlite recorder one (call sites, for leaks and peaks). Not on the
 * hot path; not thread-safe.
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
/* Adds or replaces the block at address (never 0). */
PK_HIDDEN void pk_block_map_put(pk_block_map *m, uintptr_t address, uint64_t a, uint64_t b);
/*
 * The entry of address, added with a and b zero when missing (*added says
 * which): one probe where find-then-put takes two. Valid until the next
 * change of the map.
 */
PK_HIDDEN pk_block *pk_block_map_slot(pk_block_map *m, uintptr_t address, bool *added);
/* The block at address, or NULL; valid until the next put or take. */
PK_HIDDEN pk_block *pk_block_map_find(const pk_block_map *m, uintptr_t address);
/* Removes the block at address into *out; false when there is none. */
PK_HIDDEN bool pk_block_map_take(pk_block_map *m, uintptr_t address, pk_block *out);

#endif
