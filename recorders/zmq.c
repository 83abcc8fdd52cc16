/*
 * zmq.c — the zmq:ENDPOINT recorder: sends the run to a collector (`pikoc
 * listen`) in the wire format of docs/wire-format.md, in batches, from the
 * drain thread. Lossless by default: batches stay in a window until the
 * collector acknowledges them, are sent again after a silence or when the
 * collector asks (it restarted), and the sender waits while the window is
 * full. zmq+pub:ENDPOINT publishes instead (an XPUB socket bound there, any
 * number of `pikoc listen --subscribe` collectors) and never waits: a batch
 * that has no room toward a subscriber is dropped and counted, the goodbye
 * reports the count, and each new subscriber gets a hello.
 */
#include "clock.h"
#include "wire.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#define BATCH_BYTES (128u << 10)
#define BATCH_RECORDS 16384
#define BATCH_AGE_NS 100000000ull /* a batch older than 100 ms goes out */
#define CLOCK_CHECK_RECORDS 256
#define WINDOW 32                     /* unacknowledged batches in flight */
#define RESEND_AFTER_NS 2000000000ull /* no acknowledgement for 2 s: send again */
#define POLL_MS 100
#define CONNECT_WAIT_MS 1000 /* the launcher: a collector that is there answers by then */
#define DEFAULT_LINGER_NS 10000000000ull /* wait at most 10 s without any progress */
#define DEFAULT_PUB_HWM 64               /* zmq+pub: batches queued toward a subscriber */

typedef struct sent_batch {
    pk_wire_buf message;
    uint32_t records; /* entries in it, counted as dropped if it is given up */
} sent_batch;

typedef struct zmq_state {
    char *endpoint;
    bool lossy;
    bool immediate; /* the launcher's report: nothing queued toward no connection */
    void *context, *socket;
    uint64_t linger_ns;
    const char *linger_name; /* what set linger_ns, for messages */
    pk_run_info run;
    bool started;
    bool need_hello; /* lossy: a subscriber came, or the last hello did not go */
    uint64_t subscribers, wanted_subscribers; /* lossy: so far; PIKOC_ZMQ_SUBSCRIBERS */
    bool need_resume; /* lossless: a send failed; hello and window go again */
    bool gave_up;     /* lossless: nobody acknowledged for the linger; waits no more */
    bool known;       /* a collector acknowledged something of this run */
    pk_wire_encoder encoder;
    pk_wire_buf message; /* hello, goodbye and, when lossy, batches */
    uint64_t batch_started_ns;
    /* the window: seq of window[first] is first_seq; buffers are reused */
    sent_batch window[WINDOW];
    size_t first, count;
    uint64_t first_seq;
    uint64_t progress_ns; /* last acknowledgement, or the first message in the window */
    uint64_t resumed_ns;
    uint64_t entries, written, dropped_entries, dropped_batches, batches;
    int ppid;          /* at the start: the collector finds the parent run by it */
    uint64_t *threads; /* of the records sent, for their names in the goodbye */
    size_t thread_count, thread_capacity;
    uint64_t last_thread;
} zmq_state;

/*
 * libzmq, loaded when a zmq recorder first opens rather than linked: every
 * program `pikoc run` preloads would otherwise load it and the dozen
 * libraries it needs (Kerberos, libstdc++, libsodium, OpenPGM, ...), some
 * milliseconds a process, to record into SQLite.
 */
#define LIBZMQ_SONAME "libzmq.so.5"
static struct {
    __typeof__(zmq_ctx_new) *ctx_new;
    __typeof__(zmq_ctx_term) *ctx_term;
    __typeof__(zmq_socket) *socket;
    __typeof__(zmq_close) *close;
    __typeof__(zmq_setsockopt) *setsockopt;
    __typeof__(zmq_bind) *bind;
    __typeof__(zmq_connect) *connect;
    __typeof__(zmq_send) *send;
    __typeof__(zmq_recv) *recv;
    __typeof__(zmq_poll) *poll;
    __typeof__(zmq_errno) *error_number;
    __typeof__(zmq_strerror) *error_text;
    __typeof__(zmq_has) *has;
    __typeof__(zmq_curve_keypair) *curve_keypair;
    __typeof__(zmq_curve_public) *curve_public;
} libzmq;
static pthread_once_t libzmq_once = PTHREAD_ONCE_INIT;
static char libzmq_failure[256]; /* why it could not be loaded; "" once it is */

