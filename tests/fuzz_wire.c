/*
 * fuzz_wire.c — the decoder's fuzz target, bounded for make check: a seeded
 * mutation loop (bit flips, byte changes, cuts, insertions, splices) over
 * valid messages (tests/wire_samples.h: a hello, batches of records and of
 * allocations with their stacks, a goodbye, an exit), each fed to the
 * header, hello, batch, goodbye and exit decoders. It passes when nothing crashes (the sanitizer
 * build catches reads out of bounds) and every valid sample still decodes.
 *
 *   fuzz_wire [SECONDS [SEED]]   default: 3 seconds, seed 1
 */
#include "wire_samples.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SAMPLES 5 /* hello, two batches, goodbye, exit */

static uint64_t rng = 1;

static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void mutate(pk_wire_buf *m, const pk_wire_buf *other)
{
    int rounds = 1 + (int)(next() % 4);
    for (int r = 0; r < rounds && m->used > 0; r++) {
        size_t at = next() % m->used;
        switch (next() % 6) {
        case 0:
            m->bytes[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1:
            m->bytes[at] = (uint8_t)next();
            break;
        case 2:
            m->used = at; /* truncated */
            break;
        case 3: /* a byte inserted */
            pk_wire_reserve(m, 1);
            memmove(m->bytes + at + 1, m->bytes + at, m->used - at);
            m->bytes[at] = (uint8_t)(next() % 3 ? 0x80 | next() : next());
            m->used++;
            break;
        case 4: { /* a piece of another message */
            size_t from = next() % other->used, len = next() % 16;
            if (len > other->used - from)
                len = other->used - from;
            if (len > m->used - at)
                len = m->used - at;
            memcpy(m->bytes + at, other->bytes + from, len);
            break;
        }
        default:
            m->bytes[at] = (uint8_t)(next() % 2 ? 0xff : 0x00);
            break;
        }
    }
}

/* Feeds one message to the decoders; returns whether all of it decoded. */
static bool feed(pk_wire_peer *peer, bool have_peer, const pk_wire_buf *m, pk_wire_batch *batch)
{
    pk_wire_header h;
    size_t offset;
    pk_error err;
    if (pk_wire_decode_header(m->bytes, m->used, &h, &offset, &err) != 0)
        return false;
    switch (h.type) {
    case PK_WIRE_HELLO: {
        pk_wire_peer fresh;
        if (pk_wire_decode_hello(m->bytes, m->used, offset, &fresh, &err) != 0)
            return false;
        if (have_peer)
            pk_wire_merge_hello(peer, &fresh);
        pk_wire_peer_free(&fresh);
        return true;
    }
    case PK_WIRE_BATCH:
        return pk_wire_decode_batch(peer, m->bytes, m->used, offset, batch, &err) == 0;
    case PK_WIRE_GOODBYE: {
        pk_wire_goodbye g;
        if (pk_wire_decode_goodbye(m->bytes, m->used, offset, &g, &err) != 0)
            return false;
        pk_wire_goodbye_free(&g);
        return true;
    }
    case PK_WIRE_EXIT: {
        pk_wire_exit x;
        if (pk_wire_decode_exit(m->bytes, m->used, offset, &x, &err) != 0)
            return false;
        pk_wire_exit_free(&x);
        return true;
    }
    default:
        return true;
    }
}

/* A peer from the sample hello, as a collector has one per connection. */
static bool connect_peer(const pk_wire_buf *hello, pk_wire_peer *peer)
{
    pk_wire_header h;
    size_t offset;
    return pk_wire_decode_header(hello->bytes, hello->used, &h, &offset, NULL) == 0 &&
           pk_wire_decode_hello(hello->bytes, hello->used, offset, peer, NULL) == 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (rng == 0)
        rng = 1;
    pk_wire_buf samples[SAMPLES] = {{0}}, m = {0};
    sample_messages(&samples[0], &samples[1], &samples[2], &samples[3]);
    pk_wire_encode_exit(SAMPLE_SENDER, &sample_exit, &samples[4]);
    pk_wire_peer peer, fresh;
    pk_wire_batch batch = {0};
    if (!connect_peer(&samples[0], &peer)) {
        fprintf(stderr, "fuzz_wire: the sample hello does not decode\n");
        return 1;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t runs = 0, accepted = 0;
    for (;;) {
        for (int k = 0; k < 256; k++, runs++) {
            const pk_wire_buf *base = &samples[next() % SAMPLES];
            m.used = 0;
            memcpy(pk_wire_reserve(&m, base->used), base->bytes, base->used);
            m.used = base->used;
            mutate(&m, &samples[next() % SAMPLES]);
            accepted += feed(&peer, true, &m, &batch);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >=
            seconds)
            break;
    }
    /* the decoders still take what is valid after all that, on a new connection (mutated
     * batches may have defined the samples' string and stack ids otherwise, which a
     * connection's peer rightly refuses) */
    int bad = !connect_peer(&samples[0], &fresh);
    for (int i = 0; i < SAMPLES && !bad; i++)
        bad += !feed(&fresh, true, &samples[i], &batch);
    pk_wire_peer_free(&fresh);
    printf("fuzz_wire: %llu mutated messages, %llu decoded whole, seed %s\n",
           (unsigned long long)runs, (unsigned long long)accepted, argc > 2 ? argv[2] : "1");
    pk_wire_peer_free(&peer);
    pk_wire_batch_free(&batch);
    pk_wire_buf_free(&m);
    for (int i = 0; i < SAMPLES; i++)
        pk_wire_buf_free(&samples[i]);
    if (bad) {
        fprintf(stderr, "fuzz_wire: %d valid samples no longer decode\n", bad);
        return 1;
    }
    return 0;
}
