/*
 * store_events.c — the pikoc_events virtual table: decodes the event batches
 * of docs/schema.md into one row per event, for any SQL. Read-only and
 * eponymous (no CREATE needed). Built into libpikoc and, with
 * PK_SQLITE_EXTENSION, into the loadable extension pikoc_sqlite.so, so it
 * uses nothing from libpikoc but the encoding constants.
 */
#ifdef PK_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#endif
#include "store.h"

#include <string.h>

enum column {
    COL_RUN_ID,
    COL_INDEX,
    COL_TYPE,
    COL_FUNCTION,
    COL_FILE,
    COL_LINE,
    COL_CALLER,
    COL_CALLER_FILE,
    COL_CALLER_LINE,
    COL_THREAD,
    COL_DEPTH,
    COL_TIME,
    COL_DURATION,
    COL_RSS,
    COL_VMS,
    COL_ALLOCATED,
    COL_FREED,
    COL_ALLOC_DELTA,
    COL_FREE_DELTA,
    COL_FUNCTION_ID,
    COL_CALLER_ID,
};

static const char declaration[] =
    "CREATE TABLE x(run_id INTEGER, \"index\" INTEGER, type TEXT, function TEXT, file TEXT, "
    "line INTEGER, caller TEXT, caller_file TEXT, caller_line INTEGER, thread INTEGER, "
    "depth INTEGER, time_ns INTEGER, duration_ns INTEGER, rss INTEGER, vms INTEGER, "
    "allocated INTEGER, freed INTEGER, alloc_delta INTEGER, free_delta INTEGER, "
    "function_id INTEGER, caller_id INTEGER)";

/* ---- plan: which constraints prune batches or skip rows -------------------------- */

/*
 * Constraints we use, one bit each in idxNum, their values in argv in bit
 * order. The first ones skip whole batches (a condition on event_batches);
 * the row filters skip events while decoding, before SQLite sees them.
 */
enum plan_bit {
    PLAN_RUN_EQ,
    PLAN_INDEX_EQ,
    PLAN_INDEX_GT,
    PLAN_INDEX_GE,
    PLAN_INDEX_LT,
    PLAN_INDEX_LE,
    PLAN_TIME_EQ,
    PLAN_TIME_GT,
    PLAN_TIME_GE,
    PLAN_TIME_LT,
    PLAN_TIME_LE,
    PLAN_FUNCTION_EQ, /* row filters from here on */
    PLAN_FUNCTION_GLOB,
    PLAN_TYPE_EQ,
    PLAN_THREAD_EQ,
    PLAN_BITS
};

static int plan_bit_of(int column, unsigned char op)
{
    int base;
    bool eq = op == SQLITE_INDEX_CONSTRAINT_EQ;
    if (column == COL_RUN_ID)
        return eq ? PLAN_RUN_EQ : -1;
    if (column == COL_FUNCTION)
        return eq ? PLAN_FUNCTION_EQ : op == SQLITE_INDEX_CONSTRAINT_GLOB ? PLAN_FUNCTION_GLOB : -1;
    if (column == COL_TYPE)
        return eq ? PLAN_TYPE_EQ : -1;
    if (column == COL_THREAD)
        return eq ? PLAN_THREAD_EQ : -1;
    if (column == COL_INDEX)
        base = PLAN_INDEX_EQ;
    else if (column == COL_TIME)
        base = PLAN_TIME_EQ;
    else
        return -1;
    switch (op) {
    case SQLITE_INDEX_CONSTRAINT_EQ:
        return base;
    case SQLITE_INDEX_CONSTRAINT_GT:
        return base + 1;
    case SQLITE_INDEX_CONSTRAINT_GE:
        return base + 2;
    case SQLITE_INDEX_CONSTRAINT_LT:
        return base + 3;
    case SQLITE_INDEX_CONSTRAINT_LE:
        return base + 4;
    default:
        return -1;
    }
}

