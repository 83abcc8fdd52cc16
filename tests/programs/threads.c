/* threads.c — N threads each make M calls of work() -> step() at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int calls_per_thread = 1000;

__attribute__((noinline)) static int step(int x)
{
    return x ^ 0x5a;
}

__attribute__((noinline)) static int work(int x)
{
    return step(x) + 1;
}

static void *body(void *arg)
{
    long sum = 0;
    for (int i = 0; i < calls_per_thread; i++)
        sum += work(i);
    return (void *)sum;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    calls_per_thread = argc > 2 ? atoi(argv[2]) : 1000;
    pthread_t ids[64];
    if (threads > 64)
        threads = 64;
    for (int i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, body, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    printf("%d threads x %d calls\n", threads, calls_per_thread);
    return 0;
}
