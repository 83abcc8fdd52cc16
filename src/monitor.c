/*
 * monitor.c — a monitor's life: loggers and focus set up front, the run
 * started by the first enable (or PK_MONITOR scope), counted enables and
 * disables, and the end of the run (flush, finish every recorder). One
 * monitor runs in a process at a time. Nothing here is on the hot path
 * except the few lines of pk_scope_enter/exit that only count.
 */
#include "clock.h"
#include "drain.h"
#include "hot.h"
#include "internal.h"
#include "profiler.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum monitor_state { MONITOR_IDLE, MONITOR_RUNNING, MONITOR_ENDED };

struct pk_monitor {
    const pk_monitor_ops *ops;       /* the call monitor, or "alloc" alone */
    const pk_monitor_ops *alloc_ops; /* "alloc" beside a call monitor, else NULL */
    char name[128];                  /* as asked: "function-memory,alloc" */
    bool calls;                      /* records function calls (the cyg hooks) */
    bool allocations;                /* records allocation calls (the interposer) */
    pk_logger **loggers;
    size_t logger_count;
    size_t logger_capacity;
    pk_items focus;       /* names and globs */
    char *drainer_record; /* drained by a process of its own, recording to these; else NULL */
    pk_run_info run;
    pk_run_totals totals;
    unsigned enables;
    enum monitor_state state;
};

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pk_monitor *_Atomic running_monitor;

/* The run's lock, counted in pk_self.locks (hot.h): an exec meanwhile leaves the run. */
static void lock_run(void)
{
    pk_lock_taking();
    pthread_mutex_lock(&run_lock);
}

static void unlock_run(void)
{
    pthread_mutex_unlock(&run_lock);
    pk_lock_released();
}

/* The lock as a forked process starts: free, held by nobody. */
static void reset_run_lock(void)
{
    pthread_mutex_init(&run_lock, NULL);
    pk_self.locks = 0;
}

/* Focus sets stay allocated until exit: a monitored thread may still hold
 * a pointer it read just before the run ended. */
static struct pk_focus_set *retired_focus_sets[64];
static size_t retired_focus_count;

/* ---- creation and configuration ------------------------------------------- */

pk_monitor *pk_monitor_new_ops(const pk_monitor_ops *ops, pk_error *err)
{
    if (!ops || !ops->name) {
        pk_fail(err, "monitor kind without a name");
        return NULL;
    }
    pk_monitor *m = pk_xcalloc(1, sizeof *m);
    m->ops = ops;
    snprintf(m->name, sizeof m->name, "%s", ops->name);
    m->calls = !ops->allocations;
    m->allocations = ops->allocations;
    return m;
}

static const pk_monitor_ops *find_monitor(const char *whole, const char *name, pk_error *err)
{
    const pk_monitor_ops *ops = pk_monitor_find(name);
    if (!ops) {
        char known[256];
        pk_monitor_known(known, sizeof known);
        pk_fail(err, "unknown monitor '%s' (known: %s)", whole, known);
    }
    return ops;
}

/* "CALLS,alloc" (either order): a call monitor and the allocation monitor in one run. */
static pk_monitor *new_pair(const char *name, pk_error *err)
{
    const char *comma = strchr(name, ',');
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)(comma - name), name);
    const pk_monitor_ops *a = find_monitor(name, first, err);
    const pk_monitor_ops *b = a ? find_monitor(name, comma + 1, err) : NULL;
    if (!b)
        return NULL;
    if (a->allocations == b->allocations) {
        pk_fail(err,
                "monitor '%s': combine one call monitor with alloc (e.g. "
                "function-memory,alloc)",
                name);
        return NULL;
    }
    pk_monitor *m = pk_monitor_new_ops(a->allocations ? b : a, err);
    m->alloc_ops = a->allocations ? a : b;
    m->allocations = true;
    snprintf(m->name, sizeof m->name, "%s,%s", m->ops->name, m->alloc_ops->name);
    return m;
}

pk_monitor *pk_monitor_new(const char *name, pk_error *err)
{
    if (name && strchr(name, ','))
        return new_pair(name, err);
    const pk_monitor_ops *ops = find_monitor(name ? name : "", name ? name : "", err);
    return ops ? pk_monitor_new_ops(ops, err) : NULL;
}

static int require_idle(const pk_monitor *m, const char *doing, pk_error *err)
{
    if (m->state != MONITOR_IDLE)
        return pk_fail(err, "cannot %s: monitor '%s' has already started", doing, m->name);
    return 0;
}

