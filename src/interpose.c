/*
 * interpose.c — the allocation interposer of libpikoc-preload.so: malloc,
 * calloc, realloc, reallocarray, free, the aligned allocators and every C++
 * operator new and delete, each forwarded to the next allocator in load
 * order (jemalloc, under pikoc run) and recorded as one raw event in the
 * thread's ring. Runs on monitored threads: no locks, no malloc, no stdio,
 * but for two cold paths that run once (a forked child's first allocation
 * starts its run; _exit ends one) and, with --stack N, libunwind's first
 * unwind through code the thread has not met (it asks the loader, under the
 * loader's lock) and the thread's first walk (its table of walks comes from
 * mmap). Blocks get no header, so malloc_usable_size stays the allocator's
 * answer. dlclose is defined here too (src/unload.c: it waits for the
 * drain before the library goes), a path that sleeps, off every allocation
 * call.
 */
#include "clock.h"
#include "hot.h"
#include "internal.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PK_EXPORT __attribute__((visibility("default"), no_instrument_function))
#define SIGNAL_FENCE() atomic_signal_fence(memory_order_seq_cst)

/* ---- the next allocator -------------------------------------------------------- */

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_fn)(size_t, size_t);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);
typedef void (*delete_sized_fn)(void *, size_t);
typedef void (*delete_aligned_fn)(void *, size_t);
typedef void (*delete_nothrow_fn)(void *, const void *);
typedef void (*delete_sized_aligned_fn)(void *, size_t, size_t);
typedef void (*delete_aligned_nothrow_fn)(void *, size_t, const void *);
typedef void (*exit_fn)(int) __attribute__((noreturn));

static struct {
    malloc_fn malloc;
    calloc_fn calloc;
    realloc_fn realloc;
    free_fn free;
    posix_memalign_fn posix_memalign;
    aligned_fn aligned_alloc;
    aligned_fn memalign;
    malloc_fn new_, new_array;
    new_nothrow_fn new_nothrow, new_array_nothrow;
    new_aligned_fn new_aligned, new_array_aligned;
    new_aligned_nothrow_fn new_aligned_nothrow, new_array_aligned_nothrow;
    free_fn delete_, delete_array;
    delete_sized_fn delete_sized, delete_array_sized;
    delete_nothrow_fn delete_nothrow, delete_array_nothrow;
    delete_aligned_fn delete_aligned, delete_array_aligned;
    delete_sized_aligned_fn delete_sized_aligned, delete_array_sized_aligned;
    delete_aligned_nothrow_fn delete_aligned_nothrow, delete_array_aligned_nothrow;
    exit_fn exit_, exit_c99;
    pk_dlclose_fn dlclose_;
} next;

enum { UNRESOLVED, RESOLVING, RESOLVED };
static _Atomic int resolution;

/*
 * dlsym allocates (its error buffer) before it can tell us where malloc is:
 * those first blocks come from a static arena, never freed, with a size
 * header of their own so realloc can copy them.
 */
#define ARENA_BYTES (64 * 1024)
static _Alignas(16) char arena[ARENA_BYTES];
static _Atomic size_t arena_used;

PK_HOT_FN static bool in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + ARENA_BYTES;
}

PK_HOT_FN static void *arena_alloc(size_t size)
{
    size_t need = (size + 16 + 15) & ~(size_t)15;
    size_t at = atomic_fetch_add(&arena_used, need);
    if (at + need > ARENA_BYTES)
        return NULL;
    memcpy(arena + at, &size, sizeof size);
    return arena + at + 16;
}

PK_HOT_FN static size_t arena_size(const void *p)
{
    size_t size;
    memcpy(&size, (const char *)p - 16, sizeof size);
    return size;
}

#define NEXT(field, name) next.field = (__typeof__(next.field))dlsym(RTLD_NEXT, name)