/* SQLite still checks every constraint on each row (omit stays 0): ours only skip work. */
static int events_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    (void)vtab;
    int slot[PLAN_BITS];
    unsigned plan = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        int bit = c->usable ? plan_bit_of(c->iColumn, c->op) : -1;
        if (bit >= 0 && !(plan & (1u << bit))) {
            plan |= 1u << bit;
            slot[bit] = i;
        }
    }
    int argv_index = 1;
    for (int bit = 0; bit < PLAN_BITS; bit++)
        if (plan & (1u << bit))
            info->aConstraintUsage[slot[bit]].argvIndex = argv_index++;
    info->idxNum = (int)plan;
    info->estimatedCost = (plan & (1u << PLAN_RUN_EQ)) ? 1e6 : 1e7;
    if (plan & ~(1u << PLAN_RUN_EQ))
        info->estimatedCost /= 10;
    info->estimatedRows = (sqlite3_int64)info->estimatedCost;
    return SQLITE_OK;
}

/* ---- cursor ---------------------------------------------------------------------- */

typedef struct events_vtab {
    sqlite3_vtab base;
    sqlite3 *db;
} events_vtab;

typedef struct symbol {
    const char *function;
    const char *file;
    int64_t line;
} symbol;

typedef struct event_row {
    uint64_t index, thread, depth, function, caller, caller_line, time_ns, duration_ns;
    uint64_t rss, vms, allocated, freed, alloc_delta, free_delta;
    unsigned head;
} event_row;

typedef struct cursor {
    sqlite3_vtab_cursor base;
    sqlite3_stmt *batches;
    sqlite3_stmt *symbols;
    /* the current batch */
    int64_t batch_id, run_id, left;
    const uint8_t *p, *end;
    const uint8_t *first_event; /* where the batch's first event starts */
    uint8_t encoding;           /* the batch's PK_STORE_ENCODING */
    pk_blob_calls calls;        /* encoding 2: the batch's calls, for its returns */
    /* the symbols of run_id, by id (slot 0 unused) */
    int64_t symbols_run;
    symbol *table;
    int64_t table_size;
    char *strings; /* one block holding every symbol string */
    event_row row;
    bool eof;
    /* row filters (PLAN_FUNCTION_*, PLAN_TYPE_EQ, PLAN_THREAD_EQ) */
    char *function; /* name or glob to match; NULL: any */
    bool function_glob;
    uint8_t *function_ok; /* by symbol id of symbols_run: does it match */
    int type;             /* TYPE_ANY, or the head's return bit wanted, or TYPE_NONE */
    bool thread_given;
    uint64_t thread;
} cursor;

enum { TYPE_ANY = -1, TYPE_NONE = -2 };

static int events_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **out, char **error)
{
    (void)aux, (void)argc, (void)argv, (void)error;
    int rc = sqlite3_declare_vtab(db, declaration);
    if (rc != SQLITE_OK)
        return rc;
    events_vtab *vtab = sqlite3_malloc(sizeof *vtab);
    if (!vtab)
        return SQLITE_NOMEM;
    memset(vtab, 0, sizeof *vtab);
    vtab->db = db;
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &vtab->base;
    return SQLITE_OK;
}

static int events_disconnect(sqlite3_vtab *vtab)
{
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int events_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->eof = true;
    c->type = TYPE_ANY;
    *out = &c->base;
    return SQLITE_OK;
}

static void forget_symbols(cursor *c)
{
    sqlite3_free(c->table);
    sqlite3_free(c->strings);
    sqlite3_free(c->function_ok);
    c->table = NULL;
    c->strings = NULL;
    c->function_ok = NULL;
    c->table_size = 0;
    c->symbols_run = 0;
}

static int events_close(sqlite3_vtab_cursor *base)
{
    cursor *c = (cursor *)base;
    sqlite3_finalize(c->batches);
    sqlite3_finalize(c->symbols);
    forget_symbols(c);
    pk_blob_calls_free(&c->calls);
    sqlite3_free(c->function);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* Reports the connection's error (a corrupt page, ...) through the vtab. */
static int db_error(cursor *c, int rc)
{
    sqlite3_vtab *vtab = c->base.pVtab;
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(((events_vtab *)vtab)->db));
    return rc;
}

