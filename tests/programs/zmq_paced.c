/*
 * zmq_paced.c — a sender that takes its time: pushes N synthetic records
 * (call/return pairs of four functions, RSS moving) through a logger into
 * SPEC, by hand as the drain thread would, sleeping PACE_US microseconds
 * after every 1000 records, so that a test can restart or kill things
 * while it runs. Indexes are 0 .. N-1; calls are N / 2.
 *
 *   zmq_paced SPEC N PACE_US
 */
#include <pikoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: zmq_paced SPEC N PACE_US\n");
        return 2;
    }
    static const char *const names[] = {"alpha", "beta", "gamma", "delta"};
    uint64_t n = strtoull(argv[2], NULL, 10);
    unsigned pace = (unsigned)atoi(argv[3]);
    pk_error err;
    pk_recorder *r = pk_recorder_open(argv[1], &err);
    if (!r) {
        fprintf(stderr, "zmq_paced: %s\n", err.message);
        return 1;
    }
    pk_logger *lg = pk_logger_new(r);
    pk_run_info run = {.monitor = "function-memory",
                       .flags = PK_RECORD_MEMORY,
                       .clock = "monotonic",
                       .alloc_source = "unavailable: synthetic records",
                       .command_line = "zmq_paced",
                       .host = "test",
                       .pid = (int)getpid()};
    pk_logger_start(lg, &run);
    pk_record rec = {.thread = 7,
                     .file = "paced.c",
                     .caller = "main",
                     .caller_file = "paced.c",
                     .flags = PK_RECORD_MEMORY,
                     .rss = 1 << 20,
                     .vms = 1 << 24};
    uint64_t t = 0;
    for (uint64_t i = 0; i < n; i++) {
        rec.index = i;
        rec.type = i % 2 ? PK_EVENT_RETURN : PK_EVENT_CALL;
        rec.function = names[(i / 2) % 4];
        rec.line = 10 + (unsigned)((i / 2) % 4);
        rec.time_ns = t += 100;
        rec.duration_ns = i % 2 ? 100 : 0;
        rec.rss += i % 1000 == 0 ? 4096 : 0;
        pk_logger_push(lg, &rec);
        if (pace && i % 1000 == 999) {
            pk_logger_flush(lg);
            usleep(pace);
        }
    }
    pk_run_totals totals = {.events = n, .calls = (n + 1) / 2, .end_ns = t};
    int rc = pk_logger_finish(lg, &totals);
    const char *error = pk_logger_error(lg);
    if (error)
        fprintf(stderr, "zmq_paced: %s\n", error);
    pk_logger_free(lg);
    return rc == 0 ? 0 : 1;
}
