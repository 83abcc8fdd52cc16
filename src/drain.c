/*
 * drain.c — the drain thread. It pops raw events from every thread's ring,
 * matches returns to calls, resolves symbols (cached), builds records and
 * pushes them through the loggers. Everything slow happens here, off the
 * monitored threads; this thread never records itself (pk_self.busy).
 */
#include "drain.h"

#include "../monitors/alloc.h"
#include "blocks.h"
#include "clock.h"
#include "hot.h"
#include "profiler.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BATCH_PER_RING 4096
#define RECORD_BATCH 64            /* records built before the loggers see them */
#define IDLE_WAIT_NS 1000000       /* poll the rings every 1 ms when idle */
#define AHEAD_BELOW 1024           /* a pass that took fewer slots found the drain ahead */
#define AHEAD_GATHER 4096          /* then the next pass waits for about this many */
#define AHEAD_WAIT_MIN_NS 100000   /* at the rate of the last pass, but at least this long */
#define AHEAD_WAIT_MAX_NS 10000000 /* and at most this long */
#define IDLE_FLUSH_NS 500000000ull /* flush buffered recorders after 0.5 s idle */

/* A thread whose ring the drain handed back, and the name it exited with. */
struct exited_thread {
    uint64_t tid;
    char name[16];
};

/* A ring in the merge, by the time of its next event. */
struct merge_entry {
    uint64_t time;
    struct pk_ring *ring;
};

/*
 * What a call record names: the function and its call site. Laid out as the
 * record's fields from function to caller_line, so one copy fills them.
 */
struct call_symbols {
    pk_symbol function;
    pk_symbol caller;
};
/* Whether a record's field lies where the pair's would, copied to rec->function. */
#define LAID_AS(record_field, pair_field)                                                          \
    (offsetof(pk_record, record_field) - offsetof(pk_record, function) ==                          \
     offsetof(struct call_symbols, pair_field))
_Static_assert(LAID_AS(file, function.file) && LAID_AS(line, function.line) &&
                   LAID_AS(caller, caller.function) && LAID_AS(caller_file, caller.file) &&
                   LAID_AS(caller_line, caller.line) &&
                   offsetof(pk_record, function) + sizeof(struct call_symbols) <=
                       offsetof(pk_record, thread),
               "pk_record holds a struct call_symbols from its function field on");

/* An open call on one thread, kept until its return. */
struct frame {
    uintptr_t fn;
    uint32_t zone; /* PK_RAW_ZONE, PK_RAW_PROFILER or 0 */
    unsigned flags;
    uint64_t ns; /* when it was called, CLOCK_MONOTONIC */
    /* The run's symbols of the call (a profiler's: own, below): a pointer,
     * so a call copies no names into its frame. */
    const struct call_symbols *symbols;
    uint64_t allocated;
    uint64_t freed;
    /* A profiler's counters at its last mark (its start before the first). */
    uint64_t mark_allocated;
    uint64_t mark_freed;
    /* A profiler's symbols come from its payload, not from its address. */
    struct call_symbols own;
};

/* The drain's view of one thread (one ring). */
struct track {
    struct frame *frames;
    size_t depth;
    size_t capacity;
    /* Where the drain is in the ring (see "the order of events" below). */
    uint64_t next;   /* the next event to process; the ring's tail when the pass ends */
    uint64_t seen;   /* the ring's head at the read before the last: events before are safe */
    uint64_t head;   /* the ring's head at the last read */
    uint64_t budget; /* slots this pass may still take from the ring */
    bool busy;       /* one of its events is being processed */
};

/*
 * The symbols of each (function, call site) pair, resolved once a run:
 * calls from one site to one function repeat, and one probe here replaces
 * two lookups in the symbol table. Open addressing (linear probing, half
 * full at most); the symbols stay where they are until the run ends, so
 * frames and records point at them. A zone's descriptor and a profiler's
 * site are data, never a function's code (and distinct objects), and no
 * function lies at 0: the pair alone says which kind of key it is.
 */
#define CALL_TABLE_FIRST_SLOTS 1024
enum call_key_kind { CALL_KEY_FUNCTION, CALL_KEY_ZONE, CALL_KEY_PROFILER, CALL_KEY_SITE };
struct call_entry {
    uintptr_t fn; /* a function, a zone descriptor, a profiler's site, or 0 (a site alone) */
    uintptr_t site;
    struct call_symbols *symbols; /* NULL: an empty slot */
};

static struct {
    pthread_t thread;
    struct call_entry *calls; /* the call table, calls_mask + 1 slots */
    size_t calls_mask;
    size_t calls_count;
    /* The last two allocation sites looked up, tried first: a program
     * allocates from a few sites in turn (a loop's malloc and its free). */
    uintptr_t last_sites[2];
    const struct call_symbols *last_site_symbols[2]; /* NULL: none yet */
    /* Symbols and stack frames forgotten when their code was unloaded
     * (PK_RAW_UNLOAD): open frames and records may still point at them,
     * and a new stack must not reuse their address. Freed with the table. */
    void **forgotten;
    size_t forgotten_count, forgotten_capacity;
    bool started;
    struct pk_pipeline pipeline;
    pk_run_totals totals; /* events: next_index, once the run ends */
    uint64_t next_index;  /* of the next record built */
    pk_block_map blocks;  /* live blocks: address -> requested size, usable size */
    /* Blocks a realloc started on (PK_RAW_REALLOC_START) whose end is not
     * processed yet: address -> its ring. */
    pk_block_map reallocs;
    /* The rings with events to merge, earliest next event first (a binary heap). */
    struct merge_entry *merge;
    size_t merge_count;
    size_t merge_capacity;
    /* Stacks (--stack N) by hash -> their frames (a, a uintptr_t array) and
     * count (b). Kept for the process: records point at the frames. */
    pk_block_map stacks;
    uint64_t last_stack_hash; /* the stack found last, tried first: allocations come in runs */
    const uintptr_t *last_stack;
    unsigned last_stack_depth;
    uint64_t page_size;
    /* The threads whose rings were handed back this run, by name: a ring
     * taken again by another thread no longer names its last one, whose
     * name a recorder may ask for later (the store names threads as it
     * commits). Kept past the drain's end, for the run's last commit. */
    struct exited_thread *exited;
    size_t exited_count;
    size_t exited_capacity;

    pthread_mutex_t lock; /* guards the sync counters and stopping */
    /* Held while the drain works; a fork takes it so the child never inherits
     * a lock (the allocator's, libdw's) that the drain held mid-work. */
    pthread_mutex_t work_lock;
    pthread_cond_t done_cond;
    uint64_t sync_requested;
    uint64_t sync_completed;
    bool stopping;
} drain = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work_lock = PTHREAD_MUTEX_INITIALIZER,
    .done_cond = PTHREAD_COND_INITIALIZER,
};

static __thread bool on_drain_thread;

/*
 * Records are handed to the loggers 64 at a time: one pass through the
 * plumbing (logger, filters, recorder) per batch rather than per record.
 * Apart from `drain`, so the compiler knows that building a record leaves
 * drain's fields alone and need not reload them after each store.
 */
static struct {
    pk_record records[RECORD_BATCH];
    pk_record *next; /* where the next record is built */
    /* Where next_record makes room: the batch's end, or `records` while the
     * slots ahead may hold an earlier batch's allocation fields. */
    pk_record *room_end;
    uint64_t to_blank; /* bit i: records[i] is to be blanked once delivered */
    size_t allocs;     /* allocation records built in the batch */
} batch = {.next = batch.records, .room_end = batch.records + RECORD_BATCH};

/* ---- symbols of calls ------------------------------------------------------ */

/*
 * Copies up to len bytes of this process's memory at address into to
 * through a pipe, which fails rather than faults where nothing is mapped;
 * a read that runs past a mapping's end is cut at the page's end.
 */
static size_t copy_here(const void *address, void *to, size_t len)
{
    int pipe_ends[2];
    if (pipe2(pipe_ends, O_CLOEXEC) != 0)
        return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t to_page_end = page - ((uintptr_t)address & (page - 1));
    ssize_t n = write(pipe_ends[1], address, len);
    if (n < 0 && len > to_page_end)
        n = write(pipe_ends[1], address, to_page_end);
    if (n > 0)
        n = read(pipe_ends[0], to, (size_t)n);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    return n > 0 ? (size_t)n : 0;
}

