/*
 * wire.c — the codec of docs/wire-format.md (see wire.h). Encoding runs on
 * the sender's drain thread once per record, so it loops over the field
 * table with no lookups beyond one pointer hash per string; decoding trusts
 * nothing: every length, id and bit is checked before a record is handed on.
 */
#include "wire.h"

#include "clock.h"
#include "store.h" /* pk_put_uvarint, pk_put_delta: the store's varints */

#include <stdlib.h>
#include <string.h>

enum { KIND_UINT = 0, KIND_STRING = 1, KIND_TYPE = 2, KIND_STACK = 3 };

/*
 * Record members the field table leaves out (they are no column) that a
 * collector's store needs: an allocation's call site keys its site, its
 * stack (--stack N) keys its stack. They travel after the table's fields
 * when the record's flags include `needs` (a stack only when the record has
 * one); a number needs no more than its entry here.
 */
static const struct wire_extra {
    const char *name;
    size_t offset;
    unsigned needs;
    int kind;
} extras[] = {
    {"call_site", offsetof(pk_record, call_site), PK_RECORD_BLOCK, KIND_UINT},
    {"stack", offsetof(pk_record, stack), PK_RECORD_BLOCK, KIND_STACK},
};
#define WIRE_FIELD_COUNT (PK_FIELD_COUNT + (int)PK_ARRAY_SIZE(extras))

/* The field table's fields, then the extras: f below WIRE_FIELD_COUNT. */
static bool wire_has(const pk_record *rec, int f)
{
    if (f < PK_FIELD_COUNT)
        return pk_record_has_field(rec, (pk_field_id)f);
    return (rec->flags & extras[f - PK_FIELD_COUNT].needs) == extras[f - PK_FIELD_COUNT].needs;
}

static int wire_kind(int f)
{
    if (f >= PK_FIELD_COUNT)
        return extras[f - PK_FIELD_COUNT].kind;
    pk_field_kind kind = pk_field_desc_of((pk_field_id)f)->kind;
    return kind == PK_KIND_STRING ? KIND_STRING : kind == PK_KIND_TYPE ? KIND_TYPE : KIND_UINT;
}

static const char *wire_name(int f)
{
    return f < PK_FIELD_COUNT ? pk_field_name((pk_field_id)f) : extras[f - PK_FIELD_COUNT].name;
}

static uint64_t wire_uint(const pk_record *rec, int f)
{
    if (f < PK_FIELD_COUNT)
        return pk_record_uint(rec, (pk_field_id)f);
    uintptr_t v;
    memcpy(&v, (const char *)rec + extras[f - PK_FIELD_COUNT].offset, sizeof v);
    return v;
}

static void wire_set_uint(pk_record *rec, int f, uint64_t value)
{
    if (f < PK_FIELD_COUNT) {
        pk_record_set_uint(rec, (pk_field_id)f, value);
        return;
    }
    uintptr_t v = (uintptr_t)value;
    memcpy((char *)rec + extras[f - PK_FIELD_COUNT].offset, &v, sizeof v);
}

/* The local field of a name, or -1 (a field this pikoc does not know). */
static int wire_lookup(const char *name)
{
    for (int f = 0; f < WIRE_FIELD_COUNT; f++)
        if (strcmp(wire_name(f), name) == 0)
            return f;
    return -1;
}

/* ---- buffers --------------------------------------------------------------------- */

uint8_t *pk_wire_reserve(pk_wire_buf *b, size_t more)
{
    while (b->used + more > b->capacity)
        pk_grow(&b->bytes, &b->capacity, b->capacity, 1);
    return b->bytes + b->used;
}

void pk_wire_put_uvarint(pk_wire_buf *b, uint64_t v)
{
    uint8_t *p = pk_wire_reserve(b, 10);
    b->used = (size_t)(pk_put_uvarint(p, v) - b->bytes);
}

static void put_bytes(pk_wire_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return; /* data may be NULL: a buffer never written */
    memcpy(pk_wire_reserve(b, len), data, len);
    b->used += len;
}

void pk_wire_put_string(pk_wire_buf *b, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len > PK_WIRE_MAX_STRING) {
        /* longer strings are cut, never refused: before a character, not in one
         * (a UTF-8 character has at most 3 continuation bytes) */
        len = PK_WIRE_MAX_STRING;
        for (int back = 0; back < 3 && ((unsigned char)s[len] & 0xc0) == 0x80; back++)
            len--;
    }
    pk_wire_put_uvarint(b, len);
    put_bytes(b, s, len);
}

void pk_wire_put_header(pk_wire_buf *b, pk_wire_type type, uint64_t sender, uint64_t seq)
{
    uint8_t head[14];
    memcpy(head, PK_WIRE_MAGIC, 4);
    head[4] = PK_WIRE_VERSION;
    head[5] = (uint8_t)type;
    for (int i = 0; i < 8; i++)
        head[6 + i] = (uint8_t)(sender >> (8 * i));
    put_bytes(b, head, sizeof head);
    pk_wire_put_uvarint(b, seq);
}

void pk_wire_buf_free(pk_wire_buf *b)
{
    free(b->bytes);
    *b = (pk_wire_buf){0};
}

