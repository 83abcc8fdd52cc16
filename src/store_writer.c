/*
 * store_writer.c — appending runs to a pikoc store (docs/schema.md), shared
 * by the sqlite:PATH recorder (one run) and `pikoc listen` (a run per
 * sender). One connection and one transaction serve every run of a writer:
 * several connections writing one file from one process would wait on each
 * other. Detailed events go into compact batches, aggregates are built from
 * every observed record and rewritten at each commit, and a commit happens
 * about every 250 ms, so a killed writer leaves everything but its last
 * moments readable. One thread at a time; a helper thread copies the WAL
 * into the file (pk_store_checkpointer) so the writer only appends.
 */
#include "../recorders/aggregates.h"
#include "../recorders/heap.h"
#include "clock.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_EVENTS 4096
/* A batch and its row fit one 64 KiB page: no overflow chain, no half-empty page. */
#define BATCH_BYTES (65536 - 512)
#define EVENT_MAX_BYTES 160 /* head + 15 varints of at most 10 bytes */
#define COMMIT_INTERVAL_NS 250000000ull
#define CLOCK_CHECK_EVENTS 256

/* The batch being encoded and its decoder state (docs/schema.md). */
typedef struct batch {
    uint8_t *bytes;
    size_t used;
    uint32_t count;
    uint64_t index, thread, time_ns, rss, vms, allocated, freed; /* the previous values */
    uint64_t min_index, max_index, min_time, max_time;
    pk_blob_calls calls; /* the blob's calls its returns refer back to */
} batch;

enum statement {
    ST_BEGIN,
    ST_COMMIT,
    ST_INSERT_RUN,
    ST_END_REPLACED,
    ST_PROGRESS,
    ST_FINISH_RUN,
    ST_ABANDON_RUN,
    ST_INSERT_BATCH,
    ST_INSERT_SYMBOL,
    ST_UPSERT_FUNCTION,
    ST_UPSERT_PATH,
    ST_UPSERT_THREAD,
    ST_INSERT_SPAN,
    ST_FINISH_SPAN,
    ST_INSERT_CHECKPOINT,
    ST_FIND_SENDER,
    ST_REOPEN_RUN,
    ST_KEEP_MESSAGE,
    ST_NEXT_MESSAGE,
    ST_FORGET_MESSAGES,
    ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    /* The parent run: the latest still running of the parent process (fork,
     * posix_spawn) or of this one (the image an exec replaced), on its host.
     * The replaced image's drainer may have marked its run 'executed' first:
     * that run counts too while it is the latest of this pid. */
    [ST_INSERT_RUN] = "INSERT INTO runs (command_line, host, pid, start_ns, monitor, clock, "
                      "alloc_source, flags, status, parent_run, sender) VALUES (?1, ?2, ?3, ?4, "
                      "?5, ?6, ?7, ?8, 'running', (SELECT max(id) FROM runs WHERE host = ?2 AND "
                      "(status = 'running' AND pid IN (?3, ?9) OR status = 'executed' AND "
                      "id = (SELECT max(id) FROM runs WHERE host = ?2 AND pid = ?3))), ?10)",
    /* The image an exec replaced never ended its run: this one says so. */
    [ST_END_REPLACED] = "UPDATE runs SET status = 'executed', end_ns = ?1 WHERE id = (SELECT "
                        "parent_run FROM runs WHERE id = ?2) AND pid = ?3 AND status = 'running'",
    [ST_PROGRESS] = "UPDATE runs SET events = ?, calls = ?, written = ? WHERE id = ?",
    [ST_FINISH_RUN] = "UPDATE runs SET status = ?, end_ns = ?, duration_ns = ?, "
                      "events = ?, calls = ?, written = ?, dropped = ?, unmatched = ?, "
                      "unfinished = ? WHERE id = ?",
    /* a status the launcher set (it knows the program ended) stays */
    [ST_ABANDON_RUN] = "UPDATE runs SET status = CASE WHEN signal IS NULL AND exit_status IS "
                       "NULL THEN ?1 ELSE status END, end_ns = ?2 WHERE id = ?3",
    [ST_INSERT_BATCH] = "INSERT INTO event_batches (run_id, count, min_index, max_index, "
                        "min_time_ns, max_time_ns, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [ST_INSERT_SYMBOL] = "INSERT INTO symbols (run_id, id, function, file, line) "
                         "VALUES (?, ?, ?, ?, ?)",
    [ST_UPSERT_FUNCTION] = "INSERT OR REPLACE INTO functions VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_UPSERT_PATH] = "INSERT OR REPLACE INTO call_paths VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_UPSERT_THREAD] = "INSERT OR REPLACE INTO threads (run_id, thread, events, calls, written, "
                         "name) VALUES (?, ?, ?, ?, ?, ?)",
    [ST_INSERT_SPAN] = "INSERT OR REPLACE INTO spans (run_id, span, parent_span, thread, depth, "
                       "message, file, line, context, start_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?)",
    [ST_FINISH_SPAN] = "UPDATE spans SET duration_ns = ? WHERE run_id = ? AND span = ?",
    [ST_INSERT_CHECKPOINT] = "INSERT OR REPLACE INTO checkpoints VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_FIND_SENDER] = "SELECT id, duration_ns IS NOT NULL, status = 'running' OR EXISTS "
                       "(SELECT 1 FROM sender_messages WHERE run_id = runs.id) FROM runs "
                       "WHERE sender = ? ORDER BY id DESC LIMIT 1",
    [ST_REOPEN_RUN] = "UPDATE runs SET status = 'running', end_ns = NULL WHERE id = ?",
    [ST_KEEP_MESSAGE] = "INSERT INTO sender_messages (run_id, seq, message) VALUES (?, ?, ?)",
    [ST_NEXT_MESSAGE] = "SELECT id, message FROM sender_messages WHERE run_id = ? AND id > ? "
                        "ORDER BY id LIMIT 1",
    [ST_FORGET_MESSAGES] = "DELETE FROM sender_messages WHERE run_id = ?",
};

