/*
 * hot.h — the state shared by the hot path (hooks.c, ring.c) and the drain
 * thread (drain.c). Code that runs on a monitored thread takes no lock,
 * calls no malloc and no stdio, and is marked no_instrument_function.
 */
#ifndef PK_HOT_H
#define PK_HOT_H

#include <pikoc.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PK_LIKELY(x) __builtin_expect(!!(x), 1)
#define PK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PK_HOT_FN __attribute__((no_instrument_function))
#define PK_TLS __thread __attribute__((tls_model("initial-exec")))

/* What a raw event is. */
enum {
    PK_RAW_CALL = 0,
    PK_RAW_RETURN = 1,
    PK_RAW_ZONE = 2,       /* fn is a pk_zone descriptor, not code */
    PK_RAW_PROFILER = 4,   /* fn is a profiler's span id; a payload follows */
    PK_RAW_CHECKPOINT = 8, /* a profiler's mark; fn is its span id; a payload follows */
    PK_RAW_ALLOC = 16,     /* an allocation call (interpose.c): see struct pk_raw_event */
    PK_RAW_SAMPLE = 32,    /* RSS and VMS pages in values[0] and [1] (the alloc monitor's timer) */
    PK_RAW_STACK = 64,     /* with PK_RAW_ALLOC: the event names its stack (--stack N) */
    PK_RAW_STACK_FRAMES = 128,   /* with PK_RAW_STACK: a struct pk_stack_payload follows */
    PK_RAW_REALLOC_START = 256,  /* with PK_RAW_ALLOC: a realloc of values[OLD] begins; no record */
    PK_RAW_REALLOC_FAILED = 512, /* with PK_RAW_ALLOC: it failed, values[OLD] stays; no record */
    PK_RAW_UNLOAD = 1024,        /* dlclose unmapped the code from fn to site: forget its names */
    /* dlclose of the library at fn begins (site its bias, its path the payload); with
     * PK_RAW_RETURN, it ended */
    PK_RAW_CLOSE = 2048,
};

/* The longest path of a closing library its event carries (longer: none, the maps are read). */
#define PK_CLOSE_PATH_MAX 1024

/*
 * Kinds that carry a payload in the slots after them: a profiler's
 * (struct pk_profiler_payload), a closing library's path (PK_RAW_CLOSE).
 */
#define PK_RAW_HAS_PAYLOAD (PK_RAW_PROFILER | PK_RAW_CHECKPOINT | PK_RAW_CLOSE)

/*
 * The frames of a stack the first time its thread sends it
 * (PK_RAW_STACK_FRAMES), from the start of the slot after the allocation
 * event: how many, then the return addresses, innermost first (the call
 * site at [0]). Later events name the stack by its hash alone.
 */
struct pk_stack_payload {
    uint64_t frames;
    /* frames return addresses (uintptr_t) follow */
};

/*
 * One event as the hot path leaves it: 32 bytes, followed in the same slot
 * by the monitor's samples when the run samples. A ring slot is 32 bytes
 * (`function`) or a 64-byte cache line (monitors that sample, and every run
 * that records allocations): half the cache lines to claim and to read when
 * there is nothing to sample. An allocation call (PK_RAW_ALLOC) keeps the
 * block in fn, its enum pk_alloc_call in call and the PK_ALLOC_VALUE_*
 * below in values.
 */
struct pk_raw_event {
    uint64_t raw_time;
    uintptr_t fn;
    uintptr_t site;
    uint32_t kind;
    union {
        uint32_t payload; /* bytes in the slots that follow (PK_RAW_HAS_PAYLOAD kinds) */
        uint32_t call;    /* PK_RAW_ALLOC: its enum pk_alloc_call */
    };
    uint64_t values[]; /* PK_SAMPLE_VALUES of them when the run samples */
};

#define PK_SLOT_SHIFT_PLAIN 5   /* 32-byte slots: no samples */
#define PK_SLOT_SHIFT_SAMPLED 6 /* 64-byte slots: event and samples */
#define PK_SLOT_MAX_BYTES (1u << PK_SLOT_SHIFT_SAMPLED)
_Static_assert(sizeof(struct pk_raw_event) == 1u << PK_SLOT_SHIFT_PLAIN, "a plain slot");
_Static_assert(sizeof(struct pk_raw_event) + PK_SAMPLE_VALUES * sizeof(uint64_t) ==
                   PK_SLOT_MAX_BYTES,
               "a sampled slot");