/* Sets *field to the function `name` of handle; false when it has none. */
static bool resolve(void *handle, const char *name, void *field)
{
    void *function = dlsym(handle, name);
    if (!function)
        snprintf(libzmq_failure, sizeof libzmq_failure, "%s", dlerror());
    memcpy(field, &function, sizeof function);
    return function != NULL;
}

static void load_libzmq(void)
{
    void *handle = dlopen(LIBZMQ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(libzmq_failure, sizeof libzmq_failure, "%s", dlerror());
        return;
    }
    (void)(resolve(handle, "zmq_ctx_new", &libzmq.ctx_new) &&
           resolve(handle, "zmq_ctx_term", &libzmq.ctx_term) &&
           resolve(handle, "zmq_socket", &libzmq.socket) &&
           resolve(handle, "zmq_close", &libzmq.close) &&
           resolve(handle, "zmq_setsockopt", &libzmq.setsockopt) &&
           resolve(handle, "zmq_bind", &libzmq.bind) &&
           resolve(handle, "zmq_connect", &libzmq.connect) &&
           resolve(handle, "zmq_send", &libzmq.send) && resolve(handle, "zmq_recv", &libzmq.recv) &&
           resolve(handle, "zmq_poll", &libzmq.poll) &&
           resolve(handle, "zmq_errno", &libzmq.error_number) &&
           resolve(handle, "zmq_strerror", &libzmq.error_text) &&
           resolve(handle, "zmq_has", &libzmq.has) &&
           resolve(handle, "zmq_curve_keypair", &libzmq.curve_keypair) &&
           resolve(handle, "zmq_curve_public", &libzmq.curve_public));
}

/* libzmq, loaded once; every other function here runs only after this succeeded. */
static int need_libzmq(pk_error *err)
{
    pthread_once(&libzmq_once, load_libzmq);
    if (libzmq_failure[0])
        return pk_fail(err, "the zmq recorder cannot load %s (Debian package libzmq5): %s",
                       LIBZMQ_SONAME, libzmq_failure);
    return 0;
}

/* A forked child must not touch its parent's sockets (zmq is not fork-safe):
 * they are kept here, never closed, so that they are not freed either. */
static struct {
    void *context, *socket;
} forked_sockets[8];

static const char *const sender_options[] = {"pub", NULL};

static int socket_failed(pk_error *err, const char *what)
{
    return pk_fail(err, "%s: %s", what, libzmq.error_text(libzmq.error_number()));
}

/* A key: a file starting with it, or the key itself (40 Z85 characters, not echoed). */
static int read_key(const char *variable, const char *value, char key[41], pk_error *err)
{
    char why[64];
    switch (pk_read_key_file(value, key, why, sizeof why)) {
    case PK_KEY_READ:
        return 0;
    case PK_KEY_MISSING:
        if (strlen(value) != 40)
            return pk_fail(err, "%s '%s': neither a 40-character key nor a readable file", variable,
                           value);
        memcpy(key, value, 41);
        if (pk_z85_fault(key, why, sizeof why) != 0)
            return pk_fail(err, "%s: the key is not Z85: %s", variable, why);
        return 0;
    case PK_KEY_UNREADABLE:
        return pk_fail(err, "%s '%s': %s", variable, value, strerror(errno));
    case PK_KEY_SHORT:
        return pk_fail(err, "%s '%s': the file does not start with a 40-character key", variable,
                       value);
    case PK_KEY_NOT_Z85:
        return pk_fail(err, "%s '%s': the file's key is not Z85: %s", variable, value, why);
    }
    return pk_fail(err, "%s '%s': unreadable", variable, value); /* not reached */
}

/* PIKOC_ZMQ_LINGER, or the default. */
static int linger_setting(uint64_t *ns, pk_error *err)
{
    *ns = DEFAULT_LINGER_NS;
    const char *linger = pk_setting("PIKOC_ZMQ_LINGER");
    return linger ? pk_parse_duration("PIKOC_ZMQ_LINGER", linger, ns, err) : 0;
}

/* A publisher's PIKOC_ZMQ_HWM and PIKOC_ZMQ_SUBSCRIBERS, or their defaults; no CURVE key. */
static int publisher_settings(uint64_t *hwm, uint64_t *subscribers, pk_error *err)
{
    *hwm = DEFAULT_PUB_HWM;
    *subscribers = 0;
    const char *text = pk_setting("PIKOC_ZMQ_HWM");
    if (text && pk_parse_uint("PIKOC_ZMQ_HWM", text, hwm, err) != 0)
        return -1;
    if (*hwm == 0 || *hwm > INT_MAX)
        return pk_fail(err, "PIKOC_ZMQ_HWM '%s': expected a number of batches from 1 to %d", text,
                       INT_MAX);
    text = pk_setting("PIKOC_ZMQ_SUBSCRIBERS");
    if (text && pk_parse_uint("PIKOC_ZMQ_SUBSCRIBERS", text, subscribers, err) != 0)
        return -1;
    if (pk_setting("PIKOC_ZMQ_SERVER_KEY"))
        return pk_fail(err, "PIKOC_ZMQ_SERVER_KEY: a zmq+pub: publisher has no CURVE (zmq: "
                            "senders do); bind it to loopback or ipc");
    return 0;
}