/* Every table with rows of a run but runs and sender_messages (docs/schema.md). */
static const char *const run_tables[] = {
    "symbols",        "functions",    "call_paths",  "threads",     "event_batches",
    "spans",          "checkpoints",  "alloc_runs",  "alloc_sites", "alloc_sizes",
    "memory_samples", "alloc_stacks", "alloc_frames"};

struct pk_store_writer {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    pk_store_checkpointer *checkpointer;
    bool in_transaction;
    uint64_t last_commit_ns;
    uint64_t commits;
    pk_store_run **runs; /* the runs being written, committed together */
    size_t run_count, run_capacity;
};

/* A profiler open on a thread: the parent of the next one started there. */
typedef struct open_span {
    uint64_t thread;
    uint64_t span;
} open_span;

struct pk_store_run {
    pk_store_writer *w;
    int64_t run_id;
    int64_t start_wall_ns;
    uint64_t events, calls, written;
    size_t symbols_stored; /* symbol ids below this are in the file */
    pk_aggregates aggregates;
    pk_heap heap; /* allocation records */
    batch batch;
    open_span *open_spans; /* every thread's, oldest first */
    size_t open_span_count, open_span_capacity;
    pk_thread_namer namer;
    void *namer_user;
};

/* A forked child must not touch the parent's connection nor its checkpoint
 * thread (which the child does not have): they are kept here, unclosed. */
static struct {
    sqlite3 *db;
    pk_store_checkpointer *checkpointer;
} forked_connections[8];

static int failed(pk_store_writer *w, pk_error *err)
{
    return pk_store_fail(err, w->db, w->path);
}

/* Runs one of the writer's statements (pk_store_step); the error names the file. */
static int step(pk_store_writer *w, enum statement which, pk_error *err)
{
    return pk_store_step(w->st[which]) == 0 ? 0 : failed(w, err);
}

static void bind_measured(sqlite3_stmt *st, int column, bool measured, int64_t value)
{
    if (measured)
        sqlite3_bind_int64(st, column, value);
    else
        sqlite3_bind_null(st, column);
}

/* ---- open and close ------------------------------------------------------------ */

pk_store_writer *pk_store_writer_open(const char *path, pk_error *err)
{
    pk_store_writer *w = pk_xcalloc(1, sizeof *w);
    if (pk_store_open_write(path, &w->db, err) != 0) {
        free(w);
        return NULL;
    }
    w->path = pk_xstrdup(path);
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(w->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &w->st[i],
                               NULL) != SQLITE_OK) {
            failed(w, err);
            for (int j = 0; j < i; j++)
                sqlite3_finalize(w->st[j]);
            pk_store_close_write(w->db);
            free(w->path);
            free(w);
            return NULL;
        }
    }
    w->checkpointer = pk_store_checkpointer_start(path, w->db);
    return w;
}

static void keep_forked_connection(pk_store_writer *w)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(forked_connections); i++) {
        if (!forked_connections[i].db) {
            forked_connections[i].db = w->db;
            forked_connections[i].checkpointer = w->checkpointer;
            return;
        }
    }
}

static void run_free(pk_store_run *s, bool forked);

void pk_store_writer_close(pk_store_writer *w, bool forked)
{
    if (!w)
        return;
    while (w->run_count > 0)
        run_free(w->runs[0], forked);
    if (forked) {
        keep_forked_connection(w);
    } else {
        if (w->in_transaction)
            sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < ST_COUNT; i++)
            sqlite3_finalize(w->st[i]);
        pk_store_checkpointer_stop(w->checkpointer);
        pk_store_close_write(w->db);
    }
    free(w->runs);
    free(w->path);
    free(w);
}

/* ---- transactions and rows -------------------------------------------------- */

static int begin(pk_store_writer *w, pk_error *err)
{
    if (w->in_transaction)
        return 0;
    if (step(w, ST_BEGIN, err) != 0)
        return -1;
    w->in_transaction = true;
    return 0;
}

