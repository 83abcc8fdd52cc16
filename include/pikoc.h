/*
 * pikoc.h — the whole public API of libpikoc.
 *
 * A monitor turns what a program does into records (function entry and exit
 * with time, RSS/VMS and allocation counters); a logger passes each record
 * through a chain of filters; a recorder writes what passes. Every function
 * that can fail returns 0 on success and -1 on failure, and then fills the
 * pk_error it was given (when not NULL) with a message a user can act on.
 */
#ifndef PIKOC_H
#define PIKOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PK_API __attribute__((visibility("default")))
#else
#define PK_API
#endif

#define PK_VERSION "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

typedef struct pk_error {
    char message[512];
} pk_error;

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

typedef enum pk_event_type {
    PK_EVENT_CALL = 0,
    PK_EVENT_RETURN = 1,
    PK_EVENT_CHECKPOINT = 2, /* a profiler's mark (pk_profiler_mark) */
    /* Allocation calls (the "alloc" monitor): */
    PK_EVENT_ALLOC = 3,   /* a block was allocated (malloc, calloc, new, ...) */
    PK_EVENT_FREE = 4,    /* a block was freed (free, delete, realloc(p, 0)) */
    PK_EVENT_REALLOC = 5, /* a block moved or changed size: old_pointer freed, pointer allocated */
    PK_EVENT_SAMPLE = 6,  /* RSS and VMS of the process, taken on a timer (thread 0) */
} pk_event_type;

/* "call", "return", "checkpoint", "alloc", "free", "realloc", "sample"; NULL for an
 * unknown value. */
PK_API const char *pk_event_type_name(pk_event_type type);

/* Which optional parts of a record hold measured values. A part that is not
 * flagged was not measured: recorders print it as "-" (text) or leave it
 * empty (CSV), never as a made-up zero. */
enum pk_record_flags {
    PK_RECORD_MEMORY = 1u << 0, /* rss, vms */
    PK_RECORD_ALLOC = 1u << 1,  /* allocated, freed, alloc_delta, free_delta */
    PK_RECORD_SPAN = 1u << 2,   /* span, total_ns: a profiler's record */
    PK_RECORD_BLOCK = 1u << 3,  /* allocation records: alloc_function, pointer, old_pointer */
    PK_RECORD_SIZE = 1u << 4,   /* allocation records: size, usable_size */
};

/*
 * One event. Strings are owned by the process-wide symbol table (or by the
 * recorder that copied the record) and stay valid until the process exits;
 * they are never NULL ("" when unknown; "??" for an unknown function).
 */
typedef struct pk_record {
    uint64_t index;          /* position within the run, from 0 */
    pk_event_type type;      /* call, return or checkpoint */
    unsigned flags;          /* pk_record_flags */
    const char *function;    /* function (or zone) name */
    const char *file;        /* its source file */
    unsigned line;           /* its first line (0 when unknown) */
    const char *caller;      /* function holding the call site */
    const char *caller_file; /* source file of the call site */
    unsigned caller_line;    /* source line of the call site */
    uint64_t thread;         /* kernel thread id */
    unsigned depth;          /* open recorded calls on this thread before it */
    uint64_t time_ns;        /* since the run started */
    uint64_t duration_ns;    /* on a return: since the matching call */
    uint64_t rss;            /* resident set size, bytes */
    uint64_t vms;            /* virtual memory size, bytes */
    uint64_t allocated;      /* bytes this thread allocated so far */
    uint64_t freed;          /* bytes this thread freed so far */
    uint64_t alloc_delta;    /* on a return: allocated since the call */
    uint64_t free_delta;     /* on a return: freed since the call */
    uintptr_t address;       /* function (or zone descriptor) address */
    uintptr_t call_site;     /* return address in the caller */
    /* Profilers (see "Checkpoint profiler"): a profiler's start and finish are
     * a call and a return of its message; each mark is a checkpoint, whose
     * duration_ns, alloc_delta and free_delta count since the previous mark. */
    const char *label; /* a checkpoint's label; on a profiler's call, the
                        * context it continues ("" when none) */
    uint64_t span;     /* the profiler's id within the process */
    uint64_t total_ns; /* on a checkpoint: since the profiler started */
    /* Allocation records (PK_RECORD_BLOCK, PK_RECORD_SIZE). On these, function,
     * file and line name the innermost recorded call open on the thread ("" when
     * none), and caller, caller_file and caller_line the call site. */
    const char *alloc_function; /* "malloc", "operator new[]", "free", ... */
    uintptr_t pointer;          /* the block allocated, or freed by a free */
    uintptr_t old_pointer;      /* realloc: the block it replaced (0 for realloc(NULL, n)) */
    uint64_t size;              /* bytes requested (a free: those of the block freed) */
    uint64_t usable_size;       /* bytes the allocator gave (malloc_usable_size) */
    /* With --stack N (PIKOC_STACK): the allocation's return addresses, innermost
     * first (stack[0] is call_site), stack_depth of them; NULL and 0 without.
     * The same stack is the same pointer for the life of the process. */
    const uintptr_t *stack;
    unsigned stack_depth;
} pk_record;