int pk_monitor_add_logger(pk_monitor *m, pk_logger *lg, pk_error *err)
{
    if (require_idle(m, "add a recorder", err) != 0)
        return -1;
    pk_grow(&m->loggers, &m->logger_capacity, m->logger_count, sizeof *m->loggers);
    m->loggers[m->logger_count++] = lg;
    return 0;
}

pk_logger *pk_monitor_record(pk_monitor *m, const char *spec, pk_error *err)
{
    if (require_idle(m, "add a recorder", err) != 0)
        return NULL;
    pk_recorder *r = pk_recorder_open(spec, err);
    if (!r)
        return NULL;
    pk_logger *lg = pk_logger_new(r);
    pk_monitor_add_logger(m, lg, err);
    return lg;
}

int pk_focus_parse(const char *names, pk_items *items, pk_error *err)
{
    pk_error inner;
    if (pk_items_split(names ? names : "", "name", "NAME[,GLOB...]", items, &inner) != 0)
        return pk_fail(err, "focus: %s", inner.message);
    return 0;
}

int pk_monitor_focus(pk_monitor *m, const char *names, pk_error *err)
{
    if (require_idle(m, "set the focus", err) != 0)
        return -1;
    pk_items items;
    if (pk_focus_parse(names, &items, err) != 0)
        return -1;
    pk_items_free(&m->focus);
    m->focus = items;
    return 0;
}

void pk_monitor_set_drainer(pk_monitor *m, const char *record)
{
    free(m->drainer_record);
    m->drainer_record = pk_xstrdup(record);
}

const pk_run_info *pk_monitor_run_info(const pk_monitor *m)
{
    return m->state == MONITOR_IDLE ? NULL : &m->run;
}

pk_run_totals pk_monitor_totals(const pk_monitor *m)
{
    return m->totals;
}

size_t pk_monitor_logger_count(const pk_monitor *m)
{
    return m->logger_count;
}

pk_logger *pk_monitor_logger_at(pk_monitor *m, size_t i)
{
    return i < m->logger_count ? m->loggers[i] : NULL;
}

const char *pk_monitor_name(const pk_monitor *m)
{
    return m->name;
}

/* ---- focus ----------------------------------------------------------------- */

struct focus_collect {
    uintptr_t *addresses;
    size_t count;
    size_t capacity;
};

static void collect_address(uintptr_t address, const char *name, void *user)
{
    (void)name;
    struct focus_collect *c = user;
    pk_grow(&c->addresses, &c->capacity, c->count, sizeof *c->addresses);
    c->addresses[c->count++] = address;
}

static int build_focus_set(pk_monitor *m, struct pk_focus_set **out, pk_error *err)
{
    *out = NULL;
    if (!m->focus.count)
        return 0;
    struct focus_collect c = {0};
    if (pk_symbols_each_match((const char *const *)m->focus.item, m->focus.count, collect_address,
                              &c, err) != 0)
        return -1;
    if (!c.count) {
        char names[256];
        pk_join_names((const char *const *)m->focus.item, m->focus.count, names, sizeof names);
        free(c.addresses);
        return pk_fail(err, "focus '%s': no function of that name in the loaded modules", names);
    }
    uint64_t slots = 16;
    while (slots < c.count * 2)
        slots <<= 1;
    struct pk_focus_set *set = pk_xcalloc(1, sizeof *set + slots * sizeof set->slots[0]);
    set->mask = slots - 1;
    for (size_t i = 0; i < c.count; i++) {
        uintptr_t a = c.addresses[i];
        uint64_t h = ((uint64_t)a * 0x9E3779B97F4A7C15ull) >> 32;
        while (set->slots[h & set->mask] && set->slots[h & set->mask] != a)
            h++;
        set->slots[h & set->mask] = a;
    }
    free(c.addresses);
    *out = set;
    return 0;
}

/* ---- runs -------------------------------------------------------------------- */

static void end_all_at_exit(void);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void process_setup(void)
{
    pk_rings_init();
    pk_clock_init();
    atexit(end_all_at_exit);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void fill_run_info(pk_monitor *m)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    m->run.monitor = m->name;
    m->run.flags = 0;
    m->run.clock = pk_clock_name();
    m->run.alloc_source = "unavailable: the monitor does not count allocations";
    m->run.command_line = pk_command_line();
    m->run.host = pk_host_name();
    m->run.pid = (int)getpid();
    m->run.start_ns = pk_clock_monotonic_ns();
    m->run.start_wall_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
}