static int store_symbols(pk_store_run *s, pk_error *err)
{
    const pk_aggregates *a = &s->aggregates;
    sqlite3_stmt *st = s->w->st[ST_INSERT_SYMBOL];
    for (; s->symbols_stored < a->symbol_count; s->symbols_stored++) {
        const pk_symbol_entry *e = &a->symbols[s->symbols_stored];
        sqlite3_bind_int64(st, 1, s->run_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)s->symbols_stored);
        sqlite3_bind_text(st, 3, e->function, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, e->file, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, e->line);
        if (step(s->w, ST_INSERT_SYMBOL, err) != 0)
            return -1;
    }
    return 0;
}

/* Binds the sums every aggregate shares from `first` on: calls, total, self. */
static int bind_sums(sqlite3_stmt *st, int first, const pk_time_sums *sums)
{
    pk_store_bind_u64(st, first, sums->calls);
    sqlite3_bind_int64(st, first + 1, sums->total_ns);
    sqlite3_bind_int64(st, first + 2, sums->self_ns);
    return first + 3;
}

static int store_function(pk_store_run *s, uint32_t id, pk_error *err)
{
    const pk_function_stats *f = &s->aggregates.functions[id];
    sqlite3_stmt *st = s->w->st[ST_UPSERT_FUNCTION];
    bool returned = f->sums.measured & PK_MEASURED_RETURN;
    bool alloc = f->sums.measured & PK_MEASURED_ALLOC;
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int64(st, 2, id);
    int c = bind_sums(st, 3, &f->sums);
    bind_measured(st, c, returned, (int64_t)f->min_ns);
    bind_measured(st, c + 1, returned, (int64_t)f->max_ns);
    bind_measured(st, c + 2, alloc, f->sums.alloc_bytes);
    bind_measured(st, c + 3, alloc, f->sums.free_bytes);
    bind_measured(st, c + 4, alloc, f->self_alloc_bytes);
    bind_measured(st, c + 5, alloc, f->self_free_bytes);
    bind_measured(st, c + 6, f->sums.measured & PK_MEASURED_RSS, f->sums.rss_growth);
    return step(s->w, ST_UPSERT_FUNCTION, err);
}

static int store_path(pk_store_run *s, uint32_t id, pk_error *err)
{
    const pk_path_node *n = &s->aggregates.nodes[id];
    sqlite3_stmt *st = s->w->st[ST_UPSERT_PATH];
    bool alloc = n->sums.measured & PK_MEASURED_ALLOC;
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int64(st, 2, id);
    bind_measured(st, 3, n->parent != 0, n->parent);
    sqlite3_bind_int64(st, 4, n->symbol);
    sqlite3_bind_int64(st, 5, n->depth);
    int c = bind_sums(st, 6, &n->sums);
    bind_measured(st, c, alloc, n->sums.alloc_bytes);
    bind_measured(st, c + 1, alloc, n->sums.free_bytes);
    bind_measured(st, c + 2, n->sums.measured & PK_MEASURED_RSS, n->sums.rss_growth);
    return step(s->w, ST_UPSERT_PATH, err);
}

static int store_thread(pk_store_run *s, uint32_t index, pk_error *err)
{
    const pk_thread_stats *t = &s->aggregates.threads[index];
    sqlite3_stmt *st = s->w->st[ST_UPSERT_THREAD];
    sqlite3_bind_int64(st, 1, s->run_id);
    pk_store_bind_u64(st, 2, t->thread);
    pk_store_bind_u64(st, 3, t->events);
    pk_store_bind_u64(st, 4, t->calls);
    pk_store_bind_u64(st, 5, t->written);
    char name[16];
    if (s->namer(t->thread, name, s->namer_user))
        sqlite3_bind_text(st, 6, name, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 6);
    return step(s->w, ST_UPSERT_THREAD, err);
}

/* Rewrites every aggregate row that changed since the last commit. */
static int store_aggregates(pk_store_run *s, pk_error *err)
{
    pk_aggregates *a = &s->aggregates;
    for (size_t i = 0; i < a->dirty_function_count; i++)
        if (store_function(s, a->dirty_functions[i], err) != 0)
            return -1;
    for (size_t i = 0; i < a->dirty_node_count; i++)
        if (store_path(s, a->dirty_nodes[i], err) != 0)
            return -1;
    for (size_t i = 0; i < a->dirty_thread_count; i++)
        if (store_thread(s, a->dirty_threads[i], err) != 0)
            return -1;
    pk_aggregates_clean(a);
    return 0;
}

static int store_progress(pk_store_run *s, pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_PROGRESS];
    pk_store_bind_u64(st, 1, s->events);
    pk_store_bind_u64(st, 2, s->calls);
    pk_store_bind_u64(st, 3, s->written);
    sqlite3_bind_int64(st, 4, s->run_id);
    return step(s->w, ST_PROGRESS, err);
}

/* ---- event batches ------------------------------------------------------------ */