/*
 * Record fields by name, shared by every recorder (columns, headers) and
 * every filter that names a field ("on-value:type=call").
 */
typedef enum pk_field_id {
    PK_FIELD_INDEX,
    PK_FIELD_TYPE,
    PK_FIELD_FUNCTION,
    PK_FIELD_FILE,
    PK_FIELD_LINE,
    PK_FIELD_CALLER,
    PK_FIELD_CALLER_FILE,
    PK_FIELD_CALLER_LINE,
    PK_FIELD_THREAD,
    PK_FIELD_DEPTH,
    PK_FIELD_TIME,
    PK_FIELD_DURATION,
    PK_FIELD_RSS,
    PK_FIELD_VMS,
    PK_FIELD_ALLOCATED,
    PK_FIELD_FREED,
    PK_FIELD_ALLOC_DELTA,
    PK_FIELD_FREE_DELTA,
    PK_FIELD_LABEL,
    PK_FIELD_SPAN,
    PK_FIELD_TOTAL,
    PK_FIELD_ALLOC_FUNCTION,
    PK_FIELD_POINTER,
    PK_FIELD_OLD_POINTER,
    PK_FIELD_SIZE,
    PK_FIELD_USABLE_SIZE,
    PK_FIELD_COUNT
} pk_field_id;

/* The field's name ("function", "rss", "time_ns", ...). */
PK_API const char *pk_field_name(pk_field_id field);
/* The field with that name, or -1 (and a message listing the names). */
PK_API int pk_field_lookup(const char *name, pk_error *err);
/* Whether the record holds a measured value for the field. */
PK_API bool pk_record_has_field(const pk_record *rec, pk_field_id field);
/*
 * Writes the field's value as text into buf (always NUL-terminated when
 * size > 0) and returns its length; an unmeasured field gives "".
 * Numbers are plain decimal, pointers hexadecimal ("0x7f..."), the type its
 * name ("call", "return", "checkpoint", "alloc", ...).
 */
PK_API size_t pk_record_format_field(const pk_record *rec, pk_field_id field, char *buf,
                                     size_t size);

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */

/* What a run is; handed to every recorder when the run starts. */
typedef struct pk_run_info {
    const char *monitor;      /* monitor name, e.g. "function-memory" */
    unsigned flags;           /* pk_record_flags the run's records can carry */
    const char *clock;        /* "tsc" or "monotonic" */
    const char *alloc_source; /* "jemalloc", or "unavailable: <why>" */
    const char *command_line; /* the program's arguments, space separated */
    const char *host;         /* host name */
    int pid;
    uint64_t start_ns;     /* CLOCK_MONOTONIC at the start of the run */
    int64_t start_wall_ns; /* CLOCK_REALTIME at the start of the run */
} pk_run_info;

/* What a run did; handed to every recorder when the run ends. */
typedef struct pk_run_totals {
    uint64_t events;     /* records built (before filters) */
    uint64_t calls;      /* call records built */
    uint64_t unmatched;  /* returns with no recorded call (monitor enabled mid-stack) */
    uint64_t unfinished; /* calls still open when the run ended */
    uint64_t dropped;    /* events lost (re-entry from a signal handler) */
    uint64_t end_ns;     /* time of the end, since the run started */
} pk_run_totals;

/* ------------------------------------------------------------------------ */
/* Recorders                                                                 */

typedef struct pk_recorder pk_recorder;

