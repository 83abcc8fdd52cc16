/*
 * test_wire.c — the wire codec (src/wire.c): records round-trip field by
 * field through the field table, a write after its observe shares one
 * entry, strings and allocation stacks are defined once per connection, a
 * newer sender's extra fields and event types are skipped, a launcher's exit
 * message round-trips, and every bad message fails with its exact one-line
 * reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "wire_samples.h"

typedef struct fixture {
    pk_wire_buf hello, batch, stacks, goodbye;
    pk_wire_peer peer;
    pk_wire_batch decoded;
    pk_record recs[SAMPLE_RECORDS];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sample_messages(&f->hello, &f->batch, &f->stacks, &f->goodbye);
    sample_records(f->recs);
    pk_wire_header h;
    size_t offset;
    if (pk_wire_decode_header(f->hello.bytes, f->hello.used, &h, &offset, NULL) != 0 ||
        pk_wire_decode_hello(f->hello.bytes, f->hello.used, offset, &f->peer, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pk_wire_buf_free(&f->hello);
    pk_wire_buf_free(&f->batch);
    pk_wire_buf_free(&f->stacks);
    pk_wire_buf_free(&f->goodbye);
    pk_wire_peer_free(&f->peer);
    pk_wire_batch_free(&f->decoded);
    free(f);
    return 0;
}

static void assert_same_record(const pk_record *got, const pk_record *want)
{
    for (int field = 0; field < PK_FIELD_COUNT; field++) {
        char a[128], b[128];
        pk_record_format_field(got, (pk_field_id)field, a, sizeof a);
        pk_record_format_field(want, (pk_field_id)field, b, sizeof b);
        assert_string_equal(a, b);
    }
    assert_int_equal(got->flags, want->flags);
}

/* Decodes a message's header and body into f; returns the body decoder's status. */
static int decode(fixture *f, const pk_wire_buf *m, pk_error *err)
{
    pk_wire_header h;
    size_t offset;
    if (pk_wire_decode_header(m->bytes, m->used, &h, &offset, err) != 0)
        return -1;
    if (h.type == PK_WIRE_BATCH)
        return pk_wire_decode_batch(&f->peer, m->bytes, m->used, offset, &f->decoded, err);
    pk_wire_goodbye g;
    int rc = pk_wire_decode_goodbye(m->bytes, m->used, offset, &g, err);
    if (rc == 0)
        pk_wire_goodbye_free(&g);
    return rc;
}

static void hello_carries_identity(void **state)
{
    fixture *f = *state;
    const pk_wire_peer *p = &f->peer;
    assert_string_equal(p->run.host, "box");
    assert_int_equal(p->run.pid, 4242);
    assert_int_equal(p->ppid, 4241);
    assert_string_equal(p->run.command_line, "./app --fast");
    assert_string_equal(p->run.monitor, "function-memory");
    assert_string_equal(p->run.clock, "tsc");
    assert_string_equal(p->run.alloc_source, "jemalloc");
    assert_int_equal(p->run.flags, PK_RECORD_MEMORY);
    assert_int_equal(p->run.start_ns, 1000);
    assert_int_equal(p->run.start_wall_ns, 1700000000000000000);
    assert_int_equal(p->schema_version, PK_STORE_VERSION);
    assert_int_equal(p->next_seq, 1);
    assert_int_equal(p->field_count, PK_FIELD_COUNT + 2); /* and call_site, stack */
    for (int i = 0; i < PK_FIELD_COUNT; i++)
        assert_int_equal(p->field_map[i], i);
    for (int t = 0; t < PK_WIRE_MAX_TYPES; t++)
        if (pk_event_type_name((pk_event_type)t))
            assert_int_equal(p->type_map[t], t);
}

static void batch_round_trips_every_field(void **state)
{
    fixture *f = *state;
    pk_wire_header h;
    size_t offset;
    assert_int_equal(pk_wire_decode_header(f->batch.bytes, f->batch.used, &h, &offset, NULL), 0);
    assert_int_equal(h.type, PK_WIRE_BATCH);
    assert_true(h.sender == SAMPLE_SENDER);
    assert_int_equal(h.seq, 1);
    assert_int_equal(decode(f, &f->batch, NULL), 0);
    /* eight observed records, all but record 2 written in the same entry, then record 2 */
    assert_int_equal(f->decoded.count, 9);
    for (int i = 0; i < SAMPLE_RECORDS; i++) {
        unsigned want = PK_WIRE_OBSERVED | (i == 2 ? 0 : PK_WIRE_WRITTEN);
        assert_int_equal(f->decoded.entries[i].head & 3, want);
        assert_same_record(&f->decoded.entries[i].record, &f->recs[i]);
    }
    assert_int_equal(f->decoded.entries[8].head & 3, PK_WIRE_WRITTEN);
    assert_same_record(&f->decoded.entries[8].record, &f->recs[2]);
}