/* A damaged file: message (sqlite3_mprintf's) becomes the statement's error. */
static int corrupt(cursor *c, char *message)
{
    sqlite3_vtab *vtab = c->base.pVtab;
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = message;
    return SQLITE_CORRUPT_VTAB;
}

static int malformed(cursor *c)
{
    return corrupt(c, sqlite3_mprintf("pikoc_events: batch %lld of run %lld is malformed",
                                      (long long)c->batch_id, (long long)c->run_id));
}

/* ---- symbols of a run ------------------------------------------------------------ */

/* Which of the run's symbols the function filter keeps, as the GLOB or = operator would. */
static int match_functions(cursor *c)
{
    c->function_ok = sqlite3_malloc64((uint64_t)c->table_size);
    if (!c->function_ok)
        return SQLITE_NOMEM;
    for (int64_t id = 0; id < c->table_size; id++) {
        const char *name = c->table[id].function;
        c->function_ok[id] = name && (c->function_glob ? sqlite3_strglob(c->function, name) == 0
                                                       : strcmp(c->function, name) == 0);
    }
    return SQLITE_OK;
}

/* Fills the table from the symbols statement, whose rows must be read twice: ids, then bytes. */
static int load_symbols(cursor *c, int64_t run_id)
{
    forget_symbols(c);
    sqlite3_stmt *st = c->symbols;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, run_id);
    int64_t max_id = 0, bytes = 0, rows = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        max_id = id > max_id ? id : max_id;
        bytes += sqlite3_column_bytes(st, 1) + sqlite3_column_bytes(st, 2) + 2;
        rows++;
    }
    if (rc != SQLITE_DONE)
        return db_error(c, rc);
    /* A run's symbols are numbered from 1 (store_writer.c): an id past their
     * count is a damaged file, whose table might not even fit in memory. */
    if (max_id > rows)
        return corrupt(c, sqlite3_mprintf("pikoc_events: the symbols of run %lld are malformed "
                                          "(id %lld among %lld)",
                                          (long long)run_id, (long long)max_id, (long long)rows));
    c->table = sqlite3_malloc64((uint64_t)(max_id + 1) * sizeof *c->table);
    c->strings = sqlite3_malloc64((uint64_t)bytes + 1);
    if (!c->table || !c->strings)
        return SQLITE_NOMEM;
    memset(c->table, 0, (size_t)(max_id + 1) * sizeof *c->table);
    c->table_size = max_id + 1;
    c->symbols_run = run_id;
    char *out = c->strings;
    sqlite3_reset(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id < 1 || id > max_id)
            continue;
        symbol *s = &c->table[id];
        for (int col = 1; col <= 2; col++) {
            const char *text = (const char *)sqlite3_column_text(st, col);
            size_t len = (size_t)sqlite3_column_bytes(st, col);
            memcpy(out, text ? text : "", len);
            out[len] = '\0';
            *(col == 1 ? &s->function : &s->file) = out;
            out += len + 1;
        }
        s->line = sqlite3_column_int64(st, 3);
    }
    if (rc != SQLITE_DONE)
        return db_error(c, rc);
    return c->function ? match_functions(c) : SQLITE_OK;
}

/* ---- decoding ---------------------------------------------------------------------- */

static bool get_uvarint(cursor *c, uint64_t *v)
{
    uint64_t value = 0;
    for (unsigned shift = 0; shift < 64 && c->p < c->end; shift += 7) {
        uint8_t byte = *c->p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = value;
            return true;
        }
    }
    return false;
}

static bool get_delta(cursor *c, uint64_t *v)
{
    uint64_t z;
    if (!get_uvarint(c, &z))
        return false;
    *v += (z >> 1) ^ (0 - (z & 1));
    return true;
}

