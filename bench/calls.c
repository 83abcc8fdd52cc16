/*
 * calls.c — the call-overhead benchmark's workload (driven by run-calls.sh).
 * Built with -finstrument-functions; only the workload functions below are
 * instrumented (everything else is no_instrument_function), so a run makes
 * exactly 4 * ITERATIONS + SLICES instrumented calls, each an entry and an
 * exit, where the iterations run in SLICES = ceil(ITERATIONS / 8000) slices.
 *
 *   calls [ITERATIONS]                 whatever the environment asks for:
 *                                      nothing, PIKOC_RECORD, or uftrace
 *   calls --null=MONITOR [ITERATIONS]  MONITOR ("function", "function-memory")
 *                                      through the public API into a recorder
 *                                      that counts records and writes nothing:
 *                                      the hooks and the drain's record
 *                                      building, without any formatting
 *   calls --hot=MONITOR [ITERATIONS]   the same, but after each slice (64,002
 *                                      events, less than a default ring)
 *                                      pk_monitor_disable waits for the drain:
 *                                      the monitored thread never finds its
 *                                      ring full, so the timed slices cost
 *                                      the hot path alone
 *                                      and between slices times 500 reads
 *                                      of /proc/self/statm made as
 *                                      function-memory makes them (pread_ns):
 *                                      its unit, measured beside it; and a
 *                                      read in place (place_ns): an
 *                                      uninstrumented copy of the workload
 *                                      that makes the read where each entry
 *                                      and exit hook is called, less the
 *                                      same copy calling an empty function
 *   calls --pread [COUNT]              ns per pread(2) of /proc/self/statm,
 *                                      the cost function-memory adds per event
 *
 * Output is one line of key=value pairs on stdout, for the script to parse.
 */
#include <pikoc.h>

#include "../monitors/function_memory.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOINSTR __attribute__((no_instrument_function))
/* Instrumented, never inlined or cloned: one entry and one exit per call. */
#define WORK __attribute__((noinline, noclone))

#define DEFAULT_ITERATIONS 2500000u /* 10,000,313 calls */
#define CALLS_PER_ITERATION 4u
/* 8000 iterations make 32,001 calls, 64,002 events: a default ring holds 65,536. */
#define SLICE_ITERATIONS 8000u
#define DEFAULT_PREADS 200000u
#define PREADS_PER_SLICE 500u
/* The placed copies' iterations between slices: 8,002 reads. */
#define PLACE_ITERATIONS 1000u

/* ---- the workload (instrumented) ------------------------------------------ */

static volatile uint64_t sink; /* keeps the results, so no call is dead code */

WORK static uint64_t leaf(uint64_t x)
{
    __asm__ volatile("" ::: "memory");
    return x * 2654435761u + 1;
}

WORK static uint64_t twig(uint64_t x)
{
    return leaf(x ^ 0x5555) + 3;
}

/* One iteration: step -> leaf, step -> twig -> leaf (4 calls, depth up to 3). */
WORK static uint64_t step(uint64_t x)
{
    return leaf(x) + twig(x);
}

WORK static void run_slice(uint64_t first, uint64_t count)
{
    uint64_t acc = 0;
    for (uint64_t i = first; i < first + count; i++)
        acc += step(i);
    sink += acc;
}

/* ---- the workload with a read in place of each hook (not instrumented) ----- */

/*
 * The unit function-memory's claim is also held to: what one read costs
 * where the sample makes it, between the program's calls and returns, not
 * back to back in a loop (where the kernel's path stays warm). Two copies
 * of the workload, uninstrumented, call a probe where the compiler puts
 * each entry and exit hook: one probe makes the read, the other nothing.
 * Their difference is the read in place, its call and return left out.
 */
static int place_fd = -1;
static volatile bool place_failed;
static volatile long place_result; /* what the failed read returned */