static void goodbye_round_trips(void **state)
{
    fixture *f = *state;
    pk_wire_header h;
    size_t offset;
    pk_wire_goodbye g;
    assert_int_equal(pk_wire_decode_header(f->goodbye.bytes, f->goodbye.used, &h, &offset, NULL),
                     0);
    assert_int_equal(h.seq, 3);
    assert_int_equal(pk_wire_decode_goodbye(f->goodbye.bytes, f->goodbye.used, offset, &g, NULL),
                     0);
    assert_int_equal(g.totals.events, 11);
    assert_int_equal(g.totals.calls, 4);
    assert_int_equal(g.totals.end_ns, 1002);
    assert_int_equal(g.entries, 12);
    assert_int_equal(g.written, 11);
    assert_int_equal(g.batches, 2);
    assert_int_equal(g.peak_rss, 1 << 20);
    assert_int_equal(g.thread_count, 1);
    assert_int_equal(g.threads[0], 77);
    assert_string_equal(g.names[0], "worker");
    assert_false(g.executed);
    pk_wire_goodbye_free(&g);
}

/* A run whose process executed another program says so after the threads, and only then. */
static void executed_goodbye_round_trips(void **state)
{
    (void)state;
    pk_wire_encoder e;
    pk_wire_encoder_init(&e, SAMPLE_SENDER);
    uint64_t threads[] = {77};
    char names[][16] = {"worker"};
    pk_wire_goodbye sent = {.totals = {.events = 3},
                            .thread_count = 1,
                            .threads = threads,
                            .names = names,
                            .executed = true};
    pk_wire_buf m = {0};
    pk_wire_encode_goodbye(&e, &sent, &m);
    sent.executed = false;
    pk_wire_buf plain = {0};
    pk_wire_encode_goodbye(&e, &sent, &plain);
    assert_int_equal(m.used, plain.used + 1);
    assert_int_equal(m.bytes[m.used - 1], PK_WIRE_ENDING_EXECUTED);
    pk_wire_header h;
    size_t offset;
    pk_wire_goodbye g;
    assert_int_equal(pk_wire_decode_header(m.bytes, m.used, &h, &offset, NULL), 0);
    assert_int_equal(pk_wire_decode_goodbye(m.bytes, m.used, offset, &g, NULL), 0);
    assert_true(g.executed);
    assert_int_equal(g.totals.events, 3);
    assert_int_equal(g.thread_count, 1);
    assert_string_equal(g.names[0], "worker");
    pk_wire_goodbye_free(&g);
    /* an ending after the ending is one byte too many */
    *pk_wire_reserve(&m, 1) = PK_WIRE_ENDING_EXECUTED;
    m.used++;
    pk_error err;
    assert_int_equal(pk_wire_decode_goodbye(m.bytes, m.used, offset, &g, &err), -1);
    assert_string_equal(err.message, "goodbye: 1 bytes after its end");
    pk_wire_buf_free(&m);
    pk_wire_buf_free(&plain);
    pk_wire_encoder_free(&e);
}

/*
 * A string over PK_WIRE_MAX_STRING bytes is cut at the last whole UTF-8
 * character within them: its length as sent, for a string of `ascii`
 * bytes of 'x' and then `tail`.
 */
static size_t sent_length(size_t ascii, const char *tail)
{
    char *s = malloc(ascii + strlen(tail) + 1);
    memset(s, 'x', ascii);
    strcpy(s + ascii, tail);
    pk_wire_buf b = {0};
    pk_wire_put_string(&b, s);
    /* the length's uvarint: 2 bytes for 128 to 16383 */
    size_t length = (size_t)(b.bytes[0] & 0x7f) | (size_t)b.bytes[1] << 7;
    assert_int_equal(b.used, 2 + length);
    assert_memory_equal(b.bytes + 2, s, length);
    pk_wire_buf_free(&b);
    free(s);
    return length;
}

