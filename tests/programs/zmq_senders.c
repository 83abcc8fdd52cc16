/*
 * zmq_senders.c — several sender processes from one program, through the C
 * API: the parent records THREADS threads of work into SPEC, forks CHILDREN
 * children (each opens its own monitor, recorder, context and socket and
 * records the same work), then records the work again. Every process makes
 * an exact number of events (tests/zmq.sh checks them):
 *   child: 2 + 2 * THREADS + 4 * THREADS * CALLS
 *   parent: twice that.
 *
 *   zmq_senders SPEC CHILDREN THREADS CALLS
 */
#include <pikoc.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINSTR __attribute__((no_instrument_function))

static int calls = 1000;

__attribute__((noinline)) static int step(int x)
{
    return x ^ 0x5a;
}

__attribute__((noinline)) static int work(int x)
{
    return step(x) + 1;
}

__attribute__((noinline)) static void *body(void *arg)
{
    long sum = 0;
    for (int i = 0; i < calls; i++)
        sum += work(i);
    return (void *)(sum + (long)arg);
}

__attribute__((noinline)) static void run_threads(int threads)
{
    pthread_t ids[16];
    for (int i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, body, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
}

static pk_logger *logger; /* the running monitor's */

NOINSTR static pk_monitor *start(const char *spec)
{
    pk_error err;
    pk_monitor *m = pk_monitor_new("function", &err);
    if (!m || !(logger = pk_monitor_record(m, spec, &err)) || pk_monitor_enable(m, &err) != 0) {
        fprintf(stderr, "zmq_senders: %s\n", err.message);
        exit(1);
    }
    return m;
}

/* Ends the run; 1 when a recorder failed (e.g. nobody acknowledged). */
NOINSTR static int end(pk_monitor *m)
{
    pk_monitor_disable(m);
    pk_monitor_end(m);
    const char *error = pk_logger_error(logger);
    if (error)
        fprintf(stderr, "zmq_senders: %s\n", error);
    pk_monitor_free(m);
    return error ? 1 : 0;
}

NOINSTR int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: zmq_senders SPEC CHILDREN THREADS CALLS\n");
        return 2;
    }
    const char *spec = argv[1];
    int children = atoi(argv[2]), threads = atoi(argv[3]);
    calls = atoi(argv[4]);
    if (threads > 16)
        threads = 16;
    pk_monitor *m = start(spec);
    run_threads(threads);
    for (int i = 0; i < children; i++) {
        if (fork() == 0) {
            /* the parent's monitor ended here; this process is a sender of its own */
            pk_monitor *mine = start(spec);
            run_threads(threads);
            _exit(end(mine));
        }
    }
    int failed = 0;
    for (int i = 0; i < children; i++) {
        int status;
        wait(&status);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    run_threads(threads);
    failed += end(m);
    printf("%d processes, %d failed\n", children + 1, failed);
    return failed ? 1 : 0;
}
