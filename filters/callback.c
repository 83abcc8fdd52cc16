/*
 * callback.c — a filter that asks a user function (Pikos lets any callable
 * be a filter). Not in the spec registry: a function pointer cannot be
 * written in a spec, so pk_filter_callback builds it. Drain thread.
 */
#include "internal.h"

typedef struct callback_state {
    bool (*fn)(const pk_record *rec, void *user);
    void *user;
} callback_state;

static bool callback_accept(pk_filter *f, const pk_record *rec)
{
    const callback_state *s = f->state;
    return s->fn(rec, s->user);
}

const pk_filter_ops pk_filter_callback_ops = {
    .name = "callback",
    .usage = "pk_filter_callback(fn, user)",
    .size = sizeof(callback_state),
    .accept = callback_accept,
};

/* Returns NULL when fn is NULL: there is nothing to ask. */
pk_filter *pk_filter_callback(bool (*fn)(const pk_record *rec, void *user), void *user)
{
    if (!fn)
        return NULL;
    pk_filter *f = pk_filter_new(&pk_filter_callback_ops, NULL, NULL);
    if (!f)
        return NULL;
    callback_state *s = f->state;
    s->fn = fn;
    s->user = user;
    return f;
}
