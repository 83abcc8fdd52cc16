/*
 * recorder.c — what every recorder shares: opening one from a spec,
 * auto-flush, and turning the first write failure into one report, after
 * which the recorder is skipped and the monitored program carries on.
 * Runs on the drain thread (or the caller's, when driven by hand).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pk_recorder *recorder_new(const pk_recorder_ops *ops, const char *arg, unsigned options,
                                 pk_error *err)
{
    if (!ops || !ops->write) {
        pk_fail(err, "recorder kind without a write function");
        return NULL;
    }
    if (ops->needs_arg && !arg) {
        pk_fail(err, "recorder spec '%s': missing argument (expected %s)", ops->name,
                ops->usage ? ops->usage : ops->name);
        return NULL;
    }
    pk_recorder *r = pk_xcalloc(1, sizeof *r);
    r->ops = ops;
    r->state = ops->size ? pk_xcalloc(1, ops->size) : NULL;
    r->spec = pk_xstrdup(ops->name);
    r->options = options;
    if (ops->open && ops->open(r, arg, err) != 0) {
        free(r->state);
        free(r->spec);
        free(r);
        return NULL;
    }
    return r;
}

pk_recorder *pk_recorder_new(const pk_recorder_ops *ops, const char *arg, pk_error *err)
{
    return recorder_new(ops, arg, 0, err);
}

/* The bit of a kind's own option, or -1. */
static int option_bit(const pk_recorder_ops *ops, const char *option)
{
    for (int i = 0; ops->options && ops->options[i] && i < 32; i++)
        if (strcmp(ops->options[i], option) == 0)
            return i;
    return -1;
}

/* "flush" and the kind's own options, for messages. */
static void known_options(const pk_recorder_ops *ops, char *buf, size_t size)
{
    const char *names[33] = {"flush"};
    size_t n = 1;
    for (; ops->options && ops->options[n - 1] && n < PK_ARRAY_SIZE(names); n++)
        names[n] = ops->options[n - 1];
    pk_join_names(names, n, buf, size);
}

/* Splits a recorder spec and checks it against the registry; opens nothing. */
static int parse_recorder_spec(const char *spec_text, pk_spec *spec,
                               const pk_recorder_ops **ops_out, bool *flush, unsigned *options,
                               pk_error *err)
{
    if (pk_spec_split("recorder spec", spec_text, spec, err) != 0)
        return -1;
    const pk_recorder_ops *ops = pk_recorder_find(spec->kind);
    if (!ops) {
        char known[256];
        pk_recorder_known(known, sizeof known);
        return pk_fail(err, "recorder spec '%.*s%s': unknown kind '%s' (known: %s)",
                       PK_QUOTE(spec_text), spec->kind, known);
    }
    *flush = false;
    *options = 0;
    for (size_t i = 0; i < spec->option_count; i++) {
        int bit = option_bit(ops, spec->options[i]);
        if (bit >= 0) {
            *options |= 1u << bit;
        } else if (strcmp(spec->options[i], "flush") == 0) {
            *flush = true;
        } else {
            char known[256];
            known_options(ops, known, sizeof known);
            return pk_fail(err, "recorder spec '%.*s%s': unknown option '%s' (known: %s)",
                           PK_QUOTE(spec_text), spec->options[i], known);
        }
    }
    if (ops->needs_arg && !spec->arg)
        return pk_fail(err, "recorder spec '%.*s%s': missing argument (expected %s)",
                       PK_QUOTE(spec_text), ops->usage ? ops->usage : ops->name);
    if (!ops->needs_arg && spec->arg)
        return pk_fail(err, "recorder spec '%.*s%s': '%s' takes no argument (expected %s)",
                       PK_QUOTE(spec_text), spec->kind, ops->usage ? ops->usage : ops->name);
    *ops_out = ops;
    return 0;
}

int pk_recorder_check_spec(const char *spec_text, pk_error *err)
{
    pk_spec spec;
    const pk_recorder_ops *ops;
    bool flush;
    unsigned options;
    if (parse_recorder_spec(spec_text, &spec, &ops, &flush, &options, err) != 0)
        return -1;
    /* What the recorder reads from the environment as it opens. */
    if (ops != &pk_recorder_zmq)
        return 0;
    int pub = option_bit(ops, "pub");
    pk_error inner;
    if (pk_zmq_check_settings(spec.arg, pub >= 0 && (options & (1u << pub)), &inner) != 0)
        return pk_fail(err, "recorder spec '%.*s%s': %s", PK_QUOTE(spec_text), inner.message);
    return 0;
}

pk_recorder *pk_recorder_open(const char *spec_text, pk_error *err)
{
    pk_spec spec;
    const pk_recorder_ops *ops;
    bool flush;
    unsigned options;
    if (parse_recorder_spec(spec_text, &spec, &ops, &flush, &options, err) != 0)
        return NULL;
    pk_error inner;
    pk_recorder *r = recorder_new(ops, spec.arg, options, &inner);
    if (!r) {
        pk_fail(err, "recorder spec '%.*s%s': %s", PK_QUOTE(spec_text), inner.message);
        return NULL;
    }
    free(r->spec);
    r->spec = pk_xstrdup(spec_text);
    if (flush) {
        r->auto_flush = true;
        r->auto_flush_set = true;
    }
    return r;
}

bool pk_recorder_option(const pk_recorder *r, const char *option)
{
    int bit = option_bit(r->ops, option);
    return bit >= 0 && (r->options & (1u << bit));
}

void pk_recorder_set_auto_flush(pk_recorder *r, bool on)
{
    r->auto_flush = on;
    r->auto_flush_set = true;
}

bool pk_recorder_auto_flush(const pk_recorder *r)
{
    return r->auto_flush;
}

const pk_recorder_ops *pk_recorder_ops_of(const pk_recorder *r)
{
    return r->ops;
}

void *pk_recorder_state(pk_recorder *r)
{
    return r->state;
}

void pk_recorder_close_now(pk_recorder *r)
{
    if (r->closed)
        return;
    if (r->ops->close)
        r->ops->close(r);
    if (!r->failed) /* else its error says why, which stays */
        snprintf(r->error, sizeof r->error,
                 "recorder '%s' was closed as the program executed another; its records are "
                 "dropped",
                 r->spec);
    r->closed = r->failed = true;
}

void pk_recorder_free(pk_recorder *r)
{
    if (!r)
        return;
    if (r->ops->close && !r->closed)
        r->ops->close(r);
    free(r->state);
    free(r->spec);
    free(r);
}