PK_HOT_FN static void resolve(void)
{
    int expected = UNRESOLVED;
    if (!atomic_compare_exchange_strong(&resolution, &expected, RESOLVING))
        return; /* another thread resolves: it serves from the arena meanwhile */
    NEXT(malloc, "malloc");
    NEXT(calloc, "calloc");
    NEXT(realloc, "realloc");
    NEXT(free, "free");
    NEXT(posix_memalign, "posix_memalign");
    NEXT(aligned_alloc, "aligned_alloc");
    NEXT(memalign, "memalign");
    NEXT(new_, "_Znwm");
    NEXT(new_array, "_Znam");
    NEXT(new_nothrow, "_ZnwmRKSt9nothrow_t");
    NEXT(new_array_nothrow, "_ZnamRKSt9nothrow_t");
    NEXT(new_aligned, "_ZnwmSt11align_val_t");
    NEXT(new_array_aligned, "_ZnamSt11align_val_t");
    NEXT(new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t");
    NEXT(new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t");
    NEXT(delete_, "_ZdlPv");
    NEXT(delete_array, "_ZdaPv");
    NEXT(delete_sized, "_ZdlPvm");
    NEXT(delete_array_sized, "_ZdaPvm");
    NEXT(delete_nothrow, "_ZdlPvRKSt9nothrow_t");
    NEXT(delete_array_nothrow, "_ZdaPvRKSt9nothrow_t");
    NEXT(delete_aligned, "_ZdlPvSt11align_val_t");
    NEXT(delete_array_aligned, "_ZdaPvSt11align_val_t");
    NEXT(delete_sized_aligned, "_ZdlPvmSt11align_val_t");
    NEXT(delete_array_sized_aligned, "_ZdaPvmSt11align_val_t");
    NEXT(delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t");
    NEXT(delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t");
    NEXT(exit_, "_exit");
    NEXT(exit_c99, "_Exit");
    NEXT(dlclose_, "dlclose");
    atomic_store(&resolution, RESOLVED);
}

/* True once the next allocator is known; false while dlsym runs (use the arena). */
PK_HOT_FN static inline bool ready(void)
{
    if (PK_LIKELY(atomic_load_explicit(&resolution, memory_order_acquire) == RESOLVED))
        return true;
    resolve();
    return atomic_load_explicit(&resolution, memory_order_acquire) == RESOLVED;
}

/* Resolved as the library loads, before the program's first allocation if possible. */
__attribute__((constructor)) PK_HOT_FN static void resolve_at_load(void)
{
    resolve();
}

/* ---- recording ------------------------------------------------------------------- */

static _Atomic int probe_reached; /* pk_interposer_status's question */

/*
 * An allocation call is recorded when the running monitor asks for them and
 * this thread is not already inside pikoc: a hook, the interposer itself
 * (an allocator that calls malloc from operator new), the drain thread or
 * pikoc's other threads. Those inner allocations pass through unrecorded.
 */
PK_HOT_FN static inline bool recording(const struct pk_thread *t)
{
    return atomic_load_explicit(&pk_rt.allocations, memory_order_relaxed) && !t->busy;
}

/* Clears the guard however the scope ends, a C++ exception included. */
PK_HOT_FN static void leave(struct pk_thread **t)
{
    SIGNAL_FENCE();
    (*t)->busy = 0;
}

#define ENTER(t)                                                                                   \
    struct pk_thread *t __attribute__((cleanup(leave))) = &pk_self;                                \
    t->busy = 1;                                                                                   \
    SIGNAL_FENCE()

/*
 * Allocations are on and no run is open: a forked child's first allocation
 * (it starts the child's own run), or pk_interposer_status asking.
 */
PK_HOT_FN __attribute__((noinline, cold)) static void not_running(void)
{
    if (atomic_exchange(&pk_rt.restart, 0)) {
        pk_auto_restart();
        if (!atomic_load(&pk_rt.running))
            atomic_store(&pk_rt.allocations, 0);
        return;
    }
    atomic_store_explicit(&probe_reached, 1, memory_order_relaxed); /* see the end */
}

/*
 * `third` is the alignment, or with PK_RAW_STACK the stack's hash (hot.h).
 * The drain orders the threads' events by their times (drain.c, "the order
 * of events"): a plain rdtsc, which may run a little ahead of the loads
 * before it; the drain sets right the pairs that shows in.
 */
PK_HOT_FN static inline __attribute__((always_inline)) void
fill_event(struct pk_raw_event *ev, uint32_t kind, uint32_t call, const void *block, uintptr_t site,
           uint64_t size, const void *old, uint64_t third, uint64_t asked)
{
    ev->raw_time = pk_clock_raw();
    ev->fn = (uintptr_t)block;
    ev->site = site;
    ev->kind = kind;
    ev->call = call;
    ev->values[PK_ALLOC_VALUE_SIZE] = size;
    ev->values[PK_ALLOC_VALUE_OLD] = (uintptr_t)old;
    ev->values[PK_ALLOC_VALUE_ALIGNMENT] = third;
    ev->values[PK_ALLOC_VALUE_ASKED] = asked;
}

/* ---- stacks (--stack N) ------------------------------------------------------------ */

/* Frames the interposer itself may have above the call site (a helper, the entry point). */
#define OWN_FRAMES 4
#define STACK_CACHE_SLOTS 1024 /* a power of two */

/*
 * The hashes of the stacks this thread has sent since the run started
 * (direct-mapped: a stack pushed out is sent again, and the drain keeps it
 * once). A new run, a forked child's included, has a new generation.
 */
static PK_TLS uint64_t stack_cache[STACK_CACHE_SLOTS];
static PK_TLS uint32_t stack_cache_generation;

PK_HOT_FN static inline uint64_t stack_hash(const uintptr_t *frames, unsigned n)
{
    uint64_t h = n;
    for (unsigned i = 0; i < n; i++) {
        h = (h ^ frames[i]) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return h | 1; /* 0 marks an empty cache slot */
}

/*
 * The call site and up to depth - 1 frames above it, innermost first;
 * returns how many. The unwinder starts inside the interposer: its own
 * frames, up to the call site, are left out.
 */
PK_HOT_FN static unsigned unwind(uintptr_t site, unsigned depth, uintptr_t *frames)
{
    frames[0] = site;
    if (depth < 2)
        return 1;
    void *raw[PK_STACK_MAX + OWN_FRAMES];
    int got = unw_backtrace(raw, (int)(depth + OWN_FRAMES));
    for (int i = 0; i < got && i <= OWN_FRAMES; i++) {
        if ((uintptr_t)raw[i] != site)
            continue;
        unsigned n = 0;
        for (; n < depth && i + (int)n < got; n++)
            frames[n] = (uintptr_t)raw[i + n];
        return n;
    }
    return 1; /* the unwinder did not pass the call site: it alone */
}

/* A call's stack: its frames (innermost first), how many, their hash. */
struct stack {
    const uintptr_t *frames;
    unsigned n;
    uint64_t hash;
};

#ifdef __x86_64__
/*
 * Walks remembered (x86-64, --stack up to WALK_FRAMES). A walk of the stack
 * is a function of where it starts (the ip and sp of the interposer's frame,
 * and rbp if a frame's rule uses it) and of the memory it reads: each
 * frame's return address and, for a frame whose canonical frame address
 * comes out as rbp + 16 (the rule compilers emit for a frame pointer; one
 * reading rbp another way would go unnoticed), the saved rbp. The rules come
 * from the unwind tables, which do not change. So a walk that starts where a
 * remembered one started and finds the same words where that one read them
 * yields the same frames: checking them is a load a frame, where libunwind's
 * cached trace spends about a hundred instructions. The words are checked in
 * the order the walk read them, so a check reads only where a walk would.
 * A start seen once is unwound as usual; seen again, it is walked with
 * libunwind a frame at a time (which tells where it read, at several times
 * the cost) and remembered. A walk through a signal frame, whose registers
 * come from the saved context, never is.
 */
#define WALK_FRAMES 16
#define WALK_SETS 8 /* a power of two */
#define WALK_WAYS 4 /* chains that reach one call site from one stack depth */

struct walk_regs {
    uintptr_t ip, sp, rbp;
};

enum walk_state { WALK_UNUSED, WALK_SEEN, WALK_KEPT, WALK_NEVER };

struct walk {
    struct walk_regs from; /* rbp counts only with rbp_counts */
    uintptr_t site;
    uint32_t depth;
    uint8_t state; /* enum walk_state */
    bool rbp_counts;
    uint32_t checks;
    struct stack stack; /* its frames are frame[] */
    uintptr_t frame[WALK_FRAMES];
    struct {
        uintptr_t at, word;
    } check[2 * (WALK_FRAMES + OWN_FRAMES)]; /* a return address and a saved rbp a step */
};

/*
 * A thread's walks (26 KiB: too much to add to every thread's static TLS,
 * which comes out of its stack), mapped at its first walk and handed on to
 * a later thread when it exits. The list of tables only grows.
 */
struct walk_table {
    struct walk_table *next;
    _Atomic int owned;
    uint8_t victim[WALK_SETS]; /* round robin within a set */
    struct walk walks[WALK_SETS][WALK_WAYS];
};

#define WALK_TABLE_GONE ((struct walk_table *)1) /* the thread is exiting: walks are off */

static _Atomic(struct walk_table *) walk_tables;
static pthread_key_t walk_key;
static PK_TLS struct walk_table *walk_table;

/* Called by pthread as a thread exits: its table is free for the next thread. */
PK_HOT_FN static void walk_table_released(void *table)
{
    walk_table = WALK_TABLE_GONE;
    atomic_store_explicit(&((struct walk_table *)table)->owned, 0, memory_order_release);
}

static void walk_key_create(void)
{
    pthread_key_create(&walk_key, walk_table_released);
}

/* A free table, or a new one (NULL if mmap fails: walks are off for this thread). */
PK_HOT_FN __attribute__((noinline, cold)) static struct walk_table *walk_table_taken(void)
{
    struct walk_table *t = atomic_load_explicit(&walk_tables, memory_order_acquire);
    for (; t; t = t->next) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&t->owned, &expected, 1))
            break;
    }
    if (t) {
        memset(t->victim, 0, sizeof t->victim);
        memset(t->walks, 0, sizeof t->walks);
    } else {
        void *mem =
            mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            walk_table = WALK_TABLE_GONE;
            return NULL;
        }
        t = mem;
        atomic_store_explicit(&t->owned, 1, memory_order_relaxed);
        struct walk_table *head = atomic_load_explicit(&walk_tables, memory_order_relaxed);
        do
            t->next = head;
        while (!atomic_compare_exchange_weak_explicit(&walk_tables, &head, t, memory_order_release,
                                                      memory_order_relaxed));
    }
    pthread_setspecific(walk_key, t);
    walk_table = t;
    return t;
}

/* Fills *at with its caller's ip (the return address), sp and rbp as the call returns. */
PK_HIDDEN void pk_walk_here(struct walk_regs *at);
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".globl pk_walk_here\n"
        ".hidden pk_walk_here\n"
        ".type pk_walk_here, @function\n"
        "pk_walk_here:\n"
        ".cfi_startproc\n"
        "movq (%rsp), %rax\n"
        "movq %rax, (%rdi)\n"
        "leaq 8(%rsp), %rax\n"
        "movq %rax, 8(%rdi)\n"
        "movq %rbp, 16(%rdi)\n"
        "ret\n"
        ".cfi_endproc\n"
        ".size pk_walk_here, .-pk_walk_here\n"
        ".popsection");

