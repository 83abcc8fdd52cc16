/*
 * internal.h — what the parts of libpikoc share and users do not see:
 * the layouts behind the opaque handles, the registries, error and output
 * helpers. Nothing here runs on the hot path (see hot.h for that).
 */
#ifndef PK_INTERNAL_H
#define PK_INTERNAL_H

#include <pikoc.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/types.h>

#define PK_HIDDEN __attribute__((visibility("hidden")))
#define PK_NOINSTR __attribute__((no_instrument_function))
#define PK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors -------------------------------------------------------------- */

/* Fills err (when not NULL) and returns -1, so "return pk_fail(err, ...)". */
PK_HIDDEN int pk_fail(pk_error *err, const char *fmt, ...) PK_PRINTF(2, 3);
/* Prints "pikoc: <message>" on stderr with write(2), not stdio. */
PK_HIDDEN void pk_warn(const char *fmt, ...) PK_PRINTF(1, 2);

/* ---- memory that must not fail ------------------------------------------- */

PK_HIDDEN void *pk_xcalloc(size_t n, size_t size);
PK_HIDDEN char *pk_xstrdup(const char *s);
/* The directory a file at path is in: "." for a bare name, "/" for "/x". */
PK_HIDDEN char *pk_xdirname(const char *path);
/* Makes room for element `count` in a growable array (&array), doubling its capacity. */
PK_HIDDEN void pk_grow(void *array, size_t *capacity, size_t count, size_t element_size);

/* ---- specs ---------------------------------------------------------------- */

/* KIND[+OPTION...][:ARG] split into its parts. */
typedef struct pk_spec {
    char kind[64];
    char options[8][32];
    size_t option_count;
    const char *arg; /* points into the original string, or NULL */
} pk_spec;

/*
 * Splits a spec; `what` names it in messages ("recorder spec"). Fails on an
 * empty kind, an over-long part or an empty ARG after ':'.
 */
PK_HIDDEN int pk_spec_split(const char *what, const char *text, pk_spec *spec, pk_error *err);
/*
 * A user's text quoted in a message, cut after PK_QUOTE_MAX bytes
 * ("..." then), so that the reason after it still fits: "'%.*s%s'" takes
 * PK_QUOTE(text).
 */
#define PK_QUOTE_MAX 80
#define PK_QUOTE(text) (int)PK_QUOTE_MAX, (text), strlen(text) > PK_QUOTE_MAX ? "..." : ""
/* "KIND:ARG", allocated (free it), however long ARG is. */
PK_HIDDEN char *pk_spec_join(const char *kind, const char *arg);
/* A comma-separated list cut into items, spaces around each trimmed. */
typedef struct pk_items {
    char *text;  /* a copy of the list, cut in place */
    char **item; /* point into text */
    size_t count;
} pk_items;

/* Splits at ','; an empty item fails with "empty <noun> in '<text>' (expected <usage>)". */
PK_HIDDEN int pk_items_split(const char *text, const char *noun, const char *usage, pk_items *items,
                             pk_error *err);
PK_HIDDEN void pk_items_free(pk_items *items);
/* ", "-joined names for "(known: a, b, c)" messages. */
PK_HIDDEN void pk_join_names(const char *const *names, size_t n, char *buf, size_t size);

/* ---- registries ------------------------------------------------------------ */

PK_HIDDEN const pk_recorder_ops *pk_recorder_find(const char *name);
PK_HIDDEN const pk_filter_ops *pk_filter_find(const char *name);
PK_HIDDEN const pk_monitor_ops *pk_monitor_find(const char *name);
PK_HIDDEN void pk_recorder_known(char *buf, size_t size);
PK_HIDDEN void pk_filter_known(char *buf, size_t size);
PK_HIDDEN void pk_monitor_known(char *buf, size_t size);
/* Checks a recorder spec's syntax, kind, options and argument, and what the
 * recorder reads from the environment as it opens, without opening anything
 * (no file is created): what a launcher checks before it starts. */
PK_HIDDEN int pk_recorder_check_spec(const char *spec, pk_error *err);

