/*
 * blocks.c — live heap blocks by address (see blocks.h): what is not a
 * lookup, growing and freeing the table.
 */
#include "blocks.h"

#include <stdlib.h>

void pk_block_map_grow(pk_block_map *m)
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