/* Which allocation function an allocation event comes from (monitors/alloc.c names them). */
enum pk_alloc_call {
    PK_CALL_MALLOC,
    PK_CALL_CALLOC,
    PK_CALL_REALLOC,
    PK_CALL_REALLOCARRAY,
    PK_CALL_POSIX_MEMALIGN,
    PK_CALL_ALIGNED_ALLOC,
    PK_CALL_MEMALIGN,
    PK_CALL_VALLOC,
    PK_CALL_PVALLOC,
    PK_CALL_NEW,
    PK_CALL_NEW_ARRAY,
    PK_CALL_NEW_NOTHROW,
    PK_CALL_NEW_ARRAY_NOTHROW,
    PK_CALL_NEW_ALIGNED,
    PK_CALL_NEW_ARRAY_ALIGNED,
    PK_CALL_NEW_ALIGNED_NOTHROW,
    PK_CALL_NEW_ARRAY_ALIGNED_NOTHROW,
    PK_CALL_FREE, /* the first of the calls that free a block */
    PK_CALL_DELETE,
    PK_CALL_DELETE_ARRAY,
    PK_CALL_DELETE_SIZED,
    PK_CALL_DELETE_ARRAY_SIZED,
    PK_CALL_DELETE_NOTHROW,
    PK_CALL_DELETE_ARRAY_NOTHROW,
    PK_CALL_DELETE_ALIGNED,
    PK_CALL_DELETE_ARRAY_ALIGNED,
    PK_CALL_DELETE_SIZED_ALIGNED,
    PK_CALL_DELETE_ARRAY_SIZED_ALIGNED,
    PK_CALL_DELETE_ALIGNED_NOTHROW,
    PK_CALL_DELETE_ARRAY_ALIGNED_NOTHROW,
    PK_CALL_COUNT
};

/*
 * values[] of an allocation event. With PK_RAW_STACK, the stack's hash
 * takes the alignment's place, and the alignment moves into `call`: its
 * log2 + 1 (0 for the default) above PK_ALLOC_ALIGN_SHIFT.
 */
enum {
    PK_ALLOC_VALUE_SIZE,      /* bytes requested */
    PK_ALLOC_VALUE_OLD,       /* realloc: the block it replaces */
    PK_ALLOC_VALUE_ALIGNMENT, /* alignment asked for, 0 for the default */
    PK_ALLOC_VALUE_ASKED,     /* bytes asked of the allocator (pvalloc rounds up) */
    PK_ALLOC_VALUE_STACK = PK_ALLOC_VALUE_ALIGNMENT, /* PK_RAW_STACK: the stack's hash */
};
#define PK_ALLOC_CALL_MASK 0xffu
#define PK_ALLOC_ALIGN_SHIFT 8

/* Ring states: owned by a live thread, left by an exited one, free to reuse. */
enum { PK_RING_OWNED = 1, PK_RING_EXITED = 2, PK_RING_FREE = 3 };

/*
 * A single-producer single-consumer ring. The producer (the owning thread)
 * writes head, the drain writes tail; each on its own cache line.
 */
struct pk_ring {
    _Alignas(64) _Atomic uint64_t head;
    uint64_t cached_tail;     /* producer's last view of tail */
    uint64_t own_limit;       /* slots past cached_tail that send it to pk_ring_filling */
    _Atomic uint64_t waits;   /* times the producer found the ring full */
    _Atomic uint64_t dropped; /* events lost to re-entry (signal handlers) */
    /* The producer's copy of capacity, mask and slots below: an event then
     * touches this line of the ring alone, however cold it finds it. */
    uint64_t own_capacity;
    uint64_t own_mask;
    unsigned char *own_slots;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint32_t progress; /* futex: bumped by the drain when a waiting producer may go on */
    _Atomic uint32_t waiting;  /* the producer sleeps on progress */
    _Alignas(64) _Atomic int state;
    _Atomic uint32_t generation; /* bumped each time a thread takes the ring */
    uint64_t tid;
    uint64_t capacity; /* events, a power of two */
    uint64_t mask;
    struct pk_ring *next; /* registry list; set before publication, then fixed */
    unsigned char *slots; /* capacity slots of up to PK_SLOT_MAX_BYTES */
    char name[16];        /* the thread's name when it took the ring, then when it exited */
    void *track;          /* the drain's per-thread state; only the drain touches it */
};

_Static_assert(offsetof(struct pk_ring, own_slots) + sizeof(unsigned char *) <= 64,
               "the producer's fields share head's line");

/* The slot size of a run: a cache line when its hooks sample, half one otherwise. */
PK_HOT_FN static inline unsigned pk_slot_shift(void (*sample)(uint64_t *))
{
    return sample ? PK_SLOT_SHIFT_SAMPLED : PK_SLOT_SHIFT_PLAIN;
}