/* The sample's own read (monitors/function_memory.h), its size and system call. */
NOINSTR __attribute__((noinline)) static void probe_read(void)
{
    char buf[PK_STATM_READ];
    long ret = pk_read_at_start(place_fd, buf, sizeof buf);
    if (ret <= 0 && !place_failed) {
        place_result = ret;
        place_failed = true;
    }
}

NOINSTR __attribute__((noinline)) static void probe_none(void)
{
    __asm__ volatile("" ::: "memory");
}

#define PLACED(probe)                                                                              \
    NOINSTR WORK static uint64_t leaf_##probe(uint64_t x)                                          \
    {                                                                                              \
        probe();                                                                                   \
        __asm__ volatile("" ::: "memory");                                                         \
        uint64_t r = x * 2654435761u + 1;                                                          \
        probe();                                                                                   \
        return r;                                                                                  \
    }                                                                                              \
    NOINSTR WORK static uint64_t twig_##probe(uint64_t x)                                          \
    {                                                                                              \
        probe();                                                                                   \
        uint64_t r = leaf_##probe(x ^ 0x5555) + 3;                                                 \
        probe();                                                                                   \
        return r;                                                                                  \
    }                                                                                              \
    NOINSTR WORK static uint64_t step_##probe(uint64_t x)                                          \
    {                                                                                              \
        probe();                                                                                   \
        uint64_t r = leaf_##probe(x) + twig_##probe(x);                                            \
        probe();                                                                                   \
        return r;                                                                                  \
    }                                                                                              \
    NOINSTR WORK static void slice_##probe(uint64_t first, uint64_t count)                         \
    {                                                                                              \
        probe();                                                                                   \
        uint64_t acc = 0;                                                                          \
        for (uint64_t i = first; i < first + count; i++)                                           \
            acc += step_##probe(i);                                                                \
        sink += acc;                                                                               \
        probe();                                                                                   \
    }

PLACED(probe_read)
PLACED(probe_none)

/* ---- timing (not instrumented) -------------------------------------------- */

NOINSTR static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

NOINSTR static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

NOINSTR static uint64_t slices_of(uint64_t iterations)
{
    return (iterations + SLICE_ITERATIONS - 1) / SLICE_ITERATIONS;
}

NOINSTR static uint64_t calls_of(uint64_t iterations)
{
    return iterations * CALLS_PER_ITERATION + slices_of(iterations);
}

/*
 * The slices timed two ways: loop_ns (elapsed) and cpu_ns (this thread's
 * CPU time, which leaves out time it was descheduled but counts time it
 * spun waiting for a full ring). Only the slices are timed.
 */
typedef struct timing {
    uint64_t loop_ns;
    uint64_t cpu_ns;
    uint64_t end_ns;
    uint64_t pread_ns; /* paced runs: the reads between slices */
    uint64_t preads;
    uint64_t place_read_ns; /* paced runs: the placed copies between slices */
    uint64_t place_none_ns;
    uint64_t place_events; /* reads the placed copy made */
} timing;

/*
 * Reads of /proc/self/statm as function-memory's sample makes them: the
 * system call itself (libc's pread, in this process of two threads, would
 * add its cancellation switching). Between slices, so that the unit
 * function-memory's cost is given in is measured under the same conditions.
 */
NOINSTR static int time_preads(int fd, timing *t)
{
    char buf[48];
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < PREADS_PER_SLICE; i++) {
        if (syscall(SYS_pread64, fd, buf, sizeof buf, (off_t)0) <= 0) {
            perror("calls: pread /proc/self/statm");
            return -1;
        }
    }
    t->pread_ns += now_ns() - t0;
    t->preads += PREADS_PER_SLICE;
    return 0;
}

/* The placed copies, one after the other (which first alternates with the slices). */
NOINSTR static int time_place(timing *t, bool read_first)
{
    for (int i = 0; i < 2; i++) {
        bool reading = (i == 0) == read_first;
        uint64_t t0 = now_ns();
        if (reading)
            slice_probe_read(0, PLACE_ITERATIONS);
        else
            slice_probe_none(0, PLACE_ITERATIONS);
        uint64_t elapsed = now_ns() - t0;
        *(reading ? &t->place_read_ns : &t->place_none_ns) += elapsed;
    }
    t->place_events += 2 * (CALLS_PER_ITERATION * PLACE_ITERATIONS + 1);
    if (place_failed) {
        fprintf(stderr, "calls: pread /proc/self/statm failed (returned %ld)\n", place_result);
        return -1;
    }
    return 0;
}