/* The CURVE keys' text: the server's (PIKOC_ZMQ_SERVER_KEY) and, when given, the client's secret.
 */
static int read_curve_keys(const char *server, const char *client, char key[41],
                           char secret_key[41], pk_error *err)
{
    if (read_key("PIKOC_ZMQ_SERVER_KEY", server, key, err) != 0)
        return -1;
    return client ? read_key("PIKOC_ZMQ_CLIENT_KEY", client, secret_key, err) : 0;
}

/*
 * CURVE towards the collector whose public key PIKOC_ZMQ_SERVER_KEY gives:
 * as the client PIKOC_ZMQ_CLIENT_KEY names (a secret key; a collector with
 * a list of clients lets only those in), or a fresh key pair.
 */
static int set_curve(zmq_state *s, const char *server, pk_error *err)
{
    char key[41], public_key[41], secret_key[41];
    const char *client = pk_setting("PIKOC_ZMQ_CLIENT_KEY");
    if (!libzmq.has("curve"))
        return pk_fail(err, "PIKOC_ZMQ_SERVER_KEY: this libzmq has no CURVE support");
    if (read_curve_keys(server, client, key, secret_key, err) != 0)
        return -1;
    if (client) {
        if (libzmq.curve_public(public_key, secret_key) != 0)
            return pk_fail(err, "PIKOC_ZMQ_CLIENT_KEY '%s': not a Z85 secret key", client);
    } else if (libzmq.curve_keypair(public_key, secret_key) != 0) {
        return socket_failed(err, "PIKOC_ZMQ_SERVER_KEY");
    }
    if (libzmq.setsockopt(s->socket, ZMQ_CURVE_SERVERKEY, key, 40) != 0 ||
        libzmq.setsockopt(s->socket, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
        libzmq.setsockopt(s->socket, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0)
        return socket_failed(err, "PIKOC_ZMQ_SERVER_KEY");
    return 0;
}

/*
 * zmq:, a DEALER connected to the collector. Its queue outlives a reconnect,
 * so acknowledgements that came just before a collector went away are
 * still read (else those batches would be sent, and stored, again).
 */
static int open_dealer(zmq_state *s, const char *arg, pk_error *err)
{
    int hwm = 2 * WINDOW + 8;
    const char *server = pk_setting("PIKOC_ZMQ_SERVER_KEY");
    int immediate = s->immediate;
    if (libzmq.setsockopt(s->socket, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        libzmq.setsockopt(s->socket, ZMQ_IMMEDIATE, &immediate, sizeof immediate) != 0)
        return socket_failed(err, arg);
    if (server && set_curve(s, server, err) != 0)
        return -1;
    if (libzmq.connect(s->socket, arg) != 0)
        return pk_fail(err, "cannot connect to '%s': %s (expected tcp://HOST:PORT or ipc://PATH)",
                       arg, libzmq.error_text(libzmq.error_number()));
    return 0;
}

/*
 * zmq+pub:, an XPUB bound at the endpoint. NODROP makes a batch that has no
 * room toward some subscriber fail for all (so it is counted, never lost
 * for one subscriber silently); VERBOSE passes up every subscription, so
 * each new subscriber is seen and gets a hello.
 */
static int open_publisher(zmq_state *s, const char *arg, pk_error *err)
{
    uint64_t hwm;
    if (publisher_settings(&hwm, &s->wanted_subscribers, err) != 0)
        return -1;
    int one = 1, queued = (int)hwm;
    if (libzmq.setsockopt(s->socket, ZMQ_XPUB_NODROP, &one, sizeof one) != 0 ||
        libzmq.setsockopt(s->socket, ZMQ_XPUB_VERBOSE, &one, sizeof one) != 0 ||
        libzmq.setsockopt(s->socket, ZMQ_SNDHWM, &queued, sizeof queued) != 0)
        return socket_failed(err, arg);
    if (libzmq.bind(s->socket, arg) != 0)
        return pk_fail(err, "cannot bind '%s': %s (expected tcp://HOST:PORT or ipc://PATH)", arg,
                       libzmq.error_text(libzmq.error_number()));
    return 0;
}

static int read_linger(zmq_state *s, pk_error *err)
{
    s->linger_name = "PIKOC_ZMQ_LINGER";
    return linger_setting(&s->linger_ns, err);
}

int pk_zmq_check_endpoint(const char *endpoint, bool bind, pk_error *err)
{
    /* (inproc:// never leaves the process, and pgm:// carries no replies) */
    if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6])
        return 0; /* the path: the file system's to judge */
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return pk_fail(err, "endpoint '%.*s%s': expected tcp://HOST:PORT or ipc://PATH",
                       PK_QUOTE(endpoint));
    const char *port = strrchr(endpoint, ':') + 1;
    if (bind && strcmp(port, "*") == 0)
        return 0; /* any free port */
    uint64_t number = 0;
    size_t digits = strspn(port, "0123456789");
    if (digits && digits <= 5 && !port[digits])
        number = strtoull(port, NULL, 10);
    if (port > endpoint + 6 && number >= 1 && number <= 65535)
        return 0;
    return pk_fail(err, "endpoint '%.*s%s': expected a port from 1 to 65535 after the last ':'%s",
                   PK_QUOTE(endpoint), bind ? " (or *: any free port)" : "");
}

int pk_zmq_check_settings(const char *endpoint, bool publisher, pk_error *err)
{
    uint64_t linger, hwm, subscribers;
    if (pk_zmq_check_endpoint(endpoint, publisher, err) != 0 || linger_setting(&linger, err) != 0)
        return -1;
    if (publisher)
        return publisher_settings(&hwm, &subscribers, err);
    const char *server = pk_setting("PIKOC_ZMQ_SERVER_KEY");
    char key[41], secret_key[41];
    return server
               ? read_curve_keys(server, pk_setting("PIKOC_ZMQ_CLIENT_KEY"), key, secret_key, err)
               : 0;
}

/* The socket: a DEALER connected to the collector at arg, or (zmq+pub:) a publisher bound there. */
static int open_socket(zmq_state *s, const char *arg, pk_error *err)
{
    if (pk_zmq_check_endpoint(arg, s->lossy, err) != 0 || need_libzmq(err) != 0)
        return -1;
    s->context = libzmq.ctx_new();
    if (!s->context)
        return socket_failed(err, arg);
    s->socket = libzmq.socket(s->context, s->lossy ? ZMQ_XPUB : ZMQ_DEALER);
    int zero = 0;
    if (!s->socket || libzmq.setsockopt(s->socket, ZMQ_LINGER, &zero, sizeof zero) != 0) {
        socket_failed(err, arg);
        goto fail;
    }
    if ((s->lossy ? open_publisher : open_dealer)(s, arg, err) != 0)
        goto fail;
    return 0;
fail:
    if (s->socket)
        libzmq.close(s->socket);
    libzmq.ctx_term(s->context);
    return -1;
}

static int sender_open(pk_recorder *r, const char *arg, pk_error *err)
{
    zmq_state *s = pk_recorder_state(r);
    s->lossy = pk_recorder_option(r, "pub");
    if (read_linger(s, err) != 0 || open_socket(s, arg, err) != 0)
        return -1;
    s->endpoint = pk_xstrdup(arg);
    return 0;
}

/* ---- the window and acknowledgements ------------------------------------------ */

static sent_batch *window_at(zmq_state *s, size_t i)
{
    return &s->window[(s->first + i) % WINDOW];
}

static void window_pop(zmq_state *s)
{
    s->first = (s->first + 1) % WINDOW;
    s->count--;
    s->first_seq++;
}

static void acknowledged(zmq_state *s, uint64_t seq)
{
    bool moved = false;
    while (s->count > 0 && s->first_seq <= seq) {
        window_pop(s);
        moved = true;
    }
    if (moved) {
        s->progress_ns = pk_clock_monotonic_ns();
        s->gave_up = false;
        s->known = true;
    }
}

/* Takes every message the collector sent: acknowledgements and resend requests. */
static void take_replies(zmq_state *s)
{
    uint8_t reply[64];
    int n;
    while ((n = libzmq.recv(s->socket, reply, sizeof reply, ZMQ_DONTWAIT)) >= 0) {
        pk_wire_header h;
        size_t offset;
        if ((size_t)n > sizeof reply ||
            pk_wire_decode_header(reply, (size_t)n, &h, &offset, NULL) != 0 ||
            h.sender != s->encoder.sender)
            continue;
        if (h.type == PK_WIRE_ACK)
            acknowledged(s, h.seq);
        else if (h.type == PK_WIRE_RESEND)
            s->need_resume = true;
    }
}

/* Waits up to POLL_MS for replies, then takes them. */
static void wait_replies(zmq_state *s)
{
    zmq_pollitem_t item = {.socket = s->socket, .events = ZMQ_POLLIN};
    libzmq.poll(&item, 1, POLL_MS);
    take_replies(s);
}

/* Sends one message if the socket takes it now (never waits). */
static bool transmit(zmq_state *s, const pk_wire_buf *m)
{
    return libzmq.send(s->socket, m->bytes, m->used, ZMQ_DONTWAIT) >= 0;
}

static bool send_hello(zmq_state *s, unsigned flags, uint64_t next_seq)
{
    pk_wire_encode_hello(&s->encoder, &s->run, s->ppid, flags | (s->lossy ? PK_WIRE_LOSSY : 0),
                         next_seq, &s->message);
    return transmit(s, &s->message);
}

/*
 * Lossless: the collector does not know us (first contact, a restart, a
 * send that failed): a hello with every string so far, then every
 * unacknowledged batch again. The collector ignores what it already has.
 */
static void resume(zmq_state *s)
{
    unsigned flags = s->known ? PK_WIRE_RESUME : 0;
    s->resumed_ns = pk_clock_monotonic_ns();
    s->need_resume = !send_hello(s, flags, s->count ? s->first_seq : s->encoder.next_seq);
    for (size_t i = 0; i < s->count && !s->need_resume; i++)
        s->need_resume = !transmit(s, &window_at(s, i)->message);
}

/* Resends when asked, after a failed send, or after a silence. */
static void resume_if_needed(zmq_state *s)
{
    uint64_t now = pk_clock_monotonic_ns();
    if (now - s->resumed_ns < POLL_MS * 1000000ull)
        return;
    if (s->need_resume || (s->count && now - s->progress_ns >= RESEND_AFTER_NS &&
                           now - s->resumed_ns >= RESEND_AFTER_NS))
        resume(s);
}

/* Gives up the oldest batch: its entries count as dropped. */
static void drop_oldest(zmq_state *s)
{
    s->dropped_entries += window_at(s, 0)->records;
    window_pop(s);
}

/*
 * Lossless: waits until the window has room. Nobody acknowledging anything
 * for the linger makes the sender give up waiting (and warn once): the
 * oldest batches are then dropped, counted, until a collector answers.
 */
static void wait_for_room(zmq_state *s)
{
    while (s->count == WINDOW) {
        if (s->gave_up) {
            drop_oldest(s);
            return;
        }
        wait_replies(s);
        resume_if_needed(s);
        if (s->count == WINDOW && pk_clock_monotonic_ns() - s->progress_ns >= s->linger_ns) {
            pk_warn("recorder 'zmq:%s': no collector acknowledged anything for %.1f s "
                    "(%s); batches are dropped and counted until one does",
                    s->endpoint, (double)s->linger_ns / 1e9, s->linger_name);
            s->gave_up = true;
        }
    }
}

/* The next window slot, for the message of seq encoder.next_seq. */
static sent_batch *window_push(zmq_state *s, uint32_t records)
{
    if (s->count == 0) {
        s->first_seq = s->encoder.next_seq;
        s->progress_ns = pk_clock_monotonic_ns();
    }
    sent_batch *b = window_at(s, s->count++);
    b->records = records;
    return b;
}

/* ---- publishing (zmq+pub:) ------------------------------------------------------ */

/* Takes the subscriptions that came: each new subscriber needs a hello. */
static void take_subscriptions(zmq_state *s)
{
    uint8_t m[64];
    int n;
    while ((n = libzmq.recv(s->socket, m, sizeof m, ZMQ_DONTWAIT)) >= 0) {
        if (n >= 1 && m[0] == 1) {
            s->subscribers++;
            s->need_hello = true;
        }
    }
}

/* PIKOC_ZMQ_SUBSCRIBERS=N: the run starts once N subscribed, or after the linger. */
static void wait_for_subscribers(zmq_state *s)
{
    uint64_t since = pk_clock_monotonic_ns();
    take_subscriptions(s);
    while (s->subscribers < s->wanted_subscribers) {
        if (pk_clock_monotonic_ns() - since >= s->linger_ns) {
            pk_warn("recorder 'zmq+pub:%s': %llu of %llu subscribers came within %.1f s "
                    "(PIKOC_ZMQ_LINGER); the run goes on without the others",
                    s->endpoint, (unsigned long long)s->subscribers,
                    (unsigned long long)s->wanted_subscribers, (double)s->linger_ns / 1e9);
            return;
        }
        zmq_pollitem_t item = {.socket = s->socket, .events = ZMQ_POLLIN};
        libzmq.poll(&item, 1, POLL_MS);
        take_subscriptions(s);
    }
}

/*
 * Never waits: a batch the socket does not take at once is dropped and
 * counted for every subscriber alike (NODROP). A new subscriber first gets
 * a hello with every string and stack so far, so it can store the rest.
 */
static void publish(zmq_state *s)
{
    pk_wire_encoder *e = &s->encoder;
    uint32_t records = e->record_count;
    take_subscriptions(s);
    if (s->need_hello)
        s->need_hello = !send_hello(s, 0, e->next_seq);
    pk_wire_finish_batch(e, &s->message);
    if (!transmit(s, &s->message)) {
        s->dropped_entries += records;
        s->dropped_batches++;
        /* the batch defined strings and stacks no subscriber saw */
        pk_wire_encoder_forget_strings(e);
    }
}

/*
 * The goodbye ends the run at every subscriber: it may wait the linger for
 * room. zmq then delivers what it queued while the socket lingers.
 */
static int publish_goodbye(zmq_state *s, pk_wire_goodbye *g, pk_error *err)
{
    int linger = (int)(s->linger_ns / 1000000);
    take_subscriptions(s);
    if (s->need_hello)
        send_hello(s, 0, s->encoder.next_seq);
    g->dropped_entries = s->dropped_entries;
    pk_wire_encode_goodbye(&s->encoder, g, &s->message);
    libzmq.setsockopt(s->socket, ZMQ_SNDTIMEO, &linger, sizeof linger);
    libzmq.setsockopt(s->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (s->dropped_batches)
        pk_warn("recorder 'zmq+pub:%s': %llu records in %llu batches had no room toward a "
                "subscriber and were dropped (the run counts them)",
                s->endpoint, (unsigned long long)s->dropped_entries,
                (unsigned long long)s->dropped_batches);
    if (libzmq.send(s->socket, s->message.bytes, s->message.used, 0) < 0)
        return pk_fail(err,
                       "%s: no room toward a subscriber for the goodbye within %.1f s "
                       "(%s); subscribers end the run incomplete",
                       s->endpoint, (double)s->linger_ns / 1e9, s->linger_name);
    return 0;
}

static void send_batch(zmq_state *s)
{
    pk_wire_encoder *e = &s->encoder;
    if (e->record_count == 0)
        return;
    s->batches++;
    if (s->lossy) {
        publish(s);
        return;
    }
    take_replies(s);
    resume_if_needed(s);
    wait_for_room(s);
    sent_batch *b = window_push(s, e->record_count);
    pk_wire_finish_batch(e, &b->message);
    if (!s->need_resume && !transmit(s, &b->message))
        s->need_resume = true;
}

/* ---- the recorder ------------------------------------------------------------------ */

static uint64_t random_sender(void)
{
    uint64_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = pk_clock_monotonic_ns() ^ ((uint64_t)getpid() << 32);
    return id;
}

static int sender_start(pk_recorder *r, const pk_run_info *run, pk_error *err)
{
    (void)err;
    zmq_state *s = pk_recorder_state(r);
    if (s->encoder.strings)
        pk_wire_encoder_free(&s->encoder);
    pk_wire_encoder_init(&s->encoder, random_sender());
    s->run = *run;
    s->ppid = (int)pk_program_parent(); /* the program's, from a drainer process too */
    s->thread_count = 0;
    s->last_thread = 0;
    s->started = true;
    s->gave_up = s->known = false;
    /* the first batch goes after a hello */
    s->need_resume = false;
    s->need_hello = s->lossy;
    s->count = 0;
    s->resumed_ns = 0;
    s->entries = s->written = s->dropped_entries = s->dropped_batches = s->batches = 0;
    if (s->lossy)
        wait_for_subscribers(s);
    else
        resume(s); /* the hello now: a child's run names this one as its parent only once
                    * the collector has it, and a parent waiting on a child sends nothing */
    s->batch_started_ns = pk_clock_monotonic_ns();
    return 0;
}

/* Remembers a thread of the records (records come in runs from one thread). */
static void note_thread(zmq_state *s, uint64_t thread)
{
    s->last_thread = thread;
    for (size_t i = 0; i < s->thread_count; i++)
        if (s->threads[i] == thread)
            return;
    pk_grow(&s->threads, &s->thread_capacity, s->thread_count, sizeof *s->threads);
    s->threads[s->thread_count++] = thread;
}

/* Sends the batch first when it is full or old, so a record and its write stay together. */
static void add(zmq_state *s, const pk_record *rec, unsigned what)
{
    pk_wire_encoder *e = &s->encoder;
    if (what == PK_WIRE_WRITTEN && pk_wire_mark_written(e, rec))
        return;
    if (e->record_count == 0) {
        s->batch_started_ns = pk_clock_monotonic_ns();
    } else if (e->record_count >= BATCH_RECORDS || pk_wire_batch_bytes(e) >= BATCH_BYTES ||
               (e->record_count % CLOCK_CHECK_RECORDS == 0 &&
                pk_clock_monotonic_ns() - s->batch_started_ns >= BATCH_AGE_NS)) {
        send_batch(s);
        s->batch_started_ns = pk_clock_monotonic_ns();
    }
    pk_wire_encode_record(e, rec, what);
    s->entries++;
    if (rec->thread != s->last_thread)
        note_thread(s, rec->thread);
}

static int sender_observe(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)err;
    add(r->state, rec, PK_WIRE_OBSERVED);
    return 0;
}

static int sender_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)err;
    zmq_state *s = r->state;
    s->written++;
    add(s, rec, PK_WIRE_WRITTEN);
    return 0;
}

