#!/usr/bin/env python3
"""png_colours.py PNG LEFT TOP WIDTH HEIGHT [#rrggbb ...]

Reads a PNG (8-bit RGB or RGBA, as Chromium's screenshots are) with the
standard library only (zlib), and prints, for the region given in pixels:
the number of distinct colours, then for each colour asked whether a pixel
within a small distance of it is there ("#d62728 yes"). Exit 2 on a PNG it
cannot read.
"""
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("%s: not a PNG" % path)
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                print("%s: unsupported PNG (depth %d, colour type %d)" % (path, depth, colour),
                      file=sys.stderr)
                sys.exit(2)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return width, height, channels, rows


def main():
    path = sys.argv[1]
    left, top, w, h = (int(v) for v in sys.argv[2:6])
    wanted = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in sys.argv[6:]]
    width, height, channels, rows = read_png(path)
    colours = set()
    for y in range(max(top, 0), min(top + h, height)):
        line = rows[y]
        for x in range(max(left, 0), min(left + w, width)):
            colours.add(tuple(line[x * channels:x * channels + 3]))
    print(len(colours))
    for rgb, text in zip(wanted, sys.argv[6:]):
        near = any(sum((p - q) ** 2 for p, q in zip(rgb, c)) <= 40 ** 2 for c in colours)
        print(text, "yes" if near else "no")


main()