static void long_strings_are_cut_between_characters(void **state)
{
    (void)state;
    assert_int_equal(sent_length(5000, ""), 4096);
    assert_int_equal(sent_length(4094, "\xc3\xa9\xc3\xa9"), 4096);  /* é ends at 4096 */
    assert_int_equal(sent_length(4095, "\xc3\xa9\xc3\xa9"), 4095);  /* é would be cut */
    assert_int_equal(sent_length(4094, "\xe2\x82\xac"), 4094);      /* € would be cut */
    assert_int_equal(sent_length(4093, "\xf0\x9f\x98\x80x"), 4093); /* an emoji would be */
    assert_int_equal(sent_length(4092, "\xf0\x9f\x98\x80x"), 4096); /* it ends at 4096 */
}

/* pikoc run's report of how its program ended, encoded and decoded. */
static void exit_round_trips(void **state)
{
    (void)state;
    pk_wire_buf m = {0};
    pk_wire_encode_exit(SAMPLE_SENDER, &sample_exit, &m);
    pk_wire_header h;
    size_t offset;
    pk_wire_exit x;
    assert_int_equal(pk_wire_decode_header(m.bytes, m.used, &h, &offset, NULL), 0);
    assert_int_equal(h.type, PK_WIRE_EXIT);
    assert_true(h.sender == SAMPLE_SENDER);
    assert_int_equal(h.seq, 1);
    assert_int_equal(pk_wire_decode_exit(m.bytes, m.used, offset, &x, NULL), 0);
    assert_string_equal(x.host, "box");
    assert_int_equal(x.pid, 4242);
    assert_int_equal(x.started_after_ns, 1700000000000000000);
    assert_string_equal(x.status, "killed");
    assert_int_equal(x.signal, 9);
    assert_int_equal(x.exit_status, 0);
    pk_wire_exit_free(&x);
    pk_wire_buf_free(&m);
}

/* The exit decoder's error for an exit message made of x. */
static const char *broken_exit(const pk_wire_exit *x, void (*damage)(pk_wire_buf *))
{
    static pk_error err;
    pk_wire_buf m = {0};
    pk_wire_encode_exit(SAMPLE_SENDER, x, &m);
    if (damage)
        damage(&m);
    pk_wire_header h;
    size_t offset;
    pk_wire_exit decoded;
    err.message[0] = '\0';
    if (pk_wire_decode_header(m.bytes, m.used, &h, &offset, &err) == 0 &&
        pk_wire_decode_exit(m.bytes, m.used, offset, &decoded, &err) == 0)
        pk_wire_exit_free(&decoded);
    pk_wire_buf_free(&m);
    return err.message;
}

/* A second batch refers to the strings of the first without defining them again. */
static void strings_are_defined_once(void **state)
{
    fixture *f = *state;
    pk_wire_encoder e;
    pk_wire_buf first = {0}, second = {0};
    pk_wire_encoder_init(&e, SAMPLE_SENDER);
    sample_batch(&e, f->recs, &first);
    sample_batch(&e, f->recs, &second);
    assert_true(second.used < first.used);
    /* main, work, leaf, app.c: four definitions, then none */
    assert_int_equal(first.bytes[15], 4);
    assert_int_equal(second.bytes[15], 0);
    assert_int_equal(decode(f, &first, NULL), 0);
    assert_int_equal(decode(f, &second, NULL), 0);
    assert_same_record(&f->decoded.entries[3].record, &f->recs[3]);
    /* a lossy sender that dropped a batch defines them again */
    pk_wire_encoder_forget_strings(&e);
    sample_batch(&e, f->recs, &second);
    assert_int_equal(second.bytes[15], 4);
    pk_wire_buf_free(&first);
    pk_wire_buf_free(&second);
    pk_wire_encoder_free(&e);
}

/* "function:file:line < ..." of a decoded record's stack, innermost first. */
static const char *stack_text(const pk_wire_peer *peer, const pk_record *rec)
{
    static char text[256];
    size_t used = 0;
    text[0] = '\0';
    for (unsigned i = 0; i < rec->stack_depth; i++) {
        pk_symbol frame;
        pk_wire_peer_frame(rec->stack[i], &frame, (void *)peer);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%s:%s:%u", i ? " < " : "",
                                 frame.function, frame.file, frame.line);
    }
    return text;
}

