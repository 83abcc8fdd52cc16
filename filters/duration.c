/*
 * duration.c — "min-duration:DURATION": a call shorter than DURATION leaves
 * no record at all, neither its call nor its return (uftrace record -t).
 * A call is only known to be long when its return comes, so call records
 * are held, per thread, until then. Drain thread; memory is one record per
 * open call of each thread, no more.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * The open calls of one thread, outermost first. Depths strictly increase
 * from bottom to top, which is what bounds the stack by the call depth.
 * calls[0 .. emitted) have already been passed on; since emitting always
 * flushes the whole stack, the emitted ones are always a bottom run.
 */
typedef struct held_stack {
    uint64_t thread;
    pk_record *calls; /* copies; their strings live until the process exits */
    size_t count;
    size_t capacity;
    size_t emitted;
} held_stack;

typedef struct duration_state {
    uint64_t threshold_ns;
    held_stack *stacks; /* one per thread seen with open calls; reused when empty */
    size_t stack_count;
    size_t stack_capacity;
    size_t last; /* the slot used last: records come in runs from one thread */
} duration_state;

static int min_duration_open(pk_filter *f, const char *arg, pk_error *err)
{
    duration_state *s = f->state;
    return pk_parse_duration("duration", arg, &s->threshold_ns, err);
}

/*
 * The thread's stack, or NULL when it has none and create is false. A
 * linear scan: the threads with open calls at one moment are few, and the
 * one-slot cache catches the common run of records from a single thread.
 */
static held_stack *stack_of(duration_state *s, uint64_t thread, bool create)
{
    if (s->last < s->stack_count && s->stacks[s->last].thread == thread)
        return &s->stacks[s->last];
    size_t free_slot = s->stack_count;
    for (size_t i = 0; i < s->stack_count; i++) {
        if (s->stacks[i].thread == thread) {
            s->last = i;
            return &s->stacks[i];
        }
        if (s->stacks[i].count == 0 && free_slot == s->stack_count)
            free_slot = i;
    }
    if (!create)
        return NULL;
    /* Reuse the slot of a thread with nothing open (it may have ended),
     * keeping its buffer, so slots are bounded by the threads open at once. */
    if (free_slot == s->stack_count) {
        pk_grow(&s->stacks, &s->stack_capacity, s->stack_count, sizeof *s->stacks);
        memset(&s->stacks[s->stack_count], 0, sizeof s->stacks[0]);
        s->stack_count++;
    }
    s->stacks[free_slot].thread = thread;
    s->last = free_slot;
    return &s->stacks[free_slot];
}

static void stack_push(held_stack *st, const pk_record *rec)
{
    pk_grow(&st->calls, &st->capacity, st->count, sizeof *st->calls);
    st->calls[st->count++] = *rec;
}

static void stack_pop(held_stack *st)
{
    st->count--;
    if (st->emitted > st->count)
        st->emitted = st->count;
}

/*
 * Forgets open calls at depth `depth` or deeper. In a complete stream there
 * are none; there are when a filter in front dropped their returns (or a
 * longjmp skipped them). Such a call's duration is unknown, so a held one
 * is dropped rather than guessed long; one already passed on stays passed.
 */
static void stack_unwind(held_stack *st, uint64_t depth)
{
    while (st->count && st->calls[st->count - 1].depth >= depth)
        stack_pop(st);
}

/* Passes on every held call, outermost first: a long call below them
 * proves they are at least as long. */
static void stack_emit(held_stack *st, pk_sink *next)
{
    for (size_t i = st->emitted; i < st->count; i++)
        pk_sink_push(next, &st->calls[i]);
    st->emitted = st->count;
}

static void on_call(duration_state *s, const pk_record *rec)
{
    held_stack *st = stack_of(s, rec->thread, true);
    stack_unwind(st, rec->depth);
    stack_push(st, rec);
}

/*
 * A return decides its call (same thread, same depth). A long one passes
 * its call, the held calls around it and itself. A return whose call was
 * already passed on (because a longer callee was found first) always
 * passes, so the output never holds a call without its return. A return
 * with no open call at its depth is judged on its duration alone.
 */
static void on_return(duration_state *s, const pk_record *rec, pk_sink *next)
{
    held_stack *st = stack_of(s, rec->thread, false);
    bool matched = false;
    bool call_emitted = false;
    if (st) {
        stack_unwind(st, (uint64_t)rec->depth + 1);
        matched = st->count && st->calls[st->count - 1].depth == rec->depth;
        call_emitted = matched && st->emitted == st->count;
    }
    if (call_emitted || rec->duration_ns >= s->threshold_ns) {
        if (st)
            stack_emit(st, next);
        pk_sink_push(next, rec);
    }
    if (matched)
        stack_pop(st);
}

/*
 * A checkpoint is a moment the user asked for: it passes, and so do the held
 * calls around it (its profiler among them), so it never comes out before them.
 */
static void on_checkpoint(duration_state *s, const pk_record *rec, pk_sink *next)
{
    held_stack *st = stack_of(s, rec->thread, false);
    if (st) {
        stack_unwind(st, rec->depth);
        stack_emit(st, next);
    }
    pk_sink_push(next, rec);
}

static void min_duration_push(pk_filter *f, const pk_record *rec, pk_sink *next)
{
    duration_state *s = f->state;
    switch (rec->type) {
    case PK_EVENT_CALL:
        on_call(s, rec);
        return;
    case PK_EVENT_RETURN:
        on_return(s, rec, next);
        return;
    case PK_EVENT_CHECKPOINT:
        on_checkpoint(s, rec, next);
        return;
    default:
        break;
    }
    /* Not a call, return or checkpoint (an allocation): there is no duration to judge. */
    pk_sink_push(next, rec);
}

static int by_index(const void *a, const void *b)
{
    const pk_record *x = *(const pk_record *const *)a;
    const pk_record *y = *(const pk_record *const *)b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Calls still held when the run ends never returned: they lasted at least
 * until the end, which is as much as we can know, and dropping them would
 * hide the calls the program was stuck in (a main that never returned, a
 * thread still blocked). So they pass, all threads together in index order.
 */
static void min_duration_finish(pk_filter *f, pk_sink *next)
{
    duration_state *s = f->state;
    size_t held = 0;
    for (size_t i = 0; i < s->stack_count; i++)
        held += s->stacks[i].count - s->stacks[i].emitted;
    if (held) {
        const pk_record **order = pk_xcalloc(held, sizeof *order);
        size_t n = 0;
        for (size_t i = 0; i < s->stack_count; i++)
            for (size_t j = s->stacks[i].emitted; j < s->stacks[i].count; j++)
                order[n++] = &s->stacks[i].calls[j];
        qsort(order, n, sizeof *order, by_index);
        for (size_t i = 0; i < n; i++)
            pk_sink_push(next, order[i]);
        free(order);
    }
    for (size_t i = 0; i < s->stack_count; i++)
        s->stacks[i].count = s->stacks[i].emitted = 0;
}

static void min_duration_close(pk_filter *f)
{
    duration_state *s = f->state;
    for (size_t i = 0; i < s->stack_count; i++)
        free(s->stacks[i].calls);
    free(s->stacks);
}

const pk_filter_ops pk_filter_min_duration = {
    .name = "min-duration",
    .usage = "min-duration:DURATION",
    .needs_arg = true,
    .size = sizeof(duration_state),
    .open = min_duration_open,
    .push = min_duration_push,
    .finish = min_duration_finish,
    .close = min_duration_close,
};
