/*
 * env.c — whole-program monitoring configured by PIKOC_* variables: when
 * PIKOC_RECORD is set, a monitor starts as libpikoc loads and its run ends
 * at exit. A bad setting is reported once and the program runs untraced.
 */
#include "drain.h"
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static pk_monitor *auto_monitor;

pk_monitor *pk_auto_monitor(void)
{
    return auto_monitor;
}

/* Calls fn on each non-empty ';'-separated item of text. */
static int each_item(const char *text, int (*fn)(void *ctx, const char *item, pk_error *err),
                     void *ctx, pk_error *err)
{
    char *copy = pk_xstrdup(text);
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ";", &save); item && rc == 0;
         item = strtok_r(NULL, ";", &save))
        if (*item)
            rc = fn(ctx, item, err);
    free(copy);
    return rc;
}

const char *pk_setting(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

static int add_recorder(void *ctx, const char *spec, pk_error *err)
{
    return pk_monitor_record(ctx, spec, err) ? 0 : -1;
}

static int add_filter(void *ctx, const char *spec, pk_error *err)
{
    return pk_logger_add_filter_spec(ctx, spec, err);
}

static int check_filter(void *ctx, const char *spec, pk_error *err)
{
    (void)ctx;
    pk_filter *f = pk_filter_open(spec, err);
    pk_filter_free(f);
    return f ? 0 : -1;
}

int pk_env_check_filters(const char *text, pk_error *err)
{
    pk_error inner;
    if (each_item(text, check_filter, NULL, &inner) != 0)
        return pk_fail(err, "PIKOC_FILTER: %s", inner.message);
    return 0;
}

/* Filters named by single variables become specs like "max-depth:N". */
static const struct {
    const char *variable;
    const char *filter;
} filter_variables[] = {
    {"PIKOC_INCLUDE", "include"},
    {"PIKOC_EXCLUDE", "exclude"},
    {"PIKOC_MAX_DEPTH", "max-depth"},
    {"PIKOC_MIN_DURATION", "min-duration"},
};

static int add_filters(pk_logger *lg, pk_error *err)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(filter_variables); i++) {
        const char *value = pk_setting(filter_variables[i].variable);
        if (!value)
            continue;
        char *spec = pk_spec_join(filter_variables[i].filter, value);
        pk_error inner;
        int rc = pk_logger_add_filter_spec(lg, spec, &inner);
        free(spec);
        if (rc != 0)
            return pk_fail(err, "%s: %s", filter_variables[i].variable, inner.message);
    }
    const char *more = pk_setting("PIKOC_FILTER");
    if (more) {
        pk_error inner;
        if (each_item(more, add_filter, lg, &inner) != 0)
            return pk_fail(err, "PIKOC_FILTER: %s", inner.message);
    }
    return 0;
}

/*
 * The monitor PIKOC_* describe. Drained by a process of its own (`apart`),
 * it opens no recorder: the drainer opens them, with their filters.
 */
static pk_monitor *configure(const char *record, bool apart, pk_error *err)
{
    const char *name = pk_setting("PIKOC_MONITOR");
    pk_error inner;
    pk_monitor *m = pk_monitor_new(name ? name : "function-memory", &inner);
    if (!m) {
        pk_fail(err, "PIKOC_MONITOR: %s", inner.message);
        return NULL;
    }
    if (apart)
        pk_monitor_set_drainer(m, record);
    else if (each_item(record, add_recorder, m, &inner) != 0) {
        pk_fail(err, "PIKOC_RECORD: %s", inner.message);
        goto fail;
    }
    /* Every recorder gets the same filters, each its own instances. */
    for (size_t i = 0; i < pk_monitor_logger_count(m); i++)
        if (add_filters(pk_monitor_logger_at(m, i), err) != 0)
            goto fail;
    const char *focus = pk_setting("PIKOC_FOCUS");
    if (focus && pk_monitor_focus(m, focus, &inner) != 0) {
        pk_fail(err, "PIKOC_FOCUS: %s", inner.message);
        goto fail;
    }
    return m;
fail:
    pk_monitor_free(m);
    return NULL;
}

pk_monitor *pk_auto_recorders(const char *record, pk_error *err)
{
    return configure(record, false, err);
}

static void auto_stop(void)
{
    pk_monitor *m = auto_monitor;
    auto_monitor = NULL;
    pk_monitor_free(m);
}

/*
 * PIKOC_FOLLOW=no (pikoc run --no-follow): this process is recorded, the
 * processes it starts and the programs it executes are not. Its environment
 * goes back to what the user gave (LD_PRELOAD as it was, PIKOC_USER_PRELOAD),
 * which is what they inherit.
 */
static void stop_following(void)
{
    const char *follow = getenv("PIKOC_FOLLOW");
    if (!follow || strcmp(follow, "no") != 0)
        return;
    const char *user = getenv("PIKOC_USER_PRELOAD");
    if (user && *user)
        setenv("LD_PRELOAD", user, 1);
    else
        unsetenv("LD_PRELOAD");
    unsetenv("PIKOC_RECORD");
    unsetenv("PIKOC_FOLLOW");
    unsetenv("PIKOC_USER_PRELOAD");
    unsetenv("PIKOC_LAUNCHER_PIPE");
}

void pk_auto_restart(void)
{
    pk_monitor *old = auto_monitor;
    auto_monitor = NULL;
    const char *record = pk_setting("PIKOC_RECORD");
    if (record) {
        pk_error err;
        pk_monitor *m = configure(record, pk_drainer_configure(), &err);
        if (m && pk_monitor_enable(m, &err) == 0)
            auto_monitor = m;
        else if (m)
            pk_monitor_free(m);
        if (!auto_monitor) {
            pk_drainer_forget();
            pk_warn("%s; the forked process runs without monitoring", err.message);
        }
    }
    pk_monitor_free(old); /* the parent's copy: closes without writing anything */
}

/*
 * Whether this copy of pikoc serves the process. A program linked with
 * libpikoc and preloaded as well (pikoc run preloads every program, and
 * what it starts inherits LD_PRELOAD) holds two: libpikoc-preload.so comes
 * first in the lookup order, so the hooks and every pikoc function the
 * program calls are its.
 * The other copy starts nothing: its run would be fed by nobody, and its
 * set-up would undo the first's (the drainer's pipe, the rings).
 */
static bool serves_process(void)
{
    Dl_info mine, first;
    void *found = dlsym(RTLD_DEFAULT, "pk_auto_monitor");
    return !found || dladdr(found, &first) == 0 || dladdr((void *)serves_process, &mine) == 0 ||
           first.dli_fbase == mine.dli_fbase;
}

__attribute__((constructor)) static void auto_start(void)
{
    const char *found = pk_setting("PIKOC_RECORD");
    if (!found || !serves_process())
        return;
    char *record = pk_xstrdup(found); /* stop_following may unset it */
    bool apart = pk_drainer_configure();
    stop_following();
    pk_error err;
    pk_monitor *m = configure(record, apart, &err);
    free(record);
    if (m && pk_monitor_enable(m, &err) != 0) {
        pk_monitor_free(m);
        m = NULL;
    }
    if (!m) {
        pk_drainer_forget(); /* pikoc run's pipe too: it waits for no drainer */
        pk_warn("%s; the program runs without monitoring", err.message);
        return;
    }
    auto_monitor = m;
    atexit(auto_stop);
}
