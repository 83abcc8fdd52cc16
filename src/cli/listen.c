/*
 * listen.c — `pikoc listen`: the collector. Binds a ZeroMQ endpoint, takes
 * the wire format of docs/wire-format.md from any number of zmq:ENDPOINT
 * senders (and from the zmq+pub:ENDPOINT publishers it subscribes to) and
 * writes each sender's run through the store writer, the same code as the
 * sqlite recorder, while a live view shows every sender. It trusts no
 * message: a bad one is counted, named and dropped.
 */
#include "cli.h"

#include "clock.h"
#include "store.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:5557"
#define MONITOR_ENDPOINT "inproc://pikoc-listen-monitor"
#define PUBLISHER_MONITOR_ENDPOINT "inproc://pikoc-listen-publisher-%zu"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01" /* where libzmq asks who may connect */
#define REPORTED_REJECTS 20                   /* then they are only counted */
#define ENDED_MEMORY 1024 /* ended senders remembered, so late duplicates stay ignored */
#define TOP_FUNCTIONS 3
#define MAX_PUBLISHERS 16             /* --subscribe endpoints */
#define PROBE_INTERVAL_NS 50000000ull /* after a connection closed, senders are checked */
#define PROBE_PERIOD_NS 2000000000ull /* this often, for this long */
#define HEARTBEAT_MS 2000             /* a connection silent for 3 of these is closed */
/* Batches of a sender waiting for a commit before it is due: half its window
 * (recorders/zmq.c), so that it need not stop and wait for the commit. */
#define UNSTORED_BATCHES 16
/* After --runs N: what pikoc run says of its program's end comes just after the run's end. */
#define EXIT_GRACE_NS 200000000ull

static const char help[] =
    "usage: pikoc listen [OPTIONS] [ENDPOINT]\n"
    "\n"
    "Collects runs sent by zmq:ENDPOINT recorders (pikoc run --record zmq:...,\n"
    "PIKOC_RECORD=zmq:..., or the C API) from any number of processes, each\n"
    "process its own run in the database, and shows them live: records per\n"
    "second, current RSS and top functions per process. ENDPOINT is\n"
    "tcp://HOST:PORT (PORT 1 to 65535, or * for any free one, then shown) or\n"
    "ipc://PATH (default: " DEFAULT_ENDPOINT ", loopback only). Ctrl-C or\n"
    "SIGTERM stops it with every received batch written; started again on the\n"
    "same database, it takes the runs left open up again (their\n"
    "senders send what was not stored yet), so a run stays one run. A batch is\n"
    "acknowledged once it is in the database. pikoc run tells it how a program\n"
    "it started ended (exit status, signal).\n"
    "\n"
    "options:\n"
    "  -o, --into DB          the database (default: pikoc.db); 'none' stores\n"
    "                         nothing (the transport alone, for measurements; the\n"
    "                         view then has no top functions)\n"
    "  -s, --subscribe ENDPOINT  take the runs a zmq+pub:ENDPOINT recorder publishes\n"
    "                         there too (repeatable, up to 16 publishers; without\n"
    "                         an ENDPOINT operand nothing is bound). What the\n"
    "                         publisher dropped, and what it published before this\n"
    "                         collector came, counts in the run's dropped column.\n"
    "                         A publisher gone (killed, or silent for 6 s) has its\n"
    "                         run end incomplete with what arrived\n"
    "  -k, --curve-keys DIR   CURVE encryption and authentication: DIR/server.key and\n"
    "                         DIR/server.pub are made when missing (DIR too);\n"
    "                         senders set PIKOC_ZMQ_SERVER_KEY to DIR/server.pub (or\n"
    "                         its text). With DIR/clients/*.pub, only senders whose\n"
    "                         key is there (PIKOC_ZMQ_CLIENT_KEY: their secret key)\n"
    "                         get in\n"
    "  -i, --interval DURATION  how often the view refreshes (default: 1s)\n"
    "  -n, --runs N           stop once N runs have ended (0.2 s later: pikoc run\n"
    "                         says how its program ended just after its run ends)\n"
    "  -h, --help             this help\n"
    "\n"
    "The view refreshes in place on a terminal; otherwise it prints one line per\n"
    "active sender at each interval, and one line when a run ends.\n"
    "\n"
    "example:\n"
    "  pikoc listen --into runs.db &\n"
    "  pikoc run --record zmq:tcp://127.0.0.1:5557 -- ./app\n";

static int listen_main(int argc, char **argv);

const pk_cli_command pk_cmd_listen = {
    .name = "listen",
    .summary = "collect runs sent over ZeroMQ into a database, live",
    .help = help,
    .main = listen_main,
};

enum { OPT_INTO, OPT_SUBSCRIBE, OPT_CURVE, OPT_INTERVAL, OPT_RUNS };
static const pk_cli_option options[] = {
    [OPT_INTO] = {"into", 'o', "DB"},         [OPT_SUBSCRIBE] = {"subscribe", 's', "ENDPOINT"},
    [OPT_CURVE] = {"curve-keys", 'k', "DIR"}, [OPT_INTERVAL] = {"interval", 'i', "DURATION"},
    [OPT_RUNS] = {"runs", 'n', "N"},
};

typedef struct sender {
    uint64_t id;
    uint8_t route[256];  /* the ROUTER's identity of its connection (its latest message's) */
    size_t route_length; /* 0 for a publisher's run: no replies */
    void *subscriber;    /* a publisher's run: the SUB its messages come through */
    pk_wire_peer peer;
    pk_store_run *run;
    int64_t run_id; /* numbered by the collector when nothing is stored */
    uint64_t next_seq;
    /* acknowledged once stored: the last seq kept, the writer's commits then, the last acked */
    uint64_t kept_seq, kept_commits, acked_seq;
    bool resumed;                                 /* its run is one an earlier collector left */
    uint64_t entries, records, written, rejected; /* records: observed entries */
    uint64_t skipped;                             /* of event types this pikoc does not know */
    /* a lossy sender: batches whose seq never came (dropped there, or missed here); at
     * its goodbye, entries it dropped and entries that did not come here */
    uint64_t missing_batches, dropped_there, missed_here;
    uint64_t rss;
    bool has_rss;
    uint64_t view_records; /* records at the last refresh */
    double rate;
} sender;