/* Slot i of r, for a run whose slots are 1 << shift bytes. */
PK_HOT_FN static inline struct pk_raw_event *pk_ring_slot(const struct pk_ring *r, uint64_t i,
                                                          unsigned shift)
{
    return (struct pk_raw_event *)(r->slots + ((i & r->mask) << shift));
}

/* The same, as the producer reaches it (its copy, on the line of head). */
PK_HOT_FN static inline struct pk_raw_event *pk_ring_own_slot(const struct pk_ring *r, uint64_t i,
                                                              unsigned shift)
{
    return (struct pk_raw_event *)(r->own_slots + ((i & r->own_mask) << shift));
}

/* Per-thread state, in initial-exec TLS so reaching it is one instruction. */
struct pk_thread {
    struct pk_ring *ring;
    uint32_t busy;  /* inside a hook (re-entry guard) or the drain thread */
    uint32_t scope; /* PK_MONITOR scopes open on this thread */
    uint32_t focus; /* focused functions open on this thread */
    uint32_t gone;  /* the thread's exit handler ran: record nothing more */
    uint32_t locks; /* pikoc's run or drain locks it takes or holds: an exec leaves the run */
};

/* The addresses of focused functions: open addressing, read-only while running. */
struct pk_focus_set {
    uint64_t mask;
    uintptr_t slots[]; /* 0 = empty */
};

/*
 * What the monitored threads and the drain share besides the rings: in this
 * process's memory, or at the start of a region shared with a drainer
 * process (src/drainer.c), from which every ring is then carved, so that
 * process sees the rings the program maps after it was forked. Futexes on
 * it are FUTEX_PRIVATE only when it is this process's (pk_futex_op).
 */
struct pk_shared {
    _Atomic(struct pk_ring *) rings; /* lock-free list that only grows */
    _Atomic uint32_t doorbell;       /* futex the drain sleeps on */
    _Atomic uint32_t ended;          /* the program ended its run (exit, _exit) */
    _Atomic pid_t drainer;           /* the drainer process; -1 once found gone; 0: none */
    _Atomic uint64_t used;           /* bytes of the region given out, this header included */
    _Atomic uint64_t ringless;       /* events of threads that found no ring */
    uint64_t size;                   /* bytes of the region; 0: rings are mapped one by one */
    uint64_t ring_count;             /* rings the region holds */
    uint64_t page_size;
};

/* Process-wide state read on the hot path. */
struct pk_runtime {
    _Atomic uint32_t enabled;     /* process-wide enables of the running monitor */
    _Atomic uint32_t allocations; /* the running monitor records allocation calls */
    _Atomic uint32_t restart;     /* a forked child starts its own run at its first allocation */
    _Atomic uint32_t running;     /* a run is open and its drain is alive */
    _Atomic uint32_t stack_depth; /* frames per allocation (--stack N), 0 for the call site only */
    _Atomic uint32_t stack_generation; /* bumped at each run start: threads resend their stacks */
    void (*sample)(uint64_t values[PK_SAMPLE_VALUES]);
    const struct pk_focus_set *focus;
    struct pk_shared *shared; /* the ring list and the doorbell */
    uint64_t ring_capacity;
    pthread_key_t thread_key;
};

extern struct pk_runtime pk_rt;
extern PK_TLS struct pk_thread pk_self;

/*
 * Around a pikoc lock the program's own thread takes (the run's, the
 * drain's): pk_self.locks counts it from before the lock until after the
 * unlock, so a signal handler on this thread sees it at every point
 * between (an exec from there leaves the run: monitor.c).
 */
