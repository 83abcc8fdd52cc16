/*
 * hooks.c — the hot path: the entry points a monitored thread calls
 * (__cyg_profile_func_enter/exit, zones, PK_MONITOR scopes) and the one
 * function that stores a raw event. Runs on monitored threads: no locks,
 * no malloc, no stdio; guarded against re-entry (signal handlers).
 */
#include "clock.h"
#include "../monitors/function_memory.h"
#include "hot.h"
#include "internal.h"
#include "profiler.h"

#include <string.h>

#define PK_EXPORT __attribute__((visibility("default"), no_instrument_function))

/* Keeps the compiler from moving ring stores across the re-entry flag. */
#define SIGNAL_FENCE() atomic_signal_fence(memory_order_seq_cst)

/* function-memory's sample is taken inline (see monitors/function_memory.h). */
PK_HOT_FN static inline __attribute__((always_inline)) void
take_sample(void (*sample)(uint64_t *), uint64_t values[PK_SAMPLE_VALUES])
{
    if (sample == pk_function_memory_sample)
        pk_memory_sample(values);
    else if (sample)
        sample(values);
}

/* Inlined into each hook: the call and its saved registers cost about a nanosecond. */
PK_HOT_FN static inline __attribute__((always_inline)) void emit(struct pk_thread *t, uint32_t kind,
                                                                 uintptr_t fn, uintptr_t site)
{
    uint64_t head;
    struct pk_ring *r = pk_ring_claim(t, &head);
    if (PK_UNLIKELY(!r))
        return;
    void (*sample)(uint64_t *) = pk_rt.sample;
    struct pk_raw_event *ev = pk_ring_own_slot(r, head, pk_slot_shift(sample));
    ev->fn = fn;
    ev->site = site;
    ev->kind = kind;
    /* A call's time is taken last and a return's first, so the hook's own
     * cost stays outside the measured function. */
    if (kind & PK_RAW_RETURN) {
        ev->raw_time = pk_clock_raw();
        take_sample(sample, ev->values);
    } else {
        take_sample(sample, ev->values);
        ev->raw_time = pk_clock_raw();
    }
    pk_ring_publish(r, head);
    /* With a sample's system call between events the next slot's line is
     * not ready when the next event stores into it: asked for here, it
     * comes while the program runs (function-memory: about 20 ns less an
     * event, docs/PERFORMANCE.md). Without a sample, events come fast
     * enough for the hardware prefetcher to follow. */
    if (sample)
        __builtin_prefetch(pk_ring_own_slot(r, head + 1, PK_SLOT_SHIFT_SAMPLED), 1);
}

PK_HOT_FN static inline bool thread_is_recording(const struct pk_thread *t)
{
    return atomic_load_explicit(&pk_rt.enabled, memory_order_relaxed) | t->scope;
}

PK_HOT_FN static inline bool focus_contains(const struct pk_focus_set *set, uintptr_t fn)
{
    uint64_t i = ((uint64_t)fn * 0x9E3779B97F4A7C15ull) >> 32;
    for (;; i++) {
        uintptr_t slot = set->slots[i & set->mask];
        if (slot == fn)
            return true;
        if (slot == 0)
            return false;
    }
}

/* Re-entry (a signal handler interrupting a hook): count the loss. */
PK_HOT_FN static void reentered(struct pk_thread *t)
{
    if (t->ring)
        atomic_fetch_add_explicit(&t->ring->dropped, 1, memory_order_relaxed);
}

/*
 * Focus: a focused function's entry opens the extent and its exit closes it;
 * everything inside is recorded, whatever library calls come between.
 */
PK_HOT_FN static inline __attribute__((always_inline)) void
emit_focused(struct pk_thread *t, const struct pk_focus_set *focus, uint32_t kind, uintptr_t fn,
             uintptr_t site)
{
    if (kind == PK_RAW_CALL) {
        if (focus_contains(focus, fn))
            t->focus++;
        if (t->focus)
            emit(t, kind, fn, site);
    } else if (t->focus) {
        emit(t, kind, fn, site);
        if (focus_contains(focus, fn))
            t->focus--;
    }
}

/*
 * The guard every entry point takes: false at once unless this thread
 * records, false (the loss counted) when it is inside a hook already;
 * otherwise the thread is marked busy until guard_leave. The caller then
 * stores its event only while a run is open (pk_rt.running).
 */
PK_HOT_FN static inline __attribute__((always_inline)) bool guard_enter(struct pk_thread *t)
{
    if (PK_LIKELY(!thread_is_recording(t)))
        return false;
    if (PK_UNLIKELY(t->busy)) {
        reentered(t);
        return false;
    }
    t->busy = 1;
    SIGNAL_FENCE();
    return true;
}