/* The running run's wall clock minus its monotonic clock at its start; 0: no run. */
static _Atomic int64_t run_wall_offset_ns;

int64_t pk_wall_clock_ns(uint64_t monotonic_ns)
{
    int64_t offset = atomic_load_explicit(&run_wall_offset_ns, memory_order_relaxed);
    if (offset)
        return (int64_t)monotonic_ns + offset;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    return (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
}

static void close_parts(pk_monitor *m)
{
    if (m->ops->close)
        m->ops->close(m);
    if (m->alloc_ops && m->alloc_ops->close)
        m->alloc_ops->close(m);
}

/* What an enable turns on: the cyg hooks, the allocation interposer, or both. */
static void set_recording(const pk_monitor *m, uint32_t on)
{
    if (m->calls)
        atomic_store(&pk_rt.enabled, on);
    if (m->allocations)
        atomic_store(&pk_rt.allocations, on);
}

PK_HOT_FN static void sample_nothing(uint64_t values[PK_SAMPLE_VALUES])
{
    (void)values;
}

/* Starts m's run unless it is running; fails if another monitor runs. */
static int start_run(pk_monitor *m, pk_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, process_setup);

    lock_run();
    int rc = 0;
    pk_monitor *current = atomic_load(&running_monitor);
    if (current == m)
        goto out;
    if (current) {
        rc = pk_fail(err,
                     "cannot start monitor '%s': monitor '%s' is already running in this "
                     "process (one at a time)",
                     m->name, current->name);
        goto out;
    }
    if (m->state == MONITOR_ENDED) {
        rc = pk_fail(err, "cannot start monitor '%s': its run has ended; create a new monitor",
                     m->name);
        goto out;
    }
    fill_run_info(m);
    /* Before the monitor's own threads (the alloc sampler) take rings. */
    if (m->drainer_record && (rc = pk_rings_share(err)) != 0)
        goto out;
    if (m->ops->open && (rc = m->ops->open(m, &m->run, err)) != 0)
        goto out;
    struct pk_focus_set *focus = NULL;
    if ((m->alloc_ops && m->alloc_ops->open && (rc = m->alloc_ops->open(m, &m->run, err)) != 0) ||
        (rc = build_focus_set(m, &focus, err)) != 0) {
        close_parts(m);
        goto out;
    }
    for (size_t i = 0; i < m->logger_count; i++)
        pk_logger_start(m->loggers[i], &m->run);

    /* Allocation events fill a 64-byte slot: a run that records them has such
     * slots, and hooks that sample nothing then call an empty sampler. */
    void (*sample)(uint64_t *) = m->ops->sample;
    if (!sample && m->allocations)
        sample = sample_nothing;
    struct pk_pipeline pipeline = {
        .loggers = m->loggers,
        .logger_count = m->logger_count,
        .decode = m->ops->decode,
        .slot_shift = pk_slot_shift(sample), /* as the hooks pick it from pk_rt.sample */
        .start_ns = m->run.start_ns,
    };
    pk_rt.sample = sample;
    pk_rt.focus = focus;
    if (focus && retired_focus_count < PK_ARRAY_SIZE(retired_focus_sets))
        retired_focus_sets[retired_focus_count++] = focus;
    rc = m->drainer_record ? pk_drainer_start(&pipeline, &m->run, m->drainer_record, err)
                           : pk_drain_start(&pipeline, err);
    if (rc != 0) {
        pk_rt.sample = NULL;
        pk_rt.focus = NULL;
        close_parts(m);
        goto out;
    }
    m->state = MONITOR_RUNNING;
    atomic_store(&run_wall_offset_ns, m->run.start_wall_ns - (int64_t)m->run.start_ns);
    atomic_store(&running_monitor, m);
out:
    unlock_run();
    return rc;
}

/*
 * Ends m's run, the running one, with the run's lock held: every record
 * made so far is recorded. executed: this process is about to execute
 * another program, which ends the drain thread and every buffer in memory:
 * the run ends 'executed' and each recorder is closed now.
 */
