/*
 * custom_parts.c — plugging your own parts into the pipeline from C: a
 * recorder (counts calls per function), a filter (a callback) and a monitor
 * kind (samples a counter of its own), each registered by name.
 */
#include <pikoc.h>
#include <stdio.h>
#include <string.h>

/* --- a recorder: a call count per function ----------------------------------- */

struct counts {
    char names[16][64];
    unsigned calls[16];
    unsigned used;
};

static int counts_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)err;
    struct counts *c = pk_recorder_state(r);
    if (rec->type != PK_EVENT_CALL)
        return 0;
    for (unsigned i = 0; i < c->used; i++) {
        if (strcmp(c->names[i], rec->function) == 0) {
            c->calls[i]++;
            return 0;
        }
    }
    if (c->used < 16) {
        snprintf(c->names[c->used], sizeof c->names[0], "%s", rec->function);
        c->calls[c->used++] = 1;
    }
    return 0;
}

static int counts_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    (void)err;
    struct counts *c = pk_recorder_state(r);
    printf("%-12s %s\n", "function", "calls");
    for (unsigned i = 0; i < c->used; i++)
        printf("%-12s %u\n", c->names[i], c->calls[i]);
    printf("(%llu events in the run)\n", (unsigned long long)totals->events);
    return 0;
}

static const pk_recorder_ops counts_recorder = {
    .name = "counts",
    .usage = "counts",
    .size = sizeof(struct counts),
    .write = counts_write,
    .finish = counts_finish,
};

/* --- a monitor kind: a global tick counter sampled at every event --------------- */

static unsigned long ticks;

__attribute__((no_instrument_function)) static void ticks_sample(uint64_t values[PK_SAMPLE_VALUES])
{
    values[0] = ticks;
}

static void ticks_decode(const uint64_t values[PK_SAMPLE_VALUES], pk_record *rec)
{
    rec->allocated = values[0]; /* shown in the allocated column */
    rec->flags |= PK_RECORD_ALLOC;
}

static int ticks_open(pk_monitor *m, pk_run_info *run, pk_error *err)
{
    (void)m;
    (void)err;
    run->flags = PK_RECORD_ALLOC;
    run->alloc_source = "ticks (a custom counter)";
    return 0;
}

static const pk_monitor_ops ticks_monitor = {
    .name = "ticks",
    .summary = "function entry and exit with a custom counter",
    .open = ticks_open,
    .sample = ticks_sample,
    .decode = ticks_decode,
};

/* --- a filter: a callback --------------------------------------------------------- */

static bool skip_helpers(const pk_record *rec, void *user)
{
    return strncmp(rec->function, (const char *)user, strlen(user)) != 0;
}

static void helper_tick(void)
{
    ticks++;
}

static void work(int n)
{
    for (int i = 0; i < n; i++)
        helper_tick();
}

int main(void)
{
    pk_error err;
    if (pk_recorder_register(&counts_recorder, &err) != 0 ||
        pk_monitor_register(&ticks_monitor, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    pk_monitor *m = pk_monitor_new("ticks", &err);
    pk_logger *counted = m ? pk_monitor_record(m, "counts", &err) : NULL;
    pk_logger *printed = m ? pk_monitor_record(m, "stdout", &err) : NULL;
    if (!counted || !printed) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    pk_logger_add_filter(printed, pk_filter_callback(skip_helpers, "helper"));
    if (pk_monitor_enable(m, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    work(3);
    pk_monitor_free(m);
    return 0;
}