/* Each stack's frames travel once, resolved by the sender; records name it by id. */
static void stacks_round_trip(void **state)
{
    fixture *f = *state;
    pk_record allocations[SAMPLE_ALLOCATIONS];
    sample_allocations(allocations);
    assert_int_equal(decode(f, &f->batch, NULL), 0);
    assert_int_equal(decode(f, &f->stacks, NULL), 0);
    assert_int_equal(f->decoded.count, SAMPLE_ALLOCATIONS);
    const pk_wire_entry *e = f->decoded.entries;
    for (int i = 0; i < SAMPLE_ALLOCATIONS; i++) {
        assert_int_equal(e[i].head & 3, PK_WIRE_OBSERVED | PK_WIRE_WRITTEN);
        assert_same_record(&e[i].record, &allocations[i]);
        assert_true(e[i].record.call_site == 1);
        assert_int_equal(e[i].record.stack_depth, 3);
    }
    /* one stack, one pointer: the store keys its stacks by it */
    assert_ptr_equal(e[0].record.stack, e[1].record.stack);
    assert_ptr_not_equal(e[0].record.stack, e[2].record.stack);
    assert_string_equal(stack_text(&f->peer, &e[0].record),
                        "b:stacks.c:15 < a:stacks.c:22 < main:stacks.c:39");
    assert_string_equal(stack_text(&f->peer, &e[2].record),
                        "b:stacks.c:15 < c:stacks.c:29 < main:stacks.c:39");
}

/*
 * A stack is defined in the first batch that uses it, then only named; a
 * lossy sender that dropped a batch defines it again under the same id,
 * which the collector takes as the same stack; a hello carries them all.
 */
static void stacks_are_defined_once(void **state)
{
    fixture *f = *state;
    pk_record allocations[SAMPLE_ALLOCATIONS];
    sample_allocations(allocations);
    pk_wire_encoder e;
    pk_wire_buf first = {0}, second = {0}, again = {0}, hello = {0};
    pk_wire_encoder_init(&e, SAMPLE_SENDER);
    e.resolve_frame = sample_resolve;
    sample_allocation_batch(&e, allocations, &first);
    sample_allocation_batch(&e, allocations, &second);
    pk_wire_encoder_forget_strings(&e);
    sample_allocation_batch(&e, allocations, &again);
    pk_wire_encode_hello(&e, &sample_run, 4241, 0, e.next_seq, &hello);
    assert_true(second.used < first.used);
    assert_int_equal(again.used, first.used);
    /* the second batch defines no string (byte 15) and no stack (byte 16) */
    assert_int_equal(second.bytes[15], 0);
    assert_int_equal(second.bytes[16], 0);
    assert_int_equal(decode(f, &first, NULL), 0);
    const uintptr_t *stack_a = f->decoded.entries[0].record.stack;
    assert_int_equal(decode(f, &second, NULL), 0);
    assert_ptr_equal(f->decoded.entries[0].record.stack, stack_a);
    assert_int_equal(decode(f, &again, NULL), 0);
    assert_ptr_equal(f->decoded.entries[0].record.stack, stack_a);
    /* a subscriber that starts from the hello knows both stacks */
    pk_wire_peer late;
    pk_wire_header h;
    size_t offset;
    assert_int_equal(pk_wire_decode_header(hello.bytes, hello.used, &h, &offset, NULL), 0);
    assert_int_equal(pk_wire_decode_hello(hello.bytes, hello.used, offset, &late, NULL), 0);
    assert_int_equal(late.stacks[1].depth, 3);
    assert_int_equal(late.stacks[2].depth, 3);
    /* merged into a peer that has them, they change nothing */
    size_t frames = f->peer.frame_count;
    assert_int_equal(pk_wire_merge_hello(&f->peer, &late), 0);
    assert_int_equal(f->peer.frame_count, frames);
    pk_wire_peer_free(&late);
    pk_wire_buf_free(&first);
    pk_wire_buf_free(&second);
    pk_wire_buf_free(&again);
    pk_wire_buf_free(&hello);
    pk_wire_encoder_free(&e);
}