PK_HOT_FN static inline __attribute__((always_inline)) void guard_leave(struct pk_thread *t)
{
    SIGNAL_FENCE();
    t->busy = 0;
}

/*
 * What every hook does: the guard, then the event (through the focus set
 * for instrumented functions; zones and scopes bypass it: the user marked
 * them). Inlined, with `kind` a constant, so each hook keeps only its own
 * branch.
 */
PK_HOT_FN static inline __attribute__((always_inline)) void hook(uint32_t kind, uintptr_t fn,
                                                                 uintptr_t site)
{
    struct pk_thread *t = &pk_self;
    if (!guard_enter(t))
        return;
    if (atomic_load_explicit(&pk_rt.running, memory_order_acquire)) {
        const struct pk_focus_set *focus = pk_rt.focus;
        if (!focus || (kind & PK_RAW_ZONE))
            emit(t, kind, fn, site);
        else
            emit_focused(t, focus, kind, fn, site);
    }
    guard_leave(t);
}

PK_EXPORT void __cyg_profile_func_enter(void *fn, void *site)
{
    hook(PK_RAW_CALL, (uintptr_t)fn, (uintptr_t)site);
}

PK_EXPORT void __cyg_profile_func_exit(void *fn, void *site)
{
    hook(PK_RAW_RETURN, (uintptr_t)fn, (uintptr_t)site);
}

PK_HOT_FN static void emit_zone(uint32_t kind, const pk_zone *zone, uintptr_t site)
{
    hook(kind | PK_RAW_ZONE, (uintptr_t)zone, site);
}

PK_EXPORT void pk_zone_begin(const pk_zone *zone)
{
    emit_zone(PK_RAW_CALL, zone, 0);
}

PK_EXPORT void pk_zone_end(const pk_zone *zone)
{
    emit_zone(PK_RAW_RETURN, zone, 0);
}

PK_EXPORT void pk_zone_guard_end(pk_zone_guard *guard)
{
    pk_zone_end(*guard);
}

/* Scopes: the monitor side lives in monitor.c; these record the marked function. */
PK_HIDDEN void pk_scope_emit(uint32_t kind, const pk_zone *zone, uintptr_t site);
PK_HOT_FN void pk_scope_emit(uint32_t kind, const pk_zone *zone, uintptr_t site)
{
    emit_zone(kind, zone, site);
}

/* ---- profilers ------------------------------------------------------------------ */

/*
 * A profiler's event: one raw event and its payload in the slots after it,
 * published together (the drain never sees half of one). Strings are copied
 * (cut at PK_LABEL_MAX), so the caller's buffers may go away at once.
 */
PK_HOT_FN static void emit_profiler(struct pk_thread *t, uint32_t kind, const pk_profiler *p,
                                    uint64_t raw_time, const char *label)
{
    size_t message_len = strnlen(p->message, sizeof p->message);
    size_t label_len = strnlen(label, PK_LABEL_MAX);
    struct pk_profiler_payload head = {
        .start_raw = p->start_raw,
        .last_raw = p->last_raw,
        .site = p->site,
        .message_len = (uint32_t)message_len,
        .label_len = (uint32_t)label_len,
    };
    void (*sample)(uint64_t *) = pk_rt.sample;
    unsigned shift = pk_slot_shift(sample);
    size_t bytes = sizeof head + message_len + label_len;
    uint64_t slots = 1 + pk_payload_slots(bytes, shift);
    uint64_t head_index;
    struct pk_ring *r = pk_ring_claim_slots(t, slots, &head_index);
    if (!r)
        return;
    struct pk_raw_event *ev = pk_ring_own_slot(r, head_index, shift);
    if (sample)
        sample(ev->values);
    ev->raw_time = raw_time;
    ev->fn = (uintptr_t)p->span;
    ev->site = 0;
    ev->kind = kind;
    ev->payload = (uint32_t)bytes;
    pk_ring_put(r, head_index + 1, shift, 0, &head, sizeof head);
    pk_ring_put(r, head_index + 1, shift, sizeof head, p->message, message_len);
    pk_ring_put(r, head_index + 1, shift, sizeof head + message_len, label, label_len);
    pk_ring_publish_slots(r, head_index, slots);
}

/* A profiler's event: the hooks' guard, no focus (the user marked it). */
PK_HOT_FN void pk_profiler_emit(uint32_t kind, const pk_profiler *p, uint64_t raw_time,
                                const char *label)
{
    struct pk_thread *t = &pk_self;
    if (!guard_enter(t))
        return;
    if (atomic_load_explicit(&pk_rt.running, memory_order_acquire))
        emit_profiler(t, kind, p, raw_time, label);
    guard_leave(t);
}