static int store_batch(pk_store_run *s, pk_error *err)
{
    batch *b = &s->batch;
    if (b->count == 0)
        return 0;
    if (begin(s->w, err) != 0)
        return -1;
    sqlite3_stmt *st = s->w->st[ST_INSERT_BATCH];
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int64(st, 2, b->count);
    pk_store_bind_u64(st, 3, b->min_index);
    pk_store_bind_u64(st, 4, b->max_index);
    pk_store_bind_u64(st, 5, b->min_time);
    pk_store_bind_u64(st, 6, b->max_time);
    sqlite3_bind_blob(st, 7, b->bytes, (int)b->used, SQLITE_STATIC);
    if (step(s->w, ST_INSERT_BATCH, err) != 0)
        return -1;
    /* the decoder state restarts with each blob */
    *b = (batch){.bytes = b->bytes, .calls = b->calls};
    return 0;
}

static void batch_bounds(batch *b, const pk_record *rec)
{
    if (b->count == 0) {
        b->min_index = b->max_index = rec->index;
        b->min_time = b->max_time = rec->time_ns;
        return;
    }
    b->min_index = rec->index < b->min_index ? rec->index : b->min_index;
    b->max_index = rec->index > b->max_index ? rec->index : b->max_index;
    b->min_time = rec->time_ns < b->min_time ? rec->time_ns : b->min_time;
    b->max_time = rec->time_ns > b->max_time ? rec->time_ns : b->max_time;
}

/* The head byte: what the event is and which fields it leaves out as unchanged. */
static unsigned head_of(const batch *b, const pk_record *rec)
{
    bool ret = rec->type == PK_EVENT_RETURN;
    bool first = b->count == 0;
    unsigned head = ret ? PK_HEAD_RETURN : 0;
    if (!first && rec->thread == b->thread)
        head |= PK_HEAD_SAME_THREAD;
    if (!first && rec->index == b->index + 1)
        head |= PK_HEAD_NEXT_INDEX;
    if (rec->flags & PK_RECORD_MEMORY) {
        head |= PK_HEAD_MEMORY;
        if (rec->rss == b->rss && rec->vms == b->vms)
            head |= PK_HEAD_SAME_MEMORY;
    }
    if (rec->flags & PK_RECORD_ALLOC) {
        head |= PK_HEAD_ALLOC;
        if (rec->allocated == b->allocated && rec->freed == b->freed)
            head |= PK_HEAD_SAME_ALLOC;
        if (ret && rec->alloc_delta == 0 && rec->free_delta == 0)
            head |= PK_HEAD_NO_ALLOC_DELTA;
    }
    return head;
}

/* One event, exactly as docs/schema.md lays it out. */
static void encode(batch *b, const pk_record *rec, uint32_t function, uint32_t caller)
{
    if (b->used == 0) {
        b->bytes[b->used++] = PK_STORE_ENCODING;
        pk_blob_calls_next_blob(&b->calls);
    }
    unsigned head = head_of(b, rec);
    uint8_t *p = &b->bytes[b->used];
    *p++ = (uint8_t)head;
    batch_bounds(b, rec);
    if (!(head & PK_HEAD_NEXT_INDEX))
        p = pk_put_delta(p, rec->index, b->index);
    if (!(head & PK_HEAD_SAME_THREAD))
        p = pk_put_uvarint(p, rec->thread);
    pk_blob_call *call = pk_blob_call_at(&b->calls, rec->thread, rec->depth);
    if (head & PK_HEAD_RETURN) {
        /* Most returns close a call of the same blob: say so instead of repeating it. */
        unsigned same = 0;
        if (call && call->blob == b->calls.blob && call->function == function &&
            call->caller == caller && call->caller_line == rec->caller_line) {
            same = PK_DEPTH_SAME_CALL;
            if (rec->time_ns - call->time_ns == rec->duration_ns)
                same |= PK_DEPTH_IMPLIED_DURATION;
        }
        p = pk_put_uvarint(p, (uint64_t)rec->depth << 2 | same);
        if (!(same & PK_DEPTH_SAME_CALL)) {
            p = pk_put_uvarint(p, function);
            p = pk_put_uvarint(p, caller);
            p = pk_put_uvarint(p, rec->caller_line);
        }
        p = pk_put_delta(p, rec->time_ns, b->time_ns);
        if (!(same & PK_DEPTH_IMPLIED_DURATION))
            p = pk_put_uvarint(p, rec->duration_ns);
    } else {
        p = pk_put_uvarint(p, rec->depth);
        p = pk_put_uvarint(p, function);
        p = pk_put_uvarint(p, caller);
        p = pk_put_uvarint(p, rec->caller_line);
        p = pk_put_delta(p, rec->time_ns, b->time_ns);
        if (call)
            *call = (pk_blob_call){function, caller, rec->caller_line, rec->time_ns, b->calls.blob};
    }
    if ((head & (PK_HEAD_MEMORY | PK_HEAD_SAME_MEMORY)) == PK_HEAD_MEMORY) {
        p = pk_put_delta(p, rec->rss, b->rss);
        p = pk_put_delta(p, rec->vms, b->vms);
        b->rss = rec->rss;
        b->vms = rec->vms;
    }
    if ((head & (PK_HEAD_ALLOC | PK_HEAD_SAME_ALLOC)) == PK_HEAD_ALLOC) {
        p = pk_put_delta(p, rec->allocated, b->allocated);
        p = pk_put_delta(p, rec->freed, b->freed);
        b->allocated = rec->allocated;
        b->freed = rec->freed;
    }
    if ((head & (PK_HEAD_RETURN | PK_HEAD_ALLOC | PK_HEAD_NO_ALLOC_DELTA)) ==
        (PK_HEAD_RETURN | PK_HEAD_ALLOC)) {
        p = pk_put_uvarint(p, rec->alloc_delta);
        p = pk_put_uvarint(p, rec->free_delta);
    }
    b->index = rec->index;
    b->thread = rec->thread;
    b->time_ns = rec->time_ns;
    b->used = (size_t)(p - b->bytes);
    b->count++;
}