/* With pace, the drain catches up between slices (pk_monitor_disable waits for it). */
NOINSTR static int run_workload(uint64_t iterations, pk_monitor *pace, timing *t)
{
    *t = (timing){0};
    int statm = pace ? open("/proc/self/statm", O_RDONLY | O_CLOEXEC) : -1;
    if (pace && statm < 0) {
        perror("calls: /proc/self/statm");
        return -1;
    }
    place_fd = statm;
    int rc = 0;
    for (uint64_t done = 0; done < iterations; done += SLICE_ITERATIONS) {
        uint64_t count = iterations - done;
        if (count > SLICE_ITERATIONS)
            count = SLICE_ITERATIONS;
        uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        uint64_t t0 = now_ns();
        run_slice(done, count);
        uint64_t t1 = now_ns();
        uint64_t cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        t->loop_ns += t1 - t0;
        t->cpu_ns += cpu1 - cpu0;
        t->end_ns = t1;
        if (pace) {
            pk_error err;
            pk_monitor_disable(pace);
            if (time_preads(statm, t) != 0 ||
                time_place(t, (done / SLICE_ITERATIONS) % 2 == 0) != 0) {
                rc = -1;
                break;
            }
            if (pk_monitor_enable(pace, &err) != 0) {
                fprintf(stderr, "calls: %s\n", err.message);
                rc = -1;
                break;
            }
        }
    }
    if (statm >= 0)
        close(statm);
    return rc;
}

NOINSTR static void print_timing(const char *mode, uint64_t iterations, timing t)
{
    printf("mode=%s calls=%" PRIu64 " slices=%" PRIu64 " loop_ns=%" PRIu64 " cpu_ns=%" PRIu64, mode,
           calls_of(iterations), slices_of(iterations), t.loop_ns, t.cpu_ns);
}

NOINSTR static void print_totals(pk_run_totals t)
{
    printf(" events=%" PRIu64 " recorded_calls=%" PRIu64 " unmatched=%" PRIu64
           " unfinished=%" PRIu64 " dropped=%" PRIu64,
           t.events, t.calls, t.unmatched, t.unfinished, t.dropped);
}

/* ---- the null recorder: counts records, writes nothing -------------------- */

typedef struct null_state {
    uint64_t records;
} null_state;

NOINSTR static int null_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    (void)err;
    ((null_state *)pk_recorder_state(r))->records++;
    return 0;
}

/* The drain's batches, whole: what a recorder that can take them pays. */
NOINSTR static size_t null_write_many(pk_recorder *r, const pk_record *recs, size_t n,
                                      pk_error *err)
{
    (void)recs;
    (void)err;
    ((null_state *)pk_recorder_state(r))->records += n;
    return n;
}

static const pk_recorder_ops null_recorder = {
    .name = "null",
    .usage = "null",
    .size = sizeof(null_state),
    .write = null_write,
    .write_many = null_write_many,
};

/* ---- modes ------------------------------------------------------------------ */

/* tail_ns: how long the drain took, after the last slice, to catch up and finish. */
NOINSTR static int run_plain(uint64_t iterations)
{
    timing t;
    if (run_workload(iterations, NULL, &t) != 0)
        return 1;
    print_timing("plain", iterations, t);
    pk_monitor *m = pk_auto_monitor();
    if (m) {
        pk_monitor_end(m); /* ends the PIKOC_RECORD run now, to time the tail */
        printf(" tail_ns=%" PRIu64 " monitor=%s", now_ns() - t.end_ns, pk_monitor_name(m));
        print_totals(pk_monitor_totals(m));
    }
    printf("\n");
    return 0;
}

