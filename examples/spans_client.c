/*
 * spans_client.c — the client half of a profiled remote call (see
 * spans_server.c): each request is a profiler whose context travels in the
 * request's first frame, so `pikoc spans` can put the server's work inside
 * the client's wait and say how much of the wait was neither.
 */
#include <pikoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static size_t build_request(char *payload, size_t size, int n)
{
    size_t len = 0;
    for (int i = 0; len + 16 < size && i < n; i++)
        len += (size_t)snprintf(payload + len, size - len, "item-%d;", i);
    return len;
}

static int call_server(void *socket, int items)
{
    static char payload[65536];
    char context[PK_CONTEXT_SIZE], reply[64];
    PK_PROFILER(prof, "client request", .enable = PK_PROFILE_ON);
    size_t len = build_request(payload, sizeof payload, items);
    pk_profiler_mark(&prof, "request built");
    /* Just before sending: the context carries the send time. */
    pk_profiler_context(&prof, context, sizeof context);
    if (zmq_send(socket, context, strlen(context), ZMQ_SNDMORE) < 0 ||
        zmq_send(socket, payload, len, 0) < 0)
        return -1;
    int n = zmq_recv(socket, reply, sizeof reply - 1, 0);
    if (n < 0)
        return -1;
    pk_profiler_mark(&prof, "reply received");
    reply[n] = '\0';
    return atoi(reply) == (int)len ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spans_client ENDPOINT REQUESTS\n");
        return 2;
    }
    void *zmq = zmq_ctx_new();
    void *socket = zmq_socket(zmq, ZMQ_REQ);
    if (zmq_connect(socket, argv[1]) != 0) {
        fprintf(stderr, "spans_client: cannot connect to %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
        return 1;
    }
    int status = 0;
    for (int i = 0, requests = atoi(argv[2]); i < requests && status == 0; i++)
        status = call_server(socket, 1000 * (i + 1)) == 0 ? 0 : 1;
    zmq_close(socket);
    zmq_ctx_term(zmq);
    return status;
}