static bool known_symbol(const cursor *c, uint64_t id)
{
    return id >= 1 && id < (uint64_t)c->table_size && c->table[id].function;
}

/* Whether the head byte is one an encoder can write. */
static bool head_is_valid(unsigned head)
{
    if ((head & PK_HEAD_SAME_MEMORY) && !(head & PK_HEAD_MEMORY))
        return false;
    if ((head & PK_HEAD_SAME_ALLOC) && !(head & PK_HEAD_ALLOC))
        return false;
    return !(head & PK_HEAD_NO_ALLOC_DELTA) || ((head & PK_HEAD_ALLOC) && (head & PK_HEAD_RETURN));
}

/* The fields every event has, after its index and thread. */
static bool decode_common(cursor *c, event_row *r)
{
    bool ret = r->head & PK_HEAD_RETURN;
    if (c->encoding == PK_STORE_ENCODING_V1)
        return get_uvarint(c, &r->depth) && get_uvarint(c, &r->function) &&
               get_uvarint(c, &r->caller) && get_uvarint(c, &r->caller_line) &&
               get_delta(c, &r->time_ns) && (!ret || get_uvarint(c, &r->duration_ns));
    if (!ret) {
        if (!(get_uvarint(c, &r->depth) && get_uvarint(c, &r->function) &&
              get_uvarint(c, &r->caller) && get_uvarint(c, &r->caller_line) &&
              get_delta(c, &r->time_ns)))
            return false;
        pk_blob_call *call = pk_blob_call_at(&c->calls, r->thread, r->depth);
        if (call)
            *call = (pk_blob_call){r->function, r->caller, r->caller_line, r->time_ns,
                                   c->calls.blob};
        return true;
    }
    /* A return: its depth carries what it shares with the call it closes. */
    uint64_t depth;
    if (!get_uvarint(c, &depth))
        return false;
    unsigned same = depth & 3;
    r->depth = depth >> 2;
    const pk_blob_call *call = NULL;
    if (same & PK_DEPTH_SAME_CALL) {
        call = pk_blob_call_at(&c->calls, r->thread, r->depth);
        if (!call || call->blob != c->calls.blob)
            return false; /* no such call in this blob */
        r->function = call->function;
        r->caller = call->caller;
        r->caller_line = call->caller_line;
    } else if (same & PK_DEPTH_IMPLIED_DURATION ||
               !(get_uvarint(c, &r->function) && get_uvarint(c, &r->caller) &&
                 get_uvarint(c, &r->caller_line))) {
        return false;
    }
    if (!get_delta(c, &r->time_ns))
        return false;
    if (same & PK_DEPTH_IMPLIED_DURATION) {
        r->duration_ns = r->time_ns - call->time_ns;
        return true;
    }
    return get_uvarint(c, &r->duration_ns);
}

static bool decode_measures(cursor *c, event_row *r)
{
    unsigned head = r->head;
    if ((head & (PK_HEAD_MEMORY | PK_HEAD_SAME_MEMORY)) == PK_HEAD_MEMORY &&
        !(get_delta(c, &r->rss) && get_delta(c, &r->vms)))
        return false;
    if ((head & (PK_HEAD_ALLOC | PK_HEAD_SAME_ALLOC)) == PK_HEAD_ALLOC &&
        !(get_delta(c, &r->allocated) && get_delta(c, &r->freed)))
        return false;
    r->alloc_delta = r->free_delta = 0;
    if ((head & (PK_HEAD_RETURN | PK_HEAD_ALLOC | PK_HEAD_NO_ALLOC_DELTA)) ==
        (PK_HEAD_RETURN | PK_HEAD_ALLOC))
        return get_uvarint(c, &r->alloc_delta) && get_uvarint(c, &r->free_delta);
    return true;
}