typedef struct collector {
    const char *endpoint; /* NULL: only subscribed */
    char bound[256];      /* where it is bound: a port given as * is known */
    void *context, *socket, *monitor;
    /* a SUB connected to each --subscribe publisher, and a monitor of its connection: one
     * publisher binds there, so a closed connection is the end of that publisher's runs */
    void *subscribers[MAX_PUBLISHERS], *publisher_monitors[MAX_PUBLISHERS];
    const char *publishers[MAX_PUBLISHERS];
    size_t publisher_count;
    void *zap;              /* answers CURVE handshakes when DIR/clients exists */
    uint8_t (*clients)[32]; /* the public keys allowed */
    size_t client_count, client_capacity;
    const char *curve_dir;
    pk_store_writer *writer; /* NULL with --into none */
    const char *path;
    sender **senders;
    size_t sender_count, sender_capacity;
    uint64_t ended[ENDED_MEMORY];
    size_t ended_count;
    int64_t runs_started;
    uint64_t runs_ended, runs_wanted;
    uint64_t stop_ns; /* --runs reached: when to stop */
    uint64_t records, rejected, reported;
    pk_wire_batch batch;
    bool tty;
    uint64_t interval_ns, last_view_ns;
    uint64_t last_probe_ns, probe_until_ns; /* probes after a connection closed */
    size_t view_lines;
    int status;
} collector;

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal)
{
    (void)signal;
    stop_requested = 1;
}

/* ---- senders ---------------------------------------------------------------------- */

static sender *find_sender(collector *c, uint64_t id)
{
    for (size_t i = 0; i < c->sender_count; i++)
        if (c->senders[i]->id == id)
            return c->senders[i];
    return NULL;
}

static bool has_ended(const collector *c, uint64_t id)
{
    for (size_t i = 0; i < c->ended_count && i < ENDED_MEMORY; i++)
        if (c->ended[i] == id)
            return true;
    return false;
}

static void remember_ended(collector *c, uint64_t id)
{
    c->ended[c->ended_count++ % ENDED_MEMORY] = id;
}

static void name_sender(const sender *s, char *buf, size_t size)
{
    snprintf(buf, size, "run %lld (pid %d on %s)", (long long)s->run_id, s->peer.run.pid,
             s->peer.run.host);
}

/* Counts a rejection; says "pikoc listen: WHAT: WHY" for the first REPORTED_REJECTS. */
static void say_rejected(collector *c, const char *what, const char *why)
{
    c->rejected++;
    if (c->reported++ >= REPORTED_REJECTS)
        return;
    fprintf(stderr, "pikoc listen: %s: %s\n", what, why);
    if (c->reported == REPORTED_REJECTS)
        fprintf(stderr, "pikoc listen: more rejected messages are only counted\n");
}

static void reject(collector *c, sender *s, const char *why)
{
    char who[300] = "an unknown sender", what[330];
    if (s) {
        s->rejected++;
        name_sender(s, who, sizeof who);
    }
    snprintf(what, sizeof what, "rejected a message from %s", who);
    say_rejected(c, what, why);
}

/* A store error stops the collector: what it holds could not be written. */
static void store_failed(collector *c, const pk_error *err)
{
    fprintf(stderr, "pikoc listen: %s\n", err->message);
    c->status = PK_EXIT_FAILURE;
    stop_requested = 1;
}

/* How a sender's run ends in this collector. */
typedef enum ending {
    SAID_GOODBYE, /* its goodbye came: the run is over */
    VANISHED,     /* its connection closed first: over, with what arrived */
    SUSPENDED,    /* the collector stops: the next one may take the run up again */
} ending;

static int store_end(sender *s, ending how, const pk_run_totals *totals, uint64_t peak_rss,
                     const char *status, pk_error *err)
{
    if (!s->run)
        return 0;
    if (how == SUSPENDED)
        return pk_store_run_suspend(s->run, err);
    return pk_store_run_finish(s->run, totals, peak_rss, status, err);
}

/* Forgets a sender whose run ended, with `status` for its last line. */
static void end_sender(collector *c, sender *s, ending how, const pk_run_totals *totals,
                       uint64_t peak_rss, const char *status)
{
    pk_error err;
    if (store_end(s, how, totals, peak_rss, status, &err) != 0)
        store_failed(c, &err);
    char who[300];
    name_sender(s, who, sizeof who);
    char skipped[128] = "";
    if (s->skipped || s->rejected)
        snprintf(skipped, sizeof skipped,
                 ", %llu of event types unknown here skipped, %llu "
                 "messages rejected",
                 (unsigned long long)s->skipped, (unsigned long long)s->rejected);
    char lossy[128] = "";
    if (s->peer.flags & PK_WIRE_LOSSY)
        snprintf(lossy, sizeof lossy, ", %llu dropped by the sender, %llu missed here",
                 (unsigned long long)s->dropped_there, (unsigned long long)s->missed_here);
    printf("%s: %s, %llu records received (%llu stored in detail)%s%s%s\n", who, status,
           (unsigned long long)s->records, (unsigned long long)s->written, skipped,
           how == SAID_GOODBYE ? lossy : "", how == SAID_GOODBYE ? "" : ", no goodbye");
    fflush(stdout);
    if (how == SAID_GOODBYE)
        remember_ended(c, s->id);
    c->runs_ended++;
    if (c->runs_wanted && c->runs_ended == c->runs_wanted)
        c->stop_ns = pk_clock_monotonic_ns() + EXIT_GRACE_NS;
    pk_store_run_free(s->run);
    pk_wire_peer_free(&s->peer);
    for (size_t i = 0; i < c->sender_count; i++) {
        if (c->senders[i] == s) {
            c->senders[i] = c->senders[--c->sender_count];
            break;
        }
    }
    free(s);
    c->view_lines = 0;
}

/* ---- replies ------------------------------------------------------------------------ */

