/*
 * ring.c — per-thread rings: taking one on a thread's first event, waiting
 * when one is full, giving it back when the thread exits. Runs on monitored
 * threads: no locks and no malloc (rings come from mmap, or from a region
 * shared with a drainer process; the registry is a lock-free list that only
 * grows; rings of exited threads are reused).
 */
#include "drain.h"
#include "hot.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_RING_EVENTS (1u << 16) /* 2 or 4 MiB of 32- or 64-byte slots per thread */
#define MIN_RING_EVENTS 64ull
#define MAX_RING_EVENTS (1ull << 30)

#define MAX_SHARED_RINGS 4096 /* rings a shared region holds (threads alive at once) */
#define MAX_SHARED_BYTES (1ull << 40)

static struct pk_shared in_process;
struct pk_runtime pk_rt = {.shared = &in_process};
PK_TLS struct pk_thread pk_self;

PK_HOT_FN void pk_drain_kick(void)
{
    atomic_fetch_add_explicit(&pk_rt.shared->doorbell, 1, memory_order_release);
    syscall(SYS_futex, &pk_rt.shared->doorbell, pk_futex_op(FUTEX_WAKE), 1, NULL, NULL, 0);
}

/* Called by pthread when a thread that recorded exits. */
PK_HOT_FN static void thread_exited(void *ring)
{
    struct pk_ring *r = ring;
    pk_self.gone = 1;
    pk_self.ring = NULL;
    /* Its name outlives it here: the store names the threads of a run. */
    if (prctl(PR_GET_NAME, r->name) != 0)
        r->name[0] = '\0';
    atomic_store_explicit(&r->state, PK_RING_EXITED, memory_order_release);
}

int pk_ring_events_parse(const char *text, uint64_t *events, pk_error *err)
{
    uint64_t n;
    if (pk_parse_uint("PIKOC_RING_EVENTS", text, &n, NULL) != 0 || n < MIN_RING_EVENTS ||
        n > MAX_RING_EVENTS)
        return pk_fail(err,
                       "PIKOC_RING_EVENTS '%s': expected a whole number of events from %llu to "
                       "%llu (rounded up to a power of two)",
                       text, (unsigned long long)MIN_RING_EVENTS,
                       (unsigned long long)MAX_RING_EVENTS);
    uint64_t p = MIN_RING_EVENTS;
    while (p < n)
        p <<= 1;
    *events = p;
    return 0;
}

/* PIKOC_RING_EVENTS, or the default (unset, empty, or bad: then said on stderr). */
static uint64_t ring_events_from_env(void)
{
    const char *text = pk_setting("PIKOC_RING_EVENTS");
    uint64_t n = DEFAULT_RING_EVENTS;
    pk_error err;
    if (text && pk_ring_events_parse(text, &n, &err) != 0) /* n is left as it was */
        pk_warn("%s; using rings of %u events", err.message, DEFAULT_RING_EVENTS);
    return n;
}

void pk_rings_init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    pk_rt.ring_capacity = ring_events_from_env();
    pthread_key_create(&pk_rt.thread_key, thread_exited);
}

static size_t ring_bytes(void)
{
    size_t header = (sizeof(struct pk_ring) + 63) & ~(size_t)63;
    return header + pk_rt.ring_capacity * PK_SLOT_MAX_BYTES;
}

/*
 * Rings the shared region holds: one per thread alive at once, up to
 * MAX_SHARED_RINGS, in no more than a quarter of the address space
 * RLIMIT_AS allows (private rings take theirs one by one, as threads need
 * them: the region must leave the program the rest).
 */
static uint64_t shared_ring_count(void)
{
    uint64_t bytes = MAX_SHARED_BYTES;
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        limit.rlim_cur / 4 < bytes)
        bytes = limit.rlim_cur / 4;
    uint64_t rings = bytes / ring_bytes();
    if (rings > MAX_SHARED_RINGS)
        rings = MAX_SHARED_RINGS;
    return rings ? rings : 1;
}

/*
 * Reserved, not committed (MAP_NORESERVE): a ring's pages are backed as it
 * fills them, as private rings are. Every ring lies in it, so the region is
 * the one mapping a drainer process needs to have inherited.
 */
int pk_rings_share(pk_error *err)
{
    if (pk_rt.shared != &in_process)
        return 0;
    uint64_t rings = shared_ring_count();
    size_t size = 64 + rings * ring_bytes();
    void *mem =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return pk_fail(err, "cannot map %zu bytes of shared rings: %s", size, strerror(errno));
    _Static_assert(sizeof(struct pk_shared) <= 64, "rings start a cache line in");
    struct pk_shared *shared = mem;
    shared->size = size;
    shared->ring_count = rings;
    shared->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    atomic_store(&shared->used, 64);
    pk_rt.shared = shared;
    return 0;
}

void pk_rings_unshare(void)
{
    struct pk_shared *shared = pk_rt.shared;
    if (shared == &in_process)
        return;
    pk_rt.shared = &in_process;
    pk_self.ring = NULL;
    pthread_setspecific(pk_rt.thread_key, NULL);
    munmap(shared, shared->size);
}

PK_HOT_FN static struct pk_ring *take_free_ring(void)
{
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        int expected = PK_RING_FREE;
        if (atomic_compare_exchange_strong_explicit(&r->state, &expected, PK_RING_OWNED,
                                                    memory_order_acq_rel, memory_order_relaxed))
            return r;
    }
    return NULL;
}

/*
 * A ring's memory: the next piece of the shared region, or a mapping of its
 * own. A full region stays full: `used` is not pushed past it on every
 * event of a thread that found no ring.
 */