/* One event at c->p into c->row; false when the bytes do not form one. */
static bool decode_event(cursor *c)
{
    event_row *r = &c->row;
    bool first = c->p == c->first_event;
    if (c->p >= c->end)
        return false;
    r->head = *c->p++;
    if (!head_is_valid(r->head) ||
        (first && (r->head & (PK_HEAD_SAME_THREAD | PK_HEAD_NEXT_INDEX))))
        return false;
    if (r->head & PK_HEAD_NEXT_INDEX)
        r->index++;
    else if (!get_delta(c, &r->index))
        return false;
    if (!(r->head & PK_HEAD_SAME_THREAD) && !get_uvarint(c, &r->thread))
        return false;
    return decode_common(c, r) && decode_measures(c, r) && known_symbol(c, r->function) &&
           known_symbol(c, r->caller);
}

/* Moves to the next batch with events; sets eof past the last. */
static int next_batch(cursor *c)
{
    int rc = sqlite3_step(c->batches);
    if (rc == SQLITE_DONE) {
        c->eof = true;
        return SQLITE_OK;
    }
    if (rc != SQLITE_ROW)
        return db_error(c, rc);
    c->batch_id = sqlite3_column_int64(c->batches, 0);
    c->run_id = sqlite3_column_int64(c->batches, 1);
    c->left = sqlite3_column_int64(c->batches, 2);
    c->p = sqlite3_column_blob(c->batches, 3);
    c->end = c->p + sqlite3_column_bytes(c->batches, 3);
    memset(&c->row, 0, sizeof c->row);
    if (c->run_id != c->symbols_run && (rc = load_symbols(c, c->run_id)) != SQLITE_OK)
        return rc;
    if (!c->p || c->p == c->end || c->left < 0)
        return malformed(c);
    c->encoding = *c->p++;
    if (c->encoding != PK_STORE_ENCODING && c->encoding != PK_STORE_ENCODING_V1)
        return malformed(c);
    pk_blob_calls_next_blob(&c->calls);
    c->first_event = c->p;
    return SQLITE_OK;
}