/* ---- encoder ---------------------------------------------------------------------- */

static size_t pointer_slot(const char *s, size_t slots)
{
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (slots - 1);
}

static void slots_grow(pk_wire_encoder *e)
{
    free(e->keys);
    free(e->ids);
    e->slots = e->slots ? e->slots * 2 : 1024;
    e->keys = pk_xcalloc(e->slots, sizeof *e->keys);
    e->ids = pk_xcalloc(e->slots, sizeof *e->ids);
    for (size_t id = 1; id < e->string_count; id++) {
        size_t i = pointer_slot(e->strings[id], e->slots);
        while (e->keys[i])
            i = (i + 1) & (e->slots - 1);
        e->keys[i] = e->strings[id];
        e->ids[i] = (uint32_t)id;
    }
}

void pk_wire_encoder_init(pk_wire_encoder *e, uint64_t sender)
{
    memset(e, 0, sizeof *e);
    e->sender = sender;
    e->next_seq = 1; /* seq 0 is the hello */
    pk_grow(&e->strings, &e->string_capacity, 0, sizeof *e->strings);
    e->strings[0] = "";
    e->string_count = 1;
    slots_grow(e);
    for (int f = 0; f < WIRE_FIELD_COUNT; f++) {
        e->field_kind[f] = (uint8_t)wire_kind(f);
        if (e->field_kind[f] == KIND_STRING)
            e->string_fields |= 1ull << f;
        if (e->field_kind[f] == KIND_STACK)
            e->stack_field = 1ull << f;
    }
    e->generation = 1;
    e->resolve_frame = pk_symbols_frame;
}

void pk_wire_encoder_free(pk_wire_encoder *e)
{
    free(e->keys);
    free(e->ids);
    free(e->strings);
    pk_block_map_free(&e->stacks);
    pk_wire_buf_free(&e->stack_table);
    pk_wire_buf_free(&e->defs);
    pk_wire_buf_free(&e->stack_defs);
    pk_wire_buf_free(&e->records);
}

void pk_wire_encoder_forget_strings(pk_wire_encoder *e)
{
    memset(e->keys, 0, e->slots * sizeof *e->keys);
    e->string_count = 1;
    e->defs.used = 0;
    e->def_count = 0;
    /* a stack's definition names strings: it goes again too, under the same id */
    e->generation++;
    e->stack_table.used = e->stack_defs.used = 0;
    e->stack_table_count = e->stack_def_count = 0;
}

/* The id of s, defined in this batch when new; inlined into the per-record loop. */
static inline __attribute__((always_inline)) uint32_t string_id(pk_wire_encoder *e, const char *s)
{
    if (!s || !*s)
        return 0;
    size_t i = pointer_slot(s, e->slots);
    for (; e->keys[i]; i = (i + 1) & (e->slots - 1))
        if (e->keys[i] == s)
            return e->ids[i];
    uint32_t id = (uint32_t)e->string_count;
    pk_grow(&e->strings, &e->string_capacity, e->string_count, sizeof *e->strings);
    e->strings[e->string_count++] = s;
    e->keys[i] = s;
    e->ids[i] = id;
    pk_wire_put_uvarint(&e->defs, id);
    pk_wire_put_string(&e->defs, s);
    e->def_count++;
    if (e->string_count * 2 > e->slots)
        slots_grow(e);
    return id;
}

/*
 * The id of the record's stack, defined in this batch when this generation
 * has not defined it yet: its frames resolved once, their names as strings.
 */
static uint64_t stack_id(pk_wire_encoder *e, const pk_record *rec)
{
    bool added;
    pk_block *known = pk_block_map_slot(&e->stacks, (uintptr_t)rec->stack, &added);
    if (added)
        known->a = ++e->stack_count;
    if (known->b == e->generation)
        return known->a;
    known->b = e->generation;
    uint64_t id = known->a;
    pk_wire_buf *d = &e->stack_defs;
    size_t start = d->used;
    pk_wire_put_uvarint(d, id);
    pk_wire_put_uvarint(d, rec->stack_depth);
    for (unsigned i = 0; i < rec->stack_depth; i++) {
        pk_symbol frame;
        e->resolve_frame(rec->stack[i], &frame, e->resolve_user);
        pk_wire_put_uvarint(d, string_id(e, frame.function));
        pk_wire_put_uvarint(d, string_id(e, frame.file));
        pk_wire_put_uvarint(d, frame.line);
    }
    put_bytes(&e->stack_table, d->bytes + start, d->used - start);
    e->stack_def_count++;
    e->stack_table_count++;
    return id;
}

bool pk_wire_mark_written(pk_wire_encoder *e, const pk_record *rec)
{
    if (rec != e->last || rec->index != e->last_index || e->record_count == 0)
        return false;
    e->records.bytes[e->last_head] |= PK_WIRE_WRITTEN;
    return true;
}

/* The fields a record with these flags carries; strings only when not empty (below). */
static uint64_t presence_of_flags(pk_wire_encoder *e, unsigned flags)
{
    if (flags == e->flags_cached && e->presence_cached)
        return e->presence_cached;
    pk_record probe = {.flags = flags};
    uint64_t presence = 0;
    for (int f = 0; f < WIRE_FIELD_COUNT; f++)
        if (wire_has(&probe, f))
            presence |= 1ull << f;
    e->flags_cached = flags;
    e->presence_cached = presence;
    return presence;
}

