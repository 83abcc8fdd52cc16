/*
 * profiler.c — the checkpoint profiler: time the steps of one operation and
 * print them when it ends. Run it to see the blocks on stderr; run it with
 * PIKOC_RECORD=sqlite:run.db and each mark is also a checkpoint record
 * (pikoc events --type checkpoint). PIKOC_PROFILE=details turns on the
 * profiler that is off by default.
 */
#include <pikoc.h>
#include <stdlib.h>
#include <string.h>

static double compute(long n)
{
    volatile double x = 0;
    for (long i = 0; i < n; i++)
        x += (double)i * 0.5;
    return x;
}

static void load_table(size_t rows)
{
    PK_PROFILER(prof, "load_table", .enable = PK_PROFILE_ON);
    char *table = malloc(rows * 64);
    pk_profiler_mark(&prof, "allocated");
    memset(table, 1, rows * 64);
    pk_profiler_mark(&prof, "filled");
    free(table);
}

static void details(void)
{
    /* Printed only when PIKOC_PROFILE lists "details" (or says "all"). */
    PK_PROFILER(prof, "details");
    compute(1000);
    pk_profiler_mark(&prof, "computed");
}

int main(void)
{
    PK_PROFILER(prof, "main", .enable = PK_PROFILE_ON);
    load_table(100000);
    pk_profiler_mark(&prof, "table loaded");
    compute(2000000);
    pk_profiler_mark(&prof, "computed");
    {
        /* Quicker than its threshold: prints nothing at all. */
        PK_PROFILER(quick, "quick step", .enable = PK_PROFILE_ON, .ms_threshold = 1000);
        compute(10);
        pk_profiler_mark(&quick, "done");
    }
    details();
    pk_profiler_mark(&prof, "details");
    return 0;
}
