/*
 * store.c — opening a pikoc SQLite store: the schema of docs/schema.md, the
 * checks that refuse a file that is not ours (before a single byte is
 * written), run lookup for the CLI and end-of-run marking for the launcher.
 * Not on any hot path; every failure is one line that names the file.
 */
#include "store.h"

#include "hot.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 10000
#define WAL_TRUNCATE_FRAMES 32768 /* 128 MiB of 4 KiB pages */
#define WAL_TRUNCATE_WAIT_MS 200
#define WAL_CHECKPOINT_FRAMES 256 /* 16 MiB of 64 KiB pages */

/*
 * Exactly the SQL of docs/schema.md, "The schema as SQL": version 1 here, and
 * each later version as one upgrade block below. A new file is created at
 * version 1 and upgraded like an old one, so both end up the same.
 */
/* clang-format off */
static const char schema_sql[] =
    "PRAGMA application_id = 1347112771;\n"
    "PRAGMA user_version = 1;\n"
    "CREATE TABLE runs (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    command_line TEXT NOT NULL,\n"
    "    host TEXT NOT NULL,\n"
    "    pid INTEGER NOT NULL,\n"
    "    start_ns INTEGER NOT NULL,\n"
    "    end_ns INTEGER,\n"
    "    duration_ns INTEGER,\n"
    "    monitor TEXT NOT NULL,\n"
    "    clock TEXT NOT NULL,\n"
    "    alloc_source TEXT NOT NULL,\n"
    "    flags INTEGER NOT NULL,\n"
    "    status TEXT NOT NULL,\n"
    "    signal INTEGER,\n"
    "    exit_status INTEGER,\n"
    "    events INTEGER NOT NULL DEFAULT 0,\n"
    "    calls INTEGER NOT NULL DEFAULT 0,\n"
    "    written INTEGER NOT NULL DEFAULT 0,\n"
    "    dropped INTEGER NOT NULL DEFAULT 0,\n"
    "    unmatched INTEGER NOT NULL DEFAULT 0,\n"
    "    unfinished INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE symbols (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    id INTEGER NOT NULL,\n"
    "    function TEXT NOT NULL,\n"
    "    file TEXT NOT NULL,\n"
    "    line INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE functions (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    symbol_id INTEGER NOT NULL,\n"
    "    calls INTEGER NOT NULL,\n"
    "    total_ns INTEGER NOT NULL,\n"
    "    self_ns INTEGER NOT NULL,\n"
    "    min_ns INTEGER,\n"
    "    max_ns INTEGER,\n"
    "    alloc_bytes INTEGER,\n"
    "    free_bytes INTEGER,\n"
    "    self_alloc_bytes INTEGER,\n"
    "    self_free_bytes INTEGER,\n"
    "    rss_growth INTEGER,\n"
    "    PRIMARY KEY (run_id, symbol_id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE call_paths (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    id INTEGER NOT NULL,\n"
    "    parent_id INTEGER,\n"
    "    symbol_id INTEGER NOT NULL,\n"
    "    depth INTEGER NOT NULL,\n"
    "    calls INTEGER NOT NULL,\n"
    "    total_ns INTEGER NOT NULL,\n"
    "    self_ns INTEGER NOT NULL,\n"
    "    alloc_bytes INTEGER,\n"
    "    free_bytes INTEGER,\n"
    "    rss_growth INTEGER,\n"
    "    PRIMARY KEY (run_id, id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE threads (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    thread INTEGER NOT NULL,\n"
    "    events INTEGER NOT NULL,\n"
    "    calls INTEGER NOT NULL,\n"
    "    written INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, thread)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE event_batches (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    run_id INTEGER NOT NULL,\n"
    "    count INTEGER NOT NULL,\n"
    "    min_index INTEGER NOT NULL,\n"
    "    max_index INTEGER NOT NULL,\n"
    "    min_time_ns INTEGER NOT NULL,\n"
    "    max_time_ns INTEGER NOT NULL,\n"
    "    data BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX event_batches_run ON event_batches (run_id, id);\n";
/* clang-format on */

/* ---- schema version 2: profiler spans and checkpoints ------------------------ */