/*
 * Copies up to len bytes of the program's memory at address into to;
 * returns how many it could, without faulting. A drainer process reads the
 * program itself (process_vm_readv: it may have loaded modules since the
 * drainer was forked); where that is refused (the program gone, a seccomp
 * profile such as a container's default, Yama), its own copy of it.
 */
static size_t read_program(const void *address, void *to, size_t len)
{
    struct iovec here = {to, len}, there = {(void *)(uintptr_t)address, len};
    ssize_t n = process_vm_readv(pk_program(), &here, 1, &there, 1, 0);
    return n > 0 ? (size_t)n : copy_here(address, to, len);
}

/* A string of the program's, interned; `none` for NULL, "??" where nothing is mapped. */
static const char *program_string(const char *text, const char *none)
{
    char copy[256];
    if (!text)
        return pk_intern(none);
    size_t n = read_program(text, copy, sizeof copy - 1);
    copy[n] = '\0'; /* a longer one is cut */
    return pk_intern(n ? copy : "??");
}

/* A zone's names, read as the program has them (the descriptor is the program's). */
static void zone_symbols(const pk_zone *address, uintptr_t site, pk_symbol *function,
                         pk_symbol *caller)
{
    pk_zone zone = {0};
    if (read_program(address, &zone, sizeof zone) != sizeof zone)
        zone = (pk_zone){0};
    function->function = program_string(zone.name, "??");
    function->file = program_string(zone.file, "");
    function->line = zone.line;
    if (site) {
        pk_symbols_lookup_site(site, caller);
    } else {
        caller->function = program_string(zone.function, "??");
        caller->file = function->file;
        caller->line = zone.line;
    }
}

/*
 * A profiler site's file and line, and the function it lies in, read as the
 * program has them (the site is the program's, maybe in a module loaded
 * after the drainer was forked); the message names the profiler itself.
 */
static void profiler_site_symbols(const pk_profiler_site *address, pk_symbol *function,
                                  pk_symbol *caller)
{
    pk_profiler_site site = {0};
    if (address && read_program(address, &site, sizeof site) != sizeof site)
        site = (pk_profiler_site){0};
    function->file = program_string(site.file, "");
    function->line = site.line;
    caller->function = program_string(site.function, "??");
    caller->file = function->file;
    caller->line = site.line;
}

static size_t call_slot(uintptr_t fn, uintptr_t site)
{
    uint64_t h = ((uint64_t)fn * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)site * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h >> 32) & drain.calls_mask;
}

static void calls_free(void)
{
    for (size_t i = 0; drain.calls && i <= drain.calls_mask; i++)
        free(drain.calls[i].symbols);
    for (size_t i = 0; i < drain.forgotten_count; i++)
        free(drain.forgotten[i]);
    free(drain.forgotten);
    drain.forgotten = NULL;
    drain.forgotten_count = drain.forgotten_capacity = 0;
    free(drain.calls);
    drain.calls = NULL;
    drain.calls_mask = drain.calls_count = 0;
    drain.last_site_symbols[0] = drain.last_site_symbols[1] = NULL;
}

/* Kept until the table is freed: what unloaded code left (PK_RAW_UNLOAD). */
static void forget(void *memory)
{
    pk_grow(&drain.forgotten, &drain.forgotten_capacity, drain.forgotten_count,
            sizeof *drain.forgotten);
    drain.forgotten[drain.forgotten_count++] = memory;
}

static bool within(uintptr_t address, uintptr_t start, uintptr_t end)
{
    return address >= start && address < end;
}

/* An entry into its slot (the table has room for it). */
static void calls_place(struct call_entry entry)
{
    size_t i = call_slot(entry.fn, entry.site);
    while (drain.calls[i].symbols)
        i = (i + 1) & drain.calls_mask;
    drain.calls[i] = entry;
    drain.calls_count++;
}

/*
 * The table again in `slots` slots (a power of two), without the pairs
 * whose function or site lies from gone_start to gone_end (unloaded code:
 * their symbols are forgotten, not freed).
 */
static void calls_rebuild(size_t slots, uintptr_t gone_start, uintptr_t gone_end)
{
    struct call_entry *old = drain.calls;
    size_t old_slots = old ? drain.calls_mask + 1 : 0;
    drain.calls = pk_xcalloc(slots, sizeof *drain.calls);
    drain.calls_mask = slots - 1;
    drain.calls_count = 0;
    for (size_t i = 0; i < old_slots; i++) {
        if (!old[i].symbols)
            continue;
        if (within(old[i].fn, gone_start, gone_end) || within(old[i].site, gone_start, gone_end))
            forget(old[i].symbols);
        else
            calls_place(old[i]);
    }
    free(old);
}

static void calls_grow(void)
{
    size_t slots = drain.calls ? drain.calls_mask + 1 : 0;
    calls_rebuild(slots ? 2 * slots : CALL_TABLE_FIRST_SLOTS, 0, 0);
}

/* A pair met for the first time: resolved and added (the slow path). */
static __attribute__((noinline)) const struct call_symbols *add_call(uintptr_t fn, uintptr_t site,
                                                                     uint32_t kind)
{
    if (2 * (drain.calls_count + 1) > drain.calls_mask + 1)
        calls_grow();
    struct call_symbols *symbols = pk_xcalloc(1, sizeof *symbols);
    if (kind == CALL_KEY_ZONE)
        zone_symbols((const pk_zone *)fn, site, &symbols->function, &symbols->caller);
    else if (kind == CALL_KEY_PROFILER)
        profiler_site_symbols((const pk_profiler_site *)fn, &symbols->function, &symbols->caller);
    else if (kind == CALL_KEY_FUNCTION)
        pk_symbols_lookup(fn, &symbols->function);
    if (kind == CALL_KEY_FUNCTION || kind == CALL_KEY_SITE)
        pk_symbols_lookup_site(site, &symbols->caller);
    calls_place((struct call_entry){fn, site, symbols});
    return symbols;
}

/*
 * The symbols of a call of fn (a zone's descriptor, or 0 for a site alone)
 * from site; kind says how to resolve a pair met for the first time.
 */
static inline const struct call_symbols *call_symbols(uintptr_t fn, uintptr_t site, uint32_t kind)
{
    for (size_t i = call_slot(fn, site);; i = (i + 1) & drain.calls_mask) {
        const struct call_entry *e = &drain.calls[i];
        if (PK_LIKELY(e->fn == fn && e->site == site && e->symbols))
            return e->symbols;
        if (!e->symbols)
            return add_call(fn, site, kind);
    }
}

/* A call site alone (an allocation's), through the same table; the last two first. */
static inline const pk_symbol *site_symbols(uintptr_t site)
{
    for (int i = 0; i < 2; i++)
        if (drain.last_sites[i] == site && drain.last_site_symbols[i])
            return &drain.last_site_symbols[i]->caller;
    const struct call_symbols *found = call_symbols(0, site, CALL_KEY_SITE);
    drain.last_sites[1] = drain.last_sites[0];
    drain.last_site_symbols[1] = drain.last_site_symbols[0];
    drain.last_sites[0] = site;
    drain.last_site_symbols[0] = found;
    return &found->caller;
}

/* ---- building records -------------------------------------------------------- */

/* More room for frames: a profiler's frame points at its own symbols, which move. */
static __attribute__((noinline)) void grow_frames(struct track *tr)
{
    pk_grow(&tr->frames, &tr->capacity, tr->depth, sizeof *tr->frames);
    for (size_t i = 0; i < tr->depth; i++)
        if (tr->frames[i].zone == PK_RAW_PROFILER)
            tr->frames[i].symbols = &tr->frames[i].own;
}

static struct frame *push_frame(struct track *tr)
{
    if (PK_UNLIKELY(tr->depth == tr->capacity))
        grow_frames(tr);
    return &tr->frames[tr->depth++];
}

/* The open frame a return belongs to, popping frames a longjmp skipped. */
static struct frame *match_return(struct track *tr, uintptr_t fn, uint32_t zone)
{
    for (size_t i = tr->depth; i-- > 0;) {
        if (tr->frames[i].fn == fn && tr->frames[i].zone == zone) {
            drain.totals.unfinished += tr->depth - 1 - i;
            tr->depth = i;
            return &tr->frames[i];
        }
    }
    return NULL;
}