PK_HOT_FN static inline bool walk_starts(const struct walk *w, const struct walk_regs *from,
                                         uintptr_t site, unsigned depth)
{
    return w->from.sp == from->sp && w->from.ip == from->ip && w->site == site &&
           w->depth == depth && (!w->rbp_counts || w->from.rbp == from->rbp);
}

/* The words may lie in another frame's locals now: not the sanitizer's business. */
PK_HOT_FN __attribute__((no_sanitize("address"))) static bool walk_holds(const struct walk *w)
{
    for (uint32_t i = 0; i < w->checks; i++)
        if (*(const uintptr_t *)w->check[i].at != w->check[i].word)
            return false;
    return true;
}

/*
 * Notes that the walk used `word`, register `reg` of a frame, found at
 * `loc`: the next walk must find it there. A register still as the walk
 * started is in the context `uc`: part of the start (rbp counts in it).
 * False if it was not in memory (another register held it): such a walk is
 * not remembered.
 */
PK_HOT_FN static bool walk_note(struct walk *w, const unw_save_loc_t *loc, int reg, uintptr_t word,
                                const ucontext_t *uc)
{
    if (loc->type != UNW_SLT_MEMORY)
        return false;
    if (loc->u.addr >= (uintptr_t)uc && loc->u.addr < (uintptr_t)(uc + 1)) {
        w->rbp_counts |= reg == UNW_X86_64_RBP;
        return true;
    }
    w->check[w->checks].at = loc->u.addr;
    w->check[w->checks].word = word;
    w->checks++;
    return true;
}