NOINSTR static int run_null(const char *monitor, bool paced, uint64_t iterations)
{
    pk_error err;
    if (pk_auto_monitor()) {
        fprintf(stderr, "calls: --null and --hot run their own monitor: unset PIKOC_RECORD\n");
        return 2;
    }
    if (pk_recorder_register(&null_recorder, &err) != 0)
        goto fail;
    pk_monitor *m = pk_monitor_new(monitor, &err);
    if (!m)
        goto fail;
    pk_logger *lg = pk_monitor_record(m, "null", &err);
    if (!lg || pk_monitor_enable(m, &err) != 0) {
        pk_monitor_free(m);
        goto fail;
    }
    timing t;
    if (run_workload(iterations, paced ? m : NULL, &t) != 0) {
        pk_monitor_free(m);
        return 1;
    }
    pk_monitor_end(m);
    uint64_t tail = now_ns() - t.end_ns;
    null_state *s = pk_recorder_state(pk_logger_recorder(lg));
    print_timing(paced ? "hot" : "null", iterations, t);
    printf(" tail_ns=%" PRIu64 " monitor=%s records=%" PRIu64, tail, monitor, s->records);
    if (t.preads)
        printf(" preads=%" PRIu64 " pread_ns=%.1f", t.preads,
               (double)t.pread_ns / (double)t.preads);
    if (t.place_events)
        printf(" place_events=%" PRIu64 " place_ns=%.1f", t.place_events,
               ((double)t.place_read_ns - (double)t.place_none_ns) / (double)t.place_events);
    print_totals(pk_monitor_totals(m));
    printf("\n");
    pk_monitor_free(m);
    return 0;
fail:
    fprintf(stderr, "calls: %s\n", err.message);
    return 1;
}

/* The same read function-memory's sample() makes on every event. */
NOINSTR static int run_pread(uint64_t count)
{
    char buf[48];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("calls: /proc/self/statm");
        return 1;
    }
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < count; i++) {
        if (pread(fd, buf, sizeof buf, 0) <= 0) {
            perror("calls: pread /proc/self/statm");
            close(fd);
            return 1;
        }
    }
    uint64_t t1 = now_ns();
    close(fd);
    printf("mode=pread preads=%" PRIu64 " loop_ns=%" PRIu64 " pread_ns=%.1f\n", count, t1 - t0,
           (double)(t1 - t0) / (double)count);
    return 0;
}

NOINSTR static int usage(void)
{
    fprintf(stderr, "usage: calls [ITERATIONS]\n"
                    "       calls --null=MONITOR [ITERATIONS]\n"
                    "       calls --hot=MONITOR [ITERATIONS]\n"
                    "       calls --pread [COUNT]\n");
    return 2;
}

NOINSTR static int parse_count(const char *text, uint64_t *out)
{
    pk_error err;
    if (pk_parse_uint("count", text, out, &err) != 0 || *out == 0) {
        fprintf(stderr, "calls: '%s' is not a positive count\n", text);
        return -1;
    }
    return 0;
}

NOINSTR int main(int argc, char **argv)
{
    const char *mode = argc > 1 && strncmp(argv[1], "--", 2) == 0 ? argv[1] : NULL;
    int first = mode ? 2 : 1;
    if (argc > first + 1)
        return usage();
    uint64_t count = mode && strcmp(mode, "--pread") == 0 ? DEFAULT_PREADS : DEFAULT_ITERATIONS;
    if (argc == first + 1 && parse_count(argv[first], &count) != 0)
        return 2;
    int rc;
    if (!mode)
        rc = run_plain(count);
    else if (strcmp(mode, "--pread") == 0)
        rc = run_pread(count);
    else if (strncmp(mode, "--null=", 7) == 0 && mode[7])
        rc = run_null(mode + 7, false, count);
    else if (strncmp(mode, "--hot=", 6) == 0 && mode[6])
        rc = run_null(mode + 6, true, count);
    else
        return usage();
    fflush(stdout);
    return rc;
}