/*
 * The batch's records stay blank (blank_record) in every field a plain call
 * or return does not set itself, so building one writes its own 15 fields
 * and nothing else. A record that sets any other field (samples, allocation
 * deltas, a profiler's) marks its slot, which is blanked again once
 * delivered. An allocation record writes every field of its own
 * (clear_alloc_fields lists them), so only a record of another kind needs
 * them blank: they are cleared once delivered, or, after a batch of
 * allocations alone (the next is likely one too), just before a record of
 * another kind is built (make_room). Recorders see the same records as if
 * each were built from zero.
 */
static const pk_record blank_record = {.label = "", .alloc_function = ""};
_Static_assert(RECORD_BATCH <= 64, "one bit of to_blank per record of a batch");

static void blank_batch(void)
{
    for (size_t i = 0; i < RECORD_BATCH; i++)
        batch.records[i] = blank_record;
    batch.to_blank = batch.allocs = 0;
    batch.room_end = batch.records + RECORD_BATCH;
}

/* rec sets fields a plain call or return leaves blank: blank it after delivery. */
static inline void blank_after_delivery(const pk_record *rec)
{
    batch.to_blank |= 1ull << (rec - batch.records);
}

/*
 * An allocation record sets the fields a call sets and these: only these
 * are cleared for a record of another kind, rather than the whole record
 * (an allocation per record, this copy was a tenth of the drain's work).
 */
static void clear_alloc_fields(pk_record *rec)
{
    rec->alloc_function = blank_record.alloc_function;
    rec->pointer = rec->old_pointer = rec->size = rec->usable_size = 0;
    rec->stack = NULL;
    rec->stack_depth = 0;
}

/* Hands the records built so far to every logger, in order. */
static void deliver_pending(void)
{
    size_t n = (size_t)(batch.next - batch.records);
    if (n == 0)
        return;
    for (size_t i = 0; i < drain.pipeline.logger_count; i++)
        pk_logger_push_many(drain.pipeline.loggers[i], batch.records, n);
    batch.next = batch.records;
    for (uint64_t m = batch.to_blank; m; m &= m - 1)
        batch.records[__builtin_ctzll(m)] = blank_record;
    if (batch.allocs == n)
        batch.room_end = batch.records; /* stale: cleared by make_room when needed */
    else if (batch.allocs)
        for (size_t i = 0; i < n; i++)
            if (batch.records[i].type >= PK_EVENT_ALLOC &&
                batch.records[i].type <= PK_EVENT_REALLOC)
                clear_alloc_fields(&batch.records[i]);
    batch.to_blank = batch.allocs = 0;
}

/* The slots left in the batch, for a record other than an allocation: blank. */
static __attribute__((noinline)) void make_room(void)
{
    if (batch.next == batch.records + RECORD_BATCH)
        deliver_pending();
    if (batch.room_end != batch.records + RECORD_BATCH) {
        for (pk_record *rec = batch.next; rec < batch.records + RECORD_BATCH; rec++)
            clear_alloc_fields(rec);
        batch.room_end = batch.records + RECORD_BATCH;
    }
}

/* The slot the next record (not an allocation) is built in, blank; delivered with the batch. */
static pk_record *next_record(void)
{
    if (batch.next >= batch.room_end)
        make_room();
    return batch.next++;
}

/* The slot the next allocation record is built in: it sets every field of its own. */
static pk_record *next_alloc_record(void)
{
    if (batch.next == batch.records + RECORD_BATCH)
        deliver_pending();
    batch.allocs++;
    return batch.next++;
}

/* Fills index, thread and the time since the run started; returns the CLOCK_MONOTONIC ns. */
static inline uint64_t stamp(pk_record *rec, uint64_t raw_time, uint64_t tid)
{
    rec->index = drain.next_index++;
    rec->thread = tid;
    uint64_t ns = pk_clock_to_ns(raw_time);
    rec->time_ns = ns > drain.pipeline.start_ns ? ns - drain.pipeline.start_ns : 0;
    return ns;
}

/* Fills index, thread, time and samples; returns the event's CLOCK_MONOTONIC ns. */
static inline uint64_t fill_common(pk_record *rec, const struct pk_raw_event *ev, uint64_t tid)
{
    uint64_t ns = stamp(rec, ev->raw_time, tid);
    if (drain.pipeline.decode) {
        drain.pipeline.decode(ev->values, rec);
        blank_after_delivery(rec);
    }
    return ns;
}

/*
 * The fields of a call or return record that come from its frame, on a
 * blank record (next_record). Each field is assigned rather than the record
 * zeroed first: a 160-byte memset per event was half the drain's time.
 */
static void describe_frame(pk_record *rec, pk_event_type type, unsigned depth,
                           const struct frame *f, const struct pk_raw_event *ev)
{
    rec->type = type;
    rec->flags = 0;
    rec->depth = depth;
    memcpy(&rec->function, f->symbols, sizeof *f->symbols);
    rec->address = ev->fn;
    rec->call_site = ev->site;
    rec->duration_ns = 0;
}

/*
 * Calls and returns are inlined into the drain's loop (process_slot, in
 * take_run), which the compiler would not do on its own (returns are also
 * a profiler's): a call with its saved registers per event was 6% of the
 * drain's instructions.
 */
static inline __attribute__((always_inline)) void
process_call(struct track *tr, const struct pk_raw_event *ev, uint64_t tid)
{
    uint32_t zone = ev->kind & PK_RAW_ZONE;
    struct frame *f = push_frame(tr);
    f->fn = ev->fn;
    f->zone = zone;
    f->symbols = call_symbols(ev->fn, ev->site, zone ? CALL_KEY_ZONE : CALL_KEY_FUNCTION);

    pk_record *rec = next_record();
    describe_frame(rec, PK_EVENT_CALL, (unsigned)(tr->depth - 1), f, ev);
    f->ns = fill_common(rec, ev, tid);
    f->flags = rec->flags;
    if (rec->flags & PK_RECORD_ALLOC) { /* only then does the return read them */
        f->allocated = rec->allocated;
        f->freed = rec->freed;
    }
    drain.totals.calls++;
}

static inline __attribute__((always_inline)) void
process_return(struct track *tr, const struct pk_raw_event *ev, uint64_t tid)
{
    struct frame *f = match_return(tr, ev->fn, ev->kind & (PK_RAW_ZONE | PK_RAW_PROFILER));
    if (!f) {
        drain.totals.unmatched++;
        return;
    }
    pk_record *rec = next_record();
    describe_frame(rec, PK_EVENT_RETURN, (unsigned)tr->depth, f, ev);
    /* From converted times, so duration == return time - call time exactly. */
    uint64_t returned = fill_common(rec, ev, tid);
    rec->duration_ns = returned > f->ns ? returned - f->ns : 0;
    if ((rec->flags & f->flags & PK_RECORD_ALLOC) != 0) {
        rec->alloc_delta = rec->allocated - f->allocated;
        rec->free_delta = rec->freed - f->freed;
        blank_after_delivery(rec);
    } else {
        rec->flags &= ~(unsigned)PK_RECORD_ALLOC;
    }
    if (f->zone == PK_RAW_PROFILER) {
        rec->flags |= PK_RECORD_SPAN;
        rec->span = ev->fn;
        blank_after_delivery(rec);
    }
}

/* ---- profilers ---------------------------------------------------------------- */

/* A profiler event's payload, copied out of the ring (it may wrap around). */
struct payload {
    struct pk_profiler_payload head;
    const char *message; /* interned */
    const char *label;   /* interned */
};

/*
 * The slots after the event at `slot` that are not events: a profiler's
 * payload, an allocation's stack.
 */
static inline uint64_t payload_slots(const struct pk_ring *r, uint64_t slot,
                                     const struct pk_raw_event *ev, unsigned shift)
{
    uint32_t kind = ev->kind;
    if (PK_LIKELY(!(kind & (PK_RAW_HAS_PAYLOAD | PK_RAW_STACK_FRAMES))))
        return 0; /* one test for nearly every event (frames come with allocations only) */
    if (kind & PK_RAW_HAS_PAYLOAD)
        return pk_payload_slots(ev->payload, shift);
    const struct pk_stack_payload *head = (const void *)pk_ring_slot(r, slot + 1, shift);
    return pk_payload_slots(sizeof *head + head->frames * sizeof(uintptr_t), shift);
}