void pk_wire_encode_record(pk_wire_encoder *e, const pk_record *rec, unsigned what)
{
    uint64_t presence = presence_of_flags(e, rec->flags);
    /* an empty string is left out: a reader takes a missing string as "" */
    for (uint64_t strings = presence & e->string_fields; strings; strings &= strings - 1) {
        int f = __builtin_ctzll(strings);
        const char *text = pk_record_string(rec, (pk_field_id)f);
        if (!text[0])
            presence &= ~(1ull << f);
    }
    if (!rec->stack_depth)
        presence &= ~e->stack_field;
    unsigned head = what;
    bool first = e->record_count == 0;
    if (!first && presence == e->prev_presence)
        head |= PK_WIRE_SAME_PRESENCE;
    if (!first && rec->flags == e->prev_flags)
        head |= PK_WIRE_SAME_FLAGS;
    /* head, presence, flags, and at most 10 bytes a field */
    uint8_t *start = pk_wire_reserve(&e->records, 21 + 10 * WIRE_FIELD_COUNT);
    uint8_t *p = start;
    *p++ = (uint8_t)head;
    if (!(head & PK_WIRE_SAME_PRESENCE))
        p = pk_put_uvarint(p, presence);
    if (!(head & PK_WIRE_SAME_FLAGS))
        p = pk_put_uvarint(p, rec->flags);
    for (uint64_t left = presence; left; left &= left - 1) {
        int f = __builtin_ctzll(left);
        int kind = e->field_kind[f];
        if (kind == KIND_STRING) {
            /* a new string's definition goes to defs, not here: p stays valid */
            p = pk_put_uvarint(p, string_id(e, pk_record_string(rec, (pk_field_id)f)));
        } else if (kind == KIND_STACK) {
            p = pk_put_uvarint(p, stack_id(e, rec)); /* the same for a stack's */
        } else {
            uint64_t v = wire_uint(rec, f);
            p = kind == KIND_TYPE ? pk_put_uvarint(p, v) : pk_put_delta(p, v, e->prev[f]);
            e->prev[f] = v;
        }
    }
    e->last = rec;
    e->last_index = rec->index;
    e->last_head = (size_t)(start - e->records.bytes);
    e->records.used = (size_t)(p - e->records.bytes);
    e->prev_presence = presence;
    e->prev_flags = rec->flags;
    e->record_count++;
}

void pk_wire_finish_batch(pk_wire_encoder *e, pk_wire_buf *out)
{
    out->used = 0;
    pk_wire_put_header(out, PK_WIRE_BATCH, e->sender, e->next_seq++);
    pk_wire_put_uvarint(out, e->def_count);
    put_bytes(out, e->defs.bytes, e->defs.used);
    pk_wire_put_uvarint(out, e->stack_def_count);
    put_bytes(out, e->stack_defs.bytes, e->stack_defs.used);
    pk_wire_put_uvarint(out, e->record_count);
    put_bytes(out, e->records.bytes, e->records.used);
    e->defs.used = e->stack_defs.used = e->records.used = 0;
    e->def_count = e->stack_def_count = e->record_count = 0;
    memset(e->prev, 0, sizeof e->prev);
    e->last = NULL;
}

void pk_wire_encode_hello(const pk_wire_encoder *e, const pk_run_info *run, int ppid,
                          unsigned flags, uint64_t next_seq, pk_wire_buf *out)
{
    out->used = 0;
    pk_wire_put_header(out, PK_WIRE_HELLO, e->sender, 0);
    pk_wire_put_uvarint(out, flags);
    pk_wire_put_uvarint(out, next_seq);
    pk_wire_put_uvarint(out, PK_STORE_VERSION);
    pk_wire_put_string(out, run->host);
    pk_wire_put_uvarint(out, (uint64_t)run->pid);
    pk_wire_put_uvarint(out, (uint64_t)ppid);
    pk_wire_put_string(out, run->command_line);
    pk_wire_put_string(out, run->monitor);
    pk_wire_put_uvarint(out, run->flags);
    pk_wire_put_string(out, run->clock);
    pk_wire_put_uvarint(out, pk_clock_ns_per_tick_q32());
    pk_wire_put_string(out, run->alloc_source);
    pk_wire_put_uvarint(out, run->start_ns);
    pk_wire_put_uvarint(out, (uint64_t)run->start_wall_ns);
    pk_wire_put_uvarint(out, WIRE_FIELD_COUNT);
    for (int f = 0; f < WIRE_FIELD_COUNT; f++) {
        pk_wire_put_string(out, wire_name(f));
        pk_wire_put_uvarint(out, (uint64_t)wire_kind(f));
    }
    unsigned types = 0;
    for (unsigned t = 0; t < PK_WIRE_MAX_TYPES; t++)
        types += pk_event_type_name((pk_event_type)t) != NULL;
    pk_wire_put_uvarint(out, types);
    for (unsigned t = 0; t < PK_WIRE_MAX_TYPES; t++) {
        const char *name = pk_event_type_name((pk_event_type)t);
        if (name) {
            pk_wire_put_uvarint(out, t);
            pk_wire_put_string(out, name);
        }
    }
    /* every string sent so far: none in a first hello, all of them after a loss */
    pk_wire_put_uvarint(out, e->string_count - 1);
    for (size_t id = 1; id < e->string_count; id++) {
        pk_wire_put_uvarint(out, id);
        pk_wire_put_string(out, e->strings[id]);
    }
    pk_wire_put_uvarint(out, e->stack_table_count);
    put_bytes(out, e->stack_table.bytes, e->stack_table.used);
}

