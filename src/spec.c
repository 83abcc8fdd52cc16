/*
 * spec.c — the one parser for the small languages pikoc reads: component
 * specs (KIND[+OPTION...][:ARG]), durations, counts and globs. Every error
 * names the bad part and says what is accepted.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *pk_spec_join(const char *kind, const char *arg)
{
    size_t kind_len = strlen(kind), arg_len = strlen(arg);
    char *spec = pk_xcalloc(kind_len + arg_len + 2, 1);
    memcpy(spec, kind, kind_len);
    spec[kind_len] = ':';
    memcpy(spec + kind_len + 1, arg, arg_len);
    return spec;
}

int pk_spec_split(const char *what, const char *text, pk_spec *spec, pk_error *err)
{
    memset(spec, 0, sizeof *spec);
    if (!text || !*text)
        return pk_fail(err, "%s '': empty (expected KIND[:ARG])", what);

    const char *colon = strchr(text, ':');
    size_t head_len = colon ? (size_t)(colon - text) : strlen(text);
    const char *p = text;
    const char *head_end = text + head_len;

    /* kind */
    const char *plus = memchr(p, '+', head_len);
    const char *kind_end = plus ? plus : head_end;
    size_t kind_len = (size_t)(kind_end - p);
    if (kind_len == 0)
        return pk_fail(err, "%s '%.*s%s': no kind before '%c'", what, PK_QUOTE(text),
                       *kind_end ? *kind_end : ':');
    if (kind_len >= sizeof spec->kind)
        return pk_fail(err, "%s '%.*s%s': kind is too long", what, PK_QUOTE(text));
    memcpy(spec->kind, p, kind_len);

    /* options */
    p = kind_end;
    while (p < head_end) {
        p++; /* skip '+' */
        const char *next = memchr(p, '+', (size_t)(head_end - p));
        const char *end = next ? next : head_end;
        size_t len = (size_t)(end - p);
        if (len == 0)
            return pk_fail(err, "%s '%.*s%s': empty option after '+'", what, PK_QUOTE(text));
        if (spec->option_count == PK_ARRAY_SIZE(spec->options))
            return pk_fail(err, "%s '%.*s%s': too many options", what, PK_QUOTE(text));
        if (len >= sizeof spec->options[0])
            return pk_fail(err, "%s '%.*s%s': option '%.*s' is too long", what, PK_QUOTE(text),
                           (int)len, p);
        memcpy(spec->options[spec->option_count++], p, len);
        p = end;
    }

    if (colon) {
        if (colon[1] == '\0')
            return pk_fail(err, "%s '%.*s%s': nothing after ':'", what, PK_QUOTE(text));
        spec->arg = colon + 1;
    }
    return 0;
}

int pk_items_split(const char *text, const char *noun, const char *usage, pk_items *items,
                   pk_error *err)
{
    memset(items, 0, sizeof *items);
    items->text = pk_xstrdup(text);
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    items->item = pk_xcalloc(n, sizeof *items->item);
    for (char *item = items->text;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        while (*item == ' ')
            item++;
        size_t len = strlen(item);
        while (len && item[len - 1] == ' ')
            item[--len] = '\0';
        /* An empty item is refused: "a,,b" or "type=call," is a typo far
         * more often than a wish. */
        if (len == 0) {
            pk_fail(err, "empty %s in '%.*s%s' (expected %s)", noun, PK_QUOTE(text), usage);
            pk_items_free(items);
            return -1;
        }
        items->item[items->count++] = item;
        if (!comma)
            break;
        item = comma + 1;
    }
    return 0;
}

void pk_items_free(pk_items *items)
{
    free(items->item);
    free(items->text);
    memset(items, 0, sizeof *items);
}

void pk_join_names(const char *const *names, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int pk_parse_uint(const char *what, const char *text, uint64_t *value, pk_error *err)
{
    if (!text || !*text)
        return pk_fail(err, "%s '': expected a non-negative whole number", what);
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return pk_fail(err, "%s '%.*s%s': expected a non-negative whole number", what,
                           PK_QUOTE(text));
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno == ERANGE)
        return pk_fail(err, "%s '%.*s%s': too large", what, PK_QUOTE(text));
    *value = v;
    return 0;
}

static const struct {
    const char *name;
    double ns;
} duration_units[] = {
    {"ns", 1.0},
    {"us", 1e3},
    {"ms", 1e6},
    {"s", 1e9},
};

int pk_parse_duration(const char *what, const char *text, uint64_t *ns, pk_error *err)
{
    static const char accepted[] = "a number with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)";
    if (!text || !*text)
        return pk_fail(err, "%s '': expected %s", what, accepted);
    const char *p = text;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return pk_fail(err, "%s '%.*s%s': expected %s", what, PK_QUOTE(text), accepted);
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    /* decimals only: strtod reads hex ("0x1p3") after a leading digit too */
    if (end == p || errno == ERANGE || !isfinite(v) || v < 0 ||
        strspn(p, "0123456789.eE+-") < (size_t)(end - p))
        return pk_fail(err, "%s '%.*s%s': expected %s", what, PK_QUOTE(text), accepted);
    const char *unit = end;
    while (*unit == ' ')
        unit++;
    double scale = 0;
    if (*unit == '\0') {
        scale = 1.0;
    } else {
        for (size_t i = 0; i < PK_ARRAY_SIZE(duration_units); i++)
            if (strcmp(unit, duration_units[i].name) == 0)
                scale = duration_units[i].ns;
        if (scale == 0)
            return pk_fail(err, "%s '%.*s%s': unknown unit '%.*s%s' (accepted: ns, us, ms, s)",
                           what, PK_QUOTE(text), PK_QUOTE(unit));
    }
    double total = v * scale;
    if (total >= 0x1p64)
        return pk_fail(err, "%s '%.*s%s': too large", what, PK_QUOTE(text));
    *ns = (uint64_t)floor(total + 0.5);
    return 0;
}

bool pk_glob_match(const char *glob, const char *text)
{
    return fnmatch(glob, text, 0) == 0;
}