static void read_payload(const struct pk_ring *r, uint64_t first, unsigned shift,
                         const struct pk_raw_event *ev, struct payload *out)
{
    char bytes[sizeof out->head + PK_PROFILER_MESSAGE_SIZE + PK_LABEL_MAX + 2];
    size_t len = ev->payload < sizeof bytes ? ev->payload : sizeof bytes - 1;
    pk_ring_get(r, first, shift, 0, bytes, len);
    memcpy(&out->head, bytes, sizeof out->head);
    char *text = bytes + sizeof out->head;
    size_t message_len = out->head.message_len, label_len = out->head.label_len;
    /* The label follows the message; each gets its terminator in turn. */
    char label[PK_LABEL_MAX + 1];
    memcpy(label, text + message_len, label_len);
    label[label_len] = '\0';
    text[message_len] = '\0';
    out->message = pk_intern(text);
    out->label = pk_intern(label);
}

/* The frame of an open profiler on this thread, or NULL (it began before the run). */
static struct frame *profiler_frame(struct track *tr, uintptr_t span, size_t *depth)
{
    for (size_t i = tr->depth; i-- > 0;) {
        if (tr->frames[i].fn == span && tr->frames[i].zone == PK_RAW_PROFILER) {
            *depth = i;
            return &tr->frames[i];
        }
    }
    return NULL;
}

/* A profiler's names: its message, and its site's (once a run per site, as zones). */
static void profiler_symbols(const struct payload *pl, pk_symbol *function, pk_symbol *caller)
{
    uintptr_t site = (uintptr_t)pl->head.site;
    if (site) {
        const struct call_symbols *known = call_symbols(site, 0, CALL_KEY_PROFILER);
        *function = known->function;
        *caller = known->caller;
    } else {
        profiler_site_symbols(NULL, function, caller);
    }
    function->function = pl->message;
}

/* A profiler's start: a call of its message, carrying the context it continues. */
static void process_profiler_start(struct track *tr, const struct pk_raw_event *ev,
                                   const struct payload *pl, uint64_t tid)
{
    struct frame *f = push_frame(tr);
    f->fn = ev->fn;
    f->zone = PK_RAW_PROFILER;
    profiler_symbols(pl, &f->own.function, &f->own.caller);
    f->symbols = &f->own;
    pk_record *rec = next_record();
    blank_after_delivery(rec);
    describe_frame(rec, PK_EVENT_CALL, (unsigned)(tr->depth - 1), f, ev);
    f->ns = fill_common(rec, ev, tid);
    rec->flags |= PK_RECORD_SPAN;
    rec->span = ev->fn;
    rec->label = pl->label;
    f->flags = rec->flags;
    f->allocated = f->mark_allocated = rec->allocated;
    f->freed = f->mark_freed = rec->freed;
    drain.totals.calls++;
}

/*
 * A mark: a checkpoint one level inside its profiler. Its times come from the
 * payload (what the profiler printed); its allocation delta needs the
 * profiler's frame, so a profiler begun before the run has none.
 */
static void process_checkpoint(struct track *tr, const struct pk_raw_event *ev,
                               const struct payload *pl, uint64_t tid)
{
    size_t at = tr->depth;
    struct frame *f = profiler_frame(tr, ev->fn, &at);
    struct frame loose = {.fn = ev->fn, .zone = PK_RAW_PROFILER, .symbols = &loose.own};
    if (!f)
        profiler_symbols(pl, &loose.own.function, &loose.own.caller);
    pk_record *rec = next_record();
    blank_after_delivery(rec);
    describe_frame(rec, PK_EVENT_CHECKPOINT, (unsigned)(f ? at + 1 : tr->depth), f ? f : &loose,
                   ev);
    uint64_t now = fill_common(rec, ev, tid);
    uint64_t last = pk_clock_to_ns(pl->head.last_raw), first = pk_clock_to_ns(pl->head.start_raw);
    rec->duration_ns = now > last ? now - last : 0;
    rec->total_ns = now > first ? now - first : 0;
    rec->flags |= PK_RECORD_SPAN;
    rec->span = ev->fn;
    rec->label = pl->label;
    if (f && (rec->flags & f->flags & PK_RECORD_ALLOC)) {
        rec->alloc_delta = rec->allocated - f->mark_allocated;
        rec->free_delta = rec->freed - f->mark_freed;
        f->mark_allocated = rec->allocated;
        f->mark_freed = rec->freed;
    } else {
        rec->flags &= ~(unsigned)PK_RECORD_ALLOC;
    }
}

static void process_profiler(struct pk_ring *r, uint64_t slot, struct track *tr,
                             const struct pk_raw_event *ev)
{
    struct payload pl;
    read_payload(r, slot + 1, drain.pipeline.slot_shift, ev, &pl);
    if (ev->kind & PK_RAW_CHECKPOINT)
        process_checkpoint(tr, ev, &pl, r->tid);
    else if (ev->kind & PK_RAW_RETURN)
        process_return(tr, ev, r->tid);
    else
        process_profiler_start(tr, ev, &pl, r->tid);
}

/* ---- allocation events ------------------------------------------------------- */

static bool finish_realloc(uintptr_t address);

/* What take_ahead looks for: an event that gives a block up, or one that hands it out. */
enum block_step { GIVES_UP, HANDS_OUT };
static bool take_ahead(uintptr_t address, uint64_t time, enum block_step step);

/*
 * A block handed out at `time`. A realloc on another thread may have given
 * it back before that realloc's end was processed: that end comes first
 * then; and the free that gave it back may have a time a little later than
 * this one's: it comes first too (see "the order of events"). A block still
 * live after that lost its free to what is not recorded
 * (docs/allocations.md): the new one replaces it.
 */
static inline __attribute__((always_inline)) void put_block(uintptr_t address, uint64_t size,
                                                            uint64_t usable, uint64_t time)
{
    if (drain.reallocs.count)
        finish_realloc(address);
    bool added;
    pk_block *b = pk_block_map_slot(&drain.blocks, address, &added);
    if (!added && take_ahead(address, time, GIVES_UP)) {
        if (drain.reallocs.count)
            finish_realloc(address);
        b = pk_block_map_slot(&drain.blocks, address, &added);
    }
    b->a = size;
    b->b = usable;
}

/*
 * Takes the live block at address into *out. One not live may be an
 * allocation on another thread whose time is a little later than `time`:
 * that comes first then.
 */
static inline __attribute__((always_inline)) bool take_block(uintptr_t address, uint64_t time,
                                                             pk_block *out)
{
    return pk_block_map_take(&drain.blocks, address, out) ||
           (take_ahead(address, time, HANDS_OUT) && pk_block_map_take(&drain.blocks, address, out));
}

/*
 * The stack the allocation event at `slot` names (PK_RAW_STACK): by its hash,
 * its frames in the slots after it the first time its thread sends it.
 */
static const uintptr_t *stack_of(const struct pk_ring *r, uint64_t slot,
                                 const struct pk_raw_event *ev, unsigned *depth)
{
    uint64_t hash = ev->values[PK_ALLOC_VALUE_STACK];
    if (hash == drain.last_stack_hash) {
        *depth = drain.last_stack_depth;
        return drain.last_stack;
    }
    unsigned shift = drain.pipeline.slot_shift;
    bool added;
    pk_block *known = pk_block_map_slot(&drain.stacks, hash, &added);
    if (added) {
        struct pk_stack_payload head = {0};
        if (ev->kind & PK_RAW_STACK_FRAMES)
            pk_ring_get(r, slot + 1, shift, 0, &head, sizeof head);
        if (head.frames == 0 || head.frames > PK_STACK_MAX) { /* never sent: cannot be */
            pk_block dropped;
            pk_block_map_take(&drain.stacks, hash, &dropped);
            *depth = 0;
            return NULL;
        }
        uintptr_t *frames = pk_xcalloc(head.frames, sizeof *frames);
        pk_ring_get(r, slot + 1, shift, sizeof head, frames, head.frames * sizeof *frames);
        known->a = (uintptr_t)frames;
        known->b = head.frames;
    }
    drain.last_stack_hash = hash;
    drain.last_stack = (const uintptr_t *)(uintptr_t)known->a;
    drain.last_stack_depth = *depth = (unsigned)known->b;
    return drain.last_stack;
}

/* The alignment an allocation event asked for (PK_RAW_STACK moves it: hot.h). */
static uint64_t alloc_alignment(const struct pk_raw_event *ev)
{
    if (!(ev->kind & PK_RAW_STACK))
        return ev->values[PK_ALLOC_VALUE_ALIGNMENT];
    uint32_t code = ev->call >> PK_ALLOC_ALIGN_SHIFT;
    return code ? 1ull << (code - 1) : 0;
}