void pk_wire_encode_goodbye(pk_wire_encoder *e, const pk_wire_goodbye *g, pk_wire_buf *out)
{
    out->used = 0;
    pk_wire_put_header(out, PK_WIRE_GOODBYE, e->sender, e->next_seq++);
    const uint64_t values[] = {g->totals.events,     g->totals.calls,   g->totals.unmatched,
                               g->totals.unfinished, g->totals.dropped, g->totals.end_ns,
                               g->entries,           g->written,        g->dropped_entries,
                               g->batches,           g->peak_rss};
    for (size_t i = 0; i < PK_ARRAY_SIZE(values); i++)
        pk_wire_put_uvarint(out, values[i]);
    pk_wire_put_uvarint(out, g->thread_count);
    for (size_t i = 0; i < g->thread_count; i++) {
        pk_wire_put_uvarint(out, g->threads[i]);
        pk_wire_put_string(out, g->names[i]);
    }
    if (g->executed) /* absent otherwise: a goodbye is what it always was */
        pk_wire_put_uvarint(out, PK_WIRE_ENDING_EXECUTED);
}

void pk_wire_encode_exit(uint64_t sender, const pk_wire_exit *x, pk_wire_buf *out)
{
    out->used = 0;
    pk_wire_put_header(out, PK_WIRE_EXIT, sender, 1);
    pk_wire_put_string(out, x->host);
    pk_wire_put_uvarint(out, x->pid);
    pk_wire_put_uvarint(out, x->started_after_ns);
    pk_wire_put_string(out, x->status);
    pk_wire_put_uvarint(out, x->signal);
    pk_wire_put_uvarint(out, x->exit_status);
}

/* ---- decoding ----------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p, *end;
    pk_error *err;
    const char *what; /* "hello", "batch", ... for messages */
} reader;

static int truncated(reader *r)
{
    return pk_fail(r->err, "truncated %s", r->what);
}

static int get_uvarint(reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return truncated(r);
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            break;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return pk_fail(r->err, "%s: a number longer than 64 bits", r->what);
}

/* A number that must be below `limit`; `name` says which in the message. */
static int get_bounded(reader *r, const char *name, uint64_t limit, uint64_t *v)
{
    if (get_uvarint(r, v) != 0)
        return -1;
    if (*v >= limit)
        return pk_fail(r->err, "%s: %s %llu out of range (at most %llu)", r->what, name,
                       (unsigned long long)*v, (unsigned long long)(limit - 1));
    return 0;
}

/* A string, copied NUL-terminated into *out (malloc'd). */
static int get_string(reader *r, char **out)
{
    uint64_t len;
    if (get_bounded(r, "string length", PK_WIRE_MAX_STRING + 1, &len) != 0)
        return -1;
    if ((uint64_t)(r->end - r->p) < len)
        return truncated(r);
    if (memchr(r->p, '\0', len))
        return pk_fail(r->err, "%s: a string holds a NUL byte", r->what);
    char *s = pk_xcalloc(1, len + 1);
    memcpy(s, r->p, len);
    s[len] = '\0';
    r->p += len;
    *out = s;
    return 0;
}

int pk_wire_decode_header(const uint8_t *msg, size_t len, pk_wire_header *h, size_t *offset,
                          pk_error *err)
{
    unsigned limit = len > 5 && msg[5] == PK_WIRE_HELLO ? PK_WIRE_MAX_HELLO : PK_WIRE_MAX_MESSAGE;
    if (len > limit)
        return pk_fail(err, "oversized message (%zu bytes; at most %u)", len, limit);
    if (len < PK_WIRE_HEADER_MIN || memcmp(msg, PK_WIRE_MAGIC, 4) != 0)
        return pk_fail(err, "not a pikoc message (no PKOZ header)");
    if (msg[4] != PK_WIRE_VERSION)
        return pk_fail(err, "wire version %u is not supported (this pikoc speaks %u)", msg[4],
                       PK_WIRE_VERSION);
    if (msg[5] < PK_WIRE_HELLO || msg[5] > PK_WIRE_EXIT)
        return pk_fail(err, "unknown message type %u", msg[5]);
    h->version = msg[4];
    h->type = (pk_wire_type)msg[5];
    h->sender = 0;
    for (int i = 0; i < 8; i++)
        h->sender |= (uint64_t)msg[6 + i] << (8 * i);
    reader r = {msg + 14, msg + len, err, "header"};
    if (get_uvarint(&r, &h->seq) != 0)
        return -1;
    *offset = (size_t)(r.p - msg);
    return 0;
}