PK_HOT_FN static void *ring_memory(size_t bytes)
{
    struct pk_shared *shared = pk_rt.shared;
    if (shared->size) {
        if (atomic_load_explicit(&shared->used, memory_order_relaxed) + bytes > shared->size)
            return NULL;
        uint64_t at = atomic_fetch_add_explicit(&shared->used, bytes, memory_order_relaxed);
        return at + bytes <= shared->size ? (char *)shared + at : NULL;
    }
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return mem == MAP_FAILED ? NULL : mem;
}

PK_HOT_FN static struct pk_ring *map_new_ring(void)
{
    uint64_t capacity = pk_rt.ring_capacity;
    size_t header = (sizeof(struct pk_ring) + 63) & ~(size_t)63;
    void *mem = ring_memory(ring_bytes());
    if (!mem)
        return NULL;
    struct pk_ring *r = mem;
    r->capacity = r->own_capacity = capacity;
    r->mask = r->own_mask = capacity - 1;
    r->slots = r->own_slots = (unsigned char *)mem + header;
    atomic_store_explicit(&r->state, PK_RING_OWNED, memory_order_relaxed);
    _Atomic(struct pk_ring *) *list = &pk_rt.shared->rings;
    struct pk_ring *head = atomic_load_explicit(list, memory_order_relaxed);
    do
        r->next = head;
    while (!atomic_compare_exchange_weak_explicit(list, &head, r, memory_order_release,
                                                  memory_order_relaxed));
    return r;
}

PK_HOT_FN struct pk_ring *pk_thread_attach(struct pk_thread *t)
{
    if (t->gone)
        return NULL;
    struct pk_ring *r = take_free_ring();
    if (!r)
        r = map_new_ring();
    if (!r) {
        /* Lost, but counted: the drain adds it to the run's dropped events. */
        atomic_fetch_add_explicit(&pk_rt.shared->ringless, 1, memory_order_relaxed);
        return NULL;
    }
    /* The drain emptied this ring before freeing it: head == tail. */
    r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    r->own_limit = r->own_capacity / 2;
    r->tid = (uint64_t)syscall(SYS_gettid);
    /* What names the thread if its process dies before it exits. */
    if (prctl(PR_GET_NAME, r->name) != 0)
        r->name[0] = '\0';
    atomic_fetch_add_explicit(&r->generation, 1, memory_order_release);
    pthread_setspecific(pk_rt.thread_key, r);
    t->ring = r;
    return r;
}

/*
 * Lossless: a full ring makes its producer wait for the drain. It sleeps on
 * a futex rather than spinning, so on a machine with few cores the drain
 * gets the CPU it needs to make room. The waiting flag and the tail are
 * both sequentially consistent: either the producer sees the new tail, or
 * the drain sees the flag and wakes it.
 */
/*
 * A drainer process killed on its own drains nothing more: once it is found
 * gone, producers stop waiting for it (their events are dropped), so the
 * program still runs to its end.
 */
PK_HOT_FN bool pk_drainer_gone(void)
{
    struct pk_shared *shared = pk_rt.shared;
    pid_t drainer = atomic_load_explicit(&shared->drainer, memory_order_relaxed);
    if (drainer <= 0)
        return drainer < 0;
    if (pk_drainer_alive(drainer))
        return false;
    atomic_store_explicit(&shared->drainer, -1, memory_order_relaxed);
    return true;
}

PK_HOT_FN static void ring_wait(struct pk_ring *r, uint64_t head)
{
    atomic_fetch_add_explicit(&r->waits, 1, memory_order_relaxed);
    for (;;) {
        uint32_t seen = atomic_load(&r->progress);
        atomic_store(&r->waiting, 1);
        r->cached_tail = atomic_load(&r->tail);
        if (head - r->cached_tail < r->capacity ||
            !atomic_load_explicit(&pk_rt.running, memory_order_acquire) || pk_drainer_gone())
            break; /* room, or nobody will drain: the caller drops the event */
        pk_drain_kick();
        struct timespec timeout = {0, 1000000}; /* a lost wake-up costs 1 ms, not a hang */
        syscall(SYS_futex, &r->progress, pk_futex_op(FUTEX_WAIT), seen, &timeout, NULL, 0);
    }
    atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
}

/*
 * Half full, the ring wakes the drain: a drain ahead of its threads waits
 * for their events to gather, up to 10 ms when they come slowly, and a
 * burst would otherwise fill the ring and stop its thread before then.
 * The next look at the tail is then at full as last seen (when the drain
 * has usually taken the half), so a thread reads the drain's line about
 * once every half ring.
 */
PK_HOT_FN bool pk_ring_filling(struct pk_ring *r, uint64_t last)
{
    r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (last - r->cached_tail >= r->own_capacity) {
        ring_wait(r, last);
        if (last - r->cached_tail >= r->own_capacity) {
            atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
            return false;
        }
    }
    uint64_t half = r->own_capacity / 2;
    if (last - r->cached_tail >= half) {
        pk_drain_kick();
        r->own_limit = r->own_capacity;
    } else {
        r->own_limit = half;
    }
    return true;
}

/*
 * A waiting producer is woken once half its ring is free, not at the first
 * free slot: it then writes half a ring before it waits again, instead of
 * sleeping and waking (two context switches) every few thousand events.
 */
void pk_ring_made_room(struct pk_ring *r)
{
    if (atomic_load(&r->waiting) &&
        atomic_load_explicit(&r->head, memory_order_relaxed) - atomic_load(&r->tail) <=
            r->capacity / 2) {
        atomic_fetch_add(&r->progress, 1);
        syscall(SYS_futex, &r->progress, pk_futex_op(FUTEX_WAKE), 1, NULL, NULL, 0);
    }
}
