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

#define PK_STORE_APPLICATION_ID 0x504B4F43 /* "PKOC" */
#define PK_STORE_VERSION 1                 /* PRAGMA user_version of this schema */
#define PK_STORE_ENCODING 1                /* first byte of every event batch */

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
 * empty SQLite file, accepts a pikoc database of this or an older version,
 * and refuses anything else without writing a byte. Sets WAL and
 * synchronous=NORMAL. Returns 0 and a connection the caller closes.
 */
PK_HIDDEN int pk_store_open_write(const char *path, sqlite3 **db, pk_error *err);
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
 * "killed", "incomplete"; NULL to keep it) replaces only "running": a
 * complete run stays complete. `signal` and `exit_status` are stored unless
 * negative; end_ns is set to now when still NULL. *run_id (may be NULL)
 * receives the run marked. Fails with "pikoc.db: no run of pid 123".
 */
PK_HIDDEN int pk_store_mark_run(const char *path, int pid, int64_t started_after_ns,
                                const char *status, int signal, int exit_status, int64_t *run_id,
                                pk_error *err);

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

/* Registers the eponymous virtual table pikoc_events on db (read-only is fine). */
PK_HIDDEN int pk_store_register_events(sqlite3 *db);

/*
 * Words db's last error in one line naming the file: "pikoc.db: database
 * disk image is malformed". Returns -1, so "return pk_store_fail(...)".
 */
PK_HIDDEN int pk_store_fail(pk_error *err, sqlite3 *db, const char *path);

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

#endif /* PK_STORE_H */