static void retire(pk_wire_peer *peer, char *s)
{
    if (!s)
        return;
    pk_grow(&peer->retired, &peer->retired_capacity, peer->retired_count, sizeof *peer->retired);
    peer->retired[peer->retired_count++] = s;
}

/* Defines string `id`; an id may be defined again (a resumed sender does). */
static void define_string(pk_wire_peer *peer, uint64_t id, char *s)
{
    if (id >= peer->string_count) {
        size_t n = peer->string_count ? peer->string_count : 64;
        while (n <= id)
            n *= 2;
        char **grown = realloc(peer->strings, n * sizeof *grown);
        if (!grown)
            abort();
        memset(grown + peer->string_count, 0, (n - peer->string_count) * sizeof *grown);
        peer->strings = grown;
        peer->string_count = n;
    }
    if (peer->strings[id] && strcmp(peer->strings[id], s) == 0) {
        free(s);
        return;
    }
    retire(peer, peer->strings[id]);
    peer->strings[id] = s;
}

/* Reads `count` definitions (id, string); ids start at 1 and stay below 2^32. */
static int get_definitions(reader *r, pk_wire_peer *peer)
{
    uint64_t count;
    if (get_bounded(r, "string count", (uint64_t)(r->end - r->p) + 1, &count) != 0)
        return -1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t id;
        char *s;
        if (get_bounded(r, "string id", (uint64_t)1 << 24, &id) != 0)
            return -1;
        if (id == 0)
            return pk_fail(r->err, "%s: string id 0 is reserved for \"\"", r->what);
        if (get_string(r, &s) != 0)
            return -1;
        define_string(peer, id, s);
    }
    return 0;
}

/* The text of string id v (0 is ""), or NULL (err says why) when it is not defined. */
static inline const char *string_at(reader *r, const pk_wire_peer *peer, uint64_t v)
{
    if (v >= peer->string_count || (v != 0 && !peer->strings[v])) {
        pk_fail(r->err, "%s: undefined string id %llu", r->what, (unsigned long long)v);
        return NULL;
    }
    return v ? peer->strings[v] : "";
}

/* Whether stack id is defined with these frames (compared by text). */
static bool stack_is(const pk_wire_peer *peer, uint64_t id, const pk_symbol *frames, unsigned depth)
{
    const struct pk_wire_stack *st = &peer->stacks[id];
    if (st->depth != depth)
        return false;
    for (unsigned i = 0; i < depth; i++) {
        const pk_symbol *known = &peer->frames[st->frames[i]];
        if (known->line != frames[i].line || strcmp(known->function, frames[i].function) != 0 ||
            strcmp(known->file, frames[i].file) != 0)
            return false;
    }
    return true;
}

static bool stack_defined(const pk_wire_peer *peer, uint64_t id)
{
    return id < peer->stack_count && peer->stacks[id].depth > 0;
}

/* Defines stack id as the `depth` frames from peer->frames[first] on. */
static void add_stack(pk_wire_peer *peer, uint64_t id, size_t first, unsigned depth)
{
    if (id >= peer->stack_count) {
        size_t n = peer->stack_count ? peer->stack_count : 16;
        while (n <= id)
            n *= 2;
        struct pk_wire_stack *grown = realloc(peer->stacks, n * sizeof *grown);
        if (!grown)
            abort();
        memset(grown + peer->stack_count, 0, (n - peer->stack_count) * sizeof *grown);
        peer->stacks = grown;
        peer->stack_count = n;
    }
    struct pk_wire_stack *st = &peer->stacks[id];
    st->frames = pk_xcalloc(depth, sizeof *st->frames);
    st->depth = depth;
    for (unsigned i = 0; i < depth; i++)
        st->frames[i] = first + i;
}

/*
 * Reads stack definitions (id, frame count, frames). A stack defined again
 * (after a resume or a drop) must have the same frames: records already
 * stored point to them.
 */
static int get_stacks(reader *r, pk_wire_peer *peer)
{
    uint64_t count;
    if (get_bounded(r, "stack count", (uint64_t)(r->end - r->p) + 1, &count) != 0)
        return -1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t id, depth;
        if (get_bounded(r, "stack id", (uint64_t)1 << 24, &id) != 0 ||
            get_bounded(r, "frame count", PK_STACK_MAX + 1, &depth) != 0)
            return -1;
        if (id == 0)
            return pk_fail(r->err, "%s: stack id 0 is reserved for none", r->what);
        if (depth == 0)
            return pk_fail(r->err, "%s: stack %llu has no frames", r->what, (unsigned long long)id);
        size_t first = peer->frame_count;
        for (unsigned k = 0; k < depth; k++) {
            pk_grow(&peer->frames, &peer->frame_capacity, peer->frame_count, sizeof *peer->frames);
            pk_symbol *frame = &peer->frames[peer->frame_count++];
            uint64_t function, file, line;
            if (get_uvarint(r, &function) != 0 ||
                !(frame->function = string_at(r, peer, function)) || get_uvarint(r, &file) != 0 ||
                !(frame->file = string_at(r, peer, file)) ||
                get_bounded(r, "line", (uint64_t)1 << 31, &line) != 0) {
                peer->frame_count = first;
                return -1;
            }
            frame->line = (unsigned)line;
        }
        if (!stack_defined(peer, id)) {
            add_stack(peer, id, first, (unsigned)depth);
            continue;
        }
        bool same = stack_is(peer, id, &peer->frames[first], (unsigned)depth);
        peer->frame_count = first;
        if (!same)
            return pk_fail(r->err, "%s: stack %llu defined again with other frames", r->what,
                           (unsigned long long)id);
    }
    return 0;
}

