/*
 * profiler.c — the checkpoint profiler (piker's Profiler): enter, marks and
 * exit lines per thread, nested blocks indented, the total judged against a
 * threshold; and the contexts that continue a span in another process.
 * Runs on the user's thread. Printing is not the hot path (it formats and
 * may grow a buffer); the record a mark leaves goes through hooks.c, which
 * takes no lock and no malloc.
 */
#include "clock.h"
#include "hot.h"
#include "internal.h"
#include "profiler.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIRST_BUFFER_SIZE 4096
#define CONTEXT_VERSION "pk1"

/*
 * The lines of the printing profilers open on this thread, oldest first,
 * written when the outermost one finishes (or at once by an immediate one).
 * Positions are counted from the thread's first byte ever, so a profiler's
 * block still means something after an immediate line flushed the buffer.
 */
static __thread struct {
    char *text;
    size_t used, size;
    uint64_t flushed; /* bytes written out before text[0] */
} lines;

/* The innermost open profiler on this thread, printing or not. */
static __thread pk_profiler *innermost;

static _Atomic uint64_t next_span = 1;

/* Tests replace the clock to check exact output; raw times are then nanoseconds. */
static uint64_t (*test_clock)(void);

void pk_profiler_test_clock(uint64_t (*now_ns)(void))
{
    test_clock = now_ns;
}

static uint64_t now_raw(void)
{
    return test_clock ? test_clock() : pk_clock_raw();
}

static uint64_t raw_to_ns(uint64_t raw)
{
    return test_clock ? raw : pk_clock_to_ns(raw);
}

/* ---- printing ------------------------------------------------------------------ */

static void add_line(const pk_profiler *p, const char *fmt, ...) PK_PRINTF(2, 3);

static void add_line(const pk_profiler *p, const char *fmt, ...)
{
    for (;;) {
        size_t room = lines.size - lines.used;
        int indent = 2 * (int)p->depth;
        int n = 0;
        if (room > 0) {
            n = snprintf(lines.text + lines.used, room, "%*s", indent, "");
            va_list ap;
            va_start(ap, fmt);
            if (n >= 0 && (size_t)n < room)
                n += vsnprintf(lines.text + lines.used + n, room - (size_t)n, fmt, ap);
            va_end(ap);
        }
        if (n >= 0 && (size_t)n < room) {
            lines.used += (size_t)n;
            return;
        }
        size_t need = lines.used + (n > 0 ? (size_t)n : 0) + 1;
        if (lines.size < FIRST_BUFFER_SIZE)
            pk_grow(&lines.text, &lines.size, FIRST_BUFFER_SIZE - 1, 1);
        while (lines.size < need)
            pk_grow(&lines.text, &lines.size, lines.size, 1);
    }
}

static void flush_lines(FILE *stream)
{
    if (lines.used > 0)
        fwrite(lines.text, 1, lines.used, stream);
    fflush(stream);
    lines.flushed += lines.used;
    lines.used = 0;
}

static uint64_t lines_position(void)
{
    return lines.flushed + lines.used;
}

/* Drops what the profiler and those nested in it added, unless already written. */
static void drop_block(const pk_profiler *p)
{
    if (p->block > lines.flushed)
        lines.used = (size_t)(p->block - lines.flushed);
    else
        lines.used = 0;
}

static double ms_between(uint64_t from_raw, uint64_t to_raw)
{
    uint64_t from = raw_to_ns(from_raw), to = raw_to_ns(to_raw);
    return to > from ? (double)(to - from) / 1e6 : 0.0;
}

/* ---- the switch ----------------------------------------------------------------- */

/*
 * Whether PIKOC_PROFILE ("a,b" or "all") names the profiler. A malformed
 * list names none, and says so once on stderr (it is read at every start).
 */
static bool listed_in_env(const char *name)
{
    static _Atomic bool warned;
    const char *env = pk_setting("PIKOC_PROFILE");
    pk_items items;
    pk_error err;
    bool listed = false;
    if (!env)
        return false;
    if (pk_items_split(env, "profiler name", "NAME[,NAME...] or all", &items, &err) != 0) {
        if (!atomic_exchange(&warned, true))
            pk_warn("PIKOC_PROFILE: %s", err.message);
        return false;
    }
    for (size_t i = 0; i < items.count && !listed; i++)
        listed = strcmp(items.item[i], "all") == 0 || strcmp(items.item[i], name) == 0;
    pk_items_free(&items);
    return listed;
}

static bool decide_printing(const char *msg, const pk_profiler_options *opts)
{
    switch (opts->enable) {
    case PK_PROFILE_ON:
        return true;
    case PK_PROFILE_OFF:
        return false;
    case PK_PROFILE_ENV:
        break;
    }
    return listed_in_env(opts->name ? opts->name : msg);
}

/* ---- ids -------------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A new trace: unlikely to meet another process's (pid, time and span mixed). */
static uint64_t new_trace(uint64_t span)
{
    uint64_t t = mix(pk_clock_monotonic_ns() ^ ((uint64_t)getpid() << 32) ^ span);
    return t ? t : 1;
}

/* ---- the profiler ------------------------------------------------------------------ */