static int sender_flush(pk_recorder *r, pk_error *err)
{
    (void)err;
    zmq_state *s = pk_recorder_state(r);
    if (s->started) {
        send_batch(s);
        if (s->lossy) {
            take_subscriptions(s);
        } else {
            take_replies(s);
            resume_if_needed(s);
        }
    }
    return 0;
}

static int send_goodbye(zmq_state *s, pk_wire_goodbye *g, pk_error *err)
{
    if (s->lossy)
        return publish_goodbye(s, g, err);
    wait_for_room(s);
    /* the goodbye counts what was dropped up to now; dropping it too is reported below */
    g->dropped_entries = s->dropped_entries;
    sent_batch *b = window_push(s, 0);
    pk_wire_encode_goodbye(&s->encoder, g, &b->message);
    if (!s->need_resume && !transmit(s, &b->message))
        s->need_resume = true;
    /* Every message acknowledged, unless nothing moves for the linger. */
    while (s->count > 0) {
        resume_if_needed(s);
        wait_replies(s);
        if (s->count > 0 &&
            (s->gave_up || pk_clock_monotonic_ns() - s->progress_ns >= s->linger_ns))
            return pk_fail(err,
                           "%s: no collector acknowledged the last %zu batches within %.1f s "
                           "(%s); they are lost",
                           s->endpoint, s->count, (double)s->linger_ns / 1e9, s->linger_name);
    }
    return 0;
}