/* clang-format off */
static const char spans_sql[] =
    "CREATE TABLE spans (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    span INTEGER NOT NULL,\n"
    "    parent_span INTEGER,\n"
    "    thread INTEGER NOT NULL,\n"
    "    depth INTEGER NOT NULL,\n"
    "    message TEXT NOT NULL,\n"
    "    file TEXT NOT NULL,\n"
    "    line INTEGER NOT NULL,\n"
    "    context TEXT,\n"
    "    start_ns INTEGER NOT NULL,\n"
    "    duration_ns INTEGER,\n"
    "    PRIMARY KEY (run_id, span)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE checkpoints (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    \"index\" INTEGER NOT NULL,\n"
    "    span INTEGER NOT NULL,\n"
    "    function TEXT NOT NULL,\n"
    "    label TEXT NOT NULL,\n"
    "    thread INTEGER NOT NULL,\n"
    "    depth INTEGER NOT NULL,\n"
    "    time_ns INTEGER NOT NULL,\n"
    "    duration_ns INTEGER NOT NULL,\n"
    "    total_ns INTEGER NOT NULL,\n"
    "    rss INTEGER,\n"
    "    vms INTEGER,\n"
    "    allocated INTEGER,\n"
    "    freed INTEGER,\n"
    "    alloc_delta INTEGER,\n"
    "    free_delta INTEGER,\n"
    "    PRIMARY KEY (run_id, \"index\")\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA user_version = 2;\n";
/* clang-format on */

/* ---- end of schema version 2 ---------------------------------------------------- */

/* ---- schema version 3: allocations, thread names, parent runs ------------------ */

/* clang-format off */
static const char alloc_sql[] =
    "CREATE TABLE alloc_runs (\n"
    "    run_id INTEGER PRIMARY KEY,\n"
    "    allocations INTEGER NOT NULL,\n"
    "    reallocs INTEGER NOT NULL,\n"
    "    frees INTEGER NOT NULL,\n"
    "    unknown_frees INTEGER NOT NULL,\n"
    "    bytes INTEGER NOT NULL,\n"
    "    freed_bytes INTEGER NOT NULL,\n"
    "    leaked_blocks INTEGER NOT NULL,\n"
    "    leaked_bytes INTEGER NOT NULL,\n"
    "    peak_bytes INTEGER NOT NULL,\n"
    "    peak_time_ns INTEGER NOT NULL,\n"
    "    peak_rss INTEGER,\n"
    "    sites INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE alloc_sites (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    id INTEGER NOT NULL,\n"
    "    path_id INTEGER,\n"
    "    caller_id INTEGER NOT NULL,\n"
    "    caller_line INTEGER NOT NULL,\n"
    "    allocations INTEGER NOT NULL,\n"
    "    bytes INTEGER NOT NULL,\n"
    "    frees INTEGER NOT NULL,\n"
    "    freed_bytes INTEGER NOT NULL,\n"
    "    temporary INTEGER NOT NULL,\n"
    "    leaked_blocks INTEGER NOT NULL,\n"
    "    leaked_bytes INTEGER NOT NULL,\n"
    "    peak_bytes INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE alloc_sizes (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    size INTEGER NOT NULL,\n"
    "    count INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, size)\n"
    ") WITHOUT ROWID;\n"
    "ALTER TABLE threads ADD COLUMN name TEXT;\n"
    "ALTER TABLE runs ADD COLUMN parent_run INTEGER;\n"
    "CREATE TABLE memory_samples (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    time_ns INTEGER NOT NULL,\n"
    "    rss INTEGER NOT NULL,\n"
    "    vms INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, time_ns)\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA user_version = 3;\n";
/* clang-format on */

/* ---- end of schema version 3 ---------------------------------------------------- */

/* ---- schema version 4: allocation stacks (--stack N) ------------------------------ */

/* clang-format off */
static const char stacks_sql[] =
    "CREATE TABLE alloc_stacks (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    id INTEGER NOT NULL,\n"
    "    frames INTEGER NOT NULL,\n"
    "    allocations INTEGER NOT NULL,\n"
    "    bytes INTEGER NOT NULL,\n"
    "    frees INTEGER NOT NULL,\n"
    "    freed_bytes INTEGER NOT NULL,\n"
    "    temporary INTEGER NOT NULL,\n"
    "    leaked_blocks INTEGER NOT NULL,\n"
    "    leaked_bytes INTEGER NOT NULL,\n"
    "    peak_bytes INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE alloc_frames (\n"
    "    run_id INTEGER NOT NULL,\n"
    "    stack_id INTEGER NOT NULL,\n"
    "    depth INTEGER NOT NULL,\n"
    "    symbol_id INTEGER NOT NULL,\n"
    "    line INTEGER NOT NULL,\n"
    "    PRIMARY KEY (run_id, stack_id, depth)\n"
    ") WITHOUT ROWID;\n"
    "ALTER TABLE alloc_runs ADD COLUMN stacks INTEGER NOT NULL DEFAULT 0;\n"
    "PRAGMA user_version = 4;\n";
