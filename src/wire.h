/*
 * wire.h — the pikoc wire format of docs/wire-format.md: encoding and
 * decoding of hello, batch, goodbye, ack, resend and exit messages, no I/O. The
 * zmq recorder encodes, `pikoc listen` decodes; records travel through the
 * field table (record.c), so a new field or event type needs no change here.
 * Every decoder checks every byte: a bad message fails with one line.
 */
#ifndef PK_WIRE_H
#define PK_WIRE_H

#include "blocks.h"
#include "internal.h"

#define PK_WIRE_VERSION 2
#define PK_WIRE_MAGIC "PKOZ"
#define PK_WIRE_HEADER_MIN 14          /* magic, version, type, sender, a 1-byte seq */
#define PK_WIRE_MAX_MESSAGE (4u << 20) /* larger messages are refused as oversized */
#define PK_WIRE_MAX_HELLO (32u << 20)  /* but a hello, with every string so far */
#define PK_WIRE_MAX_FIELDS 64          /* presence bits fit one uvarint */
#define PK_WIRE_MAX_TYPES 256
#define PK_WIRE_MAX_STRING 4096

typedef enum pk_wire_type {
    PK_WIRE_HELLO = 1,
    PK_WIRE_BATCH = 2,
    PK_WIRE_GOODBYE = 3,
    PK_WIRE_ACK = 4,    /* collector to sender: every seq up to this one is stored */
    PK_WIRE_RESEND = 5, /* collector to sender: unknown sender, send a hello */
    PK_WIRE_EXIT = 6,   /* launcher to collector: how a program it started ended */
} pk_wire_type;

/* Bits of a record's head byte. */
enum pk_wire_head {
    PK_WIRE_OBSERVED = 1u << 0,      /* seen before the filters: counts in aggregates */
    PK_WIRE_WRITTEN = 1u << 1,       /* passed the filters: stored in detail */
    PK_WIRE_SAME_PRESENCE = 1u << 2, /* presence bits as in the previous record */
    PK_WIRE_SAME_FLAGS = 1u << 3,    /* record flags as in the previous record */
};

/* Bits of a hello's flags. */
enum pk_wire_hello_flags {
    PK_WIRE_LOSSY = 1u << 0,  /* zmq+pub: batches may be dropped (and counted) */
    PK_WIRE_RESUME = 1u << 1, /* a repeated hello: batches go on from next_seq */
};

typedef struct pk_wire_header {
    unsigned version;
    pk_wire_type type;
    uint64_t sender; /* random, chosen by the sender for its run */
    uint64_t seq;
} pk_wire_header;

/* ---- growable byte buffer ------------------------------------------------------ */

typedef struct pk_wire_buf {
    uint8_t *bytes;
    size_t used, capacity;
} pk_wire_buf;

/* Makes room for `more` bytes and returns where they go. */
PK_HIDDEN uint8_t *pk_wire_reserve(pk_wire_buf *b, size_t more);
PK_HIDDEN void pk_wire_put_uvarint(pk_wire_buf *b, uint64_t v);
PK_HIDDEN void pk_wire_put_string(pk_wire_buf *b, const char *s);
PK_HIDDEN void pk_wire_put_header(pk_wire_buf *b, pk_wire_type type, uint64_t sender, uint64_t seq);
PK_HIDDEN void pk_wire_buf_free(pk_wire_buf *b);

/* ---- the sender's side ------------------------------------------------------------ */

/*
 * One run's encoder: a string table (strings by pointer, which the record
 * contract keeps stable) and the batch being built. Drain thread only.
 */
