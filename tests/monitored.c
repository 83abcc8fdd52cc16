/*
 * monitored.c — instrumented functions for test_monitor.c. Function lines
 * are captured with __LINE__ on the line holding the function's name, so
 * the tests follow this file when it changes.
 */
#include "monitored.h"

#include <stdlib.h>
#include <string.h>

pk_monitor *marked_monitor;

const unsigned leaf_line = __LINE__ + 1;
__attribute__((noinline)) int leaf(int x)
{
    return x + 1;
}

const unsigned outer_line = __LINE__ + 1;
__attribute__((noinline)) int outer(int x)
{
    int a = leaf(x); /* outer_line + 2 */
    int b = leaf(a); /* outer_line + 3 */
    return b;
}

const unsigned recurse_line = __LINE__ + 1;
__attribute__((noinline)) int recurse(int n)
{
    return n <= 0 ? 0 : 1 + recurse(n - 1);
}

int compare_calls;

static int compare_ints(const void *a, const void *b)
{
    compare_calls++;
    return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) int focus_target(int n)
{
    int values[4] = {3, 1, 2, 0};
    /* a library call that calls back into instrumented code, then one that does not */
    qsort(values, 4, sizeof values[0], compare_ints);
    char buf[16];
    memset(buf, 0, sizeof buf);
    return leaf(n) + values[0];
}

__attribute__((noinline)) int not_focused(int n)
{
    return leaf(n);
}

__attribute__((noinline)) void *allocate_kept(size_t bytes)
{
    void *p = malloc(bytes);
    memset(p, 1, bytes);
    return p;
}

__attribute__((noinline)) void free_kept(void *p)
{
    free(p);
}

const unsigned marked_line = __LINE__ + 3;
__attribute__((noinline)) int marked(int n)
{
    PK_MONITOR(marked_monitor);
    return leaf(n);
}

__attribute__((noinline)) int marked_recursive(int n)
{
    PK_MONITOR(marked_monitor);
    return n <= 0 ? 0 : 1 + marked_recursive(n - 1);
}

const unsigned zone_line = __LINE__ + 3;
__attribute__((noinline)) int zoned(void)
{
    PK_ZONE("parse");
    return leaf(1);
}
