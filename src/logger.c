/*
 * logger.c — a logger is a chain of filters in front of one recorder
 * (Pikos' Logger). Each filter hands what it passes to the next stage
 * through a pk_sink; the last stage is the recorder. A recorder that fails
 * is reported once and skipped from then on. Runs on the drain thread.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- filters --------------------------------------------------------------- */

pk_filter *pk_filter_new(const pk_filter_ops *ops, const char *arg, pk_error *err)
{
    if (!ops || (!ops->accept && !ops->push)) {
        pk_fail(err, "filter kind without accept or push");
        return NULL;
    }
    if (ops->needs_arg && !arg) {
        pk_fail(err, "filter spec '%s': missing argument (expected %s)", ops->name,
                ops->usage ? ops->usage : ops->name);
        return NULL;
    }
    pk_filter *f = pk_xcalloc(1, sizeof *f);
    f->ops = ops;
    f->state = ops->size ? pk_xcalloc(1, ops->size) : NULL;
    if (ops->open && ops->open(f, arg, err) != 0) {
        free(f->state);
        free(f);
        return NULL;
    }
    return f;
}

pk_filter *pk_filter_open(const char *spec_text, pk_error *err)
{
    pk_spec spec;
    if (pk_spec_split("filter spec", spec_text, &spec, err) != 0)
        return NULL;
    const pk_filter_ops *ops = pk_filter_find(spec.kind);
    if (!ops) {
        char known[256];
        pk_filter_known(known, sizeof known);
        pk_fail(err, "filter spec '%.*s%s': unknown kind '%s' (known: %s)", PK_QUOTE(spec_text),
                spec.kind, known);
        return NULL;
    }
    if (spec.option_count) {
        pk_fail(err, "filter spec '%.*s%s': unknown option '%s' (filters take none)",
                PK_QUOTE(spec_text), spec.options[0]);
        return NULL;
    }
    if (ops->needs_arg && !spec.arg) {
        pk_fail(err, "filter spec '%.*s%s': missing argument (expected %s)", PK_QUOTE(spec_text),
                ops->usage ? ops->usage : ops->name);
        return NULL;
    }
    if (!ops->needs_arg && spec.arg) {
        pk_fail(err, "filter spec '%.*s%s': '%s' takes no argument (expected %s)",
                PK_QUOTE(spec_text), spec.kind, ops->usage ? ops->usage : ops->name);
        return NULL;
    }
    pk_error inner;
    pk_filter *f = pk_filter_new(ops, spec.arg, &inner);
    if (!f) {
        pk_fail(err, "filter spec '%.*s%s': %s", PK_QUOTE(spec_text), inner.message);
        return NULL;
    }
    return f;
}

void *pk_filter_state(pk_filter *f)
{
    return f->state;
}

void pk_filter_free(pk_filter *f)
{
    if (!f)
        return;
    if (f->ops->close)
        f->ops->close(f);
    free(f->state);
    free(f);
}

/* ---- the chain --------------------------------------------------------------- */

pk_logger *pk_logger_new(pk_recorder *r)
{
    pk_logger *lg = pk_xcalloc(1, sizeof *lg);
    lg->recorder = r;
    return lg;
}

void pk_logger_add_filter(pk_logger *lg, pk_filter *f)
{
    pk_grow(&lg->filters, &lg->capacity, lg->count, sizeof *lg->filters);
    lg->filters[lg->count++] = f;
    free(lg->sinks);
    lg->sinks = NULL;
}

int pk_logger_add_filter_spec(pk_logger *lg, const char *spec, pk_error *err)
{
    pk_filter *f = pk_filter_open(spec, err);
    if (!f)
        return -1;
    pk_logger_add_filter(lg, f);
    return 0;
}

pk_recorder *pk_logger_recorder(pk_logger *lg)
{
    return lg->recorder;
}

static void build_sinks(pk_logger *lg)
{
    if (lg->sinks)
        return;
    lg->sinks = pk_xcalloc(lg->count + 1, sizeof *lg->sinks);
    for (size_t i = 0; i <= lg->count; i++) {
        lg->sinks[i].logger = lg;
        lg->sinks[i].position = i;
    }
}

static void recorder_failed(pk_recorder *r, const char *doing, const pk_error *e)
{
    r->failed = true;
    snprintf(r->error, sizeof r->error, "recorder '%s' cannot %s: %s; its records are dropped",
             r->spec, doing, e->message);
    pk_warn("%s", r->error);
}

int pk_logger_start(pk_logger *lg, const pk_run_info *run)
{
    pk_recorder *r = lg->recorder;
    build_sinks(lg);
    if (r->failed)
        return -1;
    pk_error e = {{0}};
    if (r->ops->start && r->ops->start(r, run, &e) != 0) {
        recorder_failed(r, "start", &e);
        return -1;
    }
    return 0;
}