static void end_run_locked(pk_monitor *m, bool executed)
{
    set_recording(m, 0);
    m->enables = 0;
    if (m->drainer_record)
        pk_drainer_stop(); /* the drainer has the totals */
    else
        pk_drain_stop(&m->totals);
    pk_rt.sample = NULL;
    pk_rt.focus = NULL;
    for (size_t i = 0; i < m->logger_count; i++) {
        if (!executed) {
            pk_logger_finish(m->loggers[i], &m->totals);
            continue;
        }
        pk_logger_executed(m->loggers[i], &m->totals);
        pk_recorder_close_now(pk_logger_recorder(m->loggers[i]));
    }
    close_parts(m);
    m->state = MONITOR_ENDED;
    atomic_store(&run_wall_offset_ns, 0);
    atomic_store(&running_monitor, NULL);
}

/* Ends m's run if it is running: every record made so far is recorded. */
static void end_run(pk_monitor *m)
{
    lock_run();
    if (atomic_load(&running_monitor) == m)
        end_run_locked(m, false);
    unlock_run();
}

int pk_monitor_enable(pk_monitor *m, pk_error *err)
{
    if (start_run(m, err) != 0)
        return -1;
    lock_run();
    if (m->enables++ == 0)
        set_recording(m, 1);
    unlock_run();
    return 0;
}

void pk_monitor_disable(pk_monitor *m)
{
    lock_run();
    bool last = false;
    if (atomic_load(&running_monitor) == m && m->enables > 0 && --m->enables == 0) {
        set_recording(m, 0);
        last = true;
    }
    unlock_run();
    if (last)
        pk_drain_sync();
}

void pk_monitor_end(pk_monitor *m)
{
    end_run(m);
    if (m->state == MONITOR_IDLE)
        m->state = MONITOR_ENDED;
}

void pk_monitor_free(pk_monitor *m)
{
    if (!m)
        return;
    end_run(m);
    for (size_t i = 0; i < m->logger_count; i++)
        pk_logger_free(m->loggers[i]);
    free(m->loggers);
    pk_items_free(&m->focus);
    free(m->drainer_record);
    free(m);
}

/* ---- decorator-style scopes ------------------------------------------------- */

PK_HIDDEN void pk_scope_emit(uint32_t kind, const pk_zone *zone, uintptr_t site);

int pk_scope_enter(pk_monitor *m, const pk_zone *zone, void *call_site)
{
    struct pk_thread *t = &pk_self;
    if (t->scope > 0) {
        /* Nested or recursive: count it, hook once. */
        t->scope++;
        return 0;
    }
    if (atomic_load_explicit(&running_monitor, memory_order_acquire) != m) {
        pk_error err;
        if (start_run(m, &err) != 0) {
            static _Atomic bool warned;
            if (!atomic_exchange(&warned, true))
                pk_warn("%s", err.message);
            return -1;
        }
    }
    t->scope = 1;
    pk_scope_emit(PK_RAW_CALL, zone, (uintptr_t)call_site);
    return 0;
}

void pk_scope_exit(const pk_zone *zone)
{
    struct pk_thread *t = &pk_self;
    if (t->scope == 0)
        return;
    if (t->scope > 1) {
        t->scope--;
        return;
    }
    pk_scope_emit(PK_RAW_RETURN, zone, 0);
    t->scope = 0;
    if (!atomic_load(&pk_rt.enabled))
        pk_drain_sync(); /* the monitor is off again here: flush, as a disable does */
}

void pk_scope_guard_exit(pk_zone_guard *guard)
{
    if (*guard)
        pk_scope_exit(*guard);
}

/* ---- process events ------------------------------------------------------- */

static void end_all_at_exit(void)
{
    pk_monitor *m = atomic_load(&running_monitor);
    if (m)
        end_run(m);
}

void pk_end_run_at_exit(void)
{
    pk_monitor *m = atomic_load(&running_monitor);
    if (m && m->allocations && m->run.pid == (int)getpid())
        end_run(m);
}

int pk_at_exec_parse(const char *text, bool *ends, pk_error *err)
{
    if (strcmp(text, "end") == 0)
        *ends = true;
    else if (strcmp(text, "leave") == 0)
        *ends = false;
    else
        return pk_fail(err, "PIKOC_AT_EXEC '%s': unknown value (known: end, leave)", text);
    return 0;
}

/*
 * PIKOC_AT_EXEC: whether an exec ends the run ('end', the default; also
 * when unset or empty) or leaves it ('leave'). Read at the exec, so a
 * program may set it while it runs.
 */
static bool ends_at_exec(void)
{
    const char *at = pk_setting("PIKOC_AT_EXEC");
    bool ends = true;
    pk_error err;
    if (at && pk_at_exec_parse(at, &ends, &err) != 0)
        pk_warn("%s; the run ends", err.message);
    return ends;
}