static int get_fields(reader *r, pk_wire_peer *peer)
{
    uint64_t count;
    if (get_bounded(r, "field count", PK_WIRE_MAX_FIELDS + 1, &count) != 0)
        return -1;
    peer->field_count = (size_t)count;
    for (size_t i = 0; i < count; i++) {
        char *name;
        uint64_t kind;
        if (get_string(r, &name) != 0)
            return -1;
        if (get_bounded(r, "field kind", 4, &kind) != 0) {
            free(name);
            return -1;
        }
        int local = wire_lookup(name);
        peer->field_kind[i] = (uint8_t)kind;
        peer->field_map[i] = local;
        if (local >= 0 && wire_kind(local) != (int)kind) {
            pk_fail(r->err, "hello: field '%s' has kind %u, expected %d", name, (unsigned)kind,
                    wire_kind(local));
            free(name);
            return -1;
        }
        free(name);
    }
    return 0;
}

static int get_types(reader *r, pk_wire_peer *peer)
{
    uint64_t count;
    for (size_t t = 0; t < PK_WIRE_MAX_TYPES; t++)
        peer->type_map[t] = PK_WIRE_TYPE_UNNAMED;
    if (get_bounded(r, "event type count", PK_WIRE_MAX_TYPES + 1, &count) != 0)
        return -1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t value;
        char *name;
        if (get_bounded(r, "event type", PK_WIRE_MAX_TYPES, &value) != 0 ||
            get_string(r, &name) != 0)
            return -1;
        peer->type_map[value] = PK_WIRE_TYPE_UNKNOWN_HERE;
        for (unsigned t = 0; t < PK_WIRE_MAX_TYPES; t++) {
            const char *known = pk_event_type_name((pk_event_type)t);
            if (known && strcmp(known, name) == 0)
                peer->type_map[value] = (int)t;
        }
        free(name);
    }
    return 0;
}

/* The hello's own strings live in one block, freed with the peer. */
static const char *keep(pk_wire_peer *peer, char *s)
{
    retire(peer, s);
    return s;
}

int pk_wire_decode_hello(const uint8_t *msg, size_t len, size_t offset, pk_wire_peer *peer,
                         pk_error *err)
{
    memset(peer, 0, sizeof *peer);
    reader r = {msg + offset, msg + len, err, "hello"};
    uint64_t flags, pid, ppid, run_flags, wall;
    char *host = NULL, *command = NULL, *monitor = NULL, *clock = NULL, *alloc = NULL;
    int rc = -1;
    if (get_bounded(&r, "flags", 4, &flags) != 0 || get_uvarint(&r, &peer->next_seq) != 0 ||
        get_uvarint(&r, &peer->schema_version) != 0)
        goto out;
    if (get_string(&r, &host) != 0 || get_bounded(&r, "pid", (uint64_t)1 << 31, &pid) != 0 ||
        get_bounded(&r, "parent pid", (uint64_t)1 << 31, &ppid) != 0 ||
        get_string(&r, &command) != 0 || get_string(&r, &monitor) != 0 ||
        get_bounded(&r, "record flags", (uint64_t)1 << 31, &run_flags) != 0 ||
        get_string(&r, &clock) != 0 || get_uvarint(&r, &peer->ns_per_tick_q32) != 0 ||
        get_string(&r, &alloc) != 0 || get_uvarint(&r, &peer->run.start_ns) != 0 ||
        get_uvarint(&r, &wall) != 0)
        goto out;
    peer->flags = (unsigned)flags;
    peer->ppid = (int)ppid;
    peer->run = (pk_run_info){
        .host = keep(peer, host),
        .pid = (int)pid,
        .command_line = keep(peer, command),
        .monitor = keep(peer, monitor),
        .flags = (unsigned)run_flags,
        .clock = keep(peer, clock),
        .alloc_source = keep(peer, alloc),
        .start_ns = peer->run.start_ns,
        .start_wall_ns = (int64_t)wall,
    };
    host = command = monitor = clock = alloc = NULL;
    /* what a record is before its fields: every string "" (never NULL) */
    for (int f = 0; f < PK_FIELD_COUNT; f++)
        if (pk_field_desc_of((pk_field_id)f)->kind == PK_KIND_STRING)
            pk_record_set_string(&peer->blank, (pk_field_id)f, "");
    if (get_fields(&r, peer) != 0 || get_types(&r, peer) != 0 || get_definitions(&r, peer) != 0 ||
        get_stacks(&r, peer) != 0)
        goto out;
    if (r.p != r.end) {
        pk_fail(err, "hello: %zu bytes after its end", (size_t)(r.end - r.p));
        goto out;
    }
    rc = 0;
out:
    free(host);
    free(command);
    free(monitor);
    free(clock);
    free(alloc);
    if (rc != 0)
        pk_wire_peer_free(peer);
    return rc;
}