/* ---- commits ------------------------------------------------------------------- */

/* Everything a reader needs to make sense of the run's batches so far. */
static int store_run_state(pk_store_run *s, pk_error *err)
{
    if (store_batch(s, err) != 0 || store_symbols(s, err) != 0 || store_aggregates(s, err) != 0)
        return -1;
    if (pk_heap_store(&s->heap, s->w->db, s->run_id) != 0)
        return failed(s->w, err);
    return store_progress(s, err);
}

int pk_store_writer_commit(pk_store_writer *w, pk_error *err)
{
    if (begin(w, err) != 0)
        return -1;
    for (size_t i = 0; i < w->run_count; i++)
        if (store_run_state(w->runs[i], err) != 0)
            return -1;
    if (step(w, ST_COMMIT, err) != 0)
        return -1;
    w->in_transaction = false;
    w->commits++;
    w->last_commit_ns = pk_clock_monotonic_ns();
    pk_store_checkpointer_kick(w->checkpointer, w->db);
    return 0;
}

int pk_store_writer_commit_due(pk_store_writer *w, pk_error *err)
{
    if (pk_clock_monotonic_ns() - w->last_commit_ns < COMMIT_INTERVAL_NS)
        return 0;
    return pk_store_writer_commit(w, err);
}

/* ---- profiler spans and checkpoints (schema version 2) -------------------------- */

/* The innermost span open on the thread, or 0. */
static uint64_t open_span_on(const pk_store_run *s, uint64_t thread)
{
    for (size_t i = s->open_span_count; i-- > 0;)
        if (s->open_spans[i].thread == thread)
            return s->open_spans[i].span;
    return 0;
}

static void close_span(pk_store_run *s, uint64_t thread, uint64_t span)
{
    for (size_t i = s->open_span_count; i-- > 0;) {
        if (s->open_spans[i].thread == thread && s->open_spans[i].span == span) {
            memmove(&s->open_spans[i], &s->open_spans[i + 1],
                    (s->open_span_count - i - 1) * sizeof *s->open_spans);
            s->open_span_count--;
            return;
        }
    }
}

static int store_span_start(pk_store_run *s, const pk_record *rec, pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_INSERT_SPAN];
    uint64_t parent = open_span_on(s, rec->thread);
    sqlite3_bind_int64(st, 1, s->run_id);
    pk_store_bind_u64(st, 2, rec->span);
    bind_measured(st, 3, parent != 0, (int64_t)parent);
    pk_store_bind_u64(st, 4, rec->thread);
    sqlite3_bind_int(st, 5, (int)rec->depth);
    sqlite3_bind_text(st, 6, rec->function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, rec->file, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, (int)rec->line);
    if (rec->label && *rec->label)
        sqlite3_bind_text(st, 9, rec->label, -1, SQLITE_STATIC);
    pk_store_bind_u64(st, 10, rec->time_ns);
    pk_grow(&s->open_spans, &s->open_span_capacity, s->open_span_count, sizeof *s->open_spans);
    s->open_spans[s->open_span_count++] = (open_span){rec->thread, rec->span};
    return step(s->w, ST_INSERT_SPAN, err);
}

static int store_span_finish(pk_store_run *s, const pk_record *rec, pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_FINISH_SPAN];
    close_span(s, rec->thread, rec->span);
    pk_store_bind_u64(st, 1, rec->duration_ns);
    sqlite3_bind_int64(st, 2, s->run_id);
    pk_store_bind_u64(st, 3, rec->span);
    return step(s->w, ST_FINISH_SPAN, err);
}

