/*
 * alloc.h — what the drain asks the alloc monitor (monitors/alloc.c) about
 * each allocation event: its record type, its call's name, the usable size
 * of its block. Inline: the drain asks for every event, and a call per
 * question cost more than the answer. Drain thread only.
 */
#ifndef PK_ALLOC_H
#define PK_ALLOC_H

#include "hot.h"
#include "internal.h"

/* "malloc", "operator delete[]", ... by enum pk_alloc_call (hot.h). */
PK_HIDDEN extern const char *const pk_alloc_call_names[PK_CALL_COUNT];

static inline const char *pk_alloc_call_name(uint32_t call)
{
    return call < PK_CALL_COUNT ? pk_alloc_call_names[call] : "??";
}

/*
 * The record type of an allocation event. A realloc is one record: the old
 * block freed and the new one allocated at once (an alloc when there was no
 * old block, a free for realloc(p, 0)).
 */
static inline pk_event_type pk_alloc_event_type(uint32_t call, uintptr_t block, uintptr_t old)
{
    if (call >= PK_CALL_FREE)
        return PK_EVENT_FREE;
    if (call == PK_CALL_REALLOC || call == PK_CALL_REALLOCARRAY) {
        if (!old)
            return PK_EVENT_ALLOC;
        return block ? PK_EVENT_REALLOC : PK_EVENT_FREE;
    }
    return PK_EVENT_ALLOC;
}

/*
 * Usable sizes of unaligned requests below this, kept as they are first
 * asked: most requests are small, and a call into jemalloc for each was a
 * tenth of the drain's work per allocation. 0: not asked yet.
 */
#define PK_USABLE_CACHE_SIZES 4096
PK_HIDDEN extern uint32_t pk_alloc_usable_cache[PK_USABLE_CACHE_SIZES];

/* What jemalloc gives for a request that is not in the cache yet (or cannot be). */
PK_HIDDEN uint64_t pk_alloc_usable_size_asked(uint64_t asked, uint64_t alignment);

/* The usable size of a block asked for with that size and alignment. */
static inline uint64_t pk_alloc_usable_size(uint64_t asked, uint64_t alignment)
{
    if (alignment <= 1 && asked < PK_USABLE_CACHE_SIZES && pk_alloc_usable_cache[asked])
        return pk_alloc_usable_cache[asked];
    return pk_alloc_usable_size_asked(asked, alignment);
}

#endif
