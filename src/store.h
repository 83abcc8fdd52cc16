/*
 * store.h — the SQLite store shared by the sqlite:PATH recorder and the
 * pikoc CLI: schema creation, read-only opening with version checks, run
 * lookup, marking a run's end from another process, and the pikoc_events
 * virtual table. The layout itself is docs/schema.md; keep the two in step.
 */
#ifndef PK_STORE_H
#define PK_STORE_H

#include "internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define PK_STORE_APPLICATION_ID 0x504B4F43 /* "PKOC" */
#define PK_STORE_VERSION 6                 /* PRAGMA user_version of this schema */
#define PK_STORE_ENCODING 2                /* first byte of every event batch written */
#define PK_STORE_ENCODING_V1 1             /* still read: batches of older pikoc */

/* Bits of an encoded event's head byte (docs/schema.md, "The event encoding"). */
enum pk_store_head {
    PK_HEAD_RETURN = 1u << 0,
    PK_HEAD_MEMORY = 1u << 1,
    PK_HEAD_ALLOC = 1u << 2,
    PK_HEAD_SAME_THREAD = 1u << 3,
    PK_HEAD_NEXT_INDEX = 1u << 4,     /* index is the previous one + 1 */
    PK_HEAD_SAME_MEMORY = 1u << 5,    /* rss and vms as before */
    PK_HEAD_SAME_ALLOC = 1u << 6,     /* allocated and freed as before */
    PK_HEAD_NO_ALLOC_DELTA = 1u << 7, /* a return whose alloc_delta and free_delta are 0 */
};

/*
 * Opens PATH for writing: creates it (and the schema) when missing or an
 * empty SQLite file, accepts a pikoc database of this or an older version
 * (upgrading an older one), and refuses anything else without writing a byte. Sets WAL and
 * synchronous=NORMAL. Returns 0 and a connection the caller closes.
 */
PK_HIDDEN int pk_store_open_write(const char *path, sqlite3 **db, pk_error *err);
/*
 * What pk_store_open_write would refuse, found without creating or changing
 * anything: a directory, a new file where none can be made, a file not
 * writable or in a directory that takes no journal, not SQLite, not
 * pikoc's (and not empty), or of a newer schema. 0, or -1 and err.
 */
PK_HIDDEN int pk_store_check_write(const char *path, pk_error *err);
/*
 * A file at path can be written (a new one: its directory takes it): 0, or
 * -1 and errno (EISDIR for a directory).
 */
PK_HIDDEN int pk_file_writable(const char *path);
/* Closes a writing connection, leaving WAL mode when it is the last one. */
PK_HIDDEN void pk_store_close_write(sqlite3 *db);

/*
 * Opens PATH read-only (URI mode=ro) and checks that it is a pikoc database
 * of a version this pikoc reads. Messages name the path: "pikoc.db: no such
 * file", "pikoc.db: not an SQLite database", "pikoc.db: not a pikoc database
 * (no pikoc schema)", "pikoc.db: schema version 7 is newer than this pikoc
 * (1)". The file is never modified. On failure *db is NULL.
 */
PK_HIDDEN int pk_store_open_read(const char *path, sqlite3 **db, pk_error *err);

/*
 * The run that RUN_ARG names ("3"), or the latest run when RUN_ARG is NULL.
 * Fails with "unknown run 42 (runs: 1-3)", "no runs in pikoc.db" or
 * "run 'x': expected a run number".
 */
PK_HIDDEN int pk_store_resolve_run(sqlite3 *db, const char *run_arg, int64_t *run_id,
                                   pk_error *err);

/*
 * For the launcher, after its child ended: finds the latest run of `pid`
 * that started at or after `started_after_ns` (wall clock, ns since the
 * epoch; 0 for any) and records how the program ended. `status` ("crashed",
 * "killed", "incomplete"; NULL to keep it) replaces only "running" (and
 * "incomplete" without totals: a collector's run whose sender vanished): a
 * complete run stays complete. `signal` and `exit_status` are stored unless
 * negative; end_ns is set to now when still NULL. *run_id (may be NULL)
 * receives the run marked. Fails with "pikoc.db: no run of pid 123".
 */
PK_HIDDEN int pk_store_mark_run(const char *path, int pid, int64_t started_after_ns,
                                const char *status, int signal, int exit_status, int64_t *run_id,
                                pk_error *err);