static int store_checkpoint(pk_store_run *s, const pk_record *rec, pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_INSERT_CHECKPOINT];
    bool memory = rec->flags & PK_RECORD_MEMORY, alloc = rec->flags & PK_RECORD_ALLOC;
    sqlite3_bind_int64(st, 1, s->run_id);
    pk_store_bind_u64(st, 2, rec->index);
    pk_store_bind_u64(st, 3, rec->span);
    sqlite3_bind_text(st, 4, rec->function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, rec->label ? rec->label : "", -1, SQLITE_STATIC);
    pk_store_bind_u64(st, 6, rec->thread);
    sqlite3_bind_int(st, 7, (int)rec->depth);
    pk_store_bind_u64(st, 8, rec->time_ns);
    pk_store_bind_u64(st, 9, rec->duration_ns);
    pk_store_bind_u64(st, 10, rec->total_ns);
    bind_measured(st, 11, memory, (int64_t)rec->rss);
    bind_measured(st, 12, memory, (int64_t)rec->vms);
    bind_measured(st, 13, alloc, (int64_t)rec->allocated);
    bind_measured(st, 14, alloc, (int64_t)rec->freed);
    bind_measured(st, 15, alloc, (int64_t)rec->alloc_delta);
    bind_measured(st, 16, alloc, (int64_t)rec->free_delta);
    return step(s->w, ST_INSERT_CHECKPOINT, err);
}

/* A profiler's record: its start and finish also go into the batches, as calls do. */
static int store_profiler_record(pk_store_run *s, const pk_record *rec, pk_error *err)
{
    if (begin(s->w, err) != 0)
        return -1;
    switch (rec->type) {
    case PK_EVENT_CALL:
        return store_span_start(s, rec, err);
    case PK_EVENT_RETURN:
        return store_span_finish(s, rec, err);
    case PK_EVENT_CHECKPOINT:
        return store_checkpoint(s, rec, err);
    default: /* allocations and samples carry no span */
        return 0;
    }
}

/* ---- runs -------------------------------------------------------------------------- */

/* The default namer: the thread's name in this process. */
static bool own_thread_name(uint64_t thread, char name[16], void *user)
{
    (void)user;
    return pk_thread_name(thread, name);
}

/* The run's memory, with no row yet; the writer commits it from now on. */
static pk_store_run *run_new(pk_store_writer *w, const pk_run_info *run)
{
    pk_store_run *s = pk_xcalloc(1, sizeof *s);
    s->w = w;
    s->symbols_stored = 1;
    s->batch.bytes = pk_xcalloc(1, BATCH_BYTES + EVENT_MAX_BYTES);
    s->namer = own_thread_name;
    s->start_wall_ns = run->start_wall_ns;
    pk_aggregates_init(&s->aggregates);
    pk_heap_init(&s->heap);
    s->heap.blocks_tracked = (run->flags & PK_RECORD_BLOCK) != 0;
    pk_grow(&w->runs, &w->run_capacity, w->run_count, sizeof *w->runs);
    w->runs[w->run_count++] = s;
    return s;
}

pk_store_run *pk_store_run_start(pk_store_writer *w, const pk_run_info *run, int ppid,
                                 uint64_t sender, pk_error *err)
{
    pk_store_run *s = run_new(w, run);
    sqlite3_stmt *st = w->st[ST_INSERT_RUN];
    sqlite3_bind_text(st, 1, run->command_line ? run->command_line : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, run->host ? run->host : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, run->pid);
    sqlite3_bind_int64(st, 4, run->start_wall_ns);
    sqlite3_bind_text(st, 5, run->monitor ? run->monitor : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, run->clock ? run->clock : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, run->alloc_source ? run->alloc_source : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, (int)run->flags);
    sqlite3_bind_int(st, 9, ppid);
    bind_measured(st, 10, sender != 0, (int64_t)sender);
    /* Committed at once: a reader sees the run as 'running' from its start. */
    if (begin(w, err) != 0 || step(w, ST_INSERT_RUN, err) != 0)
        goto fail;
    s->run_id = sqlite3_last_insert_rowid(w->db);
    st = w->st[ST_END_REPLACED];
    sqlite3_bind_int64(st, 1, run->start_wall_ns);
    sqlite3_bind_int64(st, 2, s->run_id);
    sqlite3_bind_int(st, 3, run->pid);
    if (step(w, ST_END_REPLACED, err) != 0)
        goto fail;
    if (pk_store_writer_commit(w, err) != 0)
        goto fail;
    return s;
fail:
    pk_store_run_free(s);
    return NULL;
}

void pk_store_run_name_threads(pk_store_run *s, pk_thread_namer namer, void *user)
{
    s->namer = namer;
    s->namer_user = user;
    /* rows written before get their names at the next commit */
    for (size_t i = 0; i < s->aggregates.thread_count; i++)
        pk_aggregates_touch_thread(&s->aggregates, &s->aggregates.threads[i]);
}

void pk_store_run_resolve_frames(pk_store_run *s, pk_frame_resolver resolver, void *user)
{
    s->heap.resolve_frame = resolver;
    s->heap.resolve_user = user;
}

/* A record in the run's counts and aggregates; inline in pk_store_run_record_many. */
static inline void count(pk_store_run *s, const pk_record *rec)
{
    s->events++;
    s->calls += rec->type == PK_EVENT_CALL;
    pk_aggregates_observe(&s->aggregates, rec);
}

void pk_store_run_observe(pk_store_run *s, const pk_record *rec)
{
    if (rec->type < PK_EVENT_ALLOC) {
        count(s, rec);
        return;
    }
    s->events++;
    pk_heap_observe(&s->heap, rec, 1, &s->aggregates); /* counts it as its thread's event */
}

