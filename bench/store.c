/*
 * store.c — how fast the sqlite:PATH recorder takes records: pushes synthetic
 * records by hand through a logger (observe, encode, SQLite) on this thread,
 * as the drain thread would, and prints ns per record. No monitor, no hooks:
 * only the recorder's cost (plus a few ns building the records).
 *
 *   store [-n RECORDS] [-w calls|tree] [-f FILTER] PATH    PATH "null": no recorder;
 *                                                          "zmq:..." sends to a collector
 *
 * Workloads: "calls" has bench/calls.c's shape (run_slice -> 8000 x (step ->
 * leaf, step -> twig -> leaf)); "tree" walks a random call tree, ten
 * functions up to depth 8 (thousands of call paths, worse for the caches).
 */
#include <pikoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int null_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)r, (void)rec, (void)err;
    return 0;
}

static const pk_recorder_ops null_ops = {.name = "null", .write = null_write};

/* bench/calls.c's events, one iteration (8 records) after the other. */
static uint64_t push_calls(pk_logger *lg, uint64_t n)
{
    static const char *const names[] = {"run_slice", "step", "leaf", "twig"};
    static const struct {
        pk_event_type type;
        unsigned function, depth, caller, caller_line;
    } iteration[8] = {
        {PK_EVENT_CALL, 1, 1, 0, 70},   {PK_EVENT_CALL, 2, 2, 1, 64},
        {PK_EVENT_RETURN, 2, 2, 1, 64}, {PK_EVENT_CALL, 3, 2, 1, 65},
        {PK_EVENT_CALL, 2, 3, 3, 58},   {PK_EVENT_RETURN, 2, 3, 3, 58},
        {PK_EVENT_RETURN, 3, 2, 1, 65}, {PK_EVENT_RETURN, 1, 1, 0, 70},
    };
    pk_record rec = {.thread = 4242, .file = "calls.c", .caller_file = "calls.c"};
    uint64_t t = 0, opened[4] = {0}, calls = 0;
    for (uint64_t i = 0, step = 0; i < n; step++) {
        if (step % 8000 == 0) {
            rec.type = PK_EVENT_CALL;
            rec.depth = 0;
            rec.function = names[0];
            rec.line = 68;
            rec.caller = "main";
            rec.caller_line = 200;
            rec.index = i++;
            rec.time_ns = opened[0] = t += 10;
            pk_logger_push(lg, &rec);
            calls++;
        }
        for (unsigned k = 0; k < 8 && i < n; k++) {
            rec.type = iteration[k].type;
            rec.depth = iteration[k].depth;
            rec.function = names[iteration[k].function];
            rec.line = 50 + iteration[k].function;
            rec.caller = names[iteration[k].caller];
            rec.caller_line = iteration[k].caller_line;
            rec.index = i++;
            rec.time_ns = t += 7 + (k & 3);
            if (rec.type == PK_EVENT_CALL) {
                opened[rec.depth] = t;
                calls++;
            } else {
                rec.duration_ns = t - opened[rec.depth];
            }
            pk_logger_push(lg, &rec);
        }
    }
    return calls;
}

/* A random walk over a call tree, with memory and allocation counters moving. */
static uint64_t push_tree(pk_logger *lg, uint64_t n)
{
    static const char *const names[] = {"main",    "run",   "step", "leaf_a", "leaf_b",
                                        "compute", "parse", "emit", "fib",    "helper"};
    struct {
        unsigned function;
        uint64_t time, allocated;
    } stack[16];
    pk_record rec = {.thread = 4242,
                     .flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC,
                     .file = "tree.c",
                     .caller_file = "tree.c",
                     .rss = 4096 * 1000,
                     .vms = 4096 * 100000};
    uint64_t t = 0, calls = 0, seed = 88172645463325252ull;
    unsigned depth = 0;
    for (uint64_t i = 0; i < n; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        t += 20 + (seed >> 60);
        rec.allocated += (seed & 0xff) == 0 ? 64 : 0;
        rec.freed += (seed & 0x1ff) == 3 ? 64 : 0;
        rec.rss += (seed & 0xffff) == 7 ? 4096 : 0;
        rec.index = i;
        rec.time_ns = t;
        if (depth == 0 || (depth < 8 && (seed & 1))) {
            unsigned f = (unsigned)((depth * 3 + (seed >> 8) % 3) % 10);
            stack[depth].function = f;
            stack[depth].time = t;
            stack[depth].allocated = rec.allocated;
            rec.type = PK_EVENT_CALL;
            rec.depth = depth++;
            calls++;
        } else {
            rec.type = PK_EVENT_RETURN;
            rec.depth = --depth;
            rec.duration_ns = t - stack[depth].time;
            rec.alloc_delta = rec.allocated - stack[depth].allocated;
        }
        unsigned f = stack[rec.depth].function;
        rec.function = names[f];
        rec.line = 10 + f;
        rec.caller = rec.depth ? names[stack[rec.depth - 1].function] : "_start";
        rec.caller_line = 100 + f;
        pk_logger_push(lg, &rec);
    }
    return calls;
}

int main(int argc, char **argv)
{
    uint64_t n = 20000000;
    const char *workload = "calls", *filter = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:w:f:")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'w')
            workload = optarg;
        else if (opt == 'f')
            filter = optarg;
        else
            return 2;
    }
    if (optind + 1 != argc || (strcmp(workload, "calls") && strcmp(workload, "tree"))) {
        fprintf(stderr,
                "usage: store [-n RECORDS] [-w calls|tree] [-f FILTER] PATH|null|zmq:...\n");
        return 2;
    }
    const char *path = argv[optind];
    char spec[4096];
    pk_error err;
    bool null = strcmp(path, "null") == 0;
    bool zmq = strncmp(path, "zmq", 3) == 0; /* zmq:ENDPOINT, zmq+pub:ENDPOINT (bench/run-zmq.sh) */
    snprintf(spec, sizeof spec, zmq ? "%s" : "sqlite:%s", path);
    if (!null && !zmq)
        unlink(path);
    pk_recorder *r = null ? pk_recorder_new(&null_ops, NULL, &err) : pk_recorder_open(spec, &err);
    if (!r) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    pk_logger *lg = pk_logger_new(r);
    if (filter && pk_logger_add_filter_spec(lg, filter, &err) != 0) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    pk_run_info run = {.monitor = "function-memory",
                       .flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC,
                       .clock = "tsc",
                       .alloc_source = "jemalloc",
                       .command_line = "bench/store",
                       .host = "bench",
                       .pid = getpid()};
    pk_logger_start(lg, &run);
    uint64_t start = now_ns();
    uint64_t calls = strcmp(workload, "calls") == 0 ? push_calls(lg, n) : push_tree(lg, n);
    pk_run_totals totals = {.events = n, .calls = calls};
    int rc = pk_logger_finish(lg, &totals);
    uint64_t finished = now_ns();
    pk_logger_free(lg);
    uint64_t closed = now_ns();
    printf("workload=%s records=%llu ns_per_record=%.1f records_per_s=%.0f push_s=%.3f "
           "close_s=%.3f\n",
           workload, (unsigned long long)n, (double)(finished - start) / (double)n,
           (double)n * 1e9 / (double)(finished - start), (double)(finished - start) / 1e9,
           (double)(closed - finished) / 1e9);
    return rc == 0 ? 0 : 1;
}