typedef struct pk_wire_encoder {
    uint64_t sender;
    uint64_t next_seq;
    /* string pointer -> id (open addressing), and id -> string */
    const char **keys;
    uint32_t *ids;
    size_t slots;
    const char **strings; /* by id; id 0 is "" */
    size_t string_count, string_capacity;
    /*
     * Stacks (--stack N): a record's stack pointer -> its id (a; stable for
     * the run) and the generation of the string table it was defined in (b).
     */
    pk_block_map stacks;
    uint64_t stack_count;    /* ids given so far */
    uint64_t generation;     /* from 1; forgetting the strings starts the next */
    pk_wire_buf stack_table; /* the definitions of this generation, for a hello */
    uint32_t stack_table_count;
    pk_frame_resolver resolve_frame; /* pk_symbols_frame unless a test sets its own */
    void *resolve_user;
    /* the batch */
    pk_wire_buf defs;       /* string definitions new in this batch */
    pk_wire_buf stack_defs; /* stack definitions new in this batch */
    uint32_t stack_def_count;
    pk_wire_buf records; /* the records */
    uint32_t def_count, record_count;
    uint64_t prev[PK_WIRE_MAX_FIELDS];
    uint64_t prev_presence;
    unsigned prev_flags;
    uint8_t field_kind[PK_WIRE_MAX_FIELDS]; /* of each field, looked up once */
    uint64_t string_fields;                 /* presence bits of the string fields */
    uint64_t stack_field;                   /* the presence bit of the stack */
    uint64_t presence_cached;               /* the fields records with flags_cached carry */
    unsigned flags_cached;
    /* the last record, whose WRITTEN bit a write of the same record sets */
    const pk_record *last;
    uint64_t last_index;
    size_t last_head; /* offset of its head byte in records */
} pk_wire_encoder;

PK_HIDDEN void pk_wire_encoder_init(pk_wire_encoder *e, uint64_t sender);
PK_HIDDEN void pk_wire_encoder_free(pk_wire_encoder *e);
/* Forgets which strings and stacks were sent: the next batches define them again. */
PK_HIDDEN void pk_wire_encoder_forget_strings(pk_wire_encoder *e);
/* Adds a record seen before the filters (PK_WIRE_OBSERVED) or one that passed them
 * (PK_WIRE_WRITTEN, when pk_wire_mark_written could not). */
PK_HIDDEN void pk_wire_encode_record(pk_wire_encoder *e, const pk_record *rec, unsigned what);
/* A write of the record added last (the common case) sets its WRITTEN bit: true. */
PK_HIDDEN bool pk_wire_mark_written(pk_wire_encoder *e, const pk_record *rec);
/* The batch's size so far, in bytes. */
static inline size_t pk_wire_batch_bytes(const pk_wire_encoder *e)
{
    return e->defs.used + e->stack_defs.used + e->records.used;
}
/* Appends the batch as one message to out (cleared first), seq e->next_seq++, and starts anew. */
PK_HIDDEN void pk_wire_finish_batch(pk_wire_encoder *e, pk_wire_buf *out);
/*
 * The hello: who runs, what the records carry (field and event-type names),
 * every string and stack defined so far (the batches not acknowledged may
 * have been lost, a subscriber may have come late) and the seq of the next
 * batch.
 */
PK_HIDDEN void pk_wire_encode_hello(const pk_wire_encoder *e, const pk_run_info *run, int ppid,
                                    unsigned flags, uint64_t next_seq, pk_wire_buf *out);

/* The goodbye's totals: the run's, and what the transport did. */
typedef struct pk_wire_goodbye {
    pk_run_totals totals;
    uint64_t entries;         /* records put into batches */
    uint64_t written;         /* of those, passed the filters */
    uint64_t dropped_entries; /* in batches the lossy transport dropped */
    uint64_t batches;
    uint64_t peak_rss; /* the process's resident set high-water mark, bytes */
    /* the names of the threads of its records (decoded: owned by the goodbye) */
    size_t thread_count;
    uint64_t *threads;
    char (*names)[16];
    /* The run ends because its process executed another program (its run,
     * 'executed', is the parent of the new image's): PK_WIRE_ENDING_EXECUTED
     * after the threads. */
    bool executed;
} pk_wire_goodbye;

/* A goodbye's optional last field: how the run ended, when not by its end. */
enum { PK_WIRE_ENDING_EXECUTED = 1 };

/* Frees what a decoded goodbye holds. */
PK_HIDDEN void pk_wire_goodbye_free(pk_wire_goodbye *g);

PK_HIDDEN void pk_wire_encode_goodbye(pk_wire_encoder *e, const pk_wire_goodbye *g,
                                      pk_wire_buf *out);

/* How a program a launcher (`pikoc run`) started ended: the collector marks its run. */
typedef struct pk_wire_exit {
    const char *host; /* decoded: owned by the message (pk_wire_exit_free) */
    uint64_t pid;
    uint64_t started_after_ns; /* wall clock: the program's run started at or after */
    const char *status;        /* "crashed", "killed" or "incomplete" (docs/schema.md) */
    uint64_t signal;           /* the signal that ended it; 0 for none */
    uint64_t exit_status;      /* its exit status, when no signal ended it */
} pk_wire_exit;