/*
 * A recorder kind. Every callback runs on pikoc's drain thread (never on a
 * monitored thread), one at a time. Write errors are returned, not printed:
 * the core reports the first one once and stops calling write afterwards.
 */
typedef struct pk_recorder_ops {
    const char *name;  /* kind in a spec: "csv" */
    const char *usage; /* spec form for messages: "csv:PATH" */
    bool needs_arg;    /* whether the spec must carry ":ARG" */
    size_t size;       /* bytes of private state, allocated zeroed */
    /* Called once by pk_recorder_new with the spec's ARG (NULL if none). */
    int (*open)(pk_recorder *r, const char *arg, pk_error *err);
    /* The run begins (header lines belong here). */
    int (*start)(pk_recorder *r, const pk_run_info *run, pk_error *err);
    int (*write)(pk_recorder *r, const pk_record *rec, pk_error *err);
    int (*flush)(pk_recorder *r, pk_error *err);
    /* The run ends; flush everything. */
    int (*finish)(pk_recorder *r, const pk_run_totals *totals, pk_error *err);
    /* Release private resources (state itself is freed by the core). */
    void (*close)(pk_recorder *r);
    /* Optional: sees every record of the run BEFORE the logger's filters, so
     * aggregates (calls, time, bytes per function) stay exact whatever the
     * filters keep out of the detailed record that write() receives. */
    int (*observe)(pk_recorder *r, const pk_record *rec, pk_error *err);
    /* Optional: the spec options it takes besides "flush" ("pub" for
     * "zmq+pub:..."), NULL-terminated; open() asks pk_recorder_option. */
    const char *const *options;
    /* Optional: writes recs[0] to recs[n - 1] in order, as n calls of write
     * would, and returns how many it wrote: n, or fewer when the next one
     * failed (err says why). When the logger has no filter and the recorder
     * no observe and no "flush" option, the core hands it the drain's
     * batches (up to 64 records), sparing a call per record; otherwise
     * write takes each record. */
    size_t (*write_many)(pk_recorder *r, const pk_record *recs, size_t n, pk_error *err);
    /* Optional, for a recorder with observe: observes and writes recs[0] to
     * recs[n - 1] in order, each observed then written before the next, as
     * observe and write in turn would; returns how many it wrote: n, or
     * fewer when the next one failed (err says why). When the logger has no
     * filter and the recorder no "flush" option, the core hands it the
     * drain's batches, sparing two calls per record. */
    size_t (*record_many)(pk_recorder *r, const pk_record *recs, size_t n, pk_error *err);
    /* Optional: the monitored program executed another image (pikoc run:
     * the new image is a run of its own), so the run ends there, in place
     * of finish: a store marks it 'executed' rather than complete. Without
     * it the recorder is closed with what it wrote, as after finish. */
    int (*executed)(pk_recorder *r, const pk_run_totals *totals, pk_error *err);
} pk_recorder_ops;

/* Adds a recorder kind to the registry consulted by specs. */
PK_API int pk_recorder_register(const pk_recorder_ops *ops, pk_error *err);
/*
 * Opens a recorder from a spec: KIND[+OPTION...][:ARG], e.g. "stdout",
 * "stderr+flush", "text:run.txt", "csv:run.csv", "zmq:tcp://host:5557".
 * Options: "flush" (write every record through at once; the default for a
 * terminal), and those of the kind ("zmq+pub:...").
 */
PK_API pk_recorder *pk_recorder_open(const char *spec, pk_error *err);
/* Creates a recorder of a given kind with ARG (may be NULL). */
PK_API pk_recorder *pk_recorder_new(const pk_recorder_ops *ops, const char *arg, pk_error *err);
/* Whether the spec named OPTION (one of ops->options). */
PK_API bool pk_recorder_option(const pk_recorder *r, const char *option);
PK_API void pk_recorder_set_auto_flush(pk_recorder *r, bool on);
PK_API bool pk_recorder_auto_flush(const pk_recorder *r);
PK_API const pk_recorder_ops *pk_recorder_ops_of(const pk_recorder *r);
/* The private state of a recorder (ops->size bytes). */
PK_API void *pk_recorder_state(pk_recorder *r);
/* Closes and frees a recorder that no logger owns. */
PK_API void pk_recorder_free(pk_recorder *r);