/* How long the replaced image's drainer, which holds pikoc run's pipe, waits for its goodbye. */
#define EXECUTED_LINGER_NS 1000000000ull

/*
 * The goodbye after the last batch. executed: the process executed another
 * program; its goodbye says so, and in a drainer the kernel's peak resident
 * set is the new image's by then (0: the collector takes the largest sample
 * for the run's). A drainer waits a second at most (the last batch
 * had the whole linger while pikoc run waits on it); in the program's own
 * process, before its exec, the whole linger.
 */
static int end_run(zmq_state *s, const pk_run_totals *totals, bool executed, pk_error *err)
{
    if (!s->started)
        return 0;
    send_batch(s);
    s->started = false;
    if (executed && pk_in_drainer() && s->linger_ns > EXECUTED_LINGER_NS) {
        s->linger_ns = EXECUTED_LINGER_NS;
        s->linger_name = "the wait of a run whose program executed another";
    }
    /* the names the sqlite recorder would store, which only this process knows */
    char(*names)[16] = pk_xcalloc(s->thread_count + 1, sizeof *names);
    uint64_t *named = pk_xcalloc(s->thread_count + 1, sizeof *named);
    size_t count = 0;
    for (size_t i = 0; i < s->thread_count; i++)
        if (pk_thread_name(s->threads[i], names[count]))
            named[count++] = s->threads[i];
    pk_wire_goodbye g = {.totals = *totals,
                         .entries = s->entries,
                         .written = s->written,
                         .batches = s->batches,
                         .peak_rss = executed && pk_in_drainer() ? 0 : pk_process_peak_rss(),
                         .thread_count = count,
                         .threads = named,
                         .names = names,
                         .executed = executed};
    int rc = send_goodbye(s, &g, err);
    free(names);
    free(named);
    return rc;
}

