/*
 * allocs.c — every C allocation function with known sizes, for the alloc
 * monitor's tests. Modes:
 *   each            each function once (the counts are in tests/alloc.sh)
 *   loop N          N rounds of malloc(32)/realloc(64)/calloc(2, 16)/free
 *   threads T N     T threads, each N malloc(16)/free pairs, and N blocks
 *                   allocated on one thread and freed by another
 *   sequence T      T threads one after another, each named allocs-sI, making
 *                   10 malloc(16)/free pairs, joined, then 50 ms for the drain
 *                   to hand its ring back, which the next thread then takes
 *   regrow T N      T threads, each N rounds of malloc(48), realloc to 3000
 *                   bytes (it moves) and free, all at once
 *   leak N          N blocks of 24 bytes never freed
 *   quit N          the same, then _exit(7)
 *   hold MIB MS     MIB MiB allocated and written, held MS milliseconds, freed
 *   steps N MS      N blocks of 100 KiB allocated one every MS milliseconds,
 *                   held 5 MS, then freed one every MS milliseconds
 *   drip N MS       N rounds, one every MS milliseconds: a block of 48 bytes
 *                   kept (they leak), one of 16 freed the round after
 *   fork            a child allocates 5 blocks of 100 bytes, frees 3 and exits;
 *                   the parent then allocates and frees 2 blocks of 200
 *   spawn PROGRAM   fork a child that allocates and exits, posix_spawn PROGRAM,
 *                   then allocate 64 bytes 10 times and free them
 *   daemon          fork a child that, before any allocation, forks a grandchild
 *                   which allocates 3 blocks of 300 bytes, frees 2 and exits
 *   closed          fork a child that closes its standard input and output,
 *                   then allocates 4 blocks of 40 bytes, frees them and exits
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

__attribute__((noinline)) static int each(void)
{
    void *p = malloc(100);
    free(p);
    void *big = malloc(5000);
    p = calloc(4, 25);
    free(big);
    free(p);
    p = realloc(NULL, 50);
    p = realloc(p, 300);
    p = realloc(p, 0);
    if (p)
        return 10;
    p = reallocarray(NULL, 10, 20);
    free(p);
    if (posix_memalign(&p, 64, 1000) != 0 || (uintptr_t)p % 64)
        return 11;
    free(p);
    p = aligned_alloc(128, 256);
    free(p);
    p = memalign(32, 64);
    free(p);
    p = valloc(10);
    free(p);
    p = pvalloc(10);
    free(p);
    errno = 1234;
    free(NULL);
    if (errno != 1234)
        return 12;
    void *keep = malloc(40);
    if (realloc(keep, SIZE_MAX / 2) != NULL) /* fails: keep stays allocated */
        return 13;
    free(keep);
    static void *leaked[3];
    for (int i = 0; i < 3; i++)
        leaked[i] = malloc(777);
    leaked[0] = calloc(1, 33);
    return 0;
}

__attribute__((noinline)) static int loop(long n)
{
    for (long i = 0; i < n; i++) {
        char *p = malloc(32);
        p = realloc(p, 64);
        char *q = calloc(2, 16);
        free(q);
        free(p);
    }
    return 0;
}

static long rounds;
static void *_Atomic handed[64];

__attribute__((noinline)) static void *worker(void *arg)
{
    long id = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "allocs-w%ld", id);
    pthread_setname_np(pthread_self(), name);
    for (long i = 0; i < rounds; i++) {
        void *p = malloc(16);
        free(p);
    }
    /* Blocks allocated here and freed by the next thread. */
    for (long i = 0; i < rounds; i++) {
        void *p = malloc(48);
        while (__atomic_load_n(&handed[id], __ATOMIC_ACQUIRE) != NULL)
            sched_yield();
        __atomic_store_n(&handed[id], p, __ATOMIC_RELEASE);
    }
    return NULL;
}

__attribute__((noinline)) static int threads(int t, long n)
{
    pthread_t ids[64];
    rounds = n;
    for (long i = 0; i < t; i++)
        if (pthread_create(&ids[i], NULL, worker, (void *)i) != 0)
            return 20;
    /* This thread frees what the workers hand over: n blocks each. */
    for (long freed = 0; freed < n * t;) {
        for (int i = 0; i < t; i++) {
            void *p = __atomic_exchange_n(&handed[i], NULL, __ATOMIC_ACQ_REL);
            if (p) {
                free(p);
                freed++;
            }
        }
    }
    for (int i = 0; i < t; i++)
        pthread_join(ids[i], NULL);
    return 0;
}

__attribute__((noinline)) static void *named_worker(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "allocs-s%ld", (long)arg);
    pthread_setname_np(pthread_self(), name);
    for (int i = 0; i < 10; i++)
        free(malloc(16));
    return NULL;
}

static void pause_ms(long ms);

__attribute__((noinline)) static int sequence(int t)
{
    for (long i = 0; i < t; i++) {
        pthread_t id;
        if (pthread_create(&id, NULL, named_worker, (void *)i) != 0)
            return 90;
        pthread_join(id, NULL);
        pause_ms(50);
    }
    return 0;
}

static pthread_barrier_t regrow_start;

/* A block the realloc gives back can be handed to another thread at once. */
__attribute__((noinline)) static void *regrower(void *arg)
{
    pthread_barrier_wait(&regrow_start);
    for (long i = 0; i < rounds; i++) {
        char *p = malloc(48);
        p[0] = (char)i;
        p = realloc(p, 3000);
        if (!p)
            return arg;
        free(p);
    }
    return NULL;
}