/* Built-in kinds (one file each under monitors/, recorders/, filters/). */
extern const pk_monitor_ops pk_monitor_function;
extern const pk_monitor_ops pk_monitor_function_memory;
extern const pk_monitor_ops pk_monitor_alloc;
extern const pk_recorder_ops pk_recorder_stdout;
extern const pk_recorder_ops pk_recorder_stderr;
extern const pk_recorder_ops pk_recorder_text;
extern const pk_recorder_ops pk_recorder_csv;
extern const pk_recorder_ops pk_recorder_list;
extern const pk_recorder_ops pk_recorder_sqlite;
extern const pk_recorder_ops pk_recorder_zmq;
/*
 * What a zmq recorder (a publisher: zmq+pub) reads as it opens: its
 * endpoint's port and, from the environment, PIKOC_ZMQ_LINGER, _HWM,
 * _SUBSCRIBERS and the CURVE keys' form; checked without opening anything.
 */
PK_HIDDEN int pk_zmq_check_settings(const char *endpoint, bool publisher, pk_error *err);
/*
 * An endpoint pikoc can send or listen on: ipc://PATH, or tcp:// with a
 * port from 1 to 65535 (or *, to bind), as libzmq does not check (it takes
 * 99999 modulo 65536, and "5557x" as 5557). Other transports are refused.
 */
PK_HIDDEN int pk_zmq_check_endpoint(const char *endpoint, bool bind, pk_error *err);
/*
 * For `pikoc run`: tells the collector at endpoint how the program it
 * started ended (docs/wire-format.md, "Exit") and waits for its
 * acknowledgement, at most PIKOC_ZMQ_LINGER; -1 (err) when none came.
 */
struct pk_wire_exit;
PK_HIDDEN int pk_zmq_report_exit(const char *endpoint, const struct pk_wire_exit *x, pk_error *err);
extern const pk_filter_ops pk_filter_on_value;
extern const pk_filter_ops pk_filter_not_on_value;
extern const pk_filter_ops pk_filter_on_change;
extern const pk_filter_ops pk_filter_max_depth;
extern const pk_filter_ops pk_filter_min_duration;
extern const pk_filter_ops pk_filter_include;
extern const pk_filter_ops pk_filter_exclude;
extern const pk_filter_ops pk_filter_callback_ops;

/* ---- objects behind the handles ------------------------------------------- */

struct pk_recorder {
    const pk_recorder_ops *ops;
    void *state;
    char *spec; /* as given, for messages */
    bool auto_flush;
    bool auto_flush_set; /* "+flush" or pk_recorder_set_auto_flush was used */
    bool failed;         /* a write failed: no more calls */
    bool forked;         /* in a forked child: close without writing the parent's bytes */
    bool closed;         /* closed before its free (pk_recorder_close_now) */
    unsigned options;    /* bit i: the spec named ops->options[i] */
    char error[512];
};

struct pk_filter {
    const pk_filter_ops *ops;
    void *state;
};

struct pk_sink {
    pk_logger *logger;
    size_t position; /* index of the next filter; == count: the recorder */
};

struct pk_logger {
    pk_recorder *recorder;
    pk_filter **filters;
    size_t count;
    size_t capacity;
    pk_sink *sinks; /* one per position, built at start */
    uint64_t written;
};

/*
 * Closes r before its free, as its free would, and takes no more calls:
 * an exec is about to end the process's memory (pk_monitor_before_exec).
 */
PK_HIDDEN void pk_recorder_close_now(pk_recorder *r);

/* ---- record fields ---------------------------------------------------------- */

typedef enum pk_field_kind {
    PK_KIND_UINT,
    PK_KIND_STRING,
    PK_KIND_TYPE,
    PK_KIND_ADDRESS, /* a pointer: printed in hexadecimal */
} pk_field_kind;

typedef struct pk_field_desc {
    const char *name;
    pk_field_kind kind;
    unsigned needs; /* pk_record_flags required for a value */
    size_t offset;
    size_t size; /* of the member: 4 (unsigned, the event type) or 8 */
} pk_field_desc;

PK_HIDDEN const pk_field_desc *pk_field_desc_of(pk_field_id field);
PK_HIDDEN uint64_t pk_record_uint(const pk_record *rec, pk_field_id field);
PK_HIDDEN const char *pk_record_string(const pk_record *rec, pk_field_id field);
/* Stores a value into a UINT or TYPE field (the member's width), or a STRING field. */
PK_HIDDEN void pk_record_set_uint(pk_record *rec, pk_field_id field, uint64_t value);
PK_HIDDEN void pk_record_set_string(pk_record *rec, pk_field_id field, const char *value);

