/*
 * recorder.c — what every recorder shares: opening one from a spec,
 * auto-flush, and turning the first write failure into one report, after
 * which the recorder is skipped and the monitored program carries on.
 * Runs on the drain thread (or the caller's, when driven by hand).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pk_recorder *pk_recorder_new(const pk_recorder_ops *ops, const char *arg, pk_error *err)
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
    if (ops->open && ops->open(r, arg, err) != 0) {
        free(r->state);
        free(r->spec);
        free(r);
        return NULL;
    }
    return r;
}

/* Splits a recorder spec and checks it against the registry; opens nothing. */
static int parse_recorder_spec(const char *spec_text, pk_spec *spec,
                               const pk_recorder_ops **ops_out, bool *flush, pk_error *err)
{
    if (pk_spec_split("recorder spec", spec_text, spec, err) != 0)
        return -1;
    const pk_recorder_ops *ops = pk_recorder_find(spec->kind);
    if (!ops) {
        char known[256];
        pk_recorder_known(known, sizeof known);
        return pk_fail(err, "recorder spec '%s': unknown kind '%s' (known: %s)", spec_text,
                       spec->kind, known);
    }
    *flush = false;
    for (size_t i = 0; i < spec->option_count; i++) {
        if (strcmp(spec->options[i], "flush") != 0)
            return pk_fail(err, "recorder spec '%s': unknown option '%s' (known: flush)",
                           spec_text, spec->options[i]);
        *flush = true;
    }
    if (ops->needs_arg && !spec->arg)
        return pk_fail(err, "recorder spec '%s': missing argument (expected %s)", spec_text,
                       ops->usage ? ops->usage : ops->name);
    if (!ops->needs_arg && spec->arg)
        return pk_fail(err, "recorder spec '%s': '%s' takes no argument (expected %s)", spec_text,
                       spec->kind, ops->usage ? ops->usage : ops->name);
    *ops_out = ops;
    return 0;
}

int pk_recorder_check_spec(const char *spec_text, pk_error *err)
{
    pk_spec spec;
    const pk_recorder_ops *ops;
    bool flush;
    return parse_recorder_spec(spec_text, &spec, &ops, &flush, err);
}

pk_recorder *pk_recorder_open(const char *spec_text, pk_error *err)
{
    pk_spec spec;
    const pk_recorder_ops *ops;
    bool flush;
    if (parse_recorder_spec(spec_text, &spec, &ops, &flush, err) != 0)
        return NULL;
    pk_error inner;
    pk_recorder *r = pk_recorder_new(ops, spec.arg, &inner);
    if (!r) {
        pk_fail(err, "recorder spec '%s': %s", spec_text, inner.message);
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

void pk_recorder_free(pk_recorder *r)
{
    if (!r)
        return;
    if (r->ops->close)
        r->ops->close(r);
    free(r->state);
    free(r->spec);
    free(r);
}