/* Decodes the next event, moving on to the next batch when one is used up. */
static int advance(cursor *c)
{
    while (!c->eof && c->left == 0) {
        if (c->p != c->end)
            return malformed(c); /* bytes after the last event */
        int rc = next_batch(c);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (c->eof)
        return SQLITE_OK;
    if (!decode_event(c))
        return malformed(c);
    c->left--;
    return SQLITE_OK;
}

static bool row_passes(const cursor *c)
{
    const event_row *r = &c->row;
    if (c->type != TYPE_ANY && (c->type == TYPE_NONE || (int)(r->head & PK_HEAD_RETURN) != c->type))
        return false;
    if (c->thread_given && r->thread != c->thread)
        return false;
    return !c->function_ok || c->function_ok[r->function];
}

static int events_next(sqlite3_vtab_cursor *base)
{
    cursor *c = (cursor *)base;
    int rc;
    do
        rc = advance(c);
    while (rc == SQLITE_OK && !c->eof && !row_passes(c));
    return rc;
}

/* The batch query for a plan: each pruning constraint becomes one condition. */
static char *batch_sql(unsigned plan)
{
    /* Every '?' of a condition stands for that constraint's own value. */
    static const char *const condition[PLAN_BITS] = {
        [PLAN_RUN_EQ] = " AND run_id = ?",
        [PLAN_INDEX_EQ] = " AND min_index <= ? AND max_index >= ?",
        [PLAN_INDEX_GT] = " AND max_index > ?",
        [PLAN_INDEX_GE] = " AND max_index >= ?",
        [PLAN_INDEX_LT] = " AND min_index < ?",
        [PLAN_INDEX_LE] = " AND min_index <= ?",
        [PLAN_TIME_EQ] = " AND min_time_ns <= ? AND max_time_ns >= ?",
        [PLAN_TIME_GT] = " AND max_time_ns > ?",
        [PLAN_TIME_GE] = " AND max_time_ns >= ?",
        [PLAN_TIME_LT] = " AND min_time_ns < ?",
        [PLAN_TIME_LE] = " AND min_time_ns <= ?",
    };
    sqlite3_str *sql = sqlite3_str_new(NULL);
    sqlite3_str_appendall(sql, "SELECT id, run_id, count, data FROM event_batches WHERE 1");
    int n = 0;
    for (int bit = 0; bit < PLAN_FUNCTION_EQ; bit++) {
        if (!(plan & (1u << bit)))
            continue;
        n++;
        for (const char *q = condition[bit]; *q; q++) {
            if (*q == '?')
                sqlite3_str_appendf(sql, "?%d", n);
            else
                sqlite3_str_appendchar(sql, 1, *q);
        }
    }
    sqlite3_str_appendall(sql, " ORDER BY id");
    return sqlite3_str_finish(sql);
}

static int prepare(cursor *c, sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int rc = sql ? sqlite3_prepare_v2(db, sql, -1, st, NULL) : SQLITE_NOMEM;
    if (rc != SQLITE_OK && sql) {
        sqlite3_vtab *vtab = c->base.pVtab;
        sqlite3_free(vtab->zErrMsg);
        vtab->zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    }
    return rc;
}

/*
 * Takes a row filter's value. Only values that compare plainly are used (text
 * for names and types, an integer for threads); with any other, SQLite's own
 * check of the constraint decides alone.
 */
static int set_row_filter(cursor *c, int bit, sqlite3_value *value)
{
    int kind = sqlite3_value_type(value);
    if (bit == PLAN_THREAD_EQ && kind == SQLITE_INTEGER) {
        c->thread_given = true;
        c->thread = (uint64_t)sqlite3_value_int64(value);
    } else if (bit == PLAN_TYPE_EQ && kind == SQLITE_TEXT) {
        const char *type = (const char *)sqlite3_value_text(value);
        c->type = strcmp(type, "call") == 0     ? 0
                  : strcmp(type, "return") == 0 ? (int)PK_HEAD_RETURN
                                                : TYPE_NONE;
    } else if ((bit == PLAN_FUNCTION_EQ || bit == PLAN_FUNCTION_GLOB) && kind == SQLITE_TEXT &&
               !c->function) {
        c->function = sqlite3_mprintf("%s", (const char *)sqlite3_value_text(value));
        c->function_glob = bit == PLAN_FUNCTION_GLOB;
        if (!c->function)
            return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void clear_row_filters(cursor *c)
{
    sqlite3_free(c->function);
    c->function = NULL;
    c->type = TYPE_ANY;
    c->thread_given = false;
    forget_symbols(c); /* their matches belong to the old filter */
}

static int events_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                         sqlite3_value **argv)
{
    (void)plan_text;
    cursor *c = (cursor *)base;
    sqlite3 *db = ((events_vtab *)base->pVtab)->db;
    sqlite3_finalize(c->batches);
    c->batches = NULL;
    c->eof = false;
    c->left = 0;
    c->p = c->end = NULL;
    clear_row_filters(c);
    char *sql = batch_sql((unsigned)plan);
    int rc = prepare(c, db, sql, &c->batches);
    sqlite3_free(sql);
    if (rc == SQLITE_OK && !c->symbols)
        rc = prepare(c, db, "SELECT id, function, file, line FROM symbols WHERE run_id = ?",
                     &c->symbols);
    if (rc != SQLITE_OK)
        return rc;
    int arg = 0;
    for (int bit = 0; bit < PLAN_BITS && arg < argc; bit++) {
        if (!(plan & (1u << bit)))
            continue;
        if (bit < PLAN_FUNCTION_EQ)
            sqlite3_bind_value(c->batches, arg + 1, argv[arg]);
        else if ((rc = set_row_filter(c, bit, argv[arg])) != SQLITE_OK)
            return rc;
        arg++;
    }
    return events_next(base);
}

static int events_eof(sqlite3_vtab_cursor *base)
{
    return ((cursor *)base)->eof;
}

static void result_unsigned(sqlite3_context *ctx, uint64_t v)
{
    sqlite3_result_int64(ctx, (sqlite3_int64)v);
}

static void result_measured(sqlite3_context *ctx, bool measured, uint64_t v)
{
    if (measured)
        result_unsigned(ctx, v);
    else
        sqlite3_result_null(ctx);
}

static void result_symbol(sqlite3_context *ctx, const cursor *c, uint64_t id, int part)
{
    const symbol *s = &c->table[id];
    if (part == 2)
        sqlite3_result_int64(ctx, s->line);
    else
        sqlite3_result_text(ctx, part == 0 ? s->function : s->file, -1, SQLITE_TRANSIENT);
}

static int events_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int column)
{
    const cursor *c = (const cursor *)base;
    const event_row *r = &c->row;
    bool ret = r->head & PK_HEAD_RETURN;
    bool memory = r->head & PK_HEAD_MEMORY, alloc = r->head & PK_HEAD_ALLOC;
    switch (column) {
    case COL_RUN_ID:
        sqlite3_result_int64(ctx, c->run_id);
        break;
    case COL_INDEX:
        result_unsigned(ctx, r->index);
        break;
    case COL_TYPE:
        sqlite3_result_text(ctx, ret ? "return" : "call", -1, SQLITE_STATIC);
        break;
    case COL_FUNCTION:
        result_symbol(ctx, c, r->function, 0);
        break;
    case COL_FILE:
        result_symbol(ctx, c, r->function, 1);
        break;
    case COL_LINE:
        result_symbol(ctx, c, r->function, 2);
        break;
    case COL_CALLER:
        result_symbol(ctx, c, r->caller, 0);
        break;
    case COL_CALLER_FILE:
        result_symbol(ctx, c, r->caller, 1);
        break;
    case COL_CALLER_LINE:
        result_unsigned(ctx, r->caller_line);
        break;
    case COL_THREAD:
        result_unsigned(ctx, r->thread);
        break;
    case COL_DEPTH:
        result_unsigned(ctx, r->depth);
        break;
    case COL_TIME:
        result_unsigned(ctx, r->time_ns);
        break;
    case COL_DURATION:
        result_measured(ctx, ret, r->duration_ns);
        break;
    case COL_RSS:
        result_measured(ctx, memory, r->rss);
        break;
    case COL_VMS:
        result_measured(ctx, memory, r->vms);
        break;
    case COL_ALLOCATED:
        result_measured(ctx, alloc, r->allocated);
        break;
    case COL_FREED:
        result_measured(ctx, alloc, r->freed);
        break;
    case COL_ALLOC_DELTA:
        result_measured(ctx, alloc && ret, r->alloc_delta);
        break;
    case COL_FREE_DELTA:
        result_measured(ctx, alloc && ret, r->free_delta);
        break;
    case COL_FUNCTION_ID:
        result_unsigned(ctx, r->function);
        break;
    case COL_CALLER_ID:
        result_unsigned(ctx, r->caller);
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int events_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((const cursor *)base)->row.index;
    return SQLITE_OK;
}

static sqlite3_module events_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE, works read-only */
    .xConnect = events_connect,
    .xBestIndex = events_best_index,
    .xDisconnect = events_disconnect,
    .xDestroy = events_disconnect,
    .xOpen = events_open,
    .xClose = events_close,
    .xFilter = events_filter,
    .xNext = events_next,
    .xEof = events_eof,
    .xColumn = events_column,
    .xRowid = events_rowid,
};

int pk_store_register_events(sqlite3 *db)
{
    return sqlite3_create_module(db, "pikoc_events", &events_module, NULL);
}

#ifdef PK_SQLITE_EXTENSION
/* The entry point SQLite derives from the file name pikoc_sqlite.so. */
__attribute__((visibility("default"))) int
sqlite3_pikocsqlite_init(sqlite3 *db, char **error, const sqlite3_api_routines *api);

int sqlite3_pikocsqlite_init(sqlite3 *db, char **error, const sqlite3_api_routines *api)
{
    (void)error;
    SQLITE_EXTENSION_INIT2(api);
    return pk_store_register_events(db);
}
#endif