/* The same in an open connection (in no transaction), among the runs of `host` (NULL: any). */
PK_HIDDEN int pk_store_mark_run_in(sqlite3 *db, const char *path, const char *host, int pid,
                                   int64_t started_after_ns, const char *status, int signal,
                                   int exit_status, int64_t *run_id, pk_error *err);

/*
 * A thread with its own connection that checkpoints the WAL after each
 * commit, so the writer (its automatic checkpoints turned off) only appends:
 * copying pages into the file happens beside the drain, not on it. NULL when
 * it cannot start; the writer then keeps checkpointing itself. Stop it before
 * closing the writer, so the writer's close is the last and removes the WAL.
 * In a forked child, neither stop nor use it: the thread is not there.
 */
typedef struct pk_store_checkpointer pk_store_checkpointer;
PK_HIDDEN pk_store_checkpointer *pk_store_checkpointer_start(const char *path, sqlite3 *writer);
/* The writer committed: wakes the thread (NULL is allowed). */
PK_HIDDEN void pk_store_checkpointer_kick(pk_store_checkpointer *c, sqlite3 *writer);
/* Joins the thread and closes its connection (NULL is allowed). */
PK_HIDDEN void pk_store_checkpointer_stop(pk_store_checkpointer *c);

/*
 * The schema versions that added what a reader of an older file (opened
 * read-only, never upgraded) goes without. A file of that version or later
 * has it: when reading it fails, the file is damaged.
 */
#define PK_STORE_SPANS_VERSION 2  /* spans, checkpoints */
#define PK_STORE_ALLOC_VERSION 3  /* alloc_runs, alloc_sites, alloc_sizes, memory_samples */
#define PK_STORE_STACKS_VERSION 4 /* alloc_stacks, alloc_frames, alloc_runs.stacks */
#define PK_STORE_HEAP_VERSION 5   /* memory_samples.heap_bytes and heap_blocks */

/* db's schema version (PRAGMA user_version): SQLITE_OK, or SQLite's error code. */
PK_HIDDEN int pk_store_version(sqlite3 *db, int64_t *version);

/*
 * The store writer (store_writer.c): one connection and one transaction for
 * any number of runs, which commit together (about every 250 ms, and on
 * request). The sqlite recorder writes one run through it, `pikoc listen`
 * one per sender. One thread at a time.
 */
typedef struct pk_store_writer pk_store_writer;
typedef struct pk_store_run pk_store_run;
/* A thread's name (NUL-terminated, at most 15 characters): true when known. */
typedef bool (*pk_thread_namer)(uint64_t thread, char name[16], void *user);

/* Opens PATH (pk_store_open_write) and starts its checkpointer. */
PK_HIDDEN pk_store_writer *pk_store_writer_open(const char *path, pk_error *err);
/* Commits every run's state (batches, symbols, aggregates, counts). */
PK_HIDDEN int pk_store_writer_commit(pk_store_writer *w, pk_error *err);
/* Commits when the last commit is 250 ms old or more. */
PK_HIDDEN int pk_store_writer_commit_due(pk_store_writer *w, pk_error *err);
/* Closes (free the runs first); in a forked child (forked) the parent's
 * connection is left untouched. Uncommitted work is rolled back. */
PK_HIDDEN void pk_store_writer_close(pk_store_writer *w, bool forked);
/*
 * Inserts the run's row, 'running', under the run still running of process
 * ppid (or of its own pid: an exec, also once marked 'executed') on its
 * host, and commits. `sender` is a
 * collector's wire sender id (runs.sender), 0 for none.
 */
PK_HIDDEN pk_store_run *pk_store_run_start(pk_store_writer *w, const pk_run_info *run, int ppid,
                                           uint64_t sender, pk_error *err);
/* Where thread names come from (default: this process's threads, pk_thread_name). */
PK_HIDDEN void pk_store_run_name_threads(pk_store_run *s, pk_thread_namer namer, void *user);
/* Where the frames of allocation stacks come from (default: this process's, pk_symbols_frame). */
PK_HIDDEN void pk_store_run_resolve_frames(pk_store_run *s, pk_frame_resolver resolver, void *user);
/* A record before the filters: counts and aggregates. */
PK_HIDDEN void pk_store_run_observe(pk_store_run *s, const pk_record *rec);
/* A record that passed the filters: stored in detail. */
PK_HIDDEN int pk_store_run_write(pk_store_run *s, const pk_record *rec, pk_error *err);
/*
 * Records that no filter holds back: each observed, then written, in turn;
 * returns how many were written (n, or fewer when the next failed).
 */