static inline __attribute__((always_inline)) void recorder_write(pk_logger *lg,
                                                                 const pk_record *rec)
{
    pk_recorder *r = lg->recorder;
    if (r->failed)
        return;
    /* Per record: clearing all 512 bytes would cost more than most writes. */
    pk_error e;
    e.message[0] = '\0';
    if (r->ops->write(r, rec, &e) != 0) {
        recorder_failed(r, "write", &e);
        return;
    }
    lg->written++;
    if (r->auto_flush && r->ops->flush && r->ops->flush(r, &e) != 0)
        recorder_failed(r, "write", &e);
}

void pk_sink_push(pk_sink *next, const pk_record *rec)
{
    pk_logger *lg = next->logger;
    size_t pos = next->position;
    if (pos == lg->count) {
        recorder_write(lg, rec);
        return;
    }
    pk_filter *f = lg->filters[pos];
    if (f->ops->push)
        f->ops->push(f, rec, &lg->sinks[pos + 1]);
    else if (f->ops->accept(f, rec))
        pk_sink_push(&lg->sinks[pos + 1], rec);
}

void pk_logger_push(pk_logger *lg, const pk_record *rec)
{
    pk_logger_push_many(lg, rec, 1);
}

/*
 * No filter, no flush after each record: the recorder's record_many (with
 * an observer) or write_many, or its write in a loop that checks nothing
 * else per record (how the drain's batches usually arrive). The first
 * failure drops the rest, as recorder_write would.
 */
static void write_batch(pk_logger *lg, const pk_record *recs, size_t n)
{
    pk_recorder *r = lg->recorder;
    int (*write)(pk_recorder *, const pk_record *, pk_error *) = r->ops->write;
    pk_error e;
    e.message[0] = '\0';
    size_t i = 0;
    if (r->ops->observe)
        i = r->ops->record_many(r, recs, n, &e);
    else if (r->ops->write_many)
        i = r->ops->write_many(r, recs, n, &e);
    else
        while (i < n && write(r, &recs[i], &e) == 0)
            i++;
    lg->written += i;
    if (i < n)
        recorder_failed(r, "write", &e);
}

/*
 * Each record is observed and then filtered and written before the next
 * one is observed: a recorder's write may reuse what its observe of the
 * same record just looked up.
 */
void pk_logger_push_many(pk_logger *lg, const pk_record *recs, size_t n)
{
    pk_recorder *r = lg->recorder;
    build_sinks(lg);
    int (*observe)(pk_recorder *, const pk_record *, pk_error *) = r->ops->observe;
    if ((!observe || r->ops->record_many) && lg->count == 0 && !r->auto_flush) {
        if (!r->failed)
            write_batch(lg, recs, n);
        return;
    }
    pk_error e;
    e.message[0] = '\0'; /* per record, clearing all 512 bytes would cost more than a write */
    for (size_t i = 0; i < n; i++) {
        if (observe && !r->failed && observe(r, &recs[i], &e) != 0)
            recorder_failed(r, "write", &e);
        if (lg->count == 0)
            recorder_write(lg, &recs[i]); /* no filter: straight to the recorder */
        else
            pk_sink_push(&lg->sinks[0], &recs[i]);
    }
}

int pk_logger_flush(pk_logger *lg)
{
    pk_recorder *r = lg->recorder;
    if (r->failed)
        return -1;
    pk_error e = {{0}};
    if (r->ops->flush && r->ops->flush(r, &e) != 0) {
        recorder_failed(r, "write", &e);
        return -1;
    }
    return 0;
}

/* The run's end: finish, or executed when the program became another image. */
static int end_run(pk_logger *lg, const pk_run_totals *totals, bool executed)
{
    build_sinks(lg);
    /* Let holding filters release what they keep, front to back. */
    for (size_t i = 0; i < lg->count; i++) {
        pk_filter *f = lg->filters[i];
        if (f->ops->finish)
            f->ops->finish(f, &lg->sinks[i + 1]);
    }
    pk_recorder *r = lg->recorder;
    if (r->failed)
        return -1;
    int (*end)(pk_recorder *, const pk_run_totals *, pk_error *) =
        executed ? r->ops->executed : r->ops->finish;
    pk_error e = {{0}};
    if (end && end(r, totals, &e) != 0) {
        recorder_failed(r, executed ? "end its run" : "finish", &e);
        return -1;
    }
    return 0;
}

int pk_logger_finish(pk_logger *lg, const pk_run_totals *totals)
{
    return end_run(lg, totals, false);
}

int pk_logger_executed(pk_logger *lg, const pk_run_totals *totals)
{
    return end_run(lg, totals, true);
}

const char *pk_logger_error(const pk_logger *lg)
{
    return lg->recorder->failed ? lg->recorder->error : NULL;
}

void pk_logger_free(pk_logger *lg)
{
    if (!lg)
        return;
    for (size_t i = 0; i < lg->count; i++)
        pk_filter_free(lg->filters[i]);
    free(lg->filters);
    free(lg->sinks);
    pk_recorder_free(lg->recorder);
    free(lg);
}