/*
 * One allocation call. function, file and line name the innermost recorded
 * call open on the thread (none: ""); caller, caller_file and caller_line
 * the call site. A free carries the size of the block it frees, when the
 * block's allocation was recorded. Inlined into the drain's loop, with the
 * steps on the live blocks, as calls are: a call per event, with its saved
 * registers, was a tenth of the drain's work per allocation call.
 */
static inline __attribute__((always_inline)) void process_alloc(const struct pk_ring *ring,
                                                                struct track *tr,
                                                                const struct pk_raw_event *ev,
                                                                uint64_t slot)
{
    uintptr_t block = ev->fn, old = (uintptr_t)ev->values[PK_ALLOC_VALUE_OLD];
    pk_block ended;
    if (ev->kind & PK_RAW_REALLOC_START) {
        /* Its block's allocation, should its time be a little later, comes first. */
        if (!pk_block_map_find(&drain.blocks, old))
            take_ahead(old, ev->raw_time, HANDS_OUT);
        pk_block_map_put(&drain.reallocs, old, (uintptr_t)ring, 0);
        return;
    }
    if (old && drain.reallocs.count)
        pk_block_map_take(&drain.reallocs, old, &ended);
    if (ev->kind & PK_RAW_REALLOC_FAILED)
        return; /* the block stays live */
    uint32_t call = ev->call & PK_ALLOC_CALL_MASK;
    pk_event_type type = pk_alloc_event_type(call, block, old);
    uintptr_t pointer = type == PK_EVENT_FREE && !block ? old : block;
    unsigned flags = PK_RECORD_BLOCK | PK_RECORD_SIZE;
    uint64_t size, usable;
    /* The live blocks first: finishing another thread's realloc adds its record,
     * so this one takes its place in the batch only after. */
    pk_block freed;
    if (type == PK_EVENT_FREE) {
        if (take_block(pointer, ev->raw_time, &freed)) {
            size = freed.a;
            usable = freed.b;
        } else {
            size = usable = 0;
            flags = PK_RECORD_BLOCK;
        }
    } else {
        if (type == PK_EVENT_REALLOC)
            take_block(old, ev->raw_time, &freed);
        size = ev->values[PK_ALLOC_VALUE_SIZE];
        usable = pk_alloc_usable_size(ev->values[PK_ALLOC_VALUE_ASKED], alloc_alignment(ev));
        put_block(block, size, usable, ev->raw_time);
    }

    /* The fields a call sets, and the allocation's (clear_alloc_fields): the
     * others are blank already. */
    pk_record *rec = next_alloc_record();
    rec->type = type;
    rec->flags = flags;
    rec->depth = (unsigned)tr->depth;
    if (tr->depth) {
        const struct frame *f = &tr->frames[tr->depth - 1];
        rec->function = f->symbols->function.function;
        rec->file = f->symbols->function.file;
        rec->line = f->symbols->function.line;
    } else {
        rec->function = rec->file = "";
        rec->line = 0;
    }
    const pk_symbol *caller = site_symbols(ev->site);
    rec->caller = caller->function;
    rec->caller_file = caller->file;
    rec->caller_line = caller->line;
    rec->address = 0;
    rec->call_site = ev->site;
    rec->duration_ns = 0;
    rec->alloc_function = pk_alloc_call_name(call);
    rec->pointer = pointer;
    rec->old_pointer = type == PK_EVENT_REALLOC ? old : 0;
    rec->size = size;
    rec->usable_size = usable;
    if (ev->kind & PK_RAW_STACK) {
        rec->stack = stack_of(ring, slot, ev, &rec->stack_depth);
    } else {
        rec->stack = NULL;
        rec->stack_depth = 0;
    }
    stamp(rec, ev->raw_time, ring->tid);
}

/* RSS and VMS taken by the alloc monitor's timer: a record of the process (thread 0). */
static void process_sample(const struct pk_raw_event *ev)
{
    pk_record *rec = next_record();
    blank_after_delivery(rec);
    memset(rec, 0, sizeof *rec);
    rec->type = PK_EVENT_SAMPLE;
    rec->function = rec->file = rec->caller = rec->caller_file = rec->alloc_function = rec->label =
        "";
    stamp(rec, ev->raw_time, 0);
    if (ev->values[0] != UINT64_MAX) {
        rec->flags = PK_RECORD_MEMORY;
        rec->rss = ev->values[0] * drain.page_size;
        rec->vms = ev->values[1] * drain.page_size;
    }
}

/* ---- unloaded code ------------------------------------------------------------ */

/*
 * dlclose unmapped [start, end) (src/unload.c): the names of calls and call
 * sites there and what the symbol table knows of it are forgotten, so that
 * a library loaded there later is named afresh; a stack through it gets a
 * new copy of its frames, which recorders take for a new stack (they name
 * frames once per stack). Everything before the event was named while the
 * code was there: the records built so far go first, as recorders name
 * new stacks' frames when a record arrives.
 */
static void process_unload(const struct pk_raw_event *ev)
{
    uintptr_t start = ev->fn, end = ev->site;
    if (end <= start)
        return;
    deliver_pending();
    calls_rebuild(drain.calls_mask + 1, start, end);
    drain.last_site_symbols[0] = drain.last_site_symbols[1] = NULL;
    for (size_t i = 0; i < drain.stacks.capacity; i++) {
        pk_block *b = &drain.stacks.slots[i];
        if (!b->address)
            continue;
        uintptr_t *frames = (uintptr_t *)(uintptr_t)b->a;
        bool through = false;
        for (uint64_t f = 0; f < b->b && !through; f++)
            through = within(frames[f], start, end);
        if (!through)
            continue;
        uintptr_t *copy = pk_xcalloc(b->b, sizeof *copy);
        memcpy(copy, frames, b->b * sizeof *copy);
        forget(frames); /* records and recorders may still point at it: not reused */
        b->a = (uintptr_t)copy;
    }
    drain.last_stack_hash = 0;
    drain.last_stack = NULL;
    drain.last_stack_depth = 0;
    pk_symbols_forget(start, end);
}

/*
 * A dlclose of the library at fn begins (src/unload.c): the symbols keep it
 * until the close ends (PK_RAW_RETURN), for its destructors' events, which
 * come between and are taken after the unmapping.
 */
static void process_close(const struct pk_ring *r, uint64_t slot, const struct pk_raw_event *ev)
{
    if (ev->kind & PK_RAW_RETURN) {
        pk_symbols_closed(ev->fn);
        return;
    }
    char path[PK_CLOSE_PATH_MAX + 1];
    size_t len = ev->payload <= PK_CLOSE_PATH_MAX ? ev->payload : 0;
    pk_ring_get(r, slot + 1, drain.pipeline.slot_shift, 0, path, len);
    path[len] = '\0';
    pk_symbols_closing(ev->fn, ev->site, path);
}

/* ---- rings ------------------------------------------------------------------- */

/* A thread ended and its ring is empty: close its calls and free the ring. */
static void retire_ring(struct pk_ring *r)
{
    struct track *tr = r->track;
    if (tr) {
        drain.totals.unfinished += tr->depth;
        tr->depth = 0;
    }
    pk_grow(&drain.exited, &drain.exited_capacity, drain.exited_count, sizeof *drain.exited);
    struct exited_thread *gone = &drain.exited[drain.exited_count++];
    gone->tid = r->tid;
    memcpy(gone->name, r->name, sizeof gone->name);
    gone->name[15] = '\0';
    atomic_store_explicit(&r->state, PK_RING_FREE, memory_order_release);
}

