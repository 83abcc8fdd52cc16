/*
 * svg.c — the SVG/XML writer shared by plot, flame and report (svg.h).
 * Everything that reaches the markup from the database (names, files,
 * command lines) goes through pk_markup_escape, which also makes it valid
 * UTF-8; numbers through pk_svg_number, so the output is the same on every
 * locale and run.
 */
#include "pictures.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pk_markup_escape(FILE *out, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n') {
                /* XML 1.0 forbids most control characters, even escaped. */
                fputc('?', out);
            } else if (c < 0x80) {
                fputc(c, out);
            } else if (pk_utf8_char(p) == 3 && c == 0xef && (unsigned char)p[1] == 0xbf &&
                       (unsigned char)p[2] >= 0xbe) {
                fputc('?', out); /* U+FFFE and U+FFFF: not XML characters either */
                p += 2;
            } else {
                p += pk_utf8_put(out, p) - 1;
            }
        }
    }
}

void pk_svg_number(FILE *out, double value)
{
    char buf[48];
    double rounded = round(value * 100) / 100;
    if (rounded == 0 || !isfinite(rounded))
        rounded = 0; /* no "-0", no "nan" in the markup */
    snprintf(buf, sizeof buf, "%.2f", rounded);
    char *end = buf + strlen(buf);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
    fputs(buf, out);
}

void pk_svg_begin(FILE *out, double width, double height, const char *id)
{
    fputs("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"", out);
    if (id) {
        fputs(" id=\"", out);
        pk_markup_escape(out, id);
        fputc('"', out);
    }
    fputs(" width=\"", out);
    pk_svg_number(out, width);
    fputs("\" height=\"", out);
    pk_svg_number(out, height);
    fputs("\" viewBox=\"0 0 ", out);
    pk_svg_number(out, width);
    fputc(' ', out);
    pk_svg_number(out, height);
    fputs("\" font-family=\"Verdana, DejaVu Sans, sans-serif\" font-size=\"12\">\n", out);
}

void pk_svg_end(FILE *out)
{
    fputs("</svg>\n", out);
}

/* name="value" with a leading space. */
static void attribute(FILE *out, const char *name, double value)
{
    fprintf(out, " %s=\"", name);
    pk_svg_number(out, value);
    fputc('"', out);
}

void pk_svg_rect(FILE *out, double x, double y, double width, double height, const char *fill,
                 const char *attributes)
{
    fputs("<rect", out);
    attribute(out, "x", x);
    attribute(out, "y", y);
    attribute(out, "width", width);
    attribute(out, "height", height);
    fprintf(out, " fill=\"%s\"%s%s/>\n", fill, attributes ? " " : "", attributes ? attributes : "");
}

void pk_svg_line(FILE *out, double x1, double y1, double x2, double y2, const char *stroke)
{
    fputs("<line", out);
    attribute(out, "x1", x1);
    attribute(out, "y1", y1);
    attribute(out, "x2", x2);
    attribute(out, "y2", y2);
    fprintf(out, " stroke=\"%s\"/>\n", stroke);
}

void pk_svg_text(FILE *out, double x, double y, const char *anchor, const char *class_name,
                 const char *text)
{
    fputs("<text", out);
    attribute(out, "x", x);
    attribute(out, "y", y);
    fprintf(out, " text-anchor=\"%s\"", anchor);
    if (class_name)
        fprintf(out, " class=\"%s\"", class_name);
    fputc('>', out);
    pk_markup_escape(out, text);
    fputs("</text>\n", out);
}

void pk_svg_title(FILE *out, const char *text)
{
    fputs("<title>", out);
    pk_markup_escape(out, text);
    fputs("</title>", out);
}

void pk_svg_path_begin(pk_svg_path *path, FILE *out, const char *stroke, const char *class_name)
{
    path->out = out;
    path->points = 0;
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"", stroke);
    if (class_name)
        fprintf(out, " class=\"%s\"", class_name);
    fputs(" points=\"", out);
}

void pk_svg_path_point(pk_svg_path *path, double x, double y)
{
    if (path->points++ > 0)
        fputc(' ', path->out);
    pk_svg_number(path->out, x);
    fputc(',', path->out);
    pk_svg_number(path->out, y);
}

void pk_svg_path_end(pk_svg_path *path)
{
    fputs("\"/>\n", path->out);
}

/* ---- axes ------------------------------------------------------------------------- */

static const struct {
    double unit;
    const char *label;
} byte_units[] = {{1, "B"}, {0x1p10, "KiB"}, {0x1p20, "MiB"}, {0x1p30, "GiB"}, {0x1p40, "TiB"}},
  ns_units[] = {{1, "ns"}, {1e3, "us"}, {1e6, "ms"}, {1e9, "s"}};