int pk_store_run_write(pk_store_run *s, const pk_record *rec, pk_error *err)
{
    if (rec->type >= PK_EVENT_ALLOC)
        return 0; /* allocations and samples are kept by the heap (observe), not as events */
    if (rec->flags & PK_RECORD_SPAN) {
        if (store_profiler_record(s, rec, err) != 0)
            return -1;
        if (rec->type == PK_EVENT_CHECKPOINT)
            return 0;
    }
    pk_aggregates *a = &s->aggregates;
    uint32_t function = pk_aggregates_function(a, rec);
    uint32_t caller = pk_aggregates_symbol(a, rec->caller, rec->caller_file, 0);
    pk_thread_stats *t = pk_aggregates_thread(a, rec->thread);
    t->written++;
    pk_aggregates_touch_thread(a, t);
    encode(&s->batch, rec, function, caller);
    s->written++;
    /* A slow trickle of events must not sit in memory for long either: the
     * clock is read every few hundred events, and every full batch. */
    bool full = s->batch.count >= BATCH_EVENTS || s->batch.used >= BATCH_BYTES;
    if (!full && s->batch.count % CLOCK_CHECK_EVENTS != 0)
        return 0;
    bool due = pk_clock_monotonic_ns() - s->w->last_commit_ns >= COMMIT_INTERVAL_NS;
    if ((full || due) && store_batch(s, err) != 0)
        return -1;
    return due ? pk_store_writer_commit(s->w, err) : 0;
}

size_t pk_store_run_record_many(pk_store_run *s, const pk_record *recs, size_t n, pk_error *err)
{
    for (size_t i = 0; i < n;) {
        if (recs[i].type < PK_EVENT_ALLOC) {
            count(s, &recs[i]);
            if (pk_store_run_write(s, &recs[i], err) != 0)
                return i;
            i++;
            continue;
        }
        /* Allocations and samples in a row: the heap takes them in one call,
         * and write keeps none of them (pk_store_run_write). */
        size_t first = i;
        while (i < n && recs[i].type >= PK_EVENT_ALLOC)
            i++;
        s->events += i - first;
        /* It counts each as its thread's event, with the thread it looks up anyway. */
        pk_heap_observe(&s->heap, &recs[first], i - first, &s->aggregates);
    }
    return n;
}

static int forget_messages(pk_store_run *s, pk_error *err)
{
    sqlite3_bind_int64(s->w->st[ST_FORGET_MESSAGES], 1, s->run_id);
    return step(s->w, ST_FORGET_MESSAGES, err);
}

/* The run ends without its totals: what arrived stays, under `status`. */
static int abandon(pk_store_run *s, const char *status, pk_error *err)
{
    pk_store_writer *w = s->w;
    sqlite3_stmt *st = w->st[ST_ABANDON_RUN];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    sqlite3_bind_int64(st, 3, s->run_id);
    return step(w, ST_ABANDON_RUN, err) == 0 ? pk_store_writer_commit(w, err) : -1;
}

int pk_store_run_suspend(pk_store_run *s, pk_error *err)
{
    if (store_batch(s, err) != 0 || begin(s->w, err) != 0)
        return -1;
    return abandon(s, "incomplete", err);
}

int pk_store_run_finish(pk_store_run *s, const pk_run_totals *totals, uint64_t peak_rss,
                        const char *status, pk_error *err)
{
    pk_store_writer *w = s->w;
    if (store_batch(s, err) != 0 || begin(w, err) != 0 || forget_messages(s, err) != 0)
        return -1;
    if (!totals)
        return abandon(s, status, err);
    sqlite3_stmt *st = w->st[ST_FINISH_RUN];
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->start_wall_ns + (int64_t)totals->end_ns);
    pk_store_bind_u64(st, 3, totals->end_ns);
    pk_store_bind_u64(st, 4, totals->events);
    pk_store_bind_u64(st, 5, totals->calls);
    pk_store_bind_u64(st, 6, s->written);
    pk_store_bind_u64(st, 7, totals->dropped);
    pk_store_bind_u64(st, 8, totals->unmatched);
    pk_store_bind_u64(st, 9, totals->unfinished);
    sqlite3_bind_int64(st, 10, s->run_id);
    pk_heap_finish(&s->heap, peak_rss);
    /* The final counts are the run's totals; progress must not overwrite them. */
    s->events = totals->events;
    s->calls = totals->calls;
    if (store_progress(s, err) != 0 || step(w, ST_FINISH_RUN, err) != 0)
        return -1;
    return pk_store_writer_commit(w, err);
}

int64_t pk_store_run_id(const pk_store_run *s)
{
    return s->run_id;
}

uint64_t pk_store_writer_commits(const pk_store_writer *w)
{
    return w->commits;
}

int pk_store_writer_mark_run(pk_store_writer *w, const char *host, int pid,
                             int64_t started_after_ns, const char *status, int signal,
                             int exit_status, pk_error *err)
{
    if (pk_store_writer_commit(w, err) != 0)
        return -1;
    return pk_store_mark_run_in(w->db, w->path, host, pid, started_after_ns, status, signal,
                                exit_status, NULL, err);
}