/* The exit message, seq 1, from a sender id of the launcher's own. */
PK_HIDDEN void pk_wire_encode_exit(uint64_t sender, const pk_wire_exit *x, pk_wire_buf *out);

/* ---- the collector's side ----------------------------------------------------------- */

/* Reads the header; fails on bad magic, version, type or length. */
PK_HIDDEN int pk_wire_decode_header(const uint8_t *msg, size_t len, pk_wire_header *h,
                                    size_t *offset, pk_error *err);

/* What one sender said in its hello, and its string table. */
typedef struct pk_wire_peer {
    pk_run_info run; /* strings point into this peer */
    int ppid;
    unsigned flags; /* pk_wire_hello_flags */
    uint64_t next_seq;
    uint64_t schema_version;
    uint64_t ns_per_tick_q32;
    size_t field_count;
    int field_map[PK_WIRE_MAX_FIELDS]; /* sender's field -> local pk_field_id, or -1 */
    uint8_t field_kind[PK_WIRE_MAX_FIELDS];
    int type_map[PK_WIRE_MAX_TYPES];   /* sender's event type -> local, or one of: */
#define PK_WIRE_TYPE_UNNAMED (-1)      /* not in the hello: a record of it is an error */
#define PK_WIRE_TYPE_UNKNOWN_HERE (-2) /* named, but not a type of this pikoc: skipped */
    char **strings;                    /* by id; id 0 is "" */
    size_t string_count;
    pk_symbol *frames; /* the frames of every stack, in the order they were defined */
    size_t frame_count, frame_capacity;
    struct pk_wire_stack {
        uintptr_t *frames; /* indexes into frames: what a record's stack holds */
        unsigned depth;    /* 0: not defined */
    } * stacks;            /* by id; id 0 is none */
    size_t stack_count;
    pk_record blank; /* a record before its fields are decoded */
    char **retired;  /* the hello's strings and redefined ones: records may point to them */
    size_t retired_count, retired_capacity;
} pk_wire_peer;

/* Decodes a hello (after the header) into a fresh peer. */
PK_HIDDEN int pk_wire_decode_hello(const uint8_t *msg, size_t len, size_t offset,
                                   pk_wire_peer *peer, pk_error *err);
/* Takes a resume hello's strings into an existing peer (same sender). */
PK_HIDDEN int pk_wire_merge_hello(pk_wire_peer *peer, const pk_wire_peer *again);
PK_HIDDEN void pk_wire_peer_free(pk_wire_peer *peer);
/* The frame of a decoded record's stack (a pk_frame_resolver; user is the peer). */
PK_HIDDEN void pk_wire_peer_frame(uintptr_t frame, pk_symbol *out, void *user);

/* A decoded batch: its records, in order, with their head bits. */
typedef struct pk_wire_entry {
    pk_record record;
    unsigned head; /* pk_wire_head; 0 for a record of an event type unknown here */
} pk_wire_entry;

typedef struct pk_wire_batch {
    pk_wire_entry *entries;
    size_t count, capacity;
} pk_wire_batch;

/*
 * Decodes a batch whole before anything is used: its string definitions go
 * into the peer, its records into out. Fails with the first bad byte's story.
 */
PK_HIDDEN int pk_wire_decode_batch(pk_wire_peer *peer, const uint8_t *msg, size_t len,
                                   size_t offset, pk_wire_batch *out, pk_error *err);
PK_HIDDEN void pk_wire_batch_free(pk_wire_batch *b);
PK_HIDDEN int pk_wire_decode_goodbye(const uint8_t *msg, size_t len, size_t offset,
                                     pk_wire_goodbye *g, pk_error *err);
/* Decodes an exit message; fails on a status other than crashed, killed or incomplete. */
PK_HIDDEN int pk_wire_decode_exit(const uint8_t *msg, size_t len, size_t offset, pk_wire_exit *x,
                                  pk_error *err);
PK_HIDDEN void pk_wire_exit_free(pk_wire_exit *x);

#endif /* PK_WIRE_H */
