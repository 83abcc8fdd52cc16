/*
 * cli.c — the one option parser every subcommand uses, and the parsers of
 * option values. A usage error is one line on stderr naming the command,
 * the option and what is accepted; the command then exits with status 2.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void pk_cli_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pikoc %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int pk_cli_usage(const pk_cli_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pikoc %s: ", p->command->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return PK_EXIT_USAGE;
}

void pk_cli_begin(pk_cli_parser *p, const pk_cli_command *command, const pk_cli_option *options,
                  size_t count, int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->command = command;
    p->options = options;
    p->count = count;
    p->argc = argc;
    p->argv = argv;
    p->next = 1; /* argv[0] is the command's name */
}

static int stop(pk_cli_parser *p, int status)
{
    p->status = status;
    return PK_CLI_EXIT;
}

/* Finds a long option by the text between "--" and an optional '='. */
static int find_long(const pk_cli_parser *p, const char *name, size_t length)
{
    for (size_t i = 0; i < p->count; i++)
        if (strlen(p->options[i].name) == length && memcmp(p->options[i].name, name, length) == 0)
            return (int)i;
    return -1;
}

static int find_short(const pk_cli_parser *p, char name)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->options[i].short_name == name)
            return (int)i;
    return -1;
}

/* The option's value: attached (--x=v, -xv) or the next argument, whatever it starts with. */
static int take_value(pk_cli_parser *p, int index, const char *attached, const char *spelled,
                      const char **value)
{
    uint64_t bit = index < 64 ? 1ull << index : 0;
    if (p->given & bit & ~p->repeatable) {
        pk_cli_usage(p, "--%s given twice (it takes one value)", p->options[index].name);
        return stop(p, PK_EXIT_USAGE);
    }
    p->given |= bit;
    if (attached) {
        *value = attached;
        return index;
    }
    if (p->next >= p->argc) {
        pk_cli_usage(p, "%s needs a value (%s)", spelled, p->options[index].value);
        return stop(p, PK_EXIT_USAGE);
    }
    *value = p->argv[p->next++];
    return index;
}

int pk_cli_next(pk_cli_parser *p, const char **value)
{
    *value = NULL;
    if (p->next >= p->argc)
        return PK_CLI_END;
    const char *arg = p->argv[p->next];
    if (p->operands_only || arg[0] != '-' || arg[1] == '\0') {
        if (p->stop_at_operand)
            return PK_CLI_END;
        p->next++;
        *value = arg;
        return PK_CLI_OPERAND;
    }
    p->next++;
    if (strcmp(arg, "--") == 0) {
        if (p->stop_at_operand)
            return PK_CLI_END;
        p->operands_only = true;
        return pk_cli_next(p, value);
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(p->command->help, stdout);
        return stop(p, PK_EXIT_OK);
    }
    if (strncmp(arg, "--help=", 7) == 0 || strncmp(arg, "-h", 2) == 0) {
        pk_cli_usage(p, "%s takes no value", arg[1] == '-' ? "--help" : "-h");
        return stop(p, PK_EXIT_USAGE);
    }
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t length = equals ? (size_t)(equals - name) : strlen(name);
        int index = find_long(p, name, length);
        if (index < 0) {
            pk_cli_usage(p, "unknown option '--%.*s' (see pikoc %s --help)", (int)length, name,
                         p->command->name);
            return stop(p, PK_EXIT_USAGE);
        }
        if (!p->options[index].value) {
            if (equals) {
                pk_cli_usage(p, "--%s takes no value", p->options[index].name);
                return stop(p, PK_EXIT_USAGE);
            }
            return index;
        }
        char spelled[64];
        snprintf(spelled, sizeof spelled, "--%s", p->options[index].name);
        return take_value(p, index, equals ? equals + 1 : NULL, spelled, value);
    }
    int index = find_short(p, arg[1]);
    if (index < 0) {
        pk_cli_usage(p, "unknown option '-%c' (see pikoc %s --help)", arg[1], p->command->name);
        return stop(p, PK_EXIT_USAGE);
    }
    if (!p->options[index].value) {
        if (arg[2] != '\0') {
            pk_cli_usage(p, "-%c takes no value", arg[1]);
            return stop(p, PK_EXIT_USAGE);
        }
        return index;
    }
    char spelled[8];
    snprintf(spelled, sizeof spelled, "-%c", arg[1]);
    return take_value(p, index, arg[2] ? arg + 2 : NULL, spelled, value);
}

