/*
 * allocs.c — the allocation workload of bench/run-alloc.sh: THREADS threads
 * each make ITERATIONS malloc/free pairs of small blocks (16 to 256 bytes),
 * and every eighth block is grown once with realloc. Not instrumented: the
 * allocation calls are all there is. Prints the calls made and the time the
 * threads spent in their loops (wall, and the sum of their CPU times).
 *
 * usage: allocs [THREADS [ITERATIONS]]   (default 4 and 1000000)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long iterations = 1000000;
static pthread_barrier_t start;

static uint64_t now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *body(void *arg)
{
    uint64_t *cpu_ns = arg;
    unsigned seed = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&start);
    uint64_t begin = now(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < iterations; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 16 + ((seed >> 16) & 0xf0);
        char *volatile p = malloc(size);
        p[0] = (char)i;
        if ((i & 7) == 0)
            p = realloc(p, size * 2);
        free(p);
    }
    *cpu_ns = now(CLOCK_THREAD_CPUTIME_ID) - begin;
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    iterations = argc > 2 ? atol(argv[2]) : iterations;
    if (threads < 1 || threads > 256 || iterations < 1) {
        fprintf(stderr, "usage: allocs [THREADS [ITERATIONS]]\n");
        return 2;
    }
    pthread_t ids[256];
    uint64_t cpu[256] = {0};
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, body, &cpu[i]);
    pthread_barrier_wait(&start);
    uint64_t begin = now(CLOCK_MONOTONIC);
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    uint64_t wall = now(CLOCK_MONOTONIC) - begin, cpu_total = 0;
    for (int i = 0; i < threads; i++)
        cpu_total += cpu[i];
    long calls = (long)threads * (2 * iterations + (iterations + 7) / 8);
    printf("calls=%ld wall_ns=%llu cpu_ns=%llu\n", calls, (unsigned long long)wall,
           (unsigned long long)cpu_total);
    return 0;
}