/*
 * libunwind's step to the caller of the cursor's frame, noting the words it
 * read in the order it needed them: the frame's rbp if the canonical frame
 * address came out as rbp + 16, then the return address. Returns as
 * unw_step; *remember turns false when the walk is not to be remembered.
 */
PK_HOT_FN static int walk_step(struct walk *w, unw_cursor_t *c, const ucontext_t *uc,
                               bool *remember)
{
    unw_word_t rbp, cfa, ip;
    unw_save_loc_t rbp_loc, ip_loc;
    unw_get_reg(c, UNW_X86_64_RBP, &rbp);
    *remember = *remember && unw_is_signal_frame(c) <= 0 &&
                unw_get_save_loc(c, UNW_X86_64_RBP, &rbp_loc) == 0;
    int stepped = unw_step(c);
    if (stepped <= 0 || !*remember)
        return stepped;
    unw_get_reg(c, UNW_REG_SP, &cfa);
    unw_get_reg(c, UNW_REG_IP, &ip);
    *remember = (cfa != rbp + 16 || walk_note(w, &rbp_loc, UNW_X86_64_RBP, rbp, uc)) &&
                unw_get_save_loc(c, UNW_REG_IP, &ip_loc) == 0 &&
                walk_note(w, &ip_loc, UNW_REG_IP, ip, uc);
    return stepped;
}

/*
 * Walks the stack from `from` a frame at a time, keeping the frames from
 * the call site on in *w with the words read to reach them. False if the
 * walk is not to be remembered (its frames are right all the same).
 */
PK_HOT_FN static bool walk_fill(struct walk *w, const struct walk_regs *from, uintptr_t site,
                                unsigned depth)
{
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    uc.uc_mcontext.gregs[REG_RIP] = (greg_t)from->ip;
    uc.uc_mcontext.gregs[REG_RSP] = (greg_t)from->sp;
    uc.uc_mcontext.gregs[REG_RBP] = (greg_t)from->rbp;
    w->from = *from;
    w->site = site;
    w->depth = depth;
    w->rbp_counts = false;
    w->checks = 0;
    w->frame[0] = site;
    w->stack = (struct stack){.frames = w->frame, .n = 1};
    unw_cursor_t c;
    bool started = unw_init_local(&c, &uc) == 0, remember = started;
    unsigned n = 0;
    for (unsigned own = 0; started;) {
        unw_word_t ip;
        unw_get_reg(&c, UNW_REG_IP, &ip);
        if (n > 0 || ip == site)
            w->frame[n++] = ip;
        else if (own++ == OWN_FRAMES)
            break; /* the unwinder did not pass the call site: it alone */
        if (n == depth || walk_step(w, &c, &uc, &remember) <= 0)
            break;
    }
    w->stack.n = n > 0 ? n : 1;
    w->stack.hash = stack_hash(w->frame, w->stack.n);
    return remember;
}

/*
 * The stack of the walk remembered from where this one starts, or NULL
 * (unwind it as usual). Inlined: the walk starts in stack_of_call's frame.
 */
PK_HOT_FN static inline __attribute__((always_inline)) const struct stack *walk(uintptr_t site,
                                                                                unsigned depth)
{
    struct walk_table *table = walk_table;
    if (PK_UNLIKELY(!table))
        table = walk_table_taken();
    if (PK_UNLIKELY(!table || table == WALK_TABLE_GONE))
        return NULL;
    struct walk_regs from;
    pk_walk_here(&from);
    unsigned index = (unsigned)((from.sp >> 4) ^ site ^ (site >> 12)) & (WALK_SETS - 1);
    struct walk *set = table->walks[index];
    struct walk *same = NULL; /* a walk that started here, with other words on the way */
    for (unsigned way = 0; way < WALK_WAYS; way++) {
        struct walk *w = &set[way];
        if (!walk_starts(w, &from, site, depth))
            continue;
        if (w->state == WALK_KEPT && walk_holds(w))
            return &w->stack;
        if (w->state == WALK_NEVER)
            return NULL;
        if (!same || w->state == WALK_SEEN)
            same = w;
    }
    struct walk *w =
        same && same->state == WALK_SEEN ? same : &set[table->victim[index]++ % WALK_WAYS];
    if (!same) {
        w->from = from;
        w->site = site;
        w->depth = depth;
        w->rbp_counts = false;
        w->state = WALK_SEEN;
        return NULL;
    }
    w->state = walk_fill(w, &from, site, depth) ? WALK_KEPT : WALK_NEVER;
    return &w->stack;
}
#endif

