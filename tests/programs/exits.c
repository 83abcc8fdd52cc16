/*
 * exits.c — ends the way it is told, after a few calls, so that pikoc run's
 * exit status and the run's recorded end can be checked: "status N" exits
 * with N, "abort" crashes (SIGABRT), "kill" and "term" signal itself, and
 * "_exit" leaves without ending the run. "wait MS" first sleeps, so that
 * what came before has been committed to the database.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static int work(int x)
{
    return x * 3;
}

__attribute__((noinline)) static void end(const char *how, int code)
{
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "kill") == 0)
        kill(getpid(), SIGKILL);
    if (strcmp(how, "term") == 0)
        kill(getpid(), SIGTERM);
    if (strcmp(how, "_exit") == 0)
        _exit(code);
    exit(code);
}

int main(int argc, char **argv)
{
    int sum = 0;
    for (int i = 0; i < 3; i++)
        sum += work(i);
    int arg = 1;
    if (argc > arg + 1 && strcmp(argv[arg], "wait") == 0) {
        long ms = atol(argv[arg + 1]);
        struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        arg += 2;
    }
    const char *how = argc > arg ? argv[arg] : "status";
    int code = argc > arg + 1 ? atoi(argv[arg + 1]) : sum - 9;
    end(how, code);
    return 0;
}
