/*
 * marks.c — what a checkpoint profiler's mark costs on the calling thread,
 * against the hand-written timing line it replaces (a clock read and a
 * formatted line, the usual printf-debugging peer) and a bare clock read.
 * Each mode times SLICES slices of MARKS_PER_SLICE marks, five times, and
 * prints the median ns per mark and its ratio to the hand-written line:
 *
 *   marks [SLICES]
 *
 *   clock      clock_gettime(CLOCK_MONOTONIC) alone
 *   by hand    clock_gettime + snprintf of "  label: ms, tot:ms" into a buffer
 *   silent     pk_profiler_mark on a profiler that prints nothing, no monitor
 *   printing   a printing (delayed) profiler; each slice's block is written
 *              to /dev/null when it finishes, inside the timing
 *   recorded   a silent profiler while a monitor records the thread ("function"
 *              into a recorder that discards): the checkpoint record's cost on
 *              the thread; between slices the drain empties the ring untimed
 */
#include <pikoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MARKS_PER_SLICE 1000
#define REPEATS 5

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef uint64_t (*slice_fn)(void);

static FILE *devnull;
static volatile uint64_t sink;

static uint64_t slice_clock(void)
{
    uint64_t start = now_ns();
    for (int i = 0; i < MARKS_PER_SLICE; i++)
        sink += now_ns();
    return now_ns() - start;
}

static uint64_t slice_by_hand(void)
{
    static char lines[MARKS_PER_SLICE * 48];
    uint64_t start = now_ns(), first = start, last = start;
    size_t used = 0;
    for (int i = 0; i < MARKS_PER_SLICE; i++) {
        uint64_t t = now_ns();
        used += (size_t)snprintf(lines + used, sizeof lines - used, "  %s: %0.4f, tot:%0.4f\n",
                                 "step", (double)(t - last) / 1e6, (double)(t - first) / 1e6);
        last = t;
    }
    sink += used;
    return now_ns() - start;
}

static uint64_t slice_profiler(const pk_profiler_options *opts)
{
    uint64_t start = now_ns();
    pk_profiler p;
    pk_profiler_begin(&p, NULL, "slice", opts);
    for (int i = 0; i < MARKS_PER_SLICE; i++)
        pk_profiler_mark(&p, "step");
    pk_profiler_finish(&p);
    return now_ns() - start;
}

static uint64_t slice_silent(void)
{
    const pk_profiler_options opts = {.enable = PK_PROFILE_OFF};
    return slice_profiler(&opts);
}

static uint64_t slice_printing(void)
{
    const pk_profiler_options opts = {.enable = PK_PROFILE_ON, .stream = devnull};
    return slice_profiler(&opts);
}

static pk_monitor *monitor;

static uint64_t slice_recorded(void)
{
    pk_error err;
    if (pk_monitor_enable(monitor, &err) != 0) {
        fprintf(stderr, "marks: %s\n", err.message);
        exit(1);
    }
    uint64_t ns = slice_silent();
    pk_monitor_disable(monitor); /* waits for the drain: the next slice finds the ring empty */
    return ns;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_ns_per_mark(slice_fn slice, unsigned slices)
{
    double runs[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        uint64_t total = 0;
        for (unsigned s = 0; s < slices; s++)
            total += slice();
        runs[r] = (double)total / ((double)slices * MARKS_PER_SLICE);
    }
    qsort(runs, REPEATS, sizeof runs[0], by_value);
    return runs[REPEATS / 2];
}

static int discard(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)r, (void)rec, (void)err;
    return 0;
}

static const pk_recorder_ops discard_ops = {
    .name = "discard", .usage = "discard", .write = discard};

int main(int argc, char **argv)
{
    unsigned slices = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 200;
    pk_error err;
    devnull = fopen("/dev/null", "w");
    monitor = pk_monitor_new("function", &err);
    pk_recorder *r = monitor ? pk_recorder_new(&discard_ops, NULL, &err) : NULL;
    if (!devnull || !r || pk_monitor_add_logger(monitor, pk_logger_new(r), &err) != 0) {
        fprintf(stderr, "marks: %s\n", err.message);
        return 1;
    }
    static const struct {
        const char *name;
        slice_fn slice;
    } modes[] = {
        {"clock", slice_clock},       {"by hand", slice_by_hand},   {"silent", slice_silent},
        {"printing", slice_printing}, {"recorded", slice_recorded},
    };
    double ns[5];
    for (size_t i = 0; i < 5; i++)
        ns[i] = median_ns_per_mark(modes[i].slice, slices);
    printf("%u x %d marks, median of %d (ns per mark; ratio to by hand)\n", slices, MARKS_PER_SLICE,
           REPEATS);
    for (size_t i = 0; i < 5; i++)
        printf("  %-9s %8.1f ns  %5.2fx\n", modes[i].name, ns[i], ns[i] / ns[1]);
    pk_monitor_free(monitor);
    fclose(devnull);
    return 0;
}