/* A batch of stack definitions (and records naming them) built by hand: its error. */
static const char *bad_stacks(fixture *f, const uint64_t *stack_part, size_t stack_words,
                              uint64_t record_stack)
{
    static pk_error err;
    pk_wire_buf b = {0};
    pk_wire_put_header(&b, PK_WIRE_BATCH, SAMPLE_SENDER, 9);
    pk_wire_put_uvarint(&b, 0); /* no string definitions */
    for (size_t i = 0; i < stack_words; i++)
        pk_wire_put_uvarint(&b, stack_part[i]);
    pk_wire_put_uvarint(&b, record_stack ? 1 : 0);
    if (record_stack) {
        pk_wire_put_uvarint(&b, PK_WIRE_OBSERVED);
        pk_wire_put_uvarint(&b, 1ull << (PK_FIELD_COUNT + 1)); /* the stack alone */
        pk_wire_put_uvarint(&b, PK_RECORD_BLOCK);
        pk_wire_put_uvarint(&b, record_stack);
    }
    err.message[0] = '\0';
    int rc = decode(f, &b, &err);
    pk_wire_buf_free(&b);
    return rc == 0 ? "(accepted)" : err.message;
}

static void bad_stacks_say_why(void **state)
{
    fixture *f = *state;
    assert_int_equal(decode(f, &f->batch, NULL), 0);
    assert_int_equal(decode(f, &f->stacks, NULL), 0);
    const uint64_t none[] = {0};
    assert_string_equal(bad_stacks(f, none, 1, 7), "batch: undefined stack id 7");
    const uint64_t zero_id[] = {1, 0, 1, 0, 0, 0};
    assert_string_equal(bad_stacks(f, zero_id, 6, 0), "batch: stack id 0 is reserved for none");
    const uint64_t no_frames[] = {1, 3, 0};
    assert_string_equal(bad_stacks(f, no_frames, 3, 0), "batch: stack 3 has no frames");
    const uint64_t too_deep[] = {1, 3, PK_STACK_MAX + 1};
    assert_string_equal(bad_stacks(f, too_deep, 3, 0),
                        "batch: frame count 65 out of range (at most 64)");
    const uint64_t undefined_name[] = {1, 3, 1, 99, 0, 5};
    assert_string_equal(bad_stacks(f, undefined_name, 6, 0), "batch: undefined string id 99");
    const uint64_t other_frames[] = {1, 1, 1, 0, 0, 5};
    assert_string_equal(bad_stacks(f, other_frames, 6, 0),
                        "batch: stack 1 defined again with other frames");
    const uint64_t cut[] = {1, 3, 2, 0, 0, 5};
    assert_string_equal(bad_stacks(f, cut, 6, 0), "truncated batch");
    /* a new stack defined whole is taken, and a record may name it */
    const uint64_t fine[] = {1, 3, 1, 0, 0, 5};
    assert_string_equal(bad_stacks(f, fine, 6, 3), "(accepted)");
    assert_int_equal(f->decoded.entries[0].record.stack_depth, 1);
}

