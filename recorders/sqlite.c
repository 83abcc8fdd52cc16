/*
 * sqlite.c — the sqlite:PATH recorder: appends a run to a pikoc store
 * (docs/schema.md) through the store writer (src/store_writer.c), which
 * batches events, keeps exact aggregates from every observed record and
 * commits about every 250 ms. Drain thread only.
 */
#include "store.h"

typedef struct sqlite_state {
    pk_store_writer *writer;
    pk_store_run *run; /* NULL before the run starts and after it ends */
} sqlite_state;

static int sqlite_open(pk_recorder *r, const char *arg, pk_error *err)
{
    sqlite_state *s = pk_recorder_state(r);
    s->writer = pk_store_writer_open(arg, err);
    return s->writer ? 0 : -1;
}

static int sqlite_start(pk_recorder *r, const pk_run_info *run, pk_error *err)
{
    sqlite_state *s = pk_recorder_state(r);
    pk_store_run_free(s->run);
    s->run = pk_store_run_start(s->writer, run, (int)pk_program_parent(), 0, err);
    return s->run ? 0 : -1;
}

static int sqlite_observe(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)err;
    sqlite_state *s = r->state; /* not pk_recorder_state: no PLT call per record */
    pk_store_run_observe(s->run, rec);
    return 0;
}

static int sqlite_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    sqlite_state *s = r->state;
    return pk_store_run_write(s->run, rec, err);
}

static size_t sqlite_record_many(pk_recorder *r, const pk_record *recs, size_t n, pk_error *err)
{
    sqlite_state *s = r->state;
    return pk_store_run_record_many(s->run, recs, n, err);
}

static int sqlite_flush(pk_recorder *r, pk_error *err)
{
    sqlite_state *s = pk_recorder_state(r);
    return s->run ? pk_store_writer_commit(s->writer, err) : 0;
}

static int sqlite_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    sqlite_state *s = pk_recorder_state(r);
    if (!s->run)
        return 0;
    int rc = pk_store_run_finish(s->run, totals, pk_process_peak_rss(), "complete", err);
    pk_store_run_free(s->run);
    s->run = NULL;
    return rc;
}

/*
 * A run whose program executed another: 'executed', with its totals. In a
 * drainer the kernel's peak resident set is the new image's by then, so the
 * largest sample is the run's peak; in the program's own process, before
 * its exec, the kernel's is still its own.
 */
static int sqlite_executed(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    sqlite_state *s = pk_recorder_state(r);
    if (!s->run)
        return 0;
    uint64_t peak = pk_in_drainer() ? 0 : pk_process_peak_rss();
    int rc = pk_store_run_finish(s->run, totals, peak, "executed", err);
    pk_store_run_free(s->run);
    s->run = NULL;
    return rc;
}

static void sqlite_close(pk_recorder *r)
{
    sqlite_state *s = pk_recorder_state(r);
    /* A run that never finished keeps what it recorded, still 'running'. */
    if (s->run && !r->forked && !r->failed)
        pk_store_writer_commit(s->writer, NULL);
    if (!r->forked)
        pk_store_run_free(s->run);
    pk_store_writer_close(s->writer, r->forked); /* a forked child's run: memory only */
}

const pk_recorder_ops pk_recorder_sqlite = {
    .name = "sqlite",
    .usage = "sqlite:PATH",
    .needs_arg = true,
    .size = sizeof(sqlite_state),
    .open = sqlite_open,
    .start = sqlite_start,
    .write = sqlite_write,
    .flush = sqlite_flush,
    .finish = sqlite_finish,
    .close = sqlite_close,
    .observe = sqlite_observe,
    .record_many = sqlite_record_many,
    .executed = sqlite_executed,
};
