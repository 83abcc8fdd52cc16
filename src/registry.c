/*
 * registry.c — the named monitors, recorders and filters. Adding a built-in
 * kind is one file and one line here; users add theirs with pk_*_register.
 * Registration is meant for start-up and is not thread-safe.
 */
#include "internal.h"

#include <string.h>

#define USER_SLOTS 32

#define REGISTRY(kind, type, ...)                                                         \
    static const type *kind##_builtin[] = {__VA_ARGS__};                                  \
    static const type *kind##_user[USER_SLOTS];                                           \
    static size_t kind##_user_count;                                                      \
                                                                                          \
    const type *pk_##kind##_find(const char *name)                                       \
    {                                                                                     \
        for (size_t i = 0; i < PK_ARRAY_SIZE(kind##_builtin); i++)                        \
            if (strcmp(kind##_builtin[i]->name, name) == 0)                               \
                return kind##_builtin[i];                                                 \
        for (size_t i = 0; i < kind##_user_count; i++)                                    \
            if (strcmp(kind##_user[i]->name, name) == 0)                                  \
                return kind##_user[i];                                                    \
        return NULL;                                                                      \
    }                                                                                     \
                                                                                          \
    void pk_##kind##_known(char *buf, size_t size)                                        \
    {                                                                                     \
        const char *names[PK_ARRAY_SIZE(kind##_builtin) + USER_SLOTS];                    \
        size_t n = 0;                                                                     \
        for (size_t i = 0; i < PK_ARRAY_SIZE(kind##_builtin); i++)                        \
            if (kind##_builtin[i]->name[0] != '\0')                                       \
                names[n++] = kind##_builtin[i]->name;                                     \
        for (size_t i = 0; i < kind##_user_count; i++)                                    \
            names[n++] = kind##_user[i]->name;                                            \
        pk_join_names(names, n, buf, size);                                               \
    }                                                                                     \
                                                                                          \
    int pk_##kind##_register(const type *ops, pk_error *err)                              \
    {                                                                                     \
        if (!ops || !ops->name || !ops->name[0])                                          \
            return pk_fail(err, #kind " kind without a name");                           \
        if (strpbrk(ops->name, ":+;"))                                                    \
            return pk_fail(err, #kind " kind '%s': a name cannot hold ':', '+' or ';'",  \
                           ops->name);                                                    \
        if (pk_##kind##_find(ops->name))                                                  \
            return pk_fail(err, #kind " kind '%s' is already registered", ops->name);     \
        if (kind##_user_count == USER_SLOTS)                                              \
            return pk_fail(err, "too many " #kind " kinds registered (at most %d)",       \
                           USER_SLOTS);                                                   \
        kind##_user[kind##_user_count++] = ops;                                           \
        return 0;                                                                         \
    }

REGISTRY(monitor, pk_monitor_ops, &pk_monitor_function, &pk_monitor_function_memory,
         &pk_monitor_alloc)

REGISTRY(recorder, pk_recorder_ops, &pk_recorder_stdout, &pk_recorder_stderr, &pk_recorder_text,
         &pk_recorder_csv, &pk_recorder_list, &pk_recorder_sqlite, &pk_recorder_zmq)

REGISTRY(filter, pk_filter_ops, &pk_filter_on_value, &pk_filter_not_on_value, &pk_filter_on_change,
         &pk_filter_max_depth, &pk_filter_min_duration, &pk_filter_include, &pk_filter_exclude)