/* ---- a collector's runs across collectors ------------------------------------------ */

int pk_store_writer_find_sender(pk_store_writer *w, uint64_t sender, int64_t *run_id,
                                pk_store_sender_state *state, pk_error *err)
{
    sqlite3_stmt *st = w->st[ST_FIND_SENDER];
    sqlite3_bind_int64(st, 1, (int64_t)sender);
    int rc = sqlite3_step(st);
    *run_id = 0;
    *state = PK_STORE_SENDER_NEW;
    if (rc == SQLITE_ROW) {
        /* Resumed when its messages were kept, or when it is still 'running' with
         * none (a collector killed between the run's row, committed at once, and its
         * first commit of them); a run ended without them (the sender vanished) keeps
         * what it has, and the sender's records go to a new run. */
        *run_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int(st, 1))
            *state = PK_STORE_SENDER_ENDED;
        else if (sqlite3_column_int(st, 2))
            *state = PK_STORE_SENDER_RESUMABLE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : failed(w, err);
}

/* Deletes what the replay rebuilds: every row of the run but its own and its messages. */
static int clear_run(pk_store_writer *w, int64_t run_id, pk_error *err)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(run_tables); i++) {
        char sql[80];
        sqlite3_stmt *st = NULL;
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?", run_tables[i]);
        if (sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK)
            return failed(w, err);
        sqlite3_bind_int64(st, 1, run_id);
        int rc = pk_store_step(st);
        sqlite3_finalize(st);
        if (rc != 0)
            return failed(w, err);
    }
    return 0;
}

pk_store_run *pk_store_run_reopen(pk_store_writer *w, int64_t run_id, const pk_run_info *run,
                                  pk_error *err)
{
    pk_store_run *s = run_new(w, run);
    s->run_id = run_id;
    sqlite3_bind_int64(w->st[ST_REOPEN_RUN], 1, run_id);
    if (begin(w, err) != 0 || clear_run(w, run_id, err) != 0 || step(w, ST_REOPEN_RUN, err) != 0) {
        pk_store_run_free(s);
        return NULL;
    }
    return s;
}

int pk_store_run_keep_message(pk_store_run *s, uint64_t seq, const uint8_t *message, size_t size,
                              pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_KEEP_MESSAGE];
    if (begin(s->w, err) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, s->run_id);
    pk_store_bind_u64(st, 2, seq);
    sqlite3_bind_blob(st, 3, message, (int)size, SQLITE_STATIC);
    return step(s->w, ST_KEEP_MESSAGE, err);
}

int pk_store_run_replay(pk_store_run *s, pk_store_message_taker take, void *user, pk_error *err)
{
    sqlite3_stmt *st = s->w->st[ST_NEXT_MESSAGE];
    int64_t last = 0;
    for (;;) {
        sqlite3_bind_int64(st, 1, s->run_id);
        sqlite3_bind_int64(st, 2, last);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return rc == SQLITE_DONE ? 0 : failed(s->w, err);
        }
        /* a copy: taking it may commit, which must find no statement half-read */
        last = sqlite3_column_int64(st, 0);
        size_t size = (size_t)sqlite3_column_bytes(st, 1);
        uint8_t *message = pk_xcalloc(1, size + 1);
        memcpy(message, sqlite3_column_blob(st, 1), size);
        sqlite3_reset(st);
        rc = take(message, size, user, err);
        free(message);
        if (rc != 0)
            return rc;
    }
}

size_t pk_store_run_top(const pk_store_run *s, size_t n, const char **names, int64_t *self_ns,
                        int64_t *all)
{
    const pk_aggregates *a = &s->aggregates;
    size_t found = 0;
    *all = 0;
    for (uint32_t id = 1; id < a->symbol_count && id < a->function_capacity; id++) {
        int64_t self = a->functions[id].sums.self_ns;
        *all += self;
        size_t k = found < n ? found++ : n;
        /* insertion into the sorted top n */
        while (k > 0 && self > self_ns[k - 1]) {
            if (k < n) {
                self_ns[k] = self_ns[k - 1];
                names[k] = names[k - 1];
            }
            k--;
        }
        if (k < n) {
            self_ns[k] = self;
            names[k] = a->symbols[id].function;
        }
    }
    return found;
}

static void run_free(pk_store_run *s, bool forked)
{
    if (!s)
        return;
    pk_store_writer *w = s->w;
    for (size_t i = 0; i < w->run_count; i++) {
        if (w->runs[i] == s) {
            w->runs[i] = w->runs[--w->run_count];
            break;
        }
    }
    if (forked) {
        pk_heap_reset(&s->heap); /* its statements belong to the parent's connection */
    } else {
        pk_heap_close(&s->heap);
    }
    pk_aggregates_free(&s->aggregates);
    free(s->batch.bytes);
    pk_blob_calls_free(&s->batch.calls);
    free(s->open_spans);
    free(s);
}

void pk_store_run_free(pk_store_run *s)
{
    run_free(s, false);
}