/* A header-only message; false when the route's connection is gone (ZMQ_ROUTER_MANDATORY). */
static bool send_header(collector *c, const void *route, size_t route_length, pk_wire_type type,
                        uint64_t sender_id, uint64_t seq)
{
    pk_wire_buf m = {0};
    pk_wire_put_header(&m, type, sender_id, seq);
    /* a sender that cannot take it now will ask again: never wait for one */
    bool gone = false;
    if (zmq_send(c->socket, route, route_length, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(c->socket, m.bytes, m.used, ZMQ_DONTWAIT);
    else
        gone = zmq_errno() == EHOSTUNREACH;
    pk_wire_buf_free(&m);
    return !gone;
}

/* To the sender behind route; a publisher's messages (route NULL) get none. */
static void reply(collector *c, const zmq_msg_t *route, pk_wire_type type, uint64_t sender_id,
                  uint64_t seq)
{
    if (route)
        send_header(c, zmq_msg_data((zmq_msg_t *)route), zmq_msg_size(route), type, sender_id, seq);
}

/* An acknowledgement to the sender's latest connection; false when it is gone. */
static bool acknowledge(collector *c, sender *s, uint64_t seq)
{
    return !s->route_length || send_header(c, s->route, s->route_length, PK_WIRE_ACK, s->id, seq);
}

/*
 * Acknowledges what the store has committed, so a collector killed at any
 * moment loses nothing it acknowledged (without a store: on receipt).
 */
static void acknowledge_stored(collector *c, sender *s)
{
    uint64_t commits = c->writer ? pk_store_writer_commits(c->writer) : UINT64_MAX;
    if (s->kept_seq > s->acked_seq && commits > s->kept_commits) {
        acknowledge(c, s, s->kept_seq);
        s->acked_seq = s->kept_seq;
    }
}

/*
 * Whether each sender is still connected: an acknowledgement it already has
 * goes to it, which the socket refuses once its connection closed (killed,
 * crashed). Which connection closed the monitor does not say (no routing
 * id), and the socket forgets a route a little after: so every sender, for a
 * while after each closing. A publisher's run is not probed.
 */
static void probe_senders(collector *c)
{
    for (size_t i = 0; i < c->sender_count;) {
        sender *s = c->senders[i];
        if (!acknowledge(c, s, s->acked_seq))
            end_sender(c, s, VANISHED, NULL, 0, "incomplete");
        else
            i++;
    }
}

/* ---- messages ------------------------------------------------------------------------ */

/* Threads named nowhere yet: the sender's names come with its goodbye. */
static bool no_thread_name(uint64_t thread, char name[16], void *user)
{
    (void)thread, (void)name, (void)user;
    return false;
}

static void take_route(sender *s, const zmq_msg_t *route)
{
    size_t n = zmq_msg_size(route);
    s->route_length = n < sizeof s->route ? n : 0;
    memcpy(s->route, zmq_msg_data((zmq_msg_t *)route), s->route_length);
}

/* Seq comes next: a lossy sender's seqs skipped are batches dropped there, or missed here. */
static void skip_to(sender *s, uint64_t seq)
{
    if (seq <= s->next_seq)
        return;
    if (s->peer.flags & PK_WIRE_LOSSY)
        s->missing_batches += seq - s->next_seq;
    s->next_seq = seq;
}

/* Keeps an accepted message in the store: a later collector rebuilds the run from them. */
static void keep(collector *c, sender *s, uint64_t seq, const uint8_t *data, size_t size)
{
    pk_error err;
    if (s->run && pk_store_run_keep_message(s->run, seq, data, size, &err) != 0)
        store_failed(c, &err);
}

/* Seq (and every one before) is acknowledged once what was kept so far is committed. */
static void taken(collector *c, sender *s, uint64_t seq)
{
    s->kept_seq = seq;
    s->kept_commits = c->writer ? pk_store_writer_commits(c->writer) : 0;
}

static int take_batch(collector *c, sender *s, const uint8_t *data, size_t size, size_t offset);

typedef struct replay {
    collector *c;
    sender *s;
} replay;

/* One kept message of a run taken up again: as when it first came, minus the replies. */
static int replay_message(const uint8_t *data, size_t size, void *user, pk_error *err)
{
    replay *r = user;
    pk_wire_header h;
    size_t offset;
    pk_wire_peer again;
    if (pk_wire_decode_header(data, size, &h, &offset, err) != 0)
        return -1;
    if (h.type == PK_WIRE_HELLO) {
        if (pk_wire_decode_hello(data, size, offset, &again, err) != 0)
            return -1;
        pk_wire_merge_hello(&r->s->peer, &again);
        pk_wire_peer_free(&again);
        skip_to(r->s, r->s->peer.next_seq);
        return 0;
    }
    skip_to(r->s, h.seq);
    r->s->next_seq = h.seq + 1;
    r->s->kept_seq = r->s->acked_seq = h.seq; /* stored: its acknowledgement may have gone out */
    if (take_batch(r->c, r->s, data, size, offset) != 0)
        return pk_fail(err, "%s: run %lld: a kept batch cannot be taken again", r->c->path,
                       (long long)r->s->run_id);
    return 0;
}

/* Starts the sender's run, or takes up the one an earlier collector left (run_id). */
static int open_run(collector *c, sender *s, int64_t run_id, pk_error *err)
{
    s->run = run_id ? pk_store_run_reopen(c->writer, run_id, &s->peer.run, err)
                    : pk_store_run_start(c->writer, &s->peer.run, s->peer.ppid, s->id, err);
    if (!s->run)
        return -1;
    s->run_id = pk_store_run_id(s->run);
    pk_store_run_name_threads(s->run, no_thread_name, NULL);
    pk_store_run_resolve_frames(s->run, pk_wire_peer_frame, &s->peer);
    if (!run_id)
        return 0;
    s->resumed = true;
    replay r = {c, s};
    if (pk_store_run_replay(s->run, replay_message, &r, err) != 0)
        return -1;
    return pk_store_writer_commit(c->writer, err);
}

static void take_hello(collector *c, sender *s, const zmq_msg_t *route, void *subscriber,
                       const uint8_t *data, size_t size, const pk_wire_header *h, size_t offset)
{
    pk_wire_peer peer;
    pk_error err;
    if (pk_wire_decode_hello(data, size, offset, &peer, &err) != 0) {
        reject(c, s, err.message);
        return;
    }
    if (s) {
        /* a resend: the strings again, and where the batches go on */
        pk_wire_merge_hello(&s->peer, &peer);
        pk_wire_peer_free(&peer);
        skip_to(s, s->peer.next_seq);
        keep(c, s, 0, data, size);
        return;
    }
    if (peer.schema_version > PK_STORE_VERSION) {
        pk_wire_peer_free(&peer);
        char why[160];
        snprintf(why, sizeof why, "schema version %llu is newer than this pikoc (%d)",
                 (unsigned long long)peer.schema_version, PK_STORE_VERSION);
        reject(c, NULL, why);
        return;
    }
    int64_t run_id = 0;
    pk_store_sender_state state = PK_STORE_SENDER_NEW;
    if (c->writer && pk_store_writer_find_sender(c->writer, h->sender, &run_id, &state, &err) != 0)
        store_failed(c, &err);
    if (state == PK_STORE_SENDER_ENDED) {
        /* its goodbye is stored, but our acknowledgement of it was lost */
        pk_wire_peer_free(&peer);
        remember_ended(c, h->sender);
        return;
    }
    s = pk_xcalloc(1, sizeof *s);
    s->id = h->sender;
    s->peer = peer;
    s->next_seq = 1;
    s->subscriber = subscriber;
    if (route)
        take_route(s, route);
    if (!c->writer) {
        s->run_id = ++c->runs_started;
    } else if (open_run(c, s, state == PK_STORE_SENDER_RESUMABLE ? run_id : 0, &err) != 0) {
        store_failed(c, &err);
        pk_store_run_free(s->run);
        pk_wire_peer_free(&s->peer);
        free(s);
        return;
    }
    /* a subscriber that came late: what was published before is missing here */
    uint64_t missed_before = s->missing_batches;
    skip_to(s, peer.next_seq);
    pk_grow(&c->senders, &c->sender_capacity, c->sender_count, sizeof *c->senders);
    c->senders[c->sender_count++] = s;
    keep(c, s, 0, data, size);
    char who[300];
    name_sender(s, who, sizeof who);
    char late[96] = "", resumed[96] = "";
    if (s->missing_batches > missed_before)
        snprintf(late, sizeof late, " (joined late: batches %llu to %llu missed)",
                 (unsigned long long)(s->next_seq - (s->missing_batches - missed_before)),
                 (unsigned long long)(s->next_seq - 1));
    if (s->resumed)
        snprintf(resumed, sizeof resumed, " (resumed: %llu records from an earlier collector)",
                 (unsigned long long)s->records);
    else if (s->peer.flags & PK_WIRE_RESUME)
        snprintf(resumed, sizeof resumed, " (resumed: earlier records are in another run)");
    printf("%s: started, %s%s%s\n", who, s->peer.run.command_line, resumed, late);
    fflush(stdout);
    c->view_lines = 0;
}

/* Whether a batch or goodbye of seq comes next; acknowledges duplicates. */
static bool in_order(collector *c, sender *s, const zmq_msg_t *route, uint64_t seq)
{
    if (seq < s->next_seq) { /* sent again after a silence: we have it (stored, or soon) */
        reply(c, route, PK_WIRE_ACK, s->id, s->acked_seq);
        return false;
    }
    if (seq > s->next_seq && !(s->peer.flags & PK_WIRE_LOSSY)) {
        /* a lossless sender's batch went missing: from the first unacknowledged again */
        reply(c, route, PK_WIRE_RESEND, s->id, 0);
        return false;
    }
    skip_to(s, seq);
    return true;
}

static int take_batch(collector *c, sender *s, const uint8_t *data, size_t size, size_t offset)
{
    pk_error err;
    if (pk_wire_decode_batch(&s->peer, data, size, offset, &c->batch, &err) != 0) {
        reject(c, s, err.message);
        return -1;
    }
    for (size_t i = 0; i < c->batch.count; i++) {
        const pk_wire_entry *e = &c->batch.entries[i];
        s->skipped += e->head == 0;
        if (e->head & PK_WIRE_OBSERVED) {
            s->records++;
            if (s->run)
                pk_store_run_observe(s->run, &e->record);
        }
        if (e->head & PK_WIRE_WRITTEN) {
            s->written++;
            if (s->run && pk_store_run_write(s->run, &e->record, &err) != 0) {
                store_failed(c, &err);
                return -1;
            }
        }
        if (e->record.flags & PK_RECORD_MEMORY) {
            s->rss = e->record.rss;
            s->has_rss = true;
        }
    }
    s->entries += c->batch.count;
    return 0;
}

/* The names of the sender's threads, which its goodbye brings. */
static bool goodbye_thread_name(uint64_t thread, char name[16], void *user)
{
    const pk_wire_goodbye *g = user;
    for (size_t i = 0; i < g->thread_count; i++) {
        if (g->threads[i] == thread) {
            memcpy(name, g->names[i], 16);
            return name[0] != '\0';
        }
    }
    return false;
}

static void take_goodbye(collector *c, sender *s, const uint8_t *data, size_t size, size_t offset)
{
    pk_wire_goodbye g;
    pk_error err;
    if (pk_wire_decode_goodbye(data, size, offset, &g, &err) != 0) {
        reject(c, s, err.message);
        return;
    }
    /* whole when everything the sender put into batches and did not drop arrived */
    uint64_t sent = g.entries - g.dropped_entries;
    bool whole = s->entries == sent && s->written <= g.written;
    pk_run_totals totals = g.totals;
    totals.dropped += g.dropped_entries;
    if (s->peer.flags & PK_WIRE_LOSSY) {
        /* a subscriber's gaps are drops of its run (a lossless one's are another run's) */
        s->dropped_there = g.dropped_entries;
        s->missed_here = sent > s->entries ? sent - s->entries : 0;
        totals.dropped += s->missed_here;
    }
    if (s->run)
        pk_store_run_name_threads(s->run, goodbye_thread_name, &g);
    /* A run whose process executed another program is 'executed', whole or
     * not (the new image's run is filed under it, whichever message comes
     * first), as sqlite: ends one; what it lost is counted in dropped. */
    const char *status = g.executed ? "executed" : whole ? "complete" : "incomplete";
    end_sender(c, s, SAID_GOODBYE, &totals, g.peak_rss, status);
    pk_wire_goodbye_free(&g);
}

/* A launcher says how the program of a run ended: the run is marked as an sqlite: one is. */
static void take_exit(collector *c, const uint8_t *data, size_t size, size_t offset)
{
    pk_wire_exit x;
    pk_error err;
    if (pk_wire_decode_exit(data, size, offset, &x, &err) != 0) {
        reject(c, NULL, err.message);
        return;
    }
    int signal = x.signal ? (int)x.signal : -1, exit_status = x.signal ? -1 : (int)x.exit_status;
    if (c->writer &&
        pk_store_writer_mark_run(c->writer, x.host, (int)x.pid, (int64_t)x.started_after_ns,
                                 x.status, signal, exit_status, &err) != 0)
        fprintf(stderr, "pikoc listen: %s\n", err.message);
    pk_wire_exit_free(&x);
}

/* A message from route (a zmq: sender) or through subscriber (a publisher's). */
static void take_message(collector *c, const zmq_msg_t *route, void *subscriber, zmq_msg_t *msg)
{
    const uint8_t *data = zmq_msg_data(msg);
    size_t size = zmq_msg_size(msg);
    pk_wire_header h;
    size_t offset;
    pk_error err;
    if (pk_wire_decode_header(data, size, &h, &offset, &err) != 0) {
        reject(c, NULL, err.message);
        return;
    }
    sender *s = find_sender(c, h.sender);
    if (!s && !route && h.type != PK_WIRE_HELLO)
        return; /* a publisher's run this subscriber joins at its next hello */
    if (h.type == PK_WIRE_ACK || h.type == PK_WIRE_RESEND) {
        reject(c, s, "an acknowledgement or resend request sent to the collector");
        return;
    }
    if (h.type == PK_WIRE_EXIT) {
        /* acknowledged even when refused: sent again, it would be refused again */
        take_exit(c, data, size, offset);
        reply(c, route, PK_WIRE_ACK, h.sender, h.seq);
        return;
    }
    if (!s && has_ended(c, h.sender)) {
        /* a late copy of what an ended run sent: its acknowledgement was lost */
        reply(c, route, PK_WIRE_ACK, h.sender, h.seq);
        return;
    }
    if (h.type == PK_WIRE_HELLO) {
        take_hello(c, s, route, subscriber, data, size, &h, offset);
        return;
    }
    if (!s) {
        /* we restarted, or its hello was lost: ask for it */
        reply(c, route, PK_WIRE_RESEND, h.sender, 0);
        return;
    }
    if (route)
        take_route(s, route);
    if (!in_order(c, s, route, h.seq))
        return;
    s->next_seq = h.seq + 1;
    if (h.type == PK_WIRE_GOODBYE) {
        take_goodbye(c, s, data, size, offset); /* s is gone, its run committed */
        reply(c, route, PK_WIRE_ACK, h.sender, h.seq);
        return;
    }
    uint64_t before = s->records;
    /* a batch refused is acknowledged too: sent again, it would be refused again */
    if (take_batch(c, s, data, size, offset) == 0)
        keep(c, s, h.seq, data, size);
    taken(c, s, h.seq);
    c->records += s->records - before;
    if (c->writer && s->kept_seq - s->acked_seq >= UNSTORED_BATCHES &&
        pk_store_writer_commit(c->writer, &err) != 0)
        store_failed(c, &err);
    acknowledge_stored(c, s);
}

/* Takes one [route][message] from the socket; false when there is none. */
static bool receive(collector *c)
{
    zmq_msg_t route, msg;
    zmq_msg_init(&route);
    if (zmq_msg_recv(&route, c->socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&route);
        return false;
    }
    zmq_msg_init(&msg);
    if (!zmq_msg_more(&route) || zmq_msg_recv(&msg, c->socket, 0) < 0) {
        reject(c, NULL, "an empty message");
    } else if (zmq_msg_more(&msg)) {
        reject(c, NULL, "a message in several parts (pikoc messages are one part)");
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, c->socket, 0) >= 0)
            ;
    } else {
        take_message(c, &route, NULL, &msg);
    }
    zmq_msg_close(&msg);
    zmq_msg_close(&route);
    return true;
}