/* clang-format on */

/* ---- end of schema version 4 ---------------------------------------------------- */

/* ---- schema version 5: the live heap at each memory sample --------------------------- */

/* clang-format off */
static const char heap_samples_sql[] =
    "ALTER TABLE memory_samples ADD COLUMN heap_bytes INTEGER;\n"
    "ALTER TABLE memory_samples ADD COLUMN heap_blocks INTEGER;\n"
    "PRAGMA user_version = 5;\n";
/* clang-format on */

/* ---- end of schema version 5 ---------------------------------------------------- */

/* ---- schema version 6: collector runs that survive a collector restart ---------------- */

/* clang-format off */
static const char sender_sql[] =
    "ALTER TABLE runs ADD COLUMN sender INTEGER;\n"
    "CREATE TABLE sender_messages (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    run_id INTEGER NOT NULL,\n"
    "    seq INTEGER NOT NULL,\n"
    "    message BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX sender_messages_run ON sender_messages (run_id, id);\n"
    "PRAGMA user_version = 6;\n";
/* clang-format on */

/* ---- end of schema version 6 ---------------------------------------------------- */

/* The upgrade blocks in order: upgrades[v - 1] takes a file from version v to v + 1. */
static const char *const upgrades[PK_STORE_VERSION - 1] = {spans_sql, alloc_sql, stacks_sql,
                                                           heap_samples_sql, sender_sql};