pk_axis pk_axis_make(pk_axis_kind kind, double max, int max_ticks)
{
    pk_axis a = {.kind = kind, .unit = 1, .label = ""};
    if (max_ticks < 1)
        max_ticks = 1;
    if (!(max > 0))
        max = 0;
    if (kind == PK_AXIS_BYTES) {
        for (size_t i = 0; i < sizeof byte_units / sizeof byte_units[0]; i++)
            if (i == 0 || max >= byte_units[i].unit) {
                a.unit = byte_units[i].unit;
                a.label = byte_units[i].label;
            }
    } else if (kind == PK_AXIS_NS) {
        for (size_t i = 0; i < sizeof ns_units / sizeof ns_units[0]; i++)
            if (i == 0 || max >= ns_units[i].unit) {
                a.unit = ns_units[i].unit;
                a.label = ns_units[i].label;
            }
    }
    /* The step in units: 1, 2 or 5 times a power of ten; whole bytes, ns and events. */
    double raw = max / a.unit / max_ticks;
    double step = 1;
    if (raw > 0) {
        double magnitude = pow(10, floor(log10(raw)));
        static const double multiples[] = {1, 2, 5, 10};
        for (size_t i = 0; i < 4; i++) {
            step = multiples[i] * magnitude;
            if (step >= raw * (1 - 1e-9))
                break;
        }
    }
    if (step * a.unit < 1)
        step = 1 / a.unit;
    a.step = step * a.unit;
    a.ticks = (int)ceil(max / a.step - 1e-9);
    if (a.ticks < 1)
        a.ticks = 1;
    a.end = a.ticks * a.step;
    return a;
}

void pk_axis_label(const pk_axis *axis, double value, char *buf, size_t size)
{
    if (value == 0) {
        snprintf(buf, size, "0");
        return;
    }
    /* As many decimals as the step needs: 0.5 MiB steps print "1.5 MiB". */
    double step = axis->step / axis->unit;
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (step < 1 && fabs(step * pow(10, decimals) - round(step * pow(10, decimals))) > 1e-6)
        decimals++;
    snprintf(buf, size, "%.*f%s%s", decimals, value / axis->unit, *axis->label ? " " : "",
             axis->label);
}

void pk_name_colour(const char *name, pk_palette palette, char buf[8])
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    unsigned a = h & 0xff, b = (h >> 8) & 0xff, c = (h >> 16) & 0xff;
    unsigned r, g, bl;
    if (palette == PK_PALETTE_HOT) { /* reds, oranges, yellows, as flamegraph.pl's "hot" */
        r = 205 + a * 50 / 255;
        g = b * 230 / 255;
        bl = c * 55 / 255;
    } else { /* greens and blues for bytes */
        r = a * 60 / 255;
        g = 160 + b * 80 / 255;
        bl = 100 + c * 100 / 255;
    }
    snprintf(buf, 8, "#%02x%02x%02x", r, g, bl);
}

/* ---- the command line they share ------------------------------------------------------ */

int pk_picture_option(pk_cli_parser *p, pk_query *q, pk_picture_args *args, int option,
                      const char *value)
{
    switch (option) {
    case PK_CLI_OPERAND:
    case PK_OPT_DB:
        if (args->db_given)
            return pk_cli_usage(p, "one database only ('%s' and '%s')", q->path, value);
        q->path = value;
        args->db_given = true;
        return 0;
    case PK_OPT_FORMAT:
        return pk_cli_usage(p, "--format does not apply: %s writes %s", p->command->name,
                            args->writes);
    case PK_OPT_OUTPUT:
        args->output = value;
        return 0;
    default:
        return pk_query_option(p, q, option, value);
    }
}

/* ---- writing a picture to a file ------------------------------------------------------ */

int pk_picture_save(pk_query *q, const char *path, pk_picture_writer write, void *context)
{
    char *data = NULL;
    size_t size = 0;
    FILE *memory = open_memstream(&data, &size);
    if (!memory)
        return pk_query_write_failed(q, "the picture in memory");
    int status = write(q, memory, context);
    if (fclose(memory) != 0 && status == 0)
        status = pk_query_write_failed(q, "the picture in memory");
    pk_output out;
    if (status == 0 && (status = pk_output_open(&out, q, path)) == 0) {
        errno = 0;
        if (fwrite(data, 1, size, out.file) != size)
            status = pk_query_write_failed(q, out.file == stdout ? "the output" : path);
        status = pk_output_close(&out, q, status);
    }
    free(data);
    return status;
}