/* Takes one message a publisher sent through subscriber; false when there is none. */
static bool receive_published(collector *c, void *subscriber)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, subscriber, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    if (zmq_msg_more(&msg)) {
        reject(c, NULL, "a message in several parts (pikoc messages are one part)");
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, subscriber, 0) >= 0)
            ;
    } else {
        take_message(c, NULL, subscriber, &msg);
    }
    zmq_msg_close(&msg);
    return true;
}

/*
 * Reads one event from a monitor: its kind and value (the first frame's 16
 * and 32 bits); false when there is none.
 */
static bool read_event(void *monitor, uint16_t *event, uint32_t *value)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    bool read = false;
    *event = 0;
    *value = 0;
    for (bool more = true; more && zmq_msg_recv(&part, monitor, ZMQ_DONTWAIT) >= 0; read = true) {
        if (!read && zmq_msg_size(&part) >= 6) {
            memcpy(event, zmq_msg_data(&part), sizeof *event);
            memcpy(value, (const uint8_t *)zmq_msg_data(&part) + 2, sizeof *value);
        }
        more = zmq_msg_more(&part);
    }
    zmq_msg_close(&part);
    return read;
}

/*
 * Why a sender's handshake failed, from libzmq's event and ZMTP error (with
 * no detail, a sender without CURVE may have closed first).
 */
