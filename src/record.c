/*
 * record.c — the record's fields by name: one table that recorders use for
 * columns and headers and filters use to find a field and read its value.
 */
#include "internal.h"

#include <inttypes.h>
#include <string.h>

#define FIELD(id, name, kind, needs, member)                                                       \
    [id] = {name, kind, needs, offsetof(pk_record, member), sizeof(((pk_record *)0)->member)}

static const pk_field_desc fields[PK_FIELD_COUNT] = {
    FIELD(PK_FIELD_INDEX, "index", PK_KIND_UINT, 0, index),
    FIELD(PK_FIELD_TYPE, "type", PK_KIND_TYPE, 0, type),
    FIELD(PK_FIELD_FUNCTION, "function", PK_KIND_STRING, 0, function),
    FIELD(PK_FIELD_FILE, "file", PK_KIND_STRING, 0, file),
    FIELD(PK_FIELD_LINE, "line", PK_KIND_UINT, 0, line),
    FIELD(PK_FIELD_CALLER, "caller", PK_KIND_STRING, 0, caller),
    FIELD(PK_FIELD_CALLER_FILE, "caller_file", PK_KIND_STRING, 0, caller_file),
    FIELD(PK_FIELD_CALLER_LINE, "caller_line", PK_KIND_UINT, 0, caller_line),
    FIELD(PK_FIELD_THREAD, "thread", PK_KIND_UINT, 0, thread),
    FIELD(PK_FIELD_DEPTH, "depth", PK_KIND_UINT, 0, depth),
    FIELD(PK_FIELD_TIME, "time_ns", PK_KIND_UINT, 0, time_ns),
    FIELD(PK_FIELD_DURATION, "duration_ns", PK_KIND_UINT, 0, duration_ns),
    FIELD(PK_FIELD_RSS, "rss", PK_KIND_UINT, PK_RECORD_MEMORY, rss),
    FIELD(PK_FIELD_VMS, "vms", PK_KIND_UINT, PK_RECORD_MEMORY, vms),
    FIELD(PK_FIELD_ALLOCATED, "allocated", PK_KIND_UINT, PK_RECORD_ALLOC, allocated),
    FIELD(PK_FIELD_FREED, "freed", PK_KIND_UINT, PK_RECORD_ALLOC, freed),
    FIELD(PK_FIELD_ALLOC_DELTA, "alloc_delta", PK_KIND_UINT, PK_RECORD_ALLOC, alloc_delta),
    FIELD(PK_FIELD_FREE_DELTA, "free_delta", PK_KIND_UINT, PK_RECORD_ALLOC, free_delta),
    FIELD(PK_FIELD_LABEL, "label", PK_KIND_STRING, 0, label),
    FIELD(PK_FIELD_SPAN, "span", PK_KIND_UINT, PK_RECORD_SPAN, span),
    FIELD(PK_FIELD_TOTAL, "total_ns", PK_KIND_UINT, PK_RECORD_SPAN, total_ns),
    FIELD(PK_FIELD_ALLOC_FUNCTION, "alloc_function", PK_KIND_STRING, PK_RECORD_BLOCK,
          alloc_function),
    FIELD(PK_FIELD_POINTER, "pointer", PK_KIND_ADDRESS, PK_RECORD_BLOCK, pointer),
    FIELD(PK_FIELD_OLD_POINTER, "old_pointer", PK_KIND_ADDRESS, PK_RECORD_BLOCK, old_pointer),
    FIELD(PK_FIELD_SIZE, "size", PK_KIND_UINT, PK_RECORD_SIZE, size),
    FIELD(PK_FIELD_USABLE_SIZE, "usable_size", PK_KIND_UINT, PK_RECORD_SIZE, usable_size),
};

