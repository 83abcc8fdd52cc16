/*
 * enable_disable.c — the context-manager form: everything instrumented
 * between pk_monitor_enable and pk_monitor_disable is recorded, in every
 * thread; disable returns once the records are written.
 */
#include <pikoc.h>
#include <stdio.h>

static int square(int x)
{
    return x * x;
}

static int sum_of_squares(int n)
{
    int total = 0;
    for (int i = 1; i <= n; i++)
        total += square(i);
    return total;
}

int main(void)
{
    pk_error err;
    pk_monitor *m = pk_monitor_new("function", &err);
    pk_logger *lg = m ? pk_monitor_record(m, "csv:enable_disable.csv", &err) : NULL;
    if (!lg || pk_logger_add_filter_spec(lg, "max-depth:1", &err) != 0 ||
        pk_monitor_enable(m, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int r = sum_of_squares(3);
    pk_monitor_disable(m); /* enable_disable.csv is complete here */
    sum_of_squares(1000);  /* not recorded */
    pk_monitor_free(m);
    printf("sum_of_squares(3) = %d; records in enable_disable.csv\n", r);
    return 0;
}
