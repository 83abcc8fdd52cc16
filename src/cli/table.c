/*
 * table.c — the one output formatter of every pikoc command: an aligned
 * table for terminals (header, rule, numbers right-aligned, times and sizes
 * in readable units), RFC 4180 CSV, or a JSON array of objects whose field
 * names are the column names. CSV and JSON carry exact integers; JSON and
 * the table are valid UTF-8 whatever bytes the database holds (CSV keeps
 * them as they are).
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const pk_format_names[3] = {"table", "csv", "json"};

/* One thread writes: stdio's per-call locking was a tenth of a large export. */
#define fputc fputc_unlocked
#define fputs fputs_unlocked

/* A table holds this many rows to size its columns, then streams. */
#define SIZING_ROWS 1000

struct pk_table {
    FILE *out;
    pk_format format;
    const pk_column *columns;
    size_t count;
    size_t column; /* the next cell's column */
    uint64_t rows; /* rows finished */
    /* table format only */
    char **cells; /* held rows, count cells each */
    size_t held;  /* rows held */
    size_t *widths;
    bool streaming; /* widths fixed: rows are printed as they end */
};

static bool right_aligned(pk_column_kind kind)
{
    return kind != PK_COLUMN_TEXT;
}

/* A table's header drops the unit the cells already show: "total_ns" -> "total". */
static size_t header_length(const pk_column *c)
{
    size_t n = strlen(c->name);
    const char *suffix = c->kind == PK_COLUMN_NS      ? "_ns"
                         : c->kind == PK_COLUMN_BYTES ? "_bytes"
                                                      : "";
    size_t s = strlen(suffix);
    if (s && n > s && strcmp(c->name + n - s, suffix) == 0)
        return n - s;
    return n;
}

/* ---- CSV and JSON: one cell at a time ------------------------------------------ */

/* plain: a number, which never needs quotes. */
static void csv_cell(pk_table *t, const char *text, bool plain)
{
    if (t->column > 0)
        fputc(',', t->out);
    if (plain || strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, t->out);
        return;
    }
    fputc('"', t->out);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', t->out);
        fputc(*p, t->out);
    }
    fputc('"', t->out);
}

void pk_json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (c < 0x20) {
                fprintf(out, "\\u%04x", c);
            } else if (c < 0x80) {
                fputc(c, out);
            } else {
                p += pk_utf8_put(out, p) - 1;
            }
        }
    }
    fputc('"', out);
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

/* The well-formed byte sequences of the Unicode Standard, table 3-7. */
size_t pk_utf8_char(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t length;
    unsigned char low = 0x80, high = 0xbf; /* the second byte's range */
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        length = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        length = 3;
        if (s[0] == 0xe0)
            low = 0xa0; /* below: overlong */
        else if (s[0] == 0xed)
            high = 0x9f; /* above: surrogates */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        length = 4;
        if (s[0] == 0xf0)
            low = 0x90; /* below: overlong */
        else if (s[0] == 0xf4)
            high = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 (overlong ASCII) or F5..FF */
    }
    /* In order: a NUL fails its test, so nothing past the string is read. */
    if (s[1] < low || s[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return length;
}

size_t pk_utf8_put(FILE *out, const char *text)
{
    size_t length = pk_utf8_char(text);
    if (length == 0) {
        fputs(PK_UTF8_REPLACEMENT, out);
        return 1;
    }
    fwrite(text, 1, length, out);
    return length;
}

size_t pk_utf8_prefix(const char *text, size_t count)
{
    size_t n = 0;
    for (; count > 0 && text[n]; count--) {
        size_t length = pk_utf8_char(text + n);
        n += length ? length : 1;
    }
    return n;
}

int pk_text_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf, size, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n < size || size == 0)
        return n;
    /* Cut: back over the continuation bytes at the end to the byte they follow. */
    size_t end = size - 1, start = end;
    while (start > 0 && end - start < 3 && ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
        start--;
    if (start > 0) {
        unsigned char lead = (unsigned char)buf[start - 1];
        size_t needs = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (start - 1 + needs > end)
            buf[start - 1] = '\0';
    }
    return n;
}

/* raw: the cell's JSON text as is (a number, null) rather than a string. */
static void json_cell(pk_table *t, const char *text, bool raw)
{
    if (t->column == 0)
        fputs(t->rows ? ",\n  {" : "[\n  {", t->out);
    else
        fputs(", ", t->out);
    pk_json_string(t->out, t->columns[t->column].name);
    fputs(": ", t->out);
    if (raw)
        fputs(text, t->out);
    else
        pk_json_string(t->out, text);
    if (t->column + 1 == t->count)
        fputc('}', t->out);
}

/* ---- the aligned table ---------------------------------------------------------- */

/*
 * The aligned table is sized in terminal columns, not bytes: two for a
 * character of East Asian width W or F, none for a combining mark, one for
 * any other character (and for a byte outside one, which table_text has
 * written \xNN by then). Fixed ranges rather than wcwidth, so that the
 * output does not depend on the user's locale.
 */