/*
 * ---- the order of events ----------------------------------------------------
 *
 * Each ring holds its thread's events in the order it made them. Across
 * threads, what must come out in order is the life of each block: its
 * allocation, its free, its next allocation (maybe on another thread), and
 * so on. Each step follows the one before through a store one thread made
 * and another saw (the allocator's, or the program's when it hands a block
 * over), and the interposer pushes its events so that the order shows
 * (interpose.c):
 *
 *  - an event that hands a thread a block (malloc, calloc, the aligned
 *    ones, new, the new block of a realloc) is pushed after the allocator
 *    returned it;
 *  - an event that gives a block up (free, delete, realloc(p, 0)) is pushed
 *    before the block goes back to the allocator;
 *  - a realloc of a block pushes a start (PK_RAW_REALLOC_START) before the
 *    call, as a free, then its end when it returns: a realloc record (moved
 *    or grown in place), or PK_RAW_REALLOC_FAILED (the block stays);
 *  - every event's time is read before the stores after it (a plain
 *    rdtsc cannot run after a later store is seen by other cores: stores
 *    leave the core only once the instructions before them have retired).
 *
 * So the event of each step is published before the next step's event is
 * pushed, and nearly always it has the earlier time (an invariant TSC
 * counts the same on every core where the kernel uses it as its clock;
 * CLOCK_MONOTONIC always). Not always: rdtsc does not wait for the loads
 * before it, so the time of a step may be read while the load that saw the
 * step before is still on its way, up to a few hundred nanoseconds early
 * (waiting, with rdtscp, would cost every allocation call 9 ns more). The
 * drain puts such a pair right where it meets it: an allocation of a block
 * still live, or a free of a block not live, first takes the other
 * thread's free or allocation of that block if one is published with a
 * time at most PK_DRAIN_SKEW_NS later (take_ahead).
 *
 * The drain therefore takes the events of all rings in the order of their
 * times: the ring whose next event is the earliest, as long as its events
 * are no later than any other ring's next one (a run). An event may be
 * taken once every ring has been read after the read that showed it (it is
 * "safe"): what it depends on was published before it, so it shows then,
 * and its earlier time puts it first. A pass reads every ring's head once,
 * so the events seen by the pass before are safe; the merge stops at the
 * first event that is not, whose turn comes in the next pass. (A thread
 * that read its time and has not yet published its event does not hold up
 * the others: no event published already can depend on it.)
 *
 * The one step this does not order is a realloc's end: it is pushed when
 * the call returns, but the call may have given the old block back before
 * that, and another thread may have been handed it and recorded that. The
 * start was processed by then (earlier time, published first): when an
 * allocation meets a block a realloc started on, that realloc's end, the
 * next event of its ring, is processed first (finish_realloc), and its
 * record comes before the allocation's. Its end waits on nothing else:
 * whatever freed its new block had an earlier time than the allocation at
 * hand, so it was processed, unless that was another realloc not ended
 * yet, whose end then comes first in the same way. Two reallocs cannot
 * wait on each other, since each allocates its new block before it frees
 * its old one; and a ring whose event is being processed is never asked
 * for its next one, so however a program misuses its blocks (a double
 * free) the recursion ends within one level per thread. A realloc in
 * place, a failed one (its block never left the thread) and realloc(p, 0)
 * (a free) need nothing more.
 */

/* Reads r's head again: the events published since join the merge. */
static void read_head(struct pk_ring *r, struct track *tr)
{
    tr->head = atomic_load_explicit(&r->head, memory_order_acquire);
}

static uint64_t next_time(const struct pk_ring *r, const struct track *tr)
{
    return pk_ring_slot(r, tr->next, drain.pipeline.slot_shift)->raw_time;
}

/*
 * Processes ev, the event in slot i of r; returns the slots it takes, its
 * payload's with it.
 */
static inline __attribute__((always_inline)) uint64_t
process_slot(struct pk_ring *r, struct track *tr, uint64_t i, const struct pk_raw_event *ev)
{
    uint32_t kind = ev->kind;
    /* Calls and returns of functions and zones first: nearly every event, no payload. */
    if (PK_LIKELY((kind & ~(uint32_t)(PK_RAW_RETURN | PK_RAW_ZONE)) == 0)) {
        if (kind & PK_RAW_RETURN)
            process_return(tr, ev, r->tid);
        else
            process_call(tr, ev, r->tid);
        return 1;
    }
    tr->busy = true;
    if (kind & PK_RAW_ALLOC)
        process_alloc(r, tr, ev, i);
    else if (kind & PK_RAW_SAMPLE)
        process_sample(ev);
    else if (kind & PK_RAW_UNLOAD)
        process_unload(ev);
    else if (kind & PK_RAW_CLOSE)
        process_close(r, i, ev);
    else /* what is left carries a payload (PK_RAW_HAS_PAYLOAD) */
        process_profiler(r, i, tr, ev);
    tr->busy = false;
    return 1 + payload_slots(r, i, ev, drain.pipeline.slot_shift);
}

/* Processes the event in slot i of r; returns the slots it takes. */
static uint64_t process_event(struct pk_ring *r, struct track *tr, uint64_t i)
{
    return process_slot(r, tr, i, pk_ring_slot(r, i, drain.pipeline.slot_shift));
}

/* The drain got this far in r: its producer may use the slots before. */
static void publish_tail(struct pk_ring *r, const struct track *tr)
{
    atomic_store(&r->tail, tr->next); /* seq_cst: pairs with the producer's waiting flag */
    pk_ring_made_room(r);
}

/*
 * A realloc's end is not pushed before the call returns: a thread that
 * cannot go on (stopped, or waiting on a lock this thread holds) costs the
 * order of one block after this long, not a hang.
 */
#define REALLOC_END_WAIT_NS 1000000000ull

/* Waits until r has published the event at tr->next; false when it did not in time. */
static bool await_next(struct pk_ring *r, struct track *tr)
{
    uint64_t deadline = pk_clock_monotonic_ns() + REALLOC_END_WAIT_NS;
    publish_tail(r, tr); /* room for it, should the ring be full */
    for (read_head(r, tr); tr->next == tr->head; read_head(r, tr)) {
        if (pk_clock_monotonic_ns() > deadline)
            return false;
        struct timespec pause = {0, 20000}; /* a sleep: the thread may need this CPU */
        nanosleep(&pause, NULL);
    }
    return true;
}

/*
 * Processes the end of the realloc that started on address, if one did and
 * its end is not processed yet, ahead of the order (see above); true when
 * it did. A ring whose event is being processed already is left alone.
 */
static bool finish_realloc(uintptr_t address)
{
    pk_block *started = pk_block_map_find(&drain.reallocs, address);
    if (!started)
        return false;
    struct pk_ring *r = (struct pk_ring *)(uintptr_t)started->a;
    struct track *tr = r->track;
    if (tr->busy)
        return false;
    const struct pk_raw_event *ev = NULL;
    if (await_next(r, tr))
        ev = pk_ring_slot(r, tr->next, drain.pipeline.slot_shift);
    if (!ev || !(ev->kind & PK_RAW_ALLOC) || ev->values[PK_ALLOC_VALUE_OLD] != address) {
        pk_block dropped; /* not its end: the realloc is forgotten */
        pk_block_map_take(&drain.reallocs, address, &dropped);
        return false;
    }
    tr->next += process_event(r, tr, tr->next);
    return true;
}

/* Whether ev, an event of another ring, gives up the block at address, or hands it out. */
static bool takes_step(const struct pk_raw_event *ev, uintptr_t address, enum block_step step)
{
    if (!(ev->kind & PK_RAW_ALLOC) || (ev->kind & PK_RAW_REALLOC_FAILED))
        return false;
    uintptr_t block = ev->fn, old = (uintptr_t)ev->values[PK_ALLOC_VALUE_OLD];
    if (ev->kind & PK_RAW_REALLOC_START)
        return step == GIVES_UP && old == address;
    pk_event_type type = pk_alloc_event_type(ev->call & PK_ALLOC_CALL_MASK, block, old);
    if (step == HANDS_OUT)
        return type != PK_EVENT_FREE && block == address;
    return type == PK_EVENT_FREE && (block ? block : old) == address;
}

/* The clock's ticks in PK_DRAIN_SKEW_NS. */
static uint64_t skew_ticks(void)
{
    return ((uint64_t)PK_DRAIN_SKEW_NS << 32) / pk_clock_ns_per_tick_q32();
}

/*
 * An allocation's time is read without waiting for the loads before it
 * (see "the order of events"), so it may be a little earlier than the time
 * of the free on another thread that gave its block back, and a free's
 * earlier than that of the allocation that handed its block out. Looks in
 * the other rings, among the events published so far and no later than
 * `time` plus PK_DRAIN_SKEW_NS, for the one that takes that step on
 * address, and processes its ring up to it; true when it did. The events
 * taken ahead of it are no later than it, so none of them can depend on
 * the event at hand. A ring whose event is being processed is left alone.
 */