/* A newer sender: an extra string field, an extra number field and a new event type. */
static void newer_sender_fields_are_skipped(void **state)
{
    (void)state;
    pk_wire_buf m = {0};
    pk_wire_put_header(&m, PK_WIRE_HELLO, 9, 0);
    pk_wire_put_uvarint(&m, 0); /* flags */
    pk_wire_put_uvarint(&m, 1); /* next seq */
    pk_wire_put_uvarint(&m, 1); /* schema */
    const char *strings[] = {"h", "cmd", "function", "monotonic", "none"};
    pk_wire_put_string(&m, strings[0]);
    pk_wire_put_uvarint(&m, 5);
    pk_wire_put_uvarint(&m, 1); /* parent pid */
    pk_wire_put_string(&m, strings[1]);
    pk_wire_put_string(&m, strings[2]);
    pk_wire_put_uvarint(&m, 0);
    pk_wire_put_string(&m, strings[3]);
    pk_wire_put_uvarint(&m, 1ull << 32);
    pk_wire_put_string(&m, strings[4]);
    pk_wire_put_uvarint(&m, 0);
    pk_wire_put_uvarint(&m, 0);
    /* fields: index, colour (string, new), type, weight (number, new), function */
    pk_wire_put_uvarint(&m, 5);
    const char *names[] = {"index", "colour", "type", "weight", "function"};
    const unsigned kinds[] = {0, 1, 2, 0, 1};
    for (int i = 0; i < 5; i++) {
        pk_wire_put_string(&m, names[i]);
        pk_wire_put_uvarint(&m, kinds[i]);
    }
    pk_wire_put_uvarint(&m, 3); /* event types */
    pk_wire_put_uvarint(&m, 0);
    pk_wire_put_string(&m, "call");
    pk_wire_put_uvarint(&m, 1);
    pk_wire_put_string(&m, "return");
    pk_wire_put_uvarint(&m, 2);
    pk_wire_put_string(&m, "teleport");
    pk_wire_put_uvarint(&m, 0); /* strings */
    pk_wire_put_uvarint(&m, 0); /* stacks */
    pk_wire_peer peer;
    pk_wire_header h;
    size_t offset;
    assert_int_equal(pk_wire_decode_header(m.bytes, m.used, &h, &offset, NULL), 0);
    assert_int_equal(pk_wire_decode_hello(m.bytes, m.used, offset, &peer, NULL), 0);
    assert_int_equal(peer.field_map[1], -1);
    assert_int_equal(peer.field_map[3], -1);
    assert_int_equal(peer.type_map[2], PK_WIRE_TYPE_UNKNOWN_HERE);
    /* two records: index 5, colour "x", call, weight 300, function "f"; then a teleport */
    pk_wire_buf b = {0};
    pk_wire_put_header(&b, PK_WIRE_BATCH, 9, 1);
    pk_wire_put_uvarint(&b, 2); /* definitions */
    pk_wire_put_uvarint(&b, 1);
    pk_wire_put_string(&b, "x");
    pk_wire_put_uvarint(&b, 2);
    pk_wire_put_string(&b, "f");
    pk_wire_put_uvarint(&b, 0); /* stacks */
    pk_wire_put_uvarint(&b, 2); /* records */
    const uint64_t first[] = {PK_WIRE_OBSERVED | PK_WIRE_WRITTEN, 0x1f, 0, 10, 1, 0, 600, 2};
    for (size_t i = 0; i < PK_ARRAY_SIZE(first); i++)
        pk_wire_put_uvarint(&b, first[i]);
    const uint64_t second[] = {
        PK_WIRE_OBSERVED | PK_WIRE_SAME_PRESENCE | PK_WIRE_SAME_FLAGS, 2, 1, 2, 0, 2};
    for (size_t i = 0; i < PK_ARRAY_SIZE(second); i++)
        pk_wire_put_uvarint(&b, second[i]);
    pk_wire_batch out = {0};
    pk_error err;
    assert_int_equal(pk_wire_decode_header(b.bytes, b.used, &h, &offset, NULL), 0);
    assert_int_equal(pk_wire_decode_batch(&peer, b.bytes, b.used, offset, &out, &err), 0);
    assert_int_equal(out.count, 2);
    assert_int_equal(out.entries[0].head, PK_WIRE_OBSERVED | PK_WIRE_WRITTEN);
    assert_int_equal(out.entries[0].record.index, 5);
    assert_int_equal(out.entries[0].record.type, PK_EVENT_CALL);
    assert_string_equal(out.entries[0].record.function, "f");
    assert_string_equal(out.entries[0].record.file, "");
    assert_int_equal(out.entries[1].head, 0); /* teleport: skipped */
    assert_int_equal(out.entries[1].record.index, 6);
    pk_wire_batch_free(&out);
    pk_wire_peer_free(&peer);
    pk_wire_buf_free(&m);
    pk_wire_buf_free(&b);
}

/* A copy of message m changed by fn, decoded: its error message. */
static const char *broken(fixture *f, const pk_wire_buf *m, void (*fn)(pk_wire_buf *))
{
    static pk_error err;
    pk_wire_buf copy = {0};
    memcpy(pk_wire_reserve(&copy, m->used), m->bytes, m->used);
    copy.used = m->used;
    fn(&copy);
    err.message[0] = '\0';
    int rc = decode(f, &copy, &err);
    pk_wire_buf_free(&copy);
    return rc == 0 ? "(accepted)" : err.message;
}