static inline void pk_lock_taking(void)
{
    pk_self.locks++;
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void pk_lock_released(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    pk_self.locks--;
}

/* ring.c */
PK_HOT_FN struct pk_ring *pk_thread_attach(struct pk_thread *t);
/*
 * The producer of r reached its limit with the slots up to `last`: it
 * reads the tail again, waits while the ring is full, and wakes the drain
 * when the ring is half full. False when the ring stayed full (the event
 * is lost, and counted).
 */
PK_HOT_FN bool pk_ring_filling(struct pk_ring *r, uint64_t last);
/* The run's drainer process was found gone (it is then marked so): nothing drains. */
PK_HOT_FN bool pk_drainer_gone(void);
void pk_rings_init(void);
/*
 * PIKOC_RING_EVENTS's value: the events a thread's ring holds, 64 to 2^30,
 * rounded up to a power of two. -1 and err for anything else
 * (*events then untouched).
 */
int pk_ring_events_parse(const char *text, uint64_t *events, pk_error *err);
/*
 * Rings from now on come from one region shared with processes forked
 * after this (MAP_SHARED, reserved once, carved as threads need rings).
 */
int pk_rings_share(pk_error *err);
/* In a forked child: the rings of the parent's region are not its own. */
void pk_rings_unshare(void);
/*
 * Pages of the shared region no ring has taken yet: address space pikoc
 * reserved, which VMS samples leave out (private rings are mapped as
 * threads need them, and only those count).
 */
PK_HOT_FN static inline uint64_t pk_rings_unused_pages(void)
{
    const struct pk_shared *shared = pk_rt.shared;
    uint64_t used = atomic_load_explicit(&shared->used, memory_order_relaxed);
    return used < shared->size ? (shared->size - used) / shared->page_size : 0;
}

/* The first ring of the list; the list grows at its front. */
PK_HOT_FN static inline struct pk_ring *pk_rings_first(void)
{
    return atomic_load_explicit(&pk_rt.shared->rings, memory_order_acquire);
}

/*
 * A futex operation on the doorbell or a ring: process-private (the kernel
 * skips looking up the shared mapping) unless they lie in a region shared
 * with a drainer process.
 */
PK_HOT_FN static inline int pk_futex_op(int op)
{
    return pk_rt.shared->size ? op : op | FUTEX_PRIVATE_FLAG;
}
/* Wakes the drain thread (futex). */
PK_HOT_FN void pk_drain_kick(void);

/* The drain made room in r: wake its producer if it sleeps. */
void pk_ring_made_room(struct pk_ring *r);

/*
 * Claims this thread's next `slots` slots (1 for an event alone): its ring
 * and the first slot's head, or NULL (the thread has exited, or its ring
 * stayed full and the loss is counted). Fill them (pk_ring_slot,
 * pk_ring_put), then publish them together. Inlined into each hook: a call
 * and its saved registers cost a nanosecond.
 */
PK_HOT_FN static inline __attribute__((always_inline)) struct pk_ring *
pk_ring_claim_slots(struct pk_thread *t, uint64_t slots, uint64_t *head_out)
{
    struct pk_ring *r = t->ring;
    if (PK_UNLIKELY(!r)) {
        r = pk_thread_attach(t);
        if (!r)
            return NULL;
    }
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t last = head + slots - 1;
    if (PK_UNLIKELY(last - r->cached_tail >= r->own_limit) && !pk_ring_filling(r, last))
        return NULL;
    *head_out = head;
    return r;
}

/* One slot: the event alone. */
PK_HOT_FN static inline __attribute__((always_inline)) struct pk_ring *
pk_ring_claim(struct pk_thread *t, uint64_t *head_out)
{
    return pk_ring_claim_slots(t, 1, head_out);
}

PK_HOT_FN static inline __attribute__((always_inline)) void
pk_ring_publish_slots(struct pk_ring *r, uint64_t head, uint64_t slots)
{
    atomic_store_explicit(&r->head, head + slots, memory_order_release);
}

PK_HOT_FN static inline __attribute__((always_inline)) void pk_ring_publish(struct pk_ring *r,
                                                                            uint64_t head)
{
    pk_ring_publish_slots(r, head, 1);
}

/*
 * Copies bytes into the ring's slots from `slot` on, `offset` bytes in,
 * wrapping at the end of the ring: an event's payload in the slots after it.
 */
PK_HOT_FN static inline void pk_ring_put(struct pk_ring *r, uint64_t slot, unsigned shift,
                                         size_t offset, const void *data, size_t len)
{
    const char *from = data;
    size_t slot_bytes = (size_t)1 << shift;
    while (len > 0) {
        char *to = (char *)pk_ring_own_slot(r, slot + (offset >> shift), shift);
        size_t at = offset & (slot_bytes - 1);
        size_t n = slot_bytes - at < len ? slot_bytes - at : len;
        __builtin_memcpy(to + at, from, n);
        from += n;
        offset += n;
        len -= n;
    }
}

/* The drain's side of pk_ring_put: copies len bytes out of the slots from `slot` on. */
static inline void pk_ring_get(const struct pk_ring *r, uint64_t slot, unsigned shift,
                               size_t offset, void *data, size_t len)
{
    char *to = data;
    size_t slot_bytes = (size_t)1 << shift;
    while (len > 0) {
        const char *from = (const char *)pk_ring_slot(r, slot + (offset >> shift), shift);
        size_t at = offset & (slot_bytes - 1);
        size_t n = slot_bytes - at < len ? slot_bytes - at : len;
        __builtin_memcpy(to, from + at, n);
        to += n;
        offset += n;
        len -= n;
    }
}

/* Slots a payload of `bytes` takes after its event. */
PK_HOT_FN static inline uint64_t pk_payload_slots(size_t bytes, unsigned shift)
{
    return (bytes + ((size_t)1 << shift) - 1) >> shift;
}

#endif
