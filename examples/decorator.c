/*
 * decorator.c — Pikos' @monitor in C: PK_MONITOR(m) at the top of a function
 * records that function and everything instrumented it calls, for the
 * dynamic extent of the call only. Recursive calls hook once.
 */
#include <pikoc.h>
#include <stdio.h>
#include <stdlib.h>

static pk_monitor *monitor;

static long fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static long compute(int n)
{
    PK_MONITOR(monitor);
    return fib(n);
}

int main(void)
{
    pk_error err;
    monitor = pk_monitor_new("function-memory", &err);
    if (!monitor || !pk_monitor_record(monitor, "stdout", &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    fib(10);                              /* not monitored: outside compute() */
    printf("compute(4) = %ld\n", compute(4)); /* monitored */
    pk_monitor_free(monitor);
    return 0;
}