/* ---- option values --------------------------------------------------------------- */

int pk_cli_uint(pk_cli_parser *p, const char *option, const char *text, uint64_t *value)
{
    pk_error err;
    if (pk_parse_uint(option, text, value, &err) != 0) {
        pk_cli_usage(p, "%s", err.message);
        return -1;
    }
    return 0;
}

int pk_cli_duration(pk_cli_parser *p, const char *option, const char *text, uint64_t *ns)
{
    pk_error err;
    if (pk_parse_duration(option, text, ns, &err) != 0) {
        pk_cli_usage(p, "%s", err.message);
        return -1;
    }
    return 0;
}

/* strtod, but only plain decimals: no sign, no hex, no "inf" or "nan". */
static bool parse_decimal(const char *text, double *value, const char **end)
{
    if (!isdigit((unsigned char)text[0]) && !(text[0] == '.' && isdigit((unsigned char)text[1])))
        return false;
    char *stop_at;
    errno = 0;
    *value = strtod(text, &stop_at);
    *end = stop_at;
    /* strtod reads hex ("0x10") after a leading digit too: not a decimal */
    return errno != ERANGE && isfinite(*value) &&
           strspn(text, "0123456789.eE+-") >= (size_t)(stop_at - text);
}

int pk_cli_real(pk_cli_parser *p, const char *option, const char *text, double *value)
{
    const char *end;
    if (!parse_decimal(text, value, &end) || *end != '\0') {
        pk_cli_usage(p, "%s '%s': expected a non-negative number (e.g. 1.5)", option, text);
        return -1;
    }
    return 0;
}

static const struct {
    const char *suffix;
    double bytes;
} size_units[] = {
    {"", 1},        {"b", 1},        {"k", 0x1p10}, {"kb", 0x1p10}, {"kib", 0x1p10}, {"m", 0x1p20},
    {"mb", 0x1p20}, {"mib", 0x1p20}, {"g", 0x1p30}, {"gb", 0x1p30}, {"gib", 0x1p30},
};

int pk_cli_size(pk_cli_parser *p, const char *option, const char *text, uint64_t *bytes)
{
    double value;
    const char *end;
    if (parse_decimal(text, &value, &end)) {
        while (*end == ' ')
            end++;
        for (size_t i = 0; i < PK_ARRAY_SIZE(size_units); i++) {
            if (strcasecmp(end, size_units[i].suffix) != 0)
                continue;
            double total = value * size_units[i].bytes;
            if (total >= 0x1p63)
                break;
            *bytes = (uint64_t)floor(total + 0.5);
            return 0;
        }
    }
    pk_cli_usage(p,
                 "%s '%s': expected a size in bytes, binary multiples allowed (e.g. 4096, 64k, "
                 "1.5MiB)",
                 option, text);
    return -1;
}

int pk_cli_choice(pk_cli_parser *p, const char *option, const char *text, const char *noun,
                  const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], text) == 0)
            return (int)i;
    char accepted[256];
    pk_join_names(names, count, accepted, sizeof accepted);
    pk_cli_usage(p, "%s '%s': unknown %s (accepted: %s)", option, text, noun, accepted);
    return -1;
}

int pk_cli_take(pk_cli_parser *p, const pk_cli_value *values, size_t count, int o, const char *text)
{
    const pk_cli_value *v = values;
    while (v < values + count && v->option != o)
        v++;
    if (v == values + count)
        return 0;
    if (v->given)
        *v->given = true;
    char option[64];
    snprintf(option, sizeof option, "--%s", p->options[o].name);
    switch (v->kind) {
    case PK_VALUE_UINT:
        return pk_cli_uint(p, option, text, v->to) == 0 ? 1 : -1;
    case PK_VALUE_SIZE:
        return pk_cli_size(p, option, text, v->to) == 0 ? 1 : -1;
    case PK_VALUE_REAL:
        return pk_cli_real(p, option, text, v->to) == 0 ? 1 : -1;
    case PK_VALUE_TEXT:
        *(const char **)v->to = text;
        return 1;
    case PK_VALUE_CHOICE: {
        int index = pk_cli_choice(p, option, text, v->noun, v->names, v->count);
        if (index < 0)
            return -1;
        *(int *)v->to = index;
        return 1;
    }
    }
    return 0;
}