int pk_store_fail(pk_error *err, sqlite3 *db, const char *path)
{
    int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
    if (code == SQLITE_NOTADB)
        return pk_fail(err, "%s: not an SQLite database", path);
    return pk_fail(err, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
}

/* ---- what a file is ----------------------------------------------------------- */

typedef enum store_kind {
    STORE_EMPTY, /* an SQLite database without tables: ours to fill */
    STORE_PIKOC, /* our application_id, a version we read */
} store_kind;

static int pragma_int(sqlite3 *db, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *value = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int pk_store_version(sqlite3 *db, int64_t *version)
{
    return pragma_int(db, "PRAGMA user_version", version);
}

/*
 * Reads the identifying pragmas (reading never writes) and says whether the
 * file is ours, empty, or neither (then err holds the one-line reason).
 */
static int classify(sqlite3 *db, const char *path, store_kind *kind, int64_t *version_out,
                    pk_error *err)
{
    int64_t app_id = 0, version = 0, tables = 0;
    if (pragma_int(db, "PRAGMA application_id", &app_id) != SQLITE_OK ||
        pragma_int(db, "PRAGMA user_version", &version) != SQLITE_OK ||
        pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK)
        return pk_store_fail(err, db, path);
    if (app_id == PK_STORE_APPLICATION_ID && version >= 1) {
        if (version > PK_STORE_VERSION)
            return pk_fail(err, "%s: schema version %lld is newer than this pikoc (%d)", path,
                           (long long)version, PK_STORE_VERSION);
        *kind = STORE_PIKOC;
        if (version_out)
            *version_out = version;
        return 0;
    }
    if (app_id == 0 && version == 0 && tables == 0) {
        *kind = STORE_EMPTY;
        return 0;
    }
    return pk_fail(err, "%s: not a pikoc database (no pikoc schema)", path);
}

/* A missing file or a directory, said plainly before SQLite words it vaguely. */
static int check_path(const char *path, bool may_be_missing, bool *exists, pk_error *err)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    if (!*exists) {
        if (errno == ENOENT && may_be_missing)
            return 0;
        if (errno == ENOENT)
            return pk_fail(err, "%s: no such file", path);
        return pk_fail(err, "%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return pk_fail(err, "%s: is a directory", path);
    if (!S_ISREG(st.st_mode)) /* a FIFO would block the open for good */
        return pk_fail(err, "%s: not a regular file", path);
    return 0;
}

static int open_connection(const char *path, int flags, sqlite3 **db, pk_error *err)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        pk_store_fail(err, *db, path);
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(*db, 0);
    return 0;
}

static void close_failed(sqlite3 **db)
{
    sqlite3_close(*db);
    *db = NULL;
}

int pk_store_open_read(const char *path, sqlite3 **db, pk_error *err)
{
    bool exists;
    store_kind kind = STORE_PIKOC;
    *db = NULL;
    if (check_path(path, false, &exists, err) != 0)
        return -1;
    if (open_connection(path, SQLITE_OPEN_READONLY, db, err) != 0)
        return -1;
    int rc = classify(*db, path, &kind, NULL, err);
    if (rc == 0 && kind == STORE_EMPTY)
        rc = pk_fail(err, "%s: not a pikoc database (no pikoc schema)", path);
    if (rc != 0)
        close_failed(db);
    return rc;
}

/* The directory a file at path is in takes new files: 0, or -1 and errno. */
static int directory_writable(const char *path)
{
    char *dir = pk_xdirname(path);
    int rc = access(dir, W_OK | X_OK);
    free(dir);
    return rc;
}

int pk_file_writable(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return access(path, W_OK);
        errno = EISDIR;
        return -1;
    }
    return errno == ENOENT ? directory_writable(path) : -1;
}

int pk_store_check_write(const char *path, pk_error *err)
{
    bool exists;
    store_kind kind = STORE_PIKOC;
    sqlite3 *db = NULL;
    if (check_path(path, true, &exists, err) != 0)
        return -1;
    if (pk_file_writable(path) != 0)
        return pk_fail(err, "%s: cannot %s: %s", path, exists ? "write" : "create",
                       strerror(errno));
    if (!exists)
        return 0;
    /* the journal, or WAL's -wal and -shm files, are made beside it */
    if (directory_writable(path) != 0)
        return pk_fail(err, "%s: cannot write beside it: %s", path, strerror(errno));
    if (open_connection(path, SQLITE_OPEN_READONLY, &db, err) != 0)
        return -1;
    int rc = classify(db, path, &kind, NULL, err);
    sqlite3_close(db);
    return rc;
}

/* ---- writing ------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *path, const char *sql, pk_error *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return pk_store_fail(err, db, path);
    return 0;
}

/*
 * Creates the schema, or upgrades an older one, under a write lock,
 * re-checking first: two processes may find the same file at once, and only
 * the first changes it.
 */
static int create_or_upgrade(sqlite3 *db, const char *path, pk_error *err)
{
    store_kind kind;
    int64_t version = 0;
    if (exec(db, path, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    int rc = classify(db, path, &kind, &version, err);
    if (rc == 0 && kind == STORE_EMPTY) {
        rc = exec(db, path, schema_sql, err);
        version = 1;
    }
    for (; rc == 0 && version < PK_STORE_VERSION; version++)
        rc = exec(db, path, upgrades[version - 1], err);
    if (rc != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return exec(db, path, "COMMIT", err);
}

int pk_store_open_write(const char *path, sqlite3 **db, pk_error *err)
{
    bool exists;
    store_kind kind = STORE_PIKOC;
    int64_t version = 0;
    *db = NULL;
    if (check_path(path, true, &exists, err) != 0)
        return -1;
    if (open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, db, err) != 0)
        return -1;
    /* Nothing is written before the file is known to be ours or empty. */
    /* Large pages for a new file (before WAL fixes the size): an event batch
     * fills one or two pages instead of a chain of sixteen. */
    if (classify(*db, path, &kind, &version, err) != 0 ||
        (kind == STORE_EMPTY && exec(*db, path, "PRAGMA page_size = 65536", err) != 0) ||
        exec(*db, path, "PRAGMA journal_mode = WAL", err) != 0 ||
        exec(*db, path, "PRAGMA synchronous = NORMAL", err) != 0 ||
        ((kind == STORE_EMPTY || version < PK_STORE_VERSION) &&
         create_or_upgrade(*db, path, err) != 0)) {
        close_failed(db);
        return -1;
    }
    return 0;
}

/*
 * Back to a rollback journal when no one else has the file open, so the file
 * is one file again and read-only readers leave no -wal/-shm behind. Never
 * waits: with another connection open the file simply stays in WAL mode.
 */
void pk_store_close_write(sqlite3 *db)
{
    if (!db)
        return;
    sqlite3_busy_timeout(db, 0);
    sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* ---- runs ---------------------------------------------------------------------- */

static int run_range(sqlite3 *db, int64_t *first, int64_t *last, int64_t *count)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT min(id), max(id), count(*) FROM runs", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *first = sqlite3_column_int64(st, 0);
        *last = sqlite3_column_int64(st, 1);
        *count = sqlite3_column_int64(st, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int run_exists(sqlite3 *db, int64_t id, bool *exists)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM runs WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        *exists = rc == SQLITE_ROW;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *db_path(sqlite3 *db)
{
    const char *name = sqlite3_db_filename(db, "main");
    return name && *name ? name : "database";
}

int pk_store_resolve_run(sqlite3 *db, const char *run_arg, int64_t *run_id, pk_error *err)
{
    int64_t first = 0, last = 0, count = 0;
    uint64_t wanted = 0;
    bool exists = false;
    if (run_arg && pk_parse_uint("run", run_arg, &wanted, err) != 0)
        return -1;
    if (run_range(db, &first, &last, &count) != SQLITE_OK)
        return pk_store_fail(err, db, db_path(db));
    if (count == 0)
        return run_arg ? pk_fail(err, "unknown run %s (no runs yet)", run_arg)
                       : pk_fail(err, "no runs yet");
    if (!run_arg) {
        *run_id = last;
        return 0;
    }
    if (wanted <= INT64_MAX && run_exists(db, (int64_t)wanted, &exists) != SQLITE_OK)
        return pk_store_fail(err, db, db_path(db));
    if (!exists)
        return pk_fail(err, "unknown run %s (runs: %lld-%lld)", run_arg, (long long)first,
                       (long long)last);
    *run_id = (int64_t)wanted;
    return 0;
}

static bool known_end_status(const char *status)
{
    static const char *const known[] = {"crashed", "killed", "incomplete", "complete"};
    for (size_t i = 0; i < PK_ARRAY_SIZE(known); i++)
        if (strcmp(status, known[i]) == 0)
            return true;
    return false;
}

static int64_t wall_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void bind_optional(sqlite3_stmt *st, int column, int value)
{
    if (value < 0)
        sqlite3_bind_null(st, column);
    else
        sqlite3_bind_int(st, column, value);
}

/* The latest run of pid (on host, unless NULL) since a time, inside the caller's transaction. */
static int find_run_of_pid(sqlite3 *db, const char *host, int pid, int64_t since, int64_t *run_id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT max(id) FROM runs WHERE pid = ?1 AND start_ns >= ?2 AND "
                                "(?3 IS NULL OR host = ?3)",
                                -1, &st, NULL);
    *run_id = 0;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, pid);
        sqlite3_bind_int64(st, 2, since);
        if (host)
            sqlite3_bind_text(st, 3, host, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            *run_id = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int update_end(sqlite3 *db, int64_t run_id, const char *status, int signal, int exit_status)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db,
        "UPDATE runs SET status = CASE WHEN ?1 IS NOT NULL AND (status = 'running' OR "
        "(status = 'incomplete' AND duration_ns IS NULL)) THEN ?1 "
        "ELSE status END, signal = coalesce(?2, signal), exit_status = coalesce(?3, "
        "exit_status), end_ns = coalesce(end_ns, ?4) WHERE id = ?5",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (status)
            sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        bind_optional(st, 2, signal);
        bind_optional(st, 3, exit_status);
        sqlite3_bind_int64(st, 4, wall_now_ns());
        sqlite3_bind_int64(st, 5, run_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(st);
    return rc;
}

int pk_store_mark_run_in(sqlite3 *db, const char *path, const char *host, int pid, int64_t since,
                         const char *status, int signal, int exit_status, int64_t *run_id,
                         pk_error *err)
{
    int64_t id;
    if (status && !known_end_status(status))
        return pk_fail(err, "run status '%s': expected crashed, killed, incomplete or complete",
                       status);
    if (exec(db, path, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    if (find_run_of_pid(db, host, pid, since, &id) != SQLITE_OK ||
        (id && update_end(db, id, status, signal, exit_status) != SQLITE_OK)) {
        pk_store_fail(err, db, path);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (exec(db, path, "COMMIT", err) != 0)
        return -1;
    if (!id)
        return pk_fail(err, "%s: no run of pid %d", path, pid);
    if (run_id)
        *run_id = id;
    return 0;
}

int pk_store_mark_run(const char *path, int pid, int64_t started_after_ns, const char *status,
                      int signal, int exit_status, int64_t *run_id, pk_error *err)
{
    bool exists;
    store_kind kind = STORE_PIKOC;
    sqlite3 *db = NULL;
    if (check_path(path, false, &exists, err) != 0 ||
        open_connection(path, SQLITE_OPEN_READWRITE, &db, err) != 0)
        return -1;
    int rc = classify(db, path, &kind, NULL, err);
    if (rc == 0 && kind == STORE_EMPTY)
        rc = pk_fail(err, "%s: not a pikoc database (no pikoc schema)", path);
    if (rc == 0)
        rc = pk_store_mark_run_in(db, path, NULL, pid, started_after_ns, status, signal,
                                  exit_status, run_id, err);
    sqlite3_close(db);
    return rc;
}

/* ---- background checkpoints ------------------------------------------------------- */

struct pk_store_checkpointer {
    sqlite3 *db; /* its own connection to the file */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned kicks; /* commits not yet checkpointed */
    bool stopping;
    int wal_frames;  /* in the WAL after the writer's last commit (writer's thread) */
    int truncate_at; /* frames from which the writer truncates the WAL */
};

/* The writer's commit hook (in place of its automatic checkpoints). */
static int count_wal_frames(void *arg, sqlite3 *writer, const char *name, int frames)
{
    (void)writer, (void)name;
    ((pk_store_checkpointer *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

/* Copies committed WAL frames into the file while the writer carries on appending. */
/*
 * Held by a checkpointer while it is inside SQLite, and by fork: a child must
 * not inherit SQLite's locks half-taken (it may open the store to record a
 * run of its own). Checkpoints of several stores take turns; they are rare.
 */
static pthread_mutex_t checkpoint_work = PTHREAD_MUTEX_INITIALIZER;

static void fork_prepare(void)
{
    pthread_mutex_lock(&checkpoint_work);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&checkpoint_work);
}

static void fork_child(void)
{
    pthread_mutex_init(&checkpoint_work, NULL);
}

static void watch_forks(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void *checkpoint_main(void *arg)
{
    pk_store_checkpointer *c = arg;
    pk_self.busy = 1; /* pikoc's own thread: its allocations are not the program's */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->kicks && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->stopping)
            break;
        c->kicks = 0;
        pthread_mutex_unlock(&c->lock);
        /* PASSIVE never waits for the writer or readers: what it cannot copy now,
         * the next commit's kick copies. */
        pthread_mutex_lock(&checkpoint_work);
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&checkpoint_work);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

pk_store_checkpointer *pk_store_checkpointer_start(const char *path, sqlite3 *writer)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, watch_forks);
    pk_store_checkpointer *c = pk_xcalloc(1, sizeof *c);
    c->truncate_at = WAL_TRUNCATE_FRAMES;
    pk_error ignored;
    int64_t tables;
    /* A connection learns that the file is in WAL mode on its first read. */
    if (open_connection(path, SQLITE_OPEN_READWRITE, &c->db, &ignored) != 0 ||
        pragma_int(c->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to the program's threads */
    int rc = pthread_create(&c->thread, NULL, checkpoint_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    pthread_setname_np(c->thread, "pikoc-sqlite");
    /* The writer no longer copies pages itself at commit; it only counts them. */
    sqlite3_wal_hook(writer, count_wal_frames, c);
    return c;
}

void pk_store_checkpointer_kick(pk_store_checkpointer *c, sqlite3 *writer)
{
    if (!c)
        return;
    /*
     * The WAL only starts over when a write begins after a checkpoint copied
     * everything, which a checkpoint running beside a busy writer never
     * finishes in time: once it is large, the writer copies the rest itself
     * and truncates it (briefly, the thread has copied nearly all of it).
     */
    if (c->wal_frames > c->truncate_at) {
        sqlite3_busy_timeout(writer, WAL_TRUNCATE_WAIT_MS);
        int rc = sqlite3_wal_checkpoint_v2(writer, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_busy_timeout(writer, BUSY_TIMEOUT_MS);
        /* A reader holding an old snapshot blocks it: try again much later, not at
         * every commit. */
        c->truncate_at = rc == SQLITE_OK ? WAL_TRUNCATE_FRAMES : c->wal_frames * 2;
        if (rc == SQLITE_OK)
            return;
    }
    /* A checkpoint syncs the WAL and the file: a short run leaves its few frames
     * to the last connection's close, which copies them anyway. */
    if (c->wal_frames < WAL_CHECKPOINT_FRAMES)
        return;
    pthread_mutex_lock(&c->lock);
    c->kicks++;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void pk_store_checkpointer_stop(pk_store_checkpointer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