PK_HIDDEN size_t pk_store_run_record_many(pk_store_run *s, const pk_record *recs, size_t n,
                                          pk_error *err);
/*
 * Ends the run with `status` ("complete", "incomplete") and commits. With
 * totals (and the process's peak RSS), the run's counts are the totals';
 * without (a sender that vanished), the counts stay what was observed,
 * end_ns is now, and a status the launcher set already (killed, crashed)
 * stays. A sender's kept messages go: its run can no longer go on.
 */
PK_HIDDEN int pk_store_run_finish(pk_store_run *s, const pk_run_totals *totals, uint64_t peak_rss,
                                  const char *status, pk_error *err);
PK_HIDDEN int64_t pk_store_run_id(const pk_store_run *s);
/*
 * The n functions with the most self time so far (fewer when the run has
 * fewer), most first: names and self ns; *all is the self time of all.
 */
PK_HIDDEN size_t pk_store_run_top(const pk_store_run *s, size_t n, const char **names,
                                  int64_t *self_ns, int64_t *all);
/* Forgets the run (memory only; the file keeps what was committed). */
PK_HIDDEN void pk_store_run_free(pk_store_run *s);
/* Commits so far: a message kept before commit n is in the file once this passes n. */
PK_HIDDEN uint64_t pk_store_writer_commits(const pk_store_writer *w);
/* After its own commit, pk_store_mark_run_in on the writer's connection. */
PK_HIDDEN int pk_store_writer_mark_run(pk_store_writer *w, const char *host, int pid,
                                       int64_t started_after_ns, const char *status, int signal,
                                       int exit_status, pk_error *err);

/*
 * A collector's runs survive the collector (docs/wire-format.md, "Restart"):
 * the sender's messages are kept in sender_messages while its run is open,
 * and a later collector rebuilds the run from them.
 */
typedef enum pk_store_sender_state {
    PK_STORE_SENDER_NEW,       /* no run of it in the file */
    PK_STORE_SENDER_RESUMABLE, /* its run is open, or suspended: its messages are kept */
    PK_STORE_SENDER_ENDED,     /* its run ended with its goodbye */
} pk_store_sender_state;
/* What the file holds of a sender: its latest run (*run_id, 0 for none) and its state. */
PK_HIDDEN int pk_store_writer_find_sender(pk_store_writer *w, uint64_t sender, int64_t *run_id,
                                          pk_store_sender_state *state, pk_error *err);
/*
 * Takes an earlier run up again, 'running', with nothing of it but its row
 * and its kept messages: the caller replays those (pk_store_run_replay)
 * through observe and write, which rebuild every other row of it.
 */
PK_HIDDEN pk_store_run *pk_store_run_reopen(pk_store_writer *w, int64_t run_id,
                                            const pk_run_info *run, pk_error *err);
/* Keeps a message of the run's sender (committed with the next commit). */
PK_HIDDEN int pk_store_run_keep_message(pk_store_run *s, uint64_t seq, const uint8_t *message,
                                        size_t size, pk_error *err);
/* Calls take for each kept message of the run, in the order kept; stops at the first that
 * fails (and fills err). */
typedef int (*pk_store_message_taker)(const uint8_t *message, size_t size, void *user,
                                      pk_error *err);
PK_HIDDEN int pk_store_run_replay(pk_store_run *s, pk_store_message_taker take, void *user,
                                  pk_error *err);
/* The collector stops: the run ends 'incomplete' for now, its messages kept for the next one. */
PK_HIDDEN int pk_store_run_suspend(pk_store_run *s, pk_error *err);

/* Registers the eponymous virtual table pikoc_events on db (read-only is fine). */
PK_HIDDEN int pk_store_register_events(sqlite3 *db);

/*
 * Words db's last error in one line naming the file: "pikoc.db: database
 * disk image is malformed". Returns -1, so "return pk_store_fail(...)".
 */