/*
 * Set up by the alloc monitor as the run starts: libunwind's caches per
 * thread (no lock on a hit), the key that hands an exiting thread's walks
 * on, and libunwind's first-use allocations made now, with this thread
 * inside pikoc. 0 records the call site alone.
 */
PK_HIDDEN void pk_interposer_stacks(uint32_t depth);
void pk_interposer_stacks(uint32_t depth)
{
    if (depth > 1) {
        uint32_t busy = pk_self.busy;
        pk_self.busy = 1;
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
#ifdef __x86_64__
        static pthread_once_t walk_key_once = PTHREAD_ONCE_INIT;
        pthread_once(&walk_key_once, walk_key_create);
#endif
        void *warm[8];
        unw_backtrace(warm, 8);
        pk_self.busy = busy;
    }
    atomic_store(&pk_rt.stack_depth, depth);
}

/* Where the call came from, with up to depth - 1 frames above the call site. */
PK_HOT_FN __attribute__((noinline)) static struct stack
stack_of_call(uintptr_t site, unsigned depth, uintptr_t *scratch)
{
#ifdef __x86_64__
    const struct stack *walked = depth > 1 && depth <= WALK_FRAMES ? walk(site, depth) : NULL;
    if (walked)
        return *walked;
#endif
    unsigned n = unwind(site, depth, scratch);
    return (struct stack){.frames = scratch, .n = n, .hash = stack_hash(scratch, n)};
}

/*
 * An allocation event naming its stack by hash; the first time this thread
 * sends the stack, its frames follow in the slots after the event.
 */
PK_HOT_FN __attribute__((noinline)) static void
record_stacked(struct pk_thread *t, unsigned depth, enum pk_alloc_call call, const void *block,
               uintptr_t site, uint64_t size, const void *old, uint64_t alignment, uint64_t asked)
{
    uintptr_t scratch[PK_STACK_MAX];
    struct stack stack = stack_of_call(site, depth, scratch);
    uint32_t generation = atomic_load_explicit(&pk_rt.stack_generation, memory_order_relaxed);
    if (PK_UNLIKELY(stack_cache_generation != generation)) {
        memset(stack_cache, 0, sizeof stack_cache);
        stack_cache_generation = generation;
    }
    uint64_t *cached = &stack_cache[stack.hash & (STACK_CACHE_SLOTS - 1)];
    bool known = *cached == stack.hash;
    struct pk_stack_payload head = {.frames = stack.n};
    size_t bytes = known ? 0 : sizeof head + stack.n * sizeof *stack.frames;
    uint64_t slots = 1 + pk_payload_slots(bytes, PK_SLOT_SHIFT_SAMPLED);
    uint64_t first;
    struct pk_ring *r = pk_ring_claim_slots(t, slots, &first);
    if (PK_UNLIKELY(!r))
        return;
    uint32_t align_code = alignment ? (uint32_t)__builtin_ctzll(alignment) + 1 : 0;
    fill_event(pk_ring_own_slot(r, first, PK_SLOT_SHIFT_SAMPLED),
               PK_RAW_ALLOC | PK_RAW_STACK | (known ? 0 : PK_RAW_STACK_FRAMES),
               call | align_code << PK_ALLOC_ALIGN_SHIFT, block, site, size, old, stack.hash,
               asked);
    if (!known) {
        pk_ring_put(r, first + 1, PK_SLOT_SHIFT_SAMPLED, 0, &head, sizeof head);
        pk_ring_put(r, first + 1, PK_SLOT_SHIFT_SAMPLED, sizeof head, stack.frames,
                    stack.n * sizeof *stack.frames);
    }
    pk_ring_publish_slots(r, first, slots);
    *cached = stack.hash; /* only once the drain is sure to see it */
}

/* Whether a run takes events; a forked child's first allocation starts its own. */
PK_HOT_FN static inline __attribute__((always_inline)) bool run_open(void)
{
    if (PK_LIKELY(atomic_load_explicit(&pk_rt.running, memory_order_acquire)))
        return true;
    not_running();
    return atomic_load_explicit(&pk_rt.running, memory_order_acquire);
}

/* One event in one slot: a run that records allocations has 64-byte slots (monitor.c). */
PK_HOT_FN static inline __attribute__((always_inline)) void
push(struct pk_thread *t, uint32_t kind, enum pk_alloc_call call, const void *block, uintptr_t site,
     uint64_t size, const void *old, uint64_t alignment, uint64_t asked)
{
    uint64_t head;
    struct pk_ring *r = pk_ring_claim(t, &head);
    if (PK_UNLIKELY(!r))
        return;
    fill_event(pk_ring_own_slot(r, head, PK_SLOT_SHIFT_SAMPLED), kind, call, block, site, size, old,
               alignment, asked);
    pk_ring_publish(r, head);
}