static void start(pk_profiler *p, const pk_profiler_site *site, const char *msg,
                  const char *context, uint64_t trace, const pk_profiler_options *opts)
{
    static const pk_profiler_options defaults;
    if (!opts)
        opts = &defaults;
    if (!msg)
        msg = "";
    pk_clock_init();
    memset(p, 0, sizeof *p);
    snprintf(p->message, sizeof p->message, "%s", msg);
    p->site = site;
    p->outer = innermost;
    p->span = atomic_fetch_add_explicit(&next_span, 1, memory_order_relaxed);
    p->trace = trace ? trace : p->outer ? p->outer->trace : new_trace(p->span);
    p->printing = decide_printing(msg, opts);
    p->immediate = opts->immediate;
    p->ms_threshold = opts->ms_threshold;
    p->stream = opts->stream ? opts->stream : stderr;
    if (p->outer)
        p->depth = p->outer->depth + (p->outer->printing ? 1 : 0);
    innermost = p;
    if (p->printing) {
        p->block = lines_position();
        /* Before the start's record, so a first buffer is not counted in its marks. */
        add_line(p, "> Entering %s\n", p->message);
        if (p->immediate)
            flush_lines(p->stream);
    }
    p->start_raw = p->last_raw = now_raw();
    pk_profiler_emit(PK_RAW_PROFILER, p, p->start_raw, context ? context : "");
}

void pk_profiler_begin(pk_profiler *p, const pk_profiler_site *site, const char *msg,
                       const pk_profiler_options *opts)
{
    start(p, site, msg, NULL, 0, opts);
}

int pk_profiler_begin_remote(pk_profiler *p, const pk_profiler_site *site, const char *msg,
                             const char *context, const pk_profiler_options *opts, pk_error *err)
{
    pk_context parsed;
    if (pk_context_parse(context, &parsed, err) != 0) {
        start(p, site, msg, NULL, 0, opts);
        return -1;
    }
    start(p, site, msg, context, parsed.trace, opts);
    return 0;
}

void pk_profiler_mark(pk_profiler *p, const char *label)
{
    if (p->finished)
        return;
    char number[24];
    if (!label) {
        snprintf(number, sizeof number, "%u", p->marks);
        label = number;
    }
    p->marks++;
    uint64_t now = now_raw();
    pk_profiler_emit(PK_RAW_CHECKPOINT, p, now, label);
    if (p->printing) {
        add_line(p, "  %s: %0.4f, tot:%0.4f\n", label, ms_between(p->last_raw, now),
                 ms_between(p->start_raw, now));
        if (p->immediate)
            flush_lines(p->stream);
    }
    p->last_raw = now;
}

/* Takes p off the thread's chain, even when an inner one is still open. */
static void unlink_profiler(pk_profiler *p)
{
    for (pk_profiler **link = &innermost; *link; link = &(*link)->outer) {
        if (*link == p) {
            *link = p->outer;
            return;
        }
    }
}

void pk_profiler_finish(pk_profiler *p)
{
    if (p->finished)
        return;
    p->finished = true;
    uint64_t now = now_raw();
    pk_profiler_emit(PK_RAW_PROFILER | PK_RAW_RETURN, p, now, "");
    unlink_profiler(p);
    if (!p->printing)
        return;
    double total = ms_between(p->start_raw, now);
    add_line(p, "< Exiting %s, total time: %0.4f ms\n", p->message, total);
    if (p->immediate)
        flush_lines(p->stream);
    else if (total < p->ms_threshold)
        drop_block(p);
    if (p->depth == 0) {
        flush_lines(p->stream);
        free(lines.text);
        lines.text = NULL;
        lines.size = 0;
    }
}

bool pk_profiler_printing(const pk_profiler *p)
{
    return p->printing;
}

/* ---- contexts ------------------------------------------------------------------------ */

size_t pk_profiler_context(const pk_profiler *p, char *buf, size_t size)
{
    int64_t sent = pk_wall_clock_ns(raw_to_ns(now_raw()));
    int n = snprintf(buf, size, CONTEXT_VERSION "-%016" PRIx64 "-%" PRIx64 "-%d-%" PRId64 "-%s",
                     p->trace, p->span, (int)getpid(), sent, pk_host_name());
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* One '-'-ended hexadecimal or decimal field; advances *s past the '-'. */
static bool context_number(const char **s, int base, bool is_signed, uint64_t *value)
{
    char *end;
    errno = 0;
    if (!**s || **s == '-' || **s == '+' || **s == ' ')
        return false;
    *value = is_signed ? (uint64_t)strtoll(*s, &end, base) : strtoull(*s, &end, base);
    if (errno || *end != '-' || end == *s)
        return false;
    *s = end + 1;
    return true;
}

int pk_context_parse(const char *text, pk_context *out, pk_error *err)
{
    const char *s = text ? text : "";
    uint64_t pid = 0, sent = 0;
    memset(out, 0, sizeof *out);
    if (strncmp(s, CONTEXT_VERSION "-", 4) == 0) {
        s += 4;
        if (context_number(&s, 16, false, &out->trace) &&
            context_number(&s, 16, false, &out->span) && context_number(&s, 10, false, &pid) &&
            context_number(&s, 10, true, &sent) && *s && strlen(s) < sizeof out->host &&
            out->trace && out->span && pid > 0 && pid <= INT32_MAX) {
            out->pid = (int)pid;
            out->sent_ns = (int64_t)sent;
            snprintf(out->host, sizeof out->host, "%s", s);
            return 0;
        }
    }
    return pk_fail(err,
                   "profiler context '%s': expected " CONTEXT_VERSION
                   "-TRACE-SPAN-PID-TIME-HOST (as pk_profiler_context writes it)",
                   text ? text : "");
}