typedef struct code_range {
    uint32_t first, last;
} code_range;

static const code_range wide_ranges[] = {
    {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3040, 0xa4cf},   {0xac00, 0xd7a3},
    {0xf900, 0xfaff},   {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},
    {0x1f300, 0x1f64f}, {0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
};

/* The combining diacritical blocks, zero-width spaces and joiners, variation selectors. */
static const code_range zero_width_ranges[] = {
    {0x0300, 0x036f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f},
    {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f},
};

static bool in_ranges(uint32_t c, const code_range *ranges, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (c >= ranges[i].first && c <= ranges[i].last)
            return true;
    return false;
}

/* The columns a terminal gives the first length bytes of text. */
static size_t display_width(const char *text, size_t length)
{
    static const unsigned char lead_bits[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    size_t width = 0;
    for (size_t i = 0; i < length;) {
        const unsigned char *s = (const unsigned char *)text + i;
        size_t n = s[0] < 0x80 ? 1 : pk_utf8_char(text + i);
        if (n <= 1) {
            width++;
            i++;
            continue;
        }
        uint32_t c = s[0] & lead_bits[n];
        for (size_t k = 1; k < n; k++)
            c = c << 6 | (s[k] & 0x3f);
        if (in_ranges(c, wide_ranges, PK_ARRAY_SIZE(wide_ranges)))
            width += 2;
        else if (!in_ranges(c, zero_width_ranges, PK_ARRAY_SIZE(zero_width_ranges)))
            width++;
        i += n;
    }
    return width;
}

/*
 * A copy for the table: control characters as \n, \t, \x1b (C1's as
 * \xc2\x9b), so a cell stays on its line and a terminal takes no command
 * from it, and a byte that is not UTF-8 (Latin-1's é) as \xe9, so the
 * table is valid UTF-8 and its widths are the terminal's.
 */
static char *table_text(const char *text, size_t length)
{
    char *copy = pk_xcalloc(length * 4 + 1, 1), *out = copy;
    const unsigned char *end = (const unsigned char *)text + length;
    for (const unsigned char *p = (const unsigned char *)text; p < end && *p; p++) {
        size_t n = *p < 0x80 ? 1 : pk_utf8_char((const char *)p);
        /* U+0080..U+009F (C1 controls), and a character the length cuts, as bytes */
        if ((n == 2 && p[0] == 0xc2 && p[1] < 0xa0) || n > (size_t)(end - p))
            n = 0;
        if (*p == '\n') {
            out += sprintf(out, "\\n");
        } else if (*p == '\t') {
            out += sprintf(out, "\\t");
        } else if (*p < 0x20 || *p == 0x7f || n == 0) {
            out += sprintf(out, "\\x%02x", *p);
        } else {
            memcpy(out, p, n);
            out += n;
            p += n - 1;
        }
    }
    return copy;
}

static void print_padded(pk_table *t, size_t column, const char *text, size_t length)
{
    size_t width = t->widths[column], shown = display_width(text, length);
    size_t pad = width > shown ? width - shown : 0;
    bool last = column + 1 == t->count;
    if (column > 0)
        fputs("  ", t->out);
    if (right_aligned(t->columns[column].kind))
        fprintf(t->out, "%*s%.*s", (int)pad, "", (int)length, text);
    else
        fprintf(t->out, "%.*s%*s", (int)length, text, last ? 0 : (int)pad, "");
}

static void print_row(pk_table *t, char **cells)
{
    for (size_t i = 0; i < t->count; i++)
        print_padded(t, i, cells[i], strlen(cells[i]));
    fputc('\n', t->out);
}

/* Fixes the widths from the held rows, prints the header, the rule and the rows. */
static void start_streaming(pk_table *t)
{
    size_t total = 0;
    char **headers = pk_xcalloc(t->count + 1, sizeof *headers);
    for (size_t i = 0; i < t->count; i++) {
        headers[i] = table_text(t->columns[i].name, header_length(&t->columns[i]));
        size_t w = display_width(headers[i], strlen(headers[i]));
        for (size_t r = 0; r < t->held; r++) {
            const char *text = t->cells[r * t->count + i];
            size_t n = display_width(text, strlen(text));
            if (n > w)
                w = n;
        }
        t->widths[i] = w;
        total += w + (i ? 2 : 0);
    }
    for (size_t i = 0; i < t->count; i++) {
        print_padded(t, i, headers[i], strlen(headers[i]));
        free(headers[i]);
    }
    free(headers);
    fputc('\n', t->out);
    for (size_t i = 0; i < total; i++)
        fputc('-', t->out);
    fputc('\n', t->out);
    for (size_t r = 0; r < t->held; r++)
        print_row(t, &t->cells[r * t->count]);
    for (size_t i = 0; i < t->held * t->count; i++)
        free(t->cells[i]);
    t->held = 0;
    t->streaming = true;
}

static void table_cell(pk_table *t, const char *text)
{
    t->cells[t->held * t->count + t->column] = table_text(text, strlen(text));
    if (t->column + 1 < t->count)
        return;
    if (t->streaming) {
        print_row(t, &t->cells[0]);
        for (size_t i = 0; i < t->count; i++)
            free(t->cells[i]);
        return;
    }
    if (++t->held == SIZING_ROWS)
        start_streaming(t);
}

/* ---- cells ------------------------------------------------------------------------- */

/*
 * One cell in every format: table_text for the aligned table, exact_text for
 * CSV and JSON. literal: exact_text is a number or null, written as is in
 * JSON and never quoted in CSV.
 */
static void cell(pk_table *t, const char *table_text, const char *exact_text, bool literal)
{
    switch (t->format) {
    case PK_FORMAT_TABLE:
        table_cell(t, table_text);
        break;
    case PK_FORMAT_CSV:
        csv_cell(t, exact_text, literal);
        break;
    case PK_FORMAT_JSON:
        json_cell(t, exact_text, literal);
        break;
    }
    if (++t->column == t->count) {
        t->column = 0;
        t->rows++;
        if (t->format == PK_FORMAT_CSV)
            fputs("\r\n", t->out);
    }
}

pk_table *pk_table_new(FILE *out, pk_format format, const pk_column *columns, size_t count)
{
    pk_table *t = pk_xcalloc(1, sizeof *t);
    t->out = out;
    t->format = format;
    t->columns = columns;
    t->count = count;
    if (format == PK_FORMAT_TABLE) {
        t->cells = pk_xcalloc(SIZING_ROWS * count, sizeof *t->cells);
        t->widths = pk_xcalloc(count, sizeof *t->widths);
    } else if (format == PK_FORMAT_CSV) {
        for (size_t i = 0; i < count; i++) {
            t->column = i;
            csv_cell(t, columns[i].name, false);
        }
        t->column = 0;
        fputs("\r\n", out);
    }
    return t;
}

void pk_table_text(pk_table *t, const char *text)
{
    cell(t, text, text, false);
}

/* 1234 ns, 12.35 us, 1.25 ms, 3.10 s */
void pk_readable_ns(int64_t ns, char *buf, size_t size)
{
    double v = fabs((double)ns);
    const char *sign = ns < 0 ? "-" : "";
    if (v < 1e3)
        snprintf(buf, size, "%" PRId64 " ns", ns);
    else if (v < 1e6)
        snprintf(buf, size, "%s%.2f us", sign, v / 1e3);
    else if (v < 1e9)
        snprintf(buf, size, "%s%.2f ms", sign, v / 1e6);
    else
        snprintf(buf, size, "%s%.2f s", sign, v / 1e9);
}

/* 512 B, 12.0 KiB, 3.5 MiB, 1.2 GiB */
void pk_readable_bytes(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = fabs((double)bytes);
    const char *sign = bytes < 0 ? "-" : "";
    if (v < 1024) {
        snprintf(buf, size, "%" PRId64 " B", bytes);
        return;
    }
    size_t u = 0;
    v /= 1024;
    while (v >= 1024 && u + 1 < PK_ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%s%.1f %s", sign, v, units[u]);
}

/* Decimal digits into the end of buf; returns the first. printf was the largest cost per cell. */
static char *decimal(int64_t value, char buf[24])
{
    char *p = buf + 23;
    *p = '\0';
    uint64_t v = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    if (value < 0)
        *--p = '-';
    return p;
}

void pk_table_int(pk_table *t, int64_t value)
{
    char digits[24], readable[32];
    const char *exact = decimal(value, digits);
    const char *shown = exact;
    if (t->format == PK_FORMAT_TABLE) {
        if (t->columns[t->column].kind == PK_COLUMN_NS) {
            pk_readable_ns(value, readable, sizeof readable);
            shown = readable;
        } else if (t->columns[t->column].kind == PK_COLUMN_BYTES) {
            pk_readable_bytes(value, readable, sizeof readable);
            shown = readable;
        }
    }
    cell(t, shown, exact, true);
}

void pk_table_real(pk_table *t, double value)
{
    if (!isfinite(value)) { /* measured, not missing: JSON alone has no word for it */
        const char *word = isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
        cell(t, word, t->format == PK_FORMAT_JSON ? "null" : word, true);
        return;
    }
    char exact[32], readable[32];
    snprintf(exact, sizeof exact, "%.10g", value);
    snprintf(readable, sizeof readable, "%.2f", value);
    cell(t, readable, exact, true);
}

void pk_table_null(pk_table *t)
{
    cell(t, "-", t->format == PK_FORMAT_JSON ? "null" : "", true);
}

int pk_table_finish(pk_table *t)
{
    if (t->format == PK_FORMAT_TABLE && !t->streaming)
        start_streaming(t);
    if (t->format == PK_FORMAT_JSON)
        fputs(t->rows ? "\n]\n" : "[]\n", t->out);
    int rc = (fflush(t->out) != 0 || ferror(t->out)) ? -1 : 0;
    free(t->cells);
    free(t->widths);
    free(t);
    return rc;
}