int pk_wire_merge_hello(pk_wire_peer *peer, const pk_wire_peer *again)
{
    for (size_t id = 1; id < again->string_count; id++)
        if (again->strings[id])
            define_string(peer, id, pk_xstrdup(again->strings[id]));
    /* stacks it already has stay as they are: records stored point to them */
    for (size_t id = 1; id < again->stack_count; id++) {
        const struct pk_wire_stack *st = &again->stacks[id];
        if (!st->depth || stack_defined(peer, id))
            continue;
        size_t first = peer->frame_count;
        for (unsigned i = 0; i < st->depth; i++) {
            const pk_symbol *frame = &again->frames[st->frames[i]];
            pk_grow(&peer->frames, &peer->frame_capacity, peer->frame_count, sizeof *peer->frames);
            peer->frames[peer->frame_count++] = (pk_symbol){
                .function = keep(peer, pk_xstrdup(frame->function)),
                .file = keep(peer, pk_xstrdup(frame->file)),
                .line = frame->line,
            };
        }
        add_stack(peer, id, first, st->depth);
    }
    peer->next_seq = again->next_seq;
    return 0;
}

void pk_wire_peer_free(pk_wire_peer *peer)
{
    for (size_t i = 0; i < peer->string_count; i++)
        free(peer->strings[i]);
    for (size_t i = 0; i < peer->retired_count; i++)
        free(peer->retired[i]);
    for (size_t i = 0; i < peer->stack_count; i++)
        free(peer->stacks[i].frames);
    free(peer->strings);
    free(peer->retired);
    free(peer->frames);
    free(peer->stacks);
    memset(peer, 0, sizeof *peer);
}

void pk_wire_peer_frame(uintptr_t frame, pk_symbol *out, void *user)
{
    const pk_wire_peer *peer = user;
    *out = peer->frames[frame];
}

static int get_record(reader *r, const pk_wire_peer *peer, pk_record *rec, unsigned *head_out,
                      uint64_t *prev, uint64_t *presence, unsigned *flags, bool first)
{
    if (r->p >= r->end)
        return truncated(r);
    unsigned head = *r->p++;
    unsigned given = head;
    if (head & ~0x0fu)
        return pk_fail(r->err, "batch: record head 0x%02x has unknown bits", head);
    if (!(head & (PK_WIRE_OBSERVED | PK_WIRE_WRITTEN)))
        return pk_fail(r->err, "batch: a record neither observed nor written");
    if ((head & (PK_WIRE_SAME_PRESENCE | PK_WIRE_SAME_FLAGS)) && first)
        return pk_fail(r->err, "batch: the first record refers to a previous one");
    if (!(head & PK_WIRE_SAME_PRESENCE)) {
        uint64_t limit = peer->field_count == 64 ? UINT64_MAX : (1ull << peer->field_count);
        if (get_bounded(r, "presence bits", limit, presence) != 0)
            return -1;
    }
    if (!(head & PK_WIRE_SAME_FLAGS)) {
        uint64_t v;
        if (get_bounded(r, "record flags", (uint64_t)1 << 31, &v) != 0)
            return -1;
        *flags = (unsigned)v;
    }
    *rec = peer->blank;
    rec->flags = *flags;
    for (uint64_t left = *presence; left; left &= left - 1) {
        int i = __builtin_ctzll(left);
        uint64_t v;
        int local = peer->field_map[i];
        switch (peer->field_kind[i]) {
        case KIND_STRING: {
            const char *text;
            if (get_uvarint(r, &v) != 0 || !(text = string_at(r, peer, v)))
                return -1;
            if (local >= 0)
                pk_record_set_string(rec, (pk_field_id)local, text);
            break;
        }
        case KIND_STACK:
            if (get_uvarint(r, &v) != 0)
                return -1;
            if (!stack_defined(peer, v))
                return pk_fail(r->err, "batch: undefined stack id %llu", (unsigned long long)v);
            if (local >= 0) {
                rec->stack = peer->stacks[v].frames;
                rec->stack_depth = peer->stacks[v].depth;
            }
            break;
        case KIND_TYPE:
            if (get_bounded(r, "event type", PK_WIRE_MAX_TYPES, &v) != 0)
                return -1;
            if (peer->type_map[v] == PK_WIRE_TYPE_UNNAMED)
                return pk_fail(r->err, "batch: event type %llu was not named in the hello",
                               (unsigned long long)v);
            if (peer->type_map[v] == PK_WIRE_TYPE_UNKNOWN_HERE)
                head = 0; /* decoded, then skipped: this pikoc cannot store it */
            else if (local >= 0)
                pk_record_set_uint(rec, (pk_field_id)local, (uint64_t)peer->type_map[v]);
            break;
        default:
            if (get_uvarint(r, &v) != 0)
                return -1;
            prev[i] += (v >> 1) ^ (uint64_t) - (int64_t)(v & 1);
            if (local >= 0)
                wire_set_uint(rec, local, prev[i]);
            break;
        }
    }
    *head_out = head ? given : 0;
    return 0;
}