static bool take_ahead(uintptr_t address, uint64_t time, enum block_step step)
{
    uint64_t limit = time + skew_ticks();
    unsigned shift = drain.pipeline.slot_shift;
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        struct track *tr = r->track;
        if (!tr || tr->busy)
            continue;
        read_head(r, tr);
        for (uint64_t i = tr->next; i != tr->head;) {
            const struct pk_raw_event *ev = pk_ring_slot(r, i, shift);
            if (ev->raw_time > limit)
                break;
            if (takes_step(ev, address, step)) {
                while (tr->next != i)
                    tr->next += process_event(r, tr, tr->next);
                tr->next += process_event(r, tr, i);
                return true;
            }
            i += 1 + payload_slots(r, i, ev, shift);
        }
    }
    return false;
}

/* ---- the merge: a binary heap of rings by the time of their next event ---------- */

static bool earlier(size_t i, size_t j)
{
    return drain.merge[i].time < drain.merge[j].time;
}

static void swap_entries(size_t i, size_t j)
{
    struct merge_entry e = drain.merge[i];
    drain.merge[i] = drain.merge[j];
    drain.merge[j] = e;
}

static void merge_push(struct pk_ring *r)
{
    pk_grow(&drain.merge, &drain.merge_capacity, drain.merge_count, sizeof *drain.merge);
    size_t i = drain.merge_count++;
    drain.merge[i] = (struct merge_entry){next_time(r, r->track), r};
    for (; i > 0 && earlier(i, (i - 1) / 2); i = (i - 1) / 2)
        swap_entries(i, (i - 1) / 2);
}

static struct pk_ring *merge_pop(void)
{
    struct pk_ring *top = drain.merge[0].ring;
    drain.merge[0] = drain.merge[--drain.merge_count];
    for (size_t i = 0;;) {
        size_t least = i, left = 2 * i + 1, right = left + 1;
        if (left < drain.merge_count && earlier(left, least))
            least = left;
        if (right < drain.merge_count && earlier(right, least))
            least = right;
        if (least == i)
            break;
        swap_entries(i, least);
        i = least;
    }
    return top;
}

/* How far ahead of the event it takes the drain asks for a ring's slots. */
#define RING_PREFETCH_BYTES 1024

/*
 * A run: safe events of r, in its order, while they are no later than
 * bound; returns the slots they took. Its cursor is kept in registers
 * meanwhile: what the events do (finish_realloc) never moves the cursor of
 * a ring whose event is being processed.
 */
static uint64_t take_run(struct pk_ring *r, uint64_t bound)
{
    struct track *tr = r->track;
    unsigned shift = drain.pipeline.slot_shift;
    uint64_t first = tr->next, next = first;
    uint64_t end = tr->seen - first < tr->budget ? tr->seen : first + tr->budget;
    uint64_t ahead = RING_PREFETCH_BYTES >> shift;
    const struct pk_raw_event *ev;
    while (next < end && (ev = pk_ring_slot(r, next, shift))->raw_time <= bound) {
        /* The slots were written on another CPU: asked for a kilobyte
         * ahead, they are here when their turn comes (the drain waited on
         * the first load of each slot's line: a sixth of its loop's time).
         * Only published slots: a line the thread is still to write would
         * be taken from under its stores. */
        if (next + ahead < end)
            __builtin_prefetch(pk_ring_slot(r, next + ahead, shift));
        next += process_slot(r, tr, next, ev);
    }
    tr->next = next;
    /* A payload may take the run past its end. */
    tr->budget = next - first < tr->budget ? tr->budget - (next - first) : 0;
    return next - first;
}

/* Reads every ring's head: what the read before showed is safe now. */
static void read_rings(uint64_t limit)
{
    drain.merge_count = 0;
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        struct track *tr = r->track;
        if (!tr) { /* a ring met for the first time: nothing seen yet */
            r->track = tr = pk_xcalloc(1, sizeof *tr);
            tr->next = tr->head = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
        tr->seen = tr->head;
        tr->budget = limit;
        read_head(r, tr);
        if (tr->next != tr->head)
            merge_push(r);
    }
}

/*
 * Takes the safe events of every ring in the order of their times, until
 * the earliest is not safe yet (or its ring's budget is spent); returns the
 * slots they took. A ring whose realloc end was taken ahead (finish_realloc)
 * has moved on meanwhile: its place is corrected when it comes up.
 */
static uint64_t merge_rings(void)
{
    uint64_t done = 0;
    while (drain.merge_count > 0) {
        struct pk_ring *r = merge_pop();
        struct track *tr = r->track;
        if (tr->next == tr->head)
            continue;
        if (tr->next >= tr->seen || tr->budget == 0) {
            merge_push(r); /* still pending: the next pass takes it */
            break;
        }
        done += take_run(r, drain.merge_count ? drain.merge[0].time : UINT64_MAX);
        if (tr->next != tr->head)
            merge_push(r);
    }
    return done;
}

/*
 * The end of a pass: the records delivered, each ring's tail where the
 * drain got to, and the rings of exited threads that are empty handed back.
 */
static void end_pass(void)
{
    deliver_pending();
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        struct track *tr = r->track;
        int state = atomic_load_explicit(&r->state, memory_order_acquire);
        if (!tr || state == PK_RING_FREE)
            continue;
        publish_tail(r, tr);
        if (state == PK_RING_EXITED &&
            tr->next == atomic_load_explicit(&r->head, memory_order_acquire))
            retire_ring(r);
    }
}

/*
 * Up to `limit` slots of each ring (events and their payloads), in the
 * order above; returns the slots taken, 0 only when no ring has any. While
 * the earliest event is not safe yet, the rings are read again at once,
 * rather than after the drain's idle wait.
 */
static uint64_t drain_pass(uint64_t limit)
{
    uint64_t done;
    do {
        read_rings(limit);
        done = merge_rings();
    } while (done == 0 && drain.merge_count > 0);
    end_pass();
    return done;
}

/* Everything pushed before now: passes until each ring's tail passes its head as seen now. */
static void drain_to_now(void)
{
    /* New rings go on the front of the list; from a snapshot of its head on,
     * the list is fixed, so indexes stay valid. */
    struct pk_ring *first = pk_rings_first();
    size_t n = 0;
    for (struct pk_ring *r = first; r; r = r->next)
        n++;
    uint64_t *targets = pk_xcalloc(n ? n : 1, sizeof *targets);
    size_t i = 0;
    for (struct pk_ring *r = first; r; r = r->next)
        targets[i++] = atomic_load_explicit(&r->head, memory_order_acquire);
    for (;;) {
        drain_pass(BATCH_PER_RING);
        bool behind = false;
        i = 0;
        for (struct pk_ring *r = first; r; r = r->next, i++)
            if ((int64_t)(targets[i] - atomic_load_explicit(&r->tail, memory_order_relaxed)) > 0)
                behind = true;
        if (!behind)
            break;
    }
    free(targets);
}

static void flush_loggers(void)
{
    deliver_pending();
    for (size_t i = 0; i < drain.pipeline.logger_count; i++)
        pk_logger_flush(drain.pipeline.loggers[i]);
}

/* ---- thread names ------------------------------------------------------------ */

static bool read_comm(uint64_t tid, char name[16])
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%llu/comm", (int)pk_program(),
             (unsigned long long)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, name, 15);
    close(fd);
    if (n <= 0)
        return false;
    name[n] = '\0';
    name[strcspn(name, "\n")] = '\0';
    return true;
}

bool pk_thread_name(uint64_t tid, char name[16])
{
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        if (r->tid != tid)
            continue;
        if (atomic_load_explicit(&r->state, memory_order_acquire) == PK_RING_OWNED &&
            read_comm(tid, name))
            return true;
        /* Exited, or its process is gone (a drainer's program, after a crash):
         * the name it had when it exited, or when it took the ring. */
        memcpy(name, r->name, 16);
        name[15] = '\0';
        return name[0] != '\0';
    }
    /* Its ring handed back, and maybe taken by another thread since: the
     * latest entry, should the kernel have given its id out again. */
    for (size_t i = drain.exited_count; i-- > 0;) {
        if (drain.exited[i].tid == tid) {
            memcpy(name, drain.exited[i].name, 16);
            return name[0] != '\0';
        }
    }
    return false;
}

/* ---- the thread -------------------------------------------------------------- */