static int sender_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    return end_run(pk_recorder_state(r), totals, false, err);
}

/*
 * The program executed another image (src/drainer.c): the run ends with a
 * goodbye that says so (the collector marks it 'executed'), waiting a second
 * at most for it to be acknowledged.
 */
static int sender_executed(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    /* The socket's linger needs nothing here: a sender's stays 0 (its
     * messages are acknowledged or given up), and a publisher's goodbye set
     * its own to the capped wait. */
    return end_run(pk_recorder_state(r), totals, true, err);
}

static void sender_close(pk_recorder *r)
{
    zmq_state *s = pk_recorder_state(r);
    if (r->forked) {
        for (size_t i = 0; i < PK_ARRAY_SIZE(forked_sockets); i++) {
            if (!forked_sockets[i].context) {
                forked_sockets[i].context = s->context;
                forked_sockets[i].socket = s->socket;
                break;
            }
        }
    } else {
        libzmq.close(s->socket);
        libzmq.ctx_term(s->context);
    }
    if (s->encoder.strings)
        pk_wire_encoder_free(&s->encoder);
    pk_wire_buf_free(&s->message);
    free(s->threads);
    for (size_t i = 0; i < WINDOW; i++)
        pk_wire_buf_free(&s->window[i].message);
    free(s->endpoint);
}