PK_HOT_FN static inline __attribute__((always_inline)) void
record(struct pk_thread *t, enum pk_alloc_call call, const void *block, uintptr_t site,
       uint64_t size, const void *old, uint64_t alignment, uint64_t asked)
{
    if (PK_UNLIKELY(!run_open()))
        return;
    /* A free needs no stack: its block's allocation has one. */
    unsigned depth = call < PK_CALL_FREE && block
                         ? atomic_load_explicit(&pk_rt.stack_depth, memory_order_relaxed)
                         : 0;
    if (PK_UNLIKELY(depth)) {
        record_stacked(t, depth, call, block, site, size, old, alignment, asked);
        return;
    }
    push(t, PK_RAW_ALLOC, call, block, site, size, old, alignment, asked);
}

/* A realloc's start (PK_RAW_REALLOC_START) or failure (PK_RAW_REALLOC_FAILED): no record. */
PK_HOT_FN static inline __attribute__((always_inline)) void
record_realloc_step(struct pk_thread *t, uint32_t step, enum pk_alloc_call call, const void *old,
                    uintptr_t site)
{
    if (PK_LIKELY(run_open()))
        push(t, PK_RAW_ALLOC | step, call, NULL, site, 0, old, 0, 0);
}

#define SITE() ((uintptr_t)__builtin_return_address(0))

/* ---- the C allocation functions ----------------------------------------------------- */

PK_EXPORT void *malloc(size_t size)
{
    if (PK_UNLIKELY(!ready()))
        return arena_alloc(size);
    if (PK_LIKELY(!recording(&pk_self)))
        return next.malloc(size);
    ENTER(t);
    void *p = next.malloc(size);
    if (p)
        record(t, PK_CALL_MALLOC, p, SITE(), size, NULL, 0, size);
    return p;
}

PK_EXPORT void *calloc(size_t count, size_t size)
{
    if (PK_UNLIKELY(!ready())) {
        size_t bytes;
        if (__builtin_mul_overflow(count, size, &bytes))
            return NULL;
        return arena_alloc(bytes); /* static memory starts zeroed */
    }
    if (PK_LIKELY(!recording(&pk_self)))
        return next.calloc(count, size);
    ENTER(t);
    void *p = next.calloc(count, size);
    if (p)
        record(t, PK_CALL_CALLOC, p, SITE(), (uint64_t)count * size, NULL, 0,
               (uint64_t)count * size);
    return p;
}

/* A block from the arena moves to the real allocator the first time it grows. */
PK_HOT_FN static void *realloc_from_arena(void *old, size_t size)
{
    void *p = ready() ? next.malloc(size) : arena_alloc(size);
    if (p) {
        size_t keep = arena_size(old);
        memcpy(p, old, keep < size ? keep : size);
    }
    return p;
}

/*
 * realloc(p, 0) frees p and returns NULL (glibc's behaviour, whatever the
 * next allocator would do) and is recorded as a free. Any other realloc of a
 * block is recorded when it returns (the new block is known only then), but
 * it may give the old block back before that, and another thread may be
 * handed it: so its start is recorded before the call, and the drain puts
 * the realloc before that thread's allocation (drain.c). A failed realloc
 * says so and makes no record: its block stays live.
 */
PK_HOT_FN static void *realloc_as(enum pk_alloc_call call, void *old, size_t size, uintptr_t site)
{
    if (PK_UNLIKELY(old && in_arena(old)))
        return realloc_from_arena(old, size);
    if (PK_UNLIKELY(!ready()))
        return arena_alloc(size);
    if (PK_LIKELY(!recording(&pk_self))) {
        if (old && size == 0) {
            next.free(old);
            return NULL;
        }
        return next.realloc(old, size);
    }
    ENTER(t);
    if (old && size == 0) {
        record(t, call, NULL, site, 0, old, 0, 0);
        next.free(old);
        return NULL;
    }
    if (old)
        record_realloc_step(t, PK_RAW_REALLOC_START, call, old, site);
    void *p = next.realloc(old, size);
    if (p)
        record(t, call, p, site, size, old, 0, size);
    else if (old)
        record_realloc_step(t, PK_RAW_REALLOC_FAILED, call, old, site);
    return p;
}

PK_EXPORT void *realloc(void *old, size_t size)
{
    return realloc_as(PK_CALL_REALLOC, old, size, SITE());
}

/* Not forwarded: glibc's would call its own realloc, not the allocator's. */
PK_EXPORT void *reallocarray(void *old, size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc_as(PK_CALL_REALLOCARRAY, old, bytes, SITE());
}

/* free(NULL) records nothing and leaves errno as it was. */
PK_EXPORT void free(void *p)
{
    if (PK_UNLIKELY(!p || in_arena(p)))
        return;
    if (PK_LIKELY(!recording(&pk_self))) {
        next.free(p);
        return;
    }
    ENTER(t);
    /* Recorded before the block can be handed out again, on any thread. */
    record(t, PK_CALL_FREE, p, SITE(), 0, NULL, 0, 0);
    next.free(p);
}

