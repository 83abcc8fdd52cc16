/*
 * function.c — the "function" monitor: entry and exit with time only.
 * Time is taken by the core on every event, so there is nothing to sample.
 */
#include "internal.h"

static int function_open(pk_monitor *m, pk_run_info *run, pk_error *err)
{
    (void)m;
    (void)err;
    run->flags = 0;
    run->alloc_source = "unavailable: the function monitor does not count allocations";
    return 0;
}

const pk_monitor_ops pk_monitor_function = {
    .name = "function",
    .summary = "function entry and exit with time",
    .open = function_open,
};
