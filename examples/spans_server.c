/*
 * spans_server.c — the server half of a profiled remote call: a ZeroMQ REP
 * socket whose handler continues the client's span from the context that
 * came in the request's first frame. Run with the client (spans_client.c),
 * both recording into one database, then `pikoc spans DB`:
 *
 *     PIKOC_RECORD=sqlite:calls.db ./spans_server ipc:///tmp/calls 3 &
 *     PIKOC_RECORD=sqlite:calls.db ./spans_client ipc:///tmp/calls 3
 *     pikoc spans calls.db
 */
#include <pikoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static double checksum(const char *data, size_t len, int rounds)
{
    volatile double sum = 0;
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < len; i++)
            sum += (double)(unsigned char)data[i] * (r + 1);
    return sum;
}

/* Receives one frame into buf (NUL-terminated, cut to fit); -1 on failure. */
static int receive(void *socket, char *buf, size_t size)
{
    int n = zmq_recv(socket, buf, size - 1, 0);
    if (n < 0)
        return -1;
    buf[(size_t)n < size - 1 ? (size_t)n : size - 1] = '\0';
    return n;
}

static int serve_one(void *socket)
{
    char context[PK_CONTEXT_SIZE], payload[65536], reply[64];
    if (receive(socket, context, sizeof context) < 0 ||
        receive(socket, payload, sizeof payload) < 0)
        return -1;
    {
        PK_PROFILER_REMOTE(prof, "handle request", context, .enable = PK_PROFILE_ON);
        size_t len = strlen(payload);
        pk_profiler_mark(&prof, "request parsed");
        double sum = checksum(payload, len, 200);
        pk_profiler_mark(&prof, "checksum computed");
        snprintf(reply, sizeof reply, "%zu %.0f", len, sum);
        pk_profiler_mark(&prof, "reply built");
    }
    return zmq_send(socket, reply, strlen(reply), 0) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spans_server ENDPOINT REQUESTS\n");
        return 2;
    }
    void *zmq = zmq_ctx_new();
    void *socket = zmq_socket(zmq, ZMQ_REP);
    if (zmq_bind(socket, argv[1]) != 0) {
        fprintf(stderr, "spans_server: cannot bind %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    int status = 0;
    for (int i = atoi(argv[2]); i > 0 && status == 0; i--)
        status = serve_one(socket) == 0 ? 0 : 1;
    zmq_close(socket);
    zmq_ctx_term(zmq);
    return status;
}