/* The in-memory recorder ("list"): keeps copies of every record. */
PK_API size_t pk_list_count(pk_recorder *r);
PK_API const pk_record *pk_list_get(pk_recorder *r, size_t i);
PK_API void pk_list_clear(pk_recorder *r);

/* ------------------------------------------------------------------------ */
/* Filters and loggers                                                       */

typedef struct pk_filter pk_filter;
typedef struct pk_sink pk_sink; /* where a filter sends what it passes on */

/* Hands a record to the rest of the chain (the next filter or the recorder). */
PK_API void pk_sink_push(pk_sink *next, const pk_record *rec);

/*
 * A filter kind. A simple filter sets accept; a filter that holds or
 * reorders records (minimum duration) sets push and finish instead. All run
 * on the drain thread.
 */
typedef struct pk_filter_ops {
    const char *name;  /* kind in a spec: "max-depth" */
    const char *usage; /* spec form for messages: "max-depth:N" */
    bool needs_arg;
    size_t size; /* bytes of private state, allocated zeroed */
    int (*open)(pk_filter *f, const char *arg, pk_error *err);
    bool (*accept)(pk_filter *f, const pk_record *rec);
    void (*push)(pk_filter *f, const pk_record *rec, pk_sink *next);
    /* The run ends: release or drop what is held. */
    void (*finish)(pk_filter *f, pk_sink *next);
    void (*close)(pk_filter *f);
} pk_filter_ops;

PK_API int pk_filter_register(const pk_filter_ops *ops, pk_error *err);
/*
 * Opens a filter from a spec: KIND[:ARG].
 *   on-value:FIELD=V[,V...]      pass records whose FIELD is one of the values
 *   not-on-value:FIELD=V[,V...]  pass the others
 *   on-change:FIELD              pass a record when FIELD differs from the last one seen
 *   max-depth:N                  pass records at depth <= N
 *   min-duration:DURATION        drop calls shorter than DURATION (e.g. 500ns, 2us, 1.5ms);
 *                                checkpoints pass, with the calls around them
 *   include:GLOB[,GLOB...]       pass functions matching a glob
 *   exclude:GLOB[,GLOB...]       drop functions matching a glob
 */
PK_API pk_filter *pk_filter_open(const char *spec, pk_error *err);
PK_API pk_filter *pk_filter_new(const pk_filter_ops *ops, const char *arg, pk_error *err);
/* A filter that asks fn; it passes the record when fn returns true. */
PK_API pk_filter *pk_filter_callback(bool (*fn)(const pk_record *rec, void *user), void *user);
PK_API void *pk_filter_state(pk_filter *f);
PK_API void pk_filter_free(pk_filter *f);

/* A logger: a chain of filters in front of one recorder. */
typedef struct pk_logger pk_logger;

/* The logger takes ownership of the recorder. */
PK_API pk_logger *pk_logger_new(pk_recorder *r);
/* Appends a filter to the chain; the logger takes ownership. */
PK_API void pk_logger_add_filter(pk_logger *lg, pk_filter *f);
PK_API int pk_logger_add_filter_spec(pk_logger *lg, const char *spec, pk_error *err);
PK_API pk_recorder *pk_logger_recorder(pk_logger *lg);
/*
 * Driving a logger by hand (a monitor does this on its drain thread):
 * start, push records, finish. Returns -1 once the recorder has failed.
 */
PK_API int pk_logger_start(pk_logger *lg, const pk_run_info *run);
PK_API void pk_logger_push(pk_logger *lg, const pk_record *rec);
/* The same for n records in order (what the drain thread does, a batch at a time). */
PK_API void pk_logger_push_many(pk_logger *lg, const pk_record *recs, size_t n);
PK_API int pk_logger_flush(pk_logger *lg);
PK_API int pk_logger_finish(pk_logger *lg, const pk_run_totals *totals);
/* In place of finish when the program executed another image: holding
 * filters release what they keep, and the recorder's executed op (if any)
 * ends the run. */
PK_API int pk_logger_executed(pk_logger *lg, const pk_run_totals *totals);
/* The first error the recorder reported, or NULL. */
PK_API const char *pk_logger_error(const pk_logger *lg);
PK_API void pk_logger_free(pk_logger *lg);

/* ------------------------------------------------------------------------ */
/* Monitors                                                                  */

typedef struct pk_monitor pk_monitor;