PK_HIDDEN int pk_store_fail(pk_error *err, sqlite3 *db, const char *path);

/* Runs a prepared statement that returns no rows and makes it ready again: 0, or -1. */
static inline int pk_store_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Counts are unsigned in pikoc, 64-bit signed in SQLite. */
static inline void pk_store_bind_u64(sqlite3_stmt *st, int column, uint64_t value)
{
    sqlite3_bind_int64(st, column, (sqlite3_int64)value);
}

/* ---- the event encoding, shared by the writer and the virtual table -------- */

/* Appends v as an unsigned LEB128 varint; p has room for 10 bytes. */
static inline uint8_t *pk_put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The wrapping difference cur - prev, zigzag-mapped and appended as a uvarint. */
static inline uint8_t *pk_put_delta(uint8_t *p, uint64_t cur, uint64_t prev)
{
    uint64_t d = cur - prev;
    return pk_put_uvarint(p, (d << 1) ^ (uint64_t)((int64_t)d >> 63));
}

/*
 * Encoding 2: a return's depth field is (depth << 2) | PK_DEPTH_*. With
 * PK_DEPTH_SAME_CALL its function, caller and caller_line are those of the
 * last call at that depth on that thread in the same blob; with
 * PK_DEPTH_IMPLIED_DURATION too, its duration is its time minus that call's.
 */
enum pk_store_depth_flags {
    PK_DEPTH_SAME_CALL = 1u << 0,
    PK_DEPTH_IMPLIED_DURATION = 1u << 1,
};
#define PK_BLOB_MAX_DEPTH 4096 /* calls deeper than this are not remembered */

/* A call a later return of the same blob can refer to. */
typedef struct pk_blob_call {
    uint64_t function, caller, caller_line, time_ns;
    uint32_t blob; /* the blob it belongs to: older entries are stale */
} pk_blob_call;

typedef struct pk_blob_thread {
    uint64_t thread;
    pk_blob_call *calls; /* by depth */
    size_t capacity;
} pk_blob_thread;

/*
 * The calls of the current blob by thread and depth, kept alike by the
 * encoder and every decoder. pk_blob_calls_next_blob starts a blob (all
 * entries go stale at once); pk_blob_call_at finds or makes an entry.
 */
typedef struct pk_blob_calls {
    pk_blob_thread *threads;
    size_t count, capacity, last;
    uint32_t blob;
} pk_blob_calls;

static inline void pk_blob_calls_next_blob(pk_blob_calls *bc)
{
    bc->blob++;
}

/* The entry of (thread, depth); NULL when depth is too deep or memory ran out. */
static inline pk_blob_call *pk_blob_call_at(pk_blob_calls *bc, uint64_t thread, uint64_t depth)
{
    if (depth >= PK_BLOB_MAX_DEPTH)
        return NULL;
    pk_blob_thread *t = bc->last < bc->count ? &bc->threads[bc->last] : NULL;
    if (!t || t->thread != thread) {
        t = NULL;
        for (size_t i = 0; i < bc->count; i++)
            if (bc->threads[i].thread == thread) {
                t = &bc->threads[i];
                break;
            }
        if (!t) {
            if (bc->count == bc->capacity) {
                size_t n = bc->capacity ? bc->capacity * 2 : 4;
                pk_blob_thread *grown = realloc(bc->threads, n * sizeof *grown);
                if (!grown)
                    return NULL;
                bc->threads = grown;
                bc->capacity = n;
            }
            t = &bc->threads[bc->count++];
            *t = (pk_blob_thread){.thread = thread};
        }
        bc->last = (size_t)(t - bc->threads);
    }
    if (depth >= t->capacity) {
        size_t n = t->capacity ? t->capacity : 16;
        while (n <= depth)
            n *= 2;
        pk_blob_call *grown = realloc(t->calls, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + t->capacity, 0, (n - t->capacity) * sizeof *grown);
        t->calls = grown;
        t->capacity = n;
    }
    return &t->calls[depth];
}

static inline void pk_blob_calls_free(pk_blob_calls *bc)
{
    for (size_t i = 0; i < bc->count; i++)
        free(bc->threads[i].calls);
    free(bc->threads);
    *bc = (pk_blob_calls){0};
}

#endif /* PK_STORE_H */