/* Sleeps until the doorbell moves from seen, or for wait_ns at most. */
static void wait_for_work(uint32_t seen, long wait_ns)
{
    struct timespec timeout = {0, wait_ns};
    syscall(SYS_futex, &pk_rt.shared->doorbell, pk_futex_op(FUTEX_WAIT), seen, &timeout, NULL, 0);
}

/*
 * How long a drain ahead of its threads waits: until they have pushed about
 * AHEAD_GATHER slots at the rate of the last pass (`done` slots over
 * `interval_ns`). Threads whose events come slowly (a system call in each,
 * as function-memory's read) then see the drain wake every few
 * milliseconds, not every 100 µs; its wake-ups cost them about 1% of such
 * an event (docs/PERFORMANCE.md). A ring half full rings the doorbell, so
 * a burst ends the wait early.
 */
static long ahead_wait_ns(uint64_t done, uint64_t interval_ns)
{
    uint64_t wait = interval_ns / done * AHEAD_GATHER;
    if (wait < AHEAD_WAIT_MIN_NS)
        return AHEAD_WAIT_MIN_NS;
    return wait > AHEAD_WAIT_MAX_NS ? AHEAD_WAIT_MAX_NS : (long)wait;
}

static void *drain_main(void *unused)
{
    (void)unused;
    pk_self.busy = 1; /* user filters may be instrumented: never record ourselves */
    on_drain_thread = true;
    uint64_t idle_since = 0;
    uint64_t last_pass = pk_clock_monotonic_ns();
    bool dirty = false;
    for (;;) {
        uint32_t seen = atomic_load_explicit(&pk_rt.shared->doorbell, memory_order_acquire);
        pthread_mutex_lock(&drain.lock);
        uint64_t requested = drain.sync_requested;
        bool stopping = drain.stopping;
        pthread_mutex_unlock(&drain.lock);

        pthread_mutex_lock(&drain.work_lock);
        if (requested != drain.sync_completed || stopping) {
            drain_to_now();
            flush_loggers();
            pthread_mutex_unlock(&drain.work_lock);
            dirty = false;
            pthread_mutex_lock(&drain.lock);
            drain.sync_completed = requested;
            pthread_cond_broadcast(&drain.done_cond);
            pthread_mutex_unlock(&drain.lock);
            if (stopping)
                break;
            continue;
        }
        uint64_t done = drain_pass(BATCH_PER_RING);
        uint64_t now = pk_clock_monotonic_ns();
        uint64_t interval = now - last_pass;
        last_pass = now;
        if (done == 0 && dirty && idle_since && now - idle_since >= IDLE_FLUSH_NS) {
            flush_loggers();
            dirty = false;
        }
        pthread_mutex_unlock(&drain.work_lock);
        if (done > 0) {
            dirty = true;
            idle_since = 0;
            /* Ahead of the threads: let their events gather, so that the next
             * pass reads a batch of lines they are done with rather than
             * chase the ones they write. A sync, the end or a ring half full
             * rings the doorbell, which ends the wait at once. */
            if (done < AHEAD_BELOW)
                wait_for_work(seen, ahead_wait_ns(done, interval));
            continue;
        }
        if (!idle_since)
            idle_since = now;
        wait_for_work(seen, IDLE_WAIT_NS);
    }
    return NULL;
}

/* Events that an earlier run left behind (threads racing its end) are not ours. */
static void discard_leftovers(void)
{
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        atomic_store_explicit(&r->tail, head, memory_order_release);
        struct track *tr = r->track;
        if (tr) {
            tr->depth = 0;
            tr->next = tr->seen = tr->head = head;
        }
        if (atomic_load_explicit(&r->state, memory_order_acquire) == PK_RING_EXITED)
            atomic_store_explicit(&r->state, PK_RING_FREE, memory_order_release);
    }
    atomic_store_explicit(&pk_rt.shared->ringless, 0, memory_order_relaxed);
}

int pk_drain_start(const struct pk_pipeline *pipeline, pk_error *err)
{
    if (drain.started)
        return pk_fail(err, "the drain thread is already running");
    discard_leftovers();
    /* Symbols stay valid for the process, but code may be unloaded between runs. */
    calls_free();
    calls_grow();
    drain.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    pk_block_map_free(&drain.blocks); /* a forked child's run knows none of its parent's */
    pk_block_map_free(&drain.reallocs);
    drain.exited_count = 0; /* the threads of the run before are not this one's */
    drain.pipeline = *pipeline;
    if (drain.pipeline.slot_shift != PK_SLOT_SHIFT_SAMPLED)
        drain.pipeline.decode = NULL; /* no samples to decode: one test per event fewer */
    blank_batch();
    memset(&drain.totals, 0, sizeof drain.totals);
    drain.next_index = 0;
    drain.stopping = false;
    drain.sync_requested = drain.sync_completed = 0;

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: no signals there */
    int rc = pthread_create(&drain.thread, NULL, drain_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return pk_fail(err, "cannot start the drain thread: %s", strerror(rc));
    pthread_setname_np(drain.thread, "pikoc-drain");
    drain.started = true;
    /* Threads send their stacks again: a forked child's drain may lack some. */
    atomic_fetch_add(&pk_rt.stack_generation, 1);
    atomic_store_explicit(&pk_rt.running, 1, memory_order_release);
    return 0;
}

void pk_drain_sync(void)
{
    if (!drain.started || on_drain_thread)
        return;
    pk_lock_taking(); /* an exec from a signal handler here leaves the run */
    pthread_mutex_lock(&drain.lock);
    uint64_t mine = ++drain.sync_requested;
    pthread_mutex_unlock(&drain.lock);
    pk_drain_kick();
    pthread_mutex_lock(&drain.lock);
    while (drain.sync_completed < mine && drain.started)
        pthread_cond_wait(&drain.done_cond, &drain.lock);
    pthread_mutex_unlock(&drain.lock);
    pk_lock_released();
}

/*
 * Events of threads that found no ring: counted with the dropped ones, and
 * said, since nothing else tells why a thread's events are missing.
 */
static uint64_t take_ringless(void)
{
    struct pk_shared *shared = pk_rt.shared;
    uint64_t lost = atomic_exchange_explicit(&shared->ringless, 0, memory_order_relaxed);
    if (lost && shared->size)
        pk_warn("%llu events lost: more threads alive at once than the %llu rings of the shared "
                "region",
                (unsigned long long)lost, (unsigned long long)shared->ring_count);
    else if (lost)
        pk_warn("%llu events lost: no memory for their threads' rings", (unsigned long long)lost);
    return lost;
}

void pk_drain_stop(pk_run_totals *totals)
{
    if (drain.started) {
        pthread_mutex_lock(&drain.lock);
        drain.stopping = true;
        pthread_mutex_unlock(&drain.lock);
        pk_drain_kick();
        pthread_join(drain.thread, NULL);
        drain.started = false;
        atomic_store_explicit(&pk_rt.running, 0, memory_order_release);
    }
    uint64_t dropped = 0;
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        struct track *tr = r->track;
        if (tr) {
            /* Freed now rather than at exit: leak checkers run before destructors. */
            drain.totals.unfinished += tr->depth;
            free(tr->frames);
            free(tr);
            r->track = NULL;
        }
        dropped += atomic_exchange_explicit(&r->dropped, 0, memory_order_relaxed);
    }
    drain.totals.dropped += dropped + take_ringless();
    drain.totals.events = drain.next_index; /* each record built took the next index */
    uint64_t now = pk_clock_monotonic_ns();
    drain.totals.end_ns = now > drain.pipeline.start_ns ? now - drain.pipeline.start_ns : 0;
    if (totals)
        *totals = drain.totals;
    calls_free();
    pk_block_map_free(&drain.blocks);
    pk_block_map_free(&drain.reallocs);
    memset(&drain.pipeline, 0, sizeof drain.pipeline);
}

void pk_drain_fork_prepare(void)
{
    pthread_mutex_lock(&drain.work_lock);
}

void pk_drain_fork_parent(void)
{
    pthread_mutex_unlock(&drain.work_lock);
}

void pk_drain_forget_after_fork(void)
{
    pthread_mutex_init(&drain.work_lock, NULL);
    pthread_mutex_init(&drain.lock, NULL);
    pthread_cond_init(&drain.done_cond, NULL);
    drain.started = false;
    drain.stopping = false;
    memset(&drain.pipeline, 0, sizeof drain.pipeline);
    atomic_store_explicit(&pk_rt.running, 0, memory_order_release);
}