#define PK_SAMPLE_VALUES 4

/*
 * A monitor kind: what is measured at each event beyond time. sample runs on
 * the monitored thread at every event (no locks, no malloc, no stdio; mark it
 * __attribute__((no_instrument_function))); decode runs on the drain thread
 * and turns the samples into record fields.
 */
typedef struct pk_monitor_ops {
    const char *name;    /* "function-memory" */
    const char *summary; /* one line for --help */
    /* Prepares the run (off the hot path) and says in run->flags and
     * run->alloc_source what the records will carry. */
    int (*open)(pk_monitor *m, pk_run_info *run, pk_error *err);
    void (*sample)(uint64_t values[PK_SAMPLE_VALUES]);
    void (*decode)(const uint64_t values[PK_SAMPLE_VALUES], pk_record *rec);
    /* Called in a forked child (reopen descriptors, forget thread state). */
    void (*after_fork)(void);
    void (*close)(pk_monitor *m);
    /* Records allocation calls (seen by the interposer of libpikoc-preload.so)
     * instead of function calls. */
    bool allocations;
} pk_monitor_ops;

PK_API int pk_monitor_register(const pk_monitor_ops *ops, pk_error *err);
/*
 * "function", "function-memory", "alloc", or a registered kind; or a call
 * monitor and "alloc" together, comma separated ("function-memory,alloc"):
 * function calls and allocation calls in one run.
 */
PK_API pk_monitor *pk_monitor_new(const char *name, pk_error *err);
PK_API pk_monitor *pk_monitor_new_ops(const pk_monitor_ops *ops, pk_error *err);
/* The monitor takes ownership of the logger. Only before the first enable. */
PK_API int pk_monitor_add_logger(pk_monitor *m, pk_logger *lg, pk_error *err);
/* Opens a recorder from a spec and adds it behind a new, empty logger. */
PK_API pk_logger *pk_monitor_record(pk_monitor *m, const char *spec, pk_error *err);
/*
 * Records only inside the dynamic extent of the named functions (names or
 * globs, comma separated), their callees included. Names are resolved
 * against the symbol tables of the loaded modules when the monitor is
 * first enabled. Only before the first enable.
 */
PK_API int pk_monitor_focus(pk_monitor *m, const char *names, pk_error *err);
/*
 * Enables recording in every thread of the process. Enables count: the
 * monitor records until as many disables have been made. The first enable
 * starts the run; only one monitor can be running in a process at a time.
 */
PK_API int pk_monitor_enable(pk_monitor *m, pk_error *err);
/* The last disable waits until every record made so far is recorded and flushed. */
PK_API void pk_monitor_disable(pk_monitor *m);
/*
 * Ends the run if it started: waits for every record, finishes every
 * recorder (with the run's totals). The monitor cannot run again.
 */
PK_API void pk_monitor_end(pk_monitor *m);
/* Ends the run (pk_monitor_end) and frees the monitor, its loggers and recorders. */
PK_API void pk_monitor_free(pk_monitor *m);
PK_API const pk_run_info *pk_monitor_run_info(const pk_monitor *m);
PK_API pk_run_totals pk_monitor_totals(const pk_monitor *m);
PK_API const char *pk_monitor_name(const pk_monitor *m);

/*
 * Zones and decorator-style scopes. A zone descriptor is static; its address
 * identifies it. PK_ZONE("name") records a call now and the matching return
 * when the enclosing block ends; PK_MONITOR(m) at the top of a function
 * enables m on this thread for the dynamic extent of the call (nested and
 * recursive uses count and hook once) and records the function itself.
 */
typedef struct pk_zone {
    const char *name;
    const char *file;
    const char *function; /* enclosing function */
    unsigned line;
} pk_zone;

PK_API void pk_zone_begin(const pk_zone *zone);
PK_API void pk_zone_end(const pk_zone *zone);
/* Returns 0, or -1 when m cannot run (another monitor is running). */
PK_API int pk_scope_enter(pk_monitor *m, const pk_zone *zone, void *call_site);
PK_API void pk_scope_exit(const pk_zone *zone);

typedef const pk_zone *pk_zone_guard;
PK_API void pk_zone_guard_end(pk_zone_guard *guard);
PK_API void pk_scope_guard_exit(pk_zone_guard *guard);