int pk_wire_decode_batch(pk_wire_peer *peer, const uint8_t *msg, size_t len, size_t offset,
                         pk_wire_batch *out, pk_error *err)
{
    reader r = {msg + offset, msg + len, err, "batch"};
    out->count = 0;
    if (get_definitions(&r, peer) != 0 || get_stacks(&r, peer) != 0)
        return -1;
    uint64_t count;
    /* every record takes at least one byte */
    if (get_bounded(&r, "record count", (uint64_t)(r.end - r.p) + 1, &count) != 0)
        return -1;
    uint64_t prev[PK_WIRE_MAX_FIELDS] = {0};
    uint64_t presence = 0;
    unsigned flags = 0;
    for (size_t i = 0; i < count; i++) {
        /* grown as records decode: a lying count cannot make us allocate */
        pk_grow(&out->entries, &out->capacity, i, sizeof *out->entries);
        pk_wire_entry *e = &out->entries[i];
        if (get_record(&r, peer, &e->record, &e->head, prev, &presence, &flags, i == 0) != 0)
            return -1;
    }
    if (r.p != r.end)
        return pk_fail(err, "batch: %zu bytes after its last record", (size_t)(r.end - r.p));
    out->count = (size_t)count;
    return 0;
}

void pk_wire_batch_free(pk_wire_batch *b)
{
    free(b->entries);
    *b = (pk_wire_batch){0};
}

int pk_wire_decode_goodbye(const uint8_t *msg, size_t len, size_t offset, pk_wire_goodbye *g,
                           pk_error *err)
{
    reader r = {msg + offset, msg + len, err, "goodbye"};
    uint64_t *const values[] = {&g->totals.events,     &g->totals.calls,   &g->totals.unmatched,
                                &g->totals.unfinished, &g->totals.dropped, &g->totals.end_ns,
                                &g->entries,           &g->written,        &g->dropped_entries,
                                &g->batches,           &g->peak_rss};
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < PK_ARRAY_SIZE(values); i++)
        if (get_uvarint(&r, values[i]) != 0)
            return -1;
    uint64_t count;
    /* each thread takes two bytes at least */
    if (get_bounded(&r, "thread count", (uint64_t)(r.end - r.p) / 2 + 1, &count) != 0)
        return -1;
    g->threads = pk_xcalloc(count + 1, sizeof *g->threads);
    g->names = pk_xcalloc(count + 1, sizeof *g->names);
    for (; g->thread_count < count; g->thread_count++) {
        char *name;
        if (get_uvarint(&r, &g->threads[g->thread_count]) != 0 || get_string(&r, &name) != 0) {
            pk_wire_goodbye_free(g);
            return -1;
        }
        snprintf(g->names[g->thread_count], sizeof g->names[0], "%s", name);
        free(name);
    }
    if (r.p != r.end) {
        uint64_t ending;
        if (get_uvarint(&r, &ending) != 0) {
            pk_wire_goodbye_free(g);
            return -1;
        }
        if (ending != PK_WIRE_ENDING_EXECUTED) {
            pk_wire_goodbye_free(g);
            return pk_fail(err, "goodbye: unknown ending %llu (known: %d, executed)",
                           (unsigned long long)ending, PK_WIRE_ENDING_EXECUTED);
        }
        g->executed = true;
    }
    if (r.p != r.end) {
        pk_wire_goodbye_free(g);
        return pk_fail(err, "goodbye: %zu bytes after its end", (size_t)(r.end - r.p));
    }
    return 0;
}

void pk_wire_goodbye_free(pk_wire_goodbye *g)
{
    free(g->threads);
    free(g->names);
    g->threads = NULL;
    g->names = NULL;
    g->thread_count = 0;
}

int pk_wire_decode_exit(const uint8_t *msg, size_t len, size_t offset, pk_wire_exit *x,
                        pk_error *err)
{
    static const char *const statuses[] = {"crashed", "killed", "incomplete"};
    reader r = {msg + offset, msg + len, err, "exit"};
    char *host = NULL, *status = NULL;
    memset(x, 0, sizeof *x);
    int rc = get_string(&r, &host);
    x->host = host;
    if (rc != 0 || get_bounded(&r, "pid", (uint64_t)INT32_MAX + 1, &x->pid) != 0 ||
        get_uvarint(&r, &x->started_after_ns) != 0 || get_string(&r, &status) != 0)
        goto fail;
    x->status = status;
    bool known = false;
    for (size_t i = 0; i < PK_ARRAY_SIZE(statuses); i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known) {
        pk_fail(err, "exit: status '%s' is none of crashed, killed, incomplete", status);
        goto fail;
    }
    if (get_bounded(&r, "signal", 65, &x->signal) != 0 ||
        get_bounded(&r, "exit status", 256, &x->exit_status) != 0)
        goto fail;
    if (r.p != r.end) {
        pk_fail(err, "exit: %zu bytes after its end", (size_t)(r.end - r.p));
        goto fail;
    }
    return 0;
fail:
    pk_wire_exit_free(x);
    return -1;
}

void pk_wire_exit_free(pk_wire_exit *x)
{
    free((char *)x->host);
    free((char *)x->status);
    x->host = x->status = NULL;
}
