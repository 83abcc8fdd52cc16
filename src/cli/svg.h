/*
 * svg.h — the one SVG/XML writer of pikoc plot, flame and report: markup
 * escaping (XML and HTML alike), compact numbers, the few elements the
 * pictures use, and axes with units and "nice" tick steps. Writes to a
 * FILE; checking the stream for errors is the caller's business.
 */
#ifndef PK_CLI_SVG_H
#define PK_CLI_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Text with & < > " ' as entities: safe in XML and HTML text and attribute
 * values. What XML 1.0 does not allow becomes '?' (control characters but
 * tab and newline; U+FFFE, U+FFFF), a byte outside any UTF-8 character U+FFFD.
 */
void pk_markup_escape(FILE *out, const char *text);

/* A coordinate: at most two decimals, trailing zeros dropped ("12", "3.5", "-0.25"). */
void pk_svg_number(FILE *out, double value);

/* <svg> with its namespace, size and viewBox; id may be NULL. */
void pk_svg_begin(FILE *out, double width, double height, const char *id);
void pk_svg_end(FILE *out);
/* A filled rectangle; attributes (raw, already escaped) may be NULL. */
void pk_svg_rect(FILE *out, double x, double y, double width, double height, const char *fill,
                 const char *attributes);
void pk_svg_line(FILE *out, double x1, double y1, double x2, double y2, const char *stroke);
/* Text at (x, y); anchor "start", "middle" or "end"; class_name may be NULL. */
void pk_svg_text(FILE *out, double x, double y, const char *anchor, const char *class_name,
                 const char *text);
/* <title>text</title>: the hover text of the element it is in. */
void pk_svg_title(FILE *out, const char *text);

/* A polyline drawn point by point. */
typedef struct pk_svg_path {
    FILE *out;
    size_t points;
} pk_svg_path;

void pk_svg_path_begin(pk_svg_path *path, FILE *out, const char *stroke, const char *class_name);
void pk_svg_path_point(pk_svg_path *path, double x, double y);
void pk_svg_path_end(pk_svg_path *path);

/* ---- axes ------------------------------------------------------------------------- */

typedef enum pk_axis_kind {
    PK_AXIS_BYTES, /* B, KiB, MiB, GiB: binary units */
    PK_AXIS_NS,    /* ns, us, ms, s */
    PK_AXIS_COUNT, /* plain numbers (event index) */
} pk_axis_kind;

/*
 * Ticks for values from 0 to max: a step of 1, 2 or 5 times a power of ten
 * in the unit max reads best in, so that there are at most max_ticks steps.
 * The axis ends at `end` (the first tick at or above max).
 */
typedef struct pk_axis {
    pk_axis_kind kind;
    double unit;       /* bytes or ns per unit: 1024, 1e6, ... */
    const char *label; /* "MiB", "ms", "" */
    double step;       /* in the axis' own values (bytes, ns, events) */
    double end;
    int ticks; /* ticks after 0 */
} pk_axis;

pk_axis pk_axis_make(pk_axis_kind kind, double max, int max_ticks);
/* A tick's label: "0", "512 KiB", "1.5 MiB", "250 ms", "12000". */
void pk_axis_label(const pk_axis *axis, double value, char *buf, size_t size);

/* A colour from a name, the same on every run: hue by FNV-1a of the name within a palette. */
typedef enum pk_palette { PK_PALETTE_HOT, PK_PALETTE_MEMORY } pk_palette;
void pk_name_colour(const char *name, pk_palette palette, char buf[8]);

#endif /* PK_CLI_SVG_H */