#define PK_CAT2_(a, b) a##b
#define PK_CAT_(a, b) PK_CAT2_(a, b)

#define PK_ZONE(zone_name)                                                                         \
    static const pk_zone PK_CAT_(pk_zone_, __LINE__) = {(zone_name), __FILE__, __func__,           \
                                                        __LINE__};                                 \
    pk_zone_guard PK_CAT_(pk_zone_guard_, __LINE__) __attribute__((cleanup(pk_zone_guard_end))) =  \
        (pk_zone_begin(&PK_CAT_(pk_zone_, __LINE__)), &PK_CAT_(pk_zone_, __LINE__))

#define PK_MONITOR(monitor)                                                                        \
    static const pk_zone PK_CAT_(pk_zone_, __LINE__) = {__func__, __FILE__, __func__, __LINE__};   \
    pk_zone_guard PK_CAT_(pk_scope_guard_,                                                         \
                          __LINE__) __attribute__((cleanup(pk_scope_guard_exit))) =                \
        (pk_scope_enter((monitor), &PK_CAT_(pk_zone_, __LINE__), __builtin_return_address(0)) == 0 \
             ? &PK_CAT_(pk_zone_, __LINE__)                                                        \
             : (const pk_zone *)0)

/* ------------------------------------------------------------------------ */
/* Checkpoint profiler                                                       */

/*
 * Times the steps of one operation, in the style of piker's Profiler:
 *
 *     PK_PROFILER(prof, "load config", .enable = PK_PROFILE_ON);
 *     read_file();
 *     pk_profiler_mark(&prof, "read");
 *     parse();
 *     pk_profiler_mark(&prof, "parsed");
 *     // at the end of the block, on stderr:
 *     // > Entering load config
 *     //   read: 0.0312, tot:0.0312
 *     //   parsed: 1.2001, tot:1.2313
 *     // < Exiting load config, total time: 1.2400 ms
 *
 * Times are milliseconds with four decimals; a profiler started while
 * another printing one is open on the same thread prints its block indented
 * two spaces per level. While a monitor records the thread, the start and
 * the finish are also a call and a return of the message, and each mark a
 * checkpoint record, whether the profiler prints or not.
 */
typedef enum pk_profile_switch {
    PK_PROFILE_ENV = 0, /* prints when its name is in PIKOC_PROFILE ("a,b" or "all") */
    PK_PROFILE_ON,      /* prints */
    PK_PROFILE_OFF,     /* prints nothing */
} pk_profile_switch;

/* All zero means: enabled by PIKOC_PROFILE, no threshold, delayed, stderr. */
typedef struct pk_profiler_options {
    pk_profile_switch enable;
    /* The name PIKOC_PROFILE lists; NULL: the message. */
    const char *name;
    /* A profiler whose total is below this prints nothing (its nested
     * profilers' blocks included); steps are not judged one by one. */
    double ms_threshold;
    /* Print each line as it happens rather than the block at the finish; the
     * threshold then cannot hold anything back and is not applied. */
    bool immediate;
    FILE *stream; /* NULL: stderr */
} pk_profiler_options;

/* Where a profiler was created (PK_PROFILER fills it). */
typedef struct pk_profiler_site {
    const char *file;
    const char *function;
    unsigned line;
} pk_profiler_site;

#define PK_PROFILER_MESSAGE_SIZE 128
#define PK_CONTEXT_SIZE 128 /* room for any context pk_profiler_context writes */

/* A profiler lives in the caller's storage; its fields are private. */
typedef struct pk_profiler {
    struct pk_profiler *outer; /* the profiler open on the thread when it began */
    const pk_profiler_site *site;
    uint64_t span;  /* id within the process, from 1 */
    uint64_t trace; /* shared by every span of one request across processes */
    uint64_t start_raw, last_raw;
    uint64_t block; /* where its lines start in the thread's buffer */
    unsigned depth; /* printing profilers open on the thread before it */
    unsigned marks;
    bool printing, immediate, finished;
    double ms_threshold;
    FILE *stream;
    char message[PK_PROFILER_MESSAGE_SIZE];
} pk_profiler;

/*
 * Starts a profiler. site may be NULL; opts may be NULL (defaults). The
 * message is copied (and cut at PK_PROFILER_MESSAGE_SIZE - 1 bytes).
 */