/* ---- output: a buffered file descriptor, no stdio ------------------------ */

/*
 * Recorders write through this rather than FILE*: a forked child can drop a
 * parent's unwritten bytes (stdio would write them twice), and a write error
 * is kept with its errno for the one report the core makes.
 */
typedef struct pk_out {
    int fd;
    bool owns_fd;
    size_t used;
    int error; /* errno of the first failure, 0 if none */
    char buf[65536];
} pk_out;

/* Opens PATH for writing (truncating). */
PK_HIDDEN int pk_out_open(pk_out *o, const char *path, pk_error *err);
PK_HIDDEN void pk_out_attach(pk_out *o, int fd); /* not closed by pk_out_close */
PK_HIDDEN void pk_out_write(pk_out *o, const char *data, size_t len);
PK_HIDDEN void pk_out_puts(pk_out *o, const char *s);
PK_HIDDEN void pk_out_printf(pk_out *o, const char *fmt, ...) PK_PRINTF(2, 3);
/* Returns 0, or -1 with err describing the first failure. */
PK_HIDDEN int pk_out_flush(pk_out *o, pk_error *err);
PK_HIDDEN int pk_out_close(pk_out *o, pk_error *err);
/* In a forked child: forget buffered bytes without writing them. */
PK_HIDDEN void pk_out_forget(pk_out *o);

/* ---- symbols (drain thread only) ---------------------------------------- */

typedef struct pk_symbol {
    const char *function; /* "??" when unknown */
    const char *file;     /* "" when unknown */
    unsigned line;
} pk_symbol;

/*
 * line_cache.c: names resolved in a library with a separate debug file,
 * kept on disk by build-id (symbols.c's lock held). pk_line_cache_path says
 * whether the library's are kept, and where; pk_line_cache_load calls add
 * for each entry of the file below size (its strings live until add returns).
 */
typedef void (*pk_line_cache_add)(uint64_t offset, const pk_symbol *symbol, void *user);
PK_HIDDEN bool pk_line_cache_path(const unsigned char *build_id, size_t len, char *path,
                                  size_t size);
PK_HIDDEN void pk_line_cache_load(const char *path, uint64_t size, pk_line_cache_add add,
                                  void *user);
PK_HIDDEN void pk_line_cache_append(const char *path, uint64_t offset, const pk_symbol *symbol);

/* Resolves an address in this process (cached; strings live until exit). */
PK_HIDDEN void pk_symbols_lookup(uintptr_t address, pk_symbol *out);
/* Resolves the call site at a return address (looks at address - 1). */
PK_HIDDEN void pk_symbols_lookup_site(uintptr_t return_address, pk_symbol *out);
/*
 * Where the frames of an allocation's stack (pk_record.stack) are resolved:
 * in this process (pk_symbols_frame), or, in a collector, from the frames
 * its sender defined (pk_wire_peer_frame).
 */
typedef void (*pk_frame_resolver)(uintptr_t frame, pk_symbol *out, void *user);
/* pk_symbols_lookup_site as a pk_frame_resolver (user unused). */
PK_HIDDEN void pk_symbols_frame(uintptr_t return_address, pk_symbol *out, void *user);
/*
 * Reads the program's module list now (a drainer process, while the program
 * waits for it: after a crash there is no list to read).
 */
PK_HIDDEN void pk_symbols_prepare(void);
/*
 * A library is about to be closed (dlclose): `inside` an address in it (0:
 * unknown), `bias` its load bias, `path` its file as the maps name it ("":
 * unknown). Its code keeps its names until the close ends
 * (pk_symbols_closed) or it is unloaded (pk_symbols_forget), its
 * destructors' included, which run after the unmapping as the drain sees
 * it: the module list is made to hold it now, and after any report until
 * then, from its file if need be.
 */