const pk_recorder_ops pk_recorder_zmq = {
    .name = "zmq",
    .usage = "zmq[+pub]:ENDPOINT",
    .needs_arg = true,
    .size = sizeof(zmq_state),
    .open = sender_open,
    .start = sender_start,
    .write = sender_write,
    .flush = sender_flush,
    .finish = sender_finish,
    .close = sender_close,
    .observe = sender_observe,
    .options = sender_options,
    .executed = sender_executed,
};

/* ---- the launcher's report ----------------------------------------------------------- */

/* Whether the collector acknowledged message seq 1 of sender (waits up to POLL_MS). */
static bool exit_acknowledged(zmq_state *s, uint64_t sender)
{
    zmq_pollitem_t item = {.socket = s->socket, .events = ZMQ_POLLIN};
    libzmq.poll(&item, 1, POLL_MS);
    uint8_t reply[64];
    int n;
    while ((n = libzmq.recv(s->socket, reply, sizeof reply, ZMQ_DONTWAIT)) >= 0) {
        pk_wire_header h;
        size_t offset;
        if ((size_t)n <= sizeof reply &&
            pk_wire_decode_header(reply, (size_t)n, &h, &offset, NULL) == 0 && h.sender == sender &&
            h.type == PK_WIRE_ACK && h.seq >= 1)
            return true;
    }
    return false;
}

