/*
 * focus.c — a focused function that calls into libc (qsort with an
 * instrumented comparator, strlen, printf) and then into its own callees:
 * the library calls must not end the focus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compares; /* how often qsort called back (sanitizers add checks) */

__attribute__((noinline)) static int compare(const void *a, const void *b)
{
    compares++;
    return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) static int helper(int x)
{
    return x + 1;
}

__attribute__((noinline)) static int outside(int x)
{
    return helper(x);
}

__attribute__((noinline)) static int target(void)
{
    int v[3] = {2, 0, 1};
    qsort(v, 3, sizeof v[0], compare);
    size_t n = strlen("pikoc");
    fprintf(stderr, "sorted %d %d %d\n", v[0], v[1], v[2]);
    return helper((int)n) + v[0];
}

int main(void)
{
    int r = outside(1);
    r += target();
    r += outside(2);
    printf("%d compares %d\n", r, compares);
    return 0;
}