PK_HIDDEN void pk_symbols_closing(uintptr_t inside, uintptr_t bias, const char *path);
/* The close of the library at `inside` ended (unloaded or not). */
PK_HIDDEN void pk_symbols_closed(uintptr_t inside);
/* Code from start to end was unloaded: forget its names, read the modules again. */
PK_HIDDEN void pk_symbols_forget(uintptr_t start, uintptr_t end);
/* How many times pk_symbols_forget ran: names cached by address are stale once it moves. */
PK_HIDDEN unsigned long pk_symbols_forgotten(void);
/* Interns a string for the life of the process. */
PK_HIDDEN const char *pk_intern(const char *s);
/* The hash of a NUL-terminated string (FNV-1a) that string tables share. */
PK_HIDDEN size_t pk_string_hash(const char *s);
/*
 * Calls fn for every function symbol of the loaded modules whose name
 * matches one of the globs; used to resolve focus names to addresses.
 */
PK_HIDDEN int pk_symbols_each_match(const char *const *globs, size_t n,
                                    void (*fn)(uintptr_t address, const char *name, void *user),
                                    void *user, pk_error *err);

/* ---- monitors ---------------------------------------------------------------- */

PK_HIDDEN size_t pk_monitor_logger_count(const pk_monitor *m);
PK_HIDDEN pk_logger *pk_monitor_logger_at(pk_monitor *m, size_t i);

/* ---- allocation events (monitors/alloc.c) ----------------------------------- */

/* What the drain asks about each allocation event: monitors/alloc.h. */
/* The most frames an allocation's stack holds (--stack N, PIKOC_STACK). */
#define PK_STACK_MAX 64
/*
 * A --stack or PIKOC_STACK value: 0 (the call site only) to PK_STACK_MAX.
 * Fails with "WHAT 'x': expected a number of frames from 0 to 64".
 */
PK_HIDDEN int pk_alloc_parse_stack(const char *what, const char *text, uint32_t *depth,
                                   pk_error *err);
/* The process's RSS and VMS in pages, UINT64_MAX when unreadable; opens
 * /proc/self/statm into *fd when it is -1 (monitors/function_memory.c).
 * VMS leaves out the part of the shared rings' region no ring uses yet. */
PK_HIDDEN void pk_read_statm(int *fd, uint64_t pages[2]);

/* ---- monitors ----------------------------------------------------------------- */

/*
 * The program leaves through _exit (src/interpose.c): ends the running
 * monitor's run when it records allocations and this is its process (not a
 * vfork child, which shares the parent's memory), as exit's handlers would.
 */
PK_HIDDEN void pk_end_run_at_exit(void);

/*
 * This process is about to execute another program (src/exec.c): a run
 * drained here ends 'executed' at once, every record made so far recorded
 * and each recorder closed, since the exec ends the drain thread and every
 * buffer in memory. Returns the monitor whose run it ended; NULL when there
 * is none, when a drainer process drains the run (it sees the exec itself),
 * in a vfork child (it shares its parent's memory, run included), inside
 * pikoc, on a thread that takes or holds the run's lock or waits for the
 * drain (an exec from a signal handler that interrupted it), when
 * PIKOC_AT_EXEC=leave, and when may_run(what) says the exec cannot succeed
 * (asked last: the checks before it are cheaper).
 */
PK_HIDDEN pk_monitor *pk_monitor_before_exec(bool (*may_run)(const void *what), const void *what);
/* A focus list (NAME[,GLOB...]) as pk_monitor_focus reads it: items, or -1 and err. */
PK_HIDDEN int pk_focus_parse(const char *names, pk_items *items, pk_error *err);
/*
 * PIKOC_AT_EXEC's value: "end" (*ends true) or "leave" (false). -1 and err
 * for anything else, *ends untouched.
 */
PK_HIDDEN int pk_at_exec_parse(const char *text, bool *ends, pk_error *err);
/*
 * The exec after pk_monitor_before_exec returned m failed with errno
 * `error`: the program goes on, unrecorded (its run has ended), and a
 * warning says so.
 */
PK_HIDDEN void pk_monitor_exec_failed(pk_monitor *m, const char *program, int error);

/* ---- whole-program runs (env.c) ------------------------------------------------ */

/*
 * m's run is drained by a drainer process (src/drainer.c) that records it
 * through the recorders of `record`; m itself has none.
 */