PK_API void pk_profiler_begin(pk_profiler *p, const pk_profiler_site *site, const char *msg,
                              const pk_profiler_options *opts);
/*
 * Starts a profiler that continues a span of another process, from the
 * context that process's pk_profiler_context wrote. Returns 0, or -1 with a
 * message when the context is malformed (the profiler then starts as a root).
 */
PK_API int pk_profiler_begin_remote(pk_profiler *p, const pk_profiler_site *site, const char *msg,
                                    const char *context, const pk_profiler_options *opts,
                                    pk_error *err);
/* A checkpoint: the time since the previous one (or the start) and since the start. */
PK_API void pk_profiler_mark(pk_profiler *p, const char *label);
/* Finishes: prints the exit line (and the block, when delayed). Again is a no-op. */
PK_API void pk_profiler_finish(pk_profiler *p);
/* Whether the profiler prints (its switch and PIKOC_PROFILE decided). */
PK_API bool pk_profiler_printing(const pk_profiler *p);
/*
 * Writes this span's context for another process ("pk1-TRACE-SPAN-PID-TIME-HOST",
 * a few dozen bytes) and returns its length, or 0 when it does not fit in
 * size. Call it just before sending the request: TIME is the send time, and
 * the first mark after the reply closes the remote call. The other side
 * passes it to pk_profiler_begin_remote (or PK_PROFILER_REMOTE).
 */
PK_API size_t pk_profiler_context(const pk_profiler *p, char *buf, size_t size);

/*
 * PK_PROFILER(var, msg, options...) declares `var` and starts it; it
 * finishes when the enclosing block ends. The options are designated
 * initializers of pk_profiler_options: .enable = PK_PROFILE_ON, .ms_threshold = 5.
 */
#define PK_PROFILER(var, msg, ...)                                                                 \
    static const pk_profiler_site PK_CAT_(pk_profiler_site_, __LINE__) = {__FILE__, __func__,      \
                                                                          __LINE__};               \
    pk_profiler var __attribute__((cleanup(pk_profiler_finish)));                                  \
    pk_profiler_begin(&var, &PK_CAT_(pk_profiler_site_, __LINE__), (msg),                          \
                      &(const pk_profiler_options){__VA_ARGS__})

/* The same for a span continuing `context` (a malformed one starts a root). */
#define PK_PROFILER_REMOTE(var, msg, context, ...)                                                 \
    static const pk_profiler_site PK_CAT_(pk_profiler_site_, __LINE__) = {__FILE__, __func__,      \
                                                                          __LINE__};               \
    pk_profiler var __attribute__((cleanup(pk_profiler_finish)));                                  \
    (void)pk_profiler_begin_remote(&var, &PK_CAT_(pk_profiler_site_, __LINE__), (msg), (context),  \
                                   &(const pk_profiler_options){__VA_ARGS__}, (pk_error *)0)

/* ------------------------------------------------------------------------ */
/* Parsing helpers (shared by specs, the environment and the command line)   */

/* "500ns", "2us", "1.5ms", "3s" (a bare number is ns). */
PK_API int pk_parse_duration(const char *what, const char *text, uint64_t *ns, pk_error *err);
/* A non-negative decimal integer. */
PK_API int pk_parse_uint(const char *what, const char *text, uint64_t *value, pk_error *err);
/* fnmatch-style glob with *, ? and [...]. */
PK_API bool pk_glob_match(const char *glob, const char *text);

/*
 * Whole-program monitoring from the environment: when PIKOC_RECORD is set,
 * libpikoc starts a monitor as it loads and ends it at exit.
 *   PIKOC_RECORD       recorder specs separated by ';' (e.g. "stdout;csv:run.csv")
 *   PIKOC_MONITOR      monitor name (default function-memory)
 *   PIKOC_FOCUS        names or globs to focus on
 *   PIKOC_INCLUDE, PIKOC_EXCLUDE   globs (comma separated)
 *   PIKOC_MAX_DEPTH    N
 *   PIKOC_MIN_DURATION DURATION
 *   PIKOC_FILTER       further filter specs separated by ';'
 * Returns the monitor started this way, or NULL.
 */
PK_API pk_monitor *pk_auto_monitor(void);

#ifdef __cplusplus
}
#endif
#endif /* PIKOC_H */
