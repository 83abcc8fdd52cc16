/*
 * value.c — filters on one field's value (Pikos' OnValue, NotOnValue and
 * OnChange). A field is compared as the text pk_record_format_field gives,
 * so "type=call" and "depth=0" mean what the recorders print. Drain thread.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Holds the digits of any uint64_t and its NUL. */
#define NUMBER_TEXT 24

/*
 * The field's text. Strings come straight from the record: they are what
 * pk_record_format_field would write, without its buffer's length limit
 * (a C++ function name can be long). Numbers are formatted into buf.
 */
static const char *field_text(const pk_record *rec, pk_field_id field, char buf[NUMBER_TEXT])
{
    pk_field_kind kind = pk_field_desc_of(field)->kind;
    if ((kind == PK_KIND_STRING || kind == PK_KIND_TYPE) && pk_record_has_field(rec, field))
        return pk_record_string(rec, field);
    pk_record_format_field(rec, field, buf, NUMBER_TEXT);
    return buf;
}

/* ---- on-value / not-on-value -------------------------------------------- */

typedef struct value_state {
    pk_field_id field;
    pk_items values;
} value_state;

static void value_close(pk_filter *f)
{
    value_state *s = f->state;
    pk_items_free(&s->values);
}

/*
 * Parses FIELD=V[,V...]; `usage` names the accepted form in messages. On
 * failure it frees what it took itself: pk_filter_new does not call close
 * after a failed open.
 */
static int value_open(pk_filter *f, const char *arg, const char *usage, pk_error *err)
{
    value_state *s = f->state;
    const char *eq = strchr(arg, '=');
    if (!eq)
        return pk_fail(err, "no '=' in '%s' (expected %s)", arg, usage);
    if (eq == arg)
        return pk_fail(err, "no field before '=' (expected %s)", usage);
    if (eq[1] == '\0')
        return pk_fail(err, "no values after '%s' (expected %s)", arg, usage);

    char name[64];
    if ((size_t)(eq - arg) >= sizeof name)
        return pk_fail(err, "field name '%.*s' is too long", (int)(eq - arg), arg);
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    int field = pk_field_lookup(name, err);
    if (field < 0)
        return -1;
    s->field = (pk_field_id)field;
    return pk_items_split(eq + 1, "value", usage, &s->values, err);
}

static int on_value_open(pk_filter *f, const char *arg, pk_error *err)
{
    return value_open(f, arg, "on-value:FIELD=V[,V...]", err);
}

static int not_on_value_open(pk_filter *f, const char *arg, pk_error *err)
{
    return value_open(f, arg, "not-on-value:FIELD=V[,V...]", err);
}

static bool value_matches(const value_state *s, const pk_record *rec)
{
    char buf[NUMBER_TEXT];
    const char *text = field_text(rec, s->field, buf);
    for (size_t i = 0; i < s->values.count; i++)
        if (strcmp(text, s->values.item[i]) == 0)
            return true;
    return false;
}

static bool on_value_accept(pk_filter *f, const pk_record *rec)
{
    return value_matches(f->state, rec);
}

static bool not_on_value_accept(pk_filter *f, const pk_record *rec)
{
    return !value_matches(f->state, rec);
}

const pk_filter_ops pk_filter_on_value = {
    .name = "on-value",
    .usage = "on-value:FIELD=V[,V...]",
    .needs_arg = true,
    .size = sizeof(value_state),
    .open = on_value_open,
    .accept = on_value_accept,
    .close = value_close,
};

const pk_filter_ops pk_filter_not_on_value = {
    .name = "not-on-value",
    .usage = "not-on-value:FIELD=V[,V...]",
    .needs_arg = true,
    .size = sizeof(value_state),
    .open = not_on_value_open,
    .accept = not_on_value_accept,
    .close = value_close,
};

/* ---- on-change ---------------------------------------------------------- */

/*
 * One "last value" for the whole run, not one per thread, as in Pikos: with
 * on-change:rss the question is "did the process's memory move", and RSS is
 * a process-wide number.
 */
typedef struct change_state {
    pk_field_id field;
    bool seen;
    const char *last; /* a record's string (valid until exit), or number */
    char number[NUMBER_TEXT];
} change_state;

static int on_change_open(pk_filter *f, const char *arg, pk_error *err)
{
    change_state *s = f->state;
    int field = pk_field_lookup(arg, err);
    if (field < 0)
        return -1;
    s->field = (pk_field_id)field;
    return 0;
}

static bool on_change_accept(pk_filter *f, const pk_record *rec)
{
    change_state *s = f->state;
    char buf[NUMBER_TEXT];
    const char *text = field_text(rec, s->field, buf);
    if (s->seen && strcmp(text, s->last) == 0)
        return false;
    s->seen = true;
    if (text == buf) {
        memcpy(s->number, buf, sizeof s->number);
        s->last = s->number;
    } else {
        s->last = text;
    }
    return true;
}

const pk_filter_ops pk_filter_on_change = {
    .name = "on-change",
    .usage = "on-change:FIELD",
    .needs_arg = true,
    .size = sizeof(change_state),
    .open = on_change_open,
    .accept = on_change_accept,
};