PK_EXPORT int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (PK_UNLIKELY(!ready()))
        return ENOMEM;
    if (PK_LIKELY(!recording(&pk_self)))
        return next.posix_memalign(out, alignment, size);
    ENTER(t);
    int rc = next.posix_memalign(out, alignment, size);
    if (rc == 0)
        record(t, PK_CALL_POSIX_MEMALIGN, *out, SITE(), size, NULL, alignment, size);
    return rc;
}

PK_HOT_FN static void *aligned_as(enum pk_alloc_call call, aligned_fn fn, size_t alignment,
                                  size_t size, size_t asked, uintptr_t site)
{
    if (PK_UNLIKELY(!ready()))
        return NULL;
    if (PK_LIKELY(!recording(&pk_self)))
        return fn(alignment, asked);
    ENTER(t);
    void *p = fn(alignment, asked);
    if (p)
        record(t, call, p, site, size, NULL, alignment, asked);
    return p;
}

PK_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    return aligned_as(PK_CALL_ALIGNED_ALLOC, next.aligned_alloc, alignment, size, size, SITE());
}

PK_EXPORT void *memalign(size_t alignment, size_t size)
{
    return aligned_as(PK_CALL_MEMALIGN, next.memalign, alignment, size, size, SITE());
}

PK_EXPORT void *valloc(size_t size)
{
    return aligned_as(PK_CALL_VALLOC, next.memalign, (size_t)sysconf(_SC_PAGESIZE), size, size,
                      SITE());
}

/* pvalloc rounds the size up to whole pages (one page for 0); not every allocator has it. */
PK_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t asked = size ? (size + page - 1) & ~(page - 1) : page;
    if (asked < size) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned_as(PK_CALL_PVALLOC, next.memalign, page, size, asked, SITE());
}

/* ---- C++ operator new and delete (Itanium ABI names) ------------------------------------ */

#define NEW(name, call, fn_field)                                                                  \
    PK_EXPORT void *name(size_t size);                                                             \
    PK_EXPORT void *name(size_t size)                                                              \
    {                                                                                              \
        if (PK_LIKELY(!recording(&pk_self)))                                                       \
            return next.fn_field(size);                                                            \
        ENTER(t);                                                                                  \
        void *p = next.fn_field(size);                                                             \
        record(t, call, p, SITE(), size, NULL, 0, size);                                           \
        return p;                                                                                  \
    }

#define NEW_NOTHROW(name, call, fn_field)                                                          \
    PK_EXPORT void *name(size_t size, const void *tag);                                            \
    PK_EXPORT void *name(size_t size, const void *tag)                                             \
    {                                                                                              \
        if (PK_LIKELY(!recording(&pk_self)))                                                       \
            return next.fn_field(size, tag);                                                       \
        ENTER(t);                                                                                  \
        void *p = next.fn_field(size, tag);                                                        \
        if (p)                                                                                     \
            record(t, call, p, SITE(), size, NULL, 0, size);                                       \
        return p;                                                                                  \
    }

#define NEW_ALIGNED(name, call, fn_field)                                                          \
    PK_EXPORT void *name(size_t size, size_t alignment);                                           \
    PK_EXPORT void *name(size_t size, size_t alignment)                                            \
    {                                                                                              \
        if (PK_LIKELY(!recording(&pk_self)))                                                       \
            return next.fn_field(size, alignment);                                                 \
        ENTER(t);                                                                                  \
        void *p = next.fn_field(size, alignment);                                                  \
        record(t, call, p, SITE(), size, NULL, alignment, size);                                   \
        return p;                                                                                  \
    }

#define NEW_ALIGNED_NOTHROW(name, call, fn_field)                                                  \
    PK_EXPORT void *name(size_t size, size_t alignment, const void *tag);                          \
    PK_EXPORT void *name(size_t size, size_t alignment, const void *tag)                           \
    {                                                                                              \
        if (PK_LIKELY(!recording(&pk_self)))                                                       \
            return next.fn_field(size, alignment, tag);                                            \
        ENTER(t);                                                                                  \
        void *p = next.fn_field(size, alignment, tag);                                             \
        if (p)                                                                                     \
            record(t, call, p, SITE(), size, NULL, alignment, size);                               \
        return p;                                                                                  \
    }

/* Deletes are recorded before the block goes back, as free is. */
#define DELETE(name, call, fn_field, params, args)                                                 \
    PK_EXPORT void name params;                                                                    \
    PK_EXPORT void name params                                                                     \
    {                                                                                              \
        if (!p)                                                                                    \
            return;                                                                                \
        if (PK_LIKELY(!recording(&pk_self))) {                                                     \
            next.fn_field args;                                                                    \
            return;                                                                                \
        }                                                                                          \
        ENTER(t);                                                                                  \
        record(t, call, p, SITE(), 0, NULL, 0, 0);                                                 \
        next.fn_field args;                                                                        \
    }

/* clang-format off */
NEW(_Znwm, PK_CALL_NEW, new_)
NEW(_Znam, PK_CALL_NEW_ARRAY, new_array)
NEW_NOTHROW(_ZnwmRKSt9nothrow_t, PK_CALL_NEW_NOTHROW, new_nothrow)
NEW_NOTHROW(_ZnamRKSt9nothrow_t, PK_CALL_NEW_ARRAY_NOTHROW, new_array_nothrow)
NEW_ALIGNED(_ZnwmSt11align_val_t, PK_CALL_NEW_ALIGNED, new_aligned)
NEW_ALIGNED(_ZnamSt11align_val_t, PK_CALL_NEW_ARRAY_ALIGNED, new_array_aligned)
NEW_ALIGNED_NOTHROW(_ZnwmSt11align_val_tRKSt9nothrow_t, PK_CALL_NEW_ALIGNED_NOTHROW,
                    new_aligned_nothrow)