pk_monitor *pk_monitor_before_exec(bool (*may_run)(const void *what), const void *what)
{
    /* A vfork child shares this memory: it reads it and changes nothing. */
    pk_monitor *m = atomic_load(&running_monitor);
    if (!m || m->run.pid != (int)getpid() || pk_self.busy || pk_self.locks || m->drainer_record ||
        !ends_at_exec() || !may_run(what))
        return NULL;
    lock_run();
    bool ends = atomic_load(&running_monitor) == m;
    if (ends)
        end_run_locked(m, true);
    unlock_run();
    return ends ? m : NULL;
}

void pk_monitor_exec_failed(pk_monitor *m, const char *program, int error)
{
    pk_warn("executing %s failed (%s) after monitor '%s' ended its run 'executed' for it: "
            "what the program does next is not recorded",
            program, strerror(error), m->name);
}

/*
 * From pikoc's prepare handler to its parent or child handler, the forking
 * thread records nothing: the handlers of libraries registered before
 * pikoc's run in the child before pikoc's, while the child still maps its
 * parent's rings (shared with the parent's drainer), where what they
 * allocate would land in the parent's run.
 */
static PK_TLS uint32_t busy_before_fork;

void pk_monitor_drainer_forked(void)
{
    reset_run_lock();
}

/* Forking a drainer (drainer.c), the run's lock is held and its state stays as it is. */
static void fork_prepare(void)
{
    busy_before_fork = pk_self.busy;
    pk_self.busy = 1;
    if (pk_drainer_forking())
        return;
    lock_run();
    pk_drain_fork_prepare();
}

static void fork_parent(void)
{
    pk_self.busy = busy_before_fork;
    if (pk_drainer_forking())
        return;
    pk_drain_fork_parent();
    unlock_run();
}

/*
 * The child has no drain thread and shares the parent's files: its copy of
 * the run ends here without writing anything, and buffered bytes that
 * belong to the parent are never written twice. A child of a run that
 * records allocations (started from PIKOC_*) starts a run of its own at its
 * first allocation (src/interpose.c): not here, where little is safe, and
 * not at all when it only executes another program. A run drained by a
 * drainer process leaves that process and its rings to the parent. The
 * drainer's own processes stay busy: nothing they allocate is the program's.
 */
static void fork_child(void)
{
    if (pk_drainer_forking())
        return;
    pk_drainer_forget();
    reset_run_lock();
    pk_monitor *m = atomic_load(&running_monitor);
    /* This process is a child whose run has not started (its first allocation
     * starts it): so is this child, a daemon's second fork for one. */
    bool pending = atomic_load(&pk_rt.restart) != 0;
    atomic_store(&pk_rt.enabled, 0);
    atomic_store(&pk_rt.allocations, 0);
    pk_rt.sample = NULL;
    pk_rt.focus = NULL;
    pk_drain_forget_after_fork();
    if (m) {
        for (size_t i = 0; i < m->logger_count; i++) {
            pk_recorder *r = pk_logger_recorder(m->loggers[i]);
            r->failed = true;
            r->forked = true;
        }
        if (m->ops->after_fork)
            m->ops->after_fork();
        if (m->alloc_ops && m->alloc_ops->after_fork)
            m->alloc_ops->after_fork();
        m->state = MONITOR_ENDED;
        atomic_store(&running_monitor, NULL);
        if (m->allocations && m == pk_auto_monitor()) {
            atomic_store(&pk_rt.restart, 1);
            atomic_store(&pk_rt.allocations, 1);
        }
    } else if (pending) {
        atomic_store(&pk_rt.allocations, 1);
    }
    struct pk_ring *mine = pk_self.ring;
    if (mine)
        mine->tid = (uint64_t)syscall(SYS_gettid); /* the child is another thread */
    for (struct pk_ring *r = pk_rings_first(); r; r = r->next) {
        atomic_store(&r->tail, atomic_load(&r->head));
        if (r != mine)
            atomic_store(&r->state, PK_RING_FREE);
    }
    pk_self.scope = 0;
    pk_self.focus = 0;
    pk_self.busy = busy_before_fork;
}

__attribute__((destructor)) static void free_focus_sets(void)
{
    if (atomic_load(&running_monitor))
        return;
    for (size_t i = 0; i < retired_focus_count; i++)
        free(retired_focus_sets[i]);
    retired_focus_count = 0;
}
