/*
 * crashes.c — makes exactly N allocations of 100 bytes, never freed, then
 * ends the way it is told, so that tests/crash.sh can check that every one
 * of them is recorded whatever ends the program:
 *
 *   crashes N segv | abort | exit CODE | _exit CODE
 *   crashes N close           closes every descriptor but 0, 1 and 2 (pikoc's
 *                             pipes too), makes N more allocations, exits 0
 *   crashes N module PATH     loads the library PATH (tests/programs/module.c),
 *                             makes N allocations in it, exits 0
 *   crashes N flood FILE      writes its pid to FILE, waits for SIGUSR1, then
 *                             makes a million more allocations and exits 0
 *   crashes N later FILE DONE writes its pid to FILE, waits for SIGUSR1, makes
 *                             N more allocations, writes its pid to DONE, then
 *                             waits to be killed
 *   crashes N threads T       T threads (alive at once) make one allocation
 *                             each, then the program exits 0
 *   crashes N fork            forks a child that makes N allocations and
 *                             calls _exit; waits for it, exits 0
 *   crashes N daemon          forks a child that makes N allocations, points
 *                             its standard streams at /dev/null and lives 30
 *                             seconds; prints the child's pid, exits 0
 *   crashes N block FILE      writes its pid to FILE, then waits to be killed
 *   crashes N exec FILE       executes itself as `crashes 0 block FILE`
 *   crashes N churn T FILE    T threads named churn allocate and free without
 *                             end; FILE gets the pid once each made 1000 calls
 *
 * Only write(2) and open(2) after the allocations: stdio would allocate.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic int warmed_up;

static void *churn(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "churn");
    for (unsigned long i = 0;; i++) {
        void *p = malloc(64 + i % 64);
        free(p);
        if (i == 1000)
            atomic_fetch_add(&warmed_up, 1);
    }
    return NULL;
}

/* The pid in FILE says the program is where the test waits for it. */
static void say_ready(const char *path)
{
    char text[32];
    int length = snprintf(text, sizeof text, "%d\n", (int)getpid());
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.tmp", path);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, (size_t)length) != length || close(fd) != 0 ||
        rename(temporary, path) != 0)
        _exit(3);
}

static volatile sig_atomic_t woken;

static void wake(int sig)
{
    (void)sig;
    woken = 1;
}

static void wait_forever(void)
{
    for (;;)
        pause();
}

/* Writes the pid to FILE, then returns at SIGUSR1 (sent once FILE is there). */
static void wait_for_usr1(const char *path)
{
    sigset_t usr1, unblocked;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &unblocked);
    signal(SIGUSR1, wake);
    say_ready(path);
    while (!woken)
        sigsuspend(&unblocked);
}

static pthread_barrier_t all_allocated;

static void *allocate_once(void *unused)
{
    (void)unused;
    void *volatile block = malloc(100);
    (void)block;
    pthread_barrier_wait(&all_allocated);
    wait_forever();
    return NULL;
}

/* T threads alive at once, on small stacks (tests/crash.sh limits the address space). */
static int allocate_in_threads(int threads)
{
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 1 << 16);
    pthread_barrier_init(&all_allocated, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, &small, allocate_once, NULL) != 0)
            return 3;
    }
    pthread_barrier_wait(&all_allocated);
    exit(0);
}

/* A daemon: its output goes nowhere, and it outlives its parent. */
static int leave_daemon(long n)
{
    pid_t child = fork();
    if (child == 0) {
        for (long i = 0; i < n; i++)
            free(malloc(100));
        int null = open("/dev/null", O_RDWR);
        for (int fd = 0; fd <= 2; fd++)
            dup2(null, fd);
        alarm(30);
        wait_forever();
    }
    char text[32];
    int length = snprintf(text, sizeof text, "%d\n", (int)child);
    return child > 0 && write(1, text, (size_t)length) == length ? 0 : 3;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = atol(argv[1]);
    const char *how = argv[2];
    void *volatile keep;
    for (long i = 0; i < n; i++)
        keep = malloc(100);
    (void)keep;
    if (strcmp(how, "segv") == 0)
        *(volatile int *)(uintptr_t)8 = 1;
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "exit") == 0 && argc > 3)
        exit(atoi(argv[3]));
    if (strcmp(how, "_exit") == 0 && argc > 3)
        _exit(atoi(argv[3]));
    if (strcmp(how, "module") == 0 && argc > 3) {
        void *module = dlopen(argv[3], RTLD_NOW);
        void *(*allocate)(void) = module ? (void *(*)(void))dlsym(module, "module_allocate") : NULL;
        if (!allocate)
            return 3;
        for (long i = 0; i < n; i++)
            keep = allocate();
        exit(0);
    }
    if (strcmp(how, "unload") == 0) { /* each library named after: load, allocate, close */
        for (int m = 3; m < argc; m++) {
            void *module = dlopen(argv[m], RTLD_NOW);
            void *(*allocate)(void) =
                module ? (void *(*)(void))dlsym(module, "module_allocate") : NULL;
            if (!allocate)
                return 3;
            printf("%p\n", (void *)allocate);
            for (long i = 0; i < n; i++)
                keep = allocate();
            dlclose(module);
        }
        exit(0);
    }
    if (strcmp(how, "close") == 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        for (long i = 0; i < n; i++)
            keep = malloc(100);
        exit(0);
    }
    if (strcmp(how, "block") == 0 && argc > 3) {
        say_ready(argv[3]);
        wait_forever();
    }
    if (strcmp(how, "exec") == 0 && argc > 3) {
        char *again[] = {argv[0], "0", "block", argv[3], NULL};
        execv("/proc/self/exe", again);
        return 3;
    }
    if (strcmp(how, "flood") == 0 && argc > 3) {
        wait_for_usr1(argv[3]);
        for (long i = 0; i < 1000000; i++)
            free(malloc(32));
        exit(0);
    }
    if (strcmp(how, "later") == 0 && argc > 4) {
        wait_for_usr1(argv[3]);
        for (long i = 0; i < n; i++)
            keep = malloc(100);
        say_ready(argv[4]);
        wait_forever();
    }
    if (strcmp(how, "fork") == 0) {
        pid_t child = fork();
        if (child == 0) {
            for (long i = 0; i < n; i++)
                keep = malloc(100);
            _exit(0);
        }
        return child > 0 && waitpid(child, NULL, 0) == child ? 0 : 3;
    }
    if (strcmp(how, "daemon") == 0)
        return leave_daemon(n);
    if (strcmp(how, "threads") == 0 && argc > 3)
        return allocate_in_threads(atoi(argv[3]));
    if (strcmp(how, "churn") == 0 && argc > 4) {
        int threads = atoi(argv[3]);
        for (int i = 0; i < threads; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, churn, NULL) != 0)
                return 3;
        }
        while (atomic_load(&warmed_up) < threads)
            sched_yield();
        say_ready(argv[4]);
        wait_forever();
    }
    return 2;
}