NEW_ALIGNED_NOTHROW(_ZnamSt11align_val_tRKSt9nothrow_t, PK_CALL_NEW_ARRAY_ALIGNED_NOTHROW,
                    new_array_aligned_nothrow)
DELETE(_ZdlPv, PK_CALL_DELETE, delete_, (void *p), (p))
DELETE(_ZdaPv, PK_CALL_DELETE_ARRAY, delete_array, (void *p), (p))
DELETE(_ZdlPvm, PK_CALL_DELETE_SIZED, delete_sized, (void *p, size_t n), (p, n))
DELETE(_ZdaPvm, PK_CALL_DELETE_ARRAY_SIZED, delete_array_sized, (void *p, size_t n), (p, n))
DELETE(_ZdlPvRKSt9nothrow_t, PK_CALL_DELETE_NOTHROW, delete_nothrow,
       (void *p, const void *tag), (p, tag))
DELETE(_ZdaPvRKSt9nothrow_t, PK_CALL_DELETE_ARRAY_NOTHROW, delete_array_nothrow,
       (void *p, const void *tag), (p, tag))
DELETE(_ZdlPvSt11align_val_t, PK_CALL_DELETE_ALIGNED, delete_aligned,
       (void *p, size_t a), (p, a))
DELETE(_ZdaPvSt11align_val_t, PK_CALL_DELETE_ARRAY_ALIGNED, delete_array_aligned,
       (void *p, size_t a), (p, a))
DELETE(_ZdlPvmSt11align_val_t, PK_CALL_DELETE_SIZED_ALIGNED, delete_sized_aligned,
       (void *p, size_t n, size_t a), (p, n, a))
DELETE(_ZdaPvmSt11align_val_t, PK_CALL_DELETE_ARRAY_SIZED_ALIGNED, delete_array_sized_aligned,
       (void *p, size_t n, size_t a), (p, n, a))
DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, PK_CALL_DELETE_ALIGNED_NOTHROW,
       delete_aligned_nothrow, (void *p, size_t a, const void *tag), (p, a, tag))
DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, PK_CALL_DELETE_ARRAY_ALIGNED_NOTHROW,
       delete_array_aligned_nothrow, (void *p, size_t a, const void *tag), (p, a, tag))
/* clang-format on */

/* ---- leaving without exit's handlers ---------------------------------------------------- */

/*
 * _exit skips the atexit handler that ends the run: the run of allocations
 * is ended here first, so its frees and leaks are whole. Not from inside an
 * allocation call (a signal handler that interrupted one): the allocator's
 * locks may be held, so the process just leaves.
 */
PK_HOT_FN __attribute__((noreturn)) static void leave_process(exit_fn next_exit, int status)
{
    if (atomic_load(&pk_rt.allocations) && atomic_load(&pk_rt.running) && !pk_self.busy)
        pk_end_run_at_exit();
    if (next_exit)
        next_exit(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

PK_EXPORT __attribute__((noreturn)) void _exit(int status)
{
    leave_process(ready() ? next.exit_ : NULL, status);
}

PK_EXPORT __attribute__((noreturn)) void _Exit(int status)
{
    leave_process(ready() ? next.exit_c99 : NULL, status);
}

/* ---- dlclose ----------------------------------------------------------------------------- */

/* The library's names kept past its close (src/unload.c). */
PK_EXPORT int dlclose(void *handle)
{
    if (!ready() || !next.dlclose_)
        return -1; /* only while dlsym is finding the next allocator: nothing to close yet */
    return pk_close_library(handle, next.dlclose_);
}

/* ---- what the alloc monitor asks ---------------------------------------------------------- */

/*
 * Whether this interposer is the malloc the program calls (a sanitizer's,
 * preloaded before it, would win) and the library its calls go on to.
 */
PK_HIDDEN int pk_interposer_status(const char **next_library);
/*
 * Whether this interposer is the malloc the program calls (a sanitizer's,
 * preloaded before it, would win), and the library its calls go on to.
 * Asked by calling malloc with recording on before the run: a call that
 * reaches record() with no run open proves it. (Comparing addresses would
 * not: a non-PIE program's own PLT entry can be what dlsym finds.)
 */
int pk_interposer_status(const char **next_library)
{
    Dl_info info;
    *next_library = "";
    if (!ready() || atomic_load(&pk_rt.running))
        return -1;
    if (dladdr((void *)(uintptr_t)next.malloc, &info) && info.dli_fname)
        *next_library = info.dli_fname;
    atomic_store(&probe_reached, 0);
    uint32_t was = atomic_exchange(&pk_rt.allocations, 1);
    uint32_t busy = pk_self.busy;
    pk_self.busy = 0;
    void *(*volatile call)(size_t) = malloc;
    void *p = call(24);
    pk_self.busy = busy;
    atomic_store(&pk_rt.allocations, was);
    free(p);
    return atomic_load(&probe_reached) ? 0 : -1;
}
