/*
 * depth.c — "max-depth:N": passes records at depth N or less (a call at
 * depth 0 is a top-level call), so both the call and the return of a deep
 * function go. Drain thread.
 */
#include "internal.h"

typedef struct depth_state {
    uint64_t max; /* wider than pk_record.depth, so any N compares as given */
} depth_state;

static int max_depth_open(pk_filter *f, const char *arg, pk_error *err)
{
    depth_state *s = f->state;
    return pk_parse_uint("depth", arg, &s->max, err);
}

static bool max_depth_accept(pk_filter *f, const pk_record *rec)
{
    const depth_state *s = f->state;
    return rec->depth <= s->max;
}

const pk_filter_ops pk_filter_max_depth = {
    .name = "max-depth",
    .usage = "max-depth:N",
    .needs_arg = true,
    .size = sizeof(depth_state),
    .open = max_depth_open,
    .accept = max_depth_accept,
};