PK_HIDDEN void pk_monitor_set_drainer(pk_monitor *m, const char *record);
/*
 * In a drainer process, forked while the program held the run's lock: the
 * lock is free here (the program's run, left as it is, is not this process's).
 */
PK_HIDDEN void pk_monitor_drainer_forked(void);
/* Whether this process is a drainer (src/drainer.c), which records another's run:
 * it is once it marks itself so, as it starts. */
PK_HIDDEN bool pk_in_drainer(void);
PK_HIDDEN void pk_drainer_mark_self(void);
/* The monitor PIKOC_* would configure for `record`, whose loggers a drainer records through. */
PK_HIDDEN pk_monitor *pk_auto_recorders(const char *record, pk_error *err);
/*
 * A PIKOC_* setting's value, NULL when unset or empty: an empty setting is
 * an unset one, everywhere one is read.
 */
PK_HIDDEN const char *pk_setting(const char *name);
/* PIKOC_FILTER's specs (text), split and checked as the monitor above reads them; opens nothing. */
PK_HIDDEN int pk_env_check_filters(const char *text, pk_error *err);

/*
 * In a forked child of a whole-program run that records allocations, at its
 * first allocation: ends the parent's copy of the monitor and starts the
 * child's own run from the PIKOC_* variables. Leaves it unmonitored when
 * they no longer ask for a run.
 */
PK_HIDDEN void pk_auto_restart(void);

/* ---- threads ----------------------------------------------------------------- */

/*
 * The name of a thread the run has seen (its kernel thread id): the kernel's
 * current name while it lives, the one it had when it exited after (or when
 * it took its ring, once its process is gone), also once another thread
 * took its ring (the drain keeps it, 24 bytes a thread, for the run). False
 * when pikoc never saw the thread (src/drain.c).
 */
PK_HIDDEN bool pk_thread_name(uint64_t tid, char name[16]);

/* ---- host facts ------------------------------------------------------------- */

PK_HIDDEN const char *pk_command_line(void);
PK_HIDDEN const char *pk_host_name(void);
/*
 * The process whose addresses, threads and memory a run describes: this
 * one, or in a drainer process (src/drainer.c) the program it records.
 */
PK_HIDDEN void pk_set_program(pid_t pid, pid_t parent);
PK_HIDDEN pid_t pk_program(void);
PK_HIDDEN pid_t pk_program_parent(void);
/* The kernel's high-water mark of that process's resident set, in bytes (0 if unknown). */
PK_HIDDEN uint64_t pk_process_peak_rss(void);
/* What pk_read_key_file found. */
enum pk_key_file {
    PK_KEY_READ = 0,
    PK_KEY_MISSING = -1,    /* no such file (errno ENOENT or ENOTDIR) */
    PK_KEY_UNREADABLE = -2, /* there, but it cannot be read (errno says why) */
    PK_KEY_SHORT = -3,      /* it does not start with 40 characters */
    PK_KEY_NOT_Z85 = -4,    /* they are not Z85 (why says why, as pk_z85_fault does) */
};
/* A CURVE key (40 Z85 characters) from the start of the file at path. */
PK_HIDDEN enum pk_key_file pk_read_key_file(const char *path, char key[41], char *why, size_t size);
/*
 * What keeps 40 characters from being a Z85 key, as libzmq decodes one: a
 * character outside Z85's alphabet, or a group of five whose value is over
 * 32 bits. -1 with that written into why; 0 when they are a key.
 */
PK_HIDDEN int pk_z85_fault(const char key[40], char *why, size_t size);

/* dlclose's type: the real one, that pk_close_library wraps. */
typedef int (*pk_dlclose_fn)(void *handle);
/*
 * Closes a library through close_library (the real dlclose) so that its
 * names outlive it: the drain takes what was published first, and learns
 * which code went (src/unload.c). Returns close_library's result.
 */
PK_HIDDEN int pk_close_library(void *handle, pk_dlclose_fn close_library);
struct dl_phdr_info;
/* The addresses a loaded object's segments span, [*start, *end); false when it has none. */
PK_HIDDEN bool pk_object_span(const struct dl_phdr_info *info, uintptr_t *start, uintptr_t *end);

#endif /* PK_INTERNAL_H */