const char *pk_event_type_name(pk_event_type type)
{
    switch (type) {
    case PK_EVENT_CALL:
        return "call";
    case PK_EVENT_RETURN:
        return "return";
    case PK_EVENT_CHECKPOINT:
        return "checkpoint";
    case PK_EVENT_ALLOC:
        return "alloc";
    case PK_EVENT_FREE:
        return "free";
    case PK_EVENT_REALLOC:
        return "realloc";
    case PK_EVENT_SAMPLE:
        return "sample";
    }
    return NULL;
}

const pk_field_desc *pk_field_desc_of(pk_field_id field)
{
    return (unsigned)field < PK_FIELD_COUNT ? &fields[field] : NULL;
}

const char *pk_field_name(pk_field_id field)
{
    const pk_field_desc *d = pk_field_desc_of(field);
    return d ? d->name : NULL;
}

int pk_field_lookup(const char *name, pk_error *err)
{
    const char *names[PK_FIELD_COUNT];
    for (int i = 0; i < PK_FIELD_COUNT; i++) {
        if (name && strcmp(fields[i].name, name) == 0)
            return i;
        names[i] = fields[i].name;
    }
    char known[512];
    pk_join_names(names, PK_FIELD_COUNT, known, sizeof known);
    return pk_fail(err, "unknown field '%s' (known: %s)", name ? name : "", known);
}

bool pk_record_has_field(const pk_record *rec, pk_field_id field)
{
    const pk_field_desc *d = pk_field_desc_of(field);
    return d && (rec->flags & d->needs) == d->needs;
}

uint64_t pk_record_uint(const pk_record *rec, pk_field_id field)
{
    const pk_field_desc *d = &fields[field];
    const char *base = (const char *)rec + d->offset;
    if (d->size == sizeof(uint32_t)) { /* unsigned members and the event type */
        uint32_t v;
        memcpy(&v, base, sizeof v);
        return v;
    }
    uint64_t v;
    memcpy(&v, base, sizeof v);
    return v;
}

void pk_record_set_uint(pk_record *rec, pk_field_id field, uint64_t value)
{
    const pk_field_desc *d = &fields[field];
    char *base = (char *)rec + d->offset;
    if (d->size == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)value;
        memcpy(base, &v, sizeof v);
    } else {
        memcpy(base, &value, sizeof value);
    }
}

void pk_record_set_string(pk_record *rec, pk_field_id field, const char *value)
{
    memcpy((char *)rec + fields[field].offset, &value, sizeof value);
}

const char *pk_record_string(const pk_record *rec, pk_field_id field)
{
    if (field == PK_FIELD_TYPE) {
        const char *name = pk_event_type_name(rec->type);
        return name ? name : "?";
    }
    const char *s;
    memcpy(&s, (const char *)rec + fields[field].offset, sizeof s);
    return s ? s : "";
}

/* Copies what fits of text (len bytes) into buf, NUL-terminated; returns the bytes copied. */
static size_t put_text(char *buf, size_t size, const char *text, size_t len)
{
    size_t n = len < size ? len : size - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return n;
}

/* Text recorders format every field of every record: no printf machinery. */
size_t pk_record_format_field(const pk_record *rec, pk_field_id field, char *buf, size_t size)
{
    const pk_field_desc *d = pk_field_desc_of(field);
    if (size == 0)
        return 0;
    if (!d || !pk_record_has_field(rec, field)) {
        buf[0] = '\0';
        return 0;
    }
    if (d->kind != PK_KIND_UINT && d->kind != PK_KIND_ADDRESS) {
        const char *text = pk_record_string(rec, field);
        return put_text(buf, size, text, strlen(text));
    }
    char digits[20];
    char *p = digits + sizeof digits;
    uint64_t v = pk_record_uint(rec, field);
    if (d->kind == PK_KIND_ADDRESS) { /* 0x and hexadecimal digits */
        do
            *--p = "0123456789abcdef"[v & 15];
        while ((v >>= 4) != 0);
        *--p = 'x';
        *--p = '0';
    } else {
        do
            *--p = (char)('0' + v % 10);
        while ((v /= 10) != 0);
    }
    return put_text(buf, size, p, (size_t)(digits + sizeof digits - p));
}