static void garbage(pk_wire_buf *m)
{
    memcpy(m->bytes, "GARBAGE!", 8);
}
static void new_version(pk_wire_buf *m)
{
    m->bytes[4] = 9;
}
static void bad_type(pk_wire_buf *m)
{
    m->bytes[5] = 9;
}
static void cut_last(pk_wire_buf *m)
{
    m->used--;
}
static void cut_header(pk_wire_buf *m)
{
    m->used = 10;
}
static void extra_byte(pk_wire_buf *m)
{
    *pk_wire_reserve(m, 1) = 0;
    m->used++;
}
static void oversized(pk_wire_buf *m)
{
    size_t more = (5u << 20) - m->used;
    memset(pk_wire_reserve(m, more), 0, more);
    m->used += more;
}
static void unknown_head_bits(pk_wire_buf *m)
{
    /* the first record's head follows "8 definitions ... record count 9" */
    for (size_t i = 16; i + 1 < m->used; i++) {
        if (m->bytes[i] == 9 && m->bytes[i + 1] == (PK_WIRE_OBSERVED | PK_WIRE_WRITTEN)) {
            m->bytes[i + 1] |= 0x40;
            return;
        }
    }
}

static void bad_messages_say_why(void **state)
{
    fixture *f = *state;
    assert_string_equal(broken(f, &f->batch, garbage), "not a pikoc message (no PKOZ header)");
    assert_string_equal(broken(f, &f->batch, cut_header), "not a pikoc message (no PKOZ header)");
    assert_string_equal(broken(f, &f->batch, new_version),
                        "wire version 9 is not supported (this pikoc speaks 2)");
    assert_string_equal(broken(f, &f->batch, bad_type), "unknown message type 9");
    assert_string_equal(broken(f, &f->batch, oversized),
                        "oversized message (5242880 bytes; at most 4194304)");
    assert_string_equal(broken(f, &f->batch, cut_last), "truncated batch");
    assert_string_equal(broken(f, &f->batch, extra_byte), "batch: 1 bytes after its last record");
    assert_string_equal(broken(f, &f->goodbye, cut_last), "truncated goodbye");
    assert_string_equal(broken(f, &f->goodbye, extra_byte),
                        "goodbye: unknown ending 0 (known: 1, executed)");
    assert_string_equal(broken(f, &f->batch, unknown_head_bits),
                        "batch: record head 0x43 has unknown bits");
}

static void bad_exits_say_why(void **state)
{
    (void)state;
    pk_wire_exit x = sample_exit;
    assert_string_equal(broken_exit(&x, cut_last), "truncated exit");
    assert_string_equal(broken_exit(&x, extra_byte), "exit: 1 bytes after its end");
    x.status = "gone";
    assert_string_equal(broken_exit(&x, NULL),
                        "exit: status 'gone' is none of crashed, killed, incomplete");
    x = sample_exit;
    x.signal = 65;
    assert_string_equal(broken_exit(&x, NULL), "exit: signal 65 out of range (at most 64)");
    x = sample_exit;
    x.exit_status = 256;
    assert_string_equal(broken_exit(&x, NULL), "exit: exit status 256 out of range (at most 255)");
    x.pid = 1ull << 31;
    assert_string_equal(broken_exit(&x, NULL),
                        "exit: pid 2147483648 out of range (at most 2147483647)");
}

static void undefined_string_is_refused(void **state)
{
    fixture *f = *state;
    pk_wire_buf b = {0};
    pk_wire_put_header(&b, PK_WIRE_BATCH, SAMPLE_SENDER, 5);
    pk_wire_put_uvarint(&b, 0); /* no definitions */
    pk_wire_put_uvarint(&b, 0); /* no stacks */
    pk_wire_put_uvarint(&b, 1);
    pk_wire_put_uvarint(&b, PK_WIRE_OBSERVED);
    pk_wire_put_uvarint(&b, 1u << PK_FIELD_FUNCTION);
    pk_wire_put_uvarint(&b, 0);
    pk_wire_put_uvarint(&b, 99);
    pk_error err;
    assert_int_equal(decode(f, &b, &err), -1);
    assert_string_equal(err.message, "batch: undefined string id 99");
    pk_wire_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hello_carries_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_round_trips_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(goodbye_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(executed_goodbye_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(strings_are_defined_once, setup, teardown),
        cmocka_unit_test_setup_teardown(stacks_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(stacks_are_defined_once, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_stacks_say_why, setup, teardown),
        cmocka_unit_test(long_strings_are_cut_between_characters),
        cmocka_unit_test(exit_round_trips),
        cmocka_unit_test(bad_exits_say_why),
        cmocka_unit_test(newer_sender_fields_are_skipped),
        cmocka_unit_test_setup_teardown(bad_messages_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(undefined_string_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
