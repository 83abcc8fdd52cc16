/*
 * names.c — "include:GLOB[,GLOB...]" and "exclude:GLOB[,GLOB...]": pass or
 * drop records by function name, with pk_glob_match's globs (*, ?, [...]).
 * Drain thread.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef pk_items names_state;

static void names_close(pk_filter *f)
{
    pk_items_free(f->state);
}

static int names_open(pk_filter *f, const char *arg, const char *usage, pk_error *err)
{
    return pk_items_split(arg, "glob", usage, f->state, err);
}

static int include_open(pk_filter *f, const char *arg, pk_error *err)
{
    return names_open(f, arg, "include:GLOB[,GLOB...]", err);
}

static int exclude_open(pk_filter *f, const char *arg, pk_error *err)
{
    return names_open(f, arg, "exclude:GLOB[,GLOB...]", err);
}

static bool names_match(const names_state *s, const pk_record *rec)
{
    const char *function = rec->function ? rec->function : "";
    for (size_t i = 0; i < s->count; i++)
        if (pk_glob_match(s->item[i], function))
            return true;
    return false;
}

static bool include_accept(pk_filter *f, const pk_record *rec)
{
    return names_match(f->state, rec);
}

static bool exclude_accept(pk_filter *f, const pk_record *rec)
{
    return !names_match(f->state, rec);
}

const pk_filter_ops pk_filter_include = {
    .name = "include",
    .usage = "include:GLOB[,GLOB...]",
    .needs_arg = true,
    .size = sizeof(names_state),
    .open = include_open,
    .accept = include_accept,
    .close = names_close,
};

const pk_filter_ops pk_filter_exclude = {
    .name = "exclude",
    .usage = "exclude:GLOB[,GLOB...]",
    .needs_arg = true,
    .size = sizeof(names_state),
    .open = exclude_open,
    .accept = exclude_accept,
    .close = names_close,
};