__attribute__((noinline)) static int regrow(int t, long n)
{
    pthread_t ids[64];
    rounds = n;
    pthread_barrier_init(&regrow_start, NULL, (unsigned)t);
    for (long i = 0; i < t; i++)
        if (pthread_create(&ids[i], NULL, regrower, NULL) != 0)
            return 80;
    int failed = 0;
    for (int i = 0; i < t; i++) {
        void *rc;
        pthread_join(ids[i], &rc);
        failed |= rc != NULL;
    }
    return failed ? 81 : 0;
}

__attribute__((noinline)) static int leak(long n)
{
    for (long i = 0; i < n; i++)
        if (!malloc(24))
            return 30;
    return 0;
}

static void pause_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

__attribute__((noinline)) static int hold(long mib, long ms)
{
    char *p = malloc((size_t)mib << 20);
    if (!p)
        return 40;
    memset(p, 1, (size_t)mib << 20);
    pause_ms(ms);
    free(p);
    return 0;
}

__attribute__((noinline)) static int steps(long n, long ms)
{
    char *blocks[64];
    if (n < 1 || n > 64)
        return 2;
    for (long i = 0; i < n; i++) {
        if (!(blocks[i] = malloc(100 << 10)))
            return 70;
        pause_ms(ms);
    }
    pause_ms(4 * ms);
    for (long i = n - 1; i >= 0; i--) {
        free(blocks[i]);
        pause_ms(ms);
    }
    return 0;
}

__attribute__((noinline)) static int drip(long n, long ms)
{
    void *previous = NULL;
    for (long i = 0; i < n; i++) {
        if (!malloc(48))
            return 70;
        free(previous);
        previous = malloc(16);
        pause_ms(ms);
    }
    free(previous);
    return 0;
}

__attribute__((noinline)) static void in_child(void)
{
    void *blocks[5];
    for (int i = 0; i < 5; i++)
        blocks[i] = malloc(100);
    for (int i = 0; i < 3; i++)
        free(blocks[i]);
    exit(0); /* exit, not _exit: the child's run ends at exit */
}

__attribute__((noinline)) static int forks(void)
{
    pid_t child = fork();
    if (child == 0)
        in_child();
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child || status != 0)
        return 60;
    void *a = malloc(200), *b = malloc(200);
    free(a);
    free(b);
    return 0;
}

/* The child's status, or -1 when it could not be had. */
static int child_status(pid_t child)
{
    int status;
    return child < 0 || waitpid(child, &status, 0) != child ? -1 : status;
}

__attribute__((noinline)) static void in_grandchild(void)
{
    void *blocks[3];
    for (int i = 0; i < 3; i++)
        blocks[i] = malloc(300);
    free(blocks[0]);
    free(blocks[1]);
    exit(0);
}

__attribute__((noinline)) static int daemon_forks(void)
{
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = fork(); /* nothing allocated in this process yet */
        if (grandchild == 0)
            in_grandchild();
        exit(child_status(grandchild) == 0 ? 0 : 1);
    }
    return child_status(child) == 0 ? 0 : 70;
}

__attribute__((noinline)) static void in_closed_child(void)
{
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    void *blocks[4];
    for (int i = 0; i < 4; i++)
        blocks[i] = malloc(40);
    for (int i = 0; i < 4; i++)
        free(blocks[i]);
    exit(0);
}

__attribute__((noinline)) static int closed_child(void)
{
    pid_t child = fork();
    if (child == 0)
        in_closed_child();
    return child_status(child) == 0 ? 0 : 80;
}

__attribute__((noinline)) static int spawn(const char *program)
{
    pid_t child = fork();
    if (child == 0) {
        free(malloc(100));
        _exit(0);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child || status != 0)
        return 50;
    char *argv[] = {(char *)program, NULL};
    pid_t spawned;
    if (posix_spawn(&spawned, program, NULL, NULL, argv, environ) != 0 ||
        waitpid(spawned, &status, 0) != spawned || status != 0)
        return 51;
    void *blocks[10];
    for (int i = 0; i < 10; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < 10; i++)
        free(blocks[i]);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "each";
    long a = argc > 2 ? atol(argv[2]) : 1000, b = argc > 3 ? atol(argv[3]) : 1000;
    if (strcmp(mode, "each") == 0)
        return each();
    if (strcmp(mode, "loop") == 0)
        return loop(a);
    if (strcmp(mode, "threads") == 0)
        return a < 1 || a > 64 ? 2 : threads((int)a, b);
    if (strcmp(mode, "sequence") == 0)
        return a < 1 || a > 64 ? 2 : sequence((int)a);
    if (strcmp(mode, "regrow") == 0)
        return a < 1 || a > 64 ? 2 : regrow((int)a, b);
    if (strcmp(mode, "leak") == 0)
        return leak(a);
    if (strcmp(mode, "quit") == 0 && leak(a) == 0)
        _exit(7);
    if (strcmp(mode, "hold") == 0)
        return hold(a, b);
    if (strcmp(mode, "steps") == 0)
        return steps(a, b);
    if (strcmp(mode, "drip") == 0)
        return drip(a, b);
    if (strcmp(mode, "fork") == 0)
        return forks();
    if (strcmp(mode, "spawn") == 0 && argc > 2)
        return spawn(argv[2]);
    if (strcmp(mode, "daemon") == 0)
        return daemon_forks();
    if (strcmp(mode, "closed") == 0)
        return closed_child();
    fprintf(stderr, "allocs: unknown mode '%s'\n", mode);
    return 2;
}
