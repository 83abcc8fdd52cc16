/*
 * hot.h — the state shared by the hot path (hooks.c, ring.c) and the drain
 * thread (drain.c). Code that runs on a monitored thread takes no lock,
 * calls no malloc and no stdio, and is marked no_instrument_function.
 */
#ifndef PK_HOT_H
#define PK_HOT_H

#include <pikoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
};

/* Kinds that carry a payload (struct pk_profiler_payload) in the slots after them. */
#define PK_RAW_HAS_PAYLOAD (PK_RAW_PROFILER | PK_RAW_CHECKPOINT)

/*
 * One event as the hot path leaves it: 32 bytes, followed in the same slot
 * by the monitor's samples when the run samples. A ring slot is 32 bytes
 * (`function`) or a 64-byte cache line (monitors that sample): half the
 * cache lines to claim and to read when there is nothing to sample.
 */
struct pk_raw_event {
    uint64_t raw_time;
    uintptr_t fn;
    uintptr_t site;
    uint32_t kind;
    uint32_t payload;  /* bytes in the slots that follow (PK_RAW_HAS_PAYLOAD kinds) */
    uint64_t values[]; /* PK_SAMPLE_VALUES of them when the run samples */
};

#define PK_SLOT_SHIFT_PLAIN 5   /* 32-byte slots: no samples */
#define PK_SLOT_SHIFT_SAMPLED 6 /* 64-byte slots: event and samples */
#define PK_SLOT_MAX_BYTES (1u << PK_SLOT_SHIFT_SAMPLED)
_Static_assert(sizeof(struct pk_raw_event) == 1u << PK_SLOT_SHIFT_PLAIN, "a plain slot");
_Static_assert(sizeof(struct pk_raw_event) + PK_SAMPLE_VALUES * sizeof(uint64_t) ==
                   PK_SLOT_MAX_BYTES,
               "a sampled slot");

/* Ring states: owned by a live thread, left by an exited one, free to reuse. */
enum { PK_RING_OWNED = 1, PK_RING_EXITED = 2, PK_RING_FREE = 3 };

/*
 * A single-producer single-consumer ring. The producer (the owning thread)
 * writes head, the drain writes tail; each on its own cache line.
 */
struct pk_ring {
    _Alignas(64) _Atomic uint64_t head;
    uint64_t cached_tail;     /* producer's last view of tail */
    _Atomic uint64_t waits;   /* times the producer found the ring full */
    _Atomic uint64_t dropped; /* events lost to re-entry (signal handlers) */
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
    void *track;          /* the drain's per-thread state; only the drain touches it */
};

/* Slot i of r, for a run whose slots are 1 << shift bytes. */
PK_HOT_FN static inline struct pk_raw_event *pk_ring_slot(const struct pk_ring *r, uint64_t i,
                                                          unsigned shift)
{
    return (struct pk_raw_event *)(r->slots + ((i & r->mask) << shift));
}

/* Per-thread state, in initial-exec TLS so reaching it is one instruction. */
struct pk_thread {
    struct pk_ring *ring;
    uint32_t busy;  /* inside a hook (re-entry guard) or the drain thread */
    uint32_t scope; /* PK_MONITOR scopes open on this thread */
    uint32_t focus; /* focused functions open on this thread */
    uint32_t gone;  /* the thread's exit handler ran: record nothing more */
};

/* The addresses of focused functions: open addressing, read-only while running. */
struct pk_focus_set {
    uint64_t mask;
    uintptr_t slots[]; /* 0 = empty */
};

/* Process-wide state read on the hot path. */
struct pk_runtime {
    _Atomic uint32_t enabled; /* process-wide enables of the running monitor */
    _Atomic uint32_t running; /* a run is open and its drain is alive */
    void (*sample)(uint64_t values[PK_SAMPLE_VALUES]);
    const struct pk_focus_set *focus;
    _Atomic(struct pk_ring *) rings;
    uint64_t ring_capacity;
    pthread_key_t thread_key;
    _Atomic uint32_t doorbell; /* futex the drain sleeps on */
};

extern struct pk_runtime pk_rt;
extern PK_TLS struct pk_thread pk_self;

/* ring.c */
PK_HOT_FN struct pk_ring *pk_thread_attach(struct pk_thread *t);
PK_HOT_FN void pk_ring_wait(struct pk_ring *r, uint64_t head);
void pk_rings_init(void);
/* Wakes the drain thread (futex). */
PK_HOT_FN void pk_drain_kick(void);

/* The drain made room in r: wake its producer if it sleeps. */
void pk_ring_made_room(struct pk_ring *r);

#endif