static void handshake_failure(const collector *c, uint16_t event, uint32_t error, char *why,
                              size_t size)
{
    if (!(event & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) && c->curve_dir)
        snprintf(why, size,
                 "its handshake did not finish (a sender sets PIKOC_ZMQ_SERVER_KEY to "
                 "%s/server.pub)",
                 c->curve_dir);
    else if (!(event & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        snprintf(why, size,
                 "its handshake did not finish (with PIKOC_ZMQ_SERVER_KEY, a sender needs a "
                 "collector with --curve-keys)");
    else if (error == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && c->curve_dir)
        snprintf(why, size,
                 "its handshake is not CURVE (a sender sets PIKOC_ZMQ_SERVER_KEY to "
                 "%s/server.pub)",
                 c->curve_dir);
    else if (error == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(why, size,
                 "its handshake is CURVE (PIKOC_ZMQ_SERVER_KEY), and this collector has no "
                 "--curve-keys");
    else if (error == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC && c->curve_dir)
        snprintf(why, size, "its PIKOC_ZMQ_SERVER_KEY is not %s/server.pub's key", c->curve_dir);
    else
        snprintf(why, size, "its handshake failed (ZMTP error 0x%x)", (unsigned)error);
}

/*
 * The monitor's event: a connection closed (heartbeats close silent ones),
 * after which it probes for a while; or a sender's handshake failed, which
 * is said (as rejected messages are, the first few) and counted.
 */
static void take_event(collector *c)
{
    uint16_t event;
    uint32_t value;
    read_event(c->monitor, &event, &value);
    if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)) {
        char why[200];
        handshake_failure(c, event, value, why, sizeof why);
        say_rejected(c, "refused a sender", why);
        return;
    }
    c->probe_until_ns = pk_clock_monotonic_ns() + PROBE_PERIOD_NS;
}

/*
 * The connection to publisher i closed (killed, crashed; heartbeats close a
 * silent one): what it sent before is taken first, then its runs still open
 * end with what arrived. One that comes back there starts a new run.
 */
static void take_publisher_event(collector *c, size_t i)
{
    uint16_t event;
    uint32_t value;
    if (!read_event(c->publisher_monitors[i], &event, &value))
        return;
    while (!stop_requested && receive_published(c, c->subscribers[i]))
        ;
    for (size_t k = 0; k < c->sender_count;) {
        sender *s = c->senders[k];
        if (s->subscriber == c->subscribers[i])
            end_sender(c, s, VANISHED, NULL, 0, "incomplete");
        else
            k++;
    }
}

/* ---- the view ----------------------------------------------------------------------- */

/* "work 41%, helper 12%": the functions with the most self time so far. */
static void top_functions(const sender *s, char *buf, size_t size)
{
    const char *names[TOP_FUNCTIONS];
    int64_t self[TOP_FUNCTIONS], all = 0;
    size_t n = s->run ? pk_store_run_top(s->run, TOP_FUNCTIONS, names, self, &all) : 0;
    size_t used = 0;
    snprintf(buf, size, "-");
    for (size_t k = 0; k < n && used < size; k++) {
        int w = snprintf(buf + used, size - used, "%s%s %.0f%%", k ? ", " : "", names[k],
                         all > 0 ? 100.0 * (double)self[k] / (double)all : 0.0);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void sender_line(const sender *s, char *line, size_t size)
{
    char rss[32] = "-", top[256], who[300];
    if (s->has_rss)
        pk_readable_bytes((int64_t)s->rss, rss, sizeof rss);
    top_functions(s, top, sizeof top);
    name_sender(s, who, sizeof who);
    char rejected[48] = "", missing[48] = "";
    if (s->rejected)
        snprintf(rejected, sizeof rejected, ", %llu rejected", (unsigned long long)s->rejected);
    if (s->missing_batches)
        snprintf(missing, sizeof missing, ", %llu batches missing",
                 (unsigned long long)s->missing_batches);
    snprintf(line, size, "%s: %llu records, %.0f/s, rss %s, top: %s%s%s", who,
             (unsigned long long)s->records, s->rate, rss, top, missing, rejected);
}

static void refresh_view(collector *c, uint64_t now)
{
    double seconds = (double)(now - c->last_view_ns) / 1e9;
    c->last_view_ns = now;
    char line[700];
    if (c->tty) {
        /* back over the previous view, then the new one, each line cleared */
        if (c->view_lines)
            printf("\033[%zuA", c->view_lines);
        printf("\033[2Kpikoc listen %s: %zu senders, %llu records, %llu rejected\n",
               c->endpoint ? c->endpoint : c->publishers[0], c->sender_count,
               (unsigned long long)c->records, (unsigned long long)c->rejected);
        c->view_lines = 1;
    }
    for (size_t i = 0; i < c->sender_count; i++) {
        sender *s = c->senders[i];
        s->rate = seconds > 0 ? (double)(s->records - s->view_records) / seconds : 0;
        s->view_records = s->records;
        sender_line(s, line, sizeof line);
        printf(c->tty ? "\033[2K  %s\n" : "%s\n", line);
        c->view_lines += c->tty;
    }
    if (c->tty)
        printf("\033[J");
    fflush(stdout);
}

/* ---- setup ------------------------------------------------------------------------- */

/* A key into a new file of that mode from the start (a secret key is never readable by others). */
static int write_key(const char *path, const char *key, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fchmod(fd, mode) == 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        close(fd);
        return -1;
    }
    fprintf(f, "%s\n", key);
    return fclose(f);
}

/* Loads DIR/clients/\*.pub: the senders' public keys allowed in (Z85, one a file). */
static int load_clients(collector *c, const char *dir)
{
    char path[4096];
    DIR *d = NULL;
    errno = (size_t)snprintf(path, sizeof path, "%s/clients", dir) < sizeof path ? 0 : ENAMETOOLONG;
    if (errno == 0 && !(d = opendir(path)) && errno == ENOENT)
        return 0; /* no list: any sender that knows the server's key */
    if (!d) {     /* a list that cannot be read must not let everyone in */
        pk_cli_error("listen", "--curve-keys: %s/clients: %s", dir, strerror(errno));
        return PK_EXIT_USAGE;
    }
    int status = 0;
    for (struct dirent *e; (e = readdir(d)) && status == 0;) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char file[4400], key[41], why[64] = "libzmq cannot decode it";
        snprintf(file, sizeof file, "%s/%s", path, e->d_name); /* fits: d_name < 256 bytes */
        pk_grow(&c->clients, &c->client_capacity, c->client_count, sizeof *c->clients);
        enum pk_key_file rc = pk_read_key_file(file, key, why, sizeof why);
        if (rc == PK_KEY_MISSING || rc == PK_KEY_UNREADABLE) {
            pk_cli_error("listen", "--curve-keys: %s: %s", file, strerror(errno));
            status = PK_EXIT_USAGE;
        } else if (rc == PK_KEY_SHORT) {
            pk_cli_error("listen", "--curve-keys: %s does not start with a 40-character key", file);
            status = PK_EXIT_USAGE;
        } else if (rc == PK_KEY_NOT_Z85 || !zmq_z85_decode(c->clients[c->client_count], key)) {
            pk_cli_error("listen", "--curve-keys: %s: the key is not Z85: %s", file, why);
            status = PK_EXIT_USAGE;
        }
        c->client_count++;
    }
    closedir(d);
    if (status == 0) {
        c->zap = zmq_socket(c->context, ZMQ_REP);
        if (zmq_bind(c->zap, ZAP_ENDPOINT) != 0)
            status = PK_EXIT_FAILURE;
    }
    return status;
}

/* One ZAP request (RFC 27): a CURVE client is let in when its key is listed. */
static void answer_zap(collector *c)
{
    zmq_msg_t part[7];
    int n = 0;
    for (bool more = true; more && n < 7; n++) {
        zmq_msg_init(&part[n]);
        if (zmq_msg_recv(&part[n], c->zap, n ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part[n]);
            while (n-- > 0)
                zmq_msg_close(&part[n]);
            return;
        }
        more = zmq_msg_more(&part[n]);
    }
    /* version, request id, domain, address, routing id, mechanism, client key */
    bool allowed = false;
    if (n == 7 && zmq_msg_size(&part[6]) == 32)
        for (size_t i = 0; i < c->client_count && !allowed; i++)
            allowed = memcmp(zmq_msg_data(&part[6]), c->clients[i], 32) == 0;
    if (!allowed) {
        c->rejected++;
        fprintf(stderr,
                "pikoc listen: refused a sender at %.*s: its CURVE key is not in %s/clients\n",
                n > 3 ? (int)zmq_msg_size(&part[3]) : 0,
                n > 3 ? (const char *)zmq_msg_data(&part[3]) : "", c->curve_dir);
    }
    const char *status = allowed ? "200" : "400";
    zmq_send(c->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(c->zap, n > 1 ? zmq_msg_data(&part[1]) : "", n > 1 ? zmq_msg_size(&part[1]) : 0,
             ZMQ_SNDMORE);
    zmq_send(c->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(c->zap, allowed ? "OK" : "unknown key", allowed ? 2 : 11, ZMQ_SNDMORE);
    zmq_send(c->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(c->zap, "", 0, 0);
    while (n-- > 0)
        zmq_msg_close(&part[n]);
}

/* Loads (or makes) the server's keys in dir and turns CURVE on. */
static int set_curve(collector *c, const char *dir)
{
    if (!zmq_has("curve")) {
        pk_cli_error("listen", "--curve-keys: this libzmq has no CURVE support");
        return PK_EXIT_FAILURE;
    }
    char secret_path[4096], public_path[4096], secret[41], public_key[41];
    if ((size_t)snprintf(secret_path, sizeof secret_path, "%s/server.key", dir) >=
            sizeof secret_path ||
        (size_t)snprintf(public_path, sizeof public_path, "%s/server.pub", dir) >=
            sizeof public_path) {
        pk_cli_error("listen", "--curve-keys: %s: %s", dir, strerror(ENAMETOOLONG));
        return PK_EXIT_USAGE;
    }
    char why[64];
    enum pk_key_file rc = pk_read_key_file(secret_path, secret, why, sizeof why);
    if (rc == PK_KEY_UNREADABLE) {
        /* never replaced: the senders hold its public half */
        pk_cli_error("listen", "--curve-keys: %s: %s", secret_path, strerror(errno));
        return PK_EXIT_USAGE;
    }
    if (rc == PK_KEY_SHORT) {
        pk_cli_error("listen", "--curve-keys: %s does not start with a 40-character key",
                     secret_path);
        return PK_EXIT_USAGE;
    }
    if (rc == PK_KEY_NOT_Z85) {
        pk_cli_error("listen", "--curve-keys: %s: the key is not Z85: %s", secret_path, why);
        return PK_EXIT_USAGE;
    }
    if (rc == PK_KEY_MISSING) {
        if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
            zmq_curve_keypair(public_key, secret) != 0 ||
            write_key(secret_path, secret, 0600) != 0 ||
            write_key(public_path, public_key, 0644) != 0) {
            pk_cli_error("listen", "--curve-keys: cannot write keys into %s: %s", dir,
                         strerror(errno));
            return PK_EXIT_FAILURE;
        }
    }
    c->curve_dir = dir;
    int status = load_clients(c, dir);
    if (status != 0)
        return status;
    int one = 1;
    if (zmq_setsockopt(c->socket, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(c->socket, ZMQ_CURVE_SECRETKEY, secret, 40) != 0) {
        pk_cli_error("listen", "--curve-keys: %s", zmq_strerror(zmq_errno()));
        return PK_EXIT_FAILURE;
    }
    return 0;
}

/* Whether a tcp endpoint stays on this machine. */
static bool is_loopback(const char *endpoint)
{
    static const char *const local[] = {"tcp://127.", "tcp://localhost:", "tcp://[::1]:"};
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return true; /* ipc and inproc never leave the machine */
    for (size_t i = 0; i < PK_ARRAY_SIZE(local); i++)
        if (strncmp(endpoint, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}

/* Settings a receiving socket shares: no limit on what queues, one on a message's size. */
static void *receiving_socket(collector *c, int type)
{
    void *socket = zmq_socket(c->context, type);
    int zero = 0, hwm = 0;
    int64_t max = 16 * (int64_t)PK_WIRE_MAX_MESSAGE; /* larger ones are cut off by zmq itself */
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    return socket;
}

/* Heartbeats on a socket: a peer silent for 3 of them (dead without a word) is disconnected. */
static void set_heartbeats(void *socket)
{
    int heartbeat = HEARTBEAT_MS, timeout = 3 * HEARTBEAT_MS;
    zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &heartbeat, sizeof heartbeat);
    zmq_setsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
}

/* A SUB socket per publisher, taking all it publishes, and a monitor of its connection. */
static int subscribe(collector *c)
{
    for (size_t i = 0; i < c->publisher_count; i++) {
        void *sub = c->subscribers[i] = receiving_socket(c, ZMQ_SUB);
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
        set_heartbeats(sub);
        char monitor[64];
        snprintf(monitor, sizeof monitor, PUBLISHER_MONITOR_ENDPOINT, i);
        if (zmq_socket_monitor(sub, monitor, ZMQ_EVENT_DISCONNECTED) != 0)
            return PK_EXIT_FAILURE;
        c->publisher_monitors[i] = zmq_socket(c->context, ZMQ_PAIR);
        zmq_connect(c->publisher_monitors[i], monitor);
        if (zmq_connect(sub, c->publishers[i]) != 0) {
            pk_cli_error("listen",
                         "cannot subscribe to '%s': %s (expected tcp://HOST:PORT or "
                         "ipc://PATH)",
                         c->publishers[i], zmq_strerror(zmq_errno()));
            return PK_EXIT_USAGE;
        }
    }
    return 0;
}

/*
 * Whether a process listens at an ipc:// endpoint's socket file. libzmq
 * binds over the file whatever it is, which would cut the collector there
 * off from every sender without a word (tcp:// says EADDRINUSE).
 */
static bool ipc_taken(const char *endpoint)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    const char *path = endpoint + strlen("ipc://");
    struct stat st;
    if (strncmp(endpoint, "ipc://", 6) != 0 || strlen(path) >= sizeof address.sun_path ||
        stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    memcpy(address.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool taken = fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    if (fd >= 0)
        close(fd);
    return taken;
}

static int open_socket(collector *c, const char *curve_dir)
{
    c->context = zmq_ctx_new();
    int status = subscribe(c);
    if (status != 0)
        return status;
    if (!c->endpoint)
        return 0;
    c->socket = receiving_socket(c, ZMQ_ROUTER);
    int one = 1;
    /* a send to a closed connection fails (EHOSTUNREACH): how vanished senders show */
    zmq_setsockopt(c->socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    set_heartbeats(c->socket);
    if (curve_dir) {
        status = set_curve(c, curve_dir);
        if (status != 0)
            return status;
    } else if (!is_loopback(c->endpoint)) {
        fprintf(stderr,
                "pikoc listen: warning: %s is reachable beyond this machine without "
                "--curve-keys: anyone who reaches it can send runs, and records travel in clear\n",
                c->endpoint);
    }
    if (zmq_socket_monitor(c->socket, MONITOR_ENDPOINT,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return PK_EXIT_FAILURE;
    c->monitor = zmq_socket(c->context, ZMQ_PAIR);
    zmq_connect(c->monitor, MONITOR_ENDPOINT);
    if (ipc_taken(c->endpoint)) {
        pk_cli_error("listen", "cannot listen on '%s': %s (another process listens there)",
                     c->endpoint, strerror(EADDRINUSE));
        return PK_EXIT_FAILURE;
    }
    if (zmq_bind(c->socket, c->endpoint) != 0) {
        int e = zmq_errno();
        bool usage = e == EINVAL || e == EPROTONOSUPPORT;
        pk_cli_error("listen", "cannot listen on '%s': %s%s", c->endpoint, zmq_strerror(e),
                     usage ? " (expected tcp://HOST:PORT or ipc://PATH)" : "");
        return usage ? PK_EXIT_USAGE : PK_EXIT_FAILURE;
    }
    size_t size = sizeof c->bound;
    if (zmq_getsockopt(c->socket, ZMQ_LAST_ENDPOINT, c->bound, &size) != 0)
        snprintf(c->bound, sizeof c->bound, "%s", c->endpoint);
    return 0;
}

static void close_all(collector *c)
{
    /* received batches are written and acknowledged; a run still open ends incomplete for
     * now, its messages kept for the next collector */
    pk_error err;
    if (c->writer && pk_store_writer_commit(c->writer, &err) != 0)
        store_failed(c, &err);
    for (size_t i = 0; i < c->sender_count && !c->status; i++)
        acknowledge_stored(c, c->senders[i]);
    while (c->sender_count)
        end_sender(c, c->senders[0], SUSPENDED, NULL, 0, "incomplete");
    pk_store_writer_close(c->writer, false);
    pk_wire_batch_free(&c->batch);
    free(c->senders);
    if (c->monitor)
        zmq_close(c->monitor);
    if (c->zap)
        zmq_close(c->zap);
    free(c->clients);
    for (size_t i = 0; i < c->publisher_count; i++) {
        if (c->publisher_monitors[i])
            zmq_close(c->publisher_monitors[i]);
        if (c->subscribers[i])
            zmq_close(c->subscribers[i]);
    }
    if (c->socket) {
        /* the last acknowledgements must reach their senders, or they would
         * send those batches again to the next collector */
        int linger = 2000;
        zmq_setsockopt(c->socket, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(c->socket);
    }
    if (c->context)
        zmq_ctx_term(c->context);
}

static void serve(collector *c)
{
    /* the sockets this collector has */
    void *sockets[2 * MAX_PUBLISHERS + 3];
    size_t count = 0;
    for (size_t i = 0; i < c->publisher_count; i++) {
        sockets[count++] = c->subscribers[i];
        sockets[count++] = c->publisher_monitors[i];
    }
    void *others[] = {c->socket, c->monitor, c->zap};
    for (size_t i = 0; i < PK_ARRAY_SIZE(others); i++)
        if (others[i])
            sockets[count++] = others[i];
    zmq_pollitem_t items[PK_ARRAY_SIZE(sockets)];
    for (size_t i = 0; i < count; i++)
        items[i] = (zmq_pollitem_t){.socket = sockets[i], .events = ZMQ_POLLIN};
    zmq_pollitem_t monitor = {.socket = c->monitor, .events = ZMQ_POLLIN};
    zmq_pollitem_t zap = {.socket = c->zap, .events = ZMQ_POLLIN};
    c->last_view_ns = pk_clock_monotonic_ns();
    while (!stop_requested) {
        zmq_poll(items, (int)count, 100);
        while (c->zap && !stop_requested && zmq_poll(&zap, 1, 0) > 0)
            answer_zap(c);
        /* a burst at a time, so commits and the view keep their pace under load */
        for (size_t i = 0; i < c->publisher_count; i++)
            for (int n = 0; n < 256 && !stop_requested && receive_published(c, c->subscribers[i]);
                 n++)
                ;
        for (int n = 0; n < 256 && !stop_requested && c->socket && receive(c); n++)
            ;
        while (!stop_requested && c->monitor && zmq_poll(&monitor, 1, 0) > 0)
            take_event(c);
        for (size_t i = 0; i < c->publisher_count && !stop_requested; i++)
            take_publisher_event(c, i);
        pk_error err;
        if (c->writer && pk_store_writer_commit_due(c->writer, &err) != 0)
            store_failed(c, &err);
        for (size_t i = 0; i < c->sender_count && !stop_requested; i++)
            acknowledge_stored(c, c->senders[i]);
        uint64_t now = pk_clock_monotonic_ns();
        if (c->stop_ns && now >= c->stop_ns)
            stop_requested = 1;
        if (now < c->probe_until_ns && now - c->last_probe_ns >= PROBE_INTERVAL_NS &&
            !stop_requested) {
            probe_senders(c);
            c->last_probe_ns = now;
        }
        if (now - c->last_view_ns >= c->interval_ns)
            refresh_view(c, now);
    }
}

static int listen_main(int argc, char **argv)
{
    collector c = {.endpoint = DEFAULT_ENDPOINT, .path = "pikoc.db", .interval_ns = 1000000000};
    const char *curve_dir = NULL;
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_listen, options, PK_ARRAY_SIZE(options), argc, argv);
    p.repeatable = 1u << OPT_SUBSCRIBE;
    const char *value;
    bool endpoint_given = false;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        switch (o) {
        case PK_CLI_EXIT:
            return p.status;
        case PK_CLI_OPERAND:
            if (endpoint_given)
                return pk_cli_usage(&p, "one endpoint at most (got '%s' and '%s')", c.endpoint,
                                    value);
            c.endpoint = value;
            endpoint_given = true;
            break;
        case OPT_INTO:
            c.path = value;
            break;
        case OPT_SUBSCRIBE:
            if (c.publisher_count == MAX_PUBLISHERS)
                return pk_cli_usage(&p, "--subscribe: at most %d publishers", MAX_PUBLISHERS);
            c.publishers[c.publisher_count++] = value;
            break;
        case OPT_CURVE:
            curve_dir = value;
            break;
        case OPT_INTERVAL:
            if (pk_cli_duration(&p, "--interval", value, &c.interval_ns) != 0)
                return PK_EXIT_USAGE;
            if (c.interval_ns == 0)
                return pk_cli_usage(&p, "--interval '%s': must be more than 0", value);
            break;
        case OPT_RUNS:
            if (pk_cli_uint(&p, "--runs", value, &c.runs_wanted) != 0)
                return PK_EXIT_USAGE;
            break;
        }
    }
    if (!*c.path)
        return pk_cli_usage(&p, "--into '': expected a database file, or none");
    if (curve_dir && !*curve_dir)
        return pk_cli_usage(&p, "--curve-keys '': expected a directory");
    if (c.publisher_count && !endpoint_given)
        c.endpoint = NULL; /* a subscriber only */
    pk_error err;
    if (c.endpoint && pk_zmq_check_endpoint(c.endpoint, true, &err) != 0)
        return pk_cli_usage(&p, "%s", err.message);
    for (size_t i = 0; i < c.publisher_count; i++)
        if (pk_zmq_check_endpoint(c.publishers[i], false, &err) != 0)
            return pk_cli_usage(&p, "--subscribe: %s", err.message);
    c.tty = isatty(STDOUT_FILENO);
    /* The database is checked first and opened last: neither a bad database
     * leaves new keys behind, nor a bad endpoint a new database. */
    if (strcmp(c.path, "none") != 0 && pk_store_check_write(c.path, &err) != 0) {
        pk_cli_error("listen", "%s", err.message);
        return PK_EXIT_USAGE;
    }
    int status = open_socket(&c, curve_dir);
    if (status == 0 && strcmp(c.path, "none") != 0) {
        c.writer = pk_store_writer_open(c.path, &err);
        if (!c.writer) {
            pk_cli_error("listen", "%s", err.message);
            status = PK_EXIT_USAGE;
        }
    }
    if (status == 0) {
        struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: zmq_poll returns */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        printf("pikoc listen: ");
        if (c.endpoint)
            printf("on %s, ", c.bound);
        for (size_t i = 0; i < c.publisher_count; i++)
            printf("%s%s, ", i ? "and to " : "subscribed to ", c.publishers[i]);
        printf("into %s\n", c.writer ? c.path : "nothing (none)");
        fflush(stdout);
        serve(&c);
        status = c.status;
    }
    close_all(&c);
    if (status == 0 || c.records) {
        printf("pikoc listen: %llu runs ended, %llu records, %llu messages rejected\n",
               (unsigned long long)c.runs_ended, (unsigned long long)c.records,
               (unsigned long long)c.rejected);
    }
    return status;
}
