/*
 * unload.c — dlclose without losing a library's names: pk_close_library
 * wraps the real dlclose for the two definitions of dlclose, the preloaded
 * interposer's (src/interpose.c) and the linked library's (src/dlclose.c).
 * Runs on the program's thread that closes: it may sleep (waiting for the
 * drain) and takes no lock of pikoc's; it allocates nothing but what
 * realpath may, as it resolves the library's path.
 *
 * A library's code goes with dlclose, and its names with it: the drain
 * names functions and call sites as it takes their events, a little after
 * the calls, and a library loaded later at the same addresses would answer
 * for them. So before the close, the thread's ring says a close begins
 * (PK_RAW_CLOSE: an address of the library, its bias and its file), on
 * which the drain keeps the library among the modules it names from until
 * the close ends (PK_RAW_CLOSE | PK_RAW_RETURN, after it), from its file
 * when the maps no longer have it: a library's destructors may be the
 * first of its code it meets, and by the time it takes their events the
 * library is unmapped, and maybe another loaded there. The drain is then
 * given time to take every event published so far (a second at most: a
 * stopped drainer must not hang the program). After the close, the ring
 * says which code went (PK_RAW_UNLOAD, one event per object the close
 * unmapped, its dependencies included, timed before the close), and the
 * drain forgets the names it had there. Any run: an instrumented library's
 * functions have names too, allocations or not. Events of other threads
 * that use a library while it closes (a race in the program) may still go
 * unnamed.
 */
#include "clock.h"
#include "hot.h"
#include "internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Loaded objects compared around a close (on the stack: 4 KiB each time); more are not. */
#define MAX_OBJECTS 256

struct loaded_code {
    size_t count;
    struct code_range {
        uintptr_t start, end;
    } ranges[MAX_OBJECTS];
};

bool pk_object_span(const struct dl_phdr_info *info, uintptr_t *start, uintptr_t *end)
{
    *start = *end = 0;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || header->p_memsz == 0)
            continue;
        uintptr_t low = (uintptr_t)info->dlpi_addr + header->p_vaddr;
        uintptr_t high = low + header->p_memsz;
        if (!*start || low < *start)
            *start = low;
        if (high > *end)
            *end = high;
    }
    return *start != 0;
}

static int note_code_range(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct loaded_code *loaded = data;
    struct code_range range;
    if (pk_object_span(info, &range.start, &range.end) && loaded->count < MAX_OBJECTS)
        loaded->ranges[loaded->count++] = range;
    return 0;
}

static bool still_loaded(const struct loaded_code *after, struct code_range range)
{
    for (size_t i = 0; i < after->count; i++)
        if (after->ranges[i].start == range.start && after->ranges[i].end == range.end)
            return true;
    return false;
}

/*
 * Waits until the drain has taken what every ring held as this began (a
 * second at most): yielding first (the drain takes a few passes, each
 * shorter than a sleep's least), then sleeping.
 */
static void wait_for_drain(void)
{
    struct timespec pause = {0, 20000};
    uint64_t deadline = pk_clock_monotonic_ns() + 1000000000u;
    pk_drain_kick();
    unsigned tries = 0;
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        while (atomic_load_explicit(&r->tail, memory_order_acquire) < head) {
            if (tries++ < 200) {
                sched_yield();
                continue;
            }
            if (!atomic_load_explicit(&pk_rt.running, memory_order_acquire) || pk_drainer_gone())
                return;
            nanosleep(&pause, NULL);
            if (pk_clock_monotonic_ns() >= deadline)
                return;
        }
    }
}

/* Marks the thread inside pikoc (or out again): a signal handler's hooks add nothing meanwhile. */
static void set_busy(struct pk_thread *t, bool busy)
{
    atomic_signal_fence(memory_order_seq_cst);
    t->busy = busy;
    atomic_signal_fence(memory_order_seq_cst);
}

/*
 * One event about code at `time`, with `len` bytes of text after it:
 * PK_RAW_CLOSE (the close of the library at fn begins: site its bias, the
 * text its path; with PK_RAW_RETURN, it ended) or PK_RAW_UNLOAD (the code
 * from fn to site went). The thread is busy.
 */
static void push_code_event(struct pk_thread *t, uint32_t kind, uint64_t time, uintptr_t fn,
                            uintptr_t site, const char *text, size_t len)
{
    if (!atomic_load_explicit(&pk_rt.running, memory_order_acquire))
        return;
    /* The run's slot size, as the hooks pick it (monitor.c). */
    unsigned shift = pk_slot_shift(pk_rt.sample);
    uint64_t slots = 1 + pk_payload_slots(len, shift), head;
    struct pk_ring *r = pk_ring_claim_slots(t, slots, &head);
    if (!r)
        return;
    struct pk_raw_event *ev = pk_ring_own_slot(r, head, shift);
    ev->raw_time = time;
    ev->fn = fn;
    ev->site = site;
    ev->kind = kind;
    ev->payload = (uint32_t)len;
    pk_ring_put(r, head + 1, shift, 0, text, len);
    pk_ring_publish_slots(r, head, slots);
}

int pk_close_library(void *handle, pk_dlclose_fn close_library)
{
    struct pk_thread *t = &pk_self;
    if (t->busy || !atomic_load_explicit(&pk_rt.running, memory_order_acquire))
        return close_library(handle);
    /* The library: an address in it (its dynamic section), its bias, its
     * file as the maps name it (links resolved; absolute: a drainer has a
     * directory of its own). */
    struct link_map *library = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &library) != 0)
        library = NULL;
    uintptr_t inside = library ? (uintptr_t)library->l_ld : 0;
    char path[PATH_MAX] = "";
    set_busy(t, true); /* realpath may allocate: pikoc's, not the program's */
    if (library && library->l_name && *library->l_name && !realpath(library->l_name, path))
        path[0] = '\0';
    size_t len = strnlen(path, sizeof path);
    push_code_event(t, PK_RAW_CLOSE, pk_clock_raw(), inside,
                    library ? (uintptr_t)library->l_addr : 0, path,
                    len <= PK_CLOSE_PATH_MAX ? len : 0);
    set_busy(t, false);
    wait_for_drain();
    struct loaded_code before = {0}, after = {0};
    dl_iterate_phdr(note_code_range, &before);
    uint64_t time = pk_clock_raw();
    /* Recorded as ever: the library's destructors free what it allocated. */
    int rc = close_library(handle);
    dl_iterate_phdr(note_code_range, &after);
    set_busy(t, true);
    for (size_t i = 0; i < before.count; i++)
        if (!still_loaded(&after, before.ranges[i]))
            push_code_event(t, PK_RAW_UNLOAD, time, before.ranges[i].start, before.ranges[i].end,
                            NULL, 0);
    push_code_event(t, PK_RAW_CLOSE | PK_RAW_RETURN, time, inside, 0, NULL, 0);
    set_busy(t, false);
    return rc;
}
