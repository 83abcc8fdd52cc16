#!/usr/bin/env python3
"""wire_client.py - a collector written from docs/wire-format.md alone.

Binds ENDPOINT (a ZMQ_ROUTER), takes one sender's run (hello, batches,
goodbye), acknowledges every batch as the document says, and prints what
it decoded as JSON: the goodbye's totals, the records observed and written,
and the calls observed per function. tests/zmq.sh compares them with what
`pikoc listen` stored for the same run.

usage: wire_client.py ENDPOINT
"""
import json
import struct
import sys

import zmq


class Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def uvarint(self):
        value, shift = 0, 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def delta(self, previous):
        z = self.uvarint()
        d = (z >> 1) ^ -(z & 1)
        return (previous + d) & 0xFFFFFFFFFFFFFFFF

    def string(self):
        n = self.uvarint()
        text = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return text

    def done(self):
        return self.pos == len(self.data)


def header(data):
    if data[:4] != b"PKOZ" or data[4] != 2:
        raise ValueError("not a version 2 pikoc message")
    kind = data[5]
    (sender,) = struct.unpack("<Q", data[6:14])
    r = Reader(data, 14)
    seq = r.uvarint()
    return kind, sender, seq, r


def ack(sock, route, sender, seq):
    sock.send_multipart([route, b"PKOZ" + bytes([2, 4]) + struct.pack("<Q", sender) + encode_uvarint(seq)])


def encode_uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_stacks(r, strings, stacks):
    """Stack definitions: id, frame count, frames (function, file, line)."""
    for _ in range(r.uvarint()):
        ident = r.uvarint()
        frames = []
        for _ in range(r.uvarint()):
            function, file = strings[r.uvarint()], strings[r.uvarint()]
            frames.append((function, file, r.uvarint()))
        stacks[ident] = frames


def main():
    endpoint = sys.argv[1]
    sock = zmq.Context().socket(zmq.ROUTER)
    sock.bind(endpoint)
    fields, types, strings, stacks = [], {}, {0: ""}, {}
    hello = None
    observed = written = 0
    calls_by_function = {}
    next_seq = 1
    while True:
        route, data = sock.recv_multipart()
        kind, sender, seq, r = header(data)
        if kind == 1:  # hello
            flags, next_seq_hello, schema = r.uvarint(), r.uvarint(), r.uvarint()
            host, pid, ppid, command = r.string(), r.uvarint(), r.uvarint(), r.string()
            monitor, record_flags, clock = r.string(), r.uvarint(), r.string()
            calibration, alloc_source = r.uvarint(), r.string()
            start, wall = r.uvarint(), r.uvarint()
            fields = [(r.string(), r.uvarint()) for _ in range(r.uvarint())]
            for _ in range(r.uvarint()):
                value = r.uvarint()
                types[value] = r.string()
            for _ in range(r.uvarint()):
                ident = r.uvarint()
                strings[ident] = r.string()
            read_stacks(r, strings, stacks)
            assert r.done()
            hello = {"host": host, "pid": pid, "ppid": ppid, "monitor": monitor, "schema": schema}
            next_seq = max(next_seq, next_seq_hello)
            continue
        if seq < next_seq:  # sent again: we have it
            ack(sock, route, sender, next_seq - 1)
            continue
        next_seq = seq + 1
        ack(sock, route, sender, seq)
        if kind == 2:  # batch
            for _ in range(r.uvarint()):
                ident = r.uvarint()
                strings[ident] = r.string()
            read_stacks(r, strings, stacks)
            previous = [0] * len(fields)
            presence = flags = 0
            for _ in range(r.uvarint()):
                head = r.data[r.pos]
                r.pos += 1
                if not head & 4:
                    presence = r.uvarint()
                if not head & 8:
                    flags = r.uvarint()
                record = {}
                for i, (name, kind_of_field) in enumerate(fields):
                    if not presence & (1 << i):
                        continue
                    if kind_of_field == 0:
                        previous[i] = r.delta(previous[i])
                        record[name] = previous[i]
                    elif kind_of_field == 1:
                        record[name] = strings[r.uvarint()]
                    elif kind_of_field == 2:
                        record[name] = types[r.uvarint()]
                    else:
                        record[name] = stacks[r.uvarint()]
                if head & 1:
                    observed += 1
                    if record.get("type") == "call":
                        function = record.get("function", "")
                        calls_by_function[function] = calls_by_function.get(function, 0) + 1
                if head & 2:
                    written += 1
            assert r.done()
        elif kind == 3:  # goodbye
            names = ["events", "calls", "unmatched", "unfinished", "dropped", "end_ns",
                     "entries", "written", "dropped_entries", "batches", "peak_rss"]
            totals = {name: r.uvarint() for name in names}
            threads = {}
            for _ in range(r.uvarint()):
                tid = r.uvarint()
                threads[tid] = r.string()
            assert r.done()
            print(json.dumps({"hello": hello, "totals": totals, "threads": threads,
                              "observed": observed,
                              "written": written, "calls_by_function": calls_by_function},
                             sort_keys=True))
            return 0


if __name__ == "__main__":
    sys.exit(main())