int pk_zmq_report_exit(const char *endpoint, const pk_wire_exit *x, pk_error *err)
{
    zmq_state s = {.immediate = true};
    if (read_linger(&s, err) != 0 || open_socket(&s, endpoint, err) != 0)
        return -1;
    /* a collector gone (listen --runs N) is no reason to wait the linger */
    zmq_pollitem_t connected = {.socket = s.socket, .events = ZMQ_POLLOUT};
    if (libzmq.poll(&connected, 1, CONNECT_WAIT_MS) <= 0) {
        libzmq.close(s.socket);
        libzmq.ctx_term(s.context);
        return pk_fail(err, "%s: no collector there to tell how the program ended", endpoint);
    }
    uint64_t sender = random_sender();
    pk_wire_buf m = {0};
    pk_wire_encode_exit(sender, x, &m);
    bool acknowledged = false;
    uint64_t start = pk_clock_monotonic_ns(), now = start, sent = 0;
    for (; !acknowledged && now - start < s.linger_ns; now = pk_clock_monotonic_ns()) {
        /* sent again after a silence, as batches are: the collector may have restarted */
        if (!sent || now - sent >= RESEND_AFTER_NS) {
            transmit(&s, &m);
            sent = now;
        }
        acknowledged = exit_acknowledged(&s, sender);
    }
    pk_wire_buf_free(&m);
    libzmq.close(s.socket);
    libzmq.ctx_term(s.context);
    if (!acknowledged)
        return pk_fail(err,
                       "%s: no collector acknowledged how the program ended within %.1f s "
                       "(PIKOC_ZMQ_LINGER)",
                       endpoint, (double)s.linger_ns / 1e9);
    return 0;
}
